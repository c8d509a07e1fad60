package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// Upstream defaults for timeouts a connection leaves at zero.
const (
	defaultConnectTimeout        = 10 * time.Second
	defaultResponseHeaderTimeout = 60 * time.Second
	defaultIdleTimeout           = 90 * time.Second
)

// poolKey identifies an upstream transport: connections with equal keys
// share one keep-alive pool, across runtime versions too.
type poolKey struct {
	host     string // host:port
	tls      any    // *tls.Config pointer, or the UpstreamTLSKey
	timeouts Timeouts
	h2only   bool
}

// upstream is the pooled transports to one executor. An http connection's
// requests go to the executor in the protocol the planner spoke: HTTP/2
// streams multiplexed over HTTP/2 (when the executor offers it), HTTP/1.1
// requests over a pool of HTTP/1.1 keep-alive connections, as nginx does:
// streamed bodies then pass without HTTP/2's framing, flow-control updates
// and per-stream buffer copies (BenchmarkTransfers: about a third less CPU
// per byte), while many small streams share one HTTP/2 connection. gRPC is
// HTTP/2 end to end.
type upstream struct {
	h1       *http.Transport // nil for gRPC
	h2       *http.Transport
	inflight atomic.Int64
	retired  atomic.Bool
}

// RoundTrip implements http.RoundTripper.
func (u *upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if u.h1 != nil && r.ProtoMajor < 2 {
		return u.h1.RoundTrip(r)
	}
	return u.h2.RoundTrip(r)
}

// closeIdle closes the idle connections of both pools.
func (u *upstream) closeIdle() {
	if u.h1 != nil {
		u.h1.CloseIdleConnections()
	}
	u.h2.CloseIdleConnections()
}

// acquire marks a request in flight on u.
func (u *upstream) acquire() { u.inflight.Add(1) }

// release ends a request; the last one on a retired transport closes its
// idle connections (CloseIdleConnections never breaks a request in
// flight, but connections returned to the pool after it would linger).
func (u *upstream) release() {
	if u.inflight.Add(-1) == 0 && u.retired.Load() {
		u.closeIdle()
	}
}

// retire is called once no table version refers to u any more.
func (u *upstream) retire() {
	u.retired.Store(true)
	if u.inflight.Load() == 0 {
		u.closeIdle()
	}
}

// upstreamPool holds the transports of one table version.
type upstreamPool struct {
	prev map[poolKey]*upstream
	m    map[poolKey]*upstream
}

func newUpstreamPool(prev map[poolKey]*upstream) *upstreamPool {
	return &upstreamPool{prev: prev, m: map[poolKey]*upstream{}}
}

func upstreamKey(c *Connection) poolKey {
	k := poolKey{host: c.Upstream.Host, timeouts: c.Timeouts, h2only: c.Protocol == protoGRPC}
	if c.UpstreamTLSKey != "" {
		k.tls = c.UpstreamTLSKey
	} else {
		k.tls = c.UpstreamTLS
	}
	return k
}

// get returns the transport for c: the previous version's when its key is
// unchanged.
func (p *upstreamPool) get(s *Server, c *Connection) *upstream {
	k := upstreamKey(c)
	if u := p.m[k]; u != nil {
		return u
	}
	u := p.prev[k]
	if u == nil {
		u = &upstream{h2: s.newTransport(c, true)}
		if c.Protocol != protoGRPC {
			u.h1 = s.newTransport(c, false)
		}
	}
	p.m[k] = u
	return u
}

