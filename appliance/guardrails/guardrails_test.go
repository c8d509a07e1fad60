package guardrails

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

func set(t *testing.T, scope string, g model.Guardrails) *Set {
	t.Helper()
	s, err := Compile(scope, &g)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

type req struct {
	method, target, ct, body string
	header                   map[string]string
	chunked, upgrade         bool
}

func (q req) build() Request {
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(cmpOr(q.method, "POST"), q.target, body)
	if q.ct != "" {
		r.Header.Set("Content-Type", q.ct)
	}
	for k, v := range q.header {
		r.Header.Add(k, v)
	}
	if q.chunked {
		r.ContentLength = -1
	}
	return Request{HTTP: r, Path: r.URL.EscapedPath(), Upgrade: q.upgrade}
}

// check evaluates and returns the denied rule ("" when allowed); on
// allow, the body the executor would get must be the one sent.
func check(t *testing.T, q req, sets ...*Set) string {
	t.Helper()
	r := q.build()
	d, err := Evaluate(r, sets...)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if d != nil {
		if !strings.Contains(d.Error(), d.Rule) {
			t.Fatalf("denial error %q", d.Error())
		}
		return d.Rule
	}
	got, err := io.ReadAll(r.HTTP.Body)
	if err != nil {
		var ble *BodyLimitError
		if errors.As(err, &ble) {
			return "stream:" + ble.Denial.Rule
		}
		t.Fatal(err)
	}
	if string(got) != q.body {
		t.Fatalf("forwarded body %q, sent %q", got, q.body)
	}
	return ""
}

func expect(t *testing.T, name string, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: denied by %q, want %q", name, got, want)
	}
}

func TestPathPatterns(t *testing.T) {
	s := set(t, ScopeConnection, model.Guardrails{DenyPathPatterns: []string{`^/admin(/|$)`, `\.git`, `;`}})
	for target, want := range map[string]string{
		"/api/items":        "",
		"/administrator":    "",
		"/admin":            "connection.guardrails.deny_path_patterns[0]",
		"/admin/users":      "connection.guardrails.deny_path_patterns[0]",
		"/repo/.git/config": "connection.guardrails.deny_path_patterns[1]",
		"/a%3Bb":            "connection.guardrails.deny_path_patterns[2]", // decoded form
	} {
		expect(t, target, check(t, req{method: "GET", target: target}, s), want)
	}
}

func TestQueryPatterns(t *testing.T) {
	s := set(t, ScopeBinding, model.Guardrails{DenyQueryPatterns: []string{`(?i)drop\s+table`, `debug=1`}})
	for target, want := range map[string]string{
		"/q?x=select":               "",
		"/q":                        "",
		"/q?x=drop%20table":         "binding.guardrails.deny_query_patterns[0]",
		"/q?x=DROP+TABLE":           "binding.guardrails.deny_query_patterns[0]",
		"/q?x=%44ROP%20TABLE":       "binding.guardrails.deny_query_patterns[0]",
		"/q?a=1&debug=1":            "binding.guardrails.deny_query_patterns[1]",
		"/q?a=1&debug%3D1":          "binding.guardrails.deny_query_patterns[1]",
		"/q?a=%zz&debug=0":          "",
		"/q?a=%zz&debug=1&b=%":      "binding.guardrails.deny_query_patterns[1]",
		"/q?x=drop%2520table&y=ok1": "", // decoded once, as the executor does
	} {
		expect(t, target, check(t, req{method: "GET", target: target}, s), want)
	}
}

