package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/daemon"
	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
	"github.com/sallyport/terraform-provider-sallyport/appliance/logging"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// The benchmarks below profile Sallyport's data path where `make bench`
// finds it short of a target. They run the appliance in-process (package
// daemon, the same code as sallyportd: admin API, reconciler, gateway),
// configure it through the admin API exactly as the harness configures
// sallyportd (SetupSallyport), and send the harness's requests: a bearer
// token verified by the gateway (from the real OpenID provider), a binding
// check, an injected credential, and a TLS 1.3 executor behind it.
//
// Every goroutine carries a pprof label "role" (sallyport, executor, idp,
// load), inherited by the goroutines it starts, so a profile can be
// narrowed to the gateway:
//
//	go test -c -o bench.test ./appliance/bench/
//	taskset -c 1 ./bench.test -test.run '^$' -test.bench 'Sallyport/plain/h1-64' \
//	    -test.benchtime 40000x -test.cpu 1 -test.cpuprofile cpu.out -test.memprofile mem.out
//	go tool pprof -tagfocus role=sallyport -top -cum bench.test cpu.out
//	go tool pprof -sample_index alloc_space -top bench.test mem.out
//
// (Allocation profiles carry no labels; compare with BenchmarkGoProxy,
// which runs the bare httputil.ReverseProxy peer the same way.)

// inProcess is a running set of servers for a benchmark.
type inProcess struct {
	target *Target
	close  func()
	// Sallyport only: its admin API client and objects.
	client *client.Client
	setup  SallyportSetup
	objs   *SallyportObjects
}

func labeled(role string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("role", role), func(context.Context) { f() })
}

// startExecutorInProcess serves the executor on a free port.
func startExecutorInProcess(b *testing.B, m *Material) (string, func()) {
	addr, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	labeled("executor", func() {
		wg.Go(func() {
			if err := ServeExecutor(ctx, addr, m.ExecutorCertFile, m.ExecutorKeyFile); err != nil {
				b.Error(err)
			}
		})
	})
	waitServing(b, &Target{Addr: addr, Roots: m.Pool})
	return addr, func() { cancel(); wg.Wait() }
}

func waitServing(b *testing.B, t *Target) {
	for range 200 {
		if status, _, err := Get(b.Context(), t, PathJSON64); err == nil && status != 0 {
			return
		}
		sleep(b.Context(), 25*time.Millisecond)
	}
	b.Fatalf("nothing serves on %s", t.Addr)
}

