package recording

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Session is the recording of one session. Its methods are safe for
// concurrent use (the two directions of a tcp connection may record at
// once) and do nothing on a nil *Session, which is what StartSession
// returns for an unrecorded session.
//
// A method's error means the session could not be recorded from then on
// and its policy is "refuse": stop the exchange if it is still possible.
// Under "continue" the methods never fail; a failure is logged and
// counted once and the rest of the session goes unrecorded.
type Session struct {
	r       *Recorder
	id      string
	rel     string // path under the recordings dir
	path    string
	started time.Time
	info    SessionStart
	refuse  bool
	maxBody int64 // -1: no bodies
	scrub   *scrubber
	redact  map[string]bool

	mu         sync.Mutex // guards everything below
	f          *os.File
	w          *bufio.Writer
	headerHash [32]byte
	prev       [32]byte
	seq        int64 // records written
	size       int64 // bytes written
	failed     error // a write failed: nothing more is recorded
	closed     bool
	tcpSeen    map[Direction]int64
	tcpKept    map[Direction]int64
	pending    map[Direction][]byte
	tcpRID     string // the exchange of an upgraded connection's chunks
	// flushTimer writes what ended exchanges buffered (see End).
	flushTimer   *time.Timer
	flushPending bool
}

// ID is the session's id ("" for an unrecorded session).
func (s *Session) ID() string {
	if s == nil {
		return ""
	}
	return s.id
}

// Err is the error that stopped the session's recording (nil while it
// records, and for a nil session). A gateway starts a new session rather
// than append to a failed one.
func (s *Session) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Recorded reports whether the session is being recorded.
func (s *Session) Recorded() bool { return s != nil }

// MaxBodyBytes is the body cap in force (-1: bodies are not recorded).
func (s *Session) MaxBodyBytes() int64 {
	if s == nil {
		return -1
	}
	return s.maxBody
}

// HTTPRequest records a request as forwarded to the executor. Call it
// before forwarding when the body is already buffered (guardrails buffer
// it), otherwise once the body has been read (see CaptureBody). The
// record belongs to no exchange; a gateway records through Exchange.
func (s *Session) HTTPRequest(req HTTPRequest) error {
	return s.httpRequest("", req, true)
}

func (s *Session) httpRequest(rid string, req HTTPRequest, flush bool) error {
	if s == nil {
		return nil
	}
	req.Body, req.BodySize, req.BodyTruncated = s.capBody(req.Body, req.BodySize)
	req.Query = redactQuery(req.Query)
	if req.Time.IsZero() {
		req.Time = s.r.now()
	}
	e := getEnc()
	defer putEnc(e)
	var body span
	e.b, body = encodeHTTPRequest(e.b[:0], &req, s.redact)
	p := e.b
	if s.scrub.active() && s.scrub.containsOutside(p, body) {
		// A secret in a header, the path, ...: scrub every field.
		req.Header, req.RedactedHeaders = s.scrub.headers(req.Header, s.redact)
		req.Host = s.scrub.str(req.Host)
		req.Path = s.scrub.str(req.Path)
		req.Query = s.scrub.str(req.Query)
		if req.Identity != nil {
			id := s.scrubIdentity(*req.Identity)
			req.Identity = &id
		}
		var err error
		if p, err = s.encode(TypeHTTPRequest, req); err != nil {
			return err
		}
	}
	return s.write(TypeHTTPRequest, rid, p, flush)
}

// HTTPResponse records the response sent to the planner (its body after
// masking). Trailers carry grpc-status for gRPC.
func (s *Session) HTTPResponse(resp HTTPResponse) error {
	return s.httpResponse("", resp, true)
}

