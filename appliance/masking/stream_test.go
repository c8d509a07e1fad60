package masking

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/andybalholm/brotli"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// A match that spans reads is found whole: the text window holds back
// enough. Each secret is placed across every read boundary of a stream
// read in 1000-byte pieces.
func TestTextMatchesSpanningReads(t *testing.T) {
	m := compile(t, det("payment_card"), det("pem_private_key"), det("email"), det("jwt"))
	secrets := []string{"4111 1111 1111 1111", pemKey, "someone.long@example.com", jwtToken}
	filler := strings.Repeat("lorem ipsum dolor sit amet ", 3000) // ~80 KB, past the window
	for _, s := range secrets {
		for _, at := range []int{1000 - len(s)/2, 33000 - 3, 40000 - len(s) + 1, len(filler) - 1} {
			body := filler[:at] + " " + s + " " + filler[at:]
			got, err := maskWith(m, ctHeader("text/plain"), []byte(body), func(r io.Reader) io.Reader { return &pieces{r: r, n: 1000} })
			if err != nil {
				t.Fatal(err)
			}
			if want := filler[:at] + " *** " + filler[at:]; got != want {
				t.Fatalf("secret %.20q at %d: not masked whole (len %d, want %d)", s, at, len(got), len(want))
			}
		}
	}
}

// pieces reads at most n bytes at a time.
type pieces struct {
	r io.Reader
	n int
}

func (p *pieces) Read(b []byte) (int, error) {
	if len(b) > p.n {
		b = b[:p.n]
	}
	return p.r.Read(b)
}

