package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is a peer as the load generator reaches it: it dials Addr and
// sends Hostname as SNI and Host.
type Target struct {
	// Addr is the peer's TLS listener (127.0.0.1:PORT).
	Addr string
	// Roots verify the peer's certificate.
	Roots *x509.CertPool
	// Token is sent as "Authorization: Bearer" to every peer: Sallyport
	// verifies it, the others pass it on.
	Token string
	// Prefix is put before every path (Sallyport's masking and recording
	// connections).
	Prefix string
}

// host is the Host header value.
func (t *Target) host() string {
	_, port, _ := net.SplitHostPort(t.Addr)
	return net.JoinHostPort(Hostname, port)
}

// tlsConfig is the client side of every handshake: TLS 1.3 with X25519
// only, so that every peer does the same key exchange (Go servers would
// otherwise pick the hybrid X25519MLKEM768, which Debian's OpenSSL cannot
// do, and compare unequal work).
func (t *Target) tlsConfig(protos []string, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ServerName:         Hostname,
		RootCAs:            t.Roots,
		NextProtos:         protos,
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		ClientSessionCache: cache,
	}
}

// dial opens a TCP connection and completes a TLS handshake.
func (t *Target) dial(ctx context.Context, cfg *tls.Config) (*tls.Conn, net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, nil, err
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		return nil, nil, err
	}
	return tc, raw, nil
}

// request is an HTTP/1.1 request head for path, with a Content-Length
// when bodyLen >= 0.
func (t *Target) request(method, path string, bodyLen int64) []byte {
	b := []byte(method + " " + t.Prefix + path + " HTTP/1.1\r\nHost: " + t.host() + "\r\n")
	if t.Token != "" {
		b = append(b, "Authorization: Bearer "+t.Token+"\r\n"...)
	}
	b = append(b, "User-Agent: sallyport-bench\r\nAccept: */*\r\n"...)
	if bodyLen >= 0 {
		b = append(b, "Content-Type: application/octet-stream\r\nContent-Length: "+strconv.FormatInt(bodyLen, 10)+"\r\n"...)
	}
	return append(b, "\r\n"...)
}

// StatusError is a response other than 200.
type StatusError int

func (e StatusError) Error() string { return "HTTP status " + strconv.Itoa(int(e)) }

// h1Conn is a keep-alive HTTP/1.1 connection that reconnects after an
// error.
type h1Conn struct {
	t   *Target
	cfg *tls.Config

	mu  sync.Mutex // guards raw against close from another goroutine
	raw net.Conn
	tc  *tls.Conn
	br  *bufio.Reader
}

func (h *h1Conn) conn(ctx context.Context) (*tls.Conn, *bufio.Reader, error) {
	h.mu.Lock()
	tc, br := h.tc, h.br
	h.mu.Unlock()
	if tc != nil {
		return tc, br, nil
	}
	tc, raw, err := h.t.dial(ctx, h.cfg)
	if err != nil {
		return nil, nil, err
	}
	br = bufio.NewReaderSize(tc, 32<<10)
	h.mu.Lock()
	h.tc, h.raw, h.br = tc, raw, br
	h.mu.Unlock()
	return tc, br, nil
}

// roundTrip sends head (and body, when given) and reads the response; it
// returns the response body's size.
func (h *h1Conn) roundTrip(ctx context.Context, head []byte, body io.Reader) (int64, error) {
	tc, br, err := h.conn(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := tc.Write(head); err != nil {
		h.close()
		return 0, err
	}
	if body != nil {
		if _, err := io.Copy(tc, body); err != nil {
			h.close()
			return 0, err
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.close()
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.Close {
		h.close()
	}
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, StatusError(resp.StatusCode)
	}
	return n, nil
}

// close drops the connection; the next roundTrip dials a new one. It is
// safe to call from another goroutine to end a roundTrip in progress.
func (h *h1Conn) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.raw != nil {
		_ = h.raw.Close()
	}
	h.raw, h.tc, h.br = nil, nil, nil
}

// h2Conn is one HTTP/2 connection shared by several streams, redialed
// after an error.
type h2Conn struct {
	t  *Target
	tr *http.Transport

	mu sync.Mutex
	cc *http.ClientConn
}

// newH2Transport returns a transport whose client connections speak HTTP/2
// only and dial the target's address whatever the URL's host.
func newH2Transport(t *Target) *http.Transport {
	var protos http.Protocols
	protos.SetHTTP2(true)
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		TLSClientConfig:    t.tlsConfig([]string{"h2"}, nil),
		Protocols:          &protos,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, t.Addr)
		},
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