func (s *Session) httpResponse(rid string, resp HTTPResponse, flush bool) error {
	if s == nil {
		return nil
	}
	resp.Body, resp.BodySize, resp.BodyTruncated = s.capBody(resp.Body, resp.BodySize)
	e := getEnc()
	defer putEnc(e)
	var body span
	e.b, body = encodeHTTPResponse(e.b[:0], &resp, s.redact)
	p := e.b
	if s.scrub.active() && s.scrub.containsOutside(p, body) {
		var trailerRemoved []string
		resp.Header, resp.RedactedHeaders = s.scrub.headers(resp.Header, s.redact)
		resp.Trailer, trailerRemoved = s.scrub.headers(resp.Trailer, s.redact)
		for _, n := range trailerRemoved {
			if !slices.Contains(resp.RedactedHeaders, n) {
				resp.RedactedHeaders = append(resp.RedactedHeaders, n)
			}
		}
		resp.Error = s.scrub.str(resp.Error)
		var err error
		if p, err = s.encode(TypeHTTPResponse, resp); err != nil {
			return err
		}
	}
	return s.write(TypeHTTPResponse, rid, p, flush)
}

// GRPCMessage records one gRPC message (each message is capped on its
// own).
func (s *Session) GRPCMessage(m GRPCMessage) error {
	return s.grpcMessage("", m)
}

func (s *Session) grpcMessage(rid string, m GRPCMessage) error {
	if s == nil {
		return nil
	}
	m.Method = s.scrub.str(m.Method)
	m.Message, m.Size, m.Truncated = s.capBody(m.Message, m.Size)
	return s.record(TypeGRPCMessage, rid, m, true)
}

// Decision records an authorization or guardrail decision.
func (s *Session) Decision(d Decision) error {
	return s.decision("", d, true)
}

func (s *Session) decision(rid string, d Decision, flush bool) error {
	if s == nil {
		return nil
	}
	e := getEnc()
	defer putEnc(e)
	e.b = encodeDecision(e.b[:0], &d)
	p := e.b
	if s.scrub.active() && s.scrub.contains(p) {
		d.Reason = s.scrub.str(d.Reason)
		d.Rule = s.scrub.str(d.Rule)
		var err error
		if p, err = s.encode(TypeDecision, d); err != nil {
			return err
		}
	}
	return s.write(TypeDecision, rid, p, flush)
}

// TCPChunk records bytes read from one side of a tcp connection. The cap
// applies per direction over the whole session; past it, chunks are
// recorded by size only. When the session has secrets to scrub, the last
// few bytes of each chunk are held back until the next one (or Close), so
// a secret split across reads is still caught.
func (s *Session) TCPChunk(dir Direction, data []byte) error {
	return s.tcpChunk("", dir, data)
}

func (s *Session) tcpChunk(rid string, dir Direction, data []byte) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcpSeen == nil {
		s.tcpSeen, s.tcpKept, s.pending = map[Direction]int64{}, map[Direction]int64{}, map[Direction][]byte{}
	}
	if rid != "" {
		s.tcpRID = rid
	}
	s.tcpSeen[dir] += int64(len(data))
	return s.tcpLocked(dir, data, int64(len(data)), false)
}

func (s *Session) tcpLocked(dir Direction, data []byte, size int64, final bool) error {
	buf := append(s.pending[dir], data...)
	emit, hold := buf, []byte(nil)
	if !final {
		emit, hold = s.scrub.split(buf)
	} else {
		emit = s.scrub.bytes(bytes.Clone(buf))
	}
	s.pending[dir] = bytes.Clone(hold)
	room := max(0, s.maxBody-s.tcpKept[dir])
	out, truncated := emit, false
	if int64(len(emit)) > room {
		out, truncated = s.scrub.trimPartialSuffix(emit[:room]), true
	}
	s.tcpKept[dir] += int64(len(out))
	return s.appendLocked(TypeTCPChunk, s.tcpRID, TCPChunk{Direction: dir, Data: out, Size: size, Truncated: truncated}, time.Time{}, true)
}

