package recording

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// WriteTranscript replays a recording as readable text: the session's
// identity and connection, then each record with its offset in time from
// the start. It does not verify the file (run Verify for that); a record
// it cannot read ends the transcript with an error.
func WriteTranscript(w io.Writer, path string) error {
	r, err := OpenReader(path)
	if err != nil {
		return err
	}
	defer r.Close()
	h := r.Header()
	tw := &transcript{w: w, start: h.StartedAt}
	tw.printf("session %s, started %s\n", h.SessionID, h.StartedAt.Format(time.RFC3339Nano))
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return tw.err
		}
		if err != nil {
			tw.printf("!! %v\n", err)
			return err
		}
		tw.record(rec)
		if tw.err != nil {
			return tw.err
		}
	}
}

type transcript struct {
	w     io.Writer
	start time.Time
	err   error
	// rid is the exchange of the last record printed: a line announces
	// each change (HTTP/2 streams of one connection interleave).
	rid string
}

func (t *transcript) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *transcript) record(rec *Record) {
	at := fmt.Sprintf("[+%.3fs] #%d", rec.Time.Sub(t.start).Seconds(), rec.Index)
	bad := func(err error) { t.printf("%s %s: unreadable payload: %v\n", at, rec.Type, err) }
	if rec.RequestID != "" && rec.RequestID != t.rid {
		t.printf("── exchange %s\n", rec.RequestID)
	}
	if rec.RequestID != "" || rec.Type != TypeSessionEnd {
		t.rid = rec.RequestID
	}
	switch rec.Type {
	case TypeSessionStart:
		var p SessionStart
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		t.printf("%s start: %s session\n", at, p.Protocol)
		t.printf("    identity:   %s\n", describeIdentity(p.Identity))
		t.printf("    connection: %s\n", named(p.ConnectionID, p.ConnectionName))
		t.printf("    gateway:    %s\n", named(p.GatewayID, p.GatewayName))
		t.printf("    from:       %s\n", named(p.RemoteAddr, ""))
		if p.RequestID != "" {
			t.printf("    request id: %s\n", p.RequestID)
		}
		t.printf("    bodies:     %s, on disk full: %s\n", capText(p.MaxBodyBytes), p.OnDiskFull)
	case TypeHTTPRequest:
		var p HTTPRequest
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		target := p.Path
		if p.Query != "" {
			target += "?" + p.Query
		}
		t.printf("%s → %s %s %s\n", at, p.Method, target, p.Proto)
		if p.Host != "" {
			t.printf("    Host: %s\n", p.Host)
		}
		if p.Identity != nil {
			t.printf("    identity: %s\n", describeIdentity(*p.Identity))
		}
		t.headers(p.Header, p.RedactedHeaders)
		t.body(p.Body, p.BodySize, p.BodyTruncated)
	case TypeHTTPResponse:
		var p HTTPResponse
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		t.printf("%s ← %d %s", at, p.Status, http.StatusText(p.Status))
		if p.Latency > 0 {
			t.printf(" (header after %s, done after %s)", p.Latency, p.Duration)
		}
		t.printf("\n")
		if p.Error != "" {
			t.printf("    error: %s\n", p.Error)
		}
		t.headers(p.Header, p.RedactedHeaders)
		t.body(p.Body, p.BodySize, p.BodyTruncated)
		if len(p.Trailer) > 0 {
			t.printf("    trailers:\n")
			t.headers(p.Trailer, nil)
		}
	case TypeGRPCMessage:
		var p GRPCMessage
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		t.printf("%s %s gRPC message %s (%d bytes, compressed %v)\n", at, arrow(p.Direction), p.Method, p.Size, p.Compressed)
		t.body(p.Message, p.Size, p.Truncated)
	case TypeTCPChunk:
		var p TCPChunk
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		t.printf("%s %s %d bytes %s\n", at, arrow(p.Direction), p.Size, p.Direction)
		if len(p.Data) > 0 {
			t.body(p.Data, int64(len(p.Data)), p.Truncated)
		} else if p.Truncated {
			t.printf("    (past the cap: not kept)\n")
		}
	case TypeDecision:
		var p Decision
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		t.printf("%s decision: %s %s", at, p.Kind, strings.ToUpper(p.Outcome))
		if p.Rule != "" {
			t.printf(" rule=%s", p.Rule)
		}
		if p.Status != 0 {
			t.printf(" status=%d", p.Status)
		}
		if p.Reason != "" {
			t.printf(" (%s)", p.Reason)
		}
		t.printf("\n")
	case TypeSessionEnd:
		var p SessionEnd
		var m Manifest
		if err := json.Unmarshal(rec.Payload, &p); err != nil {
			bad(err)
			return
		}
		if err := json.Unmarshal(p.Manifest, &m); err != nil {
			bad(err)
			return
		}
		t.printf("%s end (%s): manifest over the %d records before it (%d bytes, final hash %s), signed by %s\n",
			at, m.Reason, m.Records, m.Bytes, short(m.FinalHash), m.KeyFingerprint)
		for _, d := range []Direction{ToExecutor, ToPlanner} {
			if n, ok := m.TCPBytes[d]; ok {
				t.printf("    %d bytes %s\n", n, d)
			}
		}
	default:
		t.printf("%s %s (unknown record type)\n", at, rec.Type)
	}
}

func (t *transcript) headers(h http.Header, redacted []string) {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, v := range h[n] {
			t.printf("    %s: %s\n", n, v)
		}
	}
	if len(redacted) > 0 {
		t.printf("    (not recorded: %s)\n", strings.Join(redacted, ", "))
	}
}

func (t *transcript) body(b []byte, size int64, truncated bool) {
	if len(b) == 0 && size <= 0 {
		return
	}
	note := ""
	if truncated {
		note = fmt.Sprintf(", first %d recorded", len(b))
	}
	sizeText := fmt.Sprintf("%d bytes", size)
	if size < 0 {
		sizeText = "size unknown"
	}
	if len(b) == 0 {
		t.printf("    body: %s, not recorded\n", sizeText)
		return
	}
	if printable(b) {
		t.printf("    body (%s%s):\n", sizeText, note)
		for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			t.printf("      | %s\n", line)
		}
		return
	}
	t.printf("    body (%s%s, binary, base64):\n      %s\n", sizeText, note, base64.StdEncoding.EncodeToString(b))
}

func arrow(d Direction) string {
	if d == ToPlanner {
		return "←"
	}
	return "→"
}

func named(id, name string) string {
	switch {
	case id == "" && name == "":
		return "-"
	case name == "":
		return id
	case id == "":
		return name
	}
	return fmt.Sprintf("%s (%s)", name, id)
}

func describeIdentity(i Identity) string {
	var parts []string
	if i.Issuer != "" {
		parts = append(parts, "issuer="+i.Issuer)
	}
	if i.Subject != "" {
		parts = append(parts, "subject="+i.Subject)
	}
	if i.ClientCertURI != "" {
		parts = append(parts, "cert="+i.ClientCertURI)
	}
	if i.ClientCertSubject != "" {
		parts = append(parts, "cert subject="+i.ClientCertSubject)
	}
	if i.BindingID != "" || i.BindingName != "" {
		parts = append(parts, "binding="+named(i.BindingID, i.BindingName))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func capText(n int64) string {
	if n < 0 {
		return "not recorded"
	}
	return fmt.Sprintf("up to %d bytes", n)
}
