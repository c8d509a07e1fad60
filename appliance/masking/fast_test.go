package masking

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// naiveStringRun is stringRun one byte at a time.
func naiveStringRun(b []byte) int {
	for n, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return n
		}
	}
	return len(b)
}

// TestStringRun checks the eight-bytes-at-a-time scan against the plain
// loop: every byte value at every position of a word and its tail, after
// plain bytes of every kind (ASCII, UTF-8, 0xff), and random bytes.
func TestStringRun(t *testing.T) {
	for _, fill := range []byte{'a', ' ', '!', '#', '[', ']', 0x7f, 0x80, 0xc3, 0xff} {
		for n := range 20 {
			for pos := range n {
				for c := range 256 {
					b := make([]byte, n)
					for i := range b {
						b[i] = fill
					}
					b[pos] = byte(c)
					if got, want := stringRun(b), naiveStringRun(b); got != want {
						t.Fatalf("stringRun(%q) = %d, want %d", b, got, want)
					}
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			// Mostly bytes around the stop bytes.
			switch rng.IntN(4) {
			case 0:
				b[i] = byte(rng.IntN(256))
			case 1:
				b[i] = byte(0x1c + rng.IntN(8))
			case 2:
				b[i] = byte(0x5a + rng.IntN(6))
			default:
				b[i] = byte(0x20 + rng.IntN(0x60))
			}
		}
		if got, want := stringRun(b), naiveStringRun(b); got != want {
			t.Fatalf("stringRun(%q) = %d, want %d", b, got, want)
		}
	}
}

// TestPooledReaderReuse checks that a Reader's pooled state carries
// nothing from one response into the next: responses closed half read,
// failed in the middle of a replaced value, of other Maskers (another
// hash key) and of other formats, then a response masked whole.
func TestPooledReaderReuse(t *testing.T) {
	hashKey2 := []byte("fedcba9876543210fedcba9876543210")
	m := compile(t, path("$..token"), path("$.h", model.ReplaceHash), path("$.p", model.ReplacePartial))
	m2, err := Compile([]model.MaskingRule{path("$.h", model.ReplaceHash)}, Options{HashKey: hashKey2})
	if err != nil {
		t.Fatal(err)
	}
	mText := compile(t, det("email"))
	jsonH := func() http.Header { return ctHeader("application/json") }
	const next = `{"a":[1,{"b":"c"}],"h":"v","p":"abcdefghij","x":"y"}`
	want := func(m *Masker) string {
		t.Helper()
		got, err := maskWith(m, jsonH(), []byte(next), nil)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	wantM, wantM2 := want(m), want(m2)
	if !strings.Contains(wantM, `"p":"***ghij"`) || !strings.Contains(wantM, `"h":"hash:`) || wantM == wantM2 {
		t.Fatalf("unexpected expectations %q, %q", wantM, wantM2)
	}
	secret := `{"token":"SECRET-` + strings.Repeat("s", 100) + `","h":{"k":["SECRET"`
	firsts := []struct {
		name string
		run  func() (int, error)
	}{
		{"closed unread", func() (int, error) {
			rd, err := m.Wrap(jsonH(), io.NopCloser(strings.NewReader(secret)))
			if err != nil {
				return 0, err
			}
			return rd.Masked(), rd.Close()
		}},
		{"closed inside a replaced value", func() (int, error) {
			rd, err := m.Wrap(jsonH(), io.NopCloser(iotest.HalfReader(strings.NewReader(secret+`]}}`))))
			if err != nil {
				return 0, err
			}
			_, _ = rd.Read(make([]byte, 4))
			return rd.Masked(), rd.Close()
		}},
		{"failed inside a hashed container", func() (int, error) {
			rd, err := m.Wrap(jsonH(), io.NopCloser(strings.NewReader(secret+`,}`)))
			if err != nil {
				return 0, err
			}
			if _, err := rd.Prefetch(); !errors.Is(err, ErrUnmaskable) {
				return 0, fmt.Errorf("prefetch: %w, want ErrUnmaskable", err)
			}
			return rd.Masked(), rd.Close()
		}},
		{"failed inside a key", func() (int, error) {
			rd, err := m.Wrap(jsonH(), io.NopCloser(strings.NewReader(`{"to\u00`)))
			if err != nil {
				return 0, err
			}
			_, err = io.ReadAll(rd)
			if !errors.Is(err, ErrUnmaskable) {
				return 0, fmt.Errorf("read: %w, want ErrUnmaskable", err)
			}
			return rd.Masked(), rd.Close()
		}},
		{"other key", func() (int, error) {
			rd, err := m2.Wrap(jsonH(), io.NopCloser(strings.NewReader(`{"h":{"SECRET":1}`)))
			if err != nil {
				return 0, err
			}
			_, _ = rd.Prefetch()
			return rd.Masked(), rd.Close()
		}},
		{"text", func() (int, error) {
			rd, err := mText.Wrap(ctHeader("text/plain"), io.NopCloser(strings.NewReader("SECRET alice@example.com "+strings.Repeat("x", 600))))
			if err != nil {
				return 0, err
			}
			_, err = io.Copy(io.Discard, iotest.OneByteReader(rd))
			return rd.Masked(), errors.Join(err, rd.Close())
		}},
	}
	for _, first := range firsts {
		for range 3 { // sync.Pool may drop an object; repeat to reuse one
			if _, err := first.run(); err != nil {
				t.Fatalf("%s: %v", first.name, err)
			}
			for _, c := range []struct {
				m    *Masker
				want string
			}{{m, wantM}, {m2, wantM2}, {m, wantM}} {
				for _, wrap := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader} {
					got, err := maskWith(c.m, jsonH(), []byte(next), wrap)
					if err != nil || got != c.want {
						t.Fatalf("after %s: got %q, %v; want %q", first.name, got, err, c.want)
					}
				}
			}
		}
	}
}

// TestMaskedAfterClose checks that a Reader reports its own count once
// closed, whoever uses its pooled state next, and fails reads after
// Close.
func TestMaskedAfterClose(t *testing.T) {
	m := compile(t, path("$..token"))
	rd, err := m.Wrap(ctHeader("application/json"), io.NopCloser(strings.NewReader(`{"token":1,"a":{"token":2}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rd); err != nil {
		t.Fatal(err)
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := maskWith(m, ctHeader("application/json"), []byte(`{"token":[3]}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := rd.Masked(); n != 2 {
		t.Fatalf("Masked after Close = %d, want 2", n)
	}
	if n, err := rd.Read(make([]byte, 8)); n != 0 || err == nil {
		t.Fatalf("Read after Close = %d, %v; want an error or EOF", n, err)
	}
	rd2, err := m.Wrap(ctHeader("application/json"), io.NopCloser(strings.NewReader(`{"token":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	_ = rd2.Close()
	if n, err := rd2.Read(make([]byte, 8)); n != 0 || err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after Close of an unread Reader = %d, %v; want an error", n, err)
	}
	if _, err := rd2.Prefetch(); err == nil {
		t.Fatal("Prefetch after Close: no error")
	}
}

// randomJSON appends a random JSON value of at most depth levels: keys
// that rules name, plainly and escaped, strings with escapes, numbers,
// literals and whitespace.
func randomJSON(rng *rand.Rand, b []byte, depth int) []byte {
	ws := func() {
		if rng.IntN(4) == 0 {
			b = append(b, " \n\t\r"[rng.IntN(4)])
		}
	}
	keys := []string{`"token"`, `"t\u006fken"`, `"tok"`, `"tokens"`, `"a"`, `"h"`, `"p"`, `"x\"y"`, `""`, `"\u00e9t\ud83d\ude00"`, `"token\\"`}
	strs := []string{`"v"`, `""`, `"a\nb"`, `"\u0041\"q\\"`, `"secret-value-of-some-length"`, `"é😀"`, `"\ud800"`}
	switch k := rng.IntN(10); {
	case depth > 0 && k < 3:
		b = append(b, '{')
		for i := range rng.IntN(5) {
			if i > 0 {
				b = append(b, ',')
			}
			ws()
			b = append(b, keys[rng.IntN(len(keys))]...)
			ws()
			b = append(b, ':')
			ws()
			b = randomJSON(rng, b, depth-1)
			ws()
		}
		b = append(b, '}')
	case depth > 0 && k < 5:
		b = append(b, '[')
		for i := range rng.IntN(5) {
			if i > 0 {
				b = append(b, ',')
			}
			ws()
			b = randomJSON(rng, b, depth-1)
			ws()
		}
		b = append(b, ']')
	case k < 8:
		b = append(b, strs[rng.IntN(len(strs))]...)
	case k < 9:
		b = append(b, []string{"0", "-1.5e3", "12", "3.25"}[rng.IntN(4)]...)
	default:
		b = append(b, []string{"true", "false", "null"}[rng.IntN(3)]...)
	}
	return b
}

// chunkReader returns its data in reads of random sizes.
type chunkReader struct {
	b   []byte
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.rng.IntN(12))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// TestQuickPathsAgree masks random documents, valid and broken, whole
// and in reads of random sizes, with and without the shortcuts for plain
// keys and strings: outputs and failures must be the same.
func TestQuickPathsAgree(t *testing.T) {
	defer func() { quickPaths = true }()
	maskers := []*Masker{
		compile(t, path("$..token")),
		compile(t, path("$..token", model.ReplaceHash), path("$.h", model.ReplacePartial)),
		compile(t, path("$.a[*].token"), path("$.p.*"), path("$[1]")),
		compile(t, path("$..tok"), path("$..*.x")),
		compile(t, path("$..token"), det("email")),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	run := func(m *Masker, doc []byte, seed uint64, quick bool) (string, error) {
		quickPaths = quick
		var wrap func(io.Reader) io.Reader
		if seed > 0 {
			wrap = func(io.Reader) io.Reader { return &chunkReader{b: doc, rng: rand.New(rand.NewPCG(seed, 0))} }
		}
		return maskWith(m, ctHeader("application/json"), doc, wrap)
	}
	for n := range 20000 {
		doc := randomJSON(rng, nil, 4)
		if n%3 == 0 && len(doc) > 0 {
			// Break it: drop, duplicate or replace a byte.
			i := rng.IntN(len(doc))
			switch rng.IntN(3) {
			case 0:
				doc = append(doc[:i:i], doc[i+1:]...)
			case 1:
				doc = append(doc[:i+1:i+1], doc[i:]...)
			default:
				doc[i] = `{}[]":,\ au0`[rng.IntN(12)]
			}
		}
		m := maskers[rng.IntN(len(maskers))]
		for _, seed := range []uint64{0, uint64(n) + 1} {
			want, wantErr := run(m, doc, seed, false)
			got, gotErr := run(m, doc, seed, true)
			if got != want || (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("%s (reads seed %d):\nquick   %q, %v\ngeneral %q, %v", doc, seed, got, gotErr, want, wantErr)
			}
			if wantErr == nil && m == maskers[0] {
				if err := tokensMasked(want); err != nil {
					t.Fatalf("%s: %v in %q", doc, err, want)
				}
			}
		}
	}
}

// tokensMasked checks that every member named "token" (after decoding)
// of the JSON document doc has the value "***".
func tokensMasked(doc string) error {
	dec := json.NewDecoder(strings.NewReader(doc))
	var stack []bool // open containers: true for an object
	expectKey, tokenNext := false, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			expectKey = len(stack) > 0 && stack[len(stack)-1]
			continue
		}
		if expectKey {
			tokenNext, expectKey = tok == "token", false
			continue
		}
		if tokenNext && tok != "***" {
			return fmt.Errorf("a token's value is %v", tok)
		}
		tokenNext = false
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, d == '{')
			expectKey = d == '{'
			continue
		}
		expectKey = len(stack) > 0 && stack[len(stack)-1]
	}
}

// TestQuickKeysSplit masks keys and values that rules select, plain and
// escaped, split across two reads at every offset: the quick path sees
// only the whole, plain ones; the rest must be masked the same.
func TestQuickKeysSplit(t *testing.T) {
	m := compile(t, path("$..token"), path("$.p", model.ReplacePartial))
	in := `{"a":1,"t\u006fken":"s1","token" : "s2","x":{"to\u006ben":{"k":"s3"},"tokens":"keep1"},` +
		`"\u0074oken":["s4"],"token":"s5","token":"s\u0036","p":"abcdef\u0067hij","tok":"keep2","token":-1.5e1}`
	want := `{"a":1,"t\u006fken":"***","token" : "***","x":{"to\u006ben":"***","tokens":"keep1"},` +
		`"\u0074oken":"***","token":"***","token":"***","p":"***ghij","tok":"keep2","token":"***"}`
	for k := range len(in) + 1 {
		got, err := maskWith(m, ctHeader("application/json"), []byte(in), func(io.Reader) io.Reader {
			return &splitReader{b: []byte(in), cut: k}
		})
		if err != nil || got != want {
			t.Fatalf("split at %d: got %q, %v\nwant %q", k, got, err, want)
		}
	}
}
