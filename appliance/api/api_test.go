package api_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/apitest"
)

// harness talks to a real appliance over real TLS, verified against its
// admin CA.
type harness struct {
	t     *testing.T
	app   *apitest.Appliance
	http  *http.Client
	token string
}

func start(t *testing.T) *harness {
	t.Helper()
	app := apitest.Start(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(app.CACertPEM)) {
		t.Fatal("admin CA PEM did not parse")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &harness{t: t, app: app, http: &http.Client{Transport: tr}, token: app.Token}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request; body may be a string (sent as is) or any value
// (JSON-encoded). headers are "Name: value" pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.app.Endpoint+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// must sends a request and fails the test unless the status is want.
func (h *harness) must(want int, method, path string, body any, headers ...string) map[string]any {
	h.t.Helper()
	r := h.do(method, path, body, headers...)
	if r.code != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.code, want, r.body)
	}
	if want == http.StatusNoContent {
		return nil
	}
	return r.json(h.t)
}

// fixture builds the chain every kind needs and returns the ids.
type fixture struct{ tls, gw, conn, bind string }

func (h *harness) fixture(suffix string) fixture {
	h.t.Helper()
	var f fixture
	f.tls = h.must(201, "POST", "/v1/tls-settings", map[string]any{"name": "edge" + suffix, "spec": map[string]any{"certificate": map[string]any{"source": "self_signed"}}})["id"].(string)
	f.gw = h.must(201, "POST", "/v1/gateways", map[string]any{"name": "gw" + suffix, "spec": map[string]any{
		"listen_addr": "127.0.0.1:9443", "hostnames": []string{"api.example.test"}, "tls_settings_id": f.tls,
		"oidc_providers": []any{map[string]any{"issuer_url": "https://idp.example.test", "audiences": []string{"sallyport"}}},
	}})["id"].(string)
	f.conn = h.must(201, "POST", "/v1/connections", map[string]any{"name": "exec" + suffix, "spec": map[string]any{
		"gateway_id": f.gw, "protocol": "http", "hostname": "api.example.test", "path_prefix": "/jobs",
		"upstream_url":   "https://executor.internal:8443",
		"inject_headers": map[string]any{"Authorization": map[string]any{"value": "Bearer executor-secret-" + suffix}},
	}})["id"].(string)
	f.bind = h.must(201, "POST", "/v1/identity-bindings", map[string]any{"name": "ci" + suffix, "spec": map[string]any{
		"connection_id": f.conn, "issuer": "https://idp.example.test", "subject": "repo:acme/*",
		"allowed_methods": []string{"POST", "GET"}, "expires_at": "2030-01-02T03:04:05+01:00",
	}})["id"].(string)
	return f
}

