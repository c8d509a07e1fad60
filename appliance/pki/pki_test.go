package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCACreatesFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "admin-ca")
	if err != nil {
		t.Fatal(err)
	}

	assertMode(t, filepath.Join(dir, "admin-ca.pem"), 0o644)
	assertMode(t, filepath.Join(dir, "admin-ca-key.pem"), 0o600)
	assertNoTempFiles(t, dir)

	onDisk, err := os.ReadFile(filepath.Join(dir, "admin-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, ca.CertPEM()) {
		t.Error("CertPEM() differs from admin-ca.pem")
	}

	cert := ca.Certificate()
	if !strings.HasPrefix(cert.Subject.CommonName, "Sallyport admin-ca CA ") {
		t.Errorf("CN = %q, want prefix %q", cert.Subject.CommonName, "Sallyport admin-ca CA ")
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		t.Error("certificate is not a CA")
	}
	if cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("MaxPathLen = %d (zero=%t), want 0", cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; cert.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", cert.KeyUsage, want)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if validity := cert.NotAfter.Sub(cert.NotBefore); validity < 9*365*24*time.Hour || validity > 11*365*24*time.Hour {
		t.Errorf("validity = %s, want about 10 years", validity)
	}

	// Two CAs of the same name must still be told apart.
	other, err := LoadOrCreateCA(t.TempDir(), "admin-ca")
	if err != nil {
		t.Fatal(err)
	}
	if other.Certificate().Subject.CommonName == cert.Subject.CommonName {
		t.Error("two new CAs share a common name; want a random suffix")
	}
}

func TestLoadOrCreateCAReloadsSameCA(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.CertPEM(), second.CertPEM()) {
		t.Fatal("reload produced a different CA certificate")
	}
	if first.Fingerprint() != second.Fingerprint() {
		t.Fatal("reload produced a different fingerprint")
	}
	// The reloaded key must be the CA's key: what it signs verifies against
	// the originally created certificate.
	_, _, leaf, err := second.Issue(IssueRequest{DNSNames: []string{"reload.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: first.Pool(), DNSName: "reload.example"}); err != nil {
		t.Fatalf("certificate issued by reloaded CA does not verify against the original: %v", err)
	}
}

func TestLoadOrCreateCALoadsPKCS8Key(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "ops")
	if err != nil {
		t.Fatal(err)
	}
	// Operators often hand over PKCS #8 keys (openssl's default output).
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ops-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "ops-key.pem"), pkcs8, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateCA(dir, "ops")
	if err != nil {
		t.Fatalf("PKCS #8 key refused: %v", err)
	}
	if again.Fingerprint() != ca.Fingerprint() {
		t.Fatal("different CA after rewriting the key as PKCS #8")
	}
}

func TestLoadOrCreateCARefusesLooseKeyPermissions(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		t.Run(fmt.Sprintf("%#o", mode), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateCA(dir, "admin-ca"); err != nil {
				t.Fatal(err)
			}
			keyPath := filepath.Join(dir, "admin-ca-key.pem")
			if err := os.Chmod(keyPath, mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateCA(dir, "admin-ca")
			if err == nil {
				t.Fatal("loaded a CA whose key file is readable by others")
			}
			for _, want := range []string{keyPath, fmt.Sprintf("%#o", mode), "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}

	t.Run("0400 is accepted", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "admin-ca-key.pem"), 0o400); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err != nil {
			t.Fatalf("stricter-than-0600 key refused: %v", err)
		}
	})
}

func TestLoadOrCreateCARefusesIncompleteOrDamagedCA(t *testing.T) {
	t.Run("missing certificate", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "admin-ca.pem")); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err == nil || !strings.Contains(err.Error(), "incomplete") {
			t.Fatalf("err = %v, want an incomplete-CA error (a silently replaced CA breaks every pinned client)", err)
		}
	})
	t.Run("key of another CA", func(t *testing.T) {
		dir, otherDir := t.TempDir(), t.TempDir()
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(otherDir, "admin-ca"); err != nil {
			t.Fatal(err)
		}
		otherKey, err := os.ReadFile(filepath.Join(otherDir, "admin-ca-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "admin-ca-key.pem"), otherKey, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("err = %v, want a key mismatch error", err)
		}
	})
	t.Run("garbage certificate", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "admin-ca.pem"), []byte("not a certificate"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(dir, "admin-ca"); err == nil {
			t.Fatal("loaded a CA from a garbage certificate file")
		}
	})
}

