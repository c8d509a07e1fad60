package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

func guards(t testing.TB, scope string, g model.Guardrails) *guardrails.Set {
	t.Helper()
	s, err := guardrails.Compile(scope, &g)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func guardrailCount(t *testing.T, e *env, decision, rule string) float64 {
	return metric(t, e, "sallyport_gateway_guardrail_decisions_total", map[string]string{"connection": "c1", "decision": decision, "rule": rule})
}

func post(t *testing.T, cl *http.Client, u, ct, body string) (reply, string) {
	t.Helper()
	resp, err := cl.Post(u, ct, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", u, err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}, string(b)
}

func mcpCall(tool string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"q":"x"}}}`
}

// Guardrails run after the binding admitted the request and before it is
// forwarded: a denial is a 403 naming the rule, counted, logged; what they
// allow reaches the executor unchanged, body included.
func TestGuardrailsEndToEnd(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			e := newEnv(t)
			x := e.executor(nil)
			c := e.connection("c1", x.URL)
			c.Guardrails = guards(t, guardrails.ScopeConnection, model.Guardrails{
				DenyPathPatterns:    []string{`^/admin`},
				DenyQueryPatterns:   []string{`(?i)drop\s+table`},
				AllowedContentTypes: []string{"application/json"},
			})
			c.BindingGuardrails = map[string]*guardrails.Set{
				c.Bindings[0].ID: guards(t, guardrails.ScopeBinding, model.Guardrails{
					AllowedJSONRPCMethods: []string{"initialize", "tools/*"},
					AllowedMCPTools:       []string{"search"},
				}),
			}
			g := e.gateway("g1", apiHost)
			g.Connections = []*Connection{c}
			e.apply(&Runtime{Gateways: []*Gateway{g}})
			cl := e.client(e.planner, h2)

			resp, _ := post(t, cl, "https://api.test/mcp", "application/json", mcpCall("search"))
			if resp.StatusCode != 200 {
				t.Fatalf("allowed call: %d", resp.StatusCode)
			}
			if got := x.last(t); string(got.Body) != mcpCall("search") {
				t.Fatalf("the executor got %q", got.Body)
			}
			before := len(x.requests())
			for _, tc := range []struct {
				method, path, ct, body, rule string
			}{
				{"GET", "/admin/users", "", "", "connection.guardrails.deny_path_patterns[0]"},
				{"GET", "/q?sql=DROP%20TABLE%20users", "", "", "connection.guardrails.deny_query_patterns[0]"},
				{"POST", "/mcp", "text/plain", "{}", "connection.guardrails.allowed_content_types"},
				{"POST", "/mcp", "application/json", `{"jsonrpc":"2.0","id":1,"method":"resources/read"}`, "binding.guardrails.allowed_jsonrpc_methods"},
				{"POST", "/mcp", "application/json", mcpCall("shell"), "binding.guardrails.allowed_mcp_tools"},
				{"POST", "/mcp", "application/json", `[` + mcpCall("search") + `,` + mcpCall("shell") + `]`, "binding.guardrails.allowed_mcp_tools"},
			} {
				req, _ := http.NewRequest(tc.method, "https://api.test"+tc.path, strings.NewReader(tc.body))
				if tc.body == "" {
					req.Body = nil
				}
				if tc.ct != "" {
					req.Header.Set("Content-Type", tc.ct)
				}
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				rid := resp.Header.Get("X-Request-Id")
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Sallyport-Guardrail") != tc.rule ||
					string(body) != "403 Forbidden\nrequest id: "+rid+"\ndenied by guardrail: "+tc.rule+"\n" {
					t.Fatalf("%s %s: %d %v %q", tc.method, tc.path, resp.StatusCode, resp.Header, body)
				}
				if n := guardrailCount(t, e, decisionDeny, tc.rule); n < 1 {
					t.Fatalf("%s: deny counter %v", tc.rule, n)
				}
				mustContain(t, e.logs.String(), `"guardrail":"`+tc.rule+`"`)
			}
			if n := len(x.requests()); n != before {
				t.Fatalf("denied requests reached the executor (%d)", n-before)
			}
			if n := guardrailCount(t, e, decisionAllow, "-"); n != 1 {
				t.Fatalf("allow counter %v", n)
			}
			if n := counter(t, e, "g1", "c1", decisionDeny, reasonGuardrail); n != 6 {
				t.Fatalf("requests deny/guardrail counter %v", n)
			}
		})
	}
}

// A body of unknown length over max_request_body_bytes is cut off and
// denied with the rule, not with the gateway's 413.
func TestGuardrailBodyLimit(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			e := newEnv(t)
			x := e.executor(nil)
			c := e.connection("c1", x.URL)
			c.Guardrails = guards(t, guardrails.ScopeConnection, model.Guardrails{MaxRequestBodyBytes: 1000})
			g := e.gateway("g1", apiHost)
			g.Connections = []*Connection{c}
			e.apply(&Runtime{Gateways: []*Gateway{g}})
			cl := e.client(e.planner, h2)
			const rule = "connection.guardrails.max_request_body_bytes"
			for name, body := range map[string]io.Reader{
				"declared": strings.NewReader(strings.Repeat("x", 1001)),
				"chunked":  io.MultiReader(strings.NewReader(strings.Repeat("x", 5000))),
			} {
				resp, err := cl.Post("https://api.test/up", "text/plain", body)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Sallyport-Guardrail") != rule {
					t.Fatalf("%s: %d %v", name, resp.StatusCode, resp.Header)
				}
			}
			resp, err := cl.Post("https://api.test/up", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("x", 1000))))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || len(x.last(t).Body) != 1000 {
				t.Fatalf("at the limit: %d", resp.StatusCode)
			}
		})
	}
}

// On a grpc connection, path rules apply (the path is the method).
func TestGuardrailsOnGRPC(t *testing.T) {
	e := newEnv(t)
	addr := e.grpcExecutor()
	c := e.connection("c1", "https://"+addr)
	c.Protocol = "grpc"
	c.Guardrails = guards(t, guardrails.ScopeConnection, model.Guardrails{
		DenyPathPatterns: []string{`/StreamingOutputCall$`}, AllowedContentTypes: []string{"application/grpc"},
	})
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	client := e.grpcClient(e.planner)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("allowed method: %v", err)
	}
	ss, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err == nil {
		_, err = ss.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("denied method: %v", err)
	}
	if n := guardrailCount(t, e, decisionDeny, "connection.guardrails.deny_path_patterns[0]"); n != 1 {
		t.Fatalf("deny counter %v", n)
	}
}

// grpcExecutor is a real gRPC executor (echoService) on loopback.
func (e *env) grpcExecutor() string {
	e.t.Helper()
	_, _, cert, err := e.ca.Issue(pki.IssueRequest{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		e.t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	testgrpc.RegisterTestServiceServer(gs, &echoService{md: make(chan metadata.MD, 100)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	e.t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// grpcClient dials the gateway as a planner.
func (e *env) grpcClient(cert *tls.Certificate) testgrpc.TestServiceClient {
	e.t.Helper()
	gwAddr := e.addr()
	cc, err := grpc.NewClient("passthrough:///api.test",
		grpc.WithTransportCredentials(credentials.NewTLS(e.clientTLS(apiHost, cert))),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", gwAddr)
		}))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// Masking, guardrails and recording that cannot apply to a connection's
// protocol are refused at Apply, for that connection.
func TestApplyRefusesEnforcementThatCannotApply(t *testing.T) {
	e := newEnv(t)
	x := e.executor(nil)
	m := masker(t, model.MaskingRule{Detector: "email"})
	body := guards(t, guardrails.ScopeConnection, model.Guardrails{DenyBodyPatterns: []string{"x"}})
	path := guards(t, guardrails.ScopeConnection, model.Guardrails{DenyPathPatterns: []string{"x"}})
	bindingBody := guards(t, guardrails.ScopeBinding, model.Guardrails{AllowedMCPTools: []string{"x"}})
	mk := func(id, proto string, f func(*Connection)) *Connection {
		c := e.connection(id, x.URL)
		c.Protocol = proto
		if proto == "tcp" {
			u, _ := url.Parse("tls://" + strings.TrimPrefix(x.URL, "https://"))
			c.Upstream, c.InjectHeaders, c.Hostname = u, nil, id+".wild.test"
		}
		f(c)
		return c
	}
	cases := map[string]*Connection{
		"masking on grpc":         mk("mg", "grpc", func(c *Connection) { c.Masker = m }),
		"masking on tcp":          mk("mt", "tcp", func(c *Connection) { c.Masker = m }),
		"guardrails on tcp":       mk("gt", "tcp", func(c *Connection) { c.Guardrails = path }),
		"body guardrails on grpc": mk("gg", "grpc", func(c *Connection) { c.Guardrails = body; c.PathPrefix = "/gg" }),
		"binding guards on grpc": mk("bg", "grpc", func(c *Connection) {
			c.BindingGuardrails = map[string]*guardrails.Set{c.Bindings[0].ID: bindingBody}
			c.PathPrefix = "/bg"
		}),
		"recording, no recorder": mk("rn", "http", func(c *Connection) { c.Recording = &model.RecordingSpec{Enabled: true}; c.PathPrefix = "/rn" }),
	}
	g := e.gateway("g1", apiHost, "*.wild.test")
	for _, c := range cases {
		g.Connections = append(g.Connections, c)
	}
	err := e.srv.Apply(t.Context(), &Runtime{Gateways: []*Gateway{g}})
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply: %v", err)
	}
	for name, c := range cases {
		if ae.Connections[c.ID] == nil {
			t.Errorf("%s: not refused", name)
		}
	}
	// The same connections without them apply; so do path rules on grpc
	// and an inactive masker anywhere.
	ok := e.connection("ok", x.URL)
	ok.Protocol = "grpc"
	ok.Guardrails = path
	ok.Masker = masker(t)
	g.Connections = []*Connection{ok}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
}
