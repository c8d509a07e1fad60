package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// exchange is one request as the gateway sees it: the ResponseWriter the
// proxy writes through (to count status and bytes) and what the request
// log says about it.
type exchange struct {
	http.ResponseWriter
	id      string
	status  int
	bytes   int64
	gw      *gwRoute
	route   *route
	ident   *identity.Identity
	binding *identity.Binding
	path    string
	// decision and reason are the metrics labels; detail explains a
	// denial in the log only.
	decision, reason, detail string
	err                      error
	body                     *limitedBody
	// guardrail is "allow" or the denying rule, when guardrails ran.
	guardrail string
	// masked is the masked response body; maskErr its failure mid-stream.
	masked  *masking.Reader
	maskErr error
	// sess records the exchange in its session rec (nil when not
	// recorded), with what it needs at the end.
	sess       *recording.Exchange
	rec        *liveSession
	reqBody    *recording.BodyCapture
	respBody   *recording.BodyCapture
	outHeader  http.Header
	respHeader http.Header
	resp       *http.Response
	respAt     time.Time
}

// WriteHeader implements http.ResponseWriter.
func (ex *exchange) WriteHeader(code int) {
	if ex.status == 0 && code >= 200 {
		ex.status = code
	}
	ex.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (ex *exchange) Write(b []byte) (int, error) {
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	n, err := ex.ResponseWriter.Write(b)
	ex.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (ex *exchange) Flush() {
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	_ = http.NewResponseController(ex.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController (used by httputil.ReverseProxy for
// flushing and WebSocket hijacking) reach the server's writer.
func (ex *exchange) Unwrap() http.ResponseWriter { return ex.ResponseWriter }

// ServeHTTP is the per-request pipeline: gateway by SNI, Host check, path
// normalization, identity, route, protocol checks, bindings, proxy.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := l.s
	start := time.Now()
	ex := &exchange{ResponseWriter: w, id: s.ids.next(), decision: decisionReject}
	// Shared by the response and the upstream request; nobody appends.
	ridHeader := []string{ex.id}
	w.Header()["X-Request-Id"] = ridHeader
	defer l.finish(ex, r, start)

	st, _ := r.Context().Value(connStateKey{}).(*connState)
	if st == nil {
		ex.reason, ex.detail = reasonMisdirected, "no connection state"
		writeError(ex, http.StatusMisdirectedRequest, ex.id, false)
		return
	}
	t := s.table.Load()
	vh := st.vhost(t, l.addr)
	if vh == nil || vh.tcp != nil {
		ex.reason, ex.detail = reasonMisdirected, "no gateway serves the connection's server name any more"
		writeError(ex, http.StatusMisdirectedRequest, ex.id, false)
		return
	}
	ex.gw = vh.gw
	// The Host must be one the connection's gateway serves: its TLS
	// policy (certificate, client CAs) is the one that was negotiated.
	host := hostOnly(r.Host)
	if host != st.sni {
		hv, ok := t.sites[l.addr].names.lookup(host)
		if !ok || hv.gw != vh.gw || hv.tcp != nil {
			ex.reason, ex.detail = reasonMisdirected, "host is not served by the gateway of the connection's server name"
			writeError(ex, http.StatusMisdirectedRequest, ex.id, false)
			return
		}
	}
	if r.Method == http.MethodConnect {
		ex.reason, ex.detail = reasonBadRequest, "CONNECT is not proxied"
		writeError(ex, http.StatusMethodNotAllowed, ex.id, false)
		return
	}
	raw, err := requestPath(r)
	if err == nil {
		ex.path, err = normalizePath(raw)
	}
	if err != nil {
		ex.reason, ex.detail = reasonBadPath, err.Error()
		writeError(ex, http.StatusBadRequest, ex.id, false)
		return
	}

	// Identity before routing, so that an anonymous caller cannot map the
	// routes.
	now := s.now()
	var code int
	ex.ident, code = l.identify(ex, r, st, vh.gw, now)
	if ex.ident == nil {
		ex.decision = decisionDeny
		writeError(ex, code, ex.id, code == http.StatusUnauthorized)
		return
	}
	rt := vh.gw.route(host, ex.path)
	if rt == nil {
		ex.reason, ex.detail = reasonNoRoute, "no connection matches the host and path"
		writeError(ex, http.StatusNotFound, ex.id, false)
		return
	}
	ex.route = rt

	greq := identity.Request{Method: r.Method, Path: ex.path}
	if up := upgradeType(r.Header); up != "" {
		switch {
		case rt.c.Protocol != protoHTTP || !strings.EqualFold(up, "websocket") || r.ProtoMajor != 1:
			ex.reason, ex.detail = reasonUpgrade, "only WebSocket upgrades are proxied"
		case rt.masker != nil:
			// WebSocket messages would bypass the masking rules.
			ex.reason, ex.detail = reasonUpgrade, "the connection masks responses, which WebSocket messages would bypass"
		}
		if ex.reason != "" {
			writeError(ex, http.StatusBadRequest, ex.id, false)
			return
		}
	}
	if rt.c.Protocol == protoGRPC {
		if r.ProtoMajor != 2 || r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			ex.reason, ex.detail = reasonBadRequest, "not a gRPC request"
			writeError(ex, http.StatusBadRequest, ex.id, false)
			return
		}
		greq.GRPCMethod = ex.path
	}

	b, why := identity.Authorize(rt.c.Bindings, ex.ident, greq, now)
	if rt.recording != nil && !l.startSession(ex, r, rt, b) {
		return
	}
	if b == nil {
		ex.decision, ex.reason, ex.detail = decisionDeny, denialReason(why), why
		_ = ex.sess.Decision(recording.Decision{Kind: "binding", Outcome: decisionDeny, Reason: why, Status: http.StatusForbidden})
		writeError(ex, http.StatusForbidden, ex.id, false)
		return
	}
	ex.binding = b
	if err := ex.sess.Decision(recording.Decision{Kind: "binding", Outcome: decisionAllow, Rule: b.ID}); err != nil {
		s.recordingFailed(ex, err)
		return
	}
	if rt.c.Protocol == protoHTTP && r.Body != nil && r.Body != http.NoBody {
		ex.body = &limitedBody{rc: r.Body, max: s.limits.MaxRequestBodyBytes}
		r.Body = ex.body
	}
	if !l.checkGuardrails(ex, r, rt, b) {
		return
	}
	ex.decision, ex.reason, ex.detail = decisionAllow, reasonOK, ""

	// The forwarded path is exactly the one checked above.
	r.URL.Path = decodePath(ex.path)
	r.URL.RawPath = ""
	if strings.IndexByte(ex.path, '%') >= 0 {
		r.URL.RawPath = ex.path
	}
	r.Header["X-Request-Id"] = ridHeader
	if ex.sess != nil && r.Body != nil && r.Body != http.NoBody {
		if rt.c.Protocol == protoGRPC {
			r.Body = &grpcTap{rc: r.Body, sess: ex.sess, dir: recording.ToExecutor, method: ex.path, max: ex.sess.MaxBodyBytes()}
		} else {
			ex.reqBody = ex.sess.CaptureBody(r.Body)
			r.Body = ex.reqBody
		}
	}
	if rt.needsExchange() {
		r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	}
	rt.up.acquire()
	defer rt.up.release()
	rt.proxy.ServeHTTP(ex, r)
}

// identify returns the caller's identity, or nil and the status to answer
// (401, or 421 when the connection's certificate does not hold for this
// gateway any more).
func (l *listener) identify(ex *exchange, r *http.Request, st *connState, gw *gwRoute, now time.Time) (*identity.Identity, int) {
	if auth := r.Header["Authorization"]; len(auth) > 0 {
		tok, ok := bearerToken(auth)
		if ok {
			if gw.g.Tokens == nil {
				ex.reason, ex.detail = reasonInvalidToken, "the gateway trusts no token issuer"
				return nil, http.StatusUnauthorized
			}
			id, err := gw.g.Tokens.Verify(r.Context(), tok)
			if err != nil || id == nil {
				ex.reason, ex.detail = reasonInvalidToken, fmt.Sprint("token rejected: ", err)
				return nil, http.StatusUnauthorized
			}
			if !id.Expiry.IsZero() && now.After(id.Expiry) {
				ex.reason, ex.detail = reasonInvalidToken, "token expired"
				return nil, http.StatusUnauthorized
			}
			return id, 0
		}
		if len(auth) > 1 || hasFoldPrefix(auth[0], "bearer") {
			ex.reason, ex.detail = reasonInvalidToken, "malformed or repeated Authorization header"
			return nil, http.StatusUnauthorized
		}
	}
	id, err := st.certIdentity(gw, now)
	switch {
	case err != nil && gw.g.TLS.ClientAuth == tls.RequireAndVerifyClientCert:
		// The handshake's verification no longer holds for this gateway:
		// the client must reconnect (and will be refused).
		ex.reason, ex.detail = reasonInvalidCert, err.Error()
		return nil, http.StatusMisdirectedRequest
	case err != nil:
		ex.reason, ex.detail = reasonInvalidCert, err.Error()
		return nil, http.StatusUnauthorized
	case id == nil:
		ex.reason, ex.detail = reasonNoIdentity, "no bearer token and no client certificate"
		return nil, http.StatusUnauthorized
	case now.After(id.Expiry):
		ex.reason, ex.detail = reasonInvalidCert, "client certificate expired"
		return nil, http.StatusUnauthorized
	}
	return id, 0
}

// bearerToken extracts the token of a single "Bearer" Authorization
// header.
func bearerToken(auth []string) (string, bool) {
	if len(auth) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// route picks the connection for host and path: routes for the exact
// host, then for its wildcard, then those for any host, each longest
// prefix first.
func (g *gwRoute) route(host, path string) *route {
	if rs, ok := g.routes.exact[host]; ok {
		if r := matchPrefix(rs, path); r != nil {
			return r
		}
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if rs, ok := g.routes.wild[host[i+1:]]; ok {
			if r := matchPrefix(rs, path); r != nil {
				return r
			}
		}
	}
	return matchPrefix(g.any, path)
}

func matchPrefix(rs []*route, path string) *route {
	for _, r := range rs {
		if pathHasPrefix(path, r.c.PathPrefix) {
			return r
		}
	}
	return nil
}

// writeError answers with a status, the request id and nothing else.
func writeError(w http.ResponseWriter, status int, rid string, bearer bool) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	if bearer {
		h["Www-Authenticate"] = []string{`Bearer realm="sallyport"`}
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, strconv.Itoa(status)+" "+http.StatusText(status)+"\nrequest id: "+rid+"\n")
}

// finish logs and counts the request. A panic (http.ErrAbortHandler when
// the executor cut a response short) is logged, then passed on so that
// net/http resets the client's connection or stream.
func (l *listener) finish(ex *exchange, r *http.Request, start time.Time) {
	p := recover()
	if p != nil && ex.decision == decisionAllow {
		ex.reason = reasonAborted
	}
	if ex.status == 0 && ex.decision == decisionAllow && upgradeType(r.Header) != "" {
		ex.status = http.StatusSwitchingProtocols
	}
	l.s.maskOutcome(ex)
	l.s.record(r.Context(), ex, r, time.Since(start))
	l.s.endSession(ex, r, start)
	if p != nil {
		panic(p)
	}
}

// record writes the request's log line and metrics. It never logs header
// values, tokens or injected credentials.
func (s *Server) record(ctx context.Context, ex *exchange, r *http.Request, d time.Duration) {
	gwLabel, connLabel := "-", "-"
	if ex.gw != nil {
		gwLabel = ex.gw.label
	}
	if ex.route != nil {
		connLabel = ex.route.label
	}
	if ex.route != nil && ex.decision == decisionAllow && ex.reason == reasonOK {
		ex.route.allowed.Inc()
		ex.route.duration.Observe(d.Seconds())
	} else {
		s.metrics.requests.WithLabelValues(gwLabel, connLabel, ex.decision, ex.reason).Inc()
	}
	level := slog.LevelInfo
	if ex.decision != decisionAllow || ex.reason != reasonOK {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("request_id", ex.id),
		slog.String("gateway", gwLabel),
		slog.String("connection", connLabel),
		slog.String("method", r.Method),
	)
	if ex.path != "" {
		attrs = append(attrs, slog.String("path", ex.path))
	} else {
		attrs = append(attrs, slog.String("raw_path", truncate(r.URL.EscapedPath(), 256)))
	}
	attrs = appendIdentity(attrs, ex.ident)
	if ex.binding != nil {
		attrs = append(attrs, slog.String("binding", ex.binding.Name))
	}
	var in int64
	if ex.body != nil {
		in = ex.body.n
	}
	attrs = append(attrs,
		slog.Int("status", ex.status),
		slog.Duration("duration", d),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", ex.bytes),
		slog.String("decision", ex.decision),
		slog.String("reason", ex.reason),
		slog.String("proto", r.Proto),
		slog.String("remote", r.RemoteAddr),
	)
	attrs = maskAttrs(attrs, ex)
	if ex.detail != "" {
		attrs = append(attrs, slog.String("detail", ex.detail))
	}
	if ex.err != nil {
		attrs = append(attrs, slog.String("error", ex.err.Error()))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

func appendIdentity(attrs []slog.Attr, id *identity.Identity) []slog.Attr {
	if id == nil {
		return attrs
	}
	attrs = append(attrs, slog.String("identity_source", id.Source))
	if id.Source == identity.SourceClientCert {
		if len(id.URISANs) > 0 {
			return append(attrs, slog.String("cert_uri", id.URISANs[0]))
		}
		return append(attrs, slog.String("cert_subject", id.Subject))
	}
	return append(attrs, slog.String("issuer", id.Issuer), slog.String("subject", id.Subject))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// limitedBody bounds and counts a request body.
type limitedBody struct {
	rc  io.ReadCloser
	n   int64
	max int64
}

// Read implements io.Reader.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, &http.MaxBytesError{Limit: b.max}
	}
	if rem := b.max - b.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		return n - int(b.n-b.max), &http.MaxBytesError{Limit: b.max}
	}
	return n, err
}

// Close implements io.Closer.
func (b *limitedBody) Close() error { return b.rc.Close() }

// idGen makes request ids: a random per-process prefix and a counter, so
// that ids are unique across restarts and cheap to make.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func (g *idGen) init() error {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("request id prefix: %w", err)
	}
	g.prefix = hex.EncodeToString(b[:]) + "-"
	return nil
}

func (g *idGen) next() string {
	var buf [32]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	return string(b)
}
