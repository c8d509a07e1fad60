package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// exchangeKey carries the *exchange in the request context, for the
// proxy's hooks (Rewrite, ModifyResponse) of masked or recorded routes.
type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// checkGuardrails runs the guardrails that apply to the binding that
// admitted the request. It answers the request itself (and returns
// false) on a denial or when the body cannot be read.
func (l *listener) checkGuardrails(ex *exchange, r *http.Request, rt *route, b *identity.Binding) bool {
	sets := rt.guards[b.ID]
	if len(sets) == 0 {
		return true
	}
	s := l.s
	d, err := guardrails.Evaluate(guardrails.Request{
		HTTP: r, Path: ex.path, Upgrade: upgradeType(r.Header) != "", InspectBytes: s.limits.MaxInspectedBodyBytes,
	}, sets...)
	if err != nil {
		var mbe *http.MaxBytesError
		status := http.StatusBadRequest
		ex.decision, ex.reason, ex.err = decisionReject, reasonBadRequest, err
		if errors.As(err, &mbe) {
			status, ex.reason = http.StatusRequestEntityTooLarge, reasonBodyTooLarge
		}
		writeError(ex, status, ex.id, false)
		return false
	}
	if d != nil {
		l.s.denyGuardrail(ex, d)
		return false
	}
	ex.guardrail = "allow"
	s.metrics.guardrails.WithLabelValues(rt.gw.label, rt.label, decisionAllow, "-").Inc()
	if err := ex.sess.Decision(recording.Decision{Kind: "guardrail", Outcome: decisionAllow}); err != nil {
		l.s.recordingFailed(ex, err)
		return false
	}
	return true
}

// denyGuardrail answers 403 naming the rule, counts and records it.
func (s *Server) denyGuardrail(ex *exchange, d *guardrails.Denial) {
	ex.decision, ex.reason, ex.detail, ex.guardrail = decisionDeny, reasonGuardrail, d.Reason, d.Rule
	s.metrics.guardrails.WithLabelValues(ex.route.gw.label, ex.route.label, decisionDeny, d.Rule).Inc()
	_ = ex.sess.Decision(recording.Decision{Kind: "guardrail", Outcome: decisionDeny, Rule: d.Rule, Reason: d.Reason, Status: http.StatusForbidden})
	writeDenial(ex, d.Rule)
}

// writeDenial answers a guardrail's denial: 403, the request id and the
// rule's id (in the body and in X-Sallyport-Guardrail), nothing else.
func writeDenial(ex *exchange, rule string) {
	h := ex.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Sallyport-Guardrail"] = []string{rule}
	ex.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(ex, "403 Forbidden\nrequest id: "+ex.id+"\ndenied by guardrail: "+rule+"\n")
}

// maskRefusal is ModifyResponse's error for a response that cannot be
// masked: the client gets 502, never the response.
type maskRefusal struct{ err error }

func (e *maskRefusal) Error() string { return "response refused: " + e.err.Error() }
func (e *maskRefusal) Unwrap() error { return e.err }

var errPartialContent = fmt.Errorf("%w: a partial (206) response", masking.ErrUnmaskable)

// noResponseBody reports whether a response carries no body to mask.
func noResponseBody(resp *http.Response) bool {
	return resp.Request.Method == http.MethodHead || resp.StatusCode < 200 ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
		resp.ContentLength == 0
}

// modifyResponse masks the response of a masked route (before the
// recorder captures it) and taps it for the recording. A response that
// cannot be masked is refused here, before anything of it is sent, when
// that can be known from its headers or, for a body that is not a
// stream, from its first Limits.MaxBufferedBytes.
func (r *route) modifyResponse(resp *http.Response) error {
	ex := exchangeFrom(resp.Request.Context())
	if ex == nil {
		return errors.New("gateway: exchange missing from the request context")
	}
	ex.respAt = time.Now()
	ex.resp = resp
	if r.masker != nil {
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return &maskRefusal{fmt.Errorf("%w: a protocol switch", masking.ErrUnmaskable)}
		case resp.StatusCode == http.StatusPartialContent:
			return &maskRefusal{errPartialContent}
		case !noResponseBody(resp):
			if err := r.mask(ex, resp); err != nil {
				return err
			}
		}
	}
	if ex.sess == nil {
		return nil
	}
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			rc := &recordedConn{ReadWriteCloser: rwc, sess: ex.sess, srv: r.srv}
			r.srv.trackUpgrade(rc, true)
			resp.Body = rc
		}
	case r.c.Protocol == protoGRPC:
		resp.Body = &grpcTap{rc: resp.Body, sess: ex.sess, dir: recording.ToPlanner, method: ex.path, max: ex.sess.MaxBodyBytes()}
	default:
		ex.respBody = ex.sess.CaptureBody(resp.Body)
		resp.Body = ex.respBody
	}
	// Not a copy: the proxy only reads resp.Header from here on.
	ex.respHeader = resp.Header
	return nil
}