func TestFingerprint(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "fp")
	if err != nil {
		t.Fatal(err)
	}

	// Independently: SHA-256 of the DER in the PEM file, formatted the way
	// `openssl x509 -noout -fingerprint -sha256` prints it, then normalised.
	block, _ := pem.Decode(ca.CertPEM())
	sum := sha256.Sum256(block.Bytes)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	opensslStyle := "sha256 Fingerprint=" + strings.Join(parts, ":")
	want := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(opensslStyle, "sha256 Fingerprint="), ":", ""))

	got := Fingerprint(ca.Certificate())
	if got != want {
		t.Fatalf("Fingerprint = %s, want %s", got, want)
	}
	if len(got) != 64 || strings.ToLower(got) != got || strings.Contains(got, ":") {
		t.Fatalf("Fingerprint %q is not 64 lowercase hex characters", got)
	}
	if fromPEM, err := FingerprintPEM(ca.CertPEM()); err != nil || fromPEM != want {
		t.Fatalf("FingerprintPEM = %q, %v; want %s", fromPEM, err, want)
	}
	if ca.Fingerprint() != want {
		t.Fatalf("CA.Fingerprint = %s, want %s", ca.Fingerprint(), want)
	}
	if _, err := FingerprintPEM([]byte("-----BEGIN NOTHING-----\n-----END NOTHING-----\n")); err == nil {
		t.Fatal("FingerprintPEM accepted PEM without a certificate")
	}

	// And, where it is installed, against openssl itself.
	opensslPath, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed; compared against crypto/sha256 only")
		return
	}
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(certFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(opensslPath, "x509", "-noout", "-fingerprint", "-sha256", "-in", certFile).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	_, value, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		t.Fatalf("unexpected openssl output %q", out)
	}
	if norm := strings.ToLower(strings.ReplaceAll(value, ":", "")); norm != got {
		t.Fatalf("openssl fingerprint %s, Fingerprint %s", norm, got)
	}
}

func TestIssueServerCertificate(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "issue")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	certPEM, keyPEM, tlsCert, err := ca.Issue(IssueRequest{
		CommonName: "gw.example.com",
		DNSNames:   []string{"gw.example.com", "alt.example.com"},
		IPs:        []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("2001:db8::1")},
		Usage:      UsageServer,
		ValidFor:   48 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}

	// The PEM pair and the tls.Certificate are the same certificate.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("issued PEM pair does not load: %v", err)
	}
	if !bytes.Equal(pair.Certificate[0], tlsCert.Certificate[0]) {
		t.Fatal("PEM and tls.Certificate differ")
	}
	leaf := tlsCert.Leaf
	if leaf.Subject.CommonName != "gw.example.com" {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %x is not a random positive 128-bit number", leaf.SerialNumber)
	}
	if skew := before.Sub(leaf.NotBefore); skew < 4*time.Minute || skew > 6*time.Minute {
		t.Errorf("NotBefore is %s before issuance, want about 5m", skew)
	}
	if validity := leaf.NotAfter.Sub(before); validity < 47*time.Hour || validity > 49*time.Hour {
		t.Errorf("NotAfter is %s after issuance, want 48h", validity)
	}

	for _, name := range []string{"gw.example.com", "alt.example.com", "192.0.2.10", "2001:db8::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err != nil {
			t.Errorf("does not verify for %s: %v", name, err)
		}
	}
	for _, name := range []string{"other.example.com", "example.com", "x.gw.example.com", "192.0.2.11", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err == nil {
			t.Errorf("verifies for %s, which it was not issued for", name)
		}
	}
	// Server-only: not usable as a client certificate.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("server certificate verifies for client auth")
	}
	// Another CA does not vouch for it.
	other, err := LoadOrCreateCA(t.TempDir(), "issue")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool(), DNSName: "gw.example.com"}); err == nil {
		t.Error("verifies against an unrelated CA")
	}

	// Serials differ between certificates.
	_, _, second, err := ca.Issue(IssueRequest{DNSNames: []string{"gw.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two issued certificates share a serial number")
	}
	if second.Leaf.Subject.CommonName != "gw.example.com" {
		t.Errorf("CN defaults to %q, want the first DNS name", second.Leaf.Subject.CommonName)
	}
}

