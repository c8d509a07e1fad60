package recording

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// Magic opens every recording file: a name, a NUL, the format version and
// a newline (so `head -c8` on a file says what it is).
const Magic = "SPREC\x00\x02\n"

// magicV1 opens the files of format version 1, where a session was one
// exchange and records carried no request id. They are still read and
// verified (the header's version must match the magic's).
const magicV1 = "SPREC\x00\x01\n"

// FormatName and FormatVersion are written in every file's header.
// Version 2 adds the request id to the records of an exchange (a session
// is then a client connection's traffic for one route and credential,
// many exchanges).
const (
	FormatName    = "sallyport-recording"
	FormatVersion = 2
)

// magicVersion is the format version a file's magic announces (0: not a
// recording).
func magicVersion(m []byte) int {
	switch string(m) {
	case Magic:
		return FormatVersion
	case magicV1:
		return 1
	}
	return 0
}

// MaxFrameBytes bounds one record on disk. Readers refuse a larger length
// prefix (a corrupt or hostile file cannot make them allocate more), and
// the writer caps bodies well below it.
const MaxFrameBytes = 64 << 20

// maxBodyCap is the largest body cap the writer honours, so that a body
// (base64 in JSON: 4/3 larger) always fits in a frame.
const maxBodyCap = 32 << 20

// DefaultMaxBodyBytes is the body cap when a connection's max_body_bytes
// is 0.
const DefaultMaxBodyBytes = 64 << 10

// Record types.
const (
	TypeSessionStart = "session_start"
	TypeHTTPRequest  = "http_request"
	TypeHTTPResponse = "http_response"
	TypeGRPCMessage  = "grpc_message"
	TypeTCPChunk     = "tcp_chunk"
	TypeDecision     = "decision"
	TypeSessionEnd   = "session_end"
)

var knownTypes = map[string]bool{
	TypeSessionStart: true, TypeHTTPRequest: true, TypeHTTPResponse: true, TypeGRPCMessage: true,
	TypeTCPChunk: true, TypeDecision: true, TypeSessionEnd: true,
}

// Direction says which way bytes or messages went.
type Direction string

// Directions.
const (
	ToExecutor Direction = "to_executor"
	ToPlanner  Direction = "to_planner"
)

// Anchor is the store's record of a finished session (see store.Anchor).
type Anchor = store.Anchor

// Header is the first frame of a file, after Magic. Record 0 links to the
// SHA-256 of Magic and this frame.
type Header struct {
	Format         string    `json:"format"`
	Version        int       `json:"version"`
	SessionID      string    `json:"session_id"`
	StartedAt      time.Time `json:"started_at"`
	KeyFingerprint string    `json:"key_fingerprint"`
}

