package certificates

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// ServerCipherSuites returns the TLS 1.2 cipher suites Sallyport accepts,
// on the serving side and when dialing executors: ECDHE key exchange with
// an AEAD (AES-GCM or ChaCha20-Poly1305) only, for ECDSA and RSA
// certificates. TLS 1.3 suites are all AEAD and not configurable. The
// caller may modify the returned slice.
func ServerCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ParseMinVersion converts a TLS settings min_version ("1.2", "1.3", or ""
// for the default 1.2) to a tls.Version constant.
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", model.TLS12:
		return tls.VersionTLS12, nil
	case model.TLS13:
		return tls.VersionTLS13, nil
	default:
		return 0, fmt.Errorf("min_version %q: want %q or %q", s, model.TLS12, model.TLS13)
	}
}

// ConfigureServer applies Sallyport's protocol policy to a serving
// tls.Config: the protocol floor (TLS 1.2 or 1.3; anything lower is raised to
// 1.2) and the AEAD-only suites under TLS 1.2.
func ConfigureServer(cfg *tls.Config, minVersion uint16) {
	if minVersion < tls.VersionTLS12 {
		minVersion = tls.VersionTLS12
	}
	cfg.MinVersion = minVersion
	cfg.CipherSuites = ServerCipherSuites()
}

// ClientAuth returns a gateway's client-certificate policy from its TLS
// settings: the tls.ClientAuthType and the pool of CAs (peer_ca_pem) that
// verify planners' certificates (nil for "none").
func ClientAuth(spec *model.TLSSettingsSpec) (tls.ClientAuthType, *x509.CertPool, error) {
	if spec == nil {
		return tls.NoClientCert, nil, nil
	}
	var auth tls.ClientAuthType
	switch spec.ClientAuth {
	case "", model.ClientAuthNone:
		return tls.NoClientCert, nil, nil
	case model.ClientAuthOptional:
		auth = tls.VerifyClientCertIfGiven
	case model.ClientAuthRequire:
		auth = tls.RequireAndVerifyClientCert
	default:
		return 0, nil, fmt.Errorf("client_auth %q: want %q, %q or %q", spec.ClientAuth,
			model.ClientAuthNone, model.ClientAuthOptional, model.ClientAuthRequire)
	}
	if spec.PeerCAPEM == "" {
		return 0, nil, fmt.Errorf("client_auth %q needs peer_ca_pem to verify client certificates against", spec.ClientAuth)
	}
	pool, err := certPool(spec.PeerCAPEM)
	if err != nil {
		return 0, nil, fmt.Errorf("peer_ca_pem: %w", err)
	}
	return auth, pool, nil
}

// StatusOf describes leaf for an object's status. Its fingerprint is the
// lowercase hex SHA-256 of the DER encoding (pki.Fingerprint). A leaf with an
// empty subject (common for ACME certificates) is described by its DNS
// names instead, as "DNS:a, DNS:b".
func StatusOf(leaf *x509.Certificate) *model.CertificateStatus {
	if leaf == nil {
		return nil
	}
	subject := leaf.Subject.String()
	if subject == "" && len(leaf.DNSNames) > 0 {
		subject = "DNS:" + strings.Join(leaf.DNSNames, ", DNS:")
	}
	return &model.CertificateStatus{
		Subject:           subject,
		Issuer:            leaf.Issuer.String(),
		NotAfter:          leaf.NotAfter.UTC(),
		SHA256Fingerprint: pki.Fingerprint(leaf),
	}
}

func certPool(pemText string) (*x509.CertPool, error) {
	certs, err := model.ParseCertificatesPEM(pemText)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// hostSet is a gateway's declared hostnames, normalized, and the matching
// of SNI values against them.
type hostSet struct {
	names []string // sorted, deduplicated
	exact map[string]bool
	// wildcard holds the suffixes (".example.com") of "*.example.com".
	wildcard map[string]bool
}

func newHostSet(hostnames []string) (hostSet, error) {
	hs := hostSet{exact: make(map[string]bool), wildcard: make(map[string]bool)}
	if len(hostnames) == 0 {
		return hs, errors.New("the gateway declares no hostnames")
	}
	for _, h := range hostnames {
		n := normalizeName(h)
		if err := model.CheckHostname(n); err != nil {
			return hs, fmt.Errorf("hostname: %w", err)
		}
		if suffix, ok := strings.CutPrefix(n, "*"); ok {
			if hs.wildcard[suffix] {
				continue
			}
			hs.wildcard[suffix] = true
		} else {
			if hs.exact[n] {
				continue
			}
			hs.exact[n] = true
		}
		hs.names = append(hs.names, n)
	}
	slices.Sort(hs.names)
	return hs, nil
}

// match reports whether an SNI value names one of the hosts. A wildcard
// covers exactly one label, as in certificate matching (RFC 6125).
func (hs hostSet) match(serverName string) bool {
	n := normalizeName(serverName)
	if n == "" {
		return false
	}
	if hs.exact[n] {
		return true
	}
	if i := strings.IndexByte(n, '.'); i > 0 {
		return hs.wildcard[n[i:]]
	}
	return false
}

func (hs hostSet) hasWildcard() bool { return len(hs.wildcard) > 0 }

func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// refuseName is the handshake error for a server name the gateway does not
// declare: the handshake fails rather than show another gateway's
// certificate.
func refuseName(serverName string) error {
	if serverName == "" {
		return errors.New("certificates: the client sent no server name (SNI); refusing the handshake")
	}
	return fmt.Errorf("certificates: %q is not a hostname of this gateway; refusing the handshake", serverName)
}
