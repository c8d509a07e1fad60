package certificates

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// waitServed waits until s is ready and addr serves a certificate for name
// that verifies against roots, and returns it.
func waitServed(t *testing.T, s *Serving, addr, name string, p *pebble) string {
	t.Helper()
	eventually(t, 30*time.Second, "certificate obtained", s.Ready)
	leaf, err := handshake(addr, name, p.roots)
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	st := s.Status()
	if st == nil {
		t.Fatal("Status is nil while ready")
	}
	if got := fingerprint(leaf); got != st.SHA256Fingerprint {
		t.Fatalf("served fingerprint %s, status says %s", got, st.SHA256Fingerprint)
	}
	if !leaf.NotAfter.Equal(st.NotAfter) {
		t.Errorf("status not_after %s, served %s", st.NotAfter, leaf.NotAfter)
	}
	if !slices.Contains(leaf.DNSNames, name) {
		t.Errorf("served certificate names %v, want %s", leaf.DNSNames, name)
	}
	return st.SHA256Fingerprint
}

// TestACMETLSALPNIssueRefuseRestart obtains a certificate over TLS-ALPN-01
// answered on the gateway's own listener, checks that only declared names
// are served, then restarts on the same data directory with the CA gone and
// serves the cached certificate.
func TestACMETLSALPNIssueRefuseRestart(t *testing.T) {
	t.Parallel()
	host := uniqueHost("alpn")
	dataDir := t.TempDir()
	gw := startGateway(t)
	p := startPebble(t, pebbleOptions{tlsPort: gw.port(), httpPort: refusingListener(t)})
	ctx := context.Background()

	m1, err := New(Config{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	req := ServingRequest{TLSSettingsID: "tls-alpn", Spec: p.spec(), Hostnames: []string{host}}
	s1, err := m1.Serving(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := s1.Ready(); ok || !strings.Contains(msg, "obtaining a certificate") || !strings.Contains(msg, p.dirURL) {
		t.Errorf("Ready before issuance = %v, %q", ok, msg)
	}
	if s1.HTTPChallenge != nil {
		t.Error("HTTPChallenge is set without http_challenge_addr")
	}
	if !slices.Contains(s1.NextProtos, "acme-tls/1") {
		t.Errorf("NextProtos = %v, want acme-tls/1", s1.NextProtos)
	}
	gw.serving.Store(s1)
	fp := waitServed(t, s1, gw.ln.Addr().String(), host, p)
	if st := s1.Status(); !strings.Contains(st.Issuer, "Pebble Intermediate CA") {
		t.Errorf("issuer %q, want Pebble's intermediate", st.Issuer)
	}

	// Identical requests share one managed certificate.
	s1b, err := m1.Serving(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if st := s1b.Status(); st == nil || st.SHA256Fingerprint != fp {
		t.Errorf("a second identical Serving reports %+v, want fingerprint %s", st, fp)
	}
	s1b.Close()

	t.Run("undeclared names are refused", func(t *testing.T) {
		// The gateway refuses (an alert), rather than serve a certificate
		// the client would then reject.
		if _, err := handshake(gw.ln.Addr().String(), "other.sallyport.test", p.roots); err == nil || !strings.Contains(err.Error(), "remote error") {
			t.Errorf("handshake for an undeclared name: %v, want the server's refusal", err)
		}
		if _, err := s1.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
			t.Error("GetCertificate without SNI succeeded")
		}
		if _, err := s1.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.sallyport.test", SupportedProtos: []string{"acme-tls/1"}}); err == nil {
			t.Error("a TLS-ALPN challenge handshake for an undeclared name succeeded")
		}
	})

	// Restart without the CA: the cached certificate is served at once.
	s1.Close()
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	p.srv.Close()
	m2 := newManager(t, dataDir, Config{})
	s2, err := m2.Serving(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := s2.Ready(); !ok {
		t.Fatalf("after restart Ready = false, %q; want the cached certificate at once", msg)
	}
	gw.serving.Store(s2)
	leaf, err := handshake(gw.ln.Addr().String(), host, p.roots)
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(leaf); got != fp {
		t.Errorf("after restart served %s, want the cached %s", got, fp)
	}
	if st := s2.Status(); st == nil || st.SHA256Fingerprint != fp {
		t.Errorf("after restart status %+v, want fingerprint %s", st, fp)
	}

	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Serving(ctx, ServingRequest{TLSSettingsID: "x", Spec: p.spec(), Hostnames: []string{"new.sallyport.test"}}); err == nil {
		t.Error("Serving after Close succeeded")
	}
}

// TestACMEHTTP01 obtains a certificate over HTTP-01 answered by
// Serving.HTTPChallenge. Pebble's TLS-ALPN-01 port refuses connections, so
// the certificate can only come from HTTP-01.
func TestACMEHTTP01(t *testing.T) {
	t.Parallel()
	host := uniqueHost("http01")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var serving atomic.Pointer[Serving]
	var answered atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := serving.Load()
			if s == nil || s.HTTPChallenge == nil {
				http.NotFound(w, r)
				return
			}
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			s.HTTPChallenge.ServeHTTP(rec, r)
			if rec.status == http.StatusOK && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				answered.Add(1)
			}
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	gw := startGateway(t)
	p := startPebble(t, pebbleOptions{tlsPort: refusingListener(t), httpPort: ln.Addr().(*net.TCPAddr).Port})
	spec := p.spec()
	spec.Certificate.ACME.HTTPChallengeAddr = ln.Addr().String()

	m := newManager(t, t.TempDir(), Config{})
	s, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "tls-http", Spec: spec, Hostnames: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPChallenge == nil {
		t.Fatal("HTTPChallenge is nil with http_challenge_addr set")
	}
	serving.Store(s)
	gw.serving.Store(s)
	waitServed(t, s, gw.ln.Addr().String(), host, p)
	if answered.Load() == 0 {
		t.Error("the certificate was issued without an HTTP-01 challenge answered by HTTPChallenge")
	}

	// The handler answers nothing but challenges for declared names.
	for _, target := range []string{"http://" + host + "/", "http://other.sallyport.test/.well-known/acme-challenge/abc"} {
		resp, err := http.DefaultClient.Do(mustRequest(t, ln.Addr().String(), target))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, resp.StatusCode)
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// mustRequest builds a GET for target sent to addr.
func mustRequest(t *testing.T, addr, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	host := req.URL.Host
	req.URL.Host = addr
	req.Host = host
	return req
}

// TestACMERenewalAndCAOutage issues short-lived certificates, sees certmagic
// replace the served one, then stops the CA and sees the still-valid
// certificate kept in service while renewal fails.
func TestACMERenewalAndCAOutage(t *testing.T) {
	t.Parallel()
	host := uniqueHost("renew")
	gw := startGateway(t)
	p := startPebble(t, pebbleOptions{tlsPort: gw.port(), httpPort: refusingListener(t), validity: 30 * time.Second})
	// Renew after a fifth of the 30s lifetime, checking twice a second.
	m := newManager(t, t.TempDir(), Config{RenewalWindowRatio: 0.8, RenewCheckInterval: 500 * time.Millisecond})
	s, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "tls-renew", Spec: p.spec(), Hostnames: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	gw.serving.Store(s)
	addr := gw.ln.Addr().String()
	first := waitServed(t, s, addr, host, p)

	var renewed string
	eventually(t, 25*time.Second, "renewed certificate served", func() (bool, string) {
		leaf, err := handshake(addr, host, p.roots)
		if err != nil {
			return false, err.Error()
		}
		renewed = fingerprint(leaf)
		return renewed != first, "still serving " + first
	})
	if st := s.Status(); st == nil {
		t.Fatal("no status after renewal")
	}

	p.srv.Close()
	eventually(t, 25*time.Second, "renewal failure reported", func() (bool, string) {
		ok, msg := s.Ready()
		return ok && strings.Contains(msg, "renewing it from "+p.dirURL+" failed"), fmt.Sprintf("Ready = %v, %q", ok, msg)
	})
	leaf, err := handshake(addr, host, p.roots)
	if err != nil {
		t.Fatalf("with the CA down the certificate is no longer served: %v", err)
	}
	if time.Now().After(leaf.NotAfter) {
		t.Errorf("served an expired certificate (not after %s)", leaf.NotAfter)
	}
	if st := s.Status(); st == nil || st.SHA256Fingerprint != fingerprint(leaf) {
		t.Errorf("status %+v does not describe the served certificate %s", st, fingerprint(leaf))
	}
}

// TestACMEExternalAccountBinding registers with a CA that requires EAB.
func TestACMEExternalAccountBinding(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	good := base64.RawURLEncoding.EncodeToString(key)
	key[0] ^= 0xff
	wrong := base64.RawURLEncoding.EncodeToString(key)

	run := func(t *testing.T, host, hmac string) (*Serving, *gateway, *pebble) {
		gw := startGateway(t)
		p := startPebble(t, pebbleOptions{tlsPort: gw.port(), httpPort: refusingListener(t), eab: map[string]string{"kid-1": good}})
		spec := p.spec()
		spec.Certificate.ACME.EABKeyID = "kid-1"
		spec.Certificate.ACME.EABHMAC = &model.Secret{}
		m := newManager(t, t.TempDir(), Config{})
		s, err := m.Serving(context.Background(), ServingRequest{
			TLSSettingsID: "tls-eab",
			Spec:          spec,
			Secret:        secrets(map[string]string{model.PathEABHMAC: hmac}),
			Hostnames:     []string{host},
		})
		if err != nil {
			t.Fatal(err)
		}
		gw.serving.Store(s)
		return s, gw, p
	}

	t.Run("right HMAC", func(t *testing.T) {
		t.Parallel()
		host := uniqueHost("eab-good")
		// Padded base64url, as some CAs hand it out, works too.
		s, gw, p := run(t, host, good+"=")
		waitServed(t, s, gw.ln.Addr().String(), host, p)
	})
	t.Run("wrong HMAC", func(t *testing.T) {
		t.Parallel()
		host := uniqueHost("eab-wrong")
		s, gw, p := run(t, host, wrong)
		eventually(t, 30*time.Second, "failure reported", func() (bool, string) {
			ok, msg := s.Ready()
			return !ok && strings.Contains(msg, "failed"), fmt.Sprintf("Ready = %v, %q", ok, msg)
		})
		if st := s.Status(); st != nil {
			t.Errorf("status %+v without a certificate", st)
		}
		if _, err := handshake(gw.ln.Addr().String(), host, p.roots); err == nil {
			t.Error("a certificate is served although account registration failed")
		}
	})
	t.Run("HMAC missing", func(t *testing.T) {
		t.Parallel()
		spec := (&pebble{dirURL: "https://127.0.0.1:1/dir"}).spec()
		spec.Certificate.ACME.EABKeyID = "kid-1"
		m := newManager(t, t.TempDir(), Config{})
		_, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "t", Spec: spec, Secret: secrets(nil), Hostnames: []string{"x.sallyport.test"}})
		if err == nil || !strings.Contains(err.Error(), model.PathEABHMAC) {
			t.Errorf("err = %v, want one naming %s", err, model.PathEABHMAC)
		}
	})
}

func TestACMERejectsWildcards(t *testing.T) {
	t.Parallel()
	m := newManager(t, t.TempDir(), Config{})
	spec := (&pebble{dirURL: "https://127.0.0.1:1/dir"}).spec()
	_, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "t", Spec: spec, Hostnames: []string{"a.sallyport.test", "*.sallyport.test"}})
	if err == nil || !strings.Contains(err.Error(), "DNS-01") || !strings.Contains(err.Error(), "*.sallyport.test") {
		t.Errorf("err = %v, want a wildcard/DNS-01 refusal", err)
	}
}

