package certificates

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// ServingRequest asks for the serving certificate of one gateway.
type ServingRequest struct {
	// TLSSettingsID is the id of the TLS settings object.
	TLSSettingsID string
	// Spec is the TLS settings object's spec.
	Spec *model.TLSSettingsSpec
	// Secret returns the plaintext of a secret field of Spec
	// (model.PathKeyPEM, model.PathEABHMAC).
	Secret func(path string) (string, error)
	// Hostnames are the gateway's hostnames: the only names served.
	Hostnames []string
}

// Serving is what a gateway's listener serves with. Its functions are safe
// for concurrent use.
type Serving struct {
	// GetCertificate returns the certificate for a handshake. It refuses
	// (with an error, which fails the handshake) a server name the gateway
	// does not declare and a ClientHello without SNI.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// NextProtos are ALPN protocols the listener must accept before its
	// own: "acme-tls/1" for ACME, so TLS-ALPN-01 challenges reach
	// GetCertificate. A connection that negotiated "acme-tls/1" carries no
	// application data and must be closed after the handshake.
	NextProtos []string
	// Ready reports whether a certificate is served for every hostname,
	// with a message: for ACME, "obtaining a certificate ..." until then,
	// or the last error.
	Ready func() (bool, string)
	// Status describes the certificate currently served, nil if none. With
	// several hostnames (ACME issues one certificate per name), it is the
	// certificate of the first one, in sorted order, that has one.
	Status func() *model.CertificateStatus
	// HTTPChallenge answers ACME HTTP-01 challenges under
	// /.well-known/acme-challenge/ for the gateway's hostnames (404 for
	// anything else). Non-nil only for ACME with http_challenge_addr set:
	// the gateway listens there with it.
	HTTPChallenge http.Handler
	// Close releases the Serving: for ACME, the last Close of identical
	// servings stops managing their certificates. Call it for the servings
	// of a replaced runtime, not for those still in use. Idempotent.
	Close func()
}

// renewBefore is how long before expiry a persisted self-signed
// certificate is replaced.
const renewBefore = 30 * 24 * time.Hour

// Serving returns the serving certificate source for a gateway.
func (m *Manager) Serving(ctx context.Context, req ServingRequest) (*Serving, error) {
	if req.Spec == nil {
		return nil, fmt.Errorf("certificates: TLS settings %q: no spec", req.TLSSettingsID)
	}
	hosts, err := newHostSet(req.Hostnames)
	if err != nil {
		return nil, fmt.Errorf("certificates: TLS settings %q: %w", req.TLSSettingsID, err)
	}
	var s *Serving
	switch src := req.Spec.Certificate.Source; src {
	case model.SourceACME:
		s, err = m.acmeServing(ctx, req, hosts)
	case model.SourceStatic:
		s, err = staticServing(req, hosts)
	case model.SourceSelfSigned:
		s, err = m.selfSignedServing(req, hosts)
	case model.SourceNone:
		err = errors.New(`certificate source is "none": these TLS settings have no certificate to serve a gateway with`)
	default:
		err = fmt.Errorf("unknown certificate source %q", src)
	}
	if err != nil {
		return nil, fmt.Errorf("certificates: TLS settings %q: %w", req.TLSSettingsID, err)
	}
	return s, nil
}

// secretValue reads a secret field through req's lookup.
func secretValue(lookup func(string) (string, error), path string) (string, error) {
	if lookup == nil {
		return "", fmt.Errorf("%s: no secret lookup given", path)
	}
	v, err := lookup(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if v == "" {
		return "", fmt.Errorf("%s: no value stored", path)
	}
	return v, nil
}

// staticServing serves an operator's chain and key.
func staticServing(req ServingRequest, hosts hostSet) (*Serving, error) {
	cert, err := staticCertificate(req.Spec, req.Secret)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	for _, h := range hosts.names {
		if err := covers(leaf, h); err != nil {
			return nil, fmt.Errorf("static certificate: %w", err)
		}
	}
	status := StatusOf(leaf)
	return &Serving{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if !hosts.match(hello.ServerName) {
				return nil, refuseName(hello.ServerName)
			}
			return cert, nil
		},
		Ready:  func() (bool, string) { return validityReady(leaf, "static certificate") },
		Status: func() *model.CertificateStatus { return status },
		Close:  func() {},
	}, nil
}

