package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

const testToken = "sp_test_token_do_not_leak"

func TestNewValidatesConfig(t *testing.T) {
	ca := newTestCA(t, "ca")
	ok := Config{Endpoint: "https://127.0.0.1:8443", Token: testToken}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"empty endpoint", func(c *Config) { c.Endpoint = "" }, "endpoint is required"},
		{"http endpoint", func(c *Config) { c.Endpoint = "http://127.0.0.1:8443" }, "must use https"},
		{"no scheme", func(c *Config) { c.Endpoint = "127.0.0.1:8443" }, "must be an https URL"},
		{"no host", func(c *Config) { c.Endpoint = "https:///v1" }, "has no host"},
		{"user info", func(c *Config) { c.Endpoint = "https://admin:pw@127.0.0.1:8443" }, "user info"},
		{"query", func(c *Config) { c.Endpoint = "https://127.0.0.1:8443/?x=1" }, "query or fragment"},
		{"bad URL", func(c *Config) { c.Endpoint = "https://[::1" }, "not a valid URL"},
		{"no token", func(c *Config) { c.Token = " \n" }, "token is required"},
		{"token with newline", func(c *Config) { c.Token = "abc\r\nX-Evil: 1" }, "token contains characters"},
		{"bad PEM", func(c *Config) { c.CACertPEM = "not a certificate" }, "CA certificate PEM: no PEM CERTIFICATE block found"},
		{"short fingerprint", func(c *Config) { c.CAFingerprint = "abcd" }, "CA fingerprint"},
		{"non-hex fingerprint", func(c *Config) { c.CAFingerprint = strings.Repeat("g", 64) }, "CA fingerprint"},
		{"fingerprint matches no PEM cert", func(c *Config) {
			c.CACertPEM = ca.pem
			c.CAFingerprint = strings.Repeat("a", 64)
		}, "matches none"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"HTTPClient with pin", func(c *Config) {
			c.HTTPClient = &http.Client{}
			c.CAFingerprint = Fingerprint(ca.cert)
		}, "cannot be applied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			_, err := New(cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "X-Evil") {
				t.Fatalf("error reveals the token: %q", err)
			}
		})
	}

	c, err := New(Config{Endpoint: " HTTPS://Appliance.example:8443/base/ ", Token: testToken + "\n", CACertPEM: ca.pem})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Endpoint(); got != "https://Appliance.example:8443/base" {
		t.Errorf("Endpoint() = %q", got)
	}
	if c.token != testToken {
		t.Error("the token's trailing newline was kept")
	}
	if c.timeout != DefaultTimeout || c.maxRetries != DefaultMaxRetries || c.userAgent != DefaultUserAgent {
		t.Errorf("defaults not applied: timeout %s retries %d agent %q", c.timeout, c.maxRetries, c.userAgent)
	}
	tr := c.http.Transport.(*http.Transport)
	if tr.TLSClientConfig.MinVersion != 0x0303 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("TLS config: min version %x, insecure %t", tr.TLSClientConfig.MinVersion, tr.TLSClientConfig.InsecureSkipVerify)
	}
}