func (h *h2Conn) clientConn(ctx context.Context) (*http.ClientConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cc != nil && h.cc.Err() == nil {
		return h.cc, nil
	}
	if h.cc != nil {
		_ = h.cc.Close()
	}
	h.cc = nil
	cc, err := h.tr.NewClientConn(ctx, "https", h.t.host())
	if err != nil {
		return nil, err
	}
	h.cc = cc
	return cc, nil
}

func (h *h2Conn) drop(cc *http.ClientConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cc == cc {
		_ = cc.Close()
		h.cc = nil
	}
}

func (h *h2Conn) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cc != nil {
		_ = h.cc.Close()
	}
	h.cc = nil
}

// worker is one closed-loop request issuer.
type worker interface {
	// do performs one request and returns the response body's size.
	do(ctx context.Context) (int64, error)
	// close ends a request in progress.
	close()
}

type h1Worker struct {
	c    *h1Conn
	head []byte
}

func (w *h1Worker) do(ctx context.Context) (int64, error) { return w.c.roundTrip(ctx, w.head, nil) }
func (w *h1Worker) close()                                { w.c.close() }

type h2Worker struct {
	c   *h2Conn
	url *url.URL
	hdr http.Header
}

func (w *h2Worker) do(ctx context.Context) (int64, error) {
	cc, err := w.c.clientConn(ctx)
	if err != nil {
		return 0, err
	}
	req := (&http.Request{Method: http.MethodGet, URL: w.url, Header: w.hdr, Host: w.url.Host}).WithContext(ctx)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		if cc.Err() != nil {
			w.c.drop(cc)
		}
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, StatusError(resp.StatusCode)
	}
	return n, nil
}

func (w *h2Worker) close() { w.c.close() }

// hsWorker opens a connection per request: dial, handshake, one GET,
// close (with an RST, so that neither side keeps a TIME_WAIT entry).
type hsWorker struct {
	t    *Target
	cfg  *tls.Config
	head []byte
	// resumed and total count the handshakes (warm-up included).
	resumed, total *atomic.Int64

	mu  sync.Mutex
	raw net.Conn
}

func (w *hsWorker) do(ctx context.Context) (int64, error) {
	tc, raw, err := w.t.dial(ctx, w.cfg)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	w.raw = raw
	w.mu.Unlock()
	defer func() {
		if tcp, ok := raw.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = raw.Close()
	}()
	w.total.Add(1)
	if tc.ConnectionState().DidResume {
		w.resumed.Add(1)
	}
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := tc.Write(w.head); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(tc, 4<<10), nil)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, StatusError(resp.StatusCode)
	}
	return n, nil
}

func (w *hsWorker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.raw != nil {
		_ = w.raw.Close()
	}
}

// Sample is what one measured window yielded.
type Sample struct {
	// Requests completed with status 200 and Errors failed, in the window.
	Requests, Errors int64
	// Bytes is the response body bytes of the completed requests.
	Bytes int64
	// Elapsed is the window's length.
	Elapsed time.Duration
	// Latencies of the completed requests, sorted.
	Latencies []time.Duration
	// FirstError describes the first failure.
	FirstError string
	// ServerCPU is the CPU time the measured process tree used in the
	// window, LoadCPU the load generator's (the whole harness process).
	ServerCPU, LoadCPU time.Duration
}

// RPS is requests per second.
func (s Sample) RPS() float64 { return float64(s.Requests) / s.Elapsed.Seconds() }

// Percentile returns the q-quantile latency (0 < q <= 1).
func (s Sample) Percentile(q float64) time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(s.Latencies))+0.5) - 1
	return s.Latencies[min(max(i, 0), len(s.Latencies)-1)]
}