// TestManagerCloseQuiesces checks that nothing writes to the data directory
// after Close while an issuance is failing and retrying.
func TestManagerCloseQuiesces(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	m, err := New(Config{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	spec := (&pebble{dirURL: "https://127.0.0.1:1/dir"}).spec() // nothing listens there
	s, err := m.Serving(context.Background(), ServingRequest{TLSSettingsID: "t", Spec: spec, Hostnames: []string{"quiet.sallyport.test"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "failure reported", func() (bool, string) {
		ok, msg := s.Ready()
		return !ok && strings.Contains(msg, "failed"), msg
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.storage.Load(context.Background(), "anything"); err == nil {
		t.Error("storage still usable after Close")
	}
}

// TestACMESharedUnits checks that identical requests, even concurrent ones,
// share one managed unit, released with the last Close.
func TestACMESharedUnits(t *testing.T) {
	t.Parallel()
	m := newManager(t, t.TempDir(), Config{})
	spec := (&pebble{dirURL: "https://127.0.0.1:1/dir"}).spec()
	req := ServingRequest{TLSSettingsID: "t", Spec: spec, Hostnames: []string{uniqueHost("shared")}}
	const n = 8
	servings := make([]*Serving, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := m.Serving(context.Background(), req)
			servings[i] = s
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	units := func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.units)
	}
	if got := units(); got != 1 {
		t.Fatalf("%d units for identical requests, want 1", got)
	}
	for _, s := range servings[1:] {
		s.Close()
		s.Close() // idempotent: must not drop another holder's reference
	}
	if got := units(); got != 1 {
		t.Fatalf("%d units while one Serving is open, want 1", got)
	}
	servings[0].Close()
	if got := units(); got != 0 {
		t.Fatalf("%d units after the last Close, want 0", got)
	}
}