func TestAPIErrorFormat(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
	}{
		{
			"validation", 400, nil,
			`{"error":"validation failed","request_id":"r-1","problems":[{"field":"spec.upstream_url","message":"must use https"},{"field":"spec.hostname","message":"required"}]}`,
			"sallyport: 400 validation failed: spec.upstream_url: must use https; spec.hostname: required (request id r-1)",
		},
		{
			"dependents", 409, http.Header{"X-Request-Id": {"r-2"}},
			`{"error":"gateway is in use","dependents":[{"kind":"connection","id":"conn_1","name":"web"},{"kind":"connection","id":"conn_2","name":"api"}]}`,
			`sallyport: 409 gateway is in use: referenced by connection "web" (conn_1), connection "api" (conn_2) (request id r-2)`,
		},
		{
			"not JSON", 502, nil, "<html><body>Bad   gateway\nfrom proxy</body></html>",
			"sallyport: 502 bad gateway: <html><body>Bad gateway from proxy</body></html>",
		},
		{
			"message already lists the details", 409, nil,
			`{"error":"gateway \"edge\" is still referenced: connection \"web\" (conn_1)","request_id":"r-4","dependents":[{"kind":"connection","id":"conn_1","name":"web"}]}`,
			`sallyport: 409 gateway "edge" is still referenced: connection "web" (conn_1) (request id r-4)`,
		},
		{
			"message already lists the problems", 400, nil,
			`{"error":"invalid request: spec.hostname: required","request_id":"r-5","problems":[{"field":"spec.hostname","message":"required"}]}`,
			"sallyport: 400 invalid request: spec.hostname: required (request id r-5)",
		},
		{"empty", 401, http.Header{"X-Request-Id": {"r-3"}}, "", "sallyport: 401 unauthorized (request id r-3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			err := error(newAPIError(&http.Response{StatusCode: tt.status, Header: h}, []byte(tt.body)))
			if got := err.Error(); got != tt.want {
				t.Errorf("Error() =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}

	wrapped := errors.Join(errors.New("context"), &APIError{StatusCode: 404})
	checks := map[string]func(error) bool{
		"IsNotFound": IsNotFound, "IsConflict": IsConflict, "IsPreconditionFailed": IsPreconditionFailed,
		"IsValidation": IsValidation, "IsUnauthorized": IsUnauthorized,
	}
	for name, f := range checks {
		if got := f(wrapped); got != (name == "IsNotFound") {
			t.Errorf("%s(wrapped 404) = %t", name, got)
		}
	}
	if IsNotFound(nil) || IsNotFound(errors.New("404")) {
		t.Error("IsNotFound true for a non-API error")
	}
}

// fakeAppliance is a tiny in-memory stand-in for the admin API, enough to
// exercise the client's wire behavior: paths, headers, retries, errors.
type fakeAppliance struct {
	t        *testing.T
	mu       sync.Mutex
	requests []*http.Request
	// respond answers a request; attempt counts requests to the same
	// method and path, from 1.
	respond func(w http.ResponseWriter, r *http.Request, attempt int)
	counts  map[string]int
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, attempt int)) (*fakeAppliance, *Client) {
	t.Helper()
	f := &fakeAppliance{t: t, respond: respond, counts: map[string]int{}}
	ca := newTestCA(t, "fake CA")
	srv := startTLS(t, ca.serverCert(t, ca.cert), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		f.mu.Lock()
		key := r.Method + " " + r.URL.Path
		f.counts[key]++
		n := f.counts[key]
		clone := r.Clone(context.Background())
		clone.Body = io.NopCloser(strings.NewReader(string(body)))
		f.requests = append(f.requests, clone)
		f.mu.Unlock()
		w.Header().Set("X-Request-Id", "req-"+key)
		f.respond(w, r, n)
	}))
	c, err := New(Config{Endpoint: srv.URL, Token: testToken, CAFingerprint: Fingerprint(ca.cert), UserAgent: "test-agent/1"})
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = func(int) time.Duration { return time.Millisecond }
	return f, c
}

func (f *fakeAppliance) count(method, path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[method+" "+path]
}

func (f *fakeAppliance) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func gatewayJSON(id string, gen int64) map[string]any {
	return map[string]any{
		"id": id, "name": "edge", "generation": gen, "unknown_future_field": true,
		"spec":   map[string]any{"listen_addr": "0.0.0.0:443", "hostnames": []string{"a.example"}, "tls_settings_id": "tls_1"},
		"status": map[string]any{"ready": true, "observed_generation": gen},
	}
}

