package gateway

import (
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// A recorded session is the traffic of one client connection for one
// route (connection config) and one credential, like an SSH session
// recording: the first recorded exchange on (client connection, route,
// bearer token) opens it, the later ones append to it, and it ends when
// the first of these happens:
//
//   - the client connection closes (or is hijacked; the listener or the
//     server shutting down closes it too): reason "client_closed";
//   - an exchange arrives for a route of a newer runtime (any Apply builds
//     new routes, so a config change, and a new injected secret, takes
//     effect at once): "config_changed";
//   - an exchange arrives when the session is recSessionMaxAge old or has
//     had recSessionMaxExchanges exchanges: "max_age", "max_exchanges";
//   - no exchange for recSessionIdle: "idle";
//   - an exchange arrives after a write of the session failed (a full
//     disk): "recording_failed" (the manifest cannot be written then, so
//     the file stays incomplete, as Verify reports), and a new session
//     applies the connection's on_disk_full policy afresh.
//
// Records of an open session reach the page cache as exchanges end (see
// recording.Options.FlushDelay); its manifest, fsync and anchor come at
// its end, so a crash leaves an open session's file without a manifest,
// which Verify reports as incomplete.
//
// An upgraded exchange (a WebSocket) gets a session of its own, ended with
// the exchange, since its connection leaves HTTP.
const (
	recSessionMaxAge       = 60 * time.Second
	recSessionMaxExchanges = 10000
	recSessionIdle         = 5 * time.Second
)

// Session end reasons the gateway gives.
const (
	endClientClosed  = "client_closed"
	endConfigChanged = "config_changed"
	endMaxAge        = "max_age"
	endMaxExchanges  = "max_exchanges"
	endIdle          = "idle"
	endFailed        = "recording_failed"
)

// recSessions are the Server's open connection sessions.
type recSessions struct {
	// maxAge, maxExchanges and idle are the bounds (the constants above
	// when zero; tests shorten them before the first Apply).
	maxAge       time.Duration
	maxExchanges int
	idle         time.Duration

	mu     sync.Mutex
	byConn map[net.Conn]*connRecs
}

func (rs *recSessions) bounds() (maxAge time.Duration, maxExchanges int, idle time.Duration) {
	maxExchanges = rs.maxExchanges
	if maxExchanges <= 0 {
		maxExchanges = recSessionMaxExchanges
	}
	return cmpDuration(rs.maxAge, recSessionMaxAge), maxExchanges, cmpDuration(rs.idle, recSessionIdle)
}

// connRecs are the sessions of one client connection.
type connRecs struct {
	mu     sync.Mutex
	closed bool // the connection is gone: no session is reused
	live   []*liveSession
}

// liveSession is one open recording and what decides its end.
type liveSession struct {
	s       *Server
	owner   *connRecs // nil for an upgraded exchange's own session
	rt      *route
	token   string
	binding string
	sess    *recording.Session
	started time.Time
	// Guarded by owner.mu.
	exchanges int
	inflight  int
	ended     bool
	reason    string
	timer     *time.Timer
}

// connStateChanged is the http.Server's ConnState hook: a client
// connection that closes (or leaves HTTP) ends its sessions.
func (l *listener) connStateChanged(c net.Conn, cs http.ConnState) {
	if cs != http.StateClosed && cs != http.StateHijacked {
		return
	}
	rs := &l.s.recs
	rs.mu.Lock()
	cr := rs.byConn[c]
	delete(rs.byConn, c)
	rs.mu.Unlock()
	if cr != nil {
		cr.closeAll(endClientClosed)
	}
}

// closeAll ends every session of the connection.
func (cr *connRecs) closeAll(reason string) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.closed = true
	for _, ls := range slices.Clone(cr.live) {
		ls.retireLocked(reason)
	}
}

