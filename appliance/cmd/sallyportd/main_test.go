package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testVersion is stamped into the binary under test, so `version` and
// /v1/status can be checked for the exact value.
const testVersion = "v0.0.0-sallyportd-test"

// binPath is the sallyportd binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sallyportd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sallyportd")
	build := exec.Command("go", "build", "-o", binPath,
		"-ldflags", "-X github.com/sallyport/terraform-provider-sallyport/appliance/version.Version="+testVersion, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building sallyportd: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childEnv is the test's environment without any SALLYPORT_ variable (a
// developer's shell may export them), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SALLYPORT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBin runs sallyportd to completion and returns its output and exit code.
func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = childEnv()
	cmd.Dir = t.TempDir()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running sallyportd %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// logBuffer collects a process's output and wakes waiters on every write.
type logBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return n, err
}

// snapshot returns the content so far and a channel closed by the next
// write.
func (l *logBuffer) snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.changed
}

func (l *logBuffer) String() string { s, _ := l.snapshot(); return s }

// logLines decodes the JSON log lines of s; a line that is not JSON fails
// the test (the daemon promises structured logs).
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("a log line is not JSON: %q", line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// findLog returns the first log line whose msg is msg.
func findLog(t *testing.T, s, msg string) (map[string]any, bool) {
	t.Helper()
	for _, m := range logLines(t, s) {
		if m["msg"] == msg {
			return m, true
		}
	}
	return nil, false
}

// proc is a running sallyportd.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  *logBuffer
	stderr  *logBuffer
	done    chan struct{} // closed when the process has exited
	exitErr error         // set before done is closed
	dataDir string
	addr    string // the admin API's bound address, once listening
}

// startProc starts sallyportd with args and kills it, if still running,
// when the test ends.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: newLogBuffer(), stderr: newLogBuffer(), done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting sallyportd: %v", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitOutput waits until cond holds for the process's stdout and stderr,
// failing if it exits first or the deadline passes.
func (p *proc) waitOutput(what string, timeout time.Duration, cond func(stdout, stderr string) bool) {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		out, outCh := p.stdout.snapshot()
		errOut, errCh := p.stderr.snapshot()
		if cond(out, errOut) {
			return
		}
		select {
		case <-outCh:
		case <-errCh:
		case <-p.done:
			// Output may have landed just before exit.
			if cond(p.stdout.String(), p.stderr.String()) {
				return
			}
			p.t.Fatalf("sallyportd exited (%v) before %s\nstdout:\n%s\nstderr:\n%s", p.exitErr, what, p.stdout, p.stderr)
		case <-deadline.C:
			p.t.Fatalf("no %s within %s\nstdout:\n%s\nstderr:\n%s", what, timeout, p.stdout, p.stderr)
		}
	}
}

// waitListening waits for the "admin API listening" log line and returns
// the address it was bound to.
func (p *proc) waitListening() string {
	p.t.Helper()
	var addr string
	p.waitOutput("admin API listening", 20*time.Second, func(_, stderr string) bool {
		for _, line := range strings.Split(stderr, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "admin API listening" {
				addr, _ = m["addr"].(string)
				return addr != ""
			}
		}
		return false
	})
	p.addr = addr
	return addr
}

