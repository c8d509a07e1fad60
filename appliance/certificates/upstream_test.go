package certificates

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

const executorName = "executor.sallyport.test"

// executor is a TLS server on 127.0.0.1 that says "ok\n" after a
// successful handshake and remembers the client certificate it verified.
type executor struct {
	addr string
	peer atomic.Pointer[x509.Certificate]
}

func startExecutor(t *testing.T, cfg *tls.Config) *executor {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &executor{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				if peers := tc.ConnectionState().PeerCertificates; len(peers) > 0 {
					e.peer.Store(peers[0])
				}
				_, _ = io.WriteString(tc, "ok\n")
			})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return e
}

// dial connects with cfg and waits for the executor's "ok", so that a
// refusal by the server (of the client certificate) surfaces too.
func (e *executor) dial(cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.(*tls.Conn).ConnectionState(), nil
}

// executorPKI is the executor's CA and a server certificate from it.
func executorPKI(t *testing.T) (*pki.CA, tls.Certificate) {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), "executor-ca")
	if err != nil {
		t.Fatal(err)
	}
	_, _, cert, err := ca.Issue(pki.IssueRequest{DNSNames: []string{executorName}, Usage: pki.UsageServer})
	if err != nil {
		t.Fatal(err)
	}
	return ca, *cert
}

