package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

const secretJSON = `{"user":"al","password":"hunter2","contact":"alice@example.com","n":1}`

func masker(t testing.TB, rules ...model.MaskingRule) *masking.Masker {
	t.Helper()
	m, err := masking.Compile(rules, masking.Options{HashKey: []byte("gateway-test-hash-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var testMaskRules = []model.MaskingRule{{JSONPath: "$..password"}, {Detector: "email"}}

// maskedEnv is one gateway with one masked http connection to executor h.
func (e *env) maskedEnv(h http.HandlerFunc) *executor {
	x := e.executor(h)
	c := e.connection("c1", x.URL)
	c.Masker = masker(e.t, testMaskRules...)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	return x
}

// rawClient is e.client without transparent decompression, so tests see
// the encoding the gateway sent.
func (e *env) rawClient(h2 bool) *http.Client {
	cl := e.client(e.planner, h2)
	cl.Transport.(*http.Transport).DisableCompression = true
	return cl
}

// metric reads a counter of the gateway's registry by name and labels.
func metric(t *testing.T, e *env, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func maskedCount(t *testing.T, e *env, outcome string) float64 {
	return metric(t, e, "sallyport_gateway_masked_responses_total", map[string]string{"connection": "c1", "outcome": outcome})
}

func TestMaskingJSONResponses(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			e := newEnv(t)
			x := e.maskedEnv(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(secretJSON)))
				w.Header().Set("Etag", `"v1"`)
				_, _ = io.WriteString(w, secretJSON)
			})
			req, _ := http.NewRequest("GET", "https://api.test/users/1", nil)
			req.Header.Set("Range", "bytes=0-10")
			req.Header.Set("Accept-Encoding", "zstd")
			resp, err := e.rawClient(h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := `{"user":"al","password":"***","contact":"***","n":1}`
			if resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if resp.ContentLength != int64(len(want)) || resp.Header.Get("Etag") != `W/"v1"` || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("headers: length %d, %v", resp.ContentLength, resp.Header)
			}
			got := x.last(t)
			if got.Header.Get("Accept-Encoding") != masking.AcceptEncoding || got.Header.Get("Range") != "" {
				t.Fatalf("executor got Accept-Encoding %q, Range %q", got.Header.Get("Accept-Encoding"), got.Header.Get("Range"))
			}
			if n := maskedCount(t, e, "masked"); n != 1 {
				t.Fatalf("masked counter %v", n)
			}
			mustContain(t, e.logs.String(), `"masked_values":2`)
		})
	}
}

// Encoded responses are decoded, masked and sent identity-encoded.
func TestMaskingEncodedResponses(t *testing.T) {
	encode := map[string]func([]byte) []byte{
		"gzip": func(b []byte) []byte {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			_, _ = w.Write(b)
			_ = w.Close()
			return buf.Bytes()
		},
		"br": func(b []byte) []byte {
			var buf bytes.Buffer
			w := brotli.NewWriter(&buf)
			_, _ = w.Write(b)
			_ = w.Close()
			return buf.Bytes()
		},
	}
	e := newEnv(t)
	e.maskedEnv(func(w http.ResponseWriter, r *http.Request) {
		coding := strings.TrimPrefix(r.URL.Path, "/")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", coding)
		_, _ = w.Write(encode[coding]([]byte(secretJSON)))
	})
	cl := e.rawClient(true)
	for coding := range encode {
		resp, body := get(t, cl, "https://api.test/"+coding)
		if resp.StatusCode != 200 || body != `{"user":"al","password":"***","contact":"***","n":1}` || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%s: %d %q %v", coding, resp.StatusCode, body, resp.Header)
		}
	}
}