// staticCertificate parses spec's static chain and its key (a secret).
func staticCertificate(spec *model.TLSSettingsSpec, lookup func(string) (string, error)) (*tls.Certificate, error) {
	st := spec.Certificate.Static
	if st == nil {
		return nil, errors.New(`source "static" without a static certificate`)
	}
	chain, err := model.ParseCertificatesPEM(st.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("static certificate: cert_pem: %w", err)
	}
	keyPEM, err := secretValue(lookup, model.PathKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("static certificate: %w", err)
	}
	key, err := model.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("static certificate: key_pem: %w", err)
	}
	if err := model.CheckKeyMatchesCertificate(key, chain[0]); err != nil {
		return nil, fmt.Errorf("static certificate: key_pem: %w", err)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// covers checks that leaf is valid for hostname; a wildcard hostname needs
// the same wildcard in the certificate.
func covers(leaf *x509.Certificate, hostname string) error {
	if strings.HasPrefix(hostname, "*.") {
		if slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, hostname) }) {
			return nil
		}
		return fmt.Errorf("it does not cover %q (its names: %s)", hostname, strings.Join(leaf.DNSNames, ", "))
	}
	if err := leaf.VerifyHostname(hostname); err != nil {
		return fmt.Errorf("it does not cover %q (its names: %s)", hostname, strings.Join(leaf.DNSNames, ", "))
	}
	return nil
}

// validityReady reports a fixed certificate ready while it is within its
// validity period.
func validityReady(leaf *x509.Certificate, what string) (bool, string) {
	now := time.Now()
	switch {
	case now.Before(leaf.NotBefore):
		return false, fmt.Sprintf("%s is not valid before %s", what, leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		return false, fmt.Sprintf("%s expired at %s", what, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return true, ""
}

// selfSignedServing serves a certificate from the internal CA, persisted
// and reused across restarts.
func (m *Manager) selfSignedServing(req ServingRequest, hosts hostSet) (*Serving, error) {
	src, err := m.selfSignedServer(req.TLSSettingsID, hosts)
	if err != nil {
		return nil, err
	}
	return &Serving{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if !hosts.match(hello.ServerName) {
				return nil, refuseName(hello.ServerName)
			}
			return src.get()
		},
		Ready: func() (bool, string) {
			c, err := src.get()
			if err != nil {
				return false, err.Error()
			}
			return validityReady(c.Leaf, "self-signed certificate")
		},
		Status: func() *model.CertificateStatus { return StatusOf(src.current().Leaf) },
		Close:  func() {},
	}, nil
}

// rotating holds a persisted certificate from the internal CA and replaces
// it when it comes within renewBefore of expiry, so a long-running
// appliance never serves an expired one.
type rotating struct {
	load func() (*tls.Certificate, error)

	mu  sync.Mutex
	cur *tls.Certificate
	// retryAt spaces out replacement attempts after a failure.
	retryAt time.Time
	lastErr error
}

// rotateRetry is how long a failed replacement waits before the next try.
const rotateRetry = time.Minute

func newRotating(load func() (*tls.Certificate, error)) (*rotating, error) {
	c, err := load()
	if err != nil {
		return nil, err
	}
	return &rotating{load: load, cur: c}, nil
}

func (r *rotating) current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *rotating) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Before(r.cur.Leaf.NotAfter.Add(-renewBefore)) {
		return r.cur, nil
	}
	if !now.Before(r.retryAt) {
		c, err := r.load()
		if err == nil {
			r.cur = c
			return c, nil
		}
		r.retryAt, r.lastErr = now.Add(rotateRetry), err
	}
	// The old certificate may still be valid for up to 30 days: keep
	// serving it rather than fail handshakes.
	if now.Before(r.cur.Leaf.NotAfter) {
		return r.cur, nil
	}
	return nil, fmt.Errorf("the certificate expired and could not be replaced: %w", r.lastErr)
}