// envelope is a record as written: the frame body is its JSON encoding.
type envelope struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"ts"`
	Type string    `json:"type"`
	// RequestID is the exchange the record belongs to (version 2; none
	// for session_start, session_end and tcp sessions).
	RequestID string          `json:"request_id,omitempty"`
	Prev      string          `json:"prev"`
	Payload   json.RawMessage `json:"payload"`
}

// Record is a record as read back, with where it sits and its own hash.
type Record struct {
	// Index is the record's position in the file (0 is session_start).
	Index int64 `json:"index"`
	// Offset is the byte offset of its frame in the file.
	Offset int64 `json:"offset"`
	// Seq, Time, Type and Prev are as written: Prev is the hex SHA-256
	// of the previous frame (of the header for record 0).
	Seq  int64     `json:"seq"`
	Time time.Time `json:"ts"`
	Type string    `json:"type"`
	// RequestID is the exchange the record belongs to: the gateway's
	// X-Request-Id of that request ("" for records of the session
	// itself).
	RequestID string `json:"request_id,omitempty"`
	Prev      string `json:"prev"`
	// Hash is the hex SHA-256 of this record's frame.
	Hash string `json:"hash"`
	// Payload is the type's payload (SessionStart, HTTPRequest, ...).
	Payload json.RawMessage `json:"payload"`
}

// Identity is who the planner was.
type Identity struct {
	// Issuer and Subject identify an OIDC caller.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	// ClientCertURI (or ClientCertSubject) identifies a client-certificate
	// caller.
	ClientCertURI     string `json:"client_cert_uri,omitempty"`
	ClientCertSubject string `json:"client_cert_subject,omitempty"`
	// BindingID and BindingName are the identity binding that admitted it.
	BindingID   string `json:"binding_id,omitempty"`
	BindingName string `json:"binding_name,omitempty"`
}

// String is a short form for listings ("alice@https://idp", a URI or a
// subject).
func (i Identity) String() string {
	switch {
	case i.Subject != "" && i.Issuer != "":
		return i.Subject + "@" + i.Issuer
	case i.Subject != "":
		return i.Subject
	case i.ClientCertURI != "":
		return i.ClientCertURI
	case i.ClientCertSubject != "":
		return i.ClientCertSubject
	}
	return "-"
}

// SessionStart is the payload of record 0.
type SessionStart struct {
	SessionID string `json:"session_id"`
	// Protocol is "http", "grpc" or "tcp".
	Protocol       string   `json:"protocol"`
	Identity       Identity `json:"identity"`
	ConnectionID   string   `json:"connection_id,omitempty"`
	ConnectionName string   `json:"connection_name,omitempty"`
	GatewayID      string   `json:"gateway_id,omitempty"`
	GatewayName    string   `json:"gateway_name,omitempty"`
	RemoteAddr     string   `json:"remote_addr,omitempty"`
	RequestID      string   `json:"request_id,omitempty"`
	// MaxBodyBytes is the effective body cap (-1: no bodies).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// OnDiskFull is the policy the session ran under.
	OnDiskFull string `json:"on_disk_full"`
}

// HTTPRequest is a request from the planner, as forwarded. Callers fill
// the exported fields; the recorder removes redacted headers (listing
// their names in RedactedHeaders), scrubs secrets and caps Body.
type HTTPRequest struct {
	Method string `json:"method"`
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	// Path is the normalized path as forwarded; Query the raw query.
	Path   string      `json:"path"`
	Query  string      `json:"query,omitempty"`
	Proto  string      `json:"proto,omitempty"`
	Header http.Header `json:"header,omitempty"`
	// Body is the body as captured (at most the cap is kept); BodySize is
	// the whole body's length (-1 when unknown).
	Body     []byte `json:"body,omitempty"`
	BodySize int64  `json:"body_size"`
	// BodyTruncated is set by the recorder when Body holds less than
	// BodySize.
	BodyTruncated bool `json:"body_truncated,omitempty"`
	// RedactedHeaders names the headers the recorder removed.
	RedactedHeaders []string `json:"redacted_headers,omitempty"`
	// Time is when the request arrived (the record's time when zero).
	Time time.Time `json:"time"`
	// Identity is who sent this request, when it differs from the
	// session_start's identity (another binding admitted it).
	Identity *Identity `json:"identity,omitempty"`
}

// HTTPResponse is a response to the planner, as sent (after masking).
type HTTPResponse struct {
	Status  int         `json:"status"`
	Proto   string      `json:"proto,omitempty"`
	Header  http.Header `json:"header,omitempty"`
	Trailer http.Header `json:"trailer,omitempty"`
	// Body, BodySize, BodyTruncated and RedactedHeaders: as in
	// HTTPRequest.
	Body            []byte   `json:"body,omitempty"`
	BodySize        int64    `json:"body_size"`
	BodyTruncated   bool     `json:"body_truncated,omitempty"`
	RedactedHeaders []string `json:"redacted_headers,omitempty"`
	// Latency is from the request's arrival to the response header;
	// Duration to the end of the body.
	Latency  time.Duration `json:"latency_ns,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Error says why the exchange failed, when it did ("upstream
	// timeout").
	Error string `json:"error,omitempty"`
}

