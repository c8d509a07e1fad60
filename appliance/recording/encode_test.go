package recording

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// The hand-written encoder escapes strings exactly as encoding/json does,
// so the scrubber's JSON forms of a secret match both.
func TestEncoderEscapesLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `q"uote\back/slash`, "<html>&amp;", "ctl\x00\x01\b\f\n\r\t\x1f\x7f",
		"héllo wörld ☃ 𝄞", "bad \xff\xfe utf8 \xe2\x82", "line\u2028sep\u2029", "\xed\xa0\x80 surrogate",
	} {
		want, _ := json.Marshal(s)
		if got := appendJSONStr(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		if got := appendJSONStr(nil, []byte(s)); string(got) != string(want) {
			t.Errorf("%q as bytes: got %s, want %s", s, got, want)
		}
	}
}

// The encoded payloads decode to what json.Marshal of the scrubbed
// struct decodes to.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	redact := redactSet([]string{"X-Upstream-Key"})
	id := &Identity{Subject: "alice", Issuer: "https://idp", BindingID: "b2"}
	req := HTTPRequest{
		Method: "POST", Scheme: "https", Host: "api.test", Path: "/a b/<c>", Query: "x=1&y=\"2\"", Proto: "HTTP/2.0",
		Header: http.Header{"Authorization": {"Bearer x"}, "X-Upstream-Key": {"k"}, "Accept": {"*/*", "a&b"}, "X-Nil": nil, "X-Empty": {}},
		Body:   []byte("{\"k\":\"v\"}\x00\xff"), BodySize: 42, BodyTruncated: true, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Identity: id,
	}
	var sc scrubber
	want := req
	want.Header, want.RedactedHeaders = sc.headers(req.Header, redact)
	check(t, first(encodeHTTPRequest(nil, &req, redact)), want)
	req2 := HTTPRequest{Method: "GET", Path: "/", Header: http.Header{"Cookie": {"c"}}}
	want2 := req2
	want2.Header, want2.RedactedHeaders = sc.headers(req2.Header, redact)
	check(t, first(encodeHTTPRequest(nil, &req2, redact)), want2)

	resp := HTTPResponse{
		Status: 200, Proto: "HTTP/1.1", Header: http.Header{"Set-Cookie": {"s"}, "Content-Type": {"application/json"}},
		Trailer: http.Header{"Grpc-Status": {"0"}, "X-Upstream-Key": {"k"}, "Set-Cookie": {"t"}},
		Body:    []byte("hello"), BodySize: 5, Latency: time.Millisecond, Duration: 2 * time.Millisecond, Error: "upstream <timeout>",
	}
	wantResp := resp
	var trailerRemoved []string
	wantResp.Header, wantResp.RedactedHeaders = sc.headers(resp.Header, redact)
	wantResp.Trailer, trailerRemoved = sc.headers(resp.Trailer, redact)
	for _, n := range trailerRemoved {
		if !contains(wantResp.RedactedHeaders, n) {
			wantResp.RedactedHeaders = append(wantResp.RedactedHeaders, n)
		}
	}
	gotResp := decode[HTTPResponse](t, first(encodeHTTPResponse(nil, &resp, redact)))
	wantDecoded := decode[HTTPResponse](t, mustJSON(t, wantResp))
	sortStrings(gotResp.RedactedHeaders)
	sortStrings(wantDecoded.RedactedHeaders)
	if !reflect.DeepEqual(gotResp, wantDecoded) {
		t.Fatalf("response:\n got %+v\nwant %+v", gotResp, wantDecoded)
	}
	for _, d := range []Decision{{Kind: "binding", Outcome: "allow", Rule: "b1"}, {Kind: "guardrail", Outcome: "deny", Rule: "r[0]", Reason: "path \"/admin\" <x>", Status: 403}} {
		check(t, encodeDecision(nil, &d), d)
	}
}

func check[T any](t *testing.T, got []byte, want T) {
	t.Helper()
	g, w := decode[T](t, got), decode[T](t, mustJSON(t, want))
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", got, g, w)
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func sortStrings(ss []string) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && ss[j] < ss[j-1]; j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

func first(b []byte, _ span) []byte { return b }
