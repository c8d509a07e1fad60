package gateway

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNormalizePath(t *testing.T) {
	good := map[string]string{
		"/":                  "/",
		"/a/b":               "/a/b",
		"/a/b/":              "/a/b/",
		"/%7Euser/%41bc":     "/~user/Abc",
		"/a%20b":             "/a%20b",
		"/caf%c3%a9":         "/caf%C3%A9",
		"/a;b=c/d":           "/a;b=c/d",
		"/a/..b/c.":          "/a/..b/c.",
		"/%2d%2E%5f":         "/-._",
		"/a:b@c!$&'()*+,=":   "/a:b@c!$&'()*+,=",
		"/%3F%23%25":         "/%3F%23%25",
		"/grpc.pkg.Svc/Call": "/grpc.pkg.Svc/Call",
	}
	for in, want := range good {
		got, err := normalizePath(in)
		if err != nil || got != want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "a", "*", "//", "/a//b", "/a/", // (the last is fine; see below)
		"/a%2Fb", "/a%2fb", "/a%5Cb", "/a%5cb", `/a\b`, "/a%00b", "/a\x00b", "/a%0ab", "/a\tb", "/a b",
		"/./a", "/a/.", "/a/..", "/a/../b", "/%2e%2e/a", "/a/%2E%2e", "/a/.%2e/b", "/a/%2e/b",
		"/a/..;/b", "/a/.;x/b", "/%", "/%4", "/%zz", "/a%G0", "/caf\xc3\xa9", "/a\x7f", "/a#b", "/a?b",
		"/a\"b", "/a<b>", "/a{b}", "/a|b", "/a^b", "/a`b", "/a[b]",
	}
	for _, in := range bad {
		if in == "/a/" {
			continue
		}
		if got, err := normalizePath(in); err == nil {
			t.Errorf("normalizePath(%q) = %q, want refusal", in, got)
		}
	}
	if testing.AllocsPerRun(100, func() { _, _ = normalizePath("/api/v1/items/42") }) != 0 {
		t.Error("normalizePath allocates for a canonical path")
	}
}

// hygieneEnv is a gateway whose executor records every request, reached
// over raw TLS sockets.
func hygieneEnv(t *testing.T) (*env, *executor) {
	e := newEnv(t)
	x, _ := e.basic()
	return e, x
}

func TestHygieneHopByHopHeaders(t *testing.T) {
	e, x := hygieneEnv(t)
	resp := e.rawRequest("GET /hop HTTP/1.1\r\nHost: api.test\r\n" +
		"Connection: keep-alive, X-Foo, X-Api-Key, X-Forwarded-For, X-Request-Id, Forwarded\r\n" +
		"X-Foo: must-go\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
		"Te: trailers, deflate\r\nTrailer: X-T\r\nHttp2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n" +
		"Upgrade: something\r\nX-Api-Key: planner\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := x.last(t).Header
	for _, h := range []string{"X-Foo", "Keep-Alive", "Proxy-Connection", "Trailer", "Http2-Settings", "Upgrade"} {
		if v, ok := got[h]; ok {
			t.Errorf("hop-by-hop %s reached the executor: %q", h, v)
		}
	}
	if got.Get("Te") != "trailers" {
		t.Errorf("Te = %q, want only trailers", got.Get("Te"))
	}
	// Naming the gateway's own headers in Connection does not remove
	// them.
	if got.Get("X-Api-Key") != secretKey || got.Get("X-Forwarded-For") != "127.0.0.1" ||
		got.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") || got.Get("Forwarded") == "" {
		t.Errorf("gateway headers altered: %v", got)
	}
}