func (r *route) mask(ex *exchange, resp *http.Response) error {
	known := resp.ContentLength >= 0
	rd, err := r.masker.Wrap(resp.Header, resp.Body)
	if err != nil {
		return &maskRefusal{err}
	}
	resp.ContentLength = -1
	if !rd.Streaming() && (known || rd.Format() == masking.FormatJSON) {
		// Not a stream: mask ahead, so that a body that cannot be
		// masked is a 502, not a response cut short.
		done, err := rd.Prefetch()
		if err != nil {
			_ = rd.Close()
			return &maskRefusal{err}
		}
		if done {
			resp.ContentLength = int64(rd.Len())
			resp.Header["Content-Length"] = []string{strconv.Itoa(rd.Len())}
		}
	}
	ex.masked = rd
	resp.Body = &maskedBody{Reader: rd, ex: ex}
	return nil
}

// maskedBody is a masked response body; a failure while it streams marks
// the exchange, which is then aborted (never ended cleanly).
type maskedBody struct {
	*masking.Reader
	ex *exchange
}

// Read implements io.Reader.
func (b *maskedBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err != nil && errors.Is(err, masking.ErrUnmaskable) {
		b.ex.maskErr = err
	}
	return n, err
}

// recordingFailed answers 503 when the exchange cannot be recorded and
// its policy refuses unrecorded sessions.
func (s *Server) recordingFailed(ex *exchange, err error) {
	ex.decision, ex.reason, ex.err = decisionReject, reasonRecording, err
	writeError(ex, http.StatusServiceUnavailable, ex.id, false)
}

// recordedIdentity is the recording's view of an identity.
func recordedIdentity(id *identity.Identity, b *identity.Binding) recording.Identity {
	var ri recording.Identity
	if id != nil {
		if id.Source == identity.SourceClientCert {
			ri.ClientCertSubject = id.Subject
			if len(id.URISANs) > 0 {
				ri.ClientCertURI = id.URISANs[0]
			}
		} else {
			ri.Issuer, ri.Subject = id.Issuer, id.Subject
		}
	}
	if b != nil {
		ri.BindingID, ri.BindingName = b.ID, b.Name
	}
	return ri
}

// sessionSecrets are the values a recording must never contain: the
// planner's bearer token and the injected credentials.
func sessionSecrets(rt *route, auth []string) []string {
	var secrets []string
	if tok, ok := bearerToken(auth); ok {
		secrets = append(secrets, tok)
	}
	for _, iv := range rt.inject {
		secrets = append(secrets, iv.value...)
	}
	return secrets
}

// endSession records the request and the response of an exchange (one
// write for all the exchange's records) and releases its session: the
// session stays open for the connection's next exchange, or closes in
// the background (manifest, fsync, anchor), which the client need not
// wait for.
func (s *Server) endSession(ex *exchange, r *http.Request, start time.Time) {
	sess, ls := ex.sess, ex.rec
	if sess == nil {
		return
	}
	ex.sess, ex.rec = nil, nil
	end := time.Now()
	req := recording.HTTPRequest{
		Method: r.Method, Scheme: "https", Host: r.Host, Path: ex.path, Query: r.URL.RawQuery,
		Proto: r.Proto, Header: ex.outHeader, BodySize: 0, Time: start,
	}
	if req.Header == nil {
		req.Header = r.Header
	}
	if ex.binding != nil && ex.binding.ID != ls.binding {
		// Another binding than the session's first exchange's.
		id := recordedIdentity(ex.ident, ex.binding)
		req.Identity = &id
	}
	if ex.reqBody != nil {
		req.Body, req.BodySize = ex.reqBody.Bytes(), ex.reqBody.Size()
	}
	resp := recording.HTTPResponse{Status: ex.status, Proto: r.Proto, Header: ex.respHeader, Duration: end.Sub(start)}
	if resp.Header == nil {
		resp.Header = ex.Header()
	}
	if !ex.respAt.IsZero() {
		resp.Latency = ex.respAt.Sub(start)
	}
	if ex.resp != nil {
		resp.Trailer = ex.resp.Trailer
	}
	if ex.respBody != nil {
		// The proxy is done with the response body.
		resp.Body, resp.BodySize = ex.respBody.Kept(), ex.respBody.Size()
	}
	if ex.reason != reasonOK {
		resp.Error = ex.reason
	}
	reason := "closed"
	if ex.reason == reasonAborted || ex.reason == reasonMaskingAborted {
		reason = ex.reason
	}
	_ = sess.HTTPRequest(req)
	_ = sess.HTTPResponse(resp)
	if err := sess.End(); err != nil {
		s.log.Error("recording an exchange", "request_id", ex.id, "session_id", ls.sess.ID(), "error", err)
	}
	ls.done(reason)
}