// CPUPerRequest is the measured tree's CPU time per completed request.
func (s Sample) CPUPerRequest() time.Duration {
	if s.Requests == 0 {
		return 0
	}
	return s.ServerCPU / time.Duration(s.Requests)
}

// Window is a load row's timing.
type Window struct {
	Warmup, Measure time.Duration
}

// drive runs the workers in closed loops: warm-up, then a measured
// window, then it stops them. pid is the process tree whose CPU time is
// measured; during, when set, runs for the measured window.
func drive(ctx context.Context, workers []worker, w Window, pid int, during func(context.Context)) Sample {
	type stats struct {
		n, errs, bytes int64
		lat            []time.Duration
		firstErr       error
	}
	var phase atomic.Int32 // 0 warm-up, 1 measuring, 2 stopping
	st := make([]stats, len(workers))
	var wg sync.WaitGroup
	for i, wk := range workers {
		s := &st[i]
		s.lat = make([]time.Duration, 0, 1<<14)
		wg.Go(func() {
			for phase.Load() < 2 {
				t0 := time.Now()
				n, err := wk.do(ctx)
				d := time.Since(t0)
				switch phase.Load() {
				case 1:
					if err != nil {
						s.errs++
						if s.firstErr == nil {
							s.firstErr = err
						}
					} else {
						s.n++
						s.bytes += n
						s.lat = append(s.lat, d)
					}
				case 2:
					return
				}
				if err != nil && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond) // no spinning on a refusing peer
				}
			}
		})
	}
	sleep(ctx, w.Warmup)
	cpu0, self0 := treeCPU(pid), selfCPU()
	start := time.Now()
	phase.Store(1)
	dctx, stopDuring := context.WithCancel(ctx)
	var dwg sync.WaitGroup
	if during != nil {
		dwg.Go(func() { during(dctx) })
	}
	sleep(ctx, w.Measure)
	phase.Store(2)
	out := Sample{Elapsed: time.Since(start)}
	out.ServerCPU, out.LoadCPU = treeCPU(pid)-cpu0, selfCPU()-self0
	stopDuring()
	dwg.Wait()
	for _, wk := range workers {
		wk.close()
	}
	wg.Wait()
	for i := range st {
		s := &st[i]
		out.Requests += s.n
		out.Errors += s.errs
		out.Bytes += s.bytes
		out.Latencies = append(out.Latencies, s.lat...)
		if s.firstErr != nil && out.FirstError == "" {
			out.FirstError = s.firstErr.Error()
		}
	}
	slices.Sort(out.Latencies)
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// KeepAliveH1 measures conns keep-alive HTTP/1.1 connections, one request
// in flight on each.
func KeepAliveH1(ctx context.Context, t *Target, path string, conns int, w Window, pid int, during func(context.Context)) Sample {
	cfg := t.tlsConfig([]string{"http/1.1"}, nil)
	head := t.request(http.MethodGet, path, -1)
	ws := make([]worker, conns)
	for i := range ws {
		ws[i] = &h1Worker{c: &h1Conn{t: t, cfg: cfg}, head: head}
	}
	return drive(ctx, ws, w, pid, during)
}

// KeepAliveH2 measures conns HTTP/2 connections with streams requests in
// flight on each.
func KeepAliveH2(ctx context.Context, t *Target, path string, conns, streams int, w Window, pid int, during func(context.Context)) Sample {
	tr := newH2Transport(t)
	defer tr.CloseIdleConnections()
	u := &url.URL{Scheme: "https", Host: t.host(), Path: t.Prefix + path}
	hdr := http.Header{"User-Agent": {"sallyport-bench"}, "Accept": {"*/*"}}
	if t.Token != "" {
		hdr["Authorization"] = []string{"Bearer " + t.Token}
	}
	var ws []worker
	for range conns {
		c := &h2Conn{t: t, tr: tr}
		for range streams {
			ws = append(ws, &h2Worker{c: c, url: u, hdr: hdr})
		}
	}
	return drive(ctx, ws, w, pid, during)
}

