package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// Options configure a Server. Every field is optional.
type Options struct {
	// Logger receives one line per request and per tcp session, and the
	// data path's own events (slog.Default() when nil).
	Logger *slog.Logger
	// Registry receives the gateway's metrics (none are exported when
	// nil).
	Registry *prometheus.Registry
	// DeniedAddrs are the appliance's own admin listener addresses
	// ("IP:PORT", ":PORT", "0.0.0.0:PORT", "localhost:PORT"); upstream
	// dials to them are refused.
	DeniedAddrs []string
	// Clock tells the time for binding expiry and certificate validity
	// (time.Now when nil).
	Clock func() time.Time
	// Resolver resolves executors' names (net.DefaultResolver when nil).
	Resolver *net.Resolver
	// Limits bound what clients may send; zero fields take the defaults.
	Limits Limits
	// Recorder records the sessions of connections with recording
	// enabled; a runtime with such a connection is refused without it.
	Recorder *recording.Recorder
}

// Limits bound the client side of the data path. A zero field takes the
// default given in its comment.
type Limits struct {
	// HandshakeTimeout bounds a client's TLS handshake (10s).
	HandshakeTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers (10s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (120s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header size (64 KiB).
	MaxHeaderBytes int
	// MaxRequestBodyBytes bounds an http request's body (1 GiB); a larger
	// body ends with 413. gRPC streams and WebSocket sessions are not
	// bounded by it.
	MaxRequestBodyBytes int64
	// MaxConcurrentStreams bounds a client's concurrent HTTP/2 streams
	// (250).
	MaxConcurrentStreams int
	// DrainTimeout bounds how long a listener no longer in use keeps
	// serving its requests in flight before it is closed (30s).
	DrainTimeout time.Duration
	// MaxInspectedBodyBytes bounds the request body buffered for
	// guardrails that read it (body patterns, JSON-RPC methods, MCP
	// tools) when no smaller max_request_body_bytes applies (1 MiB); a
	// larger body is denied, since it cannot be inspected.
	MaxInspectedBodyBytes int64
}

func (l Limits) withDefaults() Limits {
	l.HandshakeTimeout = cmpDuration(l.HandshakeTimeout, 10*time.Second)
	l.ReadHeaderTimeout = cmpDuration(l.ReadHeaderTimeout, 10*time.Second)
	l.IdleTimeout = cmpDuration(l.IdleTimeout, 120*time.Second)
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, 64<<10)
	l.MaxRequestBodyBytes = cmp.Or(l.MaxRequestBodyBytes, 1<<30)
	l.MaxConcurrentStreams = cmp.Or(l.MaxConcurrentStreams, 250)
	l.DrainTimeout = cmpDuration(l.DrainTimeout, 30*time.Second)
	l.MaxInspectedBodyBytes = cmp.Or(l.MaxInspectedBodyBytes, guardrails.DefaultInspectBytes)
	return l
}

// ApplyError says why Apply refused a runtime, per object, so the
// reconciler can put each reason in that object's status. Apply is all or
// nothing: after an ApplyError the previous runtime keeps serving.
type ApplyError struct {
	// Gateways are problems by Gateway.ID (invalid settings, a hostname
	// clash, a listen error).
	Gateways map[string]error
	// Connections are problems by Connection.ID.
	Connections map[string]error
}

// Error implements error.
func (e *ApplyError) Error() string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(e.Gateways)) {
		parts = append(parts, fmt.Sprintf("gateway %s: %v", id, e.Gateways[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(e.Connections)) {
		parts = append(parts, fmt.Sprintf("connection %s: %v", id, e.Connections[id]))
	}
	return "gateway runtime refused: " + strings.Join(parts, "; ")
}

// Server is the data path. Create it with New, give it runtimes with
// Apply, and stop it with Close.
type Server struct {
	opts    Options
	limits  Limits
	log     *slog.Logger
	errLog  *log.Logger
	metrics *metrics
	guard   *guard
	now     func() time.Time
	ids     idGen

	table atomic.Pointer[table]

	mu        sync.Mutex // serializes Apply and Close
	closed    bool
	listeners map[string]*listener
	pool      map[poolKey]*upstream
	drains    sync.WaitGroup
	// closing are recording sessions open or being closed (manifest,
	// fsync, anchor); recs are the open ones by client connection.
	closing sync.WaitGroup
	recs    recSessions

	sessMu   sync.Mutex
	sessions map[*tcpSession]struct{}
	upgraded map[*recordedConn]struct{}
}

// New creates a Server that serves nothing until the first Apply.
func New(opts Options) (*Server, error) {
	s := &Server{
		opts:      opts,
		limits:    opts.Limits.withDefaults(),
		log:       opts.Logger,
		now:       opts.Clock,
		listeners: map[string]*listener{},
		pool:      map[poolKey]*upstream{},
		sessions:  map[*tcpSession]struct{}{},
		upgraded:  map[*recordedConn]struct{}{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "gateway")
	// net/http's and ReverseProxy's own messages are debugging aids; the
	// request log says what happened.
	s.errLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.guard, err = newGuard(opts.DeniedAddrs); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var reg prometheus.Registerer
	if opts.Registry != nil {
		reg = opts.Registry
	}
	if s.metrics, err = newMetrics(reg); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.ids.init(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.table.Store(&table{sites: map[string]*site{}, conns: map[string]*route{}})
	return s, nil
}

// Apply makes rt the live runtime. It validates rt, opens listeners for new
// addresses, then swaps the routing table atomically. Listeners on
// addresses still in use are kept (with their connections), listeners no
// longer used stop accepting and drain; requests in flight finish on the
// version they started with, and upstream transports no longer used are
// closed once their requests are done. On error (an *ApplyError for
// problems with objects) nothing changes.
func (s *Server) Apply(ctx context.Context, rt *Runtime) error {
	if rt == nil {
		return errors.New("gateway: nil runtime")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("gateway: server closed")
	}
	pool := newUpstreamPool(s.pool)
	t, err := s.buildTable(rt, pool)
	if err != nil {
		return err
	}

	// Open the new addresses first: a listen error leaves everything as it
	// was.
	opened := map[string]*listener{}
	for addr := range t.sites {
		if s.listeners[addr] != nil {
			continue
		}
		l, err := s.listen(ctx, addr)
		if err != nil {
			for _, o := range opened {
				_ = o.ln.Close()
			}
			ae := &ApplyError{Gateways: map[string]error{}}
			for _, g := range rt.Gateways {
				if g.ListenAddr == addr {
					ae.Gateways[g.ID] = err
				}
			}
			return ae
		}
		opened[addr] = l
	}

	old := s.table.Swap(t)
	for addr, l := range opened {
		s.listeners[addr] = l
		l.start()
	}
	for addr, l := range s.listeners {
		if t.sites[addr] != nil {
			continue
		}
		delete(s.listeners, addr)
		s.drains.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.limits.DrainTimeout)
			defer cancel()
			if err := l.shutdown(ctx); err != nil {
				s.log.Warn("listener drained with errors", "listen_addr", l.addr, "error", err)
			}
		})
	}
	for k, u := range s.pool {
		if pool.m[k] != u {
			u.retire()
		}
	}
	s.pool = pool.m
	s.recheckSessions(t)
	for id, r := range old.conns {
		if nr := t.conns[id]; nr == nil || nr.label != r.label || nr.gw.label != r.gw.label {
			s.metrics.forget(r.gw.label, r.label)
		}
	}
	s.log.Info("runtime applied", "revision", rt.Revision, "gateways", len(rt.Gateways), "listeners", len(s.listeners))
	return nil
}

// ListenerAddr returns the bound address of the listener for a gateway
// ListenAddr (useful with port 0), and whether it is open.
func (s *Server) ListenerAddr(listenAddr string) (net.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listeners[listenAddr]
	if l == nil {
		return nil, false
	}
	return l.ln.Addr(), true
}

// Close stops accepting, lets requests in flight finish until ctx is done,
// then closes every connection, tcp session and upstream transport.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := slices.Collect(maps.Values(s.listeners))
	s.listeners = map[string]*listener{}
	s.table.Store(&table{sites: map[string]*site{}, conns: map[string]*route{}})
	s.mu.Unlock()

	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() { errs[i] = l.shutdown(ctx) })
	}
	wg.Wait()
	s.recheckSessions(s.table.Load())
	s.sessMu.Lock()
	for c := range s.upgraded {
		_ = c.ReadWriteCloser.Close()
	}
	s.sessMu.Unlock()
	drained := make(chan struct{})
	go func() { s.drains.Wait(); s.closing.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for draining listeners: %w", ctx.Err()))
	}
	s.mu.Lock()
	for _, u := range s.pool {
		u.retire()
	}
	s.pool = map[poolKey]*upstream{}
	s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway: close: %w", err)
	}
	return nil
}