// recordedConn records both directions of an upgraded (WebSocket)
// connection as byte chunks.
type recordedConn struct {
	io.ReadWriteCloser
	sess *recording.Exchange
	srv  *Server
}

// Close implements io.Closer.
func (c *recordedConn) Close() error {
	c.srv.trackUpgrade(c, false)
	return c.ReadWriteCloser.Close()
}

// trackUpgrade registers (or forgets) a recorded upgraded connection:
// http.Server.Shutdown does not wait for or close those, so Server.Close
// closes them itself, which ends their sessions.
func (s *Server) trackUpgrade(c *recordedConn, open bool) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if open {
		s.upgraded[c] = struct{}{}
	} else {
		delete(s.upgraded, c)
	}
}

// Read implements io.Reader: bytes from the executor.
func (c *recordedConn) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	if n > 0 {
		if rerr := c.sess.TCPChunk(recording.ToPlanner, p[:n]); rerr != nil {
			// Under on_disk_full=refuse the session stops here.
			_ = c.Close()
			return n, rerr
		}
	}
	return n, err
}

// Write implements io.Writer: bytes from the planner.
func (c *recordedConn) Write(p []byte) (int, error) {
	if err := c.sess.TCPChunk(recording.ToExecutor, p); err != nil {
		_ = c.Close()
		return 0, err
	}
	return c.ReadWriteCloser.Write(p)
}

// grpcTap records the gRPC messages of a stream as they pass: each
// length-prefixed message, its first max bytes kept.
type grpcTap struct {
	rc     io.ReadCloser
	sess   *recording.Exchange
	dir    recording.Direction
	method string
	max    int64

	hdr        [5]byte
	nhdr       int
	compressed bool
	size, seen int64
	msg        []byte
}

// Read implements io.Reader.
func (g *grpcTap) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	if rerr := g.feed(p[:n]); rerr != nil {
		return n, rerr
	}
	return n, err
}

func (g *grpcTap) feed(b []byte) error {
	for len(b) > 0 {
		if g.nhdr < 5 {
			k := copy(g.hdr[g.nhdr:], b)
			g.nhdr += k
			b = b[k:]
			if g.nhdr < 5 {
				return nil
			}
			g.compressed = g.hdr[0]&1 == 1
			g.size = int64(uint32(g.hdr[1])<<24 | uint32(g.hdr[2])<<16 | uint32(g.hdr[3])<<8 | uint32(g.hdr[4]))
			g.seen, g.msg = 0, g.msg[:0]
		}
		k := min(int64(len(b)), g.size-g.seen)
		if keep := min(k, g.max-int64(len(g.msg))); keep > 0 {
			g.msg = append(g.msg, b[:keep]...)
		}
		g.seen += k
		b = b[k:]
		if g.seen == g.size {
			g.nhdr = 0
			if err := g.sess.GRPCMessage(recording.GRPCMessage{
				Direction: g.dir, Method: g.method, Compressed: g.compressed,
				Message: g.msg, Size: g.size, Truncated: int64(len(g.msg)) < g.size,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements io.Closer.
func (g *grpcTap) Close() error { return g.rc.Close() }

// maskOutcome counts and logs how masking a response went.
func (s *Server) maskOutcome(ex *exchange) {
	if ex.route == nil || ex.route.masker == nil {
		return
	}
	outcome := ""
	switch {
	case ex.reason == reasonMaskingRefused:
		outcome = maskRefused
	case ex.maskErr != nil:
		outcome, ex.reason = maskAborted, reasonMaskingAborted
		ex.err = ex.maskErr
	case ex.masked != nil:
		outcome = maskOK
	default:
		return
	}
	s.metrics.masking.WithLabelValues(ex.route.gw.label, ex.route.label, outcome).Inc()
}

// maskAttrs appends the masking facts of an exchange to its log line.
func maskAttrs(attrs []slog.Attr, ex *exchange) []slog.Attr {
	if ex.masked != nil {
		attrs = append(attrs, slog.Int("masked_values", ex.masked.Masked()))
	}
	if ex.guardrail != "" {
		attrs = append(attrs, slog.String("guardrail", ex.guardrail))
	}
	return attrs
}