// waitExit waits for the process to exit and returns its exit code.
func (p *proc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("sallyportd did not exit within %s\nstderr:\n%s", timeout, p.stderr)
	}
	var ee *exec.ExitError
	switch {
	case p.exitErr == nil:
		return 0
	case errors.As(p.exitErr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	p.t.Fatalf("waiting for sallyportd: %v", p.exitErr)
	return -1
}

// stop sends SIGTERM and requires a clean exit (code 0).
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	if code := p.waitExit(20 * time.Second); code != 0 {
		p.t.Fatalf("sallyportd exited with %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr)
	}
}

// startServe runs `sallyportd serve` on dataDir with a loopback port chosen
// by the kernel and waits until the admin API listens.
func startServe(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--admin-addr", "127.0.0.1:0"}, extra...)
	p := startProc(t, childEnv(), args...)
	p.dataDir = dataDir
	p.waitListening()
	return p
}

// adminClient talks to the admin API over TLS verified with the admin CA.
type adminClient struct {
	endpoint string
	token    string
	http     *http.Client
}

func newAdminClient(t *testing.T, endpoint string, caPEM []byte, token string) *adminClient {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in the admin CA PEM:\n%s", caPEM)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &adminClient{endpoint: endpoint, token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// clientFor reads the token and CA a serve start left in its data dir.
func clientFor(t *testing.T, p *proc) *adminClient {
	t.Helper()
	return newAdminClient(t, "https://"+p.addr, readFile(t, filepath.Join(p.dataDir, "admin-ca.pem")), strings.TrimSpace(string(readFile(t, filepath.Join(p.dataDir, "admin-token")))))
}

// do sends a request with the client's token; body, if not nil, is sent
// as JSON.
func (c *adminClient) do(ctx context.Context, method, path string, body any, header ...string) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, data, resp.Header, nil
}

// must sends a request that must reach the server and answer want.
func (c *adminClient) must(t *testing.T, want int, method, path string, body any, header ...string) []byte {
	t.Helper()
	code, data, _, err := c.do(context.Background(), method, path, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, data)
	}
	return data
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// caFingerprint is the SHA-256 of the first certificate's DER in a PEM
// file, as lowercase hex.
func caFingerprint(t *testing.T, pemData []byte) string {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate:\n%s", pemData)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA {
		t.Errorf("the admin CA certificate is not a CA")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

func TestCommandHelp(t *testing.T) {
	serveFlags := []string{"-data-dir", "-admin-addr", "-admin-token-file", "-admin-token-hash", "-admin-cert-file", "-admin-key-file", "-admin-san", "-log-level"}
	for _, tc := range []struct {
		cmd   string
		flags []string
	}{
		{"serve", serveFlags},
		{"dev", append([]string{"-ephemeral"}, serveFlags...)},
		{"version", nil},
	} {
		for _, help := range []string{"--help", "-h"} {
			stdout, stderr, code := runBin(t, tc.cmd, help)
			out := stdout + stderr
			if code != 0 {
				t.Errorf("sallyportd %s %s exited %d, want 0:\n%s", tc.cmd, help, code, out)
			}
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, "sallyportd "+tc.cmd) {
				t.Errorf("sallyportd %s %s printed no usage line:\n%s", tc.cmd, help, out)
			}
			for _, f := range tc.flags {
				if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
					t.Errorf("sallyportd %s %s does not list %s:\n%s", tc.cmd, help, f, out)
				}
			}
		}
	}
	// The env variables the flags read are named in the help.
	stdout, stderr, _ := runBin(t, "serve", "--help")
	for _, env := range []string{"SALLYPORT_DATA_DIR", "SALLYPORT_ADMIN_ADDR", "SALLYPORT_ADMIN_TOKEN_HASH", "SALLYPORT_ADMIN_TOKEN"} {
		if !strings.Contains(stdout+stderr, env) {
			t.Errorf("serve --help does not mention %s", env)
		}
	}

	for _, args := range [][]string{{"--help"}, {"help"}} {
		stdout, _, code := runBin(t, args...)
		if code != 0 {
			t.Errorf("sallyportd %v exited %d, want 0", args, code)
		}
		for _, c := range []string{"serve", "dev", "version"} {
			if !strings.Contains(stdout, "  "+c+" ") {
				t.Errorf("sallyportd %v does not list the %s command:\n%s", args, c, stdout)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"serve", "--no-such-flag"}, "no-such-flag"},
		{[]string{"version", "extra"}, "unexpected arguments"},
		{[]string{"dev", "--admin-addr"}, "admin-addr"},
	} {
		stdout, stderr, code := runBin(t, tc.args...)
		if code != 2 {
			t.Errorf("sallyportd %v exited %d, want 2\nstdout: %s\nstderr: %s", tc.args, code, stdout, stderr)
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("sallyportd %v: stderr does not say %q:\n%s", tc.args, tc.want, stderr)
		}
	}
	// A runtime failure (not a usage mistake) exits 1 and says why.
	_, stderr, code := runBin(t, "serve", "--data-dir", t.TempDir(), "--admin-addr", "no-port")
	if code != 1 || !strings.Contains(stderr, "no-port") {
		t.Errorf("serve with a bad admin address exited %d, want 1 with the reason:\n%s", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	stdout, stderr, code := runBin(t, "version")
	if code != 0 {
		t.Fatalf("version exited %d: %s", code, stderr)
	}
	// "VERSION" or "VERSION (COMMIT)", one line.
	if fields := strings.Fields(stdout); len(fields) == 0 || fields[0] != testVersion || strings.Count(stdout, "\n") != 1 {
		t.Errorf("version printed %q, want %q (optionally followed by the commit) on one line", stdout, testVersion)
	}
}

func TestServeProvisionsDataDirAndRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // serve creates it
	p := startServe(t, dir)

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir has mode %04o, want 0700", fi.Mode().Perm())
	}
	tokenPath := filepath.Join(dir, "admin-token")
	wantMode(t, tokenPath, 0o600)
	wantMode(t, filepath.Join(dir, "secrets.key"), 0o600)
	wantMode(t, filepath.Join(dir, "admin-token.sha256"), 0o600)
	if key := readFile(t, filepath.Join(dir, "secrets.key")); len(key) != 32 {
		t.Errorf("secrets.key is %d bytes, want 32", len(key))
	}
	if _, err := os.Stat(filepath.Join(dir, "sallyport.db")); err != nil {
		t.Errorf("no store file: %v", err)
	}
	token := strings.TrimSpace(string(readFile(t, tokenPath)))
	if !regexp.MustCompile(`^spt_[A-Za-z0-9_-]{40,}$`).MatchString(token) {
		t.Errorf("the generated token %q does not look like a spt_ token", token)
	}
	sum := sha256.Sum256([]byte(token))
	hashFile := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "admin-token.sha256"))))
	if hashFile != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("admin-token.sha256 holds %q, want the SHA-256 of the token", hashFile)
	}
	caPEM := readFile(t, filepath.Join(dir, "admin-ca.pem"))
	fp := caFingerprint(t, caPEM)

	logs := p.stderr.String()
	if m, ok := findLog(t, logs, "generated an admin token"); !ok || m["file"] != tokenPath {
		t.Errorf("no log line saying where the generated token is (%v):\n%s", m, logs)
	}
	if m, ok := findLog(t, logs, "admin CA ready"); !ok || m["ca_sha256_fingerprint"] != fp {
		t.Errorf("the logged CA fingerprint %v is not the SHA-256 of admin-ca.pem (%s)", m["ca_sha256_fingerprint"], fp)
	}
	if strings.Contains(logs, token) {
		t.Errorf("the admin token appears in the logs")
	}

	c := newAdminClient(t, "https://"+p.addr, caPEM, token)
	var status struct {
		Version string `json:"version"`
		Store   struct {
			Backend string `json:"backend"`
		} `json:"store"`
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(c.must(t, 200, "GET", "/v1/status", nil), &status); err != nil {
		t.Fatal(err)
	}
	if status.Version != testVersion || status.Store.Backend != "bolt" {
		t.Errorf("/v1/status = %+v, want version %s on the bolt store", status, testVersion)
	}
	// No token, a wrong token, and an unknown path without a token are
	// all refused.
	anon := newAdminClient(t, "https://"+p.addr, caPEM, "")
	for _, path := range []string{"/v1/status", "/no/such/path", "/metrics"} {
		if code, _, _, err := anon.do(context.Background(), "GET", path, nil); err != nil || code != 401 {
			t.Errorf("GET %s without a token: %d %v, want 401", path, code, err)
		}
	}
	wrong := newAdminClient(t, "https://"+p.addr, caPEM, "spt_wrong")
	if code, _, _, err := wrong.do(context.Background(), "GET", "/v1/status", nil); err != nil || code != 401 {
		t.Errorf("GET /v1/status with a wrong token: %d %v, want 401", code, err)
	}
	// The admin API is TLS only, with a certificate that only the admin CA
	// vouches for.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + p.addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the admin certificate verified against the system roots")
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP was served: %s", resp.Status)
		}
	}
	created := c.must(t, 201, "POST", "/v1/tls-settings", map[string]any{"name": "survives-restart", "spec": map[string]any{"certificate": map[string]any{"source": "self_signed"}}})
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(created, &obj); err != nil || obj.ID == "" {
		t.Fatalf("create answered %s", created)
	}

	p.stop()
	if _, ok := findLog(t, p.stderr.String(), "shutting down"); !ok {
		t.Errorf("no shutdown log line after SIGTERM")
	}

	// A second start keeps the CA, the token and the state.
	p2 := startServe(t, dir)
	if got := caFingerprint(t, readFile(t, filepath.Join(dir, "admin-ca.pem"))); got != fp {
		t.Errorf("the admin CA changed on restart: %s, was %s", got, fp)
	}
	if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "admin-token.sha256")))); got != hashFile {
		t.Errorf("the token hash changed on restart")
	}
	if got := strings.TrimSpace(string(readFile(t, tokenPath))); got != token {
		t.Errorf("the token file changed on restart")
	}
	logs2 := p2.stderr.String()
	if _, ok := findLog(t, logs2, "generated an admin token"); ok {
		t.Errorf("a second start generated a new token")
	}
	if m, ok := findLog(t, logs2, "admin CA ready"); !ok || m["ca_sha256_fingerprint"] != fp {
		t.Errorf("the second start logged CA fingerprint %v, want %s", m["ca_sha256_fingerprint"], fp)
	}
	c2 := newAdminClient(t, "https://"+p2.addr, caPEM, token)
	c2.must(t, 200, "GET", "/v1/status", nil)
	c2.must(t, 200, "GET", "/v1/tls-settings/"+obj.ID, nil)
	p2.stop()
}