func TestRequestsOnTheWire(t *testing.T) {
	f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/connections":
			writeJSON(w, 200, map[string]any{"items": []any{}})
		case r.Method == http.MethodPost:
			writeJSON(w, 201, gatewayJSON("gw_1", 1))
		case r.Method == http.MethodPut:
			// No generation in the body: the ETag fills it in.
			o := gatewayJSON("gw_1", 0)
			w.Header().Set("ETag", `"5"`)
			writeJSON(w, 200, o)
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, 404, map[string]any{"error": "not found"})
		}
	})
	ctx := context.Background()

	if _, err := c.Connections().List(ctx, ListOptions{Name: "web", Parent: "gw_1"}); err != nil {
		t.Fatal(err)
	}
	r := f.last()
	if got := r.URL.Query(); got.Get("name") != "web" || got.Get("gateway_id") != "gw_1" {
		t.Errorf("list query = %v", got)
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken || r.Header.Get("Accept") != "application/json" ||
		r.Header.Get("User-Agent") != "test-agent/1" || r.Header.Get("Content-Type") != "" {
		t.Errorf("GET headers = %v", r.Header)
	}

	gw, err := c.Gateways().Create(ctx, "edge", model.GatewaySpec{ListenAddr: "0.0.0.0:443", Hostnames: []string{"a.example"}, TLSSettingsID: "tls_1"})
	if err != nil {
		t.Fatal(err)
	}
	if gw.ID != "gw_1" || gw.Generation != 1 || gw.Spec.TLSSettingsID != "tls_1" || !gw.Status.Ready {
		t.Errorf("created = %+v", gw)
	}
	r = f.last()
	body, _ := io.ReadAll(r.Body)
	var sent struct {
		Name string            `json:"name"`
		Spec model.GatewaySpec `json:"spec"`
	}
	if err := json.Unmarshal(body, &sent); err != nil || sent.Name != "edge" || sent.Spec.ListenAddr != "0.0.0.0:443" {
		t.Errorf("POST body = %s (%v)", body, err)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("If-Match") != "" || r.URL.Path != "/v1/gateways" {
		t.Errorf("POST %s headers = %v", r.URL.Path, r.Header)
	}

	gw, err = c.Gateways().Replace(ctx, "gw_1", "edge", gw.Spec, WriteOptions{IfMatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if gw.Generation != 5 {
		t.Errorf("generation from ETag = %d, want 5", gw.Generation)
	}
	if r = f.last(); r.Header.Get("If-Match") != `"4"` || r.URL.Path != "/v1/gateways/gw_1" {
		t.Errorf("PUT %s If-Match = %q", r.URL.Path, r.Header.Get("If-Match"))
	}

	if err := c.IdentityBindings().Delete(ctx, "bind_1", WriteOptions{IfMatch: 2}); err != nil {
		t.Fatal(err)
	}
	if r = f.last(); r.URL.Path != "/v1/identity-bindings/bind_1" || r.Header.Get("If-Match") != `"2"` {
		t.Errorf("DELETE %s If-Match %q", r.URL.Path, r.Header.Get("If-Match"))
	}

	_, err = c.TLSSettings().Get(ctx, "tls_nope")
	if !IsNotFound(err) {
		t.Errorf("Get unknown: %v, want not found", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.RequestID != "req-GET /v1/tls-settings/tls_nope" {
		t.Errorf("request id from the header: %+v", apiErr)
	}
}

func TestClientSideChecks(t *testing.T) {
	f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 200, map[string]any{"items": []any{gatewayJSON("gw_1", 1)}})
	})
	ctx := context.Background()
	if _, err := c.Gateways().Get(ctx, ""); err == nil || !strings.Contains(err.Error(), "id is empty") {
		t.Errorf("Get(\"\") = %v", err)
	}
	if _, err := c.Gateways().Replace(ctx, " ", "n", model.GatewaySpec{}, WriteOptions{}); err == nil {
		t.Error("Replace with a blank id succeeded")
	}
	if err := c.Gateways().Delete(ctx, "", WriteOptions{}); err == nil {
		t.Error("Delete with an empty id succeeded")
	}
	for _, id := range []string{"gw_1/../../status", "..", "gw 1", "gw%2F1", "gw?x=1"} {
		if _, err := c.Gateways().Get(ctx, id); err == nil || !strings.Contains(err.Error(), "not a valid gateway id") {
			t.Errorf("Get(%q) = %v, want an invalid id error", id, err)
		}
	}
	if _, err := c.Gateways().List(ctx, ListOptions{Parent: "x"}); err == nil || !strings.Contains(err.Error(), "no parent") {
		t.Errorf("List gateways by parent = %v", err)
	}
	if n := len(f.requests); n != 0 {
		t.Errorf("%d requests sent for calls that cannot be right", n)
	}

	gw, err := c.Gateways().GetByName(ctx, "", "edge")
	if err != nil || gw.ID != "gw_1" {
		t.Errorf("GetByName(edge) = %v, %v", gw, err)
	}
	if _, err := c.Gateways().GetByName(ctx, "", "other"); !IsNotFound(err) {
		t.Errorf("GetByName(other) = %v, want not found", err)
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	unavailable := func(w http.ResponseWriter, r *http.Request, attempt int) {
		if attempt <= 2 {
			writeJSON(w, 503, map[string]any{"error": "store busy"})
			return
		}
		switch r.Method {
		case http.MethodDelete:
			w.WriteHeader(204)
		case http.MethodPost:
			writeJSON(w, 201, gatewayJSON("gw_1", 1))
		default:
			writeJSON(w, 200, gatewayJSON("gw_1", 2))
		}
	}
	spec := model.GatewaySpec{}

	t.Run("GET is retried", func(t *testing.T) {
		f, c := newFake(t, unavailable)
		if _, err := c.Gateways().Get(ctx, "gw_1"); err != nil {
			t.Fatal(err)
		}
		if n := f.count("GET", "/v1/gateways/gw_1"); n != 3 {
			t.Errorf("%d attempts, want 3", n)
		}
	})
	t.Run("DELETE is retried", func(t *testing.T) {
		f, c := newFake(t, unavailable)
		if err := c.Gateways().Delete(ctx, "gw_1", WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := f.count("DELETE", "/v1/gateways/gw_1"); n != 3 {
			t.Errorf("%d attempts, want 3", n)
		}
	})
	t.Run("conditional PUT is retried", func(t *testing.T) {
		f, c := newFake(t, unavailable)
		if _, err := c.Gateways().Replace(ctx, "gw_1", "edge", spec, WriteOptions{IfMatch: 1}); err != nil {
			t.Fatal(err)
		}
		if n := f.count("PUT", "/v1/gateways/gw_1"); n != 3 {
			t.Errorf("%d attempts, want 3", n)
		}
	})
	t.Run("unconditional PUT is not retried", func(t *testing.T) {
		f, c := newFake(t, unavailable)
		_, err := c.Gateways().Replace(ctx, "gw_1", "edge", spec, WriteOptions{})
		if !HasStatus(err, 503) || !strings.Contains(err.Error(), "store busy") {
			t.Fatalf("err = %v, want the 503", err)
		}
		if n := f.count("PUT", "/v1/gateways/gw_1"); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("POST is not retried", func(t *testing.T) {
		f, c := newFake(t, unavailable)
		if _, err := c.Gateways().Create(ctx, "edge", spec); !HasStatus(err, 503) {
			t.Fatalf("err = %v, want the 503", err)
		}
		if n := f.count("POST", "/v1/gateways"); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("retries give up", func(t *testing.T) {
		f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			writeJSON(w, 502, map[string]any{"error": "upstream down"})
		})
		if _, err := c.Gateways().Get(ctx, "gw_1"); !HasStatus(err, 502) {
			t.Fatalf("err = %v, want the 502", err)
		}
		if n := f.count("GET", "/v1/gateways/gw_1"); n != DefaultMaxRetries+1 {
			t.Errorf("%d attempts, want %d", n, DefaultMaxRetries+1)
		}
	})
	t.Run("client errors are not retried", func(t *testing.T) {
		f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			writeJSON(w, 500, map[string]any{"error": "boom"})
		})
		if _, err := c.Gateways().Get(ctx, "gw_1"); !HasStatus(err, 500) {
			t.Fatalf("err = %v", err)
		}
		if n := f.count("GET", "/v1/gateways/gw_1"); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
			if attempt == 1 {
				// Drop the connection without an answer.
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return
			}
			writeJSON(w, 200, gatewayJSON("gw_1", 1))
		})
		if _, err := c.Gateways().Get(ctx, "gw_1"); err != nil {
			t.Fatalf("GET after a dropped connection: %v", err)
		}
		if n := f.count("GET", "/v1/gateways/gw_1"); n != 2 {
			t.Errorf("%d attempts, want 2", n)
		}
		f2, c2 := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		})
		_, err := c2.Gateways().Create(ctx, "edge", spec)
		if err == nil {
			t.Fatal("POST over a dropped connection succeeded")
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("error reveals the token: %v", err)
		}
		if n := f2.count("POST", "/v1/gateways"); n != 1 {
			t.Errorf("POST sent %d times, want once", n)
		}
	})
	t.Run("attempt timeout", func(t *testing.T) {
		f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
			if attempt == 1 {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				// Abort rather than return: returning would answer an
				// empty 200, which a client that has not yet seen its
				// stream reset could still read.
				panic(http.ErrAbortHandler)
			}
			writeJSON(w, 200, gatewayJSON("gw_1", 1))
		})
		c.timeout = 100 * time.Millisecond
		if _, err := c.Gateways().Get(ctx, "gw_1"); err != nil {
			t.Fatalf("GET after a slow attempt: %v", err)
		}
		if n := f.count("GET", "/v1/gateways/gw_1"); n != 2 {
			t.Errorf("%d attempts, want 2", n)
		}
	})
	t.Run("context ends the retries", func(t *testing.T) {
		_, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			writeJSON(w, 503, map[string]any{"error": "busy"})
		})
		c.backoff = func(int) time.Duration { return time.Hour }
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Gateways().Get(cctx, "gw_1")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "busy") {
			t.Fatalf("err = %v, want the deadline and the last error", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Error("the backoff ignored the context")
		}
	})
}

