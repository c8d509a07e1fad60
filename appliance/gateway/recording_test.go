package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// recorder is a real Recorder over a real store in a temp data dir. It is
// created before the env, so that it closes after the gateway.
func newRecorder(t *testing.T, edit ...func(*recording.Options)) (*recording.Recorder, string) {
	t.Helper()
	dir := t.TempDir()
	be, err := boltstore.Open(filepath.Join(dir, "sallyport.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	opts := recording.Options{
		Dir: dir, Anchors: store.New(be, sealer), Logger: slog.New(slog.DiscardHandler),
		FreeSpace: func(string) (uint64, error) { return 1 << 40, nil },
	}
	for _, f := range edit {
		f(&opts)
	}
	rec, err := recording.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return rec, dir
}

// sessions closes the gateway (which waits for the sessions it is
// closing) and returns every recorded session, verified, with its
// records.
func sessions(t *testing.T, e *env, rec *recording.Recorder) map[string][]recording.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := rec.ListSessions(ctx, recording.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]recording.Record{}
	for _, s := range list {
		d, err := rec.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Verification == nil || !d.Verification.OK || d.Verification.Status != recording.StatusVerified {
			t.Fatalf("session %s does not verify: %+v", s.ID, d.Verification)
		}
		recs, _, err := rec.Records(ctx, s.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		out[s.ID] = recs
	}
	return out
}

func types(recs []recording.Record) string {
	var ts []string
	for _, r := range recs {
		ts = append(ts, r.Type)
	}
	return strings.Join(ts, ",")
}

func payload[T any](t *testing.T, r recording.Record) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Payload, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// An http exchange is recorded as it was forwarded and answered: its
// decisions, the request, and the response after masking; the injected
// credential is nowhere in the file. A denial is recorded too.
func TestRecordingHTTPExchanges(t *testing.T) {
	rec, dir := newRecorder(t)
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"password":"hunter2","echo":"`+r.Header.Get("X-Api-Key")+`"}`)
	})
	c := e.connection("c1", x.URL)
	c.Masker = masker(t, model.MaskingRule{JSONPath: "$.password"})
	c.Guardrails = guards(t, guardrails.ScopeConnection, model.Guardrails{DenyPathPatterns: []string{"^/admin"}})
	c.Recording = &model.RecordingSpec{Enabled: true}
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	cl := e.client(e.planner, true)

	resp, body := post(t, cl, "https://api.test/jobs?x=1", "application/json", `{"job":"build"}`)
	if resp.StatusCode != 200 || strings.Contains(body, "hunter2") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, cl, "https://api.test/admin"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied: %d", resp.StatusCode)
	}
	all := sessions(t, e, rec)
	// Both exchanges went over one client connection: one session, each
	// exchange's records carrying its request id.
	if len(all) != 1 {
		t.Fatalf("%d sessions", len(all))
	}
	var recs []recording.Record
	for _, r := range all {
		recs = r
	}
	if got := types(recs); got != "session_start,decision,decision,http_request,http_response,decision,decision,http_request,http_response,session_end" {
		t.Fatalf("session: %s", got)
	}
	byExchange := map[string][]recording.Record{}
	var order []string
	for _, r := range recs[1 : len(recs)-1] {
		if r.RequestID == "" {
			t.Fatalf("record %d (%s) has no request id", r.Index, r.Type)
		}
		if byExchange[r.RequestID] == nil {
			order = append(order, r.RequestID)
		}
		byExchange[r.RequestID] = append(byExchange[r.RequestID], r)
	}
	if len(order) != 2 || recs[0].RequestID != "" || recs[len(recs)-1].RequestID != "" {
		t.Fatalf("exchanges %v", order)
	}
	allowed, denied := byExchange[order[0]], byExchange[order[1]]
	if resp.Header.Get("X-Request-Id") != order[0] {
		t.Fatalf("request id %q, recorded %q", resp.Header.Get("X-Request-Id"), order[0])
	}
	if got := types(allowed); got != "decision,decision,http_request,http_response" {
		t.Fatalf("allowed exchange: %s", got)
	}
	start := payload[recording.SessionStart](t, recs[0])
	if start.Identity.ClientCertURI != plannerID || start.Identity.BindingID != c.Bindings[0].ID || start.ConnectionID != "c1" || start.RequestID != order[0] {
		t.Fatalf("session start %+v", start)
	}
	if d := payload[recording.Decision](t, allowed[1]); d.Kind != "guardrail" || d.Outcome != "allow" {
		t.Fatalf("guardrail decision %+v", d)
	}
	req := payload[recording.HTTPRequest](t, allowed[2])
	if req.Method != "POST" || req.Path != "/jobs" || req.Query != "x=1" || string(req.Body) != `{"job":"build"}` || req.Identity != nil {
		t.Fatalf("request %+v", req)
	}
	if !strings.Contains(strings.Join(req.RedactedHeaders, ","), "X-Api-Key") {
		t.Fatalf("the injected header was not redacted: %v", req.RedactedHeaders)
	}
	res := payload[recording.HTTPResponse](t, allowed[3])
	if res.Status != 200 || !strings.Contains(string(res.Body), `"password":"***"`) || strings.Contains(string(res.Body), "hunter2") {
		t.Fatalf("response %d %q", res.Status, res.Body)
	}
	if d := payload[recording.Decision](t, denied[1]); d.Kind != "guardrail" || d.Outcome != "deny" || d.Rule != "connection.guardrails.deny_path_patterns[0]" || d.Status != 403 {
		t.Fatalf("denial %+v (%s)", d, types(denied))
	}
	if p := payload[recording.HTTPRequest](t, denied[2]).Path; p != "/admin" {
		t.Fatalf("denied request %q", p)
	}
	// The injected credential never reaches the files, in any form the
	// executor echoed it.
	_ = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".rec") {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(secretKey)) || bytes.Contains(b, []byte("hunter2")) {
				t.Errorf("%s holds a secret", p)
			}
		}
		return nil
	})
}

// When the recording disk is full, the connection's policy decides:
// "refuse" answers 503 and forwards nothing, "continue" serves unrecorded.
func TestRecordingDiskFullPolicy(t *testing.T) {
	rec, _ := newRecorder(t, func(o *recording.Options) {
		o.FreeSpace = func(string) (uint64, error) { return 1 << 10, nil }
	})
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	x := e.executor(nil)
	refuse := e.connection("c1", x.URL)
	refuse.PathPrefix = "/refuse"
	refuse.Recording = &model.RecordingSpec{Enabled: true}
	cont := e.connection("c2", x.URL)
	cont.Bindings = []*identity.Binding{e.binding("c2", plannerID)}
	cont.Recording = &model.RecordingSpec{Enabled: true, OnDiskFull: model.OnDiskFullContinue}
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{refuse, cont}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	cl := e.client(e.planner, true)
	if resp, _ := get(t, cl, "https://api.test/refuse/x"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refuse: %d", resp.StatusCode)
	}
	if n := len(x.requests()); n != 0 {
		t.Fatalf("the executor got %d requests", n)
	}
	if resp, _ := get(t, cl, "https://api.test/continue"); resp.StatusCode != 200 {
		t.Fatalf("continue: %d", resp.StatusCode)
	}
	if n := counter(t, e, "g1", "c1", decisionReject, reasonRecording); n != 1 {
		t.Fatalf("recording_refused counter %v", n)
	}
}

// A WebSocket session is recorded as bytes each way after the upgrade.
func TestRecordingWebSocket(t *testing.T) {
	rec, _ := newRecorder(t)
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	x := e.executorProto(false, websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }).ServeHTTP)
	c := e.connection("ws", x.URL)
	c.Recording = &model.RecordingSpec{Enabled: true}
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	cfg, err := websocket.NewConfig("wss://api.test/ws", "https://api.test")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, e.rawTLS(apiHost, e.planner))
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Send(ws, "hello socket"); err != nil {
		t.Fatal(err)
	}
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "hello socket" {
		t.Fatalf("echo %q %v", got, err)
	}
	ws.Close()
	all := sessions(t, e, rec)
	if len(all) != 1 {
		t.Fatalf("%d sessions", len(all))
	}
	for _, recs := range all {
		var sent, received, status int
		for _, r := range recs {
			if r.Type == recording.TypeHTTPResponse {
				status = payload[recording.HTTPResponse](t, r).Status
			}
			if r.Type == recording.TypeTCPChunk {
				switch payload[recording.TCPChunk](t, r).Direction {
				case recording.ToExecutor:
					sent++
				case recording.ToPlanner:
					received++
				}
			}
		}
		if sent == 0 || received == 0 || status != http.StatusSwitchingProtocols {
			t.Fatalf("websocket session (status %d): %s", status, types(recs))
		}
	}
}

// A tcp session is recorded as byte chunks each way; gRPC as messages.
func TestRecordingTCPAndGRPC(t *testing.T) {
	rec, _ := newRecorder(t)
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	echo := e.tlsEcho()
	u, _ := url.Parse("tls://" + echo)
	tcp := &Connection{ID: "db", Name: "db", Protocol: "tcp", Hostname: dbHost, Upstream: u, UpstreamTLS: e.upTLS,
		Bindings: []*identity.Binding{e.binding("db", plannerID)}, Recording: &model.RecordingSpec{Enabled: true}}
	gc := e.connection("grpc", "https://"+e.grpcExecutor())
	gc.Protocol = "grpc"
	gc.Recording = &model.RecordingSpec{Enabled: true}
	g := e.gateway("g1", apiHost, dbHost)
	g.Connections = []*Connection{tcp, gc}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	conn, err := tls.Dial("tcp", e.addr(), e.clientTLS(dbHost, e.planner))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	_ = conn.CloseWrite()
	_, _ = io.Copy(io.Discard, conn)
	conn.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	stream, err := e.grpcClient(e.planner).FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte("hello grpc")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	for err == nil {
		_, err = stream.Recv()
	}

	var sawTCP, sawGRPC bool
	for _, recs := range sessions(t, e, rec) {
		start := payload[recording.SessionStart](t, recs[0])
		dirs := map[recording.Direction]string{}
		for _, r := range recs {
			switch r.Type {
			case recording.TypeTCPChunk:
				ch := payload[recording.TCPChunk](t, r)
				dirs[ch.Direction] += string(ch.Data)
			case recording.TypeGRPCMessage:
				m := payload[recording.GRPCMessage](t, r)
				dirs[m.Direction] += string(m.Message)
				if m.Method != "/grpc.testing.TestService/FullDuplexCall" {
					t.Fatalf("gRPC method %q", m.Method)
				}
			}
		}
		switch start.Protocol {
		case "tcp":
			sawTCP = dirs[recording.ToExecutor] == "ping" && dirs[recording.ToPlanner] == "ping"
		case "grpc":
			sawGRPC = strings.Contains(dirs[recording.ToExecutor], "hello grpc") && strings.Contains(dirs[recording.ToPlanner], "hello grpc")
		}
		if !sawTCP && start.Protocol == "tcp" || !sawGRPC && start.Protocol == "grpc" {
			t.Fatalf("%s session: %s %q", start.Protocol, types(recs), dirs)
		}
	}
	if !sawTCP || !sawGRPC {
		t.Fatalf("tcp %v grpc %v", sawTCP, sawGRPC)
	}
}
