package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateServerCertCreatesAndReuses(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, AdminCAName)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := LoadOrCreateServerCert(dir, ca, []string{"appliance.example.com", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, filepath.Join(dir, "admin-server.pem"), 0o644)
	assertMode(t, filepath.Join(dir, "admin-server-key.pem"), 0o600)
	assertMode(t, filepath.Join(dir, "admin-ca.pem"), 0o644)
	assertNoTempFiles(t, dir)

	// Every admin certificate carries the loopback names and the host name,
	// plus the requested ones.
	want := []string{"localhost", "127.0.0.1", "::1", "appliance.example.com", "192.0.2.7"}
	if host, err := os.Hostname(); err == nil && checkDNSName(strings.ToLower(host)) == nil {
		want = append(want, strings.ToLower(host))
	}
	for _, name := range want {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{
			Roots:     ca.Pool(),
			DNSName:   name,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("admin certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "not-requested.example.com"}); err == nil {
		t.Error("admin certificate verifies for a name nobody asked for")
	}

	// Same names (in another order, other case, with brackets) and a
	// subset: the stored certificate is reused, byte for byte.
	for _, names := range [][]string{
		{"192.0.2.7", "APPLIANCE.example.com."},
		{"appliance.example.com"},
		nil,
		{"[::1]", "localhost"},
	} {
		again, err := LoadOrCreateServerCert(dir, ca, names)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
			t.Errorf("names %q: certificate re-issued, want the stored one reused", names)
		}
	}

	// The stored files are what a TLS server would load.
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin-server.pem"), filepath.Join(dir, "admin-server-key.pem")); err != nil {
		t.Fatalf("stored pair does not load: %v", err)
	}
}

func TestLoadOrCreateServerCertReissues(t *testing.T) {
	setup := func(t *testing.T) (string, *CA, *tls.Certificate) {
		t.Helper()
		dir := t.TempDir()
		ca, err := LoadOrCreateCA(dir, AdminCAName)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := LoadOrCreateServerCert(dir, ca, []string{"a.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return dir, ca, cert
	}
	// reissued checks that LoadOrCreateServerCert gives a new certificate
	// from ca that covers names, and that it is then stable.
	reissued := func(t *testing.T, dir string, ca *CA, old *tls.Certificate, names []string) *tls.Certificate {
		t.Helper()
		cert, err := LoadOrCreateServerCert(dir, ca, names)
		if err != nil {
			t.Fatal(err)
		}
		if old != nil && bytes.Equal(cert.Certificate[0], old.Certificate[0]) {
			t.Fatal("stored certificate reused, want a re-issued one")
		}
		for _, name := range append([]string{"localhost"}, names...) {
			if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err != nil {
				t.Errorf("re-issued certificate does not verify for %s: %v", name, err)
			}
		}
		if time.Until(cert.Leaf.NotAfter) < RenewBefore {
			t.Errorf("re-issued certificate expires at %s, within the renewal window", cert.Leaf.NotAfter)
		}
		again, err := LoadOrCreateServerCert(dir, ca, names)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
			t.Error("re-issued certificate not reused on the next load")
		}
		return cert
	}

	t.Run("new name", func(t *testing.T) {
		dir, ca, old := setup(t)
		cert := reissued(t, dir, ca, old, []string{"b.example.com", "198.51.100.1"})
		// The names the CA issued for before are not promised any more
		// unless asked for again, but the fixed ones always are.
		if !slices.ContainsFunc(cert.Leaf.IPAddresses, net.ParseIP("127.0.0.1").Equal) {
			t.Error("re-issued certificate lacks 127.0.0.1")
		}
	})

	t.Run("missing files", func(t *testing.T) {
		for _, file := range []string{AdminServerCertFile, AdminServerKeyFile} {
			t.Run(file, func(t *testing.T) {
				dir, ca, old := setup(t)
				if err := os.Remove(filepath.Join(dir, file)); err != nil {
					t.Fatal(err)
				}
				reissued(t, dir, ca, old, []string{"a.example.com"})
			})
		}
	})

	t.Run("expiring soon", func(t *testing.T) {
		dir, ca, _ := setup(t)
		certPEM, keyPEM, short, err := ca.Issue(IssueRequest{
			DNSNames: []string{"localhost", "a.example.com"},
			IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
			ValidFor: RenewBefore - time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		writeServerPair(t, dir, certPEM, keyPEM)
		reissued(t, dir, ca, short, []string{"a.example.com"})
	})

	t.Run("issued by another CA", func(t *testing.T) {
		dir, _, old := setup(t)
		// The operator replaced the CA (e.g. after a key compromise): the
		// server certificate of the old CA must not be served any more.
		for _, f := range []string{"admin-ca.pem", "admin-ca-key.pem"} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		newCA, err := LoadOrCreateCA(dir, AdminCAName)
		if err != nil {
			t.Fatal(err)
		}
		reissued(t, dir, newCA, old, []string{"a.example.com"})
	})

	t.Run("key does not match", func(t *testing.T) {
		dir, ca, old := setup(t)
		_, otherKey, _, err := ca.Issue(IssueRequest{DNSNames: []string{"x.example"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, AdminServerKeyFile), otherKey, 0o600); err != nil {
			t.Fatal(err)
		}
		reissued(t, dir, ca, old, []string{"a.example.com"})
	})

	t.Run("client-only certificate", func(t *testing.T) {
		dir, ca, _ := setup(t)
		certPEM, keyPEM, client, err := ca.Issue(IssueRequest{
			DNSNames: []string{"localhost", "a.example.com"},
			IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
			Usage:    UsageClient,
		})
		if err != nil {
			t.Fatal(err)
		}
		writeServerPair(t, dir, certPEM, keyPEM)
		reissued(t, dir, ca, client, []string{"a.example.com"})
	})

	t.Run("chain without the CA", func(t *testing.T) {
		dir, ca, old := setup(t)
		certPEM, err := os.ReadFile(filepath.Join(dir, AdminServerCertFile))
		if err != nil {
			t.Fatal(err)
		}
		leafOnly := bytes.TrimSuffix(certPEM, ca.CertPEM())
		if bytes.Equal(leafOnly, certPEM) {
			t.Fatal("stored chain does not end with the CA")
		}
		if err := os.WriteFile(filepath.Join(dir, AdminServerCertFile), leafOnly, 0o644); err != nil {
			t.Fatal(err)
		}
		cert := reissued(t, dir, ca, old, []string{"a.example.com"})
		if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Certificate().Raw) {
			t.Error("re-issued chain does not carry the CA")
		}
	})

	t.Run("garbage", func(t *testing.T) {
		dir, ca, old := setup(t)
		writeServerPair(t, dir, []byte("garbage"), []byte("garbage"))
		reissued(t, dir, ca, old, []string{"a.example.com"})
	})
}

func TestLoadOrCreateServerCertRefusesLooseKeyPermissions(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, AdminCAName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateServerCert(dir, ca, nil); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, AdminServerKeyFile)
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateServerCert(dir, ca, nil)
	if err == nil || !strings.Contains(err.Error(), keyPath) || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("err = %v, want a permission error naming %s", err, keyPath)
	}
}

func TestLoadOrCreateServerCertRejectsBadNames(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, AdminCAName)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"host:8443", "*.example.com", "bad_name.example", "-lead.example", "a..b", strings.Repeat("a", 64) + ".example"} {
		if _, err := LoadOrCreateServerCert(dir, ca, []string{name}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, AdminServerCertFile)); err == nil {
		t.Error("a certificate was written although every request was refused")
	}
}

func writeServerPair(t *testing.T, dir string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, AdminServerCertFile), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, AdminServerKeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}
