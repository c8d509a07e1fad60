package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReloadUnderLoadFailsNoRequest(t *testing.T) {
	e := newEnv(t)
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Api-Key"))
	})
	extra := e.executor(nil)
	runtime := func(rev int) *Runtime {
		c := e.connection("stable", x.URL)
		// Toggle the injected credential on every version.
		c.InjectHeaders = http.Header{"X-Api-Key": {fmt.Sprintf("key-%d", rev%2)}}
		g := e.gateway("g1", apiHost)
		g.Connections = []*Connection{c}
		if rev%3 == 0 {
			// Add and remove a second connection (its own transport).
			ec := e.connection("extra", extra.URL)
			ec.PathPrefix = "/extra"
			g.Connections = append(g.Connections, ec)
		}
		if rev%5 == 0 {
			// And a second gateway on the same listener.
			g2 := e.gateway("g2", otherHost)
			return &Runtime{Revision: uint64(rev), Gateways: []*Gateway{g, g2}}
		}
		return &Runtime{Revision: uint64(rev), Gateways: []*Gateway{g}}
	}
	e.apply(runtime(1))

	const applies = 100
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var (
		ok, failed atomic.Int64
		seenKeys   sync.Map
		firstErr   atomic.Pointer[string]
		stop       = make(chan struct{})
		progress   = make(chan struct{}, 1<<16)
		wg         sync.WaitGroup
	)
	clients := []*http.Client{
		e.client(e.planner, true),  // HTTP/2, one connection, many streams
		e.client(e.planner, false), // HTTP/1.1 keep-alive pool
	}
	fresh := e.client(e.planner, false) // a new connection per request
	fresh.Transport.(*http.Transport).DisableKeepAlives = true
	clients = append(clients, fresh)
	for w := range 6 {
		cl := clients[w%len(clients)]
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					if n >= 20 { // every worker makes at least 20 requests
						return
					}
				default:
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.test/work", nil)
				resp, err := cl.Do(req)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					seenKeys.Store(string(body), true)
				}
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					if ctx.Err() != nil {
						return
					}
					continue
				}
				ok.Add(1)
				progress <- struct{}{}
			}
		})
	}
	for rev := 2; rev <= applies+1; rev++ {
		// Requests flow between every two reloads.
		for range 5 {
			select {
			case <-progress:
			case <-ctx.Done():
				t.Fatalf("no progress before reload %d: %v", rev, ctx.Err())
			}
		}
		if err := e.srv.Apply(ctx, runtime(rev)); err != nil {
			t.Fatalf("Apply %d: %v", rev, err)
		}
	}
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during %d reloads; first: %s", f, f+ok.Load(), applies, *firstErr.Load())
	}
	for _, k := range []string{"key-0", "key-1"} {
		if _, ok := seenKeys.Load(k); !ok {
			t.Errorf("the executor never saw %s: the reloads did not take effect", k)
		}
	}
	t.Logf("%d requests, %d reloads, no failure", ok.Load(), applies)
}

func TestInFlightRequestFinishesAfterItsConnectionAndListenerAreRemoved(t *testing.T) {
	e := newEnv(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	closed := make(chan struct{}, 16)
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			_, _ = w.Write([]byte("first half, "))
			w.(http.Flusher).Flush()
			entered <- struct{}{}
			<-release
			_, _ = w.Write([]byte("second half"))
		}
	}, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				closed <- struct{}{}
			}
		}
	})
	e.basic() // g1 on 127.0.0.1:0 is replaced below
	c := e.connection("held", x.URL)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Revision: 2, Gateways: []*Gateway{g}})

	cl := e.client(e.planner, true)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := cl.Get("https://api.test/hold")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-entered
	addr := e.addr()
	// Remove everything: the connection, the gateway, the listener.
	e.apply(&Runtime{Revision: 3})
	if _, ok := e.srv.ListenerAddr("127.0.0.1:0"); ok {
		t.Fatal("listener still registered")
	}
	// The listener no longer accepts, while its request goes on.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the removed listener still accepts connections")
	}
	close(release)
	r := <-done
	if r.err != nil || r.body != "first half, second half" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	// The retired transport closes its connection to the executor once
	// its last request is done.
	<-closed
}

func TestKeepAliveConnectionSurvivesApply(t *testing.T) {
	e := newEnv(t)
	x, c := e.basic()
	cl := e.client(e.planner, false)
	var reused []bool
	do := func() {
		req, _ := http.NewRequest("GET", "https://api.test/k", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		}))
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do()
	up := e.srv.pool[upstreamKey(c)]
	c2 := *c
	c2.InjectHeaders = http.Header{"X-Api-Key": {"rotated"}}
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{&c2}
	e.apply(&Runtime{Revision: 2, Gateways: []*Gateway{g}})
	do()
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("the planner's connection was not kept: %v", reused)
	}
	if x.last(t).Header.Get("X-Api-Key") != "rotated" {
		t.Fatal("the new runtime is not live")
	}
	if e.srv.pool[upstreamKey(&c2)] != up {
		t.Fatal("the upstream pool was not reused for an unchanged upstream")
	}
}

