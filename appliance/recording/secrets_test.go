package recording

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// secretForms are the encodings a secret must not appear in.
func secretForms(s string) map[string]string {
	js, _ := json.Marshal(s)
	forms := map[string]string{
		"plain":          s,
		"base64":         base64.StdEncoding.EncodeToString([]byte(s)),
		"base64url":      base64.URLEncoding.EncodeToString([]byte(s)),
		"base64 raw":     base64.RawStdEncoding.EncodeToString([]byte(s)),
		"base64url raw":  base64.RawURLEncoding.EncodeToString([]byte(s)),
		"hex":            hex.EncodeToString([]byte(s)),
		"HEX":            strings.ToUpper(hex.EncodeToString([]byte(s))),
		"url query":      url.QueryEscape(s),
		"url path":       url.PathEscape(s),
		"json":           string(js[1 : len(js)-1]),
		"json \\u":       unicodeEscapes(s, "\\u%04x"),
		"basic auth b64": base64.StdEncoding.EncodeToString([]byte("user:" + s)),
	}
	return forms
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestSecretsNeverRecorded(t *testing.T) {
	f := newFixture(t)
	// Characters that every encoding changes: / + = & < > " and space.
	planner := `pl4nner.T0ken/with+special=&<chars>"` + randomHex(t)
	injected := "inj3cted Cr3dential:" + randomHex(t)
	info := testInfo()
	info.RedactHeaders = []string{"x-upstream-key"} // any case
	info.Secrets = []string{planner, injected}

	s, err := f.rec.StartSession(context.Background(), info, testPolicy)
	must(t, err)
	jsonStr := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	reqBody := fmt.Sprintf(`{"token":%s,"b64":%q,"b64url":%q,"hex":%q,"url":%q,"u":"%s","basic":%q,"keep":"visible"}`,
		jsonStr(planner), base64.StdEncoding.EncodeToString([]byte(planner)), base64.RawURLEncoding.EncodeToString([]byte(injected)),
		hex.EncodeToString([]byte(injected)), url.QueryEscape(injected), unicodeEscapes(injected, "\\u%04X"),
		"Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+injected)))
	must(t, s.Decision(Decision{Kind: "auth", Outcome: "allow", Reason: "token " + planner + " accepted"}))
	must(t, s.HTTPRequest(HTTPRequest{
		Method: "POST", Host: "api.example.test",
		Path:  "/v1/items/" + url.PathEscape(planner),
		Query: "access_token=" + url.QueryEscape("opaque-query-token") + "&q=" + url.QueryEscape(injected) + "&page=2",
		Header: http.Header{
			"Authorization":  {"Bearer " + planner},
			"X-Upstream-Key": {injected},
			"Cookie":         {"session=" + planner},
			"X-Echo":         {"copy of " + planner},
			"X-B64":          {base64.StdEncoding.EncodeToString([]byte(injected))},
			"Content-Type":   {"application/json"},
		},
		Body: []byte(reqBody), BodySize: int64(len(reqBody)),
	}))
	respBody := "plain " + planner + " and " + injected + " and " + base64.URLEncoding.EncodeToString([]byte(planner)) + "\n"
	must(t, s.HTTPResponse(HTTPResponse{
		Status:  200,
		Header:  http.Header{"Set-Cookie": {"k=" + injected}, "X-Injected-Echo": {injected}, "Content-Type": {"text/plain"}},
		Trailer: http.Header{"X-Upstream-Key": {injected}},
		Body:    []byte(respBody), BodySize: int64(len(respBody)),
		Error: "upstream said " + url.QueryEscape(injected),
	}))
	must(t, s.GRPCMessage(GRPCMessage{Direction: ToExecutor, Method: "/svc.Jobs/Run", Message: []byte("\x0a\x20" + planner), Size: int64(2 + len(planner))}))
	must(t, s.Close())

	// A tcp stream with the secrets split across reads.
	tcp, err := f.rec.StartSession(context.Background(), SessionInfo{Protocol: "tcp", Secrets: info.Secrets}, testPolicy)
	must(t, err)
	stream := "AUTH " + planner + "\nKEY " + hex.EncodeToString([]byte(injected)) + "\nbye\n"
	for _, cut := range [][2]int{{0, 9}, {9, 20}, {20, 61}, {61, len(stream)}} {
		must(t, tcp.TCPChunk(ToExecutor, []byte(stream[cut[0]:cut[1]])))
	}
	must(t, tcp.TCPChunk(ToPlanner, []byte(planner[:7])))
	must(t, tcp.TCPChunk(ToPlanner, []byte(planner[7:])))
	must(t, tcp.Close())

	// Bodies cut by the cap or by the capture in the middle of a secret.
	capped, err := f.rec.StartSession(context.Background(), info, model.RecordingSpec{Enabled: true, MaxBodyBytes: 110})
	must(t, err)
	body := strings.Repeat(".", 100) + planner + " tail"
	c := capped.CaptureBody(readCloser{bytes.NewReader([]byte(body))})
	_, _ = new(bytes.Buffer).ReadFrom(c)
	must(t, capped.HTTPResponse(HTTPResponse{Status: 200, Body: c.Bytes(), BodySize: c.Size()}))
	partial := strings.Repeat(".", 50) + injected[:12]
	must(t, capped.HTTPRequest(HTTPRequest{Method: "PUT", Path: "/", Body: []byte(partial), BodySize: 4096}))
	must(t, capped.Close())

	for _, sess := range []*Session{s, tcp, capped} {
		raw, err := os.ReadFile(f.path(sess.ID()))
		must(t, err)
		texts := append([]string{string(raw)}, decodedStrings(t, f.path(sess.ID()))...)
		for name, secret := range map[string]string{"planner token": planner, "injected credential": injected} {
			for form, enc := range secretForms(secret) {
				for _, text := range texts {
					if strings.Contains(text, enc) {
						t.Errorf("session %s: the %s is recorded in %s form", sess.ID(), name, form)
						break
					}
				}
			}
		}
		for _, text := range texts {
			if strings.Contains(text, injected[:12]) || strings.Contains(text, "opaque-query-token") {
				t.Errorf("session %s: a partial secret or a credential query parameter is recorded", sess.ID())
			}
		}
		if !strings.Contains(strings.Join(texts, "\n"), Redacted) {
			t.Errorf("session %s: nothing was redacted?", sess.ID())
		}
		res, err := Verify(f.path(sess.ID()), f.rec.PublicKey(), f.anchor(sess.ID()))
		must(t, err)
		if !res.OK {
			t.Errorf("session %s: %s", sess.ID(), res.Summary())
		}
	}

	// What is not secret is still there.
	recs, _, err := ReadRecords(f.path(s.ID()), 2, 1)
	must(t, err)
	var req HTTPRequest
	must(t, json.Unmarshal(recs[0].Payload, &req))
	if !strings.Contains(req.Query, "page=2") || !strings.Contains(string(req.Body), `"keep":"visible"`) ||
		req.Header.Get("X-Echo") != "copy of "+Redacted || req.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("over-redacted request: %+v", req)
	}
	if strings.Join(req.RedactedHeaders, ",") != "Authorization,Cookie,X-Upstream-Key" {
		t.Fatalf("redacted headers %v", req.RedactedHeaders)
	}
	var transcript bytes.Buffer
	must(t, WriteTranscript(&transcript, f.path(tcp.ID())))
	if !strings.Contains(transcript.String(), "AUTH "+Redacted) {
		t.Fatalf("tcp transcript:\n%s", transcript.String())
	}
}

// decodedStrings returns every string in a recording's payloads and, for
// those that are base64 (bodies, data), the decoded bytes too.
func decodedStrings(t *testing.T, path string) []string {
	t.Helper()
	recs, _, err := ReadRecords(path, 0, 0)
	must(t, err)
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
			if b, err := base64.StdEncoding.DecodeString(x); err == nil {
				out = append(out, string(b))
			}
		case map[string]any:
			for k, v := range x {
				out = append(out, k)
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	for _, r := range recs {
		var v any
		must(t, json.Unmarshal(r.Payload, &v))
		walk(v)
		if r.Type == TypeSessionEnd {
			var end SessionEnd
			must(t, json.Unmarshal(r.Payload, &end))
			out = append(out, string(end.Manifest))
		}
	}
	return out
}

func TestScrubberFindsEveryAlignmentOfBase64(t *testing.T) {
	secret := "s3cr3t-value-0123456789"
	sc := newScrubber([]string{secret})
	for k := range 3 {
		prefix := strings.Repeat("P", k)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			encoded := enc.EncodeToString([]byte(prefix + secret + "suffix"))
			got := sc.bytes([]byte(encoded))
			if dec, err := enc.DecodeString(string(got)); err == nil && strings.Contains(string(dec), secret) {
				t.Errorf("alignment %d: %q still decodes to the secret", k, got)
			}
			if !strings.Contains(string(got), Redacted) {
				t.Errorf("alignment %d: nothing replaced in %q", k, encoded)
			}
		}
	}
	if sc.contains([]byte("nothing to see")) {
		t.Fatal("false positive")
	}
	if short := newScrubber([]string{"abc"}); short.active() {
		t.Fatal("a 3-byte secret would redact everywhere")
	}
}
