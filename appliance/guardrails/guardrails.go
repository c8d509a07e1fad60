// Package guardrails stops dangerous requests before they reach an
// executor. A connection's and a binding's model.Guardrails compile into
// a [Set] each; [Evaluate] runs them, in order, against one request.
//
// # Rules and their ids
//
// A denial names its rule by its field path, prefixed by the scope:
// "connection.guardrails.deny_path_patterns[0]",
// "binding.guardrails.allowed_mcp_tools". The rules:
//
//   - deny_path_patterns (RE2) run on the normalized path the gateway
//     routes and forwards, and on its percent-decoded form.
//   - deny_query_patterns run on the raw query and on its decoded form
//     ('+' as space), so that escapes do not hide a pattern.
//   - max_request_body_bytes: a declared Content-Length over it is denied
//     before anything is read; a body of unknown length is denied when it
//     goes over (the exchange with the executor is cut at that point).
//   - allowed_content_types: a request with a body must have exactly one
//     Content-Type whose media type is listed ("type/*" and "*/*" as
//     wildcards); one without a body is not checked.
//   - deny_body_patterns, allowed_jsonrpc_methods and allowed_mcp_tools
//     read the body: it is buffered whole, up to max_request_body_bytes
//     or Request.InspectBytes, whichever is smaller, then forwarded from
//     the buffer. A larger body cannot be inspected and is denied (by
//     max_request_body_bytes when that is the smaller bound), as is a
//     body with a Content-Encoding and a protocol upgrade (WebSocket
//     messages are not inspected). Body patterns run on the raw body, on
//     its canonical JSON form (escapes decoded, whitespace dropped) when
//     it is JSON, and on its percent-decoded form.
//   - allowed_jsonrpc_methods (globs, as in identity.Glob: '*' stays
//     within a '/'-separated segment, "**" crosses them): every JSON-RPC
//     call in the body, alone or in a batch, must name a listed method.
//     A message is a call when it has a "method" member, whatever its
//     "jsonrpc" says; member names are compared case-insensitively, as
//     Go's encoding/json does, and a message with two of them is denied,
//     as is a non-string method and a body that is not JSON. Messages
//     without a method (responses) pass.
//   - allowed_mcp_tools: every "tools/call" (any case) must have exactly
//     one params object with exactly one string "name", and the name must
//     be listed.
package guardrails

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Scopes: the first part of a rule id.
const (
	ScopeConnection = "connection"
	ScopeBinding    = "binding"
)

// DefaultInspectBytes is the default Request.InspectBytes.
const DefaultInspectBytes = 1 << 20

// Field names, the rule id's last part.
const (
	fieldPath         = "deny_path_patterns"
	fieldQuery        = "deny_query_patterns"
	fieldBody         = "deny_body_patterns"
	fieldMaxBody      = "max_request_body_bytes"
	fieldContentTypes = "allowed_content_types"
	fieldMethods      = "allowed_jsonrpc_methods"
	fieldTools        = "allowed_mcp_tools"
	mcpToolsCall      = "tools/call"
	maxJSONDepth      = 256
)

// Set is one compiled Guardrails block. It is immutable.
type Set struct {
	scope                    string
	path, query, body        []*regexp.Regexp
	maxBody                  int64
	contentTypes             []string
	contentTypesSet          bool
	methods, tools           []*identity.Glob
	methodsSet, toolsSet     bool
	inspectRule, maxBodyRule string
}

// Compile compiles g for a scope (ScopeConnection or ScopeBinding). A nil
// or empty g compiles to a nil Set, which allows everything.
func Compile(scope string, g *model.Guardrails) (*Set, error) {
	if g == nil {
		return nil, nil
	}
	s := &Set{scope: scope, maxBody: g.MaxRequestBodyBytes}
	var err error
	if s.path, err = compileAll(s, fieldPath, g.DenyPathPatterns); err != nil {
		return nil, err
	}
	if s.query, err = compileAll(s, fieldQuery, g.DenyQueryPatterns); err != nil {
		return nil, err
	}
	if s.body, err = compileAll(s, fieldBody, g.DenyBodyPatterns); err != nil {
		return nil, err
	}
	if s.maxBody < 0 {
		return nil, fmt.Errorf("%s: must not be negative", s.rule(fieldMaxBody, -1))
	}
	for i, ct := range g.AllowedContentTypes {
		mt := strings.ToLower(strings.TrimSpace(ct))
		if typ, sub, ok := strings.Cut(mt, "/"); !ok || typ == "" || sub == "" || strings.ContainsAny(mt, " ;,") {
			return nil, fmt.Errorf("%s: %q is not a media type", s.rule(fieldContentTypes, i), ct)
		}
		s.contentTypes = append(s.contentTypes, mt)
	}
	s.contentTypesSet = len(s.contentTypes) > 0
	if s.methods, err = compileGlobs(s, fieldMethods, g.AllowedJSONRPCMethods); err != nil {
		return nil, err
	}
	if s.tools, err = compileGlobs(s, fieldTools, g.AllowedMCPTools); err != nil {
		return nil, err
	}
	s.methodsSet, s.toolsSet = len(s.methods) > 0, len(s.tools) > 0
	switch {
	case len(s.body) > 0:
		s.inspectRule = s.rule(fieldBody, -1)
	case s.methodsSet:
		s.inspectRule = s.rule(fieldMethods, -1)
	case s.toolsSet:
		s.inspectRule = s.rule(fieldTools, -1)
	}
	if s.maxBody > 0 {
		s.maxBodyRule = s.rule(fieldMaxBody, -1)
	}
	if len(s.path)+len(s.query) == 0 && s.maxBody == 0 && !s.contentTypesSet && s.inspectRule == "" {
		return nil, nil
	}
	return s, nil
}