func TestCRUDEveryKind(t *testing.T) {
	h := start(t)
	f := h.fixture("")

	for _, c := range []struct{ coll, id, parent, parentID string }{
		{"tls-settings", f.tls, "", ""},
		{"gateways", f.gw, "", ""},
		{"connections", f.conn, "gateway_id", f.gw},
		{"identity-bindings", f.bind, "connection_id", f.conn},
	} {
		t.Run(c.coll, func(t *testing.T) {
			r := h.do("GET", "/v1/"+c.coll+"/"+c.id, nil)
			if r.code != 200 || r.header.Get("ETag") != `"1"` {
				t.Fatalf("GET: %d ETag %q: %s", r.code, r.header.Get("ETag"), r.body)
			}
			obj := r.json(t)
			if obj["generation"].(float64) != 1 || obj["status"] == nil || obj["created_at"] == "" {
				t.Errorf("object envelope incomplete: %s", r.body)
			}
			items := h.must(200, "GET", "/v1/"+c.coll, nil)["items"].([]any)
			if len(items) != 1 {
				t.Errorf("list: %d items, want 1", len(items))
			}
			items = h.must(200, "GET", "/v1/"+c.coll+"?name="+obj["name"].(string), nil)["items"].([]any)
			if len(items) != 1 {
				t.Errorf("list by name: %d items, want 1", len(items))
			}
			if c.parent != "" {
				if n := len(h.must(200, "GET", "/v1/"+c.coll+"?"+c.parent+"="+c.parentID, nil)["items"].([]any)); n != 1 {
					t.Errorf("list by %s: %d items, want 1", c.parent, n)
				}
				if n := len(h.must(200, "GET", "/v1/"+c.coll+"?"+c.parent+"=other", nil)["items"].([]any)); n != 0 {
					t.Errorf("list by another %s: %d items, want 0", c.parent, n)
				}
			}
			// Replace with what was read, renamed: generation 2.
			put := map[string]any{"name": obj["name"].(string) + "-renamed", "spec": obj["spec"]}
			got := h.must(200, "PUT", "/v1/"+c.coll+"/"+c.id, put, `If-Match: "1"`)
			if got["generation"].(float64) != 2 {
				t.Errorf("replace: generation %v, want 2", got["generation"])
			}
			// The same again changes nothing.
			got = h.must(200, "PUT", "/v1/"+c.coll+"/"+c.id, put, `If-Match: "2"`)
			if got["generation"].(float64) != 2 {
				t.Errorf("identical replace: generation %v, want 2", got["generation"])
			}
		})
	}

	// Normalization: methods upper-cased and sorted, expires_at in UTC.
	b := h.must(200, "GET", "/v1/identity-bindings/"+f.bind, nil)["spec"].(map[string]any)
	if fmt.Sprint(b["allowed_methods"]) != "[GET POST]" || b["expires_at"] != "2030-01-02T02:04:05Z" {
		t.Errorf("binding not normalized: %v", b)
	}

	// Delete in dependency order; the parent cannot go first.
	r := h.do("DELETE", "/v1/gateways/"+f.gw, nil)
	if r.code != 409 || !strings.Contains(string(r.body), f.conn) {
		t.Fatalf("deleting a referenced gateway: %d %s", r.code, r.body)
	}
	deps := r.json(t)["dependents"].([]any)
	if len(deps) != 1 || deps[0].(map[string]any)["id"] != f.conn {
		t.Errorf("dependents = %v, want the connection", deps)
	}
	for _, p := range []string{"identity-bindings/" + f.bind, "connections/" + f.conn, "gateways/" + f.gw, "tls-settings/" + f.tls} {
		h.must(204, "DELETE", "/v1/"+p, nil)
		h.must(404, "GET", "/v1/"+p, nil)
		h.must(404, "DELETE", "/v1/"+p, nil)
	}
}

func TestIfMatch(t *testing.T) {
	h := start(t)
	f := h.fixture("")
	obj := h.must(200, "GET", "/v1/tls-settings/"+f.tls, nil)
	put := map[string]any{"name": "edge", "spec": map[string]any{"certificate": map[string]any{"source": "self_signed"}, "min_version": "1.3"}}
	h.must(200, "PUT", "/v1/tls-settings/"+f.tls, put, `If-Match: "1"`)
	// A writer still holding generation 1 loses.
	put["spec"] = obj["spec"]
	for _, etag := range []string{`"1"`, `"7"`, `1`, `"x"`} {
		r := h.do("PUT", "/v1/tls-settings/"+f.tls, put, "If-Match: "+etag)
		if r.code != http.StatusPreconditionFailed {
			t.Errorf("If-Match %s: status %d, want 412: %s", etag, r.code, r.body)
		}
	}
	for _, etag := range []string{`"2"`, `1`, `"x"`} {
		if r := h.do("DELETE", "/v1/identity-bindings/"+f.bind, nil, "If-Match: "+etag); r.code != http.StatusPreconditionFailed {
			t.Errorf("DELETE If-Match %s: status %d, want 412", etag, r.code)
		}
	}
	got := h.must(200, "GET", "/v1/tls-settings/"+f.tls, nil)
	if got["spec"].(map[string]any)["min_version"] != "1.3" || got["generation"].(float64) != 2 {
		t.Errorf("a rejected write changed the object: %v", got)
	}
	h.must(200, "PUT", "/v1/tls-settings/"+f.tls, put, `If-Match: *`)
	h.must(204, "DELETE", "/v1/identity-bindings/"+f.bind, nil, `If-Match: "1"`)
}

