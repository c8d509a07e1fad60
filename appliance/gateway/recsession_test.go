package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// fakeTokens accepts the tokens it knows, each as its subject.
type fakeTokens map[string]string

func (f fakeTokens) Verify(_ context.Context, raw string) (*identity.Identity, error) {
	sub, ok := f[raw]
	if !ok {
		return nil, errors.New("unknown token")
	}
	return &identity.Identity{Source: identity.SourceOIDC, Issuer: "https://idp.test", Subject: sub, Expiry: time.Now().Add(time.Hour)}, nil
}

// recordedEnv is a gateway with one recorded http connection admitting
// the planner's certificate and the subjects alice and bob by token.
func recordedEnv(t *testing.T, bounds func(*recSessions)) (*env, *recording.Recorder, string, *Runtime) {
	t.Helper()
	rec, dir := newRecorder(t, func(o *recording.Options) { o.FlushDelay = -1 })
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	if bounds != nil {
		bounds(&e.srv.recs)
	}
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"path":"` + r.URL.Path + `","key":"` + r.Header.Get("X-Api-Key") + `"}`))
	})
	c := e.connection("c1", x.URL)
	c.Recording = &model.RecordingSpec{Enabled: true}
	for _, sub := range []string{"alice", "bob"} {
		b, err := identity.CompileBinding("b-"+sub, sub, &model.IdentityBindingSpec{ConnectionID: "c1", Issuer: "https://idp.test", Subject: sub})
		if err != nil {
			t.Fatal(err)
		}
		c.Bindings = append(c.Bindings, b)
	}
	g := e.gateway("g1", apiHost)
	g.Tokens = fakeTokens{tokenAlice: "alice", tokenBob: "bob"}
	g.Connections = []*Connection{c}
	rt := &Runtime{Gateways: []*Gateway{g}}
	e.apply(rt)
	return e, rec, dir, rt
}

const (
	tokenAlice = "alice-T0ken+with/special=chars-0123456789"
	tokenBob   = "bob-t0ken-9876543210-abcdefghij"
)

// getAs sends a GET with a bearer token (none for "") and returns the
// request id the gateway answered with.
func getAs(t *testing.T, cl *http.Client, path, token string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://api.test"+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = readAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return resp.Header.Get("X-Request-Id")
}

// waitSessions polls until n sessions are recorded, ended and verified
// against their anchors, and returns them oldest first.
func waitSessions(t *testing.T, rec *recording.Recorder, n int) []recording.SessionDetail {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out []recording.SessionDetail
		list, err := rec.ListSessions(t.Context(), recording.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			d, err := rec.Session(t.Context(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Verification != nil && d.Verification.OK && d.Verification.Status == recording.StatusVerified {
				out = append(out, *d)
			}
		}
		if len(out) == n && len(list) == n {
			slices.SortFunc(out, func(a, b recording.SessionDetail) int { return a.StartedAt.Compare(b.StartedAt) })
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions verified of %d listed, want %d", len(out), len(list), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchanges returns the request ids of a session's records, in order of
// first appearance, and the reason its manifest gives.
func exchanges(t *testing.T, rec *recording.Recorder, id string) ([]string, string) {
	t.Helper()
	recs, _, err := rec.Records(t.Context(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rids []string
	for _, r := range recs {
		if r.RequestID != "" && !slices.Contains(rids, r.RequestID) {
			rids = append(rids, r.RequestID)
		}
	}
	last := recs[len(recs)-1]
	if last.Type != recording.TypeSessionEnd {
		t.Fatalf("session %s ends with %s", id, last.Type)
	}
	var end recording.SessionEnd
	var m recording.Manifest
	if err := json.Unmarshal(last.Payload, &end); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(end.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return rids, m.Reason
}

// The exchanges of one keep-alive connection and credential are one
// session, which the connection's end closes, signs and anchors; another
// token on the same connection, or another connection, is another
// session. Transcript and HAR show every exchange; no secret is on disk.
func TestRecordingSessionPerConnection(t *testing.T) {
	e, rec, dir, _ := recordedEnv(t, nil)
	cl := e.client(nil, false)
	var alice []string
	for i := range 3 {
		alice = append(alice, getAs(t, cl, "/a/"+string(rune('0'+i)), tokenAlice))
	}
	bob := getAs(t, cl, "/b", tokenBob)
	cl2 := e.client(nil, true) // another connection, HTTP/2
	other := []string{getAs(t, cl2, "/c", tokenAlice), getAs(t, cl2, "/d", tokenAlice)}

	// Nothing is complete while the connections are open.
	if list, _ := rec.ListSessions(t.Context(), recording.ListOptions{}); len(list) != 3 {
		t.Fatalf("%d sessions open, want 3", len(list))
	}
	cl.Transport.(*http.Transport).CloseIdleConnections()
	cl2.Transport.(*http.Transport).CloseIdleConnections()
	sessions := waitSessions(t, rec, 3)

	want := [][]string{alice, {bob}, other}
	for i, s := range sessions {
		rids, reason := exchanges(t, rec, s.ID)
		var found bool
		for _, w := range want {
			if slices.Equal(rids, w) {
				found = true
			}
		}
		if !found || reason != endClientClosed {
			t.Fatalf("session %d: exchanges %v (%s), want one of %v", i, rids, reason, want)
		}
		if s.RequestID != rids[0] {
			t.Fatalf("session %d: started by %s, first exchange %s", i, s.RequestID, rids[0])
		}
		path := filepath.Join(dir, recording.Dir, filepath.FromSlash(s.File))
		var tr bytes.Buffer
		if err := recording.WriteTranscript(&tr, path); err != nil {
			t.Fatal(err)
		}
		har, err := recording.ExportHAR(path, "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(har.Log.Entries) != len(rids) {
			t.Fatalf("HAR has %d entries for %d exchanges", len(har.Log.Entries), len(rids))
		}
		for j, rid := range rids {
			mustContain(t, tr.String(), "── exchange "+rid)
			en := har.Log.Entries[j]
			if en.Sallyport.RequestID != rid || en.Response.Status != 200 || len(en.Sallyport.Decisions) != 1 || en.Sallyport.Decisions[0].Outcome != "allow" {
				t.Fatalf("HAR entry %d: %+v", j, en)
			}
		}
	}
	for _, s := range []string{tokenAlice, tokenBob, secretKey} {
		_ = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".rec") {
				b, _ := os.ReadFile(p)
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds a secret", p)
				}
			}
			return nil
		})
	}
}

// An idle keep-alive connection does not leave its session open: it is
// closed, signed and anchored after the idle time, and the connection's
// next exchange opens a new one.
func TestRecordingSessionIdle(t *testing.T) {
	e, rec, _, _ := recordedEnv(t, func(rs *recSessions) { rs.idle = 50 * time.Millisecond })
	cl := e.client(e.planner, true)
	first := getAs(t, cl, "/1", "")
	s := waitSessions(t, rec, 1)
	if rids, reason := exchanges(t, rec, s[0].ID); !slices.Equal(rids, []string{first}) || reason != endIdle {
		t.Fatalf("%v %s", rids, reason)
	}
	second := getAs(t, cl, "/2", "")
	cl.Transport.(*http.Transport).CloseIdleConnections()
	s = waitSessions(t, rec, 2)
	if rids, _ := exchanges(t, rec, s[1].ID); !slices.Equal(rids, []string{second}) {
		t.Fatalf("%v", rids)
	}
}

// A session ends at its bound of exchanges and when the runtime changes;
// the next exchange on the connection opens the next session.
func TestRecordingSessionBounds(t *testing.T) {
	e, rec, _, rt := recordedEnv(t, func(rs *recSessions) { rs.maxExchanges = 2 })
	cl := e.client(nil, false)
	var got []string
	for i := range 3 {
		got = append(got, getAs(t, cl, "/"+string(rune('0'+i)), tokenAlice))
	}
	e.apply(rt) // a new runtime: new routes
	got = append(got, getAs(t, cl, "/after", tokenAlice))
	cl.Transport.(*http.Transport).CloseIdleConnections()
	sessions := waitSessions(t, rec, 3)
	want := []struct {
		rids   []string
		reason string
	}{{got[:2], endMaxExchanges}, {got[2:3], endConfigChanged}, {got[3:], endClientClosed}}
	byFirst := map[string]string{}
	for _, s := range sessions {
		rids, reason := exchanges(t, rec, s.ID)
		byFirst[rids[0]] = strings.Join(rids, ",") + " " + reason
	}
	for _, w := range want {
		if got := byFirst[w.rids[0]]; got != strings.Join(w.rids, ",")+" "+w.reason {
			t.Fatalf("session of %s: %q, want %v %s", w.rids[0], got, w.rids, w.reason)
		}
	}
}
