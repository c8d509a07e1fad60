package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/atomicfile"
)

const (
	// AdminCAName is the name of the admin API's CA: its files are
	// admin-ca.pem and admin-ca-key.pem in the data directory.
	AdminCAName = "admin-ca"
	// AdminServerCertFile and AdminServerKeyFile hold the admin API's server
	// certificate (leaf followed by the CA) and its private key.
	AdminServerCertFile = "admin-server.pem"
	// AdminServerKeyFile is the admin server certificate's private key file.
	AdminServerKeyFile = "admin-server-key.pem"

	// RenewBefore is how long before expiry the admin server certificate is
	// re-issued, so that a restarted appliance never serves an almost
	// expired certificate.
	RenewBefore = 30 * 24 * time.Hour
	// serverCertValidity is the validity of a newly issued admin server
	// certificate.
	serverCertValidity = DefaultLeafValidity
)

// LoadOrCreateServerCert returns the admin API's server certificate stored in
// dir as admin-server.pem / admin-server-key.pem, issuing (and storing) a new
// one from ca when the stored one is missing, unreadable, not issued by ca,
// expires within RenewBefore, or does not cover every requested name.
//
// names are DNS names or IP addresses (IPv6 optionally in brackets);
// localhost, 127.0.0.1, ::1 and the machine's host name are always included.
// A key file readable by group or others is refused, as for the CA.
func LoadOrCreateServerCert(dir string, ca *CA, names []string) (*tls.Certificate, error) {
	if ca == nil {
		return nil, errors.New("pki: server certificate: nil CA")
	}
	dnsNames, ips, err := serverNames(names)
	if err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, AdminServerCertFile)
	keyPath := filepath.Join(dir, AdminServerKeyFile)

	if cert, ok, err := loadServerCert(certPath, keyPath, ca, dnsNames, ips); err != nil {
		return nil, err
	} else if ok {
		return cert, nil
	}

	certPEM, keyPEM, cert, err := ca.Issue(IssueRequest{
		CommonName: dnsNames[0],
		DNSNames:   dnsNames,
		IPs:        ips,
		Usage:      UsageServer,
		ValidFor:   serverCertValidity,
	})
	if err != nil {
		return nil, fmt.Errorf("pki: issue admin server certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create directory %s: %w", dir, err)
	}
	// Key first: a crash in between leaves a key that does not match the old
	// certificate, which the next start detects and re-issues.
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return cert, nil
}

// loadServerCert returns the stored server certificate and true when it can
// be reused as is. A missing, damaged, foreign, expiring or too narrow
// certificate gives false and no error (it is simply re-issued); only a
// key file with loose permissions or an unreadable file is an error.
func loadServerCert(certPath, keyPath string, ca *CA, dnsNames []string, ips []net.IP) (*tls.Certificate, bool, error) {
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	if !certExists || !keyExists {
		return nil, false, nil
	}
	if err := checkKeyPerm(keyPath); err != nil {
		return nil, false, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, false, fmt.Errorf("pki: read %s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, false, fmt.Errorf("pki: read %s: %w", keyPath, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// Includes a key that does not match the certificate.
		return nil, false, nil
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, false, nil
		}
		pair.Leaf = leaf
	}
	// The chain must carry the CA: clients that pin only its fingerprint
	// find it there.
	if len(pair.Certificate) < 2 || !bytes.Equal(pair.Certificate[1], ca.cert.Raw) {
		return nil, false, nil
	}
	if !serverCertUsable(leaf, ca, dnsNames, ips, time.Now()) {
		return nil, false, nil
	}
	return &pair, true, nil
}

// serverCertUsable reports whether leaf chains to ca for server auth, stays
// valid for longer than RenewBefore after now, and covers every name.
func serverCertUsable(leaf *x509.Certificate, ca *CA, dnsNames []string, ips []net.IP, now time.Time) bool {
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return false
	}
	if leaf.NotAfter.Sub(now) < RenewBefore {
		return false
	}
	for _, name := range dnsNames {
		// Exact SANs only: the appliance never issues wildcards, and an
		// operator's wildcard should not silently stand in for a name.
		if !slices.Contains(leaf.DNSNames, name) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// serverNames splits names into DNS names and IPs, adds the names every
// admin server certificate carries, normalises (lowercase, no trailing dot,
// no IPv6 brackets) and removes duplicates. The first DNS name is
// "localhost" so the subject CN is stable across hosts.
func serverNames(names []string) ([]string, []net.IP, error) {
	all := []string{"localhost", "127.0.0.1", "::1"}
	// The host name is best effort: a machine without one, or with one that
	// is not a valid DNS name, still gets a usable certificate for the
	// loopback names and the requested ones.
	if host, err := os.Hostname(); err == nil {
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		if checkDNSName(host) == nil {
			all = append(all, host)
		}
	}
	all = append(all, names...)

	var dnsNames []string
	var ips []net.IP
	for _, raw := range all {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		if err := checkDNSName(name); err != nil {
			return nil, nil, fmt.Errorf("pki: server certificate name %q: %w", raw, err)
		}
		if !slices.Contains(dnsNames, name) {
			dnsNames = append(dnsNames, name)
		}
	}
	return dnsNames, ips, nil
}

// checkDNSName accepts RFC 1123 host names (letters, digits, hyphens, dots,
// labels of 1 to 63 characters). Wildcards are refused on purpose.
func checkDNSName(name string) error {
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("each dot-separated label must be 1 to 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("a label may not start or end with a hyphen")
		}
		for _, c := range label {
			if !isLabelChar(c) {
				return fmt.Errorf("invalid character %q (want a host name or an IP address, without port)", c)
			}
		}
	}
	return nil
}

func isLabelChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
}