// Exchange is one request and its response inside a session: its records
// carry the exchange's request id, so that transcripts, HAR exports and
// the admin API can tell the exchanges of a session apart. Records of
// concurrent exchanges (HTTP/2 streams of one connection) interleave in
// the session's chain. Its methods do nothing on a nil *Exchange.
//
// Decisions, the request and the response are buffered and reach the
// kernel together after End (see there), or earlier when the buffer fills
// or another record of the session is flushed; gRPC messages and
// upgraded-connection chunks are flushed one by one, since a stream may
// last.
type Exchange struct {
	s  *Session
	id string
}

// Exchange starts an exchange in the session (nil for a nil session).
func (s *Session) Exchange(requestID string) *Exchange {
	if s == nil {
		return nil
	}
	return &Exchange{s: s, id: requestID}
}

// Session is the exchange's session.
func (e *Exchange) Session() *Session {
	if e == nil {
		return nil
	}
	return e.s
}

// RequestID is the exchange's request id.
func (e *Exchange) RequestID() string {
	if e == nil {
		return ""
	}
	return e.id
}

// MaxBodyBytes is the session's body cap (-1: bodies are not recorded).
func (e *Exchange) MaxBodyBytes() int64 { return e.Session().MaxBodyBytes() }

// CaptureBody is Session.CaptureBody.
func (e *Exchange) CaptureBody(rc io.ReadCloser) *BodyCapture { return e.Session().CaptureBody(rc) }

// Decision records a decision of the exchange.
func (e *Exchange) Decision(d Decision) error {
	if e == nil {
		return nil
	}
	return e.s.decision(e.id, d, false)
}

// HTTPRequest records the exchange's request (see Session.HTTPRequest).
func (e *Exchange) HTTPRequest(req HTTPRequest) error {
	if e == nil {
		return nil
	}
	return e.s.httpRequest(e.id, req, false)
}

// HTTPResponse records the exchange's response (see
// Session.HTTPResponse).
func (e *Exchange) HTTPResponse(resp HTTPResponse) error {
	if e == nil {
		return nil
	}
	return e.s.httpResponse(e.id, resp, false)
}

// GRPCMessage records a gRPC message of the exchange.
func (e *Exchange) GRPCMessage(m GRPCMessage) error {
	if e == nil {
		return nil
	}
	return e.s.grpcMessage(e.id, m)
}

// TCPChunk records bytes of the exchange's upgraded connection (a
// WebSocket). Give an upgraded exchange a session of its own: the cap
// and the held-back tail are per session.
func (e *Exchange) TCPChunk(dir Direction, data []byte) error {
	if e == nil {
		return nil
	}
	return e.s.tcpChunk(e.id, dir, data)
}

// End hands what the exchange buffered to the kernel (the page cache;
// nothing is fsynced until the session ends): within Options.FlushDelay,
// in one write(2) with the records of the session's other exchanges that
// ended meanwhile (a busy connection's exchanges share writes). A write that
// fails (a full disk) fails the session: under "refuse" its next record
// is an error and the gateway refuses the exchange. End's own error says
// the session had already failed.
func (e *Exchange) End() error {
	if e == nil {
		return nil
	}
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.failed != nil:
		if s.refuse {
			return s.failed
		}
		return nil
	case s.closed || s.w == nil || s.w.Buffered() == 0 || s.flushPending:
		return nil
	}
	d := s.r.opts.FlushDelay
	if d < 0 {
		if err := s.w.Flush(); err != nil {
			return s.failLocked(fmt.Errorf("writing the recording: %w", err))
		}
		return nil
	}
	s.flushPending = true
	if s.flushTimer == nil {
		s.flushTimer = time.AfterFunc(d, s.delayedFlush)
	} else {
		s.flushTimer.Reset(d)
	}
	return nil
}

