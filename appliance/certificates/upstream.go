package certificates

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// UpstreamRequest asks for the TLS configuration a connection dials its
// executor with.
type UpstreamRequest struct {
	// TLSSettingsID is the id of the connection's upstream TLS settings.
	TLSSettingsID string
	// Spec is their spec; nil means system roots, TLS 1.2, no client
	// certificate.
	Spec *model.TLSSettingsSpec
	// Secret returns the plaintext of a secret field of Spec
	// (model.PathKeyPEM).
	Secret func(path string) (string, error)
	// ServerName is the executor's host (from the upstream URL, without
	// port), the name verified in its certificate unless the spec's
	// server_name overrides it.
	ServerName string
}

// Upstream returns a client tls.Config for dialing an executor. The
// executor's chain and name are always verified: against peer_ca_pem when
// set, else the system roots. A client certificate is presented for mTLS
// when the certificate source is "static" (the operator's chain and key) or
// "self_signed" (issued by the internal CA with the URI SAN
// ClientIdentity(id), persisted and reused). The returned config is the
// caller's; it must not set InsecureSkipVerify.
func (m *Manager) Upstream(_ context.Context, req UpstreamRequest) (*tls.Config, error) {
	cfg, err := m.upstream(req)
	if err != nil {
		return nil, fmt.Errorf("certificates: upstream TLS settings %q: %w", req.TLSSettingsID, err)
	}
	return cfg, nil
}

func (m *Manager) upstream(req UpstreamRequest) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:   req.ServerName,
		MinVersion:   tls.VersionTLS12,
		CipherSuites: ServerCipherSuites(),
	}
	if spec := req.Spec; spec != nil {
		if spec.ServerName != "" {
			cfg.ServerName = spec.ServerName
		}
		v, err := ParseMinVersion(spec.MinVersion)
		if err != nil {
			return nil, err
		}
		cfg.MinVersion = v
		if spec.PeerCAPEM != "" {
			if cfg.RootCAs, err = certPool(spec.PeerCAPEM); err != nil {
				return nil, fmt.Errorf("peer_ca_pem: %w", err)
			}
		}
		switch spec.Certificate.Source {
		case model.SourceStatic:
			cert, err := staticCertificate(spec, req.Secret)
			if err != nil {
				return nil, err
			}
			cfg.Certificates = []tls.Certificate{*cert}
		case model.SourceSelfSigned:
			src, err := m.selfSignedClient(req.TLSSettingsID)
			if err != nil {
				return nil, err
			}
			// A callback rather than Certificates, so a long-lived
			// transport picks up the replacement before expiry.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return src.get()
			}
		}
	}
	if cfg.ServerName == "" {
		return nil, errors.New("no server name to verify the executor's certificate against: set the upstream host or server_name")
	}
	return cfg, nil
}