func TestRequestsForARemovedGatewayAreMisdirected(t *testing.T) {
	e := newEnv(t)
	e.basic()
	x := e.executor(nil)
	g2 := e.gateway("g2", otherHost)
	g2.Connections = []*Connection{e.connection("c2", x.URL)}
	g1 := e.gateway("g1", apiHost)
	e.apply(&Runtime{Revision: 2, Gateways: []*Gateway{g1, g2}})
	cl := e.client(e.planner, true)
	if resp, _ := get(t, cl, "https://other.test/"); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	// g2 goes away; the planner's open connection for it stays, but
	// carries nothing more.
	e.apply(&Runtime{Revision: 3, Gateways: []*Gateway{g1}})
	if resp, _ := get(t, cl, "https://other.test/"); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("after removal: %d", resp.StatusCode)
	}
	if n := len(x.requests()); n != 1 {
		t.Fatalf("executor saw %d requests", n)
	}
}

func TestApplyRefusesBadRuntimesAndKeepsServing(t *testing.T) {
	e := newEnv(t)
	x, c := e.basic()
	cl := e.client(e.planner, true)
	check := func() {
		t.Helper()
		if resp, _ := get(t, cl, "https://api.test/still"); resp.StatusCode != 200 {
			t.Fatalf("old runtime stopped serving: %d", resp.StatusCode)
		}
	}
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()

	tcpConn := func(id, host string) *Connection {
		tc := e.connection(id, "tls://127.0.0.1:1")
		tc.Protocol, tc.Hostname, tc.InjectHeaders = "tcp", host, nil
		return tc
	}
	cases := []struct {
		name    string
		rt      func() *Runtime
		gws     []string
		conns   []string
		message string
	}{
		{"duplicate hostname on one address", func() *Runtime {
			a, b := e.gateway("ga", apiHost), e.gateway("gb", "API.test")
			return &Runtime{Gateways: []*Gateway{a, b}}
		}, []string{"ga", "gb"}, nil, `hostname "api.test" is also served by gateway`},
		{"tcp hostname used by an http connection", func() *Runtime {
			g := e.gateway("g", apiHost, dbHost)
			hc := e.connection("h", x.URL)
			hc.Hostname = dbHost
			g.Connections = []*Connection{hc, tcpConn("t", dbHost)}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"h"}, "belongs to tcp connection"},
		{"two tcp connections on one name", func() *Runtime {
			g := e.gateway("g", apiHost, dbHost)
			g.Connections = []*Connection{tcpConn("t1", dbHost), tcpConn("t2", dbHost)}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"t2"}, "also used by tcp connection"},
		{"tcp name claimed by another gateway", func() *Runtime {
			a := e.gateway("ga", apiHost, "*.wild.test")
			a.Connections = []*Connection{tcpConn("t", "db.wild.test")}
			b := e.gateway("gb", "db.wild.test")
			return &Runtime{Gateways: []*Gateway{b, a}}
		}, nil, []string{"t"}, "is served by gateway"},
		{"duplicate route", func() *Runtime {
			g := e.gateway("g", apiHost)
			g.Connections = []*Connection{e.connection("r1", x.URL), e.connection("r2", x.URL)}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"r2"}, "are also used by connection"},
		{"hostname outside the gateway", func() *Runtime {
			g := e.gateway("g", apiHost)
			hc := e.connection("h", x.URL)
			hc.Hostname = "elsewhere.test"
			g.Connections = []*Connection{hc}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"h"}, "is not served by gateway"},
		{"upstream without TLS", func() *Runtime {
			g := e.gateway("g", apiHost)
			g.Connections = []*Connection{e.connection("h", "http://127.0.0.1:1")}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"h"}, "https://"},
		{"reserved injected header", func() *Runtime {
			g := e.gateway("g", apiHost)
			hc := e.connection("h", x.URL)
			hc.InjectHeaders = http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Bad": {"a\r\nb"}}
			g.Connections = []*Connection{hc}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"h"}, "reserved"},
		{"unnormalized path prefix", func() *Runtime {
			g := e.gateway("g", apiHost)
			hc := e.connection("h", x.URL)
			hc.PathPrefix = "/a/../b"
			g.Connections = []*Connection{hc}
			return &Runtime{Gateways: []*Gateway{g}}
		}, nil, []string{"h"}, "not a normalized path"},
		{"address in use", func() *Runtime {
			a := e.gateway("ga", apiHost)
			b := e.gateway("gb", otherHost)
			b.ListenAddr = occupied.Addr().String()
			return &Runtime{Gateways: []*Gateway{a, b}}
		}, []string{"gb"}, nil, "listen on " + occupied.Addr().String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.srv.Apply(t.Context(), tc.rt())
			var ae *ApplyError
			if !errors.As(err, &ae) {
				t.Fatalf("Apply: %v, want an *ApplyError", err)
			}
			if len(ae.Gateways) != len(tc.gws) || len(ae.Connections) != len(tc.conns) {
				t.Fatalf("problems: %v", ae)
			}
			for _, id := range tc.gws {
				if ae.Gateways[id] == nil {
					t.Fatalf("no problem for gateway %s: %v", id, ae)
				}
			}
			for _, id := range tc.conns {
				if ae.Connections[id] == nil {
					t.Fatalf("no problem for connection %s: %v", id, ae)
				}
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("%v does not say %q", err, tc.message)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), "1.2.3.4") {
				t.Fatalf("an injected value leaked into the error: %v", err)
			}
			check()
		})
	}
	_ = c
}
