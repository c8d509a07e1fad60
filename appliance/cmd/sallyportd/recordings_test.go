package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// recordedDataDir is a data dir with a recorded HTTP session and a tcp
// session, its store closed (as after the appliance stops).
type recordedDataDir struct {
	dir       string
	httpID    string
	tcpID     string
	pubFile   string // a copy of the public key kept outside the data dir
	anchorsJS []byte // the anchors as a JSON list
}

func newRecordedDataDir(t *testing.T) *recordedDataDir {
	t.Helper()
	d := &recordedDataDir{dir: t.TempDir()}
	be, err := boltstore.Open(filepath.Join(d.dir, "sallyport.db"))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(be, sealer)
	rec, err := recording.New(recording.Options{Dir: d.dir, Anchors: st, FreeSpace: func(string) (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	on := model.RecordingSpec{Enabled: true}

	h, err := rec.StartSession(ctx, recording.SessionInfo{Protocol: "http", ConnectionID: "conn_a", ConnectionName: "jobs",
		Identity: recording.Identity{Issuer: "https://idp.example.test", Subject: "alice"}, Secrets: []string{"planner-secret-token"}}, on)
	mustOK(t, err)
	mustOK(t, h.HTTPRequest(recording.HTTPRequest{Method: "GET", Scheme: "https", Host: "api.example.test", Path: "/v1/things",
		Header: http.Header{"Authorization": {"Bearer planner-secret-token"}, "Accept": {"application/json"}}}))
	mustOK(t, h.HTTPResponse(recording.HTTPResponse{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"things":[1,2]}`), BodySize: 16}))
	mustOK(t, h.Close())
	d.httpID = h.ID()

	tc, err := rec.StartSession(ctx, recording.SessionInfo{Protocol: "tcp", ConnectionID: "conn_t"}, on)
	mustOK(t, err)
	mustOK(t, tc.TCPChunk(recording.ToExecutor, []byte("PING\n")))
	mustOK(t, tc.TCPChunk(recording.ToPlanner, []byte("PONG\n")))
	mustOK(t, tc.Close())
	d.tcpID = tc.ID()

	anchors, err := st.ListAnchors(ctx, "", 0)
	mustOK(t, err)
	d.anchorsJS, err = json.Marshal(anchors)
	mustOK(t, err)
	mustOK(t, rec.Close())
	mustOK(t, be.Close())

	pub, err := os.ReadFile(filepath.Join(d.dir, recording.PublicKeyFile))
	mustOK(t, err)
	d.pubFile = filepath.Join(t.TempDir(), "trusted.pub.pem")
	mustOK(t, os.WriteFile(d.pubFile, pub, 0o644))
	return d
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyDir copies a data dir, as an investigator would.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	mustOK(t, err)
	return dst
}

func TestRecordingsListShowExport(t *testing.T) {
	d := newRecordedDataDir(t)

	out, errOut, code := runBin(t, "recordings", "list", "--data-dir", d.dir, "--public-key", d.pubFile)
	if code != 0 {
		t.Fatalf("list exited %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], d.tcpID) || !strings.HasPrefix(lines[2], d.httpID) {
		t.Fatalf("list:\n%s", out)
	}
	for _, want := range []string{"jobs (conn_a)", "alice@https://idp.example.test", "verified", "tcp"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if out, _, _ := runBin(t, "recordings", "list", "--data-dir", d.dir, "--public-key", d.pubFile, "--connection", "conn_t"); strings.Contains(out, d.httpID) || !strings.Contains(out, d.tcpID) {
		t.Fatalf("list --connection conn_t:\n%s", out)
	}

	// Flags after the id work too.
	out, errOut, code = runBin(t, "recordings", "show", d.httpID, "--data-dir", d.dir, "--public-key", d.pubFile)
	if code != 0 {
		t.Fatalf("show exited %d: %s", code, errOut)
	}
	for _, want := range []string{"→ GET /v1/things", "Accept: application/json", "(not recorded: Authorization)", "← 200 OK", `| {"things":[1,2]}`, "verification: verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "planner-secret-token") {
		t.Fatal("show prints the planner's token")
	}

	out, errOut, code = runBin(t, "recordings", "export", "--data-dir", d.dir, "--format", "har", d.httpID)
	if code != 0 {
		t.Fatalf("export exited %d: %s", code, errOut)
	}
	var har recording.HAR
	if err := json.Unmarshal([]byte(out), &har); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, out)
	}
	if har.Log.Version != "1.2" || len(har.Log.Entries) != 1 || har.Log.Entries[0].Request.URL != "https://api.example.test/v1/things" || har.Log.Entries[0].Response.Status != 200 {
		t.Fatalf("HAR %s", out)
	}
	harFile := filepath.Join(t.TempDir(), "s.har")
	if _, errOut, code := runBin(t, "recordings", "export", "--data-dir", d.dir, "--output", harFile, d.httpID); code != 0 {
		t.Fatalf("export --output exited %d: %s", code, errOut)
	}
	if data, err := os.ReadFile(harFile); err != nil || !bytes.Equal(data, []byte(out)) {
		t.Fatalf("export --output: %v", err)
	}
	if _, errOut, code := runBin(t, "recordings", "export", "--data-dir", d.dir, d.tcpID); code != 1 || !strings.Contains(errOut, "no HTTP exchanges") {
		t.Fatalf("export of a tcp session exited %d: %s", code, errOut)
	}
	if _, errOut, code := runBin(t, "recordings", "show", "--data-dir", d.dir, "ses_nope"); code != 1 || !strings.Contains(errOut, "not a session id") {
		t.Fatalf("show of an unknown id exited %d: %s", code, errOut)
	}
}

func TestRecordingsVerifyOffline(t *testing.T) {
	d := newRecordedDataDir(t)
	if out, errOut, code := runBin(t, "recordings", "verify", "--data-dir", d.dir, "--all"); code != 0 || strings.Count(out, "  verified  ") != 2 || !strings.Contains(errOut, "pass --public-key") {
		t.Fatalf("verify --all exited %d:\n%s\n%s", code, out, errOut)
	}

	// A copy, checked with the key kept elsewhere; the copy's own key
	// file is removed so nothing of the copy is trusted.
	cp := copyDir(t, d.dir)
	mustOK(t, os.Remove(filepath.Join(cp, recording.PublicKeyFile)))
	mustOK(t, os.Remove(filepath.Join(cp, recording.KeyFile)))
	if out, errOut, code := runBin(t, "recordings", "verify", "--data-dir", cp, "--public-key", d.pubFile, d.httpID, d.tcpID); code != 0 {
		t.Fatalf("verify on a copy exited %d:\n%s\n%s", code, out, errOut)
	}

	// Tamper with the copy: verify fails, naming the first bad record.
	path, err := recording.OpenArchive(cp).Path(d.httpID)
	mustOK(t, err)
	data, err := os.ReadFile(path)
	mustOK(t, err)
	i := bytes.Index(data, []byte("/v1/things"))
	data[i+4] = 'T'
	mustOK(t, os.WriteFile(path, data, 0o600))
	out, errOut, code := runBin(t, "recordings", "verify", "--data-dir", cp, "--public-key", d.pubFile, d.httpID)
	if code != 1 || !strings.Contains(errOut, "record 1 (offset") || !strings.Contains(out, "TAMPERED") || !strings.Contains(errOut, d.httpID) {
		t.Fatalf("verify of a tampered copy exited %d:\n%s\n%s", code, out, errOut)
	}

	// A recording deleted from the copy: its anchor remains.
	tcpPath, err := recording.OpenArchive(cp).Path(d.tcpID)
	mustOK(t, err)
	mustOK(t, os.Remove(tcpPath))
	out, errOut, code = runBin(t, "recordings", "verify", "--data-dir", cp, "--public-key", d.pubFile, "--all")
	if code != 1 || !strings.Contains(out, d.tcpID+"  missing  the session is anchored but its file") || !strings.Contains(errOut, "2 of 2 sessions failed") {
		t.Fatalf("verify --all with a deleted recording exited %d:\n%s\n%s", code, out, errOut)
	}

	// A recording planted in the copy (signed, but never anchored).
	cp2 := copyDir(t, d.dir)
	planted := filepath.Join(t.TempDir(), "sallyport.db")
	mustOK(t, os.Rename(filepath.Join(cp2, "sallyport.db"), planted))
	emptyStore, err := boltstore.Open(filepath.Join(cp2, "sallyport.db"))
	mustOK(t, err)
	mustOK(t, emptyStore.Close())
	if out, _, code := runBin(t, "recordings", "verify", "--data-dir", cp2, "--public-key", d.pubFile, d.httpID); code != 1 || !strings.Contains(out, "unanchored") {
		t.Fatalf("verify of an unanchored recording exited %d:\n%s", code, out)
	}
}

func TestRecordingsVerifyWhileTheDaemonHoldsTheStore(t *testing.T) {
	d := newRecordedDataDir(t)
	// The store's lock held, as by a running sallyportd.
	be, err := boltstore.Open(filepath.Join(d.dir, "sallyport.db"))
	mustOK(t, err)
	defer be.Close()

	_, errOut, code := runBin(t, "recordings", "verify", "--data-dir", d.dir, "--public-key", d.pubFile, "--all")
	if code != 1 || !strings.Contains(errOut, "locked by a running sallyportd") || !strings.Contains(errOut, "--anchor-file") {
		t.Fatalf("verify with the store locked exited %d: %s", code, errOut)
	}

	// Anchors exported as a list, or as GET /v1/sessions answers them.
	list := filepath.Join(t.TempDir(), "anchors.json")
	mustOK(t, os.WriteFile(list, d.anchorsJS, 0o600))
	var anchors []recording.Anchor
	mustOK(t, json.Unmarshal(d.anchorsJS, &anchors))
	items := []map[string]any{}
	for _, a := range anchors {
		items = append(items, map[string]any{"id": a.SessionID, "anchor": a})
	}
	apiShape, _ := json.Marshal(map[string]any{"items": items})
	api := filepath.Join(t.TempDir(), "sessions.json")
	mustOK(t, os.WriteFile(api, apiShape, 0o600))
	single, _ := json.Marshal(anchors[0])
	one := filepath.Join(t.TempDir(), "anchor.json")
	mustOK(t, os.WriteFile(one, single, 0o600))
	for _, file := range []string{list, api} {
		if out, errOut, code := runBin(t, "recordings", "verify", "--data-dir", d.dir, "--public-key", d.pubFile, "--anchor-file", file, "--all"); code != 0 || strings.Count(out, "verified") != 2 {
			t.Fatalf("verify --anchor-file %s exited %d:\n%s\n%s", filepath.Base(file), code, out, errOut)
		}
	}
	if out, errOut, code := runBin(t, "recordings", "verify", "--data-dir", d.dir, "--public-key", d.pubFile, "--anchor-file", one, anchors[0].SessionID); code != 0 {
		t.Fatalf("verify with a single anchor exited %d:\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runBin(t, "recordings", "verify", "--data-dir", d.dir, "--public-key", d.pubFile, "--no-anchors", "--all"); code != 0 || strings.Count(out, "signed") != 2 || !strings.Contains(errOut, "without anchors") {
		t.Fatalf("verify --no-anchors exited %d:\n%s\n%s", code, out, errOut)
	}
}

func TestRecordingsUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"recordings"},
		{"recordings", "frobnicate"},
		{"recordings", "verify", "--data-dir", dir},
		{"recordings", "verify", "--data-dir", dir, "--all", "ses_x"},
		{"recordings", "show", "--data-dir", dir},
		{"recordings", "list", "--data-dir", dir, "extra"},
	} {
		if _, stderr, code := runBin(t, args...); code != 2 {
			t.Errorf("sallyportd %v exited %d, want 2: %s", args, code, stderr)
		}
	}
	if _, stderr, code := runBin(t, "recordings", "list"); code != 1 || !strings.Contains(stderr, "--data-dir is required") {
		t.Errorf("list without a data dir exited %d: %s", code, stderr)
	}
	for _, c := range []string{"list", "show", "verify", "export"} {
		if _, stderr, code := runBin(t, "recordings", c, "--help"); code != 0 || !strings.Contains(stderr, "Usage:\n  sallyportd recordings "+c) || !strings.Contains(stderr, "-data-dir") {
			t.Errorf("recordings %s --help exited %d:\n%s", c, code, stderr)
		}
	}
	if out, _, code := runBin(t, "--help"); code != 0 || !strings.Contains(out, "  recordings ") {
		t.Errorf("the usage does not list recordings:\n%s", out)
	}
}