func upstreamSpec(source string, peerCA *pki.CA) *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{
		MinVersion:  model.TLS12,
		Certificate: model.CertificateSpec{Source: source},
		PeerCAPEM:   string(peerCA.CertPEM()),
		ServerName:  executorName,
	}
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func TestUpstreamSelfSignedMTLS(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	internal := internalCA(t, dataDir)
	exCA, exCert := executorPKI(t)
	ex := startExecutor(t, &tls.Config{
		Certificates: []tls.Certificate{exCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    internal.Pool(),
	})
	m := newManager(t, dataDir, Config{InternalCA: internal})
	req := UpstreamRequest{TLSSettingsID: "conn-tls", Spec: upstreamSpec(model.SourceSelfSigned, exCA), ServerName: "127.0.0.1"}
	cfg, err := m.Upstream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InsecureSkipVerify {
		t.Fatal("InsecureSkipVerify set")
	}
	if cfg.ServerName != executorName {
		t.Errorf("ServerName %q, want the server_name override %q", cfg.ServerName, executorName)
	}
	if _, err := ex.dial(cfg); err != nil {
		t.Fatalf("mTLS dial: %v", err)
	}
	peer := ex.peer.Load()
	if peer == nil || len(peer.URIs) != 1 || peer.URIs[0].String() != "spiffe://sallyport/tls-settings/conn-tls" {
		t.Fatalf("executor saw client certificate %+v", peer)
	}
	first := fingerprint(peer)

	// Stable across calls and restarts.
	m2 := newManager(t, dataDir, Config{InternalCA: internalCA(t, dataDir)})
	cfg2, err := m2.Upstream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.dial(cfg2); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(ex.peer.Load()); got != first {
		t.Errorf("client certificate changed across restarts: %s, then %s", first, got)
	}
}

func TestUpstreamStaticMTLS(t *testing.T) {
	t.Parallel()
	clientCA, certPEM, keyPEM := staticPair(t, "planner.sallyport.test")
	exCA, exCert := executorPKI(t)
	ex := startExecutor(t, &tls.Config{
		Certificates: []tls.Certificate{exCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA.Pool(),
	})
	m := newManager(t, t.TempDir(), Config{})
	spec := upstreamSpec(model.SourceStatic, exCA)
	spec.Certificate.Static = &model.StaticCertificateSpec{CertPEM: certPEM, KeyPEM: &model.Secret{}}
	cfg, err := m.Upstream(context.Background(), UpstreamRequest{
		TLSSettingsID: "conn-static",
		Spec:          spec,
		Secret:        secrets(map[string]string{model.PathKeyPEM: keyPEM}),
		ServerName:    "127.0.0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.dial(cfg); err != nil {
		t.Fatalf("mTLS dial: %v", err)
	}
	want, _ := pki.FingerprintPEM([]byte(certPEM))
	if got := fingerprint(ex.peer.Load()); got != want {
		t.Errorf("executor saw %s, want the static certificate %s", got, want)
	}
}

func TestUpstreamVerification(t *testing.T) {
	t.Parallel()
	exCA, exCert := executorPKI(t)
	otherCA, _ := executorPKI(t)
	ex := startExecutor(t, &tls.Config{Certificates: []tls.Certificate{exCert}})
	m := newManager(t, t.TempDir(), Config{})
	ctx := context.Background()
	upstream := func(t *testing.T, req UpstreamRequest) *tls.Config {
		t.Helper()
		cfg, err := m.Upstream(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	t.Run("peer CA", func(t *testing.T) {
		cfg := upstream(t, UpstreamRequest{TLSSettingsID: "c", Spec: upstreamSpec(model.SourceNone, exCA), ServerName: "ignored.sallyport.test"})
		if cfg.Certificates != nil || cfg.GetClientCertificate != nil {
			t.Error(`source "none" presents a client certificate`)
		}
		if _, err := ex.dial(cfg); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		cfg := upstream(t, UpstreamRequest{TLSSettingsID: "c", Spec: upstreamSpec(model.SourceNone, otherCA)})
		if _, err := ex.dial(cfg); !isUnknownAuthority(err) {
			t.Errorf("err = %v, want an unknown-authority failure", err)
		}
	})
	t.Run("wrong name", func(t *testing.T) {
		spec := upstreamSpec(model.SourceNone, exCA)
		spec.ServerName = ""
		cfg := upstream(t, UpstreamRequest{TLSSettingsID: "c", Spec: spec, ServerName: "127.0.0.1"})
		var host x509.HostnameError
		if _, err := ex.dial(cfg); !errors.As(err, &host) {
			t.Errorf("err = %v, want a hostname mismatch", err)
		}
	})
	t.Run("no spec: system roots", func(t *testing.T) {
		cfg := upstream(t, UpstreamRequest{ServerName: executorName})
		if cfg.RootCAs != nil || cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("RootCAs %v MinVersion %x, want system roots and TLS 1.2", cfg.RootCAs, cfg.MinVersion)
		}
		if _, err := ex.dial(cfg); !isUnknownAuthority(err) {
			t.Errorf("err = %v, want an unknown-authority failure against the system roots", err)
		}
	})
	t.Run("no server name", func(t *testing.T) {
		if _, err := m.Upstream(ctx, UpstreamRequest{TLSSettingsID: "c"}); err == nil {
			t.Error("a config without a name to verify was returned")
		}
	})
	t.Run("ACME source presents no client certificate", func(t *testing.T) {
		spec := upstreamSpec(model.SourceACME, exCA)
		spec.Certificate.ACME = &model.ACMESpec{DirectoryURL: "https://ca.sallyport.test/dir"}
		cfg := upstream(t, UpstreamRequest{TLSSettingsID: "c", Spec: spec})
		if cfg.Certificates != nil || cfg.GetClientCertificate != nil {
			t.Error("a client certificate is configured")
		}
	})
}

func TestUpstreamProtocolPolicy(t *testing.T) {
	t.Parallel()
	exCA, exCert := executorPKI(t)
	m := newManager(t, t.TempDir(), Config{})
	tls12Only := startExecutor(t, &tls.Config{Certificates: []tls.Certificate{exCert}, MaxVersion: tls.VersionTLS12})
	cbcOnly := startExecutor(t, &tls.Config{
		Certificates: []tls.Certificate{exCert},
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA},
	})

	spec := upstreamSpec(model.SourceNone, exCA)
	cfg12, err := m.Upstream(context.Background(), UpstreamRequest{TLSSettingsID: "c", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tls12Only.dial(cfg12)
	if err != nil {
		t.Fatalf("TLS 1.2 with a 1.2 floor: %v", err)
	}
	if st.Version != tls.VersionTLS12 || !slices.Contains(ServerCipherSuites(), st.CipherSuite) {
		t.Errorf("negotiated %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if _, err := cbcOnly.dial(cfg12); err == nil {
		t.Error("a CBC-only executor was accepted")
	}

	spec13 := upstreamSpec(model.SourceNone, exCA)
	spec13.MinVersion = model.TLS13
	cfg13, err := m.Upstream(context.Background(), UpstreamRequest{TLSSettingsID: "c", Spec: spec13})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls12Only.dial(cfg13); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("TLS 1.2 executor with a 1.3 floor: err = %v, want a protocol version failure", err)
	}
}

// TestConfigureServer checks the serving-side policy with real handshakes.
func TestConfigureServer(t *testing.T) {
	t.Parallel()
	ca, cert := executorPKI(t)
	serve := func(minVersion uint16) *executor {
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		ConfigureServer(cfg, minVersion)
		return startExecutor(t, cfg)
	}
	s12, s13 := serve(tls.VersionTLS12), serve(tls.VersionTLS13)
	client := func(maxVersion uint16, suites []uint16) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), ServerName: executorName, MaxVersion: maxVersion, CipherSuites: suites}
	}
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}
	if _, err := s12.dial(client(tls.VersionTLS12, cbc)); err == nil {
		t.Error("TLS 1.2 with CBC suites accepted")
	}
	if _, err := s12.dial(client(tls.VersionTLS11, nil)); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if st, err := s12.dial(client(tls.VersionTLS12, nil)); err != nil || st.Version != tls.VersionTLS12 {
		t.Errorf("TLS 1.2 with AEAD: %v", err)
	}
	if _, err := s13.dial(client(tls.VersionTLS12, nil)); err == nil {
		t.Error("TLS 1.2 accepted with a 1.3 floor")
	}
	if st, err := s13.dial(client(0, nil)); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3: %v", err)
	}
}

