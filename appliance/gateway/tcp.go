package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// closedByGateway starts the detail of a session the gateway ended.
const closedByGateway = "closed by the gateway: "

// defaultTCPIdle closes a tcp session with no traffic either way.
const defaultTCPIdle = 5 * time.Minute

// tcpSession is one spliced tcp connection.
type tcpSession struct {
	route  *route
	st     *connState
	id     *identity.Identity
	client net.Conn
	up     net.Conn
	once   sync.Once
	// why is set when the gateway ends the session (reload, shutdown).
	why atomic.Pointer[string]
}

func (ts *tcpSession) close(why string) {
	ts.once.Do(func() {
		ts.why.Store(&why)
		_ = ts.client.Close()
		_ = ts.up.Close()
	})
}

// serveTCP checks the caller of a tcp connection and splices it to the
// executor. The identity is the client certificate (there is no request
// to carry a token), verified for this gateway.
func (l *listener) serveTCP(tc *tls.Conn, st *connState, vh *vhost, t *table) {
	s := l.s
	r := vh.tcp
	defer tc.Close()
	start := time.Now()
	ex := &exchange{id: s.ids.next(), gw: vh.gw, route: r, decision: decisionDeny, path: ""}
	now := s.now()
	id, err := st.certIdentity(vh.gw, now)
	switch {
	case err != nil:
		ex.reason, ex.detail = reasonInvalidCert, err.Error()
	case id == nil:
		ex.reason, ex.detail = reasonNoIdentity, "no client certificate"
	case now.After(id.Expiry):
		ex.reason, ex.detail = reasonInvalidCert, "client certificate expired"
	}
	ex.ident = id
	var rec *recording.Session
	if ex.reason == "" {
		ex.binding, ex.detail = allowedBy(r, id, now)
		if r.recording != nil {
			var err error
			rec, err = s.opts.Recorder.StartSession(l.ctx, recording.SessionInfo{
				Protocol: protoTCP, Identity: recordedIdentity(id, ex.binding),
				ConnectionID: r.c.ID, ConnectionName: r.c.Name, GatewayID: vh.gw.g.ID, GatewayName: vh.gw.g.Name,
				RemoteAddr: tc.RemoteAddr().String(), RequestID: ex.id,
			}, *r.recording)
			if err != nil {
				ex.decision, ex.reason, ex.err = decisionReject, reasonRecording, err
				s.recordTCP(ex, time.Since(start), 0, 0)
				return
			}
			defer func() {
				why := "closed"
				switch {
				case ex.decision != decisionAllow:
					why = "denied"
				case strings.HasPrefix(ex.detail, closedByGateway):
					why = "gateway_closed"
				}
				if err := rec.CloseWithReason(why); err != nil {
					s.log.Error("closing a session recording", "request_id", ex.id, "error", err)
				}
			}()
		}
		if ex.binding == nil {
			ex.reason = denialReason(ex.detail)
			_ = rec.Decision(recording.Decision{Kind: "binding", Outcome: decisionDeny, Reason: ex.detail})
		} else if err := rec.Decision(recording.Decision{Kind: "binding", Outcome: decisionAllow, Rule: ex.binding.ID}); err != nil {
			ex.decision, ex.reason, ex.err = decisionReject, reasonRecording, err
		}
	}
	if ex.reason != "" {
		s.recordTCP(ex, time.Since(start), 0, 0)
		return
	}
	ex.decision, ex.reason = decisionAllow, reasonOK

	connect := cmpDuration(r.c.Timeouts.Connect, defaultConnectTimeout)
	ctx, cancel := context.WithTimeout(l.ctx, connect)
	up, err := s.dialTCP(ctx, r.c, connect)
	cancel()
	if err != nil {
		ex.err = err
		ex.reason = reasonUpstreamError
		switch {
		case errors.Is(err, ErrDestinationDenied):
			ex.reason = reasonDestination
		case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
			ex.reason = reasonUpstreamTimeout
		}
		s.recordTCP(ex, time.Since(start), 0, 0)
		return
	}
	sess := &tcpSession{route: r, st: st, id: id, client: tc, up: up}
	s.sessMu.Lock()
	s.sessions[sess] = struct{}{}
	s.sessMu.Unlock()
	// A swap since the checks above has not seen this session: check it
	// against the live table (a later swap will, it is registered now).
	if cur := s.table.Load(); cur != t {
		if why := s.sessionRevoked(sess, cur, s.now()); why != "" {
			sess.close(why)
		}
	}
	gauge := s.metrics.tcpActive.WithLabelValues(vh.gw.label, r.label)
	gauge.Inc()
	stop := context.AfterFunc(l.ctx, func() { sess.close("listener shut down") })

	var toExec, toPlanner func([]byte) error
	if rec != nil {
		toExec = func(b []byte) error { return rec.TCPChunk(recording.ToExecutor, b) }
		toPlanner = func(b []byte) error { return rec.TCPChunk(recording.ToPlanner, b) }
	}
	in, out := splice(tc, up, cmpDuration(r.c.Timeouts.Idle, defaultTCPIdle), toExec, toPlanner)

	stop()
	sess.close("")
	gauge.Dec()
	s.sessMu.Lock()
	delete(s.sessions, sess)
	s.sessMu.Unlock()
	if why := sess.why.Load(); why != nil && *why != "" {
		ex.detail = closedByGateway + *why
	}
	ex.status = 0
	s.recordTCP(ex, time.Since(start), in, out)
}

