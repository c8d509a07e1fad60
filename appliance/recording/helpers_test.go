package recording

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects logs from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is a recorder over a real bolt store in temp dirs.
type fixture struct {
	t     *testing.T
	dir   string
	st    *store.Store
	be    *boltstore.Backend
	rec   *Recorder
	clock *testClock
	reg   *prometheus.Registry
	logs  *syncBuffer
}

func openStore(t testing.TB, path string) (*store.Store, *boltstore.Backend) {
	t.Helper()
	be, err := boltstore.Open(path)
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { be.Close() })
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return store.New(be, sealer), be
}

func newFixture(t *testing.T, edit ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clock: newClock(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	f.st, f.be = openStore(t, filepath.Join(f.dir, "sallyport.db"))
	opts := Options{
		Dir: f.dir, Anchors: f.st, Clock: f.clock.Now, Registry: f.reg,
		Logger:    slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FreeSpace: func(string) (uint64, error) { return 1 << 40, nil },
	}
	for _, e := range edit {
		e(&opts)
	}
	rec, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { rec.Close() })
	f.rec = rec
	return f
}

var testPolicy = model.RecordingSpec{Enabled: true}

func testInfo() SessionInfo {
	return SessionInfo{
		Protocol:       "http",
		Identity:       Identity{Issuer: "https://idp.example.test", Subject: "repo:acme/app", BindingID: "ib_x", BindingName: "ci"},
		ConnectionID:   "conn_a",
		ConnectionName: "jobs",
		GatewayID:      "gw_a",
		GatewayName:    "edge",
		RemoteAddr:     "127.0.0.1:50000",
		RequestID:      "req-1",
	}
}

// httpSession records a typical exchange: session_start, decision,
// http_request, http_response, session_end.
func (f *fixture) httpSession(info SessionInfo) *Session {
	f.t.Helper()
	s, err := f.rec.StartSession(context.Background(), info, testPolicy)
	if err != nil || s == nil {
		f.t.Fatalf("StartSession: %v, %v", s, err)
	}
	f.clock.Advance(time.Millisecond)
	must(f.t, s.Decision(Decision{Kind: "binding", Outcome: "allow", Rule: "ib_x"}))
	must(f.t, s.HTTPRequest(HTTPRequest{
		Method: "POST", Scheme: "https", Host: "api.example.test", Path: "/v1/jobs", Query: "limit=5", Proto: "HTTP/2.0",
		Header: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer planner-token-xyz"}},
		Body:   []byte(`{"job":"build"}`), BodySize: 15,
	}))
	f.clock.Advance(12 * time.Millisecond)
	must(f.t, s.HTTPResponse(HTTPResponse{
		Status: 201, Proto: "HTTP/2.0", Header: http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"s=1"}},
		Body: []byte(`{"id":"j1"}`), BodySize: 11, Latency: 11 * time.Millisecond, Duration: 12 * time.Millisecond,
	}))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) path(id string) string {
	f.t.Helper()
	p, err := f.rec.Archive().Path(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) anchor(id string) *Anchor {
	f.t.Helper()
	a, err := f.st.GetAnchor(context.Background(), id)
	if err != nil {
		f.t.Fatalf("GetAnchor: %v", err)
	}
	return a
}

// splitFile returns Magic+header frame, and each record frame.
func splitFile(t *testing.T, path string) (head []byte, frames [][]byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fr := &frameReader{br: bufio.NewReader(bytes.NewReader(data[len(Magic):]))}
	h, _, err := fr.next()
	if err != nil {
		t.Fatal(err)
	}
	head = append([]byte(Magic), h...)
	for {
		f, _, err := fr.next()
		if errors.Is(err, io.EOF) {
			return head, frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
}

func joinFile(t *testing.T, path string, head []byte, frames [][]byte) {
	t.Helper()
	out := bytes.Clone(head)
	for _, f := range frames {
		out = append(out, f...)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func decodeFrame(t *testing.T, frame []byte) envelope {
	t.Helper()
	fr := &frameReader{br: bufio.NewReader(bytes.NewReader(frame))}
	_, body, err := fr.next()
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func encodeFrame(t *testing.T, env envelope) []byte {
	t.Helper()
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return appendFrame(nil, body)
}

func frameHash(f []byte) string { return hexHash(sha256.Sum256(f)) }

// counter reads a counter's value from the registry.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func sha256Sum(b []byte) string { return hexHash(sha256.Sum256(b)) }

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