func TestTextHoldsBackOnlyTheWindow(t *testing.T) {
	m, err := Compile([]model.MaskingRule{det("email")}, Options{Limits: Limits{Window: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	rd, err := m.Wrap(ctHeader("text/plain"), pr)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	go func() { _, _ = pw.Write([]byte(strings.Repeat("x ", 2048))) }() // 4 KiB, then nothing yet
	buf := make([]byte, 8192)
	n, err := io.ReadAtLeast(rd, buf, 4096-1024-boundaryBack)
	if err != nil {
		t.Fatalf("read %d: %v", n, err)
	}
	_ = pw.Close()
	rest, _ := io.ReadAll(rd)
	if n+len(rest) != 4096 {
		t.Fatalf("got %d+%d bytes", n, len(rest))
	}
}

func TestServerSentEvents(t *testing.T) {
	m := compile(t, path("$.choices[*].delta.secret"), det("email"))
	in := "event: message\r\nid: alice@example.com\r\ndata: {\"choices\":[{\"delta\":{\"secret\":\"s1\",\"content\":\"hi\"}}]}\r\n\r\n" +
		": keep-alive from bob@example.com\n\n" +
		"data: {\"choices\":\ndata: [{\"delta\":{\"secret\":\"s2\"}}]}\n\n" +
		"data: plain text to carol@example.com\rretry: 10\r\r" +
		"data: [DONE]\n\n" +
		"data:nospace dave@example.com"
	want := "event: message\nid: ***\ndata: {\"choices\":[{\"delta\":{\"secret\":\"***\",\"content\":\"hi\"}}]}\n\n" +
		": keep-alive from ***\n\n" +
		"data: {\"choices\":\ndata: [{\"delta\":{\"secret\":\"***\"}}]}\n\n" +
		"data: plain text to ***\nretry: 10\n\n" +
		"data: [DONE]\n\n" +
		"data: nospace ***\n"
	if got := mustMask(t, m, "text/event-stream", in); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// JSON data with \u escapes is decoded before matching.
	if got := mustMask(t, m, "text/event-stream", "data: {\"e\":\"eve\\u0040example.com\"}\n\n"); strings.Contains(got, "eve") {
		t.Fatalf("escaped email survived: %q", got)
	}
	// With json_path rules, data that looks like JSON but is not is
	// refused rather than passed as text.
	mustRefuse(t, m, ctHeader("text/event-stream"), "data: {\"choices\":[{\"delta\":{\"secret\":\"s\"}}],}\n\n")
	// An event larger than the bound.
	mustRefuse(t, m, ctHeader("text/event-stream"), "data: "+strings.Repeat("x", 2<<20)+"\n\n")
}

// Events flow one by one: an event is passed on as soon as its blank
// line arrives, before the next one exists.
func TestServerSentEventsFlow(t *testing.T) {
	m := compile(t, det("email"))
	pr, pw := io.Pipe()
	rd, err := m.Wrap(ctHeader("text/event-stream"), pr)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	br := bufio.NewReader(rd)
	for _, ev := range []string{"a@example.com", "two", "three"} {
		go func() { _, _ = io.WriteString(pw, "data: "+ev+"\n\n") }()
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, "@") || !strings.HasPrefix(line, "data: ") {
			t.Fatalf("line %q", line)
		}
		if blank, _ := br.ReadString('\n'); blank != "\n" {
			t.Fatalf("blank %q", blank)
		}
	}
	_ = pw.Close()
}

// JSON lines flow line by line too.
func TestJSONLinesFlow(t *testing.T) {
	m := compile(t, path("$.k"))
	pr, pw := io.Pipe()
	rd, err := m.Wrap(ctHeader("application/x-ndjson"), pr)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	br := bufio.NewReader(rd)
	for range 3 {
		go func() { _, _ = io.WriteString(pw, "{\"k\":\"v\"}\n") }()
		line, err := br.ReadString('\n')
		if err != nil || line != "{\"k\":\"***\"}\n" {
			t.Fatalf("line %q, %v", line, err)
		}
	}
	_ = pw.Close()
}

func compress(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip", "x-gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "raw-deflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriter(&buf)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Encoded bodies are decoded, masked and sent identity-encoded.
func TestEncodedBodiesAreDecodedAndMasked(t *testing.T) {
	m := compile(t, path("$.password"), det("email"))
	body := []byte(`{"password":"hunter2","mail":"a@example.com","pad":"` + strings.Repeat("x", 100_000) + `"}`)
	want := `{"password":"***","mail":"***","pad":"` + strings.Repeat("x", 100_000) + `"}`
	for _, c := range []string{"gzip", "x-gzip", "deflate", "raw-deflate", "br"} {
		enc := compress(t, c, body)
		h := ctHeader("application/json")
		h.Set("Content-Encoding", strings.TrimPrefix(c, "raw-"))
		if c == "gzip" {
			h.Set("Content-Encoding", "GZIP, identity")
		}
		h.Set("Content-Length", "123")
		got, err := maskWith(m, h, enc, iotest.HalfReader)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if got != want {
			t.Fatalf("%s: masked body differs (len %d)", c, len(got))
		}
		if h.Get("Content-Encoding") != "" || h.Get("Content-Length") != "" {
			t.Fatalf("%s: headers %v", c, h)
		}
	}
	// Concatenated gzip members are all decoded.
	two := append(compress(t, "gzip", []byte(`{"password":"a","mail":`)), compress(t, "gzip", []byte(`"b@example.com"}`))...)
	h := ctHeader("application/json")
	h.Set("Content-Encoding", "gzip")
	if got, err := maskWith(m, h, two, nil); err != nil || got != `{"password":"***","mail":"***"}` {
		t.Fatalf("two members: %q, %v", got, err)
	}
}

// Decompression bombs are refused: by ratio, and by decoded size.
func TestDecompressionBombsAreRefused(t *testing.T) {
	ratio, err := Compile([]model.MaskingRule{det("email")}, Options{Limits: Limits{RatioGrace: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	h := ctHeader("text/plain")
	h.Set("Content-Encoding", "gzip")
	bomb := compress(t, "gzip", bytes.Repeat([]byte("a"), 4<<20)) // ~4 KB -> 4 MiB
	mustRefuse(t, ratio, h, string(bomb))

	small, err := Compile([]model.MaskingRule{det("email")}, Options{Limits: Limits{MaxDecodedBytes: 256 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 220<<10)
	_, _ = rand.Read(random)
	text := []byte(base64.StdEncoding.EncodeToString(random)) // ~293 KiB, ratio < 2
	for _, c := range []string{"gzip", "br", "deflate"} {
		h := ctHeader("text/plain")
		h.Set("Content-Encoding", c)
		mustRefuse(t, small, h, string(compress(t, c, text)))
	}
	// Within the limits, the same text passes.
	h = ctHeader("text/plain")
	h.Set("Content-Encoding", "gzip")
	if got, err := maskWith(small, h, compress(t, "gzip", text[:200<<10]), nil); err != nil || got != string(text[:200<<10]) {
		t.Fatalf("within the limits: %v", err)
	}
}

// Responses that cannot be masked are refused, never passed through.
func TestUnmaskableResponsesAreRefused(t *testing.T) {
	m := compile(t, det("email"), path("$.password"))
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	for name, tc := range map[string]struct {
		h    http.Header
		body string
	}{
		"unknown coding":       {hdr("Content-Type", "application/json", "Content-Encoding", "zstd"), `{}`},
		"stacked codings":      {hdr("Content-Type", "application/json", "Content-Encoding", "gzip, br"), `{}`},
		"two coding fields":    {hdr("Content-Type", "application/json", "Content-Encoding", "gzip", "Content-Encoding", "gzip"), `{}`},
		"corrupt gzip":         {hdr("Content-Type", "application/json", "Content-Encoding", "gzip"), "\x1f\x8b\x08\x00garbage"},
		"gzip lies":            {hdr("Content-Type", "application/json", "Content-Encoding", "gzip"), `{"password":"x"}`},
		"truncated gzip":       {hdr("Content-Type", "application/json", "Content-Encoding", "gzip"), string(compress(t, "gzip", []byte(`{"password":"x"}`))[:15])},
		"binary type":          {hdr("Content-Type", "application/octet-stream"), "a@example.com"},
		"image":                {hdr("Content-Type", "image/png"), "\x89PNG"},
		"protobuf":             {hdr("Content-Type", "application/x-protobuf"), "x"},
		"multipart":            {hdr("Content-Type", "multipart/mixed; boundary=x"), "--x\r\n\r\na@example.com\r\n--x--"},
		"utf-16 charset":       {hdr("Content-Type", "application/json; charset=utf-16"), "{\x00}\x00"},
		"two content types":    {hdr("Content-Type", "text/plain", "Content-Type", "application/json"), `{}`},
		"bad content type":     {hdr("Content-Type", "text/plain; charset"), `x`},
		"gzip as text":         {hdr("Content-Type", "text/plain"), string(compress(t, "gzip", []byte("a@example.com")))},
		"binary as text":       {hdr("Content-Type", "text/plain"), "PK\x03\x04" + strings.Repeat("\x00", 600)},
		"utf-16 bom as text":   {hdr(), "\xfe\xff\x00a\x00@\x00b"},
		"binary without type":  {hdr(), "\x00\x01\x02a@example.com"},
		"malformed json":       {hdr("Content-Type", "application/problem+json"), `{"password":"x",}`},
		"json after json":      {hdr("Content-Type", "application/json"), `{} {"password":"x"}`},
		"malformed json lines": {hdr("Content-Type", "application/x-ndjson"), "{\"password\":\"x\"}\n{\"password\":\"y\",}\n"},
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, m, tc.h, tc.body) })
	}
}

// Output that was masked before a failure is dropped: a stream that
// fails gives the client nothing more, and nothing unmasked.
func TestFailureDropsPendingOutput(t *testing.T) {
	m := compile(t, path("$.password"))
	rd, err := m.Wrap(ctHeader("application/json"), io.NopCloser(strings.NewReader(`[{"password":"a"},{"ok":1},]`)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(rd)
	if !errors.Is(err, ErrUnmaskable) || len(out) != 0 {
		t.Fatalf("%q, %v", out, err)
	}
}

func TestPrefetch(t *testing.T) {
	m := compile(t, path("$.password"))
	rd, err := m.Wrap(ctHeader("application/json"), io.NopCloser(strings.NewReader(`{"password":"a"}`)))
	if err != nil {
		t.Fatal(err)
	}
	done, err := rd.Prefetch()
	if err != nil || !done || rd.Len() != len(`{"password":"***"}`) || rd.Masked() != 1 {
		t.Fatalf("done %v len %d masked %d: %v", done, rd.Len(), rd.Masked(), err)
	}
	if b, _ := io.ReadAll(rd); string(b) != `{"password":"***"}` {
		t.Fatalf("%q", b)
	}

	rd, _ = m.Wrap(ctHeader("application/json"), io.NopCloser(strings.NewReader(`{"password":"a"`)))
	if _, err := rd.Prefetch(); !errors.Is(err, ErrUnmaskable) {
		t.Fatalf("truncated JSON: %v", err)
	}

	big := `["` + strings.Repeat("x", 3<<20) + `"]`
	rd, _ = m.Wrap(ctHeader("application/json"), io.NopCloser(strings.NewReader(big)))
	done, err = rd.Prefetch()
	if err != nil || done || rd.Len() < 1<<20 {
		t.Fatalf("big: done %v len %d: %v", done, rd.Len(), err)
	}
	if b, _ := io.ReadAll(rd); string(b) != big {
		t.Fatal("big body changed")
	}
	if rd.Format() != FormatJSON || rd.Streaming() {
		t.Fatal("format")
	}
}

// An executor's own read error is passed on as is (the response is cut
// short), not reported as a masking failure.
func TestExecutorErrorsPassThrough(t *testing.T) {
	m := compile(t, det("email"))
	boom := errors.New("connection reset")
	rd, err := m.Wrap(ctHeader("text/plain"), io.NopCloser(iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rd); !errors.Is(err, boom) || errors.Is(err, ErrUnmaskable) {
		t.Fatalf("%v", err)
	}
}

// TestCommonTypesAsParsed checks that the Content-Types classify knows
// without parsing are classified as parsing them would.
func TestCommonTypesAsParsed(t *testing.T) {
	for _, c := range commonTypes {
		for _, ct := range []string{c.ct, strings.ToUpper(c.ct)} {
			saved := commonTypes
			commonTypes = nil
			want, err := classify(http.Header{"Content-Type": {ct}})
			commonTypes = saved
			if err != nil || want != c.f {
				t.Errorf("%q parsed: %q, %v; the fast path says %q", ct, want, err, c.f)
			}
			if got, err := classify(http.Header{"Content-Type": {ct}}); got != want || err != nil {
				t.Errorf("classify(%q) = %q, %v; want %q", ct, got, err, want)
			}
		}
	}
}