// delayedFlush writes the records that ended exchanges left buffered.
func (s *Session) delayedFlush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushPending = false
	if s.closed || s.failed != nil || s.w == nil || s.w.Buffered() == 0 {
		return
	}
	if err := s.w.Flush(); err != nil {
		_ = s.failLocked(fmt.Errorf("writing the recording: %w", err))
	}
}

// capBody scrubs a body, then keeps at most the cap. Scrubbing first means
// a secret across the cap is replaced whole, and trimPartialSuffix drops
// the start of a secret form that the capture itself cut.
func (s *Session) capBody(b []byte, size int64) ([]byte, int64, bool) {
	if size >= 0 && size < int64(len(b)) || size < -1 {
		size = int64(len(b))
	}
	if s.maxBody < 0 {
		return nil, size, len(b) > 0 || size != 0
	}
	cut := size > int64(len(b))
	b = s.scrub.bytes(b)
	if int64(len(b)) > s.maxBody {
		b, cut = b[:s.maxBody], true
	}
	if cut {
		b = s.scrub.trimPartialSuffix(b)
	}
	return b, size, cut
}

func (s *Session) scrubIdentity(id Identity) Identity {
	id.Issuer, id.Subject = s.scrub.str(id.Issuer), s.scrub.str(id.Subject)
	id.ClientCertURI, id.ClientCertSubject = s.scrub.str(id.ClientCertURI), s.scrub.str(id.ClientCertSubject)
	return id
}

func (s *Session) record(typ, rid string, payload any, flush bool) error {
	p, err := s.encode(typ, payload)
	if err != nil {
		return err
	}
	return s.write(typ, rid, p, flush)
}

// write appends an encoded payload that was checked for secrets.
func (s *Session) write(typ, rid string, p []byte, flush bool) error {
	if len(p) > MaxFrameBytes-1024 {
		p, _ = json.Marshal(withheld{Withheld: fmt.Sprintf("the payload (%d bytes) is larger than a record may be", len(p))})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendEncodedLocked(typ, rid, p, time.Time{}, flush)
}

// encode encodes a payload the slow way (encoding/json) and checks it for
// secrets: a payload that still holds one after scrubbing, or that does
// not fit in a frame, is withheld (fail closed, keep the chain).
func (s *Session) encode(typ string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encoding a %s record: %w", typ, err)
	}
	if s.scrub.active() && s.scrub.contains(p) {
		s.r.log.Error("a secret survived scrubbing: the record's payload is withheld", "session_id", s.id, "type", typ)
		p, _ = json.Marshal(withheld{Withheld: "the payload held a secret and was not recorded"})
	}
	if len(p) > MaxFrameBytes-1024 {
		p, _ = json.Marshal(withheld{Withheld: fmt.Sprintf("the payload (%d bytes) is larger than a record may be", len(p))})
	}
	return p, nil
}

// withheld replaces a payload that still holds a secret after scrubbing,
// or does not fit in a frame: fail closed, keep the chain.
type withheld struct {
	Withheld string `json:"withheld"`
}

// appendLocked writes one record under the session's policy: a write
// error stops the recording and is returned under "refuse", logged and
// counted under "continue". t is the record's time (now when zero).
func (s *Session) appendLocked(typ, rid string, payload any, t time.Time, flush bool) error {
	p, err := s.encode(typ, payload)
	if err != nil {
		return err
	}
	return s.appendEncodedLocked(typ, rid, p, t, flush)
}

func (s *Session) appendEncodedLocked(typ, rid string, p []byte, t time.Time, flush bool) error {
	if s.closed {
		if s.refuse {
			return ErrClosed
		}
		return nil
	}
	if s.failed != nil {
		if s.refuse {
			return s.failed
		}
		return nil
	}
	if err := s.writeRecord(typ, rid, p, t, flush); err != nil {
		return s.failLocked(err)
	}
	return nil
}