func TestValidationNamesFields(t *testing.T) {
	h := start(t)
	f := h.fixture("")
	cases := []struct {
		name, path string
		body       any
		fields     []string
	}{
		{"unknown field", "/v1/tls-settings", `{"name":"x","spec":{"certificate":{"source":"none"},"color":"red"}}`, []string{"spec.color"}},
		{"unknown top-level field", "/v1/tls-settings", `{"name":"x","id":"tls_1","spec":{"certificate":{"source":"none"}}}`, []string{"id"}},
		{"wrong type", "/v1/gateways", `{"name":"x","spec":{"listen_addr":"127.0.0.1:1","hostnames":"a.test","tls_settings_id":"x"}}`, []string{"spec.hostnames"}},
		{"bad json", "/v1/gateways", `{"name":`, []string{"body"}},
		{"trailing data", "/v1/gateways", `{"name":"x","spec":{}} {}`, []string{""}},
		{"missing spec", "/v1/gateways", `{"name":"x"}`, []string{"spec"}},
		{"bad name", "/v1/tls-settings", `{"name":"no spaces","spec":{"certificate":{"source":"none"}}}`, []string{"name"}},
		{"tls enums", "/v1/tls-settings", `{"name":"x","spec":{"min_version":"1.0","client_auth":"maybe","certificate":{"source":"acme","acme":{"directory_url":"http://ca.test/dir","email":"nope"}}}}`,
			[]string{"spec.min_version", "spec.client_auth", "spec.certificate.acme.directory_url", "spec.certificate.acme.email"}},
		{"client auth needs CA", "/v1/tls-settings", `{"name":"x","spec":{"client_auth":"require","certificate":{"source":"none"}}}`, []string{"spec.peer_ca_pem"}},
		{"bad pem", "/v1/tls-settings", `{"name":"x","spec":{"peer_ca_pem":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n","certificate":{"source":"static","static":{"cert_pem":"junk","key_pem":{"value":"junk"}}}}}`,
			[]string{"spec.peer_ca_pem", "spec.certificate.static.cert_pem", "spec.certificate.static.key_pem"}},
		{"gateway", "/v1/gateways", `{"name":"x","spec":{"listen_addr":"1.2.3.4","hostnames":["ok.test","bad_host","10.0.0.1"],"tls_settings_id":"tls_missing","oidc_providers":[{"issuer_url":"ftp://idp","audiences":[],"allowed_algorithms":["none"]}]}}`,
			[]string{"spec.listen_addr", "spec.hostnames[1]", "spec.hostnames[2]", "spec.tls_settings_id", "spec.oidc_providers[0].issuer_url", "spec.oidc_providers[0].audiences", "spec.oidc_providers[0].allowed_algorithms[0]"}},
		{"connection", "/v1/connections", fmt.Sprintf(`{"name":"x","spec":{"gateway_id":%q,"protocol":"http","path_prefix":"/a/../b","upstream_url":"https://user:pw@exec.test","inject_headers":{"Host":{"value":"x"},"X-Key":{"value":"a\r\nb"},"X-Empty":{}},"timeouts":{"connect":"-1s","idle":"2h"}}}`, f.gw),
			[]string{"spec.path_prefix", "spec.upstream_url", "spec.inject_headers.Host", "spec.inject_headers.X-Key", "spec.inject_headers.X-Empty", "spec.timeouts.connect", "spec.timeouts.idle"}},
		{"tcp connection", "/v1/connections", fmt.Sprintf(`{"name":"x","spec":{"gateway_id":%q,"protocol":"tcp","path_prefix":"/x","upstream_url":"https://exec.test"}}`, f.gw),
			[]string{"spec.hostname", "spec.upstream_url"}},
		{"binding", "/v1/identity-bindings", fmt.Sprintf(`{"name":"x","spec":{"connection_id":%q,"issuer":"https://idp.example.test","allowed_methods":["FETCH"],"allowed_paths":["jobs/*","/a/[b"],"allowed_grpc_methods":["pkg.Svc/M"],"expires_at":"tomorrow","claims":{"groups":"[x","sub":"y"}}}`, f.conn),
			[]string{"spec.allowed_methods[0]", "spec.allowed_paths[0]", "spec.allowed_paths[1]", "spec.allowed_grpc_methods[0]", "spec.expires_at", "spec.claims.groups", "spec.claims.sub"}},
		{"binding both identities", "/v1/identity-bindings", fmt.Sprintf(`{"name":"x","spec":{"connection_id":%q,"issuer":"https://idp.example.test","subject":"a","client_cert_uri_san":"spiffe://x/*"}}`, f.conn),
			[]string{"spec.client_cert_uri_san"}},
		{"binding unknown connection", "/v1/identity-bindings", `{"name":"x","spec":{"connection_id":"conn_nope","client_cert_uri_san":"spiffe://x/y"}}`, []string{"spec.connection_id"}},
	}
	rev := h.must(200, "GET", "/v1/status", nil)["store"].(map[string]any)["revision"]
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", c.path, c.body)
			if r.code != 400 {
				t.Fatalf("status %d, want 400: %s", r.code, r.body)
			}
			body := r.json(t)
			if body["request_id"] == "" || !strings.HasPrefix(body["error"].(string), "invalid request") {
				t.Errorf("error body incomplete: %s", r.body)
			}
			got := map[string]bool{}
			for _, p := range body["problems"].([]any) {
				got[p.(map[string]any)["field"].(string)] = true
			}
			for _, f := range c.fields {
				if !got[f] {
					t.Errorf("no problem reported for %q; got %s", f, r.body)
				}
			}
		})
	}
	// Nothing was stored by any rejected request.
	if after := h.must(200, "GET", "/v1/status", nil)["store"].(map[string]any)["revision"]; after != rev {
		t.Errorf("store revision moved from %v to %v on rejected writes", rev, after)
	}
}

