package gateway

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

func TestProxiesHTTP1AndHTTP2WithInjectedCredentials(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			x, _ := e.basic()
			c := e.client(e.planner, h2)
			req, _ := http.NewRequest("GET", "https://api.test/v1/items?q=1", nil)
			req.Header.Set("Cookie", "session=planner-cookie")
			req.Header.Set("Proxy-Authorization", "Basic cGxhbm5lcg==")
			req.Header.Set("Authorization", "Basic cGxhbm5lcjpwdw==")
			req.Header.Set("X-Api-Key", "planner-chosen")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello from /v1/items" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
				t.Fatalf("client spoke %s, want HTTP/%d", resp.Proto, want)
			}
			rid := resp.Header.Get("X-Request-Id")
			if rid == "" {
				t.Fatal("no X-Request-Id in the response")
			}
			got := x.last(t)
			if got.RequestURI != "/v1/items?q=1" {
				t.Fatalf("executor got %q", got.RequestURI)
			}
			if got.Header.Get("X-Api-Key") != secretKey || len(got.Header["X-Api-Key"]) != 1 {
				t.Fatalf("executor got X-Api-Key %q, want only the injected value", got.Header["X-Api-Key"])
			}
			for _, h := range []string{"Cookie", "Authorization", "Proxy-Authorization"} {
				if v, ok := got.Header[h]; ok {
					t.Fatalf("the planner's %s reached the executor: %q", h, v)
				}
			}
			if got.Header.Get("X-Request-Id") != rid {
				t.Fatalf("executor got request id %q, client %q", got.Header.Get("X-Request-Id"), rid)
			}
			if got.Header.Get("X-Forwarded-For") != "127.0.0.1" || got.Header.Get("X-Forwarded-Host") != apiHost ||
				got.Header.Get("X-Forwarded-Proto") != "https" || got.Header.Get("Forwarded") != `for="127.0.0.1";host="api.test";proto=https` {
				t.Fatalf("forwarding headers: %v", got.Header)
			}
			if !strings.HasPrefix(got.Host, "127.0.0.1:") {
				t.Fatalf("executor got Host %q, want its own", got.Host)
			}
			// The executor (which offers HTTP/2) hears the protocol the
			// planner spoke: HTTP/2 streams stay multiplexed, HTTP/1.1
			// requests take a keep-alive HTTP/1.1 connection.
			if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; got.Proto != want {
				t.Fatalf("gateway reached the executor over %s, want %s", got.Proto, want)
			}
			logs := e.logs.String()
			for _, secret := range []string{secretKey, "planner-cookie", "cGxhbm5lcg==", "cGxhbm5lcjpwdw==", "planner-chosen"} {
				if strings.Contains(logs, secret) {
					t.Fatalf("a secret reached the logs: %q", secret)
				}
			}
			mfs, err := e.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if strings.Contains(l.GetValue(), secretKey) || strings.Contains(l.GetValue(), "planner") {
							t.Fatalf("metric %s label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
						}
					}
				}
			}
			if got := counter(t, e, "g1", "c1", decisionAllow, reasonOK); got != 1 {
				t.Fatalf("allow/ok counter = %v", got)
			}
			mustContain(t, logs, `"request_id":"`+rid+`"`)
			mustContain(t, logs, `"cert_uri":"`+plannerID+`"`)
			mustContain(t, logs, `"binding":"binding-c1"`)
		})
	}
}