func TestResponseLimitsAndRedirects(t *testing.T) {
	ctx := context.Background()
	_, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/v1/status":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"version":"`))
			chunk := strings.Repeat("x", 1<<20)
			for range 9 {
				_, _ = w.Write([]byte(chunk))
			}
			_, _ = w.Write([]byte(`"}`))
		case "/v1/gateways/gw_1":
			http.Redirect(w, r, "https://elsewhere.example/steal", http.StatusFound)
		}
	})
	_, err := c.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "exceeds 8 MiB") {
		t.Fatalf("9 MiB status = %v, want a size error", err)
	}
	_, err = c.Gateways().Get(ctx, "gw_1")
	if !HasStatus(err, http.StatusFound) {
		t.Fatalf("redirect = %v, want a 302 APIError (not followed)", err)
	}
}

func TestStatusAndAudit(t *testing.T) {
	f, c := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/v1/status":
			_, _ = io.WriteString(w, `{"version":"1.2.3","started_at":"2026-01-02T03:04:05Z","uptime_seconds":12,
				"store":{"backend":"bolt","revision":42},"counts":{"gateway":2},"reconcile":{"state":"idle","x":[1]},"new":1}`)
		case "/v1/audit":
			_, _ = io.WriteString(w, `{"items":[{"seq":7,"time":"2026-01-02T03:04:05Z","actor":"admin","request_id":"r",
				"action":"replace","kind":"gateway","object_id":"gw_1","name":"edge","generation_before":1,
				"generation_after":2,"extra":{"a":1}}]}`)
		}
	})
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "1.2.3" || st.Store.Backend != "bolt" || st.Store.Revision != 42 || st.Counts["gateway"] != 2 ||
		st.UptimeSeconds != 12 || st.StartedAt.Year() != 2026 || !strings.Contains(string(st.Reconcile), "idle") {
		t.Errorf("status = %+v", st)
	}
	entries, err := c.Audit(ctx, model.AuditQuery{After: 6, Limit: 10, Kind: model.KindGateway, ObjectID: "gw_1"})
	if err != nil {
		t.Fatal(err)
	}
	want := model.AuditEntry{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: "admin", RequestID: "r",
		Action: "replace", Kind: model.KindGateway, ObjectID: "gw_1", Name: "edge", GenerationBefore: 1, GenerationAfter: 2}
	if len(entries) != 1 || !reflect.DeepEqual(entries[0], want) {
		t.Errorf("audit = %+v", entries)
	}
	q := f.last().URL.Query()
	if q.Get("after") != "6" || q.Get("limit") != "10" || q.Get("kind") != "gateway" || q.Get("object_id") != "gw_1" {
		t.Errorf("audit query = %v", q)
	}
}