func TestConflicts(t *testing.T) {
	h := start(t)
	f := h.fixture("")
	h.fixture("-2") // a second gateway, connection and binding
	// Gateway names are global.
	r := h.do("POST", "/v1/tls-settings", map[string]any{"name": "edge", "spec": map[string]any{"certificate": map[string]any{"source": "none"}}})
	if r.code != 409 || !strings.Contains(string(r.body), f.tls) {
		t.Errorf("duplicate TLS settings name: %d %s", r.code, r.body)
	}
	// Connection names are per gateway: "exec" exists under gw, not under gw-2.
	gw2 := h.must(200, "GET", "/v1/gateways?name=gw-2", nil)["items"].([]any)[0].(map[string]any)["id"].(string)
	conn := func(gw string) map[string]any {
		return map[string]any{"name": "exec", "spec": map[string]any{"gateway_id": gw, "protocol": "grpc", "hostname": "api.example.test", "upstream_url": "https://executor.internal"}}
	}
	if r := h.do("POST", "/v1/connections", conn(f.gw)); r.code != 409 {
		t.Errorf("duplicate connection name under one gateway: %d %s", r.code, r.body)
	}
	h.must(201, "POST", "/v1/connections", conn(gw2))
	// Renaming onto a taken name is a conflict too.
	if r := h.do("PUT", "/v1/gateways/"+gw2, map[string]any{"name": "gw", "spec": h.must(200, "GET", "/v1/gateways/"+gw2, nil)["spec"]}); r.code != 409 {
		t.Errorf("rename onto a taken name: %d %s", r.code, r.body)
	}
}

