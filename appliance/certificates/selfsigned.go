package certificates

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/atomicfile"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// safeID is what a TLS settings id may look like to become part of a file
// name.
var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ClientIdentity returns the URI SAN of the client certificate the internal
// CA issues for TLS settings id (source "self_signed", used to dial
// executors): spiffe://sallyport/tls-settings/<id>. Executors authorize the
// appliance by it.
func ClientIdentity(tlsSettingsID string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: "sallyport", Path: "/tls-settings/" + tlsSettingsID}
}

// selfSignedServer returns the persisted serving certificate for hosts.
func (m *Manager) selfSignedServer(id string, hosts hostSet) (*rotating, error) {
	if m.cfg.InternalCA == nil {
		return nil, errors.New(`source "self_signed": the appliance has no internal CA configured`)
	}
	if !safeID.MatchString(id) {
		return nil, fmt.Errorf("TLS settings id %q cannot name a certificate file", id)
	}
	sum := sha256.Sum256([]byte(strings.Join(hosts.names, "\n")))
	base := filepath.Join(m.selfDir, id+"-"+hex.EncodeToString(sum[:8]))
	req := pki.IssueRequest{DNSNames: hosts.names, Usage: pki.UsageServer}
	fits := func(leaf *x509.Certificate) error {
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
			return errors.New("not a server certificate")
		}
		for _, h := range hosts.names {
			if !slices.Contains(leaf.DNSNames, h) {
				return fmt.Errorf("does not name %q", h)
			}
		}
		return nil
	}
	return newRotating(func() (*tls.Certificate, error) { return m.loadOrIssue(base, req, fits) })
}

// selfSignedClient returns the persisted client certificate of TLS settings
// id.
func (m *Manager) selfSignedClient(id string) (*rotating, error) {
	if m.cfg.InternalCA == nil {
		return nil, errors.New(`source "self_signed": the appliance has no internal CA configured`)
	}
	if !safeID.MatchString(id) {
		return nil, fmt.Errorf("TLS settings id %q cannot name a certificate file", id)
	}
	uri := ClientIdentity(id)
	base := filepath.Join(m.selfDir, id+"-client")
	req := pki.IssueRequest{URIs: []*url.URL{uri}, Usage: pki.UsageClient}
	fits := func(leaf *x509.Certificate) error {
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			return errors.New("not a client certificate")
		}
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != uri.String() {
			return fmt.Errorf("does not carry the identity %s", uri)
		}
		return nil
	}
	return newRotating(func() (*tls.Certificate, error) { return m.loadOrIssue(base, req, fits) })
}

// loadOrIssue returns the certificate persisted at base+".pem" and
// base+"-key.pem" if it is still good — issued by the current internal CA,
// fitting the request, not within renewBefore of expiry, key private — and
// otherwise issues, persists and returns a new one. Reuse keeps a
// self-signed certificate's fingerprint stable across reconciliations and
// restarts.
func (m *Manager) loadOrIssue(base string, req pki.IssueRequest, fits func(*x509.Certificate) error) (*tls.Certificate, error) {
	m.selfMu.Lock()
	defer m.selfMu.Unlock()
	certPath, keyPath := base+".pem", base+"-key.pem"

	cert, err := m.loadPersisted(certPath, keyPath, fits)
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		m.log.Info("replacing a persisted certificate", "path", certPath, "reason", err.Error())
	}

	certPEM, keyPEM, cert, err := m.cfg.InternalCA.Issue(req)
	if err != nil {
		return nil, fmt.Errorf("issue a certificate from the internal CA: %w", err)
	}
	// The key goes first: a crash between the writes leaves a new key beside
	// the old certificate, which no longer matches and is replaced.
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("persist certificate key: %w", err)
	}
	if err := atomicfile.Write(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("persist certificate: %w", err)
	}
	return cert, nil
}

func (m *Manager) loadPersisted(certPath, keyPath string, fits func(*x509.Certificate) error) (*tls.Certificate, error) {
	info, err := os.Stat(keyPath)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s is accessible to group or others (%#o)", keyPath, info.Mode().Perm())
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	// A certificate from an earlier internal CA (the CA was replaced) is
	// not trusted by anyone who pinned the current one.
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     m.cfg.InternalCA.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("not issued by the current internal CA: %w", err)
	}
	if err := fits(leaf); err != nil {
		return nil, err
	}
	if time.Now().After(leaf.NotAfter.Add(-renewBefore)) {
		return nil, fmt.Errorf("expires at %s, within %s", leaf.NotAfter.UTC().Format(time.RFC3339), renewBefore)
	}
	return &cert, nil
}
