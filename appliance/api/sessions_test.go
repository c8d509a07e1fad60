package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/api"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// sessAPI is the admin API with a real recorder, over real TLS on
// loopback.
type sessAPI struct {
	t     *testing.T
	srv   *httptest.Server
	token string
	rec   *recording.Recorder
}

func startSessAPI(t *testing.T, withRecorder bool) *sessAPI {
	t.Helper()
	dir := t.TempDir()
	be, err := boltstore.Open(filepath.Join(dir, "sallyport.db"))
	if err != nil {
		t.Fatal(err)
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
	st := store.New(be, sealer)
	token, err := admintoken.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := admintoken.NewSet(admintoken.Hash(token))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &sessAPI{t: t, token: token}
	cfg := api.Config{Store: st, Tokens: tokens, Logger: logger, Version: "test"}
	if withRecorder {
		h.rec, err = recording.New(recording.Options{Dir: dir, Anchors: st, Logger: logger, FreeSpace: func(string) (uint64, error) { return 1 << 40, nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.rec.Close() })
		cfg.Recordings = h.rec
	}
	h.srv = httptest.NewTLSServer(api.New(cfg))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *sessAPI) get(path string, withToken bool) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if withToken {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (h *sessAPI) getJSON(path string, want int, v any) {
	h.t.Helper()
	code, _, body := h.get(path, true)
	if code != want {
		h.t.Fatalf("GET %s: %d, want %d: %s", path, code, want, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			h.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
}

func (h *sessAPI) record(conn string) string {
	h.t.Helper()
	s, err := h.rec.StartSession(context.Background(), recording.SessionInfo{Protocol: "http", ConnectionID: conn,
		Identity: recording.Identity{Issuer: "https://idp.example.test", Subject: "alice"}}, model.RecordingSpec{Enabled: true})
	if err != nil {
		h.t.Fatal(err)
	}
	ex := s.Exchange("req-" + conn)
	for _, err := range []error{
		ex.HTTPRequest(recording.HTTPRequest{Method: "GET", Path: "/v1/things", Header: http.Header{"Authorization": {"Bearer planner"}}}),
		ex.HTTPResponse(recording.HTTPResponse{Status: 200, Body: []byte("ok"), BodySize: 2}),
		ex.End(),
		s.Close(),
	} {
		if err != nil {
			h.t.Fatal(err)
		}
	}
	return s.ID()
}

func TestSessionsAPI(t *testing.T) {
	h := startSessAPI(t, true)
	a := h.record("conn_a")
	b := h.record("conn_b")

	if code, _, _ := h.get("/v1/sessions", false); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	if code, _, _ := h.get("/v1/recording-public-key", false); code != http.StatusUnauthorized {
		t.Fatalf("public key without a token: %d", code)
	}

	var list struct {
		Items []recording.SessionSummary `json:"items"`
	}
	h.getJSON("/v1/sessions", 200, &list)
	if len(list.Items) != 2 || list.Items[0].ID != b || list.Items[1].ID != a || list.Items[0].Status != recording.SessionComplete || list.Items[0].Anchor == nil {
		t.Fatalf("list %+v", list.Items)
	}
	h.getJSON("/v1/sessions?connection_id=conn_a", 200, &list)
	if len(list.Items) != 1 || list.Items[0].ID != a || list.Items[0].Identity.Subject != "alice" {
		t.Fatalf("connection filter %+v", list.Items)
	}
	h.getJSON("/v1/sessions?limit=1", 200, &list)
	if len(list.Items) != 1 || list.Items[0].ID != b {
		t.Fatalf("limit %+v", list.Items)
	}
	h.getJSON("/v1/sessions?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), 200, &list)
	if len(list.Items) != 0 {
		t.Fatalf("since the future: %+v", list.Items)
	}
	for _, bad := range []string{"?since=yesterday", "?limit=0", "?limit=100000", "?subject=alice"} {
		var e api.ErrorBody
		h.getJSON("/v1/sessions"+bad, 400, &e)
		if len(e.Problems) != 1 || !strings.HasPrefix(e.Problems[0].Field, "query.") {
			t.Fatalf("%s: %+v", bad, e)
		}
	}

	var d recording.SessionDetail
	h.getJSON("/v1/sessions/"+a, 200, &d)
	if d.ID != a || d.Verification == nil || d.Verification.Status != recording.StatusVerified || !d.Verification.Anchored {
		t.Fatalf("detail %+v", d)
	}
	for _, missing := range []string{"ses_nope", "ses_2aiirewbd4cfumx2podx3qikzk", "..%2F..%2Fsallyport.db"} {
		h.getJSON("/v1/sessions/"+missing, 404, nil)
		h.getJSON("/v1/sessions/"+missing+"/records", 404, nil)
	}

	var page struct {
		Items []recording.Record `json:"items"`
		Next  *int64             `json:"next"`
	}
	h.getJSON("/v1/sessions/"+a+"/records?limit=2", 200, &page)
	if len(page.Items) != 2 || page.Next == nil || *page.Next != 2 || page.Items[0].Type != recording.TypeSessionStart {
		t.Fatalf("first page %+v", page)
	}
	// Records of an exchange name it, so that a client can group them.
	if page.Items[0].RequestID != "" || page.Items[1].RequestID != "req-conn_a" {
		t.Fatalf("request ids %q %q", page.Items[0].RequestID, page.Items[1].RequestID)
	}
	page.Next = nil
	h.getJSON("/v1/sessions/"+a+"/records?from=2", 200, &page)
	if len(page.Items) != 2 || page.Next != nil || page.Items[1].Type != recording.TypeSessionEnd || page.Items[0].Prev == "" {
		t.Fatalf("last page %+v", page)
	}
	if strings.Contains(string(page.Items[0].Payload), "planner") {
		t.Fatal("the planner's token is served")
	}
	h.getJSON("/v1/sessions/"+a+"/records?from=-1", 400, nil)

	code, hdr, body := h.get("/v1/recording-public-key", true)
	if code != 200 || hdr.Get("Content-Type") != "application/x-pem-file" {
		t.Fatalf("public key: %d %s", code, hdr.Get("Content-Type"))
	}
	pub, err := recording.ParsePublicKeyPEM(body)
	if err != nil || !pub.Equal(h.rec.PublicKey()) {
		t.Fatalf("public key: %v", err)
	}
}

func TestSessionsAPIAbsentWithoutRecorder(t *testing.T) {
	h := startSessAPI(t, false)
	for _, p := range []string{"/v1/sessions", "/v1/recording-public-key"} {
		if code, _, _ := h.get(p, true); code != http.StatusNotFound {
			t.Fatalf("%s without a recorder: %d", p, code)
		}
	}
}