func TestProtocolErrors(t *testing.T) {
	h := start(t)
	if r := h.do("POST", "/v1/gateways", `{}`, "Content-Type: text/plain"); r.code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d", r.code)
	}
	big := `{"name":"x","spec":{"peer_ca_pem":"` + strings.Repeat("A", 2<<20) + `"}}`
	if r := h.do("POST", "/v1/tls-settings", big); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d", r.code)
	}
	if r := h.do("GET", "/v1/nothing-here", nil); r.code != 404 || r.json(t)["request_id"] == "" {
		t.Errorf("unknown path: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/v1/gateways/a%2F..%2F..%2Fv1%2Fstatus", nil); r.code != 404 {
		t.Errorf("encoded traversal in an id: %d, want 404", r.code)
	}
	if r := h.do("PATCH", "/v1/gateways", nil); r.code != 405 {
		t.Errorf("PATCH on a collection: %d", r.code)
	}
	if r := h.do("GET", "/v1/connections?colour=red", nil); r.code != 400 || !strings.Contains(string(r.body), "query.colour") {
		t.Errorf("unknown filter: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/v1/audit?limit=0", nil); r.code != 400 {
		t.Errorf("audit limit=0: %d", r.code)
	}
	r := h.do("GET", "/v1/status", nil, "X-Request-Id: trace-42")
	if r.header.Get("X-Request-Id") != "trace-42" {
		t.Errorf("client request id not kept: %q", r.header.Get("X-Request-Id"))
	}
	r = h.do("GET", "/v1/status", nil, "X-Request-Id: bad id\twith tab")
	if id := r.header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("malformed client request id kept: %q", id)
	}
}

func TestEveryPathNeedsAToken(t *testing.T) {
	h := start(t)
	f := h.fixture("")
	paths := []struct{ method, path string }{
		{"GET", "/v1/status"}, {"GET", "/v1/audit"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"},
		{"GET", "/v1/gateways"}, {"GET", "/v1/gateways/" + f.gw}, {"DELETE", "/v1/gateways/" + f.gw},
		{"POST", "/v1/tls-settings"}, {"PUT", "/v1/connections/" + f.conn},
		{"GET", "/no/such/path"}, {"PATCH", "/v1/gateways"}, {"GET", "/"},
	}
	for _, tok := range []string{"", "spt_wrong", h.app.Token + "x"} {
		h.token = tok
		for _, p := range paths {
			r := h.do(p.method, p.path, nil)
			if r.code != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("token %q: %s %s: status %d, want 401", tok, p.method, p.path, r.code)
			}
		}
	}
	// Wrong scheme.
	h.token = ""
	if r := h.do("GET", "/v1/status", nil, "Authorization: Basic "+h.app.Token); r.code != 401 {
		t.Errorf("Basic auth accepted: %d", r.code)
	}
	// Nothing was deleted by the unauthenticated DELETE.
	h.token = h.app.Token
	h.must(200, "GET", "/v1/gateways/"+f.gw, nil)
	if m := h.do("GET", "/metrics", nil); !strings.Contains(string(m.body), "sallyport_admin_auth_failures_total 40") {
		t.Errorf("auth failures not counted: %s", grep(string(m.body), "auth_failures"))
	}
}

func TestCrossOriginRefused(t *testing.T) {
	h := start(t)
	for _, hdr := range []string{"Origin: https://evil.example", "Origin: null", "Sec-Fetch-Site: cross-site"} {
		r := h.do("POST", "/v1/tls-settings", map[string]any{"name": "x", "spec": map[string]any{"certificate": map[string]any{"source": "none"}}}, hdr)
		if r.code != 403 {
			t.Errorf("%s: status %d, want 403", hdr, r.code)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: CORS header sent", hdr)
		}
	}
	if n := len(h.must(200, "GET", "/v1/tls-settings", nil)["items"].([]any)); n != 0 {
		t.Errorf("a cross-origin write was stored")
	}
	h.must(200, "GET", "/v1/status", nil, "Origin: "+h.app.Endpoint)
}