func TestHygieneForwardingHeadersAndLookalikes(t *testing.T) {
	e, x := hygieneEnv(t)
	resp := e.rawRequest("GET /fwd HTTP/1.1\r\nHost: api.test\r\n" +
		"X-Forwarded-For: 10.0.0.1\r\nx-FORWARDED-for: 10.0.0.2\r\nX-Forwarded-Host: evil.test\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\nX-Forwarded-Prefix: /admin\r\n" +
		"Forwarded: for=10.0.0.3;host=evil.test\r\nX_Forwarded_For: 10.0.0.4\r\nX-Forwarded_For: 10.0.0.5\r\n" +
		"x_forwarded_host: evil.test\r\nX-Real-IP: 10.0.0.6\r\nTrue-Client-IP: 10.0.0.7\r\n" +
		"X-Original-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nX-Request-Id: planner-chosen\r\n" +
		"X_Api_Key: planner\r\nX-Keep: yes\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := x.last(t).Header
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  apiHost,
		"X-Forwarded-Proto": "https",
		"Forwarded":         `for="127.0.0.1";host="api.test";proto=https`,
		"X-Request-Id":      resp.Header.Get("X-Request-Id"),
		"X-Api-Key":         secretKey,
		"X-Keep":            "yes",
	}
	for k, v := range want {
		if g := got[k]; len(g) != 1 || g[0] != v {
			t.Errorf("%s = %q, want [%q]", k, g, v)
		}
	}
	for k, v := range got {
		if strings.Contains(k, "_") || strings.HasPrefix(k, "X-Forwarded-") && want[k] == "" ||
			k == "X-Real-Ip" || k == "True-Client-Ip" || k == "X-Original-Url" || k == "X-Http-Method-Override" {
			t.Errorf("client-supplied %s: %q reached the executor", k, v)
		}
		for _, s := range v {
			if strings.HasPrefix(s, "10.0.0.") || strings.Contains(s, "evil.test") {
				t.Errorf("spoofed value in %s: %q", k, s)
			}
		}
	}
}

func TestHygienePlannerCredentialsNeverForwarded(t *testing.T) {
	e, x := hygieneEnv(t)
	resp := e.rawRequest("GET /creds HTTP/1.1\r\nHost: api.test\r\nAuthorization: Basic cGxhbm5lcjpwdw==\r\n" +
		"Cookie: a=b\r\nCookie: c=d\r\nProxy-Authorization: Basic eA==\r\nX-Api-Key: planner\r\nx-api-key: planner2\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := x.last(t).Header
	for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
		if _, ok := got[h]; ok {
			t.Errorf("%s reached the executor", h)
		}
	}
	if v := got["X-Api-Key"]; len(v) != 1 || v[0] != secretKey {
		t.Errorf("X-Api-Key = %q, want only the injected value", v)
	}
}

func TestHygienePaths(t *testing.T) {
	e, x := hygieneEnv(t)
	for _, p := range []string{
		"/a%2Fb", "/a%2fb", "/a%5Cb", `/a\b`, "/a%00b", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/../b",
		"/a/./b", "/a//b", "//b", "/a/..;/b", "/a/.%2e/b", "/%zz", "/caf\xc3\xa9", "*",
	} {
		resp := e.rawRequest("GET " + p + " HTTP/1.1\r\nHost: api.test\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %q: %d, want 400", p, resp.StatusCode)
		}
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("%d ambiguous requests reached the executor: %+v", n, x.requests())
	}
	for p, want := range map[string]string{
		"/%7Euser/%41bc?x=%2F": "/~user/Abc?x=%2F",
		"/caf%c3%a9":           "/caf%C3%A9",
		"/a;v=1/b":             "/a;v=1/b",
	} {
		resp := e.rawRequest("GET " + p + " HTTP/1.1\r\nHost: api.test\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %q: %d", p, resp.StatusCode)
		}
		if got := x.last(t).RequestURI; got != want {
			t.Errorf("GET %q: executor got %q, want %q", p, got, want)
		}
	}
}

func TestHygieneAbsoluteFormCannotSteer(t *testing.T) {
	e, x := hygieneEnv(t)
	// The target's host becomes the Host: it must be served by the SNI's
	// gateway, and the executor is the connection's whatever it says.
	resp := e.rawRequest("GET https://api.test/abs?q=1 HTTP/1.1\r\nHost: api.test\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("absolute form for the gateway's own host: %d", resp.StatusCode)
	}
	got := x.last(t)
	if got.RequestURI != "/abs?q=1" || !strings.HasPrefix(got.Host, "127.0.0.1:") {
		t.Fatalf("executor got %q for host %q", got.RequestURI, got.Host)
	}
	for _, target := range []string{"https://other.test/abs", "https://evil.test/abs", "http://169.254.169.254/latest/meta-data/"} {
		resp := e.rawRequest("GET " + target + " HTTP/1.1\r\nHost: api.test\r\n\r\n")
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("GET %s: %d, want 421", target, resp.StatusCode)
		}
	}
	// Host headers for another gateway on the same listener: 421.
	resp = e.rawRequest("GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n")
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host of another gateway: %d, want 421", resp.StatusCode)
	}
	resp = e.rawRequest("CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: api.test\r\n\r\n")
	if resp.StatusCode < 400 {
		t.Errorf("CONNECT: %d", resp.StatusCode)
	}
	if n := len(x.requests()); n != 1 {
		t.Fatalf("executor received %d requests, want 1", n)
	}
}