// startSession attaches an exchange on a recorded route to its session,
// opening one when needed. It answers 503 itself (and returns false) when
// the policy refuses an unrecorded session.
func (l *listener) startSession(ex *exchange, r *http.Request, rt *route, b *identity.Binding) bool {
	s := l.s
	tok, _ := bearerToken(r.Header["Authorization"])
	st, _ := r.Context().Value(connStateKey{}).(*connState)
	if st == nil || upgradeType(r.Header) != "" {
		// A session of its own, ended with the exchange.
		ls, err := s.openSession(ex, r, rt, b, tok, nil)
		if err != nil {
			s.recordingFailed(ex, err)
			return false
		}
		if ls != nil {
			ls.inflight, ls.exchanges = 1, 1
			ex.rec, ex.sess = ls, ls.sess.Exchange(ex.id)
		}
		return true
	}
	cr := &st.rec
	maxAge, maxEx, _ := s.recs.bounds()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	now := time.Now()
	var ls *liveSession
	for i := 0; i < len(cr.live); i++ {
		c := cr.live[i]
		reason := ""
		switch {
		case c.rt.c.ID == rt.c.ID && c.rt != rt:
			reason = endConfigChanged
		case c.rt != rt || c.token != tok:
		case c.sess.Err() != nil:
			// A write failed (a full disk): a new session applies the
			// policy afresh (503, or unrecorded, or recorded again).
			reason = endFailed
		case c.exchanges >= maxEx:
			reason = endMaxExchanges
		case now.Sub(c.started) >= maxAge:
			reason = endMaxAge
		default:
			ls = c
		}
		if reason != "" {
			c.retireLocked(reason) // removes it from cr.live
			i--
		}
	}
	if ls == nil {
		var owner *connRecs
		if !cr.closed {
			owner = cr
		}
		var err error
		if ls, err = s.openSession(ex, r, rt, b, tok, owner); err != nil {
			s.recordingFailed(ex, err)
			return false
		}
		if ls == nil {
			return true // unrecorded under on_disk_full=continue
		}
		if owner != nil {
			cr.live = append(cr.live, ls)
			s.recs.mu.Lock()
			if s.recs.byConn == nil {
				s.recs.byConn = map[net.Conn]*connRecs{}
			}
			s.recs.byConn[st.conn] = cr
			s.recs.mu.Unlock()
		}
	}
	if ls.timer != nil {
		ls.timer.Stop()
	}
	ls.exchanges++
	ls.inflight++
	ex.rec, ex.sess = ls, ls.sess.Exchange(ex.id)
	return true
}

// openSession starts a recording (nil when it runs unrecorded).
func (s *Server) openSession(ex *exchange, r *http.Request, rt *route, b *identity.Binding, tok string, owner *connRecs) (*liveSession, error) {
	info := recording.SessionInfo{
		Protocol: rt.c.Protocol, Identity: recordedIdentity(ex.ident, b),
		ConnectionID: rt.c.ID, ConnectionName: rt.c.Name, GatewayID: rt.gw.g.ID, GatewayName: rt.gw.g.Name,
		RemoteAddr: r.RemoteAddr, RequestID: ex.id, RedactHeaders: rt.redactHeaders,
		Secrets: sessionSecrets(rt, r.Header["Authorization"]),
	}
	sess, err := s.opts.Recorder.StartSession(r.Context(), info, *rt.recording)
	if err != nil || sess == nil {
		return nil, err
	}
	// Server.Close waits for the session to be closed.
	s.closing.Add(1)
	ls := &liveSession{s: s, owner: owner, rt: rt, token: tok, sess: sess, started: time.Now()}
	if b != nil {
		ls.binding = b.ID
	}
	return ls, nil
}

// retireLocked stops new exchanges from joining the session and closes it
// once none is in flight. The owner's mutex is held.
func (ls *liveSession) retireLocked(reason string) {
	if ls.ended {
		return
	}
	ls.ended, ls.reason = true, reason
	if ls.timer != nil {
		ls.timer.Stop()
	}
	if ls.owner != nil {
		ls.owner.live = slices.DeleteFunc(ls.owner.live, func(c *liveSession) bool { return c == ls })
	}
	if ls.inflight == 0 {
		go ls.close()
	}
}

// close writes the manifest and waits for the group commit (fsync,
// anchor), off any request's path.
func (ls *liveSession) close() {
	defer ls.s.closing.Done()
	if err := ls.sess.CloseWithReason(ls.reason); err != nil {
		ls.s.log.Error("closing a session recording", "session_id", ls.sess.ID(), "error", err)
	}
}

// done ends an exchange's part in its session: the last exchange of a
// retired session closes it; otherwise the idle timer starts.
func (ls *liveSession) done(reason string) {
	if ls.owner == nil {
		ls.ended, ls.reason = true, reason
		go ls.close()
		return
	}
	cr := ls.owner
	cr.mu.Lock()
	defer cr.mu.Unlock()
	ls.inflight--
	if ls.inflight > 0 {
		return
	}
	if ls.ended {
		go ls.close()
		return
	}
	_, _, idle := ls.s.recs.bounds()
	if ls.timer == nil {
		ls.timer = time.AfterFunc(idle, ls.idle)
	} else {
		ls.timer.Reset(idle)
	}
}

// idle ends a session no exchange used for recSessionIdle: an idle
// keep-alive connection does not leave it unsigned and unanchored.
func (ls *liveSession) idle() {
	cr := ls.owner
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if ls.inflight == 0 {
		ls.retireLocked(endIdle)
	}
}
