// Package recording records gateway sessions in tamper-evident files and
// verifies them.
//
// # Files
//
// Each session is one append-only file, DATA/recordings/YYYY-MM-DD/ID.rec
// (mode 0600, in 0700 directories; the day is the session's start, UTC):
//
//	Magic    "SPREC\x00\x01\n"
//	header   frame: JSON Header {format, version, session_id, started_at, key_fingerprint}
//	record 0 frame: session_start
//	record 1 frame: http_request | http_response | grpc_message | tcp_chunk | decision
//	...
//	record N frame: session_end (the signed manifest)
//
// A frame is a uvarint length and that many bytes of JSON. Every record is
// {seq, ts, type, prev, payload}: seq is its index, prev the hex SHA-256
// of the previous frame (length prefix included); record 0 links to the
// SHA-256 of Magic and the header frame. The last record's payload is
// SessionEnd: a Manifest (session id, header hash, the number of records
// before it, the hash of the last of them, the bytes before it, end time,
// reason, key fingerprint) exactly as signed, and its Ed25519 signature
// under the appliance's recording key (DATA/recording-key.pem, created on
// first use; its public key is DATA/recording-key.pub.pem and is served by
// the admin API at /v1/recording-public-key). Then the store gets the
// session's Anchor: record count and final hash and length of the whole
// file, manifest included.
//
// Records are written as a stream: one record in memory at a time, each
// flushed to the kernel (the page cache) as it is written, so a full disk
// is noticed on that record; no record is fsynced on its own.
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
// path waits for a disk sync. A crash therefore loses at most the
// sessions closed within the last commit interval (plus the commit in
// progress): their files are incomplete (no manifest reached the disk) or
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
// body cap. A record whose encoded payload still contains one is written
// with its payload withheld. Bodies arrive already masked; at most the
// connection's max_body_bytes of each is kept (64 KiB by default, none for
// -1; for tcp, per direction over the session).
//
// # Gateway integration
//
// Build one Recorder per appliance, with New (Options.Anchors is the
// *store.Store), and Close it after the gateway has drained. Then, per
// session (each HTTP or gRPC request, each tcp connection):
//
//	sess, err := rec.StartSession(ctx, recording.SessionInfo{
//		Protocol: "http", Identity: ..., ConnectionID: ..., GatewayID: ...,
//		RemoteAddr: r.RemoteAddr, RequestID: rid,
//		RedactHeaders: injectedHeaderNames,
//		Secrets:       append([]string{plannerToken}, injectedValues...),
//	}, conn.Recording)
//	if err != nil { // the disk is full (ErrDiskFull) or recording fails, and the policy is "refuse"
//		answer 503
//	}
//	defer sess.Close() // nil-safe: nil when recording is off or the policy lets the session run unrecorded
//	sess.Decision(recording.Decision{Kind: "binding", Outcome: "allow", Rule: bindingID})
//	body := sess.CaptureBody(r.Body)          // or the buffered body, if guardrails read it
//	sess.HTTPRequest(recording.HTTPRequest{Method: ..., Path: ..., Header: outHeader, Body: body.Bytes(), BodySize: body.Size()})
//	resp body (after masking) := sess.CaptureBody(maskedBody)
//	sess.HTTPResponse(recording.HTTPResponse{Status: ..., Header: ..., Body: c.Bytes(), BodySize: c.Size(), Latency: ..., Duration: ...})
//
// Close blocks until the group commit that includes the session (up to
// the 50 ms interval plus the commit): call it once the response is
// complete, from a goroutine that the client does not wait for (the
// gateway closes sessions in the background), not while the planner
// waits for the last chunk.
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