func TestHygieneH2CUpgradeRefused(t *testing.T) {
	e, x := hygieneEnv(t)
	resp := e.rawRequest("GET /h2c HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("h2c upgrade: %d, want 400", resp.StatusCode)
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("the executor saw the h2c upgrade")
	}
	// HTTP/2 prior knowledge inside TLS without ALPN h2 is not HTTP/2.
	c := e.rawTLS(apiHost, e.planner)
	_, _ = io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if r, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		r.Body.Close()
		if r.StatusCode < 400 {
			t.Fatalf("PRI preface over http/1.1: %d", r.StatusCode)
		}
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("the executor saw the preface")
	}
}

func TestHygieneRequestSmuggling(t *testing.T) {
	e, x := hygieneEnv(t)
	c := e.rawTLS(apiHost, e.planner)
	// Content-Length and chunked together, with a second request after
	// the chunked body. The gateway parses (chunked wins, RFC 9112 6.3)
	// and re-frames every request itself, so the executor sees exactly the
	// requests the gateway checked and answered, never bytes it did not
	// parse as a request.
	_, _ = io.WriteString(c, "POST /front HTTP/1.1\r\nHost: api.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"0\r\n\r\nGET /second HTTP/1.1\r\nHost: api.test\r\n\r\n")
	br := bufio.NewReader(c)
	var answered []string
	for range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered = append(answered, string(b))
	}
	got := x.requests()
	if len(got) != len(answered) {
		t.Fatalf("executor saw %d requests, the client got %d answers", len(got), len(answered))
	}
	for i, r := range got {
		if len(r.Body) != 0 || answered[i] != "hello from "+r.Path {
			t.Fatalf("request %d: executor got %s %s %q, client got %q", i, r.Method, r.RequestURI, r.Body, answered[i])
		}
	}
	// Obfuscated transfer codings are refused, never guessed at.
	for _, te := range []string{"Transfer-Encoding: xchunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity"} {
		resp := e.rawRequest("POST /te HTTP/1.1\r\nHost: api.test\r\n" + te + "\r\n\r\n0\r\n\r\n")
		if resp.StatusCode < 400 {
			t.Errorf("%q: %d", te, resp.StatusCode)
		}
	}
	for _, r := range x.requests() {
		if r.Path == "/te" {
			t.Fatalf("an ambiguous transfer coding reached the executor")
		}
	}
}

func TestHygieneLimitsAlwaysSet(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.ReadHeaderTimeout = 300 * time.Millisecond })
	x, _ := e.basic()
	// Oversized headers: 431.
	resp := e.rawRequest("GET /big HTTP/1.1\r\nHost: api.test\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("80 KiB header: %d", resp.StatusCode)
	}
	// Headers that never end: the connection is closed.
	c := e.rawTLS(apiHost, e.planner)
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: api.test\r\n")
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("slow headers: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("slow headers held the connection %v", d)
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("the executor received %d requests", n)
	}
	l := e.srv.listeners["127.0.0.1:0"].srv
	if l.ReadHeaderTimeout == 0 || l.IdleTimeout == 0 || l.MaxHeaderBytes == 0 {
		t.Fatalf("server limits unset: %+v", l)
	}
}

func TestWebSocketUpgradeAllowedOtherUpgradesNot(t *testing.T) {
	e, x := hygieneEnv(t)
	resp := e.rawRequest("GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: tls/1.3\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("non-WebSocket upgrade: %d", resp.StatusCode)
	}
	if len(x.requests()) != 0 {
		t.Fatal("the executor saw the upgrade")
	}
}