func TestDeniesWithoutIdentityOrBinding(t *testing.T) {
	e := newEnv(t)
	x, _ := e.basic()

	resp, body := get(t, e.client(nil, true), "https://api.test/v1")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Www-Authenticate") != `Bearer realm="sallyport"` {
		t.Fatalf("anonymous: %d %v", resp.StatusCode, resp.Header)
	}
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" || body != "401 Unauthorized\nrequest id: "+rid+"\n" {
		t.Fatalf("401 body %q (request id %q): want the status and request id only", body, rid)
	}
	// An anonymous caller learns nothing about routes.
	if resp, _ := get(t, e.client(nil, true), "https://api.test/no/such/route"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous on an unknown route: %d", resp.StatusCode)
	}

	resp, body = get(t, e.client(e.stranger, true), "https://api.test/v1")
	if resp.StatusCode != http.StatusForbidden || body != "403 Forbidden\nrequest id: "+resp.Header.Get("X-Request-Id")+"\n" {
		t.Fatalf("stranger: %d %q", resp.StatusCode, body)
	}
	// A certificate from another CA is not even sent (the client only
	// offers certificates the gateway's CA list accepts): no identity.
	other := newEnv(t)
	resp, _ = get(t, e.client(other.planner, true), "https://api.test/v1")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("foreign certificate: %d", resp.StatusCode)
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("the executor received %d requests", n)
	}
	logs := e.logs.String()
	mustContain(t, logs, `"reason":"no_identity"`)
	mustContain(t, logs, `"detail":"client certificate uri san mismatch"`)
	if got := counter(t, e, "g1", "c1", decisionDeny, reasonNoBinding); got != 1 {
		t.Fatalf("deny/no_binding counter = %v", got)
	}
	if got := counter(t, e, "g1", "-", decisionDeny, reasonNoIdentity); got != 3 {
		t.Fatalf("deny/no_identity counter = %v", got)
	}
}

func TestBindingAllowListsUseTheNormalizedPath(t *testing.T) {
	e := newEnv(t)
	x := e.executor(nil)
	c := e.connection("c1", x.URL)
	c.Bindings[0] = e.binding("c1", plannerID, func(s *model.IdentityBindingSpec) {
		s.AllowedMethods = []string{"GET"}
		s.AllowedPaths = []string{"/public/*"}
	})
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	cl := e.client(e.planner, false)
	for path, want := range map[string]int{
		"/public/a":          200,
		"/%70ublic/a":        200, // decoded to /public/a, and forwarded so
		"/private/a":         403,
		"/public/%2e%2e/adm": 400,
		"/public/..%2Fadm":   400,
	} {
		resp, _ := get(t, cl, "https://api.test"+path)
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	for _, r := range x.requests() {
		if r.RequestURI != "/public/a" {
			t.Errorf("executor received %q", r.RequestURI)
		}
	}
	resp, err := cl.Post("https://api.test/public/a", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if got := counter(t, e, "g1", "c1", decisionDeny, "method_not_allowed"); got != 1 {
		t.Fatalf("method_not_allowed counter = %v", got)
	}
}

func TestRoutesByHostAndLongestPathPrefix(t *testing.T) {
	e := newEnv(t)
	xa, xb, xc := e.executor(nil), e.executor(nil), e.executor(nil)
	ca := e.connection("any", xa.URL)
	cb := e.connection("api", xb.URL)
	cb.PathPrefix = "/api"
	cc := e.connection("api-v2", xc.URL)
	cc.PathPrefix = "/api/v2"
	cc.Hostname = "x.wild.test"
	g := e.gateway("g1", apiHost, "*.wild.test")
	g.Connections = []*Connection{ca, cb, cc}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	cl := e.client(e.planner, true)
	for u, want := range map[string]*executor{
		"https://api.test/":              xa,
		"https://api.test/apix":          xa,
		"https://api.test/api":           xb,
		"https://api.test/api/v2/x":      xb,
		"https://x.wild.test/api/v2/x":   xc,
		"https://y.wild.test/api/v2/x":   xb,
		"https://x.wild.test/api/v1":     xb,
		"https://x.wild.test/elsewhere/": xa,
	} {
		before := len(want.requests())
		if resp, _ := get(t, cl, u); resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
		if len(want.requests()) != before+1 {
			t.Errorf("GET %s went elsewhere", u)
		}
	}
}

func TestStreamsServerSentEventsAndUploads(t *testing.T) {
	e := newEnv(t)
	next := make(chan struct{})
	gotFirst := make(chan []byte, 1)
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			<-next // the client must see "one" before "two" exists
			_, _ = io.WriteString(w, "data: two\n\n")
		}
	})
	// The recording executor reads bodies whole; uploads get their own
	// executor that reads as the bytes come.
	up := e.executor(nil, func(s *http.Server) {
		s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 5)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				t.Errorf("executor read: %v", err)
			}
			gotFirst <- buf
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			w.Header().Set("X-Rest", string(rune('0'+n%10)))
			_, _ = w.Write(h.Sum(nil))
		})
	})
	c1 := e.connection("sse", x.URL)
	c1.PathPrefix = "/events"
	c2 := e.connection("upload", up.URL)
	c2.PathPrefix = "/upload"
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c1, c2}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	for _, h2 := range []bool{false, true} {
		cl := e.client(e.planner, h2)
		resp, err := cl.Get("https://api.test/events")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: one\n" {
			t.Fatalf("first event %q, %v", line, err)
		}
		next <- struct{}{}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "\ndata: two\n\n" {
			t.Fatalf("rest %q", rest)
		}

		// Upload: the executor gets the first bytes while the planner
		// still holds the rest.
		pr, pw := io.Pipe()
		done := make(chan []byte, 1)
		go func() {
			resp, err := cl.Post("https://api.test/upload", "application/octet-stream", pr)
			if err != nil {
				t.Errorf("upload: %v", err)
				done <- nil
				return
			}
			defer resp.Body.Close()
			sum, _ := io.ReadAll(resp.Body)
			done <- sum
		}()
		_, _ = pw.Write([]byte("first"))
		if b := <-gotFirst; string(b) != "first" {
			t.Fatalf("executor got %q", b)
		}
		big := make([]byte, 3<<20)
		rand.Read(big)
		_, _ = pw.Write(big)
		pw.Close()
		sum := <-done
		want := sha256.Sum256(big)
		if !bytes.Equal(sum, want[:]) {
			t.Fatal("upload arrived altered")
		}
	}
}

func TestRequestBodyLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxRequestBodyBytes = 1000 })
	e.basic()
	cl := e.client(e.planner, false)
	resp, err := cl.Post("https://api.test/up", "text/plain", strings.NewReader(strings.Repeat("x", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("at the limit: %d", resp.StatusCode)
	}
	// Unknown length (chunked), over the limit.
	resp, err = cl.Post("https://api.test/up", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("x", 5000))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit: %d", resp.StatusCode)
	}
}

func TestRedirectsArePassedBackNotFollowed(t *testing.T) {
	e := newEnv(t)
	other := e.executor(nil)
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
	})
	c := e.connection("c1", x.URL)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	resp, _ := get(t, e.client(e.planner, true), "https://api.test/go")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != other.URL+"/stolen" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("the gateway followed the redirect (%d requests, credentials included)", n)
	}
}

func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	x := e.executorProto(false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-release
		case "/reset":
			c, _, _ := http.NewResponseController(w).Hijack()
			_ = c.(*tls.Conn).NetConn().(*net.TCPConn).SetLinger(0)
			c.Close()
		case "/truncated":
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("only ten.."))
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		case "/truncated-chunked":
			_, _ = w.Write([]byte("a chunk"))
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		}
	})
	t.Cleanup(func() { close(release) }) // before the executor's Close
	slow := e.connection("slow", x.URL)
	slow.PathPrefix = "/slow"
	slow.Timeouts.ResponseHeader = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	refused := e.connection("refused", "https://"+closedAddr)
	refused.PathPrefix = "/refused"
	rest := e.connection("rest", x.URL)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{slow, refused, rest}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	for _, h2 := range []bool{false, true} {
		cl := e.client(e.planner, h2)
		for path, want := range map[string]int{"/slow": 504, "/reset": 502, "/refused/x": 502} {
			resp, body := get(t, cl, "https://api.test"+path)
			if resp.StatusCode != want {
				t.Errorf("h2=%v %s: %d, want %d", h2, path, resp.StatusCode, want)
			}
			if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "timeout") {
				t.Errorf("error page tells too much: %q", body)
			}
		}
		for _, path := range []string{"/truncated", "/truncated-chunked"} {
			resp, err := cl.Get("https://api.test" + path)
			if err != nil {
				continue // cut before the headers: also not a success
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("h2=%v %s: the client got a clean %d with %q; want a broken body", h2, path, resp.StatusCode, b)
			}
		}
	}
	logs := e.logs.String()
	mustContain(t, logs, `"reason":"upstream_timeout"`)
	mustContain(t, logs, `"reason":"aborted"`)
}
