package recording

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

func TestRecordAndVerifyHTTPSession(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	id := s.ID()
	if !strings.HasPrefix(id, "ses_") {
		t.Fatalf("session id %q", id)
	}
	must(t, s.Close())
	must(t, s.Close()) // a second Close is a no-op

	p := f.path(id)
	if want := filepath.Join(f.dir, "recordings", "2026-03-14", id+".rec"); p != want {
		t.Fatalf("file at %s, want %s", p, want)
	}
	for path, perm := range map[string]fs.FileMode{p: 0o600, filepath.Join(f.dir, KeyFile): 0o600, filepath.Dir(p): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
		}
	}
	pubPEM, err := os.ReadFile(filepath.Join(f.dir, PublicKeyFile))
	must(t, err)
	pub, err := ParsePublicKeyPEM(pubPEM)
	must(t, err)
	if !pub.Equal(f.rec.PublicKey()) {
		t.Fatal("the public key file does not hold the recorder's key")
	}

	a := f.anchor(id)
	fi, _ := os.Stat(p)
	if a.Records != 5 || a.Bytes != fi.Size() || a.File != "2026-03-14/"+id+".rec" || a.ConnectionID != "conn_a" {
		t.Fatalf("anchor %+v (file %d bytes)", a, fi.Size())
	}
	res, err := Verify(p, pub, a)
	must(t, err)
	if !res.OK || res.Status != StatusVerified || res.FirstBad != nil || res.Records != 5 || res.FinalHash != a.FinalHash {
		t.Fatalf("pristine recording: %+v", res)
	}
	if res.Manifest == nil || res.Manifest.Records != 4 || res.Manifest.Reason != "closed" {
		t.Fatalf("manifest %+v", res.Manifest)
	}
	if res, _ := Verify(p, pub, nil); res.Status != StatusSigned || !res.OK {
		t.Fatalf("without an anchor: %+v", res)
	}

	recs, more, err := f.rec.Records(context.Background(), id, 0, 0)
	must(t, err)
	if more || len(recs) != 5 {
		t.Fatalf("%d records, more %v", len(recs), more)
	}
	types := []string{TypeSessionStart, TypeDecision, TypeHTTPRequest, TypeHTTPResponse, TypeSessionEnd}
	for i, r := range recs {
		if r.Type != types[i] || r.Seq != int64(i) || r.Index != int64(i) {
			t.Errorf("record %d: %s seq %d", i, r.Type, r.Seq)
		}
		if i > 0 && r.Prev != recs[i-1].Hash {
			t.Errorf("record %d does not link to record %d", i, i-1)
		}
	}
	var req HTTPRequest
	must(t, json.Unmarshal(recs[2].Payload, &req))
	if req.Header.Get("Authorization") != "" || strings.Join(req.RedactedHeaders, ",") != "Authorization" || string(req.Body) != `{"job":"build"}` {
		t.Fatalf("request %+v", req)
	}
	var resp HTTPResponse
	must(t, json.Unmarshal(recs[3].Payload, &resp))
	if resp.Header.Get("Set-Cookie") != "" || resp.Status != 201 || resp.Latency != 11*time.Millisecond {
		t.Fatalf("response %+v", resp)
	}
	page, more, err := f.rec.Records(context.Background(), id, 1, 2)
	must(t, err)
	if !more || len(page) != 2 || page[0].Index != 1 {
		t.Fatalf("page from 1: %d records, more %v", len(page), more)
	}

	d, err := f.rec.Session(context.Background(), id)
	must(t, err)
	if d.Status != SessionComplete || d.Verification == nil || d.Verification.Status != StatusVerified || d.Identity.Subject != "repo:acme/app" || d.ConnectionName != "jobs" {
		t.Fatalf("detail %+v", d)
	}
	if _, err := f.rec.Session(context.Background(), "ses_nope"); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if got := counter(t, f.reg, "sallyport_recording_sessions_total"); got != 1 {
		t.Fatalf("sessions_total %v", got)
	}
}