func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	// statuses plays back a sequence of statuses, repeating the last.
	statuses := func(seq ...model.Status) (StatusFunc, *atomic.Int32) {
		var n atomic.Int32
		return func(context.Context) (model.Status, error) {
			i := int(n.Add(1)) - 1
			return seq[min(i, len(seq)-1)], nil
		}, &n
	}
	c := &Client{}

	get, n := statuses(
		model.Status{ObservedGeneration: 1, Ready: true},                      // an older generation
		model.Status{ObservedGeneration: 1, Message: "old generation failed"}, // not this one's failure
		model.Status{ObservedGeneration: 2, Ready: false},                     // acted on, pending
		model.Status{ObservedGeneration: 3, Ready: true},                      // a later one is fine
	)
	if err := c.WaitReady(ctx, get, 2); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if n.Load() != 4 {
		t.Errorf("%d polls, want 4", n.Load())
	}

	get, _ = statuses(model.Status{ObservedGeneration: 2, Message: "certificate: ACME order failed"})
	err := c.WaitReady(ctx, get, 2)
	var re *ReconcileError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "ACME order failed") {
		t.Fatalf("failed reconcile = %v, want a ReconcileError with the message", err)
	}

	get, _ = statuses(model.Status{ObservedGeneration: 1, Message: "waiting for the listener"})
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = c.WaitReady(tctx, get, 2)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the listener") {
		t.Fatalf("timed out wait = %v, want the deadline and the last message", err)
	}

	boom := errors.New("boom")
	err = c.WaitReady(ctx, func(context.Context) (model.Status, error) { return model.Status{}, boom }, 1)
	if !errors.Is(err, boom) {
		t.Fatalf("get error = %v", err)
	}
}

func TestCollectionWaitReady(t *testing.T) {
	_, c := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
		o := gatewayJSON("gw_1", 2)
		o["status"] = map[string]any{"ready": attempt >= 3, "observed_generation": min(attempt, 2)}
		writeJSON(w, 200, o)
	})
	gw, err := c.Gateways().WaitReady(context.Background(), "gw_1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !gw.Status.Ready || gw.Status.ObservedGeneration != 2 {
		t.Fatalf("returned %+v", gw.Status)
	}
	_, c = newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 404, map[string]any{"error": "gateway gw_1 not found"})
	})
	if _, err := c.Gateways().WaitReady(context.Background(), "gw_1", 2); !IsNotFound(err) {
		t.Fatalf("wait for a deleted object = %v", err)
	}
}
