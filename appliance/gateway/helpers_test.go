package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// Names the test gateways serve. They resolve nowhere: clients dial the
// listener's loopback address and send these as SNI and Host.
const (
	apiHost    = "api.test"
	otherHost  = "other.test"
	dbHost     = "db.test"
	plannerID  = "spiffe://sallyport.test/planner"
	strangerID = "spiffe://sallyport.test/stranger"
	secretKey  = "s3cr3t-injected-value"
)

// env is one test's world: a CA, a gateway server and what it needs.
type env struct {
	t        testing.TB
	ca       *pki.CA
	srv      *Server
	reg      *prometheus.Registry
	logs     *syncBuffer
	gwCert   *tls.Certificate
	planner  *tls.Certificate // client certificate with plannerID
	stranger *tls.Certificate // client certificate with strangerID
	upTLS    *tls.Config      // verifies executors
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), "Sallyport gateway test CA")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	_, _, e.gwCert, err = ca.Issue(pki.IssueRequest{DNSNames: []string{apiHost, otherHost, dbHost, "*.wild.test"}})
	if err != nil {
		t.Fatal(err)
	}
	e.planner = e.clientCert(plannerID)
	e.stranger = e.clientCert(strangerID)
	e.upTLS = &tls.Config{RootCAs: ca.Pool()}
	o := Options{
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: e.reg,
	}
	for _, f := range opts {
		f(&o)
	}
	e.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway logs:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *env) clientCert(uri string) *tls.Certificate {
	e.t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _, c, err := e.ca.Issue(pki.IssueRequest{CommonName: "planner", URIs: []*url.URL{u}, Usage: pki.UsageClient})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// serverTLS is a gateway's serving TLS; clientAuth selects mTLS.
func (e *env) serverTLS(clientAuth tls.ClientAuthType) *ServerTLS {
	st := &ServerTLS{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return e.gwCert, nil },
		ClientAuth:     clientAuth,
	}
	if clientAuth != tls.NoClientCert {
		st.ClientCAs = e.ca.Pool()
	}
	return st
}

// gateway returns a gateway on a free loopback port serving hosts, with
// client certificates verified when given.
func (e *env) gateway(id string, hosts ...string) *Gateway {
	return &Gateway{ID: id, Name: id, ListenAddr: "127.0.0.1:0", Hostnames: hosts, TLS: e.serverTLS(tls.VerifyClientCertIfGiven)}
}

// binding admits a client certificate URI SAN on a connection.
func (e *env) binding(connID, uri string, mod ...func(*model.IdentityBindingSpec)) *identity.Binding {
	e.t.Helper()
	spec := &model.IdentityBindingSpec{ConnectionID: connID, ClientCertURISAN: uri}
	for _, f := range mod {
		f(spec)
	}
	b, err := identity.CompileBinding("b-"+connID, "binding-"+connID, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// connection returns an http connection to an executor URL, bound to the
// planner's certificate, injecting X-Api-Key.
func (e *env) connection(id, upstream string) *Connection {
	e.t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		e.t.Fatal(err)
	}
	return &Connection{
		ID: id, Name: id, Protocol: "http", Upstream: u, UpstreamTLS: e.upTLS,
		InjectHeaders: http.Header{"X-Api-Key": {secretKey}},
		Bindings:      []*identity.Binding{e.binding(id, plannerID)},
	}
}

func (e *env) apply(rt *Runtime) {
	e.t.Helper()
	if err := e.srv.Apply(e.t.Context(), rt); err != nil {
		e.t.Fatalf("Apply: %v", err)
	}
}

// addr is the bound address of the test gateways' listener.
func (e *env) addr() string {
	e.t.Helper()
	a, ok := e.srv.ListenerAddr("127.0.0.1:0")
	if !ok {
		e.t.Fatal("no listener on 127.0.0.1:0")
	}
	return a.String()
}

// clientTLS is a planner's TLS config for SNI name, with an optional
// client certificate.
func (e *env) clientTLS(name string, cert *tls.Certificate, protos ...string) *tls.Config {
	c := &tls.Config{ServerName: name, RootCAs: e.ca.Pool(), NextProtos: protos}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// client is a planner's HTTP client: every request goes to the gateway's
// listener whatever the URL's host, so SNI and Host come from the URL.
func (e *env) client(cert *tls.Certificate, h2 bool) *http.Client {
	addr := e.addr()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   e.clientTLS("", cert),
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport: tr,
		// Redirects are the planner's business; tests look at them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// rawTLS opens a TLS connection to the gateway speaking HTTP/1.1, for
// requests net/http would refuse to send.
func (e *env) rawTLS(name string, cert *tls.Certificate) *tls.Conn {
	e.t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", e.addr(), e.clientTLS(name, cert, "http/1.1"))
	if err != nil {
		e.t.Fatalf("dial gateway: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// reply is a response read whole, its body closed.
type reply struct {
	StatusCode int
	Header     http.Header
	Body       string
}

// rawRequest sends raw bytes and returns the response.
func (e *env) rawRequest(req string) reply {
	e.t.Helper()
	c := e.rawTLS(apiHost, e.planner)
	if _, err := io.WriteString(c, req); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("read response to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(body)}
}

// seen is what an executor received.
type seen struct {
	Method, RequestURI, Path, RawPath, Host, Proto string
	Header                                         http.Header
	Body                                           []byte
}

// executor is a real HTTPS server (HTTP/1.1 and HTTP/2) on loopback with a
// CA-issued certificate, recording what it receives.
type executor struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
}

func (e *env) executor(h http.HandlerFunc, configure ...func(*http.Server)) *executor {
	e.t.Helper()
	return e.executorProto(true, h, configure...)
}

// executorProto is executor with HTTP/2 on or off (HTTP/1.1 executors
// can hijack connections).
func (e *env) executorProto(h2 bool, h http.HandlerFunc, configure ...func(*http.Server)) *executor {
	e.t.Helper()
	x := &executor{}
	_, _, cert, err := e.ca.Issue(pki.IssueRequest{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		e.t.Fatal(err)
	}
	x.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		x.mu.Lock()
		x.seen = append(x.seen, seen{r.Method, r.RequestURI, r.URL.Path, r.URL.RawPath, r.Host, r.Proto, r.Header.Clone(), body})
		x.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	x.EnableHTTP2 = h2
	for _, f := range configure {
		f(x.Config)
	}
	x.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	x.StartTLS()
	e.t.Cleanup(x.Close)
	return x
}

func (x *executor) requests() []seen {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]seen(nil), x.seen...)
}

func (x *executor) last(t *testing.T) seen {
	t.Helper()
	r := x.requests()
	if len(r) == 0 {
		t.Fatal("the executor received no request")
	}
	return r[len(r)-1]
}

// basic sets up one gateway (api.test and other.test) with one http
// connection to a recording executor.
func (e *env) basic() (*executor, *Connection) {
	x := e.executor(nil)
	c := e.connection("c1", x.URL)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	g2 := e.gateway("g2", otherHost)
	e.apply(&Runtime{Revision: 1, Gateways: []*Gateway{g, g2}})
	return x, c
}

func get(t *testing.T, c *http.Client, u string) (reply, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}, string(b)
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}

// counter reads sallyport_gateway_requests_total for one label set.
func counter(t *testing.T, e *env, gw, conn, decision, reason string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sallyport_gateway_requests_total" {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"gateway": gw, "connection": conn, "decision": decision, "reason": reason}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