func TestMaxRequestBody(t *testing.T) {
	s := set(t, ScopeConnection, model.Guardrails{MaxRequestBodyBytes: 10})
	expect(t, "small", check(t, req{target: "/", body: "0123456789"}, s), "")
	expect(t, "declared too large", check(t, req{target: "/", body: "0123456789x"}, s), "connection.guardrails.max_request_body_bytes")
	expect(t, "chunked small", check(t, req{target: "/", body: "0123456789", chunked: true}, s), "")
	// A body of unknown length is cut when it goes over.
	expect(t, "chunked too large", check(t, req{target: "/", body: "0123456789x", chunked: true}, s), "stream:connection.guardrails.max_request_body_bytes")
	// The smaller of two limits decides.
	b := set(t, ScopeBinding, model.Guardrails{MaxRequestBodyBytes: 5})
	expect(t, "binding limit", check(t, req{target: "/", body: "012345"}, s, b), "binding.guardrails.max_request_body_bytes")
	expect(t, "binding limit chunked", check(t, req{target: "/", body: "012345", chunked: true}, s, b), "stream:binding.guardrails.max_request_body_bytes")
	// With body inspection, the limit is checked on the buffered body.
	i := set(t, ScopeConnection, model.Guardrails{MaxRequestBodyBytes: 10, DenyBodyPatterns: []string{"zzz"}})
	expect(t, "inspected too large", check(t, req{target: "/", body: "0123456789x", chunked: true}, i), "connection.guardrails.max_request_body_bytes")
	expect(t, "inspected small", check(t, req{target: "/", body: "0123456789", chunked: true}, i), "")
}

func TestAllowedContentTypes(t *testing.T) {
	s := set(t, ScopeConnection, model.Guardrails{AllowedContentTypes: []string{"application/json", "text/*"}})
	for name, tc := range map[string]struct {
		q    req
		want string
	}{
		"json":              {req{target: "/", ct: "application/json; charset=utf-8", body: "{}"}, ""},
		"json upper case":   {req{target: "/", ct: "Application/JSON", body: "{}"}, ""},
		"text wildcard":     {req{target: "/", ct: "text/csv", body: "a,b"}, ""},
		"no body":           {req{method: "GET", target: "/"}, ""},
		"no body with type": {req{method: "GET", target: "/", ct: "image/png"}, ""},
		"xml":               {req{target: "/", ct: "application/xml", body: "<a/>"}, "connection.guardrails.allowed_content_types"},
		"missing":           {req{target: "/", body: "{}"}, "connection.guardrails.allowed_content_types"},
		"unparsable":        {req{target: "/", ct: "application/json; =", body: "{}"}, "connection.guardrails.allowed_content_types"},
		"two":               {req{target: "/", ct: "application/json", header: map[string]string{"Content-Type": "application/xml"}, body: "{}"}, "connection.guardrails.allowed_content_types"},
	} {
		expect(t, name, check(t, tc.q, s), tc.want)
	}
}

func TestBodyPatterns(t *testing.T) {
	s := set(t, ScopeConnection, model.Guardrails{DenyBodyPatterns: []string{`(?i)drop table`, `"role":"admin"`}})
	for name, tc := range map[string]struct {
		q    req
		want string
	}{
		"clean":            {req{target: "/", ct: "application/json", body: `{"q":"select 1"}`}, ""},
		"empty":            {req{target: "/", ct: "application/json"}, ""},
		"plain":            {req{target: "/", ct: "text/plain", body: "please DROP TABLE users"}, "connection.guardrails.deny_body_patterns[0]"},
		"json escaped":     {req{target: "/", ct: "application/json", body: `{"q":"\u0044ROP TABLE users"}`}, "connection.guardrails.deny_body_patterns[0]"},
		"json spaced":      {req{target: "/", ct: "application/json", body: `{ "role" : "admin" }`}, "connection.guardrails.deny_body_patterns[1]"},
		"json escaped key": {req{target: "/", ct: "application/json", body: `{"r\u006fle":"admin"}`}, "connection.guardrails.deny_body_patterns[1]"},
		"form encoded":     {req{target: "/", ct: "application/x-www-form-urlencoded", body: "q=drop+table"}, "connection.guardrails.deny_body_patterns[0]"},
		"percent encoded":  {req{target: "/", ct: "text/plain", body: "drop%20table"}, "connection.guardrails.deny_body_patterns[0]"},
		"chunked":          {req{target: "/", ct: "text/plain", body: "x drop table", chunked: true}, "connection.guardrails.deny_body_patterns[0]"},
		"gzip body":        {req{target: "/", ct: "text/plain", body: "\x1f\x8b...", header: map[string]string{"Content-Encoding": "gzip"}}, "connection.guardrails.deny_body_patterns"},
		"websocket":        {req{method: "GET", target: "/", upgrade: true}, "connection.guardrails.deny_body_patterns"},
	} {
		expect(t, name, check(t, tc.q, s), tc.want)
	}
	// A body larger than the inspection bound cannot be inspected.
	r := req{target: "/", ct: "text/plain", body: strings.Repeat("x", 2000)}.build()
	r.InspectBytes = 1000
	if d, err := Evaluate(r, s); err != nil || d == nil || d.Rule != "connection.guardrails.deny_body_patterns" {
		t.Fatalf("over the inspection bound: %v %v", d, err)
	}
	r = req{target: "/", ct: "text/plain", body: strings.Repeat("x", 2000), chunked: true}.build()
	r.InspectBytes = 1000
	if d, err := Evaluate(r, s); err != nil || d == nil || d.Rule != "connection.guardrails.deny_body_patterns" {
		t.Fatalf("chunked over the inspection bound: %v %v", d, err)
	}
}

