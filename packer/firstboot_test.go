package packer_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// script is the first-boot script under test, as installed in the image at
// /usr/libexec/sallyport/firstboot.
const script = "scripts/sallyport-firstboot.sh"

// needTools skips the test when a tool the script needs is missing, except
// in CI (CI=true), where packer/install-tools.sh must have installed it.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq", "sha256sum", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing: run packer/install-tools.sh", tool)
			}
			t.Skipf("%s is missing (packer/install-tools.sh installs it)", tool)
		}
	}
}

// appliance is a temporary root file system the script runs against.
type appliance struct {
	t    *testing.T
	root string
}

func newAppliance(t *testing.T) *appliance {
	t.Helper()
	needTools(t)
	a := &appliance{t: t, root: t.TempDir()}
	for _, d := range []string{"etc/sallyport", "var/lib/sallyport"} {
		if err := os.MkdirAll(a.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(a.path("var/lib/sallyport"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The serial console stand-in: the script writes to it only if it exists.
	a.write("console", "", 0o600)
	return a
}

func (a *appliance) path(rel string) string { return filepath.Join(a.root, rel) }

func (a *appliance) write(rel, content string, mode os.FileMode) {
	a.t.Helper()
	if err := os.WriteFile(a.path(rel), []byte(content), mode); err != nil {
		a.t.Fatal(err)
	}
	// WriteFile honours the umask on create; make the mode exact.
	if err := os.Chmod(a.path(rel), mode); err != nil {
		a.t.Fatal(err)
	}
}

func (a *appliance) read(rel string) string {
	a.t.Helper()
	b, err := os.ReadFile(a.path(rel))
	if err != nil {
		a.t.Fatal(err)
	}
	return string(b)
}

func (a *appliance) mode(rel string) os.FileMode {
	a.t.Helper()
	fi, err := os.Stat(a.path(rel))
	if err != nil {
		a.t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// run runs the script with a subcommand and returns its combined output and
// error. The service user is the current user, and the console is a file.
func (a *appliance) run(args ...string) (string, error) {
	a.t.Helper()
	u, err := user.Current()
	if err != nil {
		a.t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"SALLYPORT_ROOT=" + a.root,
		"SALLYPORT_USER=" + u.Username,
		"SALLYPORT_CONSOLE=" + a.path("console"),
		"SALLYPORT_WAIT_SECONDS=5",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (a *appliance) mustRun(args ...string) string {
	a.t.Helper()
	out, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("firstboot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// snapshot maps every file and directory under the root (the console file
// aside) to its mode and SHA-256, to prove that a second run changes nothing.
func (a *appliance) snapshot() map[string]string {
	a.t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(a.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a.root, p)
		if rel == "console" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		entry := fi.Mode().String()
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			entry += " " + hex.EncodeToString(sum[:]) + " " + fi.ModTime().String()
		}
		snap[rel] = entry
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return snap
}

func assertSameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for p, v := range after {
		if before[p] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q -> %q", p, before[p], v))
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diffs = append(diffs, p+": removed")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("the second run changed files:\n%s", strings.Join(diffs, "\n"))
	}
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestConfigureFromBootstrapEnv(t *testing.T) {
	a := newAppliance(t)
	const token = "spt_firstboot-test-token"
	a.write("etc/sallyport/bootstrap.env", strings.Join([]string{
		"# written by cloud-init write_files",
		"",
		"SALLYPORT_ADMIN_TOKEN=" + token,
		"export SALLYPORT_ADMIN_ADDR='0.0.0.0:9443'",
		`SALLYPORT_ADMIN_SANS="admin.example.com, 203.0.113.7 admin.example.com"`,
		`SALLYPORT_STORE_DSN=postgres://sallyport:p"w\d@db.example.com:5432/sallyport?sslmode=verify-full`,
		"SALLYPORT_LOG_LEVEL=debug",
		"SALLYPORT_DATA_DIR=/elsewhere",
		"HOME=/ignored",
		"",
	}, "\n"), 0o644)

	out := a.mustRun("configure")

	want := strings.Join([]string{
		"# Written by sallyport-firstboot from " + a.path("etc/sallyport/bootstrap.env") + "; edits are kept until it runs again.",
		"SALLYPORT_DATA_DIR=/var/lib/sallyport",
		"SALLYPORT_ADMIN_ADDR=0.0.0.0:9443",
		"SALLYPORT_ADMIN_TOKEN_HASH=" + tokenHash(token),
		`SALLYPORT_SERVE_ARGS="--admin-san admin.example.com --admin-san 203.0.113.7"`,
		`SALLYPORT_STORE_DSN="postgres://sallyport:p\"w\\d@db.example.com:5432/sallyport?sslmode=verify-full"`,
		`SALLYPORT_LOG_LEVEL="debug"`,
		"",
	}, "\n")
	if got := a.read("etc/sallyport/sallyportd.env"); got != want {
		t.Errorf("sallyportd.env =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(a.read("etc/sallyport/sallyportd.env"), token) {
		t.Error("sallyportd.env holds the plaintext token")
	}
	for rel, mode := range map[string]os.FileMode{
		"etc/sallyport/sallyportd.env": 0o600,
		"etc/sallyport/bootstrap.env":  0o600, // tightened: it holds the token
		"var/lib/sallyport":            0o700,
	} {
		if got := a.mode(rel); got != mode {
			t.Errorf("mode of %s = %o, want %o", rel, got, mode)
		}
	}
	for _, msg := range []string{"ignoring HOME", "ignoring SALLYPORT_DATA_DIR", "sallyportd.env changed"} {
		if !strings.Contains(out, msg) {
			t.Errorf("output lacks %q:\n%s", msg, out)
		}
	}

	before := a.snapshot()
	out = a.mustRun("configure")
	if !strings.Contains(out, "sallyportd.env unchanged") {
		t.Errorf("second run output lacks \"unchanged\":\n%s", out)
	}
	assertSameSnapshot(t, before, a.snapshot())
}

func TestConfigureDefaultsWithoutInputs(t *testing.T) {
	a := newAppliance(t)
	if err := os.Remove(a.path("var/lib/sallyport")); err != nil {
		t.Fatal(err)
	}
	out := a.mustRun("configure")
	want := "# Written by sallyport-firstboot from " + a.path("etc/sallyport/bootstrap.env") +
		"; edits are kept until it runs again.\nSALLYPORT_DATA_DIR=/var/lib/sallyport\nSALLYPORT_ADMIN_ADDR=0.0.0.0:8443\n"
	if got := a.read("etc/sallyport/sallyportd.env"); got != want {
		t.Errorf("sallyportd.env =\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(out, "generated by sallyportd") {
		t.Errorf("output does not say that sallyportd generates the token:\n%s", out)
	}
	if got := a.mode("var/lib/sallyport"); got != 0o700 {
		t.Errorf("data dir mode = %o, want 700", got)
	}
	before := a.snapshot()
	a.mustRun("configure")
	assertSameSnapshot(t, before, a.snapshot())
}

func TestConfigureHashAndSpecificAdminAddress(t *testing.T) {
	a := newAppliance(t)
	hash := tokenHash("elsewhere")
	a.write("etc/sallyport/bootstrap.env",
		"SALLYPORT_ADMIN_TOKEN_HASH="+strings.ToUpper(strings.TrimPrefix(hash, "sha256:"))+"\r\n"+
			"SALLYPORT_ADMIN_ADDR=10.1.2.3:443\r\n", 0o600)
	a.mustRun("configure")
	env := a.read("etc/sallyport/sallyportd.env")
	for _, line := range []string{
		"SALLYPORT_ADMIN_TOKEN_HASH=" + hash + "\n",
		"SALLYPORT_ADMIN_ADDR=10.1.2.3:443\n",
		`SALLYPORT_SERVE_ARGS="--admin-san 10.1.2.3"` + "\n",
	} {
		if !strings.Contains(env, line) {
			t.Errorf("sallyportd.env lacks %q:\n%s", line, env)
		}
	}
}

func TestConfigureRejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct{ env, msg string }{
		"token and hash":  {"SALLYPORT_ADMIN_TOKEN=a\nSALLYPORT_ADMIN_TOKEN_HASH=" + tokenHash("a"), "not both"},
		"short hash":      {"SALLYPORT_ADMIN_TOKEN_HASH=sha256:abc", "64 hex digits"},
		"address no port": {"SALLYPORT_ADMIN_ADDR=0.0.0.0", "not HOST:PORT"},
		"address port":    {"SALLYPORT_ADMIN_ADDR=0.0.0.0:99999", "not HOST:PORT"},
		"bad SAN":         {"SALLYPORT_ADMIN_SANS=a;b", "not a host name"},
		"not KEY=VALUE":   {"SALLYPORT_ADMIN_TOKEN", "not a KEY=VALUE line"},
	} {
		t.Run(name, func(t *testing.T) {
			a := newAppliance(t)
			a.write("etc/sallyport/bootstrap.env", tc.env+"\n", 0o600)
			out, err := a.run("configure")
			if err == nil {
				t.Fatalf("configure accepted bad input:\n%s", out)
			}
			if !strings.Contains(out, tc.msg) {
				t.Errorf("output lacks %q:\n%s", tc.msg, out)
			}
			if _, err := os.Stat(a.path("etc/sallyport/sallyportd.env")); err == nil {
				t.Error("sallyportd.env was written despite the error")
			}
			if console := a.read("console"); !strings.Contains(console, "sallyport-firstboot: error: ") {
				t.Errorf("the error is not on the console: %q", console)
			}
		})
	}
}

func TestConfigureFetchesMetadataOnce(t *testing.T) {
	a := newAppliance(t)
	var mu sync.Mutex
	requests := 0
	// Instance metadata stand-in, on loopback.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/attributes/sallyport-bootstrap" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "SALLYPORT_ADMIN_TOKEN=from-metadata")
	}))
	defer srv.Close()
	a.write("etc/sallyport/firstboot.conf",
		"SALLYPORT_BOOTSTRAP_URL="+srv.URL+"/attributes/sallyport-bootstrap\n"+
			"SALLYPORT_BOOTSTRAP_URL_HEADER='Metadata-Flavor: Google'\n", 0o644)

	a.mustRun("configure")
	if got := a.read("etc/sallyport/bootstrap.env"); got != "SALLYPORT_ADMIN_TOKEN=from-metadata\n" {
		t.Errorf("bootstrap.env = %q", got)
	}
	if got := a.mode("etc/sallyport/bootstrap.env"); got != 0o600 {
		t.Errorf("bootstrap.env mode = %o, want 600", got)
	}
	if env := a.read("etc/sallyport/sallyportd.env"); !strings.Contains(env, tokenHash("from-metadata")) {
		t.Errorf("sallyportd.env lacks the metadata token's hash:\n%s", env)
	}

	before := a.snapshot()
	a.mustRun("configure")
	assertSameSnapshot(t, before, a.snapshot())
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Errorf("metadata fetched %d times, want once", requests)
	}
}

func TestConfigureMetadataFailure(t *testing.T) {
	a := newAppliance(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	a.write("etc/sallyport/firstboot.conf", "SALLYPORT_BOOTSTRAP_URL="+srv.URL+"/missing\n", 0o644)
	out, err := a.run("configure")
	if err == nil || !strings.Contains(out, "could not fetch bootstrap inputs") {
		t.Fatalf("configure with a failing metadata URL: %v\n%s", err, out)
	}
	if _, err := os.Stat(a.path("etc/sallyport/bootstrap.env")); err == nil {
		t.Error("bootstrap.env was written from a failed fetch")
	}
}

// fakeAPI is the admin API's object collections, in memory.
type fakeAPI struct {
	t     *testing.T
	token string

	mu      sync.Mutex
	objects map[string][]map[string]any // collection -> objects
	posts   []string                    // "collection name" in order
	next    int
	reject  string // a name whose POST gets a 400
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(http.StatusUnauthorized, map[string]any{"error": "unauthorized"})
		return
	}
	if r.URL.Path == "/v1/status" {
		writeJSON(http.StatusOK, map[string]any{"version": "test"})
		return
	}
	coll, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	switch coll {
	case "tls-settings", "gateways", "connections", "identity-bindings":
	default:
		ok = false
	}
	if !ok {
		writeJSON(http.StatusNotFound, map[string]any{"error": "not found"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		items := []map[string]any{}
		for _, o := range f.objects[coll] {
			spec := o["spec"].(map[string]any)
			if n := q.Get("name"); n != "" && o["name"] != n {
				continue
			}
			if g := q.Get("gateway_id"); g != "" && spec["gateway_id"] != g {
				continue
			}
			if c := q.Get("connection_id"); c != "" && spec["connection_id"] != c {
				continue
			}
			items = append(items, o)
		}
		writeJSON(http.StatusOK, map[string]any{"items": items})
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/json" {
			writeJSON(http.StatusUnsupportedMediaType, map[string]any{"error": "want JSON"})
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		name, _ := body["name"].(string)
		if name == f.reject {
			writeJSON(http.StatusBadRequest, map[string]any{"error": "invalid object",
				"problems": []map[string]string{{"field": "spec.listen_addr", "message": "required"}}})
			return
		}
		f.next++
		body["id"] = fmt.Sprintf("%s-%d", coll, f.next)
		f.objects[coll] = append(f.objects[coll], body)
		f.posts = append(f.posts, coll+" "+name)
		writeJSON(http.StatusCreated, body)
	default:
		writeJSON(http.StatusMethodNotAllowed, map[string]any{"error": "method"})
	}
}

// startAPI serves a fake admin API over TLS on loopback and installs its
// certificate as the appliance's admin CA, as sallyportd would.
func startAPI(t *testing.T, a *appliance, token string) (*fakeAPI, *httptest.Server) {
	t.Helper()
	api := &fakeAPI{t: t, token: token, objects: map[string][]map[string]any{}}
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	a.write("var/lib/sallyport/admin-ca.pem", string(certPEM), 0o644)
	return api, srv
}

const initialObjects = `{"objects": [
  {"kind": "tls-settings", "name": "edge", "spec": {"certificate": {"source": "self_signed"}}},
  {"kind": "gateways", "name": "edge", "spec": {
    "listen_addr": "0.0.0.0:443", "hostnames": ["gw.example.com"],
    "tls_settings_id": {"$ref": "tls-settings/edge"}}},
  {"kind": "connection", "name": "runner", "spec": {
    "gateway_id": {"$ref": "gateways/edge"}, "protocol": "http",
    "upstream_url": "https://runner.internal:8443",
    "inject_headers": {"Authorization": {"value": "Bearer upstream-secret"}}}},
  {"kind": "identity_binding", "name": "ci", "spec": {
    "connection_id": {"$ref": "connections/runner"},
    "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:acme/app:ref:refs/heads/main"}}
]}`

func TestFinishPublishesFingerprintAndAppliesObjects(t *testing.T) {
	a := newAppliance(t)
	const token = "spt_finish-token"
	api, srv := startAPI(t, a, token)
	addr := strings.TrimPrefix(srv.URL, "https://")
	a.write("etc/sallyport/bootstrap.env",
		"SALLYPORT_ADMIN_TOKEN="+token+"\nSALLYPORT_ADMIN_ADDR="+addr+"\n", 0o600)
	a.write("etc/sallyport/initial-objects.json", initialObjects, 0o644)

	a.mustRun("configure")
	a.mustRun("finish")

	sum := sha256.Sum256(srv.Certificate().Raw)
	fp := hex.EncodeToString(sum[:])
	if got := a.read("etc/sallyport/admin-ca.sha256"); got != fp+"\n" {
		t.Errorf("admin-ca.sha256 = %q, want %q", got, fp+"\n")
	}
	if got := a.mode("etc/sallyport/admin-ca.sha256"); got != 0o644 {
		t.Errorf("admin-ca.sha256 mode = %o, want 644", got)
	}
	console := a.read("console")
	for _, line := range []string{
		"sallyport-firstboot: admin API CA SHA-256 fingerprint: " + fp + "\n",
		"sallyport-firstboot: bootstrap complete\n",
	} {
		if !strings.Contains(console, line) {
			t.Errorf("console lacks %q:\n%s", line, console)
		}
	}
	if got := a.mode("etc/sallyport/initial-objects.json"); got != 0o600 {
		t.Errorf("initial-objects.json mode = %o, want 600 (it may hold secrets)", got)
	}
	if got := a.read("var/lib/sallyport/.bootstrapped"); got != "bootstrapped\n" {
		t.Errorf(".bootstrapped = %q", got)
	}

	api.mu.Lock()
	wantPosts := []string{"tls-settings edge", "gateways edge", "connections runner", "identity-bindings ci"}
	if fmt.Sprint(api.posts) != fmt.Sprint(wantPosts) {
		t.Errorf("created %v, want %v", api.posts, wantPosts)
	}
	refs := map[string]string{
		"gateways/tls_settings_id":        api.objects["tls-settings"][0]["id"].(string),
		"connections/gateway_id":          api.objects["gateways"][0]["id"].(string),
		"identity-bindings/connection_id": api.objects["connections"][0]["id"].(string),
	}
	for path, want := range refs {
		coll, field, _ := strings.Cut(path, "/")
		if got := api.objects[coll][0]["spec"].(map[string]any)[field]; got != want {
			t.Errorf("%s.spec.%s = %v, want the id %s", coll, field, got, want)
		}
	}
	secret := api.objects["connections"][0]["spec"].(map[string]any)["inject_headers"]
	if !strings.Contains(fmt.Sprint(secret), "Bearer upstream-secret") {
		t.Errorf("secret not passed through: %v", secret)
	}
	api.mu.Unlock()

	// Second boot: both steps again, nothing changes and nothing is created.
	before := a.snapshot()
	a.mustRun("configure")
	a.mustRun("finish")
	assertSameSnapshot(t, before, a.snapshot())

	// Without the marker the objects are looked up by name, not duplicated.
	if err := os.Remove(a.path("var/lib/sallyport/.bootstrapped")); err != nil {
		t.Fatal(err)
	}
	out := a.mustRun("finish")
	if !strings.Contains(out, "connections/runner exists") {
		t.Errorf("output does not report existing objects:\n%s", out)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.posts) != len(wantPosts) {
		t.Errorf("re-run created objects again: %v", api.posts)
	}
}

func TestFinishUsesGeneratedToken(t *testing.T) {
	a := newAppliance(t)
	const token = "spt_generated-by-sallyportd"
	api, srv := startAPI(t, a, token)
	a.write("etc/sallyport/bootstrap.env", "SALLYPORT_ADMIN_ADDR="+strings.TrimPrefix(srv.URL, "https://")+"\n", 0o600)
	// sallyportd writes the token it generates into the data dir.
	a.write("var/lib/sallyport/admin-token", token+"\n", 0o600)
	a.write("etc/sallyport/initial-objects.json",
		`[{"kind": "tls-settings", "name": "only", "spec": {"certificate": {"source": "self_signed"}}}]`, 0o600)

	a.mustRun("configure")
	a.mustRun("finish")
	if console := a.read("console"); !strings.Contains(console, "sudo cat /var/lib/sallyport/admin-token") {
		t.Errorf("console does not say where the generated token is:\n%s", console)
	}
	if strings.Contains(a.read("console"), token) {
		t.Error("the token was written to the console")
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.posts) != 1 {
		t.Errorf("created %v, want the one object", api.posts)
	}
}

func TestFinishFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		bootstrap, objects, reject, msg string
	}{
		"hash only": {
			bootstrap: "SALLYPORT_ADMIN_TOKEN_HASH=" + tokenHash("t"),
			objects:   `[]`,
			msg:       "need the plaintext admin token",
		},
		"wrong token": {
			bootstrap: "SALLYPORT_ADMIN_TOKEN=wrong",
			objects:   `[]`,
			msg:       "refused the admin token",
		},
		"unknown kind": {
			bootstrap: "SALLYPORT_ADMIN_TOKEN=t",
			objects:   `[{"kind": "listener", "name": "x", "spec": {}}]`,
			msg:       `unknown kind "listener"`,
		},
		"dangling reference": {
			bootstrap: "SALLYPORT_ADMIN_TOKEN=t",
			objects:   `[{"kind": "gateways", "name": "g", "spec": {"tls_settings_id": {"$ref": "tls-settings/nope"}}}]`,
			msg:       "bad spec or reference",
		},
		"not a list": {
			bootstrap: "SALLYPORT_ADMIN_TOKEN=t",
			objects:   `{"kind": "gateways"}`,
			msg:       "want a JSON array",
		},
		"rejected by the API": {
			bootstrap: "SALLYPORT_ADMIN_TOKEN=t",
			objects:   `[{"kind": "gateways", "name": "bad", "spec": {}}]`,
			reject:    "bad",
			msg:       "HTTP 400: invalid object spec.listen_addr: required",
		},
	} {
		t.Run(name, func(t *testing.T) {
			a := newAppliance(t)
			api, srv := startAPI(t, a, "t")
			api.reject = tc.reject
			a.write("etc/sallyport/bootstrap.env",
				tc.bootstrap+"\nSALLYPORT_ADMIN_ADDR="+strings.TrimPrefix(srv.URL, "https://")+"\n", 0o600)
			a.write("etc/sallyport/initial-objects.json", tc.objects, 0o600)
			a.mustRun("configure")
			out, err := a.run("finish")
			if err == nil {
				t.Fatalf("finish succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.msg) {
				t.Errorf("output lacks %q:\n%s", tc.msg, out)
			}
			if _, err := os.Stat(a.path("var/lib/sallyport/.bootstrapped")); err == nil {
				t.Error("marked bootstrapped despite the failure (the next boot would not retry)")
			}
			if console := a.read("console"); !strings.Contains(console, "sallyport-firstboot: error: ") ||
				strings.Contains(console, "bootstrap complete") {
				t.Errorf("the console does not show the failure: %q", console)
			}
		})
	}
}

func TestFinishWithHashOnly(t *testing.T) {
	a := newAppliance(t)
	// The token stays with the operator: the API's 401 shows it is up.
	_, srv := startAPI(t, a, "kept-elsewhere")
	a.write("etc/sallyport/bootstrap.env", "SALLYPORT_ADMIN_TOKEN_HASH="+tokenHash("kept-elsewhere")+
		"\nSALLYPORT_ADMIN_ADDR="+strings.TrimPrefix(srv.URL, "https://")+"\n", 0o600)
	a.mustRun("configure")
	a.mustRun("finish")
	if console := a.read("console"); !strings.Contains(console, "bootstrap complete") {
		t.Errorf("console = %q, want bootstrap complete", console)
	}
	if _, err := os.Stat(a.path("var/lib/sallyport/.bootstrapped")); err != nil {
		t.Error("not marked bootstrapped")
	}
}

func TestFinishWhenTheAPIDoesNotAnswer(t *testing.T) {
	a := newAppliance(t)
	_, srv := startAPI(t, a, "t")
	addr := strings.TrimPrefix(srv.URL, "https://")
	srv.Close() // sallyportd crashed after creating its CA
	a.write("etc/sallyport/bootstrap.env", "SALLYPORT_ADMIN_TOKEN=t\nSALLYPORT_ADMIN_ADDR="+addr+"\n", 0o600)
	a.mustRun("configure")
	out, err := a.run("finish")
	if err == nil || !strings.Contains(out, "did not answer") {
		t.Fatalf("finish without an admin API: %v\n%s", err, out)
	}
	console := a.read("console")
	if !strings.Contains(console, "admin API CA SHA-256 fingerprint: ") ||
		!strings.Contains(console, "sallyport-firstboot: error: the admin API") {
		t.Errorf("console does not show the fingerprint and the failure:\n%s", console)
	}
	if _, err := os.Stat(a.path("var/lib/sallyport/.bootstrapped")); err == nil {
		t.Error("marked bootstrapped although sallyportd is not serving")
	}
}

func TestFinishWithoutCA(t *testing.T) {
	a := newAppliance(t)
	a.mustRun("configure")
	out, err := a.run("finish")
	if err == nil || !strings.Contains(out, "admin-ca.pem did not appear") {
		t.Fatalf("finish without a CA: %v\n%s", err, out)
	}
}

func TestUsage(t *testing.T) {
	a := newAppliance(t)
	out, err := a.run("bogus")
	if err == nil || !bytes.Contains([]byte(out), []byte("usage:")) {
		t.Fatalf("bogus subcommand: %v\n%s", err, out)
	}
}