// startSallyportInProcess runs the appliance in-process and configures it
// like the harness does.
func startSallyportInProcess(b *testing.B) *inProcess {
	dir := b.TempDir()
	m, err := NewMaterial(filepath.Join(dir, "pki"))
	if err != nil {
		b.Fatal(err)
	}
	execAddr, stopExec := startExecutorInProcess(b, m)
	var (
		idp   *devidp.IDP
		token string
	)
	labeled("idp", func() { idp, token, err = StartIDP(context.Background(), time.Hour) })
	if err != nil {
		b.Fatal(err)
	}
	// The gateway logs a line per request, as sallyportd does (through
	// the same buffered writer, to a file here, as with stderr redirected).
	logFile, err := os.Create(filepath.Join(dir, "sallyportd.log"))
	if err != nil {
		b.Fatal(err)
	}
	logger, logBuf := logging.New(logFile, slog.LevelInfo)
	adminToken, err := admintoken.Generate()
	if err != nil {
		b.Fatal(err)
	}
	a, err := daemon.New(daemon.Config{
		DataDir: filepath.Join(dir, "data"), AdminAddr: "127.0.0.1:0",
		AdminToken: admintoken.Source{Token: adminToken},
		Logger:     logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	labeled("sallyport", func() { err = a.Start() })
	if err != nil {
		b.Fatal(err)
	}
	caPEM, err := os.ReadFile(a.AdminCAFile())
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(client.Config{Endpoint: a.AdminEndpoint(), Token: adminToken, CACertPEM: string(caPEM)})
	if err != nil {
		b.Fatal(err)
	}
	gwAddr, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	setup := SallyportSetup{
		GatewayAddr: gwAddr, ExecutorAddr: execAddr, Material: m, Issuer: idp.Issuer(), IssuerCAPEM: idp.CACertPEM(),
		Variants: true,
	}
	objs, err := SetupSallyport(b.Context(), c, setup)
	if err != nil {
		b.Fatal(err)
	}
	t := &Target{Addr: gwAddr, Roots: m.Pool, Token: token}
	waitServing(b, t)
	return &inProcess{target: t, client: c, setup: setup, objs: objs, close: func() {
		_ = a.Stop(context.Background())
		_ = idp.Close()
		stopExec()
		_ = logBuf.Close()
		_ = logFile.Close()
	}}
}

// startGoProxyInProcess runs the bare Go peer in-process.
func startGoProxyInProcess(b *testing.B) *inProcess { return startGoProxyVariant(b, goProxyOptions{}) }

// startGoProxyVariant runs a variant of the bare Go peer in-process.
func startGoProxyVariant(b *testing.B, opts goProxyOptions) *inProcess {
	m, err := NewMaterial(filepath.Join(b.TempDir(), "pki"))
	if err != nil {
		b.Fatal(err)
	}
	execAddr, stopExec := startExecutorInProcess(b, m)
	addr, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	h, err := newGoProxy("https://"+execAddr, m.CAFile, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	labeled("goproxy", func() {
		wg.Go(func() {
			if err := serveTLS(ctx, addr, m.ServerCertFile, m.ServerKeyFile, h); err != nil {
				b.Error(err)
			}
		})
	})
	// The same token as Sallyport gets, so that requests are byte for
	// byte alike (this peer passes it on unchecked).
	idp, token, err := StartIDP(context.Background(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	_ = idp.Close()
	t := &Target{Addr: addr, Roots: m.Pool, Token: token}
	waitServing(b, t)
	return &inProcess{target: t, close: func() { cancel(); wg.Wait(); stopExec() }}
}

// load sends b.N requests for path over conns keep-alive HTTP/1.1
// connections, or over HTTP/2 (conns connections, 8 streams each).
func load(b *testing.B, t *Target, h2 bool, path string, conns int) {
	run(b, loadWorkers(t, h2, path, conns))
}

func loadWorkers(t *Target, h2 bool, path string, conns int) []worker {
	var ws []worker
	if h2 {
		u := &url.URL{Scheme: "https", Host: t.host(), Path: t.Prefix + path}
		hdr := http.Header{"Authorization": {"Bearer " + t.Token}}
		tr := newH2Transport(t)
		for range conns {
			c := &h2Conn{t: t, tr: tr}
			for range 8 {
				ws = append(ws, &h2Worker{c: c, url: u, hdr: hdr})
			}
		}
	} else {
		cfg := t.tlsConfig([]string{"http/1.1"}, nil)
		head := t.request(http.MethodGet, path, -1)
		for range conns {
			ws = append(ws, &h1Worker{c: &h1Conn{t: t, cfg: cfg}, head: head})
		}
	}
	return ws
}

// run makes b.N requests with the workers, after one each untimed.
func run(b *testing.B, ws []worker) {
	defer func() {
		for _, w := range ws {
			w.close()
		}
	}()
	// One request per worker before the timer: connections, handshakes,
	// the token's first (uncached) verification.
	for _, w := range ws {
		if _, err := w.do(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	labeled("load", func() {
		for _, w := range ws {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if _, err := w.do(b.Context()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	b.StopTimer()
}

// keepAliveCases are the keep-alive rows of the report.
var keepAliveCases = []struct {
	name string
	h2   bool
	path string
}{
	{"h1-64", false, PathJSON64}, {"h1-4k", false, PathJSON4K},
	{"h2-64", true, PathJSON64}, {"h2-4k", true, PathJSON4K},
}

func keepAliveBenchmarks(b *testing.B, t *Target) {
	for _, tc := range keepAliveCases {
		b.Run(tc.name, func(b *testing.B) {
			conns := 32
			if tc.h2 {
				conns = 4
			}
			load(b, t, tc.h2, tc.path, conns)
		})
	}
}

// handshakeBenchmarks measure a fresh connection (and one GET) per
// operation, 16 in flight, without and with session resumption.
func handshakeBenchmarks(b *testing.B, t *Target) {
	for _, resume := range []bool{false, true} {
		b.Run(map[bool]string{false: "hs-full", true: "hs-resumed"}[resume], func(b *testing.B) {
			var cache tls.ClientSessionCache
			if resume {
				cache = tls.NewLRUClientSessionCache(64)
			}
			cfg := t.tlsConfig([]string{"http/1.1"}, cache)
			head := t.request(http.MethodGet, PathJSON64, -1)
			var resumed, total atomic.Int64
			ws := make([]worker, 16)
			for i := range ws {
				ws[i] = &hsWorker{t: t, cfg: cfg, head: head, resumed: &resumed, total: &total}
			}
			run(b, ws)
			if resume && total.Load() > 0 && resumed.Load()*10 < total.Load()*9 {
				b.Errorf("only %d of %d handshakes resumed", resumed.Load(), total.Load())
			}
		})
	}
}

// BenchmarkSallyport is one allowed request through sallyportd's data path
// (in-process), per row of the keep-alive table, for the plain, masking
// and recording connections, and per handshake row.
func BenchmarkSallyport(b *testing.B) {
	p := startSallyportInProcess(b)
	defer p.close()
	for _, v := range []struct{ name, prefix string }{{"plain", ""}, {"masking", PrefixMasking}, {"recording", PrefixRecording}} {
		b.Run(v.name, func(b *testing.B) {
			t := *p.target
			t.Prefix = v.prefix
			keepAliveBenchmarks(b, &t)
		})
	}
	handshakeBenchmarks(b, p.target)
}

// BenchmarkGoProxy is the same load through the bare Go peer, the floor a
// Go gateway is compared with.
func BenchmarkGoProxy(b *testing.B) {
	p := startGoProxyInProcess(b)
	defer p.close()
	keepAliveBenchmarks(b, p.target)
	handshakeBenchmarks(b, p.target)
}

// BenchmarkGoProxyVariants measure, on the bare Go floor, what some of a
// gateway's choices cost: a unique X-Request-Id on every upstream request
// (HPACK indexes it, so each request inserts into and evicts from the
// upstream connection's dynamic table), the same with an HPACK encoder
// table too small to index anything, and HTTP/1.1 instead of HTTP/2
// towards the executor.
func BenchmarkGoProxyVariants(b *testing.B) {
	for _, v := range []struct {
		name string
		opts goProxyOptions
	}{
		{"up=h2", goProxyOptions{}},
		{"up=h2+request-id", goProxyOptions{requestID: true}},
		{"up=h2+request-id+no-index", goProxyOptions{requestID: true, encoderTable: 1}},
		{"up=h1", goProxyOptions{upstreamH1: true}},
		{"up=h1+request-id", goProxyOptions{upstreamH1: true, requestID: true}},
	} {
		b.Run(v.name, func(b *testing.B) {
			p := startGoProxyVariant(b, v.opts)
			defer p.close()
			keepAliveBenchmarks(b, p.target)
		})
	}
}

// BenchmarkAdminWrites creates a connection and its binding per operation
// through the admin API, 10 at a time (terraform's default parallelism),
// on top of the benchmark's own objects: the cost behind the `terraform
// apply` row. Run it with -benchtime 500x to match that row.
func BenchmarkAdminWrites(b *testing.B) {
	p := startSallyportInProcess(b)
	defer p.close()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 10 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				spec := PlainConnection(p.setup, p.objs.GatewayID, p.objs.UpstreamTLS, fmt.Sprintf("/w%d", i), int(i))
				conn, err := p.client.Connections().Create(b.Context(), fmt.Sprintf("w%d", i), spec)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := p.client.IdentityBindings().Create(b.Context(), "planner", model.IdentityBindingSpec{
					ConnectionID: conn.ID, Issuer: p.setup.Issuer, Subject: PlannerSubject,
					AllowedMethods: []string{"GET"}, AllowedPaths: []string{"/**"},
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// transferBenchmarks download and upload TransferSize bytes per operation
// over one keep-alive HTTP/1.1 connection (the transfer rows); -benchtime
// 10x is plenty.
func transferBenchmarks(b *testing.B, t *Target) {
	for _, upload := range []bool{false, true} {
		b.Run(map[bool]string{false: "download", true: "upload"}[upload], func(b *testing.B) {
			c := &h1Conn{t: t, cfg: t.tlsConfig([]string{"http/1.1"}, nil)}
			defer c.close()
			buf := make([]byte, 256<<10)
			one := func() {
				var err error
				if upload {
					_, err = c.roundTrip(b.Context(), t.request(http.MethodPut, PathUpload, TransferSize), &repeatReader{buf: buf, n: TransferSize})
				} else {
					var n int64
					if n, err = c.roundTrip(b.Context(), t.request(http.MethodGet, PathDownload, -1), nil); err == nil && n != TransferSize {
						err = fmt.Errorf("downloaded %d bytes, want %d", n, TransferSize)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			labeled("load", one) // warm-up: connections, token verification
			b.SetBytes(TransferSize)
			b.ResetTimer()
			labeled("load", func() {
				for range b.N {
					one()
				}
			})
		})
	}
}

// BenchmarkTransfers is the transfer rows in-process: Sallyport plain, the
// bare Go peer with HTTP/2 (its default) and with HTTP/1.1 towards the
// executor.
func BenchmarkTransfers(b *testing.B) {
	b.Run("sallyport", func(b *testing.B) {
		p := startSallyportInProcess(b)
		defer p.close()
		transferBenchmarks(b, p.target)
	})
	for _, v := range []struct {
		name string
		opts goProxyOptions
	}{{"goproxy-up=h2", goProxyOptions{}}, {"goproxy-up=h1", goProxyOptions{upstreamH1: true}}} {
		b.Run(v.name, func(b *testing.B) {
			p := startGoProxyVariant(b, v.opts)
			defer p.close()
			transferBenchmarks(b, p.target)
		})
	}
}