// A response that cannot be masked is a 502 with nothing of it, before
// anything of it reaches the planner.
func TestMaskingRefusesWhatItCannotMask(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write(bytes.Repeat([]byte("a"), 50<<20))
	_ = gz.Close()
	bomb := buf.Bytes() // 50 MiB in about 50 KB
	e := newEnv(t)
	x := e.maskedEnv(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		status := 200
		body := secretJSON
		switch r.URL.Path {
		case "/malformed":
			h.Set("Content-Type", "application/json")
			body = `{"password":"hunter2",}`
		case "/trailing":
			h.Set("Content-Type", "application/json")
			body = `{"n":1} {"password":"hunter2"}`
		case "/binary":
			h.Set("Content-Type", "application/octet-stream")
		case "/zstd":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Encoding", "zstd")
		case "/utf16":
			h.Set("Content-Type", "application/json; charset=utf-16")
		case "/partial":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Range", "bytes 0-10/100")
			status = http.StatusPartialContent
		case "/gzip-lies":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Encoding", "gzip")
		case "/bomb":
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Encoding", "gzip")
			body = string(bomb)
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
	cl := e.rawClient(false)
	paths := []string{"/malformed", "/trailing", "/binary", "/zstd", "/utf16", "/partial", "/gzip-lies", "/bomb"}
	for _, p := range paths {
		resp, body := get(t, cl, "https://api.test"+p)
		if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "hunter2") || strings.Contains(body, "alice") {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	if n := len(x.requests()); n != len(paths) {
		t.Fatalf("executor got %d requests", n)
	}
	if n := maskedCount(t, e, "refused"); n != float64(len(paths)) {
		t.Fatalf("refused counter %v", n)
	}
	if n := counter(t, e, "g1", "c1", decisionAllow, reasonMaskingRefused); n != float64(len(paths)) {
		t.Fatalf("requests counter %v", n)
	}
}

// A stream that turns out not to be maskable after it started is cut
// short (the client sees an error, never a clean end), and nothing
// unmasked is sent.
func TestMaskingAbortsAStreamThatTurnsBad(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			e := newEnv(t)
			e.maskedEnv(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/lines":
					w.Header().Set("Content-Type", "application/x-ndjson")
					_, _ = io.WriteString(w, `{"password":"first"}`+"\n")
					w.(http.Flusher).Flush()
					_, _ = io.WriteString(w, `{"password":"second",}`+"\n")
				case "/big":
					// Past the prefetch bound, then truncated.
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"pad":"`+strings.Repeat("x", 2<<20)+`","password":"hunter2"`)
				}
			})
			cl := e.rawClient(h2)
			for _, p := range []string{"/lines", "/big"} {
				// The failure may come before the response header went
				// out (the connection is then closed without a response)
				// or after (the body is cut short): never a clean end.
				var body []byte
				resp, err := cl.Get("https://api.test" + p)
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					t.Fatalf("%s: %d: the stream ended cleanly", p, resp.StatusCode)
				}
				for _, s := range []string{"first", "second", "hunter2"} {
					if bytes.Contains(body, []byte(s)) {
						t.Fatalf("%s: %q reached the planner", p, s)
					}
				}
			}
			if n := maskedCount(t, e, "aborted"); n != 2 {
				t.Fatalf("aborted counter %v", n)
			}
			mustContain(t, e.logs.String(), `"reason":"masking_aborted"`)
		})
	}
}

// Server-sent events are masked one by one, each passed on as it comes.
func TestMaskingStreamsEvents(t *testing.T) {
	e := newEnv(t)
	next := make(chan struct{})
	e.maskedEnv(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"i\":%d,\"password\":\"p%d\",\"to\":\"u%d@example.com\"}\n\n", i, i, i)
			w.(http.Flusher).Flush()
			<-next
		}
	})
	resp, err := e.rawClient(true).Get("https://api.test/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("data: {\"i\":%d,\"password\":\"***\",\"to\":\"***\"}\n", i); line != want {
			t.Fatalf("event %d: %q", i, line)
		}
		_, _ = br.ReadString('\n')
		next <- struct{}{} // the next event exists only now
	}
}

// WebSocket messages would bypass masking: a masked connection refuses
// the upgrade.
func TestMaskedConnectionRefusesWebSocket(t *testing.T) {
	e := newEnv(t)
	e.maskedEnv(nil)
	r := e.rawRequest("GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("upgrade: %d", r.StatusCode)
	}
}

// A text response is masked through the window; an unmasked connection
// next to it passes bodies through untouched.
func TestMaskingTextAndUnmaskedNeighbours(t *testing.T) {
	e := newEnv(t)
	text := strings.Repeat("lorem ipsum ", 5000) + "mail bob@example.com " + strings.Repeat("dolor ", 5000)
	x := e.executor(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, text)
	})
	masked := e.connection("c1", x.URL)
	masked.PathPrefix = "/masked"
	masked.Masker = masker(t, testMaskRules...)
	plain := e.connection("c2", x.URL)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{masked, plain}
	e.apply(&Runtime{Gateways: []*Gateway{g}})
	cl := e.rawClient(false)
	if _, body := get(t, cl, "https://api.test/masked/x"); body != strings.Replace(text, "bob@example.com", "***", 1) {
		t.Fatalf("masked text differs (len %d)", len(body))
	}
	if _, body := get(t, cl, "https://api.test/plain"); body != text {
		t.Fatal("an unmasked connection altered the body")
	}
}
