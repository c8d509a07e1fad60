// Package recording records gateway sessions in tamper-evident files and
// verifies them.
//
// # Sessions
//
// A session is what one planner connection did through one executor
// connection (route) with one credential, like an SSH session recording:
// the gateway opens it at the first recorded exchange of a client
// connection and appends that connection's later exchanges (the
// requests of a keep-alive HTTP/1.1 connection, the streams of an HTTP/2
// one, interleaved) until the connection closes, the runtime changes,
// or a bound or an idle time is reached (see package gateway). A tcp
// connection and a WebSocket session are one session each. The records of
// an exchange carry its request id (the X-Request-Id the gateway
// answered), so that transcripts, HAR exports and the admin API can tell
// the exchanges apart.
//
// # Files
//
// Each session is one append-only file, DATA/recordings/YYYY-MM-DD/ID.rec
// (mode 0600, in 0700 directories; the day is the session's start, UTC):
//
//	Magic    "SPREC\x00\x02\n"
//	header   frame: JSON Header {format, version, session_id, started_at, key_fingerprint}
//	record 0 frame: session_start
//	record 1 frame: http_request | http_response | grpc_message | tcp_chunk | decision
//	...
//	record N frame: session_end (the signed manifest)
//
// A frame is a uvarint length and that many bytes of JSON. Every record is
// {seq, ts, type, request_id, prev, payload}: seq is its index,
// request_id the exchange it belongs to (absent for session_start,
// session_end and tcp), prev the hex SHA-256 of the previous frame
// (length prefix included); record 0 links to the SHA-256 of Magic and
// the header frame. The last record's payload is SessionEnd: a Manifest
// (session id, header hash, the number of records before it, the hash of
// the last of them, the bytes before it, end time, reason, key
// fingerprint) exactly as signed, and its Ed25519 signature under the
// appliance's recording key (DATA/recording-key.pem, created on first
// use; its public key is DATA/recording-key.pub.pem and is served by the
// admin API at /v1/recording-public-key). Then the store gets the
// session's Anchor: record count and final hash and length of the whole
// file, manifest included.
//
// Format version 2 (this one) added request_id and a session of many
// exchanges; files of version 1 (magic "SPREC\x00\x01\n", one exchange
// per session, no request ids) are still read and verified. The version
// the magic announces must be the header's, and a request id in a version
// 1 file is tampering.
//
// Records are encoded one at a time (the payloads of decision,
// http_request and http_response by hand, in one pass, into pooled
// buffers) and chained as they are appended to the session's buffer.
// gRPC messages, tcp chunks, session_start and session_end are handed to
// the kernel (the page cache) at once, so a full disk is noticed on that
// record. An exchange's decisions, request and response are handed over
// after Exchange.End: within Options.FlushDelay (20 ms by default), in
// one write(2) with those of the session's other exchanges that ended
// meanwhile (a write costs about as much as recording a small exchange).
// A failed write (a full disk) fails the session: under "refuse" the
// connection's next exchange is refused (503) unless a new session can be
// recorded. No record is fsynced on its own.
//
// # Group commit and the crash window
//
// Closing a session writes its signed manifest and queues the session.
// One background committer, every 50 ms (at once when it was idle) or
// every 256 queued sessions, makes the queue durable: it starts the
// writeback of all the queued files, fsyncs each, fsyncs each directory
// they are in once (and the parent of a day directory created since the
// last commit), then writes all their anchors in one store transaction.
// Session.Close returns once its commit is done; nothing on a request's
// path waits for a disk sync. A crash therefore leaves the sessions still
// open (a connection's session is open while the connection is used, up
// to the gateway's bounds) and those closed within the last commit
// interval (plus the commit in progress) incomplete (no manifest reached
// the disk: the records written so far are there, as far as the page
// cache reached the disk, or the process's buffer the kernel) or
// unanchored (the anchor commit did not), which is what Verify reports;
// a session is never anchored before its file and directory entry are
// durable.
//
// At most 1024 sessions may wait for their commit. Beyond that,
// StartSession waits up to 2 s for room, then applies the connection's
// policy: under "refuse" the session fails with ErrRecordingFailed (503);
// under "continue" it runs unrecorded, logged at ERROR and counted in
// sallyport_recording_unrecorded_sessions_total{reason="backlog"}.
//
// The free-space check at StartSession calls statfs at most about once a
// second while there is room: in between, the bytes recorded since the
// last measurement are subtracted from it, and a session seeing less than
// MinFreeBytes (or any ENOSPC) measures again, so the refuse policy still
// applies to a disk that fills up. The day directory is created once per
// day (again if retention removed it), not per session.
//
// # What is never recorded
//
// Headers in FixedRedactHeaders (Authorization, Proxy-Authorization,
// Cookie, Set-Cookie, ...) and those the caller names in
// SessionInfo.RedactHeaders (the connection's injected headers) are
// removed; their names are kept in RedactedHeaders. The values in
// SessionInfo.Secrets (the planner's token, injected credential values)
// are replaced by "[REDACTED]" in every field and body in plain, hex,
// URL-encoded (query, path, every byte), JSON-escaped (\u, \/) and base64
// (both alphabets, any alignment) forms, also across tcp reads and at the
// body cap. The byte patterns of all those forms are computed once per
// session and searched for together, about one table lookup per two
// bytes: bodies are scrubbed as raw bytes, then each record's encoded
// payload is searched once; only a payload that holds a form is encoded
// again with every field scrubbed, and one that still contains one is
// written with its payload withheld. Bodies arrive already masked; at most the
// connection's max_body_bytes of each is kept (64 KiB by default, none for
// -1; for tcp, per direction over the session).
//
// # Gateway integration
//
// Build one Recorder per appliance, with New (Options.Anchors is the
// *store.Store), and Close it after the gateway has drained. Then, per
// session (a client connection's exchanges for one route and credential,
// each tcp connection, each WebSocket session):
//
//	sess, err := rec.StartSession(ctx, recording.SessionInfo{
//		Protocol: "http", Identity: ..., ConnectionID: ..., GatewayID: ...,
//		RemoteAddr: r.RemoteAddr, RequestID: rid, // the first exchange's
//		RedactHeaders: injectedHeaderNames,
//		Secrets:       append([]string{plannerToken}, injectedValues...),
//	}, conn.Recording)
//	if err != nil { // the disk is full (ErrDiskFull) or recording fails, and the policy is "refuse"
//		answer 503
//	}
//	// nil-safe: sess is nil when recording is off or the policy lets the session run unrecorded
//
// and per exchange on it:
//
//	ex := sess.Exchange(rid)
//	ex.Decision(recording.Decision{Kind: "binding", Outcome: "allow", Rule: bindingID})
//	body := ex.CaptureBody(r.Body)           // or the buffered body, if guardrails read it
//	resp body (after masking) := ex.CaptureBody(maskedBody)
//	ex.HTTPRequest(recording.HTTPRequest{Method: ..., Path: ..., Header: outHeader, Body: body.Bytes(), BodySize: body.Size()})
//	ex.HTTPResponse(recording.HTTPResponse{Status: ..., Header: ..., Body: c.Bytes(), BodySize: c.Size(), Latency: ..., Duration: ...})
//	ex.End()
//
// The scrubber (every encoded form of every secret) is built once per
// session, so a session per connection and credential is also its cache.
// When the session ends, sess.CloseWithReason(reason): it blocks until
// the group commit that includes the session (up to the 50 ms interval
// plus the commit), so call it from a goroutine the client does not wait
// for.
//
// For tcp, call TCPChunk(ToExecutor, b) and TCPChunk(ToPlanner, b) from the
// two copy loops (they may run concurrently) and CloseWithReason when the
// splice ends. Under "refuse" a method's error means the rest cannot be
// recorded: stop the exchange if it can still be stopped. Under
// "continue" the methods do not fail; the failure is logged at ERROR and
// counted in sallyport_recording_unrecorded_sessions_total.
//
// # Retention
//
// Options.MaxAge and Options.MaxBytes prune the oldest sessions in the
// background (and on Prune). Each run that deletes anything appends an
// audit entry (action "prune_recordings") and deletes the pruned sessions'
// anchors in the same store transaction, before the files go: a recording
// deleted without an audit entry keeps its anchor and shows as missing.
//
// # Verification
//
// Verify checks one file against a public key and, when given, its
// anchor, and names the first bad record. Archive lists the recordings of
// a data dir (or a copy), WriteTranscript replays one as text and
// ExportHAR converts HTTP sessions to HAR 1.2.
package recording