// TestServeRefusesBusyDataDir starts a second sallyportd on a data dir in
// use: it must fail, and must not have changed anything the first one
// relies on (the token hash, the admin certificate).
func TestServeRefusesBusyDataDir(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	files := []string{"admin-token", "admin-token.sha256", "admin-ca.pem", "admin-server.pem", "secrets.key"}
	before := map[string]string{}
	for _, f := range files {
		before[f] = string(readFile(t, filepath.Join(dir, f)))
	}

	otherHash := "sha256:" + strings.Repeat("ab", 32)
	_, stderr, code := runBin(t, "serve", "--data-dir", dir, "--admin-addr", "127.0.0.1:0",
		"--admin-token-hash", otherHash, "--admin-san", "other.example.com")
	if code != 1 || !strings.Contains(stderr, "in use") {
		t.Errorf("a second serve on a busy data dir exited %d, want 1 saying the dir is in use:\n%s", code, stderr)
	}
	for _, f := range files {
		if got := string(readFile(t, filepath.Join(dir, f))); got != before[f] {
			t.Errorf("the refused second start rewrote %s", f)
		}
	}
	clientFor(t, p).must(t, 200, "GET", "/v1/status", nil)
	p.stop()

	// Restarted, the appliance still accepts the original token.
	p2 := startServe(t, dir)
	clientFor(t, p2).must(t, 200, "GET", "/v1/status", nil)
	p2.stop()
}