func TestIssueClientCertificateOverTLS(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "mtls")
	if err != nil {
		t.Fatal(err)
	}
	_, _, server, err := ca.Issue(IssueRequest{DNSNames: []string{"executor.internal"}, Usage: UsageServer})
	if err != nil {
		t.Fatal(err)
	}
	spiffe, err := url.Parse("spiffe://sallyport.test/planner/ci")
	if err != nil {
		t.Fatal(err)
	}
	_, _, client, err := ca.Issue(IssueRequest{CommonName: "ci", URIs: []*url.URL{spiffe}, Usage: UsageClient})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client-only certificate verifies for server auth")
	}

	// A real mutual-TLS handshake: the server requires a client certificate
	// from the CA, the client verifies the server's name against the CA.
	serverConf := &tls.Config{
		Certificates: []tls.Certificate{*server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS13,
	}
	clientConf := &tls.Config{
		Certificates: []tls.Certificate{*client},
		RootCAs:      ca.Pool(),
		ServerName:   "executor.internal",
		MinVersion:   tls.VersionTLS13,
	}
	peer, err := handshake(serverConf, clientConf)
	if err != nil {
		t.Fatalf("mTLS handshake: %v", err)
	}
	if len(peer.URIs) != 1 || peer.URIs[0].String() != spiffe.String() {
		t.Errorf("server saw client URIs %v, want %s", peer.URIs, spiffe)
	}

	clientConf.ServerName = "someone-else.internal"
	if _, err := handshake(serverConf, clientConf); err == nil {
		t.Error("handshake succeeded for a name the server certificate does not carry")
	}

	// UsageBoth serves either side.
	_, _, both, err := ca.Issue(IssueRequest{DNSNames: []string{"both.internal"}, Usage: UsageBoth})
	if err != nil {
		t.Fatal(err)
	}
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := both.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
			t.Errorf("UsageBoth certificate does not verify for %v: %v", eku, err)
		}
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "bad")
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]IssueRequest{
		"no names":          {},
		"unknown usage":     {DNSNames: []string{"a.example"}, Usage: Usage(42)},
		"negative validity": {DNSNames: []string{"a.example"}, ValidFor: -time.Hour},
	} {
		if _, _, _, err := ca.Issue(req); err == nil {
			t.Errorf("%s: Issue succeeded", name)
		}
	}
}

// handshake runs a TLS handshake between the two configurations over a
// loopback TCP connection and returns the client certificate the server saw.
func handshake(serverConf, clientConf *tls.Config) (*x509.Certificate, error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConf)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	type result struct {
		peer *x509.Certificate
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		tlsConn := conn.(*tls.Conn)
		if err := tlsConn.Handshake(); err != nil {
			done <- result{nil, err}
			return
		}
		var peer *x509.Certificate
		if certs := tlsConn.ConnectionState().PeerCertificates; len(certs) > 0 {
			peer = certs[0]
		}
		done <- result{peer, nil}
	}()

	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, clientErr := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), clientConf)
	if clientErr == nil {
		// In TLS 1.3 the client finishes before the server has checked the
		// client certificate; wait for the server's verdict before closing.
		defer conn.Close()
	}
	res := <-done
	if clientErr != nil {
		return nil, fmt.Errorf("client: %w", clientErr)
	}
	if res.err != nil {
		return nil, fmt.Errorf("server: %w", res.err)
	}
	return res.peer, nil
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