// newTransport builds a transport for a connection's executor: HTTP/2
// (HTTP/2 only for gRPC, else HTTP/2 when the executor offers it) or
// HTTP/1.1 only.
func (s *Server) newTransport(c *Connection, h2 bool) *http.Transport {
	to := c.Timeouts
	connect := cmpDuration(to.Connect, defaultConnectTimeout)
	var tlsc *tls.Config
	if c.UpstreamTLS != nil {
		tlsc = c.UpstreamTLS.Clone()
	} else {
		tlsc = &tls.Config{} // system roots
	}
	tlsc.MinVersion = max(tlsc.MinVersion, tls.VersionTLS12)
	tlsc.InsecureSkipVerify = false
	tr := &http.Transport{
		// Never a proxy from the environment: the executor is reached
		// directly, through the destination guard.
		Proxy:                  nil,
		DialContext:            s.guard.dialer(connect, s.opts.Resolver).DialContext,
		TLSClientConfig:        tlsc,
		TLSHandshakeTimeout:    connect,
		ResponseHeaderTimeout:  cmpDuration(to.ResponseHeader, defaultResponseHeaderTimeout),
		IdleConnTimeout:        cmpDuration(to.Idle, defaultIdleTimeout),
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    256,
		MaxResponseHeaderBytes: 1 << 20,
		// Bodies pass through as they are: no transparent gzip.
		DisableCompression: true,
		// Net/http's defaults (4 KiB): large bodies bypass these buffers,
		// and every pooled HTTP/1.1 connection holds a pair.
	}
	var p http.Protocols
	switch {
	case !h2:
		p.SetHTTP1(true)
	case c.Protocol == protoGRPC:
		p.SetHTTP2(true)
	default:
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	tr.Protocols = &p
	return tr
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// copyBufferSize is the size of the proxy's copy buffers: two TLS records.
const copyBufferSize = 32 << 10

// bufPool serves httputil.ReverseProxy's copy buffers. It pools array
// pointers, so that neither Get nor Put allocates.
type bufPool struct{ p sync.Pool }

// Get implements httputil.BufferPool.
func (b *bufPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

// Put implements httputil.BufferPool.
func (b *bufPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}

var copyBuffers = &bufPool{}

// newProxy builds the reverse proxy of an http or grpc route.
func (s *Server) newProxy(r *route) *httputil.ReverseProxy {
	p := &httputil.ReverseProxy{
		Rewrite:      r.rewrite,
		Transport:    r.up,
		ErrorHandler: s.proxyError,
		BufferPool:   copyBuffers,
		ErrorLog:     s.errLog,
	}
	if r.needsExchange() {
		p.ModifyResponse = r.modifyResponse
	}
	if r.c.Protocol == protoGRPC {
		// Streaming RPCs: every message goes out as soon as it arrives.
		p.FlushInterval = -1
		next := p.ModifyResponse
		p.ModifyResponse = func(resp *http.Response) error {
			trailersOnly(resp)
			if next != nil {
				return next(resp)
			}
			return nil
		}
	}
	// For http, the default flushes at once for streams of unknown length
	// and server-sent events, and buffers only fixed-length bodies.
	return p
}

// maskedAcceptEncoding is the Accept-Encoding of a masked route's
// requests, shared (capped, so that an append copies).
var maskedAcceptEncoding = []string{masking.AcceptEncoding}

// rewrite turns the cleaned inbound request into the executor's request.
// It runs after httputil.ReverseProxy has removed hop-by-hop headers, so
// nothing set here can be stripped by a client's Connection header.
func (r *route) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	u := out.URL
	u.Scheme = "https"
	u.Host = r.c.Upstream.Host
	// in.URL carries the normalized path (set by the handler).
	u.Path = r.basePath + in.URL.Path
	u.RawPath = r.baseRaw + in.URL.RawPath
	if in.URL.RawPath == "" {
		u.RawPath = ""
	}
	u.Fragment, u.RawFragment, u.User, u.Opaque = "", "", nil, ""
	out.Host = "" // the executor's own name

	h := out.Header
	scrubHeaders(h)
	var clientIP, fwd string
	if st, ok := in.Context().Value(connStateKey{}).(*connState); ok {
		clientIP, fwd = st.clientIP, st.forwarded(in.Host)
	} else {
		clientIP = remoteIP(in.RemoteAddr)
		fwd = forwarded(clientIP, in.Host)
	}
	// One allocation for the gateway's header values.
	vals := [...]string{clientIP, in.Host, "https", fwd}
	vs := vals[:]
	h["X-Forwarded-For"] = vs[0:1:1]
	h["X-Forwarded-Host"] = vs[1:2:2]
	h["X-Forwarded-Proto"] = vs[2:3:3]
	h["Forwarded"] = vs[3:4:4]
	if rid := in.Header["X-Request-Id"]; len(rid) == 1 {
		h["X-Request-Id"] = rid
	}
	for _, iv := range r.inject {
		h[iv.key] = iv.value
	}
	if r.masker != nil {
		// Ask only for codings masking decodes, and for whole bodies: a
		// range of a body cannot be masked (a match could straddle two
		// ranges).
		h["Accept-Encoding"] = maskedAcceptEncoding[:1:1]
		delete(h, "Range")
		delete(h, "If-Range")
	}
	if r.recording != nil {
		if ex := exchangeFrom(in.Context()); ex != nil {
			// Not a copy: nothing changes the outgoing header after
			// the rewrite (the transport only reads it).
			ex.outHeader = h
		}
	}
}

// remoteIP returns the IP of a RemoteAddr, without the port.
func remoteIP(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().String()
	}
	return ""
}

// forwarded builds an RFC 7239 Forwarded value. host has passed net/http's
// Host validation (no quotes or backslashes), so it needs no escaping.
func forwarded(ip, host string) string {
	if strings.IndexByte(ip, ':') >= 0 {
		ip = "[" + ip + "]"
	}
	return `for="` + ip + `";host="` + host + `";proto=https`
}

// proxyError answers a failed upstream exchange: 504 for a timeout, 413 for
// a request body over the gateway's limit, 403 naming the rule for one
// over a guardrail's, 502 for a response that cannot be masked and for
// everything else. Nothing about the executor or the cause reaches the
// client beyond the status.
func (s *Server) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	status, reason := http.StatusBadGateway, reasonUpstreamError
	var nerr net.Error
	var mbe *http.MaxBytesError
	var ble *guardrails.BodyLimitError
	var mr *maskRefusal
	switch {
	case errors.As(err, &ble):
		if ex, ok := w.(*exchange); ok && ex.route != nil {
			ex.err = err
			s.denyGuardrail(ex, ble.Denial)
			return
		}
		status = http.StatusForbidden
	case errors.As(err, &mr):
		reason = reasonMaskingRefused
		if ex, ok := w.(*exchange); ok && ex.sess != nil {
			_ = ex.sess.Decision(recording.Decision{Kind: "masking", Outcome: decisionDeny, Reason: mr.err.Error(), Status: status})
		}
	case errors.As(err, &mbe):
		status, reason = http.StatusRequestEntityTooLarge, reasonBodyTooLarge
	case errors.Is(err, ErrDestinationDenied):
		reason = reasonDestination
	case errors.Is(err, context.Canceled) && req.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		status, reason = 499, reasonClientGone
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		status, reason = http.StatusGatewayTimeout, reasonUpstreamTimeout
	}
	if ex, ok := w.(*exchange); ok {
		ex.reason = reason
		ex.err = err
		if status == 499 {
			ex.status = status
			return
		}
		writeError(ex, status, ex.id, false)
		return
	}
	w.WriteHeader(status)
}

// grpcStatusFields are what a gRPC status travels in.
var grpcStatusFields = []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"}

// trailersOnly turns a gRPC "trailers-only" response (the status in the
// one HEADERS frame that ends the stream, as an executor answers an
// immediate error) into headers plus trailers. The proxy flushes headers as
// soon as it has them, so the status would otherwise reach the planner in
// a HEADERS frame that does not end the stream, where gRPC clients do not
// look for it ("server closed the stream without sending trailers").
func trailersOnly(resp *http.Response) {
	if resp.Header.Get("Grpc-Status") == "" {
		return
	}
	if resp.Trailer == nil {
		resp.Trailer = http.Header{}
	}
	for _, k := range grpcStatusFields {
		if v, ok := resp.Header[k]; ok {
			resp.Trailer[k] = v
			delete(resp.Header, k)
		}
	}
}