// GRPCMessage is one gRPC message.
type GRPCMessage struct {
	Direction Direction `json:"direction"`
	// Method is the full method ("/pkg.Service/Method").
	Method     string `json:"method,omitempty"`
	Compressed bool   `json:"compressed,omitempty"`
	// Message is the message as captured; Size its whole length.
	Message   []byte `json:"message,omitempty"`
	Size      int64  `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
}

// TCPChunk is bytes read from one side of a tcp connection.
type TCPChunk struct {
	Direction Direction `json:"direction"`
	// Data is what is kept of the chunk (the cap applies per direction
	// over the whole session); Size is how many bytes went by.
	Data      []byte `json:"data,omitempty"`
	Size      int64  `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Decision is an authorization or guardrail decision.
type Decision struct {
	// Kind is "auth", "binding", "guardrail" or another decider's name.
	Kind string `json:"kind"`
	// Outcome is "allow" or "deny".
	Outcome string `json:"outcome"`
	// Rule names the rule that decided ("guardrails.deny_path_patterns[0]").
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Status is the HTTP status answered, for denials.
	Status int `json:"status,omitempty"`
}

// Manifest closes a session: the numbers the signature vouches for.
type Manifest struct {
	SessionID string `json:"session_id"`
	// HeaderHash is the hex SHA-256 record 0 links to.
	HeaderHash string `json:"header_hash"`
	// Records, FinalHash and Bytes describe the file before the manifest:
	// how many records, the hash of the last one, and the length.
	Records   int64  `json:"records"`
	FinalHash string `json:"final_hash"`
	Bytes     int64  `json:"bytes"`
	// EndedAt equals the manifest record's time.
	EndedAt time.Time `json:"ended_at"`
	// Reason says how the session ended ("closed").
	Reason         string `json:"reason"`
	KeyFingerprint string `json:"key_fingerprint"`
	// TCPBytes counts the bytes that went each way in a tcp session.
	TCPBytes map[Direction]int64 `json:"tcp_bytes,omitempty"`
}

// SessionEnd is the payload of the last record: the manifest exactly as
// signed, and the Ed25519 signature of signingMessage(manifest).
type SessionEnd struct {
	Manifest  json.RawMessage `json:"manifest"`
	Signature []byte          `json:"signature"`
}

// signingContext separates manifest signatures from anything else the
// key could ever sign.
const signingContext = "sallyport-recording-manifest-v1\x00"

func signingMessage(manifest []byte) []byte {
	return append([]byte(signingContext), manifest...)
}

// appendFrame appends a length-prefixed frame to dst.
func appendFrame(dst, body []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...)
}

// errTruncated says the file ends inside a frame.
var errTruncated = errors.New("the file ends inside a record")

// frameReader reads frames and counts offsets.
type frameReader struct {
	br  *bufio.Reader
	off int64
}

// next returns the next frame (length prefix included) and its body, or
// io.EOF at a clean end.
func (fr *frameReader) next() (frame, body []byte, err error) {
	var prefix [binary.MaxVarintLen64]byte
	n := 0
	var length uint64
	for shift := uint(0); ; shift += 7 {
		b, err := fr.br.ReadByte()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, nil, io.EOF
			}
			return nil, nil, errTruncated
		}
		if err != nil {
			return nil, nil, err
		}
		if n == len(prefix) {
			return nil, nil, errors.New("malformed length prefix")
		}
		prefix[n] = b
		n++
		length |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	if length > MaxFrameBytes {
		return nil, nil, fmt.Errorf("length prefix says %d bytes, more than the %d a record may hold (corrupt length)", length, MaxFrameBytes)
	}
	frame = make([]byte, n+int(length))
	copy(frame, prefix[:n])
	if _, err := io.ReadFull(fr.br, frame[n:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, nil, errTruncated
		}
		return nil, nil, err
	}
	fr.off += int64(len(frame))
	return frame, frame[n:], nil
}

func hashFrame(frame []byte) [32]byte { return sha256.Sum256(frame) }