func compileAll(s *Set, field string, pats []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for i, p := range pats {
		if p == "" {
			return nil, fmt.Errorf("%s: must not be empty", s.rule(field, i))
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.rule(field, i), err)
		}
		res = append(res, re)
	}
	return res, nil
}

func compileGlobs(s *Set, field string, pats []string) ([]*identity.Glob, error) {
	var res []*identity.Glob
	for i, p := range pats {
		if p == "" {
			return nil, fmt.Errorf("%s: must not be empty", s.rule(field, i))
		}
		g, err := identity.CompileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.rule(field, i), err)
		}
		res = append(res, g)
	}
	return res, nil
}

// rule is the id of a rule: i < 0 for a whole field.
func (s *Set) rule(field string, i int) string {
	if i < 0 {
		return s.scope + ".guardrails." + field
	}
	return fmt.Sprintf("%s.guardrails.%s[%d]", s.scope, field, i)
}

// Scope is the set's scope.
func (s *Set) Scope() string { return s.scope }

// InspectsBody reports whether the set reads request bodies (body
// patterns, JSON-RPC methods, MCP tools): a connection whose bodies are
// streams (gRPC) cannot have such a set.
func (s *Set) InspectsBody() bool { return s != nil && s.inspectRule != "" }

// LimitsBody reports whether the set bounds request bodies.
func (s *Set) LimitsBody() bool { return s != nil && s.maxBody > 0 }

// Denial is a guardrail's denial: the gateway answers 403 naming Rule.
type Denial struct {
	// Rule is the rule's id ("connection.guardrails.deny_path_patterns[0]").
	Rule string
	// Reason says what was denied, for the log; it never quotes the body.
	Reason string
}

// Error implements error.
func (d *Denial) Error() string { return "denied by " + d.Rule + ": " + d.Reason }

// BodyLimitError is the error a request body of unknown length returns
// once it goes over a max_request_body_bytes: the exchange with the
// executor fails with it, and the gateway answers 403 naming the rule.
type BodyLimitError struct{ Denial *Denial }

// Error implements error.
func (e *BodyLimitError) Error() string { return e.Denial.Error() }

// Request is what Evaluate looks at.
type Request struct {
	// HTTP is the request; Evaluate may replace its Body (and set
	// ContentLength) with the buffered body it inspected.
	HTTP *http.Request
	// Path is the normalized path (what routes and what is forwarded).
	Path string
	// Upgrade says the request asks to switch protocols (WebSocket).
	Upgrade bool
	// InspectBytes bounds the body buffered for inspection
	// (DefaultInspectBytes when 0).
	InspectBytes int64
}