func TestParseMinVersionAndClientAuth(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		if got, err := ParseMinVersion(in); err != nil || got != want {
			t.Errorf("ParseMinVersion(%q) = %x, %v", in, got, err)
		}
	}
	if _, err := ParseMinVersion("1.1"); err == nil {
		t.Error("ParseMinVersion(1.1) succeeded")
	}

	ca, _ := executorPKI(t)
	for policy, want := range map[string]tls.ClientAuthType{
		model.ClientAuthNone:     tls.NoClientCert,
		model.ClientAuthOptional: tls.VerifyClientCertIfGiven,
		model.ClientAuthRequire:  tls.RequireAndVerifyClientCert,
	} {
		got, pool, err := ClientAuth(&model.TLSSettingsSpec{ClientAuth: policy, PeerCAPEM: string(ca.CertPEM())})
		if err != nil || got != want || (policy != model.ClientAuthNone) != (pool != nil) {
			t.Errorf("ClientAuth(%s) = %v, %v, %v", policy, got, pool, err)
		}
	}
	if _, _, err := ClientAuth(&model.TLSSettingsSpec{ClientAuth: model.ClientAuthRequire}); err == nil {
		t.Error("require without peer_ca_pem accepted")
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	ca, cert := executorPKI(t)
	st := StatusOf(cert.Leaf)
	if st.SHA256Fingerprint != pki.Fingerprint(cert.Leaf) || len(st.SHA256Fingerprint) != 64 || strings.ToLower(st.SHA256Fingerprint) != st.SHA256Fingerprint {
		t.Errorf("fingerprint %q", st.SHA256Fingerprint)
	}
	if st.Subject != cert.Leaf.Subject.String() || st.Issuer != ca.Certificate().Subject.String() || !st.NotAfter.Equal(cert.Leaf.NotAfter) {
		t.Errorf("status %+v", st)
	}
	noSubject := &x509.Certificate{Raw: []byte{1}, DNSNames: []string{"a.test", "b.test"}}
	if got := StatusOf(noSubject).Subject; got != "DNS:a.test, DNS:b.test" {
		t.Errorf("subject of a subjectless certificate: %q", got)
	}
	if StatusOf(nil) != nil {
		t.Error("StatusOf(nil) != nil")
	}
}