func TestSecretsNeverRead(t *testing.T) {
	h := start(t)
	f := h.fixture("")
	const secret = "Bearer executor-secret-"
	conn := h.must(200, "GET", "/v1/connections/"+f.conn, nil)
	hdr := conn["spec"].(map[string]any)["inject_headers"].(map[string]any)["Authorization"].(map[string]any)
	if hdr["set"] != true || !strings.HasPrefix(hdr["version"].(string), "hmac-sha256:") || hdr["value"] != nil {
		t.Fatalf("secret read back as %v", hdr)
	}
	v1 := hdr["version"]
	// Writing back what was read keeps the secret.
	h.must(200, "PUT", "/v1/connections/"+f.conn, map[string]any{"name": "exec", "spec": conn["spec"]})
	got := h.must(200, "GET", "/v1/connections/"+f.conn, nil)
	if got["generation"].(float64) != 1 || got["spec"].(map[string]any)["inject_headers"].(map[string]any)["Authorization"].(map[string]any)["version"] != v1 {
		t.Errorf("writing back the read object changed it: %v", got)
	}
	// A new value is a new version and a new generation.
	spec := conn["spec"].(map[string]any)
	spec["inject_headers"] = map[string]any{"Authorization": map[string]any{"value": secret + "rotated"}}
	got = h.must(200, "PUT", "/v1/connections/"+f.conn, map[string]any{"name": "exec", "spec": spec})
	if v2 := got["spec"].(map[string]any)["inject_headers"].(map[string]any)["Authorization"].(map[string]any)["version"]; v2 == v1 || got["generation"].(float64) != 2 {
		t.Errorf("rotating the secret: version %v (was %v), generation %v", v2, v1, got["generation"])
	}
	for _, p := range []string{"/v1/connections", "/v1/connections/" + f.conn, "/v1/audit", "/v1/status", "/metrics"} {
		if body := h.do("GET", p, nil).body; bytes.Contains(body, []byte(secret)) {
			t.Errorf("GET %s reveals the secret", p)
		}
	}
	if strings.Contains(h.app.Logs(), secret) || strings.Contains(h.app.Logs(), h.app.Token) {
		t.Errorf("the log reveals a secret or the admin token")
	}
}

func TestAuditAndStatus(t *testing.T) {
	h := start(t)
	f := h.fixture("")
	h.must(204, "DELETE", "/v1/identity-bindings/"+f.bind, nil, "X-Request-Id: del-1")
	entries := h.must(200, "GET", "/v1/audit", nil)["items"].([]any)
	if len(entries) != 5 {
		t.Fatalf("%d audit entries, want 5 (4 creates, 1 delete)", len(entries))
	}
	last := entries[4].(map[string]any)
	if last["action"] != "delete" || last["object_id"] != f.bind || last["request_id"] != "del-1" ||
		!strings.HasPrefix(last["actor"].(string), "admin-token:") || last["generation_before"].(float64) != 1 || last["generation_after"].(float64) != 0 {
		t.Errorf("delete audit entry: %v", last)
	}
	if n := len(h.must(200, "GET", "/v1/audit?kind=connection", nil)["items"].([]any)); n != 1 {
		t.Errorf("audit by kind: %d entries, want 1", n)
	}
	if n := len(h.must(200, "GET", "/v1/audit?after=3&limit=1", nil)["items"].([]any)); n != 1 {
		t.Errorf("audit after 3 limit 1: %d entries", n)
	}
	st := h.must(200, "GET", "/v1/status", nil)
	counts := st["counts"].(map[string]any)
	if counts["gateway"].(float64) != 1 || counts["identity_binding"].(float64) != 0 || st["store"].(map[string]any)["backend"] != "bolt" || st["version"] == "" {
		t.Errorf("status: %v", st)
	}
	if r := h.do("GET", "/readyz", nil); r.code != 200 {
		t.Errorf("readyz: %d", r.code)
	}
	m := string(h.do("GET", "/metrics", nil).body)
	for _, want := range []string{`sallyport_objects{kind="gateway"} 1`, `sallyport_admin_requests_total{code="201",method="POST",route="/v1/gateways"} 1`, "go_goroutines"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