// Evaluate runs sets (nil ones are skipped) against a request: the
// request line and headers first, then the body if a set inspects it. It
// returns the first denial, or nil to let the request through. An error
// is a failure to read the body (the client went away, or the gateway's
// own body limit: an *http.MaxBytesError): the request is refused, but
// not by a guardrail.
func Evaluate(req Request, sets ...*Set) (*Denial, error) {
	r := req.HTTP
	var (
		inspect                *Set
		limit                  int64
		limitRule              string
		decodedPath            []byte
		rawQuery, decodedQuery []byte
	)
	hasBody := r.ContentLength != 0
	for _, s := range sets {
		if s == nil {
			continue
		}
		if len(s.path) > 0 {
			if decodedPath == nil {
				decodedPath = percentDecode(nil, req.Path, false)
			}
			if i := matchAny(s.path, []byte(req.Path), decodedPath); i >= 0 {
				return &Denial{s.rule(fieldPath, i), "path " + req.Path}, nil
			}
		}
		if len(s.query) > 0 {
			if rawQuery == nil {
				rawQuery = []byte(r.URL.RawQuery)
				decodedQuery = percentDecode(nil, r.URL.RawQuery, true)
			}
			if i := matchAny(s.query, rawQuery, decodedQuery); i >= 0 {
				return &Denial{s.rule(fieldQuery, i), "query"}, nil
			}
		}
		if s.contentTypesSet && hasBody {
			if why := s.checkContentType(r.Header); why != "" {
				return &Denial{s.rule(fieldContentTypes, -1), why}, nil
			}
		}
		if s.maxBody > 0 {
			if r.ContentLength > s.maxBody {
				return &Denial{s.maxBodyRule, fmt.Sprintf("Content-Length %d over %d", r.ContentLength, s.maxBody)}, nil
			}
			if limit == 0 || s.maxBody < limit {
				limit, limitRule = s.maxBody, s.maxBodyRule
			}
		}
		if s.inspectRule != "" && inspect == nil {
			inspect = s
		}
		if req.Upgrade && (s.inspectRule != "" || s.maxBody > 0) {
			return &Denial{cmpOr(s.inspectRule, s.maxBodyRule), "a protocol upgrade would carry messages the guardrails cannot inspect"}, nil
		}
	}
	if inspect == nil {
		if limit > 0 && r.ContentLength < 0 && r.Body != nil {
			r.Body = &limitedBody{rc: r.Body, max: limit, denial: &Denial{limitRule, fmt.Sprintf("body over %d bytes", limit)}}
		}
		return nil, nil
	}
	if !hasBody || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return &Denial{inspect.inspectRule, "a Content-Encoding'd body cannot be inspected"}, nil
	}
	bound := req.InspectBytes
	if bound <= 0 {
		bound = DefaultInspectBytes
	}
	overRule, overWhy := inspect.inspectRule, fmt.Sprintf("body larger than the %d bytes that can be inspected", bound)
	if limit > 0 && limit <= bound {
		bound, overRule, overWhy = limit, limitRule, fmt.Sprintf("body over %d bytes", limit)
	}
	if r.ContentLength > bound {
		return &Denial{overRule, overWhy}, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, bound+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if int64(len(body)) > bound {
		return &Denial{overRule, overWhy}, nil
	}
	// The executor gets the body that was inspected, from the buffer.
	r.Body = &bufferedBody{Reader: bytes.NewReader(body), orig: r.Body}
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	in := &inspection{body: body}
	for _, s := range sets {
		if s == nil {
			continue
		}
		if d := s.checkBody(in); d != nil {
			return d, nil
		}
	}
	return nil, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// matchAny returns the index of the first pattern matching any of the
// subjects, or -1.
func matchAny(res []*regexp.Regexp, subjects ...[]byte) int {
	for i, re := range res {
		for _, s := range subjects {
			if s != nil && re.Match(s) {
				return i
			}
		}
	}
	return -1
}

func (s *Set) checkContentType(h http.Header) string {
	cts := h.Values("Content-Type")
	switch len(cts) {
	case 0:
		return "a body without Content-Type"
	case 1:
	default:
		return "several Content-Type fields"
	}
	mt, _, err := mime.ParseMediaType(cts[0])
	if err != nil {
		return "an unparsable Content-Type"
	}
	typ, _, _ := strings.Cut(mt, "/")
	for _, a := range s.contentTypes {
		if a == mt || a == "*/*" || strings.HasSuffix(a, "/*") && a[:len(a)-2] == typ {
			return ""
		}
	}
	return "Content-Type " + mt + " is not allowed"
}

// inspection is a buffered body and the forms of it rules look at,
// computed once for all sets.
type inspection struct {
	body      []byte
	parsed    bool
	tree      *value
	parseErr  error
	variants  [][]byte
	variantOK bool
}

func (in *inspection) json() (*value, error) {
	if !in.parsed {
		in.parsed = true
		in.tree, in.parseErr = parseJSON(in.body)
	}
	return in.tree, in.parseErr
}

// forms returns the body and its canonical JSON and percent-decoded
// forms.
func (in *inspection) forms() [][]byte {
	if !in.variantOK {
		in.variantOK = true
		in.variants = append(in.variants, in.body)
		if v, err := in.json(); err == nil {
			in.variants = append(in.variants, v.appendCanonical(nil))
		}
		if bytes.ContainsAny(in.body, "%+") {
			in.variants = append(in.variants, percentDecode(nil, string(in.body), true))
		}
	}
	return in.variants
}

func (s *Set) checkBody(in *inspection) *Denial {
	if len(s.body) > 0 {
		if i := matchAny(s.body, in.forms()...); i >= 0 {
			return &Denial{s.rule(fieldBody, i), "body"}
		}
	}
	if !s.methodsSet && !s.toolsSet {
		return nil
	}
	listRule := s.rule(fieldMethods, -1)
	if !s.methodsSet {
		listRule = s.rule(fieldTools, -1)
	}
	v, err := in.json()
	if err != nil {
		return &Denial{listRule, "body is not JSON: " + err.Error()}
	}
	msgs := []*value{v}
	if v.kind == '[' {
		msgs = v.elems
	}
	for _, m := range msgs {
		if m.kind != '{' {
			continue
		}
		methods := m.members("method")
		switch {
		case len(methods) == 0:
			continue // a response, or not JSON-RPC
		case len(methods) > 1:
			return &Denial{listRule, "a message with several method members"}
		case methods[0].kind != '"':
			return &Denial{listRule, "a method that is not a string"}
		}
		method := methods[0].str
		if s.methodsSet && !matchGlobs(s.methods, method) {
			return &Denial{s.rule(fieldMethods, -1), "JSON-RPC method " + quote(method)}
		}
		if s.toolsSet && strings.EqualFold(method, mcpToolsCall) {
			toolsRule := s.rule(fieldTools, -1)
			params := m.members("params")
			if len(params) != 1 || params[0].kind != '{' {
				return &Denial{toolsRule, "a tools/call without exactly one params object"}
			}
			names := params[0].members("name")
			if len(names) != 1 || names[0].kind != '"' {
				return &Denial{toolsRule, "a tools/call without exactly one string name"}
			}
			if !matchGlobs(s.tools, names[0].str) {
				return &Denial{toolsRule, "MCP tool " + quote(names[0].str)}
			}
		}
	}
	return nil
}

func matchGlobs(gs []*identity.Glob, s string) bool {
	for _, g := range gs {
		if g.Match(s) {
			return true
		}
	}
	return false
}

// quote quotes a client-supplied name for the log, bounded.
func quote(s string) string {
	if len(s) > 128 {
		s = s[:128] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// percentDecode decodes %XX escapes (leaving malformed ones as they are),
// and '+' as a space when plus is set.
func percentDecode(dst []byte, s string, plus bool) []byte {
	if dst == nil {
		dst = make([]byte, 0, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case c == '+' && plus:
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// value is a parsed JSON value that keeps every member of an object, in
// order, duplicates included.
type value struct {
	kind  byte // '{', '[', '"', 'n' (number), 'l' (literal)
	str   string
	keys  []string
	vals  []*value
	elems []*value
}

// members returns the values of the members named name, compared
// case-insensitively (as encoding/json matches struct fields).
func (v *value) members(name string) []*value {
	var out []*value
	for i, k := range v.keys {
		if strings.EqualFold(k, name) {
			out = append(out, v.vals[i])
		}
	}
	return out
}

var errTrailing = errors.New("data after the JSON value")

// parseJSON parses one JSON value, keeping duplicate members.
func parseJSON(b []byte) (*value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (*value, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("reading a JSON token: %w", err)
	}
	switch t := t.(type) {
	case json.Delim:
		v := &value{kind: byte(t)}
		for dec.More() {
			if t == '{' {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("reading a JSON key: %w", err)
				}
				v.keys = append(v.keys, kt.(string))
				mv, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.vals = append(v.vals, mv)
				continue
			}
			ev, err := parseValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			v.elems = append(v.elems, ev)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, fmt.Errorf("reading a JSON delimiter: %w", err)
		}
		return v, nil
	case string:
		return &value{kind: '"', str: t}, nil
	case json.Number:
		return &value{kind: 'n', str: t.String()}, nil
	case bool:
		return &value{kind: 'l', str: fmt.Sprint(t)}, nil
	default: // nil
		return &value{kind: 'l', str: "null"}, nil
	}
}

// appendCanonical appends v compactly, strings with only '"', '\' and
// control characters escaped: the form body patterns also see, so that
// escapes and spacing do not hide a pattern.
func (v *value) appendCanonical(dst []byte) []byte {
	switch v.kind {
	case '{':
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = v.vals[i].appendCanonical(dst)
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		for i, e := range v.elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendCanonical(dst)
		}
		return append(dst, ']')
	case '"':
		return appendString(dst, v.str)
	}
	return append(dst, v.str...)
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, fmt.Sprintf(`\u%04x`, c)...)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// bufferedBody is an inspected body, forwarded from its buffer; Close
// closes the client's body.
type bufferedBody struct {
	*bytes.Reader
	orig io.Closer
}

// Close implements io.Closer.
func (b *bufferedBody) Close() error { return b.orig.Close() }

// limitedBody fails with a *BodyLimitError once more than max bytes are
// read.
type limitedBody struct {
	rc     io.ReadCloser
	n, max int64
	denial *Denial
}

// Read implements io.Reader.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, &BodyLimitError{b.denial}
	}
	if rem := b.max - b.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		return n - int(b.n-b.max), &BodyLimitError{b.denial}
	}
	return n, err
}

// Close implements io.Closer.
func (b *limitedBody) Close() error { return b.rc.Close() }