// allowedBy returns the first binding of r that admits id for a tcp
// session, or nil and why none does.
func allowedBy(r *route, id *identity.Identity, now time.Time) (*identity.Binding, string) {
	b, why := identity.Authorize(r.c.Bindings, id, identity.Request{}, now)
	if b == nil {
		return nil, why
	}
	return b, ""
}

// dialTCP opens the verified TLS session to a tcp connection's executor.
func (s *Server) dialTCP(ctx context.Context, c *Connection, connect time.Duration) (net.Conn, error) {
	raw, err := s.guard.dialer(connect, s.opts.Resolver).DialContext(ctx, "tcp", c.Upstream.Host)
	if err != nil {
		return nil, fmt.Errorf("dial executor: %w", err)
	}
	var cfg *tls.Config
	if c.UpstreamTLS != nil {
		cfg = c.UpstreamTLS.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	cfg.InsecureSkipVerify = false
	if cfg.ServerName == "" {
		cfg.ServerName = c.Upstream.Hostname()
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake with executor: %w", err)
	}
	return tc, nil
}

// recheckSessions ends tcp sessions that table t no longer allows.
func (s *Server) recheckSessions(t *table) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	now := s.now()
	for sess := range s.sessions {
		if why := s.sessionRevoked(sess, t, now); why != "" {
			go sess.close(why)
		}
	}
}

// sessionRevoked says why table t no longer allows a session: its
// connection is gone, its certificate no longer verifies, or no binding
// admits it any more ("" when it may go on).
func (s *Server) sessionRevoked(sess *tcpSession, t *table, now time.Time) string {
	nr := t.conns[sess.route.c.ID]
	if nr == nil || nr.c.Protocol != protoTCP {
		return "connection removed"
	}
	if id, err := sess.st.certIdentity(nr.gw, now); err != nil || id == nil {
		return "client certificate no longer accepted"
	}
	if b, _ := allowedBy(nr, sess.id, now); b == nil {
		return "no binding allows the identity any more"
	}
	return ""
}

// splice copies both ways until both sides are done, passing half-closes
// on, and ends the session after idle without traffic in either
// direction. It returns the bytes from a to b and from b to a. recAB and
// recBA, when set, record each chunk before it is passed on; an error
// from them ends the session.
func splice(a, b net.Conn, idle time.Duration, recAB, recBA func([]byte) error) (ab, ba int64) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan int64, 1)
	go func() { done <- pipe(a, b, idle, &last, recBA) }()
	ab = pipe(b, a, idle, &last, recAB)
	ba = <-done
	return ab, ba
}

// pipe copies src to dst; see splice.
func pipe(dst, src net.Conn, idle time.Duration, last *atomic.Int64, rec func([]byte) error) int64 {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	var n int64
	_ = src.SetReadDeadline(time.Now().Add(idle))
	for {
		k, err := src.Read(buf)
		if k > 0 {
			now := time.Now()
			last.Store(now.UnixNano())
			_ = dst.SetWriteDeadline(now.Add(idle))
			if rec != nil && rec(buf[:k]) != nil {
				// The session cannot be recorded and its policy refuses
				// to go on unrecorded.
				_ = src.Close()
				_ = dst.Close()
				return n
			}
			if _, werr := dst.Write(buf[:k]); werr != nil {
				_ = src.Close()
				_ = dst.Close()
				return n
			}
			n += int64(k)
		}
		if err == nil {
			continue
		}
		if os.IsTimeout(err) {
			// Idle only if neither direction moved.
			if l := time.Unix(0, last.Load()); time.Since(l) < idle {
				_ = src.SetReadDeadline(l.Add(idle))
				continue
			}
		}
		if errors.Is(err, io.EOF) {
			// Half-close: the other direction goes on.
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return n
			}
		}
		_ = src.Close()
		_ = dst.Close()
		return n
	}
}

// recordTCP logs and counts a tcp session.
func (s *Server) recordTCP(ex *exchange, d time.Duration, in, out int64) {
	if ex.decision == decisionAllow && ex.reason == reasonOK {
		ex.route.allowed.Inc()
		ex.route.duration.Observe(d.Seconds())
	} else {
		s.metrics.requests.WithLabelValues(ex.gw.label, ex.route.label, ex.decision, ex.reason).Inc()
	}
	level := slog.LevelInfo
	if ex.decision != decisionAllow || ex.reason != reasonOK {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", ex.id),
		slog.String("gateway", ex.gw.label),
		slog.String("connection", ex.route.label),
		slog.String("protocol", protoTCP),
	}
	attrs = appendIdentity(attrs, ex.ident)
	if ex.binding != nil {
		attrs = append(attrs, slog.String("binding", ex.binding.Name))
	}
	attrs = append(attrs,
		slog.Duration("duration", d),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.String("decision", ex.decision),
		slog.String("reason", ex.reason),
	)
	if ex.detail != "" {
		attrs = append(attrs, slog.String("detail", ex.detail))
	}
	if ex.err != nil {
		attrs = append(attrs, slog.String("error", ex.err.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "tcp session", attrs...)
}