// TestServeWithOperatorToken gives serve the token (as a hash or a file)
// the way cloud-init would: it is accepted and no plaintext is written.
func TestServeWithOperatorToken(t *testing.T) {
	token := "spt_operator-chosen-token-0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	hash := "sha256:" + hex.EncodeToString(sum[:])

	for _, tc := range []struct {
		name  string
		start func(t *testing.T, dir string) *proc
	}{
		{"flag", func(t *testing.T, dir string) *proc { return startServe(t, dir, "--admin-token-hash", hash) }},
		{"token file", func(t *testing.T, dir string) *proc {
			f := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return startServe(t, dir, "--admin-token-file", f)
		}},
		{"env, bare hex", func(t *testing.T, dir string) *proc {
			p := startProc(t, childEnv("SALLYPORT_ADMIN_TOKEN_HASH="+strings.ToUpper(hex.EncodeToString(sum[:])), "SALLYPORT_DATA_DIR="+dir, "SALLYPORT_ADMIN_ADDR=127.0.0.1:0"), "serve")
			p.dataDir = dir
			p.waitListening()
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tc.start(t, dir)
			if _, err := os.Stat(filepath.Join(dir, "admin-token")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("admin-token was written although the operator gave the token (stat: %v)", err)
			}
			if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "admin-token.sha256")))); got != hash {
				t.Errorf("admin-token.sha256 = %q, want %q", got, hash)
			}
			if _, ok := findLog(t, p.stderr.String(), "generated an admin token"); ok {
				t.Errorf("a token was generated although the operator gave one")
			}
			caPEM := readFile(t, filepath.Join(dir, "admin-ca.pem"))
			newAdminClient(t, "https://"+p.addr, caPEM, token).must(t, 200, "GET", "/v1/status", nil)
			code, _, _, err := newAdminClient(t, "https://"+p.addr, caPEM, token+"x").do(context.Background(), "GET", "/v1/status", nil)
			if err != nil || code != 401 {
				t.Errorf("another token: %d %v, want 401", code, err)
			}
			p.stop()
		})
	}
}

