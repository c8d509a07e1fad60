package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretCert is a self-signed certificate and the parts of its private key
// that must never leak.
type secretCert struct {
	certPEM, keyPEM string
	keyDER          []byte
	scalar          []byte // the ECDSA private scalar
}

func newSecretCert(t *testing.T, cn string) secretCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return secretCert{
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		keyDER:  keyDER,
		scalar:  scalarOf(t, key),
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// leakPatterns lists, for a secret, byte strings whose presence anywhere
// means it leaked: the value itself and its common encodings.
type leakPatterns map[string][]byte // description → bytes

func (l leakPatterns) addValue(name, v string) {
	l[name] = []byte(v)
	l[name+" (base64)"] = []byte(base64.StdEncoding.EncodeToString([]byte(v)))
	l[name+" (base64url)"] = []byte(base64.RawURLEncoding.EncodeToString([]byte(v)))
	l[name+" (hex)"] = []byte(hex.EncodeToString([]byte(v)))
}

func (l leakPatterns) addBinary(name string, b []byte) {
	l[name+" (raw)"] = b
	l[name+" (hex)"] = []byte(hex.EncodeToString(b))
	l[name+" (base64)"] = []byte(base64.StdEncoding.EncodeToString(b))
	l[name+" (base64url)"] = []byte(base64.RawURLEncoding.EncodeToString(b))
}

func (l leakPatterns) addKey(name string, c secretCert) {
	l.addValue(name+" PEM", c.keyPEM)
	l.addBinary(name+" DER", c.keyDER)
	l.addBinary(name+" scalar", c.scalar)
	// Each line of the PEM body, so a JSON-escaped copy is caught too.
	for i, line := range strings.Split(c.keyPEM, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			l[fmt.Sprintf("%s PEM line %d", name, i)] = []byte(line)
		}
	}
}

// check reports every pattern found in data.
func (l leakPatterns) check(t *testing.T, where string, data []byte) {
	t.Helper()
	for name, p := range l {
		if len(p) > 0 && bytes.Contains(data, p) {
			t.Errorf("%s holds %s", where, name)
		}
	}
}