func TestJSONRPCMethods(t *testing.T) {
	s := set(t, ScopeBinding, model.Guardrails{AllowedJSONRPCMethods: []string{"initialize", "tools/list", "tools/call", "notifications/*"}})
	const rule = "binding.guardrails.allowed_jsonrpc_methods"
	for name, tc := range map[string]struct {
		body string
		want string
	}{
		"allowed":               {`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, ""},
		"notification glob":     {`{"jsonrpc":"2.0","method":"notifications/initialized"}`, ""},
		"response":              {`{"jsonrpc":"2.0","id":1,"result":{}}`, ""},
		"batch allowed":         {`[{"jsonrpc":"2.0","id":1,"method":"initialize"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, ""},
		"not json-rpc value":    {`"hello"`, ""},
		"denied":                {`{"jsonrpc":"2.0","id":1,"method":"resources/read"}`, rule},
		"glob stays in segment": {`{"jsonrpc":"2.0","method":"notifications/a/b"}`, rule},
		"batch one denied":      {`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"prompts/get"}]`, rule},
		"no jsonrpc member":     {`{"id":1,"method":"resources/read"}`, rule},
		"case variant member":   {`{"jsonrpc":"2.0","id":1,"Method":"resources/read"}`, rule},
		"duplicate method":      {`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"resources/read"}`, rule},
		"duplicate any case":    {`{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/list"}`, rule},
		"escaped method":        {`{"jsonrpc":"2.0","id":1,"method":"resources\/read"}`, rule},
		"escaped key":           {`{"jsonrpc":"2.0","id":1,"m\u0065thod":"resources/read"}`, rule},
		"method not a string":   {`{"jsonrpc":"2.0","id":1,"method":["tools/list"]}`, rule},
		"not json":              {`{"jsonrpc":"2.0","method":"tools/list"`, rule},
		"trailing document":     {`{"method":"tools/list"} {"method":"resources/read"}`, rule},
	} {
		expect(t, name, check(t, req{target: "/mcp", ct: "application/json", body: tc.body}, s), tc.want)
	}
	// Requests without a body are not JSON-RPC calls.
	expect(t, "GET", check(t, req{method: "GET", target: "/mcp"}, s), "")
}

func TestMCPTools(t *testing.T) {
	s := set(t, ScopeBinding, model.Guardrails{AllowedMCPTools: []string{"search", "files_*"}})
	const rule = "binding.guardrails.allowed_mcp_tools"
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
	}
	for name, tc := range map[string]struct {
		body string
		want string
	}{
		"allowed":            {call(`{"name":"search","arguments":{"q":"x"}}`), ""},
		"allowed glob":       {call(`{"name":"files_read"}`), ""},
		"other methods":      {`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, ""},
		"denied":             {call(`{"name":"shell_exec"}`), rule},
		"denied in batch":    {`[` + call(`{"name":"search"}`) + `,` + call(`{"name":"shell_exec"}`) + `]`, rule},
		"method case":        {`{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"shell_exec"}}`, rule},
		"duplicate name":     {call(`{"name":"search","name":"shell_exec"}`), rule},
		"name case variant":  {call(`{"name":"search","NAME":"shell_exec"}`), rule},
		"duplicate params":   {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"params":{"name":"shell_exec"}}`, rule},
		"no params":          {`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, rule},
		"name not a string":  {call(`{"name":1}`), rule},
		"escaped name":       {call(`{"name":"shell\u005fexec"}`), rule},
		"escaped allowed":    {call(`{"name":"se\u0061rch"}`), ""},
		"not json":           {`tools/call shell_exec`, rule},
		"params not object":  {call(`["shell_exec"]`), rule},
		"glob across slash":  {call(`{"name":"files_a/b"}`), rule},
		"method not string":  {`{"jsonrpc":"2.0","id":1,"method":1}`, rule},
		"notification reply": {`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`, ""},
	} {
		expect(t, name, check(t, req{target: "/mcp", ct: "application/json", body: tc.body}, s), tc.want)
	}
}

// Both sets apply: the connection's first, then the binding's.
func TestConnectionAndBindingSets(t *testing.T) {
	c := set(t, ScopeConnection, model.Guardrails{DenyPathPatterns: []string{"^/private"}, AllowedJSONRPCMethods: []string{"tools/*"}})
	b := set(t, ScopeBinding, model.Guardrails{AllowedMCPTools: []string{"search"}})
	body := func(m, tool string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"` + m + `","params":{"name":"` + tool + `"}}`
	}
	expect(t, "allowed", check(t, req{target: "/mcp", ct: "application/json", body: body("tools/call", "search")}, c, nil, b), "")
	expect(t, "connection path", check(t, req{target: "/private", ct: "application/json", body: body("tools/call", "search")}, c, b), "connection.guardrails.deny_path_patterns[0]")
	expect(t, "connection method", check(t, req{target: "/mcp", ct: "application/json", body: body("prompts/get", "search")}, c, b), "connection.guardrails.allowed_jsonrpc_methods")
	expect(t, "binding tool", check(t, req{target: "/mcp", ct: "application/json", body: body("tools/call", "rm")}, c, b), "binding.guardrails.allowed_mcp_tools")
}

func TestCompile(t *testing.T) {
	if s, err := Compile(ScopeConnection, nil); s != nil || err != nil {
		t.Fatal("nil guardrails")
	}
	if s, err := Compile(ScopeConnection, &model.Guardrails{}); s != nil || err != nil {
		t.Fatal("empty guardrails")
	}
	for g, want := range map[*model.Guardrails]string{
		{DenyPathPatterns: []string{"ok", "("}}: "connection.guardrails.deny_path_patterns[1]",
		{DenyBodyPatterns: []string{""}}:        "connection.guardrails.deny_body_patterns[0]",
		{AllowedContentTypes: []string{"json"}}: "connection.guardrails.allowed_content_types[0]",
		{AllowedJSONRPCMethods: []string{"[a"}}: "connection.guardrails.allowed_jsonrpc_methods[0]",
		{AllowedMCPTools: []string{""}}:         "connection.guardrails.allowed_mcp_tools[0]",
		{MaxRequestBodyBytes: -1}:               "connection.guardrails.max_request_body_bytes",
	} {
		if _, err := Compile(ScopeConnection, g); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%+v: %v, want %s", g, err, want)
		}
	}
	s := set(t, ScopeConnection, model.Guardrails{AllowedMCPTools: []string{"x"}, MaxRequestBodyBytes: 1})
	if !s.InspectsBody() || !s.LimitsBody() || s.Scope() != ScopeConnection {
		t.Fatal("InspectsBody/LimitsBody/Scope")
	}
	var none *Set
	if none.InspectsBody() || none.LimitsBody() {
		t.Fatal("nil set")
	}
}

// A body that cannot be read is an error, not a denial.
func TestBodyReadErrors(t *testing.T) {
	s := set(t, ScopeConnection, model.Guardrails{DenyBodyPatterns: []string{"x"}})
	r := httptest.NewRequest("POST", "/", nil)
	r.ContentLength = -1
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("abc"), errReader{}))
	if d, err := Evaluate(Request{HTTP: r, Path: "/"}, s); d != nil || err == nil {
		t.Fatalf("%v %v", d, err)
	}
	r.Body = http.MaxBytesReader(nil, io.NopCloser(strings.NewReader("abcdef")), 3)
	_, err := Evaluate(Request{HTTP: r, Path: "/"}, s)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Fatalf("%v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }
