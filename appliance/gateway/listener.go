package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
)

// listener is one listen address, shared by every gateway on it and kept
// across runtime versions. It accepts TCP connections, does the TLS
// handshake itself (so that a tcp connection's name can be spliced before
// any HTTP is spoken), and hands HTTP connections to its http.Server.
type listener struct {
	s         *Server
	addr      string
	ln        net.Listener
	tlsConfig *tls.Config
	srv       *http.Server

	// conns carries handshaken HTTP connections to srv.Serve.
	conns     chan accepted
	done      chan struct{}
	closeOnce sync.Once
	// pending is the state of the connection Accept returned last;
	// http.Server calls ConnContext right after Accept, on the same
	// goroutine, so no lock is needed.
	pending *accepted

	// ctx ends hijacked connections (WebSockets) and tcp sessions when the
	// listener is shut down.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop, handshakes, tcp sessions

	hsOK, hsFailed, hsACME prometheus.Counter
}

type accepted struct {
	conn *tls.Conn
	st   *connState
}

// connState is what the data path knows about one client connection.
type connState struct {
	sni      string
	peer     []*x509.Certificate
	clientIP string
	// fwd caches the Forwarded value for the connection's last Host.
	fwd atomic.Pointer[[2]string]
	// vh caches the SNI's vhost for one table version.
	vh atomic.Pointer[vhostCache]
	// cert caches the client certificate's verification for one set of
	// client CAs (HTTP/2 streams read it concurrently).
	cert atomic.Pointer[certCheck]
	// conn is the client connection; rec its recorded sessions
	// (recsession.go).
	conn net.Conn
	rec  connRecs
}

// forwarded returns the Forwarded header value for host.
func (st *connState) forwarded(host string) string {
	if f := st.fwd.Load(); f != nil && f[0] == host {
		return f[1]
	}
	v := forwarded(st.clientIP, host)
	st.fwd.Store(&[2]string{host, v})
	return v
}

type vhostCache struct {
	t  *table
	vh *vhost
}

type certCheck struct {
	cas  *x509.CertPool
	auth tls.ClientAuthType
	id   *identity.Identity
	err  error
}

type connStateKey struct{}

// vhost returns the vhost of the connection's SNI in table t (nil when no
// gateway serves it any more).
func (st *connState) vhost(t *table, addr string) *vhost {
	if c := st.vh.Load(); c != nil && c.t == t {
		return c.vh
	}
	var vh *vhost
	if site := t.sites[addr]; site != nil {
		vh, _ = site.names.lookup(st.sni)
	}
	st.vh.Store(&vhostCache{t: t, vh: vh})
	return vh
}

// certIdentity returns the identity of the connection's client
// certificate as gateway gw verifies it: nil, nil without a certificate.
// The handshake may have been verified by another gateway's config (a
// resumed session, a runtime swap), so the result is tied to the CAs.
func (st *connState) certIdentity(gw *gwRoute, now time.Time) (*identity.Identity, error) {
	if len(st.peer) == 0 {
		return nil, nil
	}
	ts := gw.g.TLS
	if c := st.cert.Load(); c != nil && c.cas == ts.ClientCAs && c.auth == ts.ClientAuth {
		return c.id, c.err
	}
	c := &certCheck{cas: ts.ClientCAs, auth: ts.ClientAuth}
	if c.err = verifyClientChain(ts, st.peer, now); c.err == nil {
		c.id = identity.FromCertificate(st.peer[0])
	}
	st.cert.Store(c)
	return c.id, c.err
}

// listen opens addr; the listener serves once started.
func (s *Server) listen(ctx context.Context, addr string) (*listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	l := &listener{
		s:     s,
		addr:  addr,
		ln:    ln,
		conns: make(chan accepted),
		done:  make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.tlsConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return s.configForClient(addr, hello)
		},
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
		ErrorLog:          s.errLog,
		BaseContext:       func(net.Listener) context.Context { return l.ctx },
		ConnContext:       l.connContext,
		ConnState:         l.connStateChanged,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: s.limits.MaxConcurrentStreams,
		},
	}
	l.hsOK = s.metrics.handshakes.WithLabelValues(addr, "ok")
	l.hsFailed = s.metrics.handshakes.WithLabelValues(addr, "failed")
	l.hsACME = s.metrics.handshakes.WithLabelValues(addr, "acme")
	return l, nil
}

// start begins accepting and serving.
func (l *listener) start() {
	l.wg.Add(1)
	go l.acceptLoop()
	go func() {
		if err := l.srv.Serve(chanListener{l}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.s.log.Error("http server stopped", "listen_addr", l.addr, "error", err)
		}
	}()
}

// shutdown stops accepting, waits until ctx for requests in flight, then
// ends everything left (WebSockets, tcp sessions, stuck requests).
func (l *listener) shutdown(ctx context.Context) error {
	_ = l.ln.Close()
	err := l.srv.Shutdown(ctx)
	l.cancel()
	if err != nil {
		_ = l.srv.Close()
		err = fmt.Errorf("drain %s: %w", l.addr, err)
	}
	l.wg.Wait()
	return err
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http
			// does rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.s.log.Warn("accept failed", "listen_addr", l.addr, "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake runs the TLS handshake of one connection, then hands it to
// the HTTP server or to a tcp connection.
func (l *listener) handshake(c net.Conn) {
	defer l.wg.Done()
	s := l.s
	tc := tls.Server(c, l.tlsConfig)
	before := s.table.Load()
	ctx, cancel := context.WithTimeout(l.ctx, s.limits.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if !errors.Is(err, errNoSNI) && !errors.Is(err, errUnknownSNI) {
			l.hsFailed.Inc()
		}
		s.log.Debug("tls handshake failed", "listen_addr", l.addr, "remote", c.RemoteAddr().String(), "error", err)
		_ = c.Close()
		return
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol == acmeTLS1 {
		// TLS-ALPN-01: the certificate was the answer; nothing follows.
		l.hsACME.Inc()
		_ = tc.Close()
		return
	}
	l.hsOK.Inc()
	t := s.table.Load()
	st := &connState{sni: canonicalHost(cs.ServerName), peer: cs.PeerCertificates, clientIP: remoteIP(c.RemoteAddr().String()), conn: tc}
	vh := st.vhost(t, l.addr)
	if vh == nil {
		// The gateway went away during the handshake.
		_ = tc.Close()
		return
	}
	if before == t && len(st.peer) > 0 && vh.gw.g.TLS.ClientAuth != tls.NoClientCert {
		// No swap since the handshake began: this gateway's config
		// verified the chain (or, resumed, VerifyConnection did).
		ts := vh.gw.g.TLS
		st.cert.Store(&certCheck{cas: ts.ClientCAs, auth: ts.ClientAuth, id: identity.FromCertificate(st.peer[0])})
	}
	if vh.tcp != nil {
		l.serveTCP(tc, st, vh, t)
		return
	}
	select {
	case l.conns <- accepted{conn: tc, st: st}:
	case <-l.done:
		_ = tc.Close()
	}
}

// chanListener is the net.Listener http.Server serves: it yields the
// connections handshake hands over.
type chanListener struct{ l *listener }

// Accept implements net.Listener.
func (c chanListener) Accept() (net.Conn, error) {
	select {
	case a := <-c.l.conns:
		c.l.pending = &a
		return a.conn, nil
	case <-c.l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; http.Server.Shutdown calls it.
func (c chanListener) Close() error {
	c.l.closeOnce.Do(func() { close(c.l.done) })
	return nil
}

// Addr implements net.Listener.
func (c chanListener) Addr() net.Addr { return c.l.ln.Addr() }

// connContext attaches the connection's state to its requests.
func (l *listener) connContext(ctx context.Context, c net.Conn) context.Context {
	a := l.pending
	l.pending = nil
	if a == nil || net.Conn(a.conn) != c {
		return ctx
	}
	return context.WithValue(ctx, connStateKey{}, a.st)
}