// Handshakes measures fresh connections per second, a GET of path on each,
// with parallel connections in flight. With resume, the client offers the
// session tickets it got; it also returns the share of handshakes (warm-up
// included) that resumed a session.
func Handshakes(ctx context.Context, t *Target, path string, parallel int, resume bool, w Window, pid int) (Sample, float64) {
	var cache tls.ClientSessionCache
	if resume {
		cache = tls.NewLRUClientSessionCache(4 * parallel)
	}
	cfg := t.tlsConfig([]string{"http/1.1"}, cache)
	head := t.request(http.MethodGet, path, -1)
	var resumed, total atomic.Int64
	ws := make([]worker, parallel)
	for i := range ws {
		ws[i] = &hsWorker{t: t, cfg: cfg, head: head, resumed: &resumed, total: &total}
	}
	s := drive(ctx, ws, w, pid, nil)
	if total.Load() == 0 {
		return s, 0
	}
	return s, float64(resumed.Load()) / float64(total.Load())
}

// Transfer is the result of a series of 64 MiB transfers.
type Transfer struct {
	// MBps is the throughput in 10^6 bytes per second.
	MBps float64
	// Count is the number of measured transfers.
	Count int
	// Err is the first failure.
	Err error
}

// repeatReader yields n bytes from a repeated buffer.
type repeatReader struct {
	buf []byte
	n   int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(int64(len(p)), r.n)], r.buf)
	r.n -= int64(k)
	return k, nil
}

// Transfers downloads (or uploads) TransferSize bytes over one keep-alive
// HTTP/1.1 connection, once to warm up, then until measure has passed (at
// least twice).
func Transfers(ctx context.Context, t *Target, upload bool, measure time.Duration) Transfer {
	c := &h1Conn{t: t, cfg: t.tlsConfig([]string{"http/1.1"}, nil)}
	defer c.close()
	buf := make([]byte, 256<<10)
	one := func() (time.Duration, error) {
		t0 := time.Now()
		var n int64
		var err error
		if upload {
			n, err = c.roundTrip(ctx, t.request(http.MethodPut, PathUpload, TransferSize), &repeatReader{buf: buf, n: TransferSize})
			if err == nil && n == 0 {
				err = errors.New("empty upload answer")
			}
		} else {
			n, err = c.roundTrip(ctx, t.request(http.MethodGet, PathDownload, -1), nil)
			if err == nil && n != TransferSize {
				err = fmt.Errorf("downloaded %d bytes, want %d", n, TransferSize)
			}
		}
		return time.Since(t0), err
	}
	if _, err := one(); err != nil {
		return Transfer{Err: err}
	}
	var total time.Duration
	count := 0
	for total < measure || count < 2 {
		d, err := one()
		if err != nil {
			return Transfer{Err: err}
		}
		total += d
		count++
		if ctx.Err() != nil {
			return Transfer{Err: ctx.Err()}
		}
	}
	return Transfer{MBps: float64(count) * TransferSize / total.Seconds() / 1e6, Count: count}
}

// IdleConns opens up to n keep-alive HTTP/1.1 connections (parallel at a
// time), makes one request on each and keeps them open. It returns the
// open connections (close them with CloseAll) and the first error that
// stopped it short.
func IdleConns(ctx context.Context, t *Target, n, parallel int) ([]net.Conn, error) {
	cfg := t.tlsConfig([]string{"http/1.1"}, tls.NewLRUClientSessionCache(64))
	head := t.request(http.MethodGet, PathJSON64, -1)
	var (
		mu       sync.Mutex
		conns    []net.Conn
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range parallel {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				mu.Lock()
				stop := firstErr != nil
				mu.Unlock()
				if stop || ctx.Err() != nil {
					return
				}
				c := &h1Conn{t: t, cfg: cfg}
				_, err := c.roundTrip(ctx, head, nil)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					c.close()
				} else if c.raw != nil {
					conns = append(conns, c.raw)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return conns, firstErr
}

// CloseAll closes connections.
func CloseAll(conns []net.Conn) {
	for _, c := range conns {
		if tcp, ok := c.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Get makes one request and returns the response body (for checks).
func Get(ctx context.Context, t *Target, path string) (int, []byte, error) {
	tc, raw, err := t.dial(ctx, t.tlsConfig([]string{"http/1.1"}, nil))
	if err != nil {
		return 0, nil, err
	}
	defer raw.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := tc.Write(t.request(http.MethodGet, path, -1)); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