func TestTranscriptAndHAR(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	must(t, s.Close())
	p := f.path(s.ID())

	var buf bytes.Buffer
	must(t, WriteTranscript(&buf, p))
	out := buf.String()
	for _, want := range []string{
		"session " + s.ID(), "identity:   issuer=https://idp.example.test subject=repo:acme/app binding=ci (ib_x)",
		"connection: jobs (conn_a)", "decision: binding ALLOW rule=ib_x", "→ POST /v1/jobs?limit=5 HTTP/2.0",
		"(not recorded: Authorization)", `| {"job":"build"}`, "← 201 Created", "(not recorded: Set-Cookie)",
		"end (closed): manifest over the 4 records before it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}

	har, err := ExportHAR(p, "test")
	must(t, err)
	data, err := json.Marshal(har)
	must(t, err)
	var doc struct {
		Log struct {
			Version string `json:"version"`
			Entries []struct {
				StartedDateTime string  `json:"startedDateTime"`
				Time            float64 `json:"time"`
				Request         struct {
					Method      string `json:"method"`
					URL         string `json:"url"`
					Headers     []HARNameValue
					QueryString []HARNameValue `json:"queryString"`
					PostData    struct{ Text string }
				}
				Response struct {
					Status  int
					Content struct {
						Size int64
						Text string
					}
				}
				Timings   map[string]float64
				Sallyport HARExtra `json:"_sallyport"`
			}
		}
	}
	must(t, json.Unmarshal(data, &doc))
	if doc.Log.Version != "1.2" || len(doc.Log.Entries) != 1 {
		t.Fatalf("HAR %s", data)
	}
	e := doc.Log.Entries[0]
	if e.Request.Method != "POST" || e.Request.URL != "https://api.example.test/v1/jobs?limit=5" || e.Request.PostData.Text != `{"job":"build"}` ||
		e.Response.Status != 201 || e.Response.Content.Text != `{"id":"j1"}` || e.Time != 12 || e.Timings["wait"] != 11 ||
		len(e.Request.QueryString) != 1 || len(e.Sallyport.Decisions) != 1 || e.Sallyport.SessionID != s.ID() {
		t.Fatalf("HAR entry %s", data)
	}
	if strings.Contains(string(data), "planner-token-xyz") {
		t.Fatal("the HAR holds the planner's token")
	}

	tcp, err := f.rec.StartSession(context.Background(), SessionInfo{Protocol: "tcp", ConnectionID: "conn_t"}, testPolicy)
	must(t, err)
	must(t, tcp.TCPChunk(ToExecutor, []byte("hello")))
	must(t, tcp.Close())
	if _, err := ExportHAR(f.path(tcp.ID()), "test"); !errors.Is(err, ErrNotHTTP) {
		t.Fatalf("HAR of a tcp session: %v", err)
	}
}

// tamperFixture records one session and returns its file, anchor and key.
func tamperFixture(t *testing.T) (*fixture, string, *Anchor) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	must(t, s.Close())
	return f, f.path(s.ID()), f.anchor(s.ID())
}