func TestDevEphemeral(t *testing.T) {
	tmp := t.TempDir()
	p := startProc(t, childEnv("TMPDIR="+tmp), "dev", "--ephemeral", "--admin-addr", "127.0.0.1:0")
	p.waitOutput("the dev banner", 20*time.Second, func(stdout, _ string) bool {
		return strings.Contains(stdout, "export SALLYPORT_CA_FINGERPRINT=") && strings.Contains(stdout, "/v1/status")
	})
	addr := p.waitListening()
	banner := p.stdout.String()

	field := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(`(?m)` + re).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("the banner has no line matching %s:\n%s", re, banner)
		}
		return m[1]
	}
	endpoint := field(`^\s*Admin endpoint:\s+(\S+)$`)
	token := field(`^\s*Admin token:\s+(\S+)$`)
	caPath := field(`^\s*Admin CA certificate:\s+(\S+)$`)
	fp := field(`^\s*CA SHA-256:\s+(\S+)$`)
	dataDir := field(`data dir (\S+?)\)`)

	// The export lines repeat the same values under the names the
	// Terraform provider reads (provider.EnvEndpoint and friends).
	if got := field(`^export SALLYPORT_ENDPOINT=(\S+)$`); got != endpoint {
		t.Errorf("export SALLYPORT_ENDPOINT=%s, want %s", got, endpoint)
	}
	if got := field(`^export SALLYPORT_TOKEN=(\S+)$`); got != token {
		t.Errorf("export SALLYPORT_TOKEN=%s, want %s", got, token)
	}
	if got := field(`^export SALLYPORT_CA_CERT_PEM="\$\(cat (\S+)\)"$`); got != caPath {
		t.Errorf("SALLYPORT_CA_CERT_PEM reads %s, want %s", got, caPath)
	}
	if got := field(`^export SALLYPORT_CA_FINGERPRINT=(\S+)$`); got != fp {
		t.Errorf("export SALLYPORT_CA_FINGERPRINT=%s, want %s", got, fp)
	}

	if endpoint != "https://"+addr {
		t.Errorf("the banner's endpoint %s is not the bound address %s", endpoint, addr)
	}
	if !strings.HasPrefix(dataDir, tmp+string(filepath.Separator)) || !strings.HasPrefix(caPath, dataDir+string(filepath.Separator)) {
		t.Errorf("ephemeral data dir %s (CA %s) is not a throw-away dir under %s", dataDir, caPath, tmp)
	}
	caPEM := readFile(t, caPath)
	if got := caFingerprint(t, caPEM); got != fp {
		t.Errorf("the printed fingerprint %s is not the SHA-256 of the CA's DER (%s)", fp, got)
	}
	c := newAdminClient(t, endpoint, caPEM, token)
	c.must(t, 200, "GET", "/v1/status", nil)
	c.must(t, 201, "POST", "/v1/tls-settings", map[string]any{"name": "dev", "spec": map[string]any{"certificate": map[string]any{"source": "self_signed"}}})
	if _, err := os.Stat(filepath.Join(p.cmd.Dir, ".sallyport-dev")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dev --ephemeral created ./.sallyport-dev (stat: %v)", err)
	}

	p.stop()
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the ephemeral data dir %s is still there after exit (stat: %v)", dataDir, err)
	}
}