// envPool holds the buffers records are framed in.
var envPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// writeRecord chains and writes one record whose payload p is encoded
// (and was checked for secrets: see encode).
// With flush it reaches the kernel at once (so a full disk is noticed on
// this record, not sessions later); without, it waits in the session's
// buffer for the end of its exchange.
func (s *Session) writeRecord(typ, rid string, p []byte, t time.Time, flush bool) error {
	if t.IsZero() {
		t = s.r.now()
	}
	bp := envPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 256<<10 {
			envPool.Put(bp)
		}
	}()
	frame := appendEnvelope((*bp)[:0], s.seq, t, typ, rid, s.prev, p)
	*bp = frame[:0]
	if err := s.writeFrame(frame, flush); err != nil {
		return err
	}
	s.prev = sha256.Sum256(frame)
	s.seq++
	s.size += int64(len(frame))
	s.r.written.Add(int64(len(frame)))
	s.r.metrics.bytes.Add(float64(len(frame)))
	return nil
}

// appendEnvelope appends the frame of a record: the uvarint length, then
// the JSON envelope {seq, ts, type, rid, prev, payload}, encoded by hand
// (the payload is already JSON).
func appendEnvelope(dst []byte, seq int64, t time.Time, typ, rid string, prev [32]byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, binary.MaxVarintLen64)...)
	body := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":`...)
	dst = appendJSONStr(dst, typ)
	if rid != "" {
		dst = append(dst, `,"request_id":`...)
		dst = appendJSONStr(dst, rid)
	}
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, `","payload":`...)
	dst = append(dst, payload...)
	dst = append(dst, '}')
	var pre [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(pre[:], uint64(len(dst)-body))
	copy(dst[body-k:], pre[:k])
	return append(dst[:start], dst[body-k:]...)
}

func (s *Session) writeFrame(frame []byte, flush bool) error {
	if _, err := s.w.Write(frame); err != nil {
		return fmt.Errorf("writing the recording: %w", err)
	}
	if !flush {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing the recording: %w", err)
	}
	return nil
}

// failLocked stops recording the session after a write error and applies
// the policy.
func (s *Session) failLocked(err error) error {
	reason := "error"
	if isDiskFull(err) {
		reason = "disk_full"
		err = fmt.Errorf("%w: %w", ErrDiskFull, err)
	} else {
		err = fmt.Errorf("%w: %w", ErrRecordingFailed, err)
	}
	s.failed = err
	if reason == "disk_full" {
		s.r.forgetFree()
	}
	attrs := []any{"session_id", s.id, "reason", reason, "connection_id", s.info.ConnectionID, "file", s.path, "error", err}
	if s.refuse {
		s.r.metrics.refused.WithLabelValues(reason).Inc()
		s.r.log.Error("recording failed mid-session; under on_disk_full=refuse the exchange should stop", attrs...)
		return err
	}
	s.r.metrics.unrecorded.WithLabelValues(reason).Inc()
	s.r.log.Error("ALERT: recording failed mid-session; the rest of the session runs UNRECORDED (on_disk_full=continue)", attrs...)
	return nil
}

// Close ends the session: it writes the signed manifest and queues the
// session for the next group commit, which fsyncs the file and its
// directory and anchors the session in the store (see the package doc).
// It returns once that commit is done (within about 50 ms plus the
// commit's own time), so call it once the response is on its way, or
// from a goroutine. Closing twice is a no-op.
func (s *Session) Close() error { return s.CloseWithReason("closed") }

