package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// A session holds many exchanges; records of concurrent exchanges (HTTP/2
// streams) interleave, and each names its exchange, so the transcript and
// the HAR export show every exchange with its own decisions and response.
func TestExchangesInOneSession(t *testing.T) {
	f := newFixture(t)
	info := testInfo()
	info.Secrets = []string{"planner-token-0123456789"}
	s, err := f.rec.StartSession(context.Background(), info, testPolicy)
	must(t, err)
	a, b := s.Exchange("rid-a"), s.Exchange("rid-b")
	must(t, a.Decision(Decision{Kind: "binding", Outcome: "allow", Rule: "ib_a"}))
	must(t, b.Decision(Decision{Kind: "binding", Outcome: "allow", Rule: "ib_b"}))
	must(t, b.Decision(Decision{Kind: "guardrail", Outcome: "deny", Rule: "deny[0]", Status: 403}))
	must(t, b.HTTPRequest(HTTPRequest{Method: "GET", Path: "/b", Header: http.Header{"Authorization": {"Bearer planner-token-0123456789"}},
		Identity: &Identity{Subject: "alice", BindingID: "ib_b"}}))
	must(t, a.HTTPRequest(HTTPRequest{Method: "POST", Path: "/a", Header: http.Header{"X-Echo": {"planner-token-0123456789"}}}))
	must(t, b.HTTPResponse(HTTPResponse{Status: 403}))
	must(t, b.End())
	must(t, a.HTTPResponse(HTTPResponse{Status: 200, Body: []byte("ok planner-token-0123456789"), BodySize: 27}))
	must(t, a.End())
	must(t, s.Close())
	p := f.path(s.ID())

	res, err := Verify(p, f.rec.PublicKey(), f.anchor(s.ID()))
	must(t, err)
	if !res.OK || res.Records != 9 {
		t.Fatalf("verify: %+v", res)
	}
	raw, _ := os.ReadFile(p)
	if bytes.Contains(raw, []byte("planner-token-0123456789")) {
		t.Fatal("the secret is in the file")
	}
	recs, _, err := ReadRecords(p, 0, 0)
	must(t, err)
	var rids []string
	for _, r := range recs {
		rids = append(rids, r.RequestID)
	}
	if got := strings.Join(rids, ","); got != ",rid-a,rid-b,rid-b,rid-b,rid-a,rid-b,rid-a," {
		t.Fatalf("request ids %s", got)
	}

	var buf bytes.Buffer
	must(t, WriteTranscript(&buf, p))
	out := buf.String()
	for _, want := range []string{"── exchange rid-a", "── exchange rid-b", "→ GET /b", "identity: subject=alice binding=ib_b", "→ POST /a", "← 403 Forbidden", "← 200 OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}

	har, err := ExportHAR(p, "test")
	must(t, err)
	if len(har.Log.Entries) != 2 {
		t.Fatalf("%d HAR entries", len(har.Log.Entries))
	}
	byRID := map[string]*HAREntry{}
	for _, e := range har.Log.Entries {
		byRID[e.Sallyport.RequestID] = e
	}
	ea, eb := byRID["rid-a"], byRID["rid-b"]
	if ea == nil || eb == nil || ea.Request.Method != "POST" || ea.Response.Status != 200 || eb.Request.Method != "GET" || eb.Response.Status != 403 {
		t.Fatalf("HAR entries %+v %+v", ea, eb)
	}
	if len(ea.Sallyport.Decisions) != 1 || ea.Sallyport.Decisions[0].Rule != "ib_a" || len(eb.Sallyport.Decisions) != 2 || eb.Sallyport.Decisions[1].Rule != "deny[0]" {
		t.Fatalf("HAR decisions %+v / %+v", ea.Sallyport.Decisions, eb.Sallyport.Decisions)
	}
}

// An ended exchange's records reach the file within the flush delay,
// without waiting for the session's end.
func TestExchangeRecordsAreWrittenAfterTheFlushDelay(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.FlushDelay = 10 * time.Millisecond })
	s, err := f.rec.StartSession(context.Background(), testInfo(), testPolicy)
	must(t, err)
	p := f.path(s.ID())
	size := func() int64 {
		fi, err := os.Stat(p)
		must(t, err)
		return fi.Size()
	}
	before := size()
	ex := s.Exchange("rid-1")
	must(t, ex.HTTPRequest(HTTPRequest{Method: "GET", Path: "/"}))
	must(t, ex.HTTPResponse(HTTPResponse{Status: 204}))
	must(t, ex.End())
	deadline := time.Now().Add(5 * time.Second)
	for size() == before {
		if time.Now().After(deadline) {
			t.Fatal("the exchange's records did not reach the file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := Verify(p, f.rec.PublicKey(), nil)
	must(t, err)
	if res.Records != 3 || res.Complete {
		t.Fatalf("open session: %+v", res)
	}
	must(t, s.Close())
}

// The magic's version and the header's must agree.
func TestVerifyRejectsAVersionMismatch(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	must(t, s.Close())
	p := f.path(s.ID())
	raw, err := os.ReadFile(p)
	must(t, err)
	copy(raw, magicV1) // a version 2 file claiming to be version 1
	must(t, os.WriteFile(p, raw, 0o600))
	res, err := Verify(p, f.rec.PublicKey(), f.anchor(s.ID()))
	must(t, err)
	if res.OK || res.FirstBad == nil || !strings.Contains(res.FirstBad.Reason, "format version 2") {
		t.Fatalf("verify: %+v", res.FirstBad)
	}
}

// Files of format version 1 (one exchange per session, no request ids)
// still verify; a request id in one does not.
func TestVerifyReadsVersion1(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	must(t, s.Close())
	p := f.path(s.ID())
	head, frames := splitFile(t, p)
	var hdr Header
	{
		fr := &frameReader{br: bufioReader(head[len(Magic):])}
		_, body, err := fr.next()
		must(t, err)
		must(t, json.Unmarshal(body, &hdr))
	}
	hdr.Version = 1
	hj, err := json.Marshal(hdr)
	must(t, err)
	v1head := appendFrame([]byte(magicV1), hj)
	var envs []envelope
	for _, fr := range frames[:len(frames)-1] {
		env := decodeFrame(t, fr)
		env.RequestID = ""
		envs = append(envs, env)
	}
	joinFile(t, p, v1head, forge(t, f.rec.key, v1head, envs, f.clock.Now()))
	res, err := Verify(p, f.rec.PublicKey(), nil)
	must(t, err)
	if !res.OK || !res.Complete || res.FirstBad != nil {
		t.Fatalf("version 1: %+v %+v", res, res.FirstBad)
	}
	var buf bytes.Buffer
	must(t, WriteTranscript(&buf, p))
	if _, err := ExportHAR(p, "test"); err != nil {
		t.Fatal(err)
	}

	envs[1].RequestID = "rid-1"
	joinFile(t, p, v1head, forge(t, f.rec.key, v1head, envs, f.clock.Now()))
	res, err = Verify(p, f.rec.PublicKey(), nil)
	must(t, err)
	if res.OK || res.FirstBad == nil || res.FirstBad.Index != 1 || !strings.Contains(res.FirstBad.Reason, "request id") {
		t.Fatalf("a request id in version 1: %+v", res.FirstBad)
	}
}