// TestSecretsNeverLeak writes every kind of secret through the real
// binary and then looks for them, and their encodings, in every API
// answer, the audit log, the process's logs and every byte of the data
// dir.
func TestSecretsNeverLeak(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir, "--log-level", "debug")
	c := clientFor(t, p)

	edge := newSecretCert(t, "gw.example.com")
	rotated := newSecretCert(t, "gw.example.com")
	stranger := newSecretCert(t, "stranger.example.com") // sent only in rejected writes
	hmacKey := randomBytes(t, 32)
	hmac := base64.RawURLEncoding.EncodeToString(hmacKey)
	headerToken := hex.EncodeToString(randomBytes(t, 24))
	header := "Bearer " + headerToken
	rotatedHeaderToken := hex.EncodeToString(randomBytes(t, 24))
	rejectedHeaderToken := hex.EncodeToString(randomBytes(t, 24))

	leaks := leakPatterns{}
	leaks.addKey("the static key", edge)
	leaks.addKey("the rotated key", rotated)
	leaks.addKey("a rejected key", stranger)
	leaks.addValue("the EAB HMAC", hmac)
	leaks.addBinary("the EAB HMAC key", hmacKey)
	leaks.addValue("the header value", header)
	leaks.addValue("the header token", headerToken)
	leaks.addValue("the rotated header token", rotatedHeaderToken)
	leaks.addValue("a rejected header token", rejectedHeaderToken)

	var answers [][]byte // every API answer, checked at the end
	call := func(want int, method, path string, body any, header ...string) []byte {
		t.Helper()
		data := c.must(t, want, method, path, body, header...)
		answers = append(answers, data)
		return data
	}
	id := func(data []byte) string {
		t.Helper()
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &o); err != nil || o.ID == "" {
			t.Fatalf("no id in %s", data)
		}
		return o.ID
	}

	staticID := id(call(201, "POST", "/v1/tls-settings", map[string]any{"name": "edge-static", "spec": map[string]any{
		"certificate": map[string]any{"source": "static", "static": map[string]any{
			"cert_pem": edge.certPEM, "key_pem": map[string]any{"value": edge.keyPEM},
		}},
	}}))
	acmeID := id(call(201, "POST", "/v1/tls-settings", map[string]any{"name": "edge-acme", "spec": map[string]any{
		"certificate": map[string]any{"source": "acme", "acme": map[string]any{
			"directory_url": "https://acme.example.com/directory",
			"email":         "ops@example.com",
			"eab_key_id":    "kid-1",
			"eab_hmac":      map[string]any{"value": hmac},
		}},
	}}))
	gwID := id(call(201, "POST", "/v1/gateways", map[string]any{"name": "gw", "spec": map[string]any{
		"listen_addr": "127.0.0.1:18443", "hostnames": []string{"gw.example.com"}, "tls_settings_id": staticID,
	}}))
	connSpec := func(headerValue any) map[string]any {
		return map[string]any{
			"gateway_id": gwID, "protocol": "http", "hostname": "gw.example.com", "path_prefix": "/api",
			"upstream_url": "https://executor.example.com", "upstream_tls_settings_id": acmeID,
			"inject_headers": map[string]any{"Authorization": headerValue},
		}
	}
	connID := id(call(201, "POST", "/v1/connections", map[string]any{"name": "api", "spec": connSpec(map[string]any{"value": header})}))

	// Reads say a secret is set and give its version, never its value.
	var conn struct {
		Generation int64 `json:"generation"`
		Spec       struct {
			InjectHeaders map[string]struct {
				Value   string `json:"value"`
				Set     bool   `json:"set"`
				Version string `json:"version"`
			} `json:"inject_headers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(call(200, "GET", "/v1/connections/"+connID, nil), &conn); err != nil {
		t.Fatal(err)
	}
	auth := conn.Spec.InjectHeaders["Authorization"]
	if !auth.Set || auth.Version == "" || auth.Value != "" {
		t.Errorf("GET connection: inject_headers.Authorization = %+v, want set with a version and no value", auth)
	}
	// Writing back what was read keeps the value (same version, same
	// generation); a new value changes the version.
	call(200, "PUT", "/v1/connections/"+connID, map[string]any{"name": "api", "spec": connSpec(map[string]any{"set": true, "version": auth.Version})})
	var again struct {
		Generation int64 `json:"generation"`
	}
	if err := json.Unmarshal(call(200, "GET", "/v1/connections/"+connID, nil), &again); err != nil || again.Generation != conn.Generation {
		t.Errorf("writing back the connection as read moved it to generation %d (was %d)", again.Generation, conn.Generation)
	}
	call(200, "PUT", "/v1/connections/"+connID, map[string]any{"name": "api", "spec": connSpec(map[string]any{"value": "Bearer " + rotatedHeaderToken})})
	call(200, "PUT", "/v1/tls-settings/"+staticID, map[string]any{"name": "edge-static", "spec": map[string]any{
		"certificate": map[string]any{"source": "static", "static": map[string]any{
			"cert_pem": rotated.certPEM, "key_pem": map[string]any{"value": rotated.keyPEM},
		}},
	}})

	// Rejected writes carrying secrets: a key that does not match its
	// certificate, a header value with a line break, a wrong type.
	call(400, "POST", "/v1/tls-settings", map[string]any{"name": "mismatch", "spec": map[string]any{
		"certificate": map[string]any{"source": "static", "static": map[string]any{
			"cert_pem": edge.certPEM, "key_pem": map[string]any{"value": stranger.keyPEM},
		}},
	}})
	call(400, "PUT", "/v1/connections/"+connID, map[string]any{"name": "api", "spec": connSpec(map[string]any{"value": "Bearer " + rejectedHeaderToken + "\r\nX-Evil: 1"})})
	call(400, "POST", "/v1/connections", map[string]any{"name": "typo", "spec": connSpec(map[string]any{"value": "Bearer " + rejectedHeaderToken, "extra": true})})
	call(409, "POST", "/v1/tls-settings", map[string]any{"name": "edge-static", "spec": map[string]any{
		"certificate": map[string]any{"source": "static", "static": map[string]any{
			"cert_pem": stranger.certPEM, "key_pem": map[string]any{"value": stranger.keyPEM},
		}},
	}})

	// Every read there is.
	for _, path := range []string{
		"/v1/tls-settings", "/v1/tls-settings/" + staticID, "/v1/tls-settings/" + acmeID, "/v1/tls-settings?name=edge-acme",
		"/v1/gateways", "/v1/gateways/" + gwID,
		"/v1/connections", "/v1/connections/" + connID, "/v1/connections?gateway_id=" + gwID,
		"/v1/identity-bindings",
		"/v1/audit", "/v1/audit?object_id=" + connID, "/v1/audit?kind=tls_settings",
		"/v1/status", "/metrics", "/healthz", "/readyz",
	} {
		call(200, "GET", path, nil)
	}
	// The audit log recorded the writes, with secrets as set+version.
	var audit struct {
		Items []struct {
			Action string `json:"action"`
			Spec   struct {
				InjectHeaders map[string]map[string]any `json:"inject_headers"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(call(200, "GET", "/v1/audit?object_id="+connID, nil), &audit); err != nil {
		t.Fatal(err)
	}
	if len(audit.Items) != 2 || audit.Items[0].Action != "create" || audit.Items[1].Action != "replace" {
		t.Errorf("audit of the connection = %+v, want its create and one replace (the write-back changed nothing)", audit.Items)
	}
	for _, e := range audit.Items {
		if h := e.Spec.InjectHeaders["Authorization"]; h["set"] != true || h["version"] == "" || h["value"] != nil {
			t.Errorf("the %s audit entry records the header as %v, want set and a version only", e.Action, h)
		}
	}

	// Deleting drops the secrets too; the delete answers are checked like
	// the rest.
	call(204, "DELETE", "/v1/connections/"+connID, nil)
	call(204, "DELETE", "/v1/gateways/"+gwID, nil)
	call(204, "DELETE", "/v1/tls-settings/"+acmeID, nil)
	call(200, "GET", "/v1/audit", nil)

	for i, a := range answers {
		leaks.check(t, fmt.Sprintf("API answer #%d", i), a)
	}
	// Stop cleanly so everything is flushed, then read the logs and every
	// file of the data dir, raw.
	p.stop()
	leaks.check(t, "the process's stderr", []byte(p.stderr.String()))
	leaks.check(t, "the process's stdout", []byte(p.stdout.String()))
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		leaks.check(t, "data dir file "+d.Name(), readFile(t, path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Errorf("the data dir holds only %d files; the walk missed something", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "sallyport.db")); err != nil {
		t.Errorf("no store file was checked: %v", err)
	}
}

// scalarOf returns the raw private scalar of key, a form the secret could
// leak in.
func scalarOf(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
