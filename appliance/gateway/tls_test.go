package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

func TestSNISelectsGatewayAndUnknownNamesAreRefused(t *testing.T) {
	e := newEnv(t)
	e.basic()
	dial := func(cfg *tls.Config) (*tls.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", e.addr(), cfg)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	for _, name := range []string{apiHost, otherHost} {
		c, err := dial(e.clientTLS(name, nil, "h2", "http/1.1"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("%s: ALPN %q", name, p)
		}
	}
	// Unknown name: no certificate at all, not another gateway's. The
	// client does not verify here, so any refusal is the gateway's.
	if _, err := dial(&tls.Config{ServerName: "unknown.test", InsecureSkipVerify: true}); err == nil {
		t.Fatal("handshake for an unknown name succeeded")
	}
	// No SNI at all.
	if _, err := dial(&tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("handshake without SNI succeeded")
	}
	// Old protocol versions and non-AEAD suites.
	if _, err := dial(&tls.Config{ServerName: apiHost, RootCAs: e.ca.Pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	if _, err := dial(&tls.Config{ServerName: apiHost, RootCAs: e.ca.Pool(), MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}); err == nil {
		t.Fatal("CBC suite accepted under TLS 1.2")
	}
	c, err := dial(&tls.Config{ServerName: apiHost, RootCAs: e.ca.Pool(), MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	if id := c.ConnectionState().CipherSuite; id != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 && id != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 && id != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Fatalf("TLS 1.2 suite %s", tls.CipherSuiteName(id))
	}
}

func TestMinimumVersionPerGateway(t *testing.T) {
	e := newEnv(t)
	g1 := e.gateway("g1", apiHost)
	g2 := e.gateway("g2", otherHost)
	g2.TLS.MinVersion = tls.VersionTLS13
	e.apply(&Runtime{Gateways: []*Gateway{g1, g2}})
	for name, ok := range map[string]bool{apiHost: true, otherHost: false} {
		cfg := e.clientTLS(name, nil)
		cfg.MaxVersion = tls.VersionTLS12
		c, err := tls.Dial("tcp", e.addr(), cfg)
		if (err == nil) != ok {
			t.Fatalf("TLS 1.2 to %s: %v", name, err)
		}
		if c != nil {
			c.Close()
		}
	}
}

func TestClientCertificateIsCheckedForTheRoutedGateway(t *testing.T) {
	e := newEnv(t)
	x := e.executor(nil)
	g1 := e.gateway("g1", apiHost)
	g1.TLS = e.serverTLS(tls.NoClientCert)
	g1.Connections = []*Connection{e.connection("c1", x.URL)}
	g2 := e.gateway("g2", otherHost)
	g2.TLS = e.serverTLS(tls.RequireAndVerifyClientCert)
	g2.Connections = []*Connection{e.connection("c2", x.URL)}
	e.apply(&Runtime{Revision: 1, Gateways: []*Gateway{g1, g2}})

	// g2 requires a certificate: the handshake fails without one.
	if resp, err := e.client(nil, true).Get("https://other.test/"); err == nil {
		resp.Body.Close()
		t.Fatalf("g2 without a client certificate: %d", resp.StatusCode)
	}
	// A connection made for g1 (which asks for no certificate) cannot
	// carry requests for g2.
	c := e.rawTLS(apiHost, e.planner)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("g2's host over g1's connection: %d", resp.StatusCode)
	}
	// g1 never asked for the certificate: it is no identity there.
	if resp, _ := get(t, e.client(e.planner, true), "https://api.test/"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("g1 with a certificate it did not ask for: %d", resp.StatusCode)
	}
	cl := e.client(e.planner, true)
	if resp, _ := get(t, cl, "https://other.test/"); resp.StatusCode != 200 {
		t.Fatalf("g2 with the planner's certificate: %d", resp.StatusCode)
	}

	// g2 now trusts another CA: the open connection's certificate no
	// longer holds there, and requests on it are misdirected (the client
	// must reconnect, and will be refused).
	other, err := pki.LoadOrCreateCA(t.TempDir(), "other CA")
	if err != nil {
		t.Fatal(err)
	}
	g2b := *g2
	tls2 := *g2.TLS
	tls2.ClientCAs = other.Pool()
	g2b.TLS = &tls2
	e.apply(&Runtime{Revision: 2, Gateways: []*Gateway{g1, &g2b}})
	if resp, _ := get(t, cl, "https://other.test/"); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("after a CA change: %d, want 421", resp.StatusCode)
	}
}

// anyNameCache is a client session cache that offers one gateway's ticket
// to another: what an attacker would try.
type anyNameCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *anyNameCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

func TestResumedSessionCannotCarryACertificateToAnotherGateway(t *testing.T) {
	e := newEnv(t)
	x := e.executor(nil)
	g1 := e.gateway("g1", apiHost)
	g2 := e.gateway("g2", otherHost)
	other, err := pki.LoadOrCreateCA(t.TempDir(), "other CA")
	if err != nil {
		t.Fatal(err)
	}
	g2.TLS.ClientCAs = other.Pool()
	g2.Connections = []*Connection{e.connection("c2", x.URL)}
	e.apply(&Runtime{Gateways: []*Gateway{g1, g2}})

	cache := &anyNameCache{}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := e.clientTLS(apiHost, e.planner, "http/1.1")
		cfg.ClientSessionCache, cfg.MaxVersion = cache, v
		c, err := tls.Dial("tcp", e.addr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 tickets arrive after the handshake: read to get them.
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
		if resp, err := http.ReadResponse(bufioReader(c), nil); err == nil {
			resp.Body.Close()
		}
		c.Close()

		cfg = e.clientTLS(otherHost, e.planner, "http/1.1")
		cfg.ClientSessionCache, cfg.MaxVersion = cache, v
		c, err = tls.Dial("tcp", e.addr(), cfg)
		if err != nil {
			continue // refused: fine
		}
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
		resp, err := http.ReadResponse(bufioReader(c), nil)
		c.Close()
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == 200 {
			t.Fatalf("TLS %x: a session resumed from g1 passed g2's client CA check (resumed=%v)", v, c.ConnectionState().DidResume)
		}
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("executor reached %d times", n)
	}
}

func TestACMETLSALPNGoesToTheCertificateSourceOnly(t *testing.T) {
	e := newEnv(t)
	x := e.executor(nil)
	_, _, challenge, err := e.ca.Issue(pki.IssueRequest{DNSNames: []string{apiHost}, CommonName: "acme challenge"})
	if err != nil {
		t.Fatal(err)
	}
	g := e.gateway("g1", apiHost)
	g.TLS = e.serverTLS(tls.RequireAndVerifyClientCert)
	g.TLS.NextProtos = []string{"acme-tls/1"}
	g.TLS.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		for _, p := range hello.SupportedProtos {
			if p == "acme-tls/1" {
				return challenge, nil
			}
		}
		return e.gwCert, nil
	}
	g.Connections = []*Connection{e.connection("c1", x.URL)}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	// The ACME validator has no client certificate and speaks no HTTP.
	c, err := tls.Dial("tcp", e.addr(), e.clientTLS(apiHost, nil, "acme-tls/1"))
	if err != nil {
		t.Fatalf("TLS-ALPN-01 handshake: %v", err)
	}
	defer c.Close()
	cs := c.ConnectionState()
	if cs.NegotiatedProtocol != "acme-tls/1" || cs.PeerCertificates[0].Subject.CommonName != "acme challenge" {
		t.Fatalf("ALPN %q, certificate %q", cs.NegotiatedProtocol, cs.PeerCertificates[0].Subject.CommonName)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("an acme-tls/1 connection got %q", b)
	}
	if len(x.requests()) != 0 {
		t.Fatal("an acme-tls/1 connection reached the executor")
	}
	// Regular clients still need their certificate.
	if resp, err := e.client(nil, true).Get("https://api.test/"); err == nil {
		resp.Body.Close()
		t.Fatal("no client certificate accepted")
	}
}

func TestBearerTokenIdentity(t *testing.T) {
	e := newEnv(t)
	idp, err := devidp.Start(t.Context(), devidp.Options{Clients: []devidp.Client{
		{ID: "ci-job", Secret: "ci-secret", Audience: []string{"sallyport"}},
		{ID: "elsewhere", Secret: "elsewhere-secret", Audience: []string{"another-service"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	verifier, err := identity.NewOIDCVerifier([]model.OIDCProvider{{
		IssuerURL: idp.Issuer(), Audiences: []string{"sallyport"}, CAPEM: string(idp.CACertPEM()),
	}}, identity.OIDCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := idp.IssueToken(t.Context(), "ci-job", "ci-secret")
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, err := idp.IssueToken(t.Context(), "elsewhere", "elsewhere-secret")
	if err != nil {
		t.Fatal(err)
	}
	x := e.executor(nil)
	c := e.connection("c1", x.URL)
	c.InjectHeaders = http.Header{"Authorization": {"Bearer executor-credential"}}
	b, err := identity.CompileBinding("b1", "ci", &model.IdentityBindingSpec{ConnectionID: "c1", Issuer: idp.Issuer(), Subject: "ci-job"})
	if err != nil {
		t.Fatal(err)
	}
	c.Bindings = []*identity.Binding{b}
	g := e.gateway("g1", apiHost)
	g.Tokens = verifier
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	cl := e.client(nil, true)
	do := func(auth string) reply {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://api.test/t", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return reply{StatusCode: resp.StatusCode, Header: resp.Header}
	}
	if resp := do("Bearer " + token); resp.StatusCode != 200 {
		t.Fatalf("good token: %d", resp.StatusCode)
	}
	if got := x.last(t).Header["Authorization"]; len(got) != 1 || got[0] != "Bearer executor-credential" {
		t.Fatalf("executor Authorization %q", got)
	}
	tampered := token[:len(token)-4] + "AAAA"
	for _, auth := range []string{"Bearer " + tampered, "Bearer " + wrongAud, "Bearer not-a-jwt", "bearer", "Basic Zm9vOmJhcg=="} {
		resp := do(auth)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Www-Authenticate") == "" {
			t.Fatalf("%.20q: %d", auth, resp.StatusCode)
		}
	}
	if len(x.requests()) != 1 {
		t.Fatal("a bad token reached the executor")
	}
	logs := e.logs.String()
	for _, s := range []string{token, tampered[len(tampered)-20:], wrongAud, "executor-credential"} {
		if strings.Contains(logs, s) {
			t.Fatalf("%.30q... in the logs", s)
		}
	}
	mustContain(t, logs, `"subject":"ci-job"`)
	mustContain(t, logs, `"reason":"invalid_token"`)
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
