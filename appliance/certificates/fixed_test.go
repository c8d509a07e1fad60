package certificates

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/atomicfile"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

func selfSignedSpec() *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{Certificate: model.CertificateSpec{Source: model.SourceSelfSigned}}
}

// TestSelfSigned serves certificates from the internal CA and keeps their
// fingerprints stable across reconciliations and restarts.
func TestSelfSigned(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	ca := internalCA(t, dataDir)
	hosts := []string{"b.sallyport.test", "a.sallyport.test", "*.wild.sallyport.test"}
	req := ServingRequest{TLSSettingsID: "tls-self", Spec: selfSignedSpec(), Hostnames: hosts}
	ctx := context.Background()

	m1 := newManager(t, dataDir, Config{InternalCA: ca})
	s1, err := m1.Serving(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := s1.Ready(); !ok {
		t.Fatalf("Ready = false, %q", msg)
	}
	if s1.NextProtos != nil || s1.HTTPChallenge != nil {
		t.Error("self-signed serving asks for ACME challenges")
	}
	gw := startGateway(t)
	gw.serving.Store(s1)
	var fp string
	for _, name := range []string{"a.sallyport.test", "b.sallyport.test", "x.wild.sallyport.test"} {
		leaf, err := handshake(gw.ln.Addr().String(), name, ca.Pool())
		if err != nil {
			t.Fatalf("handshake for %s: %v", name, err)
		}
		if fp == "" {
			fp = fingerprint(leaf)
		} else if fingerprint(leaf) != fp {
			t.Errorf("%s served another certificate", name)
		}
	}
	st := s1.Status()
	if st == nil || st.SHA256Fingerprint != fp {
		t.Fatalf("status %+v, served %s", st, fp)
	}
	if !strings.Contains(st.Issuer, "internal-ca") {
		t.Errorf("issuer %q, want the internal CA", st.Issuer)
	}
	if remaining := time.Until(st.NotAfter); remaining < 300*24*time.Hour {
		t.Errorf("a new self-signed certificate is valid for only %s", remaining)
	}
	for _, name := range []string{"other.sallyport.test", "x.y.wild.sallyport.test", "wild.sallyport.test"} {
		if _, err := handshake(gw.ln.Addr().String(), name, ca.Pool()); err == nil || !strings.Contains(err.Error(), "remote error") {
			t.Errorf("handshake for undeclared %s: %v, want the server's refusal", name, err)
		}
	}

	// Key file private, ECDSA P-256.
	keys, _ := filepath.Glob(filepath.Join(dataDir, "selfsigned", "tls-self-*-key.pem"))
	if len(keys) != 1 {
		t.Fatalf("key files: %v", keys)
	}
	if info, err := os.Stat(keys[0]); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", info.Mode(), err)
	}
	leaf, _ := handshake(gw.ln.Addr().String(), "a.sallyport.test", ca.Pool())
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %s, want ECDSA", leaf.PublicKeyAlgorithm)
	}

	// Same names in another order, and after a restart: same certificate.
	again, err := m1.Serving(ctx, ServingRequest{TLSSettingsID: "tls-self", Spec: selfSignedSpec(), Hostnames: []string{"a.sallyport.test", "*.wild.sallyport.test", "b.sallyport.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Status().SHA256Fingerprint; got != fp {
		t.Errorf("second Serving: %s, want %s", got, fp)
	}
	m2 := newManager(t, dataDir, Config{InternalCA: internalCA(t, dataDir)})
	s2, err := m2.Serving(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Status().SHA256Fingerprint; got != fp {
		t.Errorf("after restart: %s, want %s", got, fp)
	}

	// Other names: another certificate.
	s3, err := m2.Serving(ctx, ServingRequest{TLSSettingsID: "tls-self", Spec: selfSignedSpec(), Hostnames: []string{"a.sallyport.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if s3.Status().SHA256Fingerprint == fp {
		t.Error("different hostnames got the same certificate")
	}
}

// TestSelfSignedReplacement replaces a persisted certificate that is close
// to expiry or from another CA.
func TestSelfSignedReplacement(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	ca := internalCA(t, dataDir)
	req := ServingRequest{TLSSettingsID: "tls-rot", Spec: selfSignedSpec(), Hostnames: []string{"rot.sallyport.test"}}
	m := newManager(t, dataDir, Config{InternalCA: ca})
	s, err := m.Serving(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Status().SHA256Fingerprint
	certs, _ := filepath.Glob(filepath.Join(dataDir, "selfsigned", "tls-rot-*[0-9a-f].pem"))
	if len(certs) != 1 {
		t.Fatalf("certificate files: %v", certs)
	}
	certPath := certs[0]
	keyPath := strings.TrimSuffix(certPath, ".pem") + "-key.pem"

	overwrite := func(ca *pki.CA, validFor time.Duration) string {
		certPEM, keyPEM, c, err := ca.Issue(pki.IssueRequest{DNSNames: []string{"rot.sallyport.test"}, ValidFor: validFor})
		if err != nil {
			t.Fatal(err)
		}
		if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := atomicfile.Write(certPath, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		return fingerprint(c.Leaf)
	}

	t.Run("close to expiry", func(t *testing.T) {
		old := overwrite(ca, 10*24*time.Hour)
		s, err := m.Serving(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		st := s.Status()
		if st.SHA256Fingerprint == old || st.SHA256Fingerprint == first {
			t.Errorf("a certificate 10 days from expiry was reused")
		}
		if time.Until(st.NotAfter) < 300*24*time.Hour {
			t.Errorf("replacement valid until %s", st.NotAfter)
		}
	})
	t.Run("another CA", func(t *testing.T) {
		other := internalCA(t, t.TempDir())
		old := overwrite(other, 0)
		s, err := m.Serving(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status().SHA256Fingerprint == old {
			t.Error("a certificate from another CA was reused")
		}
		c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "rot.sallyport.test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "rot.sallyport.test"}); err != nil {
			t.Errorf("replacement does not verify against the internal CA: %v", err)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		s, err := m.Serving(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		current := s.Status().SHA256Fingerprint
		if err := os.Chmod(keyPath, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err = m.Serving(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status().SHA256Fingerprint == current {
			t.Error("a certificate whose key others could read was reused")
		}
	})
}

func TestSelfSignedNeedsCA(t *testing.T) {
	t.Parallel()
	m := newManager(t, t.TempDir(), Config{})
	_, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "t", Spec: selfSignedSpec(), Hostnames: []string{"a.sallyport.test"}})
	if err == nil || !strings.Contains(err.Error(), "internal CA") {
		t.Errorf("err = %v", err)
	}
	_, err = newManager(t, t.TempDir(), Config{InternalCA: internalCA(t, t.TempDir())}).Serving(context.Background(),
		ServingRequest{TLSSettingsID: "../escape", Spec: selfSignedSpec(), Hostnames: []string{"a.sallyport.test"}})
	if err == nil {
		t.Error("an id with a path separator named a file")
	}
}

// staticPair issues a chain and key from a fresh CA.
func staticPair(t *testing.T, names ...string) (ca *pki.CA, certPEM, keyPEM string) {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), "operator-ca")
	if err != nil {
		t.Fatal(err)
	}
	c, k, _, err := ca.Issue(pki.IssueRequest{DNSNames: names, Usage: pki.UsageBoth})
	if err != nil {
		t.Fatal(err)
	}
	return ca, string(c), string(k)
}

func staticSpec(certPEM string) *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{Certificate: model.CertificateSpec{
		Source: model.SourceStatic,
		Static: &model.StaticCertificateSpec{CertPEM: certPEM, KeyPEM: &model.Secret{}},
	}}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	ca, certPEM, keyPEM := staticPair(t, "static.sallyport.test", "*.static.sallyport.test")
	m := newManager(t, t.TempDir(), Config{})
	ctx := context.Background()
	req := ServingRequest{
		TLSSettingsID: "tls-static",
		Spec:          staticSpec(certPEM),
		Secret:        secrets(map[string]string{model.PathKeyPEM: keyPEM}),
		Hostnames:     []string{"static.sallyport.test", "*.static.sallyport.test"},
	}
	s, err := m.Serving(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := s.Ready(); !ok {
		t.Fatalf("Ready = false, %q", msg)
	}
	gw := startGateway(t)
	gw.serving.Store(s)
	leaf, err := handshake(gw.ln.Addr().String(), "api.static.sallyport.test", ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := pki.FingerprintPEM([]byte(certPEM))
	if got := fingerprint(leaf); got != want || s.Status().SHA256Fingerprint != want {
		t.Errorf("served %s, status %s, want %s", got, s.Status().SHA256Fingerprint, want)
	}
	if _, err := handshake(gw.ln.Addr().String(), "other.sallyport.test", ca.Pool()); err == nil || !strings.Contains(err.Error(), "remote error") {
		t.Errorf("handshake for an undeclared name: %v, want the server's refusal", err)
	}

	t.Run("hostname not covered", func(t *testing.T) {
		r := req
		r.Hostnames = []string{"static.sallyport.test", "elsewhere.sallyport.test"}
		if _, err := m.Serving(ctx, r); err == nil || !strings.Contains(err.Error(), "elsewhere.sallyport.test") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("key of another certificate", func(t *testing.T) {
		_, _, otherKey := staticPair(t, "static.sallyport.test")
		r := req
		r.Secret = secrets(map[string]string{model.PathKeyPEM: otherKey})
		if _, err := m.Serving(ctx, r); err == nil || !strings.Contains(err.Error(), "key_pem") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("key missing", func(t *testing.T) {
		r := req
		r.Secret = secrets(nil)
		if _, err := m.Serving(ctx, r); err == nil || !strings.Contains(err.Error(), model.PathKeyPEM) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		c, k, _, err := ca.Issue(pki.IssueRequest{DNSNames: []string{"static.sallyport.test"}, ValidFor: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r := ServingRequest{TLSSettingsID: "t", Spec: staticSpec(string(c)), Secret: secrets(map[string]string{model.PathKeyPEM: string(k)}), Hostnames: []string{"static.sallyport.test"}}
		s, err := m.Serving(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "expiry reported", func() (bool, string) {
			ok, msg := s.Ready()
			return !ok && strings.Contains(msg, "expired"), msg
		})
	})
}

func TestSourceNone(t *testing.T) {
	t.Parallel()
	m := newManager(t, t.TempDir(), Config{})
	spec := &model.TLSSettingsSpec{Certificate: model.CertificateSpec{Source: model.SourceNone}}
	if _, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "t", Spec: spec, Hostnames: []string{"a.sallyport.test"}}); err == nil {
		t.Error(`source "none" served`)
	}
	if _, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "t", Spec: selfSignedSpec()}); err == nil {
		t.Error("no hostnames served")
	}
}