// CloseWithReason is Close with the reason the manifest gives ("closed",
// "executor_closed", "binding_revoked", ...).
func (s *Session) CloseWithReason(reason string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	// Flush what tcp scrubbing held back, in a stable order.
	var err error
	dirs := make([]Direction, 0, len(s.pending))
	for d, p := range s.pending {
		if len(p) > 0 {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		err = errors.Join(err, s.tcpLocked(d, nil, 0, true))
	}
	var req *commitReq
	if err == nil {
		req, err = s.finishLocked(reason)
	}
	s.closed = true
	if s.flushTimer != nil {
		s.flushTimer.Stop()
	}
	if req == nil && s.f != nil {
		s.f.Close()
	}
	s.f = nil // the committer owns it now
	size := s.size
	s.mu.Unlock()
	if req != nil {
		s.r.commits.enqueue(req)
		err = s.awaitCommit(req)
	}
	s.r.sessionEnded(s, size)
	if err != nil && !s.refuse {
		return nil // already logged and counted under "continue"
	}
	return err
}

// finishLocked writes the manifest and returns the session's commit.
func (s *Session) finishLocked(reason string) (*commitReq, error) {
	if s.failed != nil {
		return nil, s.failed
	}
	now := s.r.now()
	m := Manifest{
		SessionID: s.id, HeaderHash: hexHash(s.headerHash), Records: s.seq, FinalHash: hexHash(s.prev), Bytes: s.size,
		EndedAt: now, Reason: reason, KeyFingerprint: s.r.fp,
	}
	if len(s.tcpSeen) > 0 {
		m.TCPBytes = s.tcpSeen
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	sig := ed25519.Sign(s.r.key, signingMessage(mj))
	if err := s.appendLocked(TypeSessionEnd, "", SessionEnd{Manifest: mj, Signature: sig}, now, true); err != nil {
		return nil, err
	}
	if s.failed != nil { // under "continue" appendLocked swallowed it
		return nil, s.failed
	}
	a := Anchor{
		SessionID: s.id, File: s.rel, Records: s.seq, Bytes: s.size, FinalHash: hexHash(s.prev),
		KeyFingerprint: s.r.fp, StartedAt: s.started, EndedAt: now, ConnectionID: s.info.ConnectionID,
	}
	return &commitReq{f: s.f, path: s.path, anchor: a, done: make(chan struct{})}, nil
}

// awaitCommit waits for the commit that includes the session and applies
// its policy to a failure.
func (s *Session) awaitCommit(req *commitReq) error {
	<-req.done
	if req.syncErr != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.failLocked(req.syncErr)
	}
	if req.anchorErr != nil {
		s.r.log.Error("session recorded but NOT anchored: verify will report it unanchored", "session_id", s.id, "error", req.anchorErr)
		return fmt.Errorf("%w: anchoring session %s: %w", ErrRecordingFailed, s.id, req.anchorErr)
	}
	s.r.metrics.recorded.Inc()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// BodyCapture passes a body through and keeps its beginning for the
// recording. Wrap the request body before forwarding, or the (masked)
// response body before it is copied to the planner, then pass Bytes and
// Size to HTTPRequest or HTTPResponse. It is safe to read Bytes while
// another goroutine still reads the body.
type BodyCapture struct {
	rc    io.ReadCloser
	limit int64

	mu   sync.Mutex
	buf  []byte
	size int64
}

// CaptureBody wraps a body so that the first bytes read through it (the
// cap, plus room to catch a secret across it) are kept. A nil session
// captures nothing.
func (s *Session) CaptureBody(rc io.ReadCloser) *BodyCapture {
	limit := int64(0)
	if s != nil && s.maxBody > 0 {
		limit = s.maxBody + int64(s.scrub.maxLen)
	}
	return &BodyCapture{rc: rc, limit: limit}
}

// Read implements io.Reader.
func (c *BodyCapture) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.size += int64(n)
		if room := c.limit - int64(len(c.buf)); room > 0 {
			c.buf = append(c.buf, p[:min(int64(n), room)]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

// Close closes the underlying body.
func (c *BodyCapture) Close() error { return c.rc.Close() }

// Bytes is what was kept so far (a copy).
func (c *BodyCapture) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf)
}

// Kept is what was kept, not a copy: call it once nothing reads the body
// any more (Bytes otherwise).
func (c *BodyCapture) Kept() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf
}

// Size is how many bytes went through so far.
func (c *BodyCapture) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