func TestVerifyDetectsTampering(t *testing.T) {
	type tamper struct {
		name string
		// edit changes the file; it gets the recorder for its key.
		edit func(t *testing.T, f *fixture, path string)
		// wantIndex is the first bad record; wantReason part of its reason.
		wantIndex  int64
		wantReason string
		// unanchored is the status without an anchor ("" = tampered too).
		unanchored string
	}
	tampers := []tamper{
		{
			name: "byte edited",
			edit: func(t *testing.T, _ *fixture, path string) {
				data, _ := os.ReadFile(path)
				i := bytes.Index(data, []byte("/v1/jobs"))
				data[i+4] = 'k' // "/v1/kobs": the JSON still parses
				must(t, os.WriteFile(path, data, 0o600))
			},
			wantIndex: 2, wantReason: "content does not match the hash record 3 links to",
		},
		{
			name: "byte edited breaking the JSON",
			edit: func(t *testing.T, _ *fixture, path string) {
				data, _ := os.ReadFile(path)
				i := bytes.Index(data, []byte(`"method":"POST"`))
				data[i] = '{'
				must(t, os.WriteFile(path, data, 0o600))
			},
			wantIndex: 2, wantReason: "does not parse",
		},
		{
			name: "records reordered",
			edit: func(t *testing.T, _ *fixture, path string) {
				head, frames := splitFile(t, path)
				frames[2], frames[3] = frames[3], frames[2]
				joinFile(t, path, head, frames)
			},
			wantIndex: 2, wantReason: "sequence number 3 where 2 belongs",
		},
		{
			name: "record deleted",
			edit: func(t *testing.T, _ *fixture, path string) {
				head, frames := splitFile(t, path)
				joinFile(t, path, head, append(frames[:1:1], frames[2:]...))
			},
			wantIndex: 1, wantReason: "sequence number 2 where 1 belongs",
		},
		{
			name: "record deleted and the rest renumbered and relinked",
			edit: func(t *testing.T, f *fixture, path string) {
				// The forger holds the key: only the anchor remains.
				head, frames := splitFile(t, path)
				envs := []envelope{decodeFrame(t, frames[0]), decodeFrame(t, frames[2]), decodeFrame(t, frames[3])}
				joinFile(t, path, head, forge(t, f.rec.key, head, envs, decodeFrame(t, frames[4]).Time))
			},
			wantIndex: 4, wantReason: "missing: the anchor says the session has 5 records, the file has 4",
			unanchored: StatusSigned,
		},
		{
			name: "tail cut at a record boundary",
			edit: func(t *testing.T, _ *fixture, path string) {
				head, frames := splitFile(t, path)
				joinFile(t, path, head, frames[:3])
			},
			wantIndex: 3, wantReason: "missing: the anchor says the session has 5 records, the file has 3",
			unanchored: StatusIncomplete,
		},
		{
			name: "tail cut inside a record",
			edit: func(t *testing.T, _ *fixture, path string) {
				fi, _ := os.Stat(path)
				must(t, os.Truncate(path, fi.Size()-7))
			},
			wantIndex: 4, wantReason: "the file ends inside this record",
			unanchored: StatusIncomplete,
		},
		{
			name: "cut and re-appended with a valid chain and a valid signature",
			edit: func(t *testing.T, f *fixture, path string) {
				head, frames := splitFile(t, path)
				envs := []envelope{decodeFrame(t, frames[0]), decodeFrame(t, frames[1]), decodeFrame(t, frames[2])}
				forged := decodeFrame(t, frames[3])
				forged.Payload = bytes.Replace(forged.Payload, []byte(`"status":201`), []byte(`"status":403`), 1)
				envs = append(envs, forged)
				joinFile(t, path, head, forge(t, f.rec.key, head, envs, decodeFrame(t, frames[4]).Time))
			},
			wantIndex: 4, wantReason: "is not the anchored",
			unanchored: StatusSigned, // which is why the anchor exists
		},
		{
			name: "re-signed with a foreign key",
			edit: func(t *testing.T, f *fixture, path string) {
				_, foreign, _ := ed25519.GenerateKey(rand.Reader)
				head, frames := splitFile(t, path)
				envs := []envelope{decodeFrame(t, frames[0]), decodeFrame(t, frames[1]), decodeFrame(t, frames[2]), decodeFrame(t, frames[3])}
				joinFile(t, path, head, forge(t, foreign, head, envs, decodeFrame(t, frames[4]).Time))
			},
			wantIndex: 4, wantReason: "signature does not verify with the given public key",
		},
		{
			name: "manifest edited",
			edit: func(t *testing.T, _ *fixture, path string) {
				data, _ := os.ReadFile(path)
				i := bytes.LastIndex(data, []byte(`closed`))
				copy(data[i:], "cloned")
				must(t, os.WriteFile(path, data, 0o600))
			},
			wantIndex: 4, wantReason: "signature does not verify",
		},
		{
			name: "record appended after the manifest",
			edit: func(t *testing.T, _ *fixture, path string) {
				head, frames := splitFile(t, path)
				joinFile(t, path, head, append(frames, frames[3]))
			},
			wantIndex: 5, wantReason: "data follows the manifest",
		},
		{
			name: "header edited",
			edit: func(t *testing.T, _ *fixture, path string) {
				data, _ := os.ReadFile(path)
				i := bytes.Index(data, []byte("2026-03-14T09"))
				copy(data[i:], "2025")
				must(t, os.WriteFile(path, data, 0o600))
			},
			wantIndex: -1, wantReason: "record 0 does not link to the header",
		},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			f, path, anchor := tamperFixture(t)
			tc.edit(t, f, path)
			res, err := Verify(path, f.rec.PublicKey(), anchor)
			must(t, err)
			if res.OK || res.Status != StatusTampered || res.FirstBad == nil {
				t.Fatalf("tampering not detected: %+v", res)
			}
			if res.FirstBad.Index != tc.wantIndex || !strings.Contains(res.FirstBad.Reason, tc.wantReason) {
				t.Fatalf("first bad %s, want record %d: ...%s...", res.FirstBad, tc.wantIndex, tc.wantReason)
			}
			want := tc.unanchored
			if want == "" {
				want = StatusTampered
			}
			if res, _ := Verify(path, f.rec.PublicKey(), nil); res.Status != want {
				t.Fatalf("without the anchor: %s (%s), want %s", res.Status, res.Summary(), want)
			}
		})
	}

	t.Run("pristine", func(t *testing.T) {
		f, path, anchor := tamperFixture(t)
		res, err := Verify(path, f.rec.PublicKey(), anchor)
		must(t, err)
		if !res.OK || res.Status != StatusVerified {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("verified with the wrong public key", func(t *testing.T) {
		_, path, anchor := tamperFixture(t)
		other, _, _ := ed25519.GenerateKey(rand.Reader)
		res, err := Verify(path, other, anchor)
		must(t, err)
		if res.OK || res.FirstBad == nil || res.FirstBad.Index != 4 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("anchor of another session", func(t *testing.T) {
		f, path, _ := tamperFixture(t)
		s := f.httpSession(testInfo())
		must(t, s.Close())
		res, _ := Verify(path, f.rec.PublicKey(), f.anchor(s.ID()))
		if res.OK || res.FirstBad == nil || !strings.Contains(res.FirstBad.Reason, "the anchor is for") {
			t.Fatalf("%+v", res)
		}
	})
}

// forge rebuilds a recording from envs with a valid chain and a manifest
// signed by key: what someone holding a key could write.
func forge(t *testing.T, key ed25519.PrivateKey, head []byte, envs []envelope, endedAt time.Time) [][]byte {
	t.Helper()
	prev := sha256Sum(head)
	size := int64(len(head))
	var frames [][]byte
	for i, env := range envs {
		env.Seq, env.Prev = int64(i), prev
		fr := encodeFrame(t, env)
		frames = append(frames, fr)
		prev = frameHash(fr)
		size += int64(len(fr))
	}
	var hdr Header
	{
		fr := &frameReader{br: bufioReader(head[len(Magic):])}
		_, body, err := fr.next()
		must(t, err)
		must(t, json.Unmarshal(body, &hdr))
	}
	pub := key.Public().(ed25519.PublicKey)
	m := Manifest{SessionID: hdr.SessionID, HeaderHash: sha256Sum(head), Records: int64(len(envs)), FinalHash: prev, Bytes: size,
		EndedAt: endedAt, Reason: "closed", KeyFingerprint: Fingerprint(pub)}
	mj, err := json.Marshal(m)
	must(t, err)
	payload, err := json.Marshal(SessionEnd{Manifest: mj, Signature: ed25519.Sign(key, signingMessage(mj))})
	must(t, err)
	return append(frames, encodeFrame(t, envelope{Seq: int64(len(envs)), Time: endedAt, Type: TypeSessionEnd, Prev: prev, Payload: payload}))
}

func TestCrashLeavesAnIncompleteSession(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	// Every record is flushed to the kernel as it is written: a copy taken
	// now is what a crash would leave on disk.
	data, err := os.ReadFile(f.path(s.ID()))
	must(t, err)
	crashed := filepath.Join(t.TempDir(), "crashed.rec")
	must(t, os.WriteFile(crashed, data, 0o600))
	res, err := Verify(crashed, f.rec.PublicKey(), nil)
	must(t, err)
	if res.OK || res.Status != StatusIncomplete || res.FirstBad != nil || res.Records != 4 || !strings.Contains(res.Summary(), "no manifest") {
		t.Fatalf("%+v", res)
	}
	must(t, os.WriteFile(crashed, data[:len(data)-5], 0o600)) // torn last write
	if res, _ := Verify(crashed, f.rec.PublicKey(), nil); res.Status != StatusIncomplete || !strings.Contains(res.Note, "ends inside record 3") {
		t.Fatalf("torn: %+v", res)
	}

	d, err := f.rec.Session(context.Background(), s.ID())
	must(t, err)
	if d.Status != SessionRecording || d.Verification != nil {
		t.Fatalf("a session in progress: %+v", d)
	}
	list, err := f.rec.ListSessions(context.Background(), ListOptions{})
	must(t, err)
	if len(list) != 1 || list[0].Status != SessionRecording {
		t.Fatalf("list %+v", list)
	}
	// The recorder's Close ends open sessions with a manifest.
	must(t, f.rec.Close())
	res, err = Verify(f.path(s.ID()), f.rec.PublicKey(), f.anchor(s.ID()))
	must(t, err)
	if !res.OK || res.Manifest.Reason != "recorder_closed" {
		t.Fatalf("after Close: %+v", res)
	}
	if _, err := f.rec.StartSession(context.Background(), testInfo(), testPolicy); !errors.Is(err, ErrClosed) {
		t.Fatalf("StartSession after Close: %v", err)
	}
}

func TestListSessions(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i, conn := range []string{"conn_a", "conn_b", "conn_a"} {
		info := testInfo()
		info.ConnectionID = conn
		s := f.httpSession(info)
		must(t, s.Close())
		ids = append(ids, s.ID())
		if i == 0 {
			f.clock.Advance(36 * time.Hour) // the next ones go to other days
		}
	}
	open, err := f.rec.StartSession(context.Background(), testInfo(), testPolicy)
	must(t, err)
	defer open.Close()
	f.clock.Advance(time.Millisecond)
	// A session whose appliance died: a file with no anchor.
	crash := f.httpSession(testInfo())
	f.rec.mu.Lock()
	delete(f.rec.active, crash.ID())
	f.rec.mu.Unlock()

	all, err := f.rec.ListSessions(context.Background(), ListOptions{})
	must(t, err)
	got := map[string]string{}
	for _, s := range all {
		got[s.ID] = s.Status
	}
	if len(all) != 5 || all[0].ID != crash.ID() || all[4].ID != ids[0] || got[open.ID()] != SessionRecording ||
		got[crash.ID()] != SessionIncomplete || got[ids[1]] != SessionComplete {
		t.Fatalf("list (newest first): %+v", got)
	}
	if all[4].Records != 5 || all[4].Anchor == nil || all[4].EndedAt == nil {
		t.Fatalf("complete session: %+v", all[4])
	}
	b, err := f.rec.ListSessions(context.Background(), ListOptions{ConnectionID: "conn_b"})
	must(t, err)
	if len(b) != 1 || b[0].ID != ids[1] {
		t.Fatalf("conn_b: %+v", b)
	}
	since, err := f.rec.ListSessions(context.Background(), ListOptions{Since: f.clock.Now().Add(-time.Hour)})
	must(t, err)
	if len(since) != 4 {
		t.Fatalf("since: %d sessions", len(since))
	}
	lim, err := f.rec.ListSessions(context.Background(), ListOptions{Limit: 2})
	must(t, err)
	if len(lim) != 2 || lim[0].ID != crash.ID() {
		t.Fatalf("limit: %+v", lim)
	}
}

func TestTCPSessionConcurrentDirections(t *testing.T) {
	f := newFixture(t)
	s, err := f.rec.StartSession(context.Background(), SessionInfo{Protocol: "tcp", ConnectionID: "conn_t"},
		model.RecordingSpec{Enabled: true, MaxBodyBytes: 1000})
	must(t, err)
	var wg sync.WaitGroup
	for _, d := range []Direction{ToExecutor, ToPlanner} {
		wg.Go(func() {
			for range 100 {
				if err := s.TCPChunk(d, bytes.Repeat([]byte{'x'}, 30)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	must(t, s.CloseWithReason("executor_closed"))
	res, err := Verify(f.path(s.ID()), f.rec.PublicKey(), f.anchor(s.ID()))
	must(t, err)
	if !res.OK || res.Records != 202 || res.Manifest.TCPBytes[ToExecutor] != 3000 || res.Manifest.TCPBytes[ToPlanner] != 3000 {
		t.Fatalf("%+v", res)
	}
	recs, _, err := ReadRecords(f.path(s.ID()), 0, 0)
	must(t, err)
	kept := map[Direction]int{}
	for _, r := range recs {
		if r.Type == TypeTCPChunk {
			var c TCPChunk
			must(t, json.Unmarshal(r.Payload, &c))
			kept[c.Direction] += len(c.Data)
		}
	}
	if kept[ToExecutor] != 1000 || kept[ToPlanner] != 1000 {
		t.Fatalf("kept %v, want the cap (1000) each way", kept)
	}
}

func TestBodyCaps(t *testing.T) {
	f := newFixture(t)
	body := bytes.Repeat([]byte("abcdefgh"), 20000) // 160000 bytes
	for _, tc := range []struct {
		max      int64
		wantKept int
	}{{0, DefaultMaxBodyBytes}, {-1, 0}, {100, 100}, {1 << 20, len(body)}} {
		s, err := f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: true, MaxBodyBytes: tc.max})
		must(t, err)
		c := s.CaptureBody(readCloser{bytes.NewReader(body)})
		var sink bytes.Buffer
		if _, err := sink.ReadFrom(c); err != nil {
			t.Fatal(err)
		}
		must(t, s.HTTPResponse(HTTPResponse{Status: 200, Body: c.Bytes(), BodySize: c.Size()}))
		must(t, s.Close())
		recs, _, err := ReadRecords(f.path(s.ID()), 1, 1)
		must(t, err)
		var resp HTTPResponse
		must(t, json.Unmarshal(recs[0].Payload, &resp))
		if len(resp.Body) != tc.wantKept || resp.BodySize != int64(len(body)) || resp.BodyTruncated != (tc.wantKept < len(body)) {
			t.Errorf("max_body_bytes %d: kept %d of %d (truncated %v), want %d", tc.max, len(resp.Body), resp.BodySize, resp.BodyTruncated, tc.wantKept)
		}
		if sink.Len() != len(body) {
			t.Errorf("the capture changed the body: %d bytes passed", sink.Len())
		}
	}
	if s, err := f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: false}); s != nil || err != nil {
		t.Fatalf("recording disabled: %v, %v", s, err)
	}
	var nilSession *Session
	if nilSession.HTTPRequest(HTTPRequest{}) != nil || nilSession.TCPChunk(ToPlanner, []byte("x")) != nil || nilSession.Close() != nil || nilSession.Recorded() {
		t.Fatal("a nil session must do nothing")
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	must(t, err)
	must(t, os.Remove(filepath.Join(dir, PublicKeyFile)))
	k2, err := LoadOrCreateKey(dir)
	must(t, err)
	if !k1.Equal(k2) {
		t.Fatal("the key changed on reload")
	}
	if _, err := os.Stat(filepath.Join(dir, PublicKeyFile)); err != nil {
		t.Fatalf("the public key file was not rewritten: %v", err)
	}
	must(t, os.Chmod(filepath.Join(dir, KeyFile), 0o644))
	if _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "looser than 0600") {
		t.Fatalf("a world-readable key: %v", err)
	}
}

func TestAnchorsAreWriteOnce(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	must(t, s.Close())
	a := f.anchor(s.ID())
	must(t, f.st.PutAnchor(context.Background(), s.ID(), *a)) // same anchor: fine
	forged := *a
	forged.Records++
	if err := f.st.PutAnchor(context.Background(), s.ID(), forged); !errors.Is(err, store.ErrAnchorExists) {
		t.Fatalf("re-anchoring: %v", err)
	}
}

func TestSessionIDsSortByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	prev := ""
	for i := range 50 {
		id, err := newSessionID(t0.Add(time.Duration(i) * 37 * time.Millisecond))
		must(t, err)
		if id <= prev {
			t.Fatalf("%s sorts before %s", id, prev)
		}
		prev = id
		got, ok := SessionTime(id)
		if !ok || !got.Equal(t0.Add(time.Duration(i)*37*time.Millisecond)) {
			t.Fatalf("SessionTime(%s) = %v, %v", id, got, ok)
		}
	}
	for _, bad := range []string{"", "ses_", "ses_../../etc/passwd", "gw_aaaaaaaaaaaaaaaaaaaaaaaaaa", "ses_AAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, ok := SessionTime(bad); ok {
			t.Errorf("%q accepted as a session id", bad)
		}
	}
}

func TestStartSessionHonoursContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.rec.StartSession(ctx, testInfo(), testPolicy); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

func TestConcurrentSessionsShareAnchorCommits(t *testing.T) {
	f := newFixture(t)
	rev0, err := f.be.Revision(context.Background())
	must(t, err)
	const n = 40
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			s, err := f.rec.StartSession(context.Background(), testInfo(), testPolicy)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.HTTPRequest(HTTPRequest{Method: "GET", Path: "/"}); err != nil {
				t.Error(err)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			ids <- s.ID()
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		res, err := Verify(f.path(id), f.rec.PublicKey(), f.anchor(id))
		must(t, err)
		if !res.OK {
			t.Fatalf("%s: %s", id, res.Summary())
		}
	}
	rev, err := f.be.Revision(context.Background())
	must(t, err)
	t.Logf("%d sessions anchored in %d commits", n, rev-rev0)
	if rev-rev0 > n {
		t.Fatalf("%d commits for %d anchors", rev-rev0, n)
	}
}

func TestAnchorBatchFallsBackOnAConflict(t *testing.T) {
	f := newFixture(t)
	taken := Anchor{SessionID: "ses_taken", Records: 1, FinalHash: "aa"}
	must(t, f.st.PutAnchor(context.Background(), taken.SessionID, taken))
	clash := taken
	clash.FinalHash = "bb"
	good := &anchorReq{a: Anchor{SessionID: "ses_good", Records: 1, FinalHash: "cc"}, done: make(chan struct{})}
	bad := &anchorReq{a: clash, done: make(chan struct{})}
	f.rec.anchors.commit([]*anchorReq{good, bad})
	if good.err != nil || !errors.Is(bad.err, store.ErrAnchorExists) {
		t.Fatalf("good: %v, bad: %v", good.err, bad.err)
	}
	if _, err := f.st.GetAnchor(context.Background(), "ses_good"); err != nil {
		t.Fatalf("the good anchor was not written: %v", err)
	}
}
