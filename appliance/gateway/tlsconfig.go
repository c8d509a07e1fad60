package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/certificates"
)

// acmeTLS1 is the ALPN protocol of ACME's TLS-ALPN-01 challenge.
const acmeTLS1 = "acme-tls/1"

// tls12Suites are the TLS 1.2 cipher suites a gateway accepts: ECDHE with
// AEAD only, the same policy as every TLS endpoint of the appliance.
var tls12Suites = certificates.ServerCipherSuites()

var (
	errNoSNI      = errors.New("client sent no server name (SNI)")
	errUnknownSNI = errors.New("no gateway serves this server name")
)

// gatewayTLS builds the config of a gateway's handshakes: HTTP (ALPN h2
// and http/1.1) or tcp (no ALPN).
func (s *Server) gatewayTLS(gr *gwRoute, http bool) *tls.Config {
	st := gr.g.TLS
	cfg := &tls.Config{
		MinVersion:     max(st.MinVersion, tls.VersionTLS12),
		CipherSuites:   tls12Suites,
		GetCertificate: st.GetCertificate,
		ClientAuth:     st.ClientAuth,
		ClientCAs:      st.ClientCAs,
		Time:           s.now,
	}
	if http {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	// Session tickets are shared by the gateways of a listener; crypto/tls
	// re-checks a resumed session's chains against the ClientCAs of the
	// config chosen here, so a ticket cannot carry a certificate from one
	// gateway to another (TestResumedSessionCannotCarryACertificateToAnotherGateway).
	return cfg
}

// acmeTLS builds the config for TLS-ALPN-01 challenge handshakes: only
// the certificate source answers them; no client certificate is asked
// for, and the connection is closed after the handshake.
func (s *Server) acmeTLS(g *Gateway) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: g.TLS.GetCertificate,
		NextProtos:     []string{acmeTLS1},
		Time:           s.now,
	}
}

// configForClient picks the gateway by SNI for each handshake on the
// listener at addr.
func (s *Server) configForClient(addr string, hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if hello.ServerName == "" {
		s.metrics.handshakes.WithLabelValues(addr, "no_sni").Inc()
		return nil, errNoSNI
	}
	t := s.table.Load()
	st := t.sites[addr]
	if st == nil {
		return nil, errUnknownSNI
	}
	vh, ok := st.names.lookup(canonicalHost(hello.ServerName))
	if !ok {
		s.metrics.handshakes.WithLabelValues(addr, "unknown_sni").Inc()
		return nil, errUnknownSNI
	}
	if vh.gw.acmeConfig != nil && slices.Contains(hello.SupportedProtos, acmeTLS1) {
		return vh.gw.acmeConfig, nil
	}
	return vh.tlsConfig, nil
}

// verifyClientChain verifies a client certificate chain against the
// gateway's client CAs.
func verifyClientChain(st *ServerTLS, chain []*x509.Certificate, now time.Time) error {
	if st.ClientAuth == tls.NoClientCert || st.ClientCAs == nil {
		return errors.New("the gateway does not verify client certificates")
	}
	opts := x509.VerifyOptions{
		Roots:       st.ClientCAs,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return fmt.Errorf("verify client certificate: %w", err)
	}
	return nil
}
