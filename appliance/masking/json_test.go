package masking

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

func TestJSONPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []model.MaskingRule
		in    string
		want  string
	}{
		{"member", []model.MaskingRule{path("$.password")},
			`{"user":"al","password":"hunter2"}`, `{"user":"al","password":"***"}`},
		{"nested array wildcard", []model.MaskingRule{path("$.data[*].password")},
			`{"data":[{"password":"a","n":1},{"password":"b"},{"x":{"password":"c"}}],"password":"top"}`,
			`{"data":[{"password":"***","n":1},{"password":"***"},{"x":{"password":"c"}}],"password":"top"}`},
		{"descendant", []model.MaskingRule{path("$..token")},
			`{"token":"a","x":[{"token":"b"},{"y":{"token":{"deep":1}}}]}`,
			`{"token":"***","x":[{"token":"***"},{"y":{"token":"***"}}]}`},
		{"index", []model.MaskingRule{path("$.items[1]")},
			`{"items":["a","b","c"]}`, `{"items":["a","***","c"]}`},
		{"root array", []model.MaskingRule{path("$[0].k")},
			`[{"k":1},{"k":2}]`, `[{"k":"***"},{"k":2}]`},
		{"quoted name", []model.MaskingRule{path("$['api key']")},
			`{"api key":"k","api":"v"}`, `{"api key":"***","api":"v"}`},
		{"member wildcard", []model.MaskingRule{path("$.secrets.*")},
			`{"secrets":{"a":"1","b":[2]},"other":"3"}`, `{"secrets":{"a":"***","b":"***"},"other":"3"}`},
		{"descendant wildcard", []model.MaskingRule{path("$.vault..*")},
			`{"vault":{"a":{"b":1}},"x":1}`, `{"vault":{"a":"***"},"x":1}`},
		{"numbers literals containers", []model.MaskingRule{path("$.a"), path("$.b"), path("$.c"), path("$.d")},
			`{"a":12.5e3,"b":true,"c":null,"d":{"e":[1,2]},"f":false}`,
			`{"a":"***","b":"***","c":"***","d":"***","f":false}`},
		{"whitespace kept", []model.MaskingRule{path("$.p")},
			"{\n  \"p\" : \"x\" ,\n  \"q\" : [ 1 , 2 ]\n}\n", "{\n  \"p\" : \"***\" ,\n  \"q\" : [ 1 , 2 ]\n}\n"},
		{"unmatched escapes kept", []model.MaskingRule{path("$.p")},
			`{"q":"a\u00e9\n\"b\"","p":"\u0041"}`, `{"q":"a\u00e9\n\"b\"","p":"***"}`},
		{"partial", []model.MaskingRule{path("$.card", model.ReplacePartial), path("$.pin", model.ReplacePartial), path("$.n", model.ReplacePartial)},
			`{"card":"4111 1111 1111 1234","pin":"1234","n":123456789}`,
			`{"card":"***1234","pin":"***","n":"***6789"}`},
		{"partial keeps whole characters", []model.MaskingRule{path("$.s", model.ReplacePartial)},
			`{"s":"abcdé€\ud83d\ude00x"}`, `{"s":"***é€😀x"}`},
		{"first rule wins", []model.MaskingRule{path("$.a", model.ReplacePartial), path("$..a")},
			`{"a":"abcdefgh"}`, `{"a":"***efgh"}`},
		{"empty containers", []model.MaskingRule{path("$.a")},
			`{"a":{},"b":[],"c":{"a":[]}}`, `{"a":"***","b":[],"c":{"a":[]}}`},
		{"empty body", []model.MaskingRule{path("$.a")}, "", ""},
		{"whitespace body", []model.MaskingRule{path("$.a")}, " \n", " \n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := compile(t, tc.rules...)
			got := mustMask(t, m, "application/json", tc.in)
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if strings.TrimSpace(tc.in) != "" && !json.Valid([]byte(got)) {
				t.Fatalf("output is not JSON: %s", got)
			}
		})
	}
}

// A key written with \u escapes is the same key: it must not slip past a
// json_path.
func TestJSONEscapedKeysAreMatchedDecoded(t *testing.T) {
	m := compile(t, path("$.password"), path("$..secret"))
	for _, in := range []string{
		`{"\u0070assword":"hunter2"}`,
		`{"p\u0061ssword":"hunter2"}`,
		`{"\u0070\u0061\u0073\u0073\u0077\u006f\u0072\u0064":"hunter2"}`,
		`{"pass\u0077ord":"hunter2"}`,
		`{"x":{"\u0073ecret":"hunter2"}}`,
		`{"x":[{"s\u0065cr\u0065t":"hunter2"}]}`,
	} {
		got := mustMask(t, m, "application/json", in)
		if strings.Contains(got, "hunter2") {
			t.Errorf("%s -> %s", in, got)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s -> invalid JSON %s", in, got)
		}
	}
	// A key that only looks the same is not the same key.
	if got := mustMask(t, m, "application/json", `{"passwor\u0064x":"v"}`); !strings.Contains(got, `"v"`) {
		t.Errorf("a different key was masked: %s", got)
	}
}

// Values are matched on their decoded form: escapes do not hide text
// from detectors or regular expressions.
func TestJSONEscapedValuesAreMatchedDecoded(t *testing.T) {
	m := compile(t, det("email"), det("payment_card"), rx(`sk_live_[a-z0-9]+`))
	for in, secret := range map[string]string{
		`{"e":"alice\u0040example.com"}`:                    "alice",
		`{"e":"\u0061lice@example.com"}`:                    "example.com",
		`{"c":"\u0034111111111111111"}`:                     "111111111111",
		`{"c":"4111\u00201111\u00201111\u00201111"}`:        "1111",
		`{"k":"sk\u005flive_abc123"}`:                       "abc123",
		`{"k":"sk_live_\u0061bc123"}`:                       "bc123",
		`{"e":"mail \"alice@example.com\" now"}`:            "alice",
		`["x","\ud83d\ude00 bob@example.org \ud83d\ude00"]`: "bob",
	} {
		got := mustMask(t, m, "application/json", in)
		if strings.Contains(got, secret) {
			t.Errorf("%s -> %s", in, got)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s -> invalid JSON %s", in, got)
		}
	}
}

// Text rules apply to keys and numbers too; a matching number becomes a
// string.
func TestJSONTextRulesOnKeysAndNumbers(t *testing.T) {
	m := compile(t, det("email"), det("payment_card", model.ReplacePartial))
	got := mustMask(t, m, "application/json", `{"alice@example.com":{"card":4111111111111111,"n":42}}`)
	want := `{"***":{"card":"***1111","n":42}}`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// Every duplicate of a key is masked, whichever one a client would keep.
func TestJSONDuplicateKeysAllMasked(t *testing.T) {
	m := compile(t, path("$.token"), path("$.user.ssn"))
	in := `{"token":"first","token":"second","user":{"ssn":"a"},"user":{"ssn":"b","ssn":"c"},"t\u006fken":"third"}`
	got := mustMask(t, m, "application/json", in)
	for _, s := range []string{"first", "second", "third", `"a"`, `"b"`, `"c"`} {
		if strings.Contains(got, s) {
			t.Fatalf("%s survived: %s", s, got)
		}
	}
	// What Go's encoding/json keeps (the last) is masked too.
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(got), &v); err != nil || v.Token != "***" {
		t.Fatalf("decoded token %q (%v)", v.Token, err)
	}
}

func TestJSONHash(t *testing.T) {
	m := compile(t, path("$..id", model.ReplaceHash), det("email", model.ReplaceHash))
	got := mustMask(t, m, "application/json",
		`{"a":{"id":"alice@example.com"},"b":{"id":"alic\u0065@example.com"},"c":"alice@example.com","d":{"id":{"x": [1, "y"]}},"e":{"id":{"x":[1,"y"]}}}`)
	var v struct {
		A, B, D, E struct{ ID string }
		C          string
	}
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !strings.HasPrefix(v.A.ID, "hash:") || len(v.A.ID) != len("hash:")+32 {
		t.Fatalf("hash %q", v.A.ID)
	}
	// The same value hashes the same, escaped or not, by a path or by a
	// detector; a container hashes by its content, whatever its spacing.
	if v.A.ID != v.B.ID || v.A.ID != v.C {
		t.Fatalf("hashes differ: %q %q %q", v.A.ID, v.B.ID, v.C)
	}
	if v.D.ID != v.E.ID || v.D.ID == v.A.ID {
		t.Fatalf("container hashes: %q %q", v.D.ID, v.E.ID)
	}
	// Another appliance's key gives other hashes.
	m2, err := Compile([]model.MaskingRule{det("email", model.ReplaceHash)}, Options{HashKey: []byte("another key of sixteen+ bytes")})
	if err != nil {
		t.Fatal(err)
	}
	if got2 := mustMask(t, m2, "application/json", `"alice@example.com"`); got2 == `"`+v.C+`"` {
		t.Fatal("the hash does not depend on the key")
	}
}

func TestJSONMalformedIsRefused(t *testing.T) {
	m := compile(t, path("$.password"))
	h := ctHeader("application/json")
	for _, in := range []string{
		`{"password":"x"`,
		`{"password":"x",}`,
		`{"password" "x"}`,
		`{"password":"x"}{"password":"y"}`,
		`{"password":"x"} trailing`,
		`["a",]`,
		`{"a":01}`,
		`{"a":1.}`,
		`{"a":-}`,
		`{"a":tru}`,
		`{"a":nul1}`,
		`{"a":"\x"}`,
		`{"a":"\u12"}`,
		"{\"a\":\"line\nbreak\"}",
		`{'a':1}`,
		`{"a":1]`,
		`[1}`,
		"\xef\xbb\xbf{}",
		`{"a":"unterminated`,
		`NaN`,
	} {
		mustRefuse(t, m, h, in)
	}
	// Nesting deeper than the bound.
	deep := strings.Repeat("[", 600) + strings.Repeat("]", 600)
	mustRefuse(t, m, h, deep)
	// A key longer than the bound.
	mustRefuse(t, m, h, `{"`+strings.Repeat("k", 70<<10)+`":1}`)
	mustRefuse(t, m, h, `[`+strings.Repeat("1", 70<<10)+`]`)
}

// String values of any length stream through; a detector still finds a
// match at the end of a long one.
func TestJSONLongStringsStream(t *testing.T) {
	m := compile(t, det("email"), path("$.skip"))
	long := strings.Repeat("lorem ipsum ", 400_000) // ~4.8 MB
	in := `{"doc":"` + long + `bob@example.com","skip":"` + long + `"}`
	got, err := maskWith(m, ctHeader("application/json"), []byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"doc":"` + long + `***","skip":"***"}`
	if got != want {
		t.Fatalf("long string masked wrong (len %d, want %d)", len(got), len(want))
	}
}

func TestJSONLines(t *testing.T) {
	m := compile(t, path("$.pw"), det("email"))
	for _, ct := range []string{"application/x-ndjson", "application/jsonl", "application/json-seq"} {
		in := "{\"pw\":\"a\",\"n\":1}\n{\"pw\":\"b\",\"e\":\"x@example.com\"}\n\n\x1e{\"pw\":\"c\"}\n"
		got := mustMask(t, m, ct, in)
		want := "{\"pw\":\"***\",\"n\":1}\n{\"pw\":\"***\",\"e\":\"***\"}\n\n\x1e{\"pw\":\"***\"}\n"
		if got != want {
			t.Fatalf("%s: got %q, want %q", ct, got, want)
		}
	}
	mustRefuse(t, m, ctHeader("application/x-ndjson"), "{\"pw\":\"a\"}\n{\"pw\":\"b\"\n")
}

// Many JSON documents, each masked whole and split at every byte,
// agree: the tokenizer has no chunk-boundary bugs.
func TestJSONEverySplitAgrees(t *testing.T) {
	m := compile(t, path("$..password"), path("$.list[*]", model.ReplaceHash), det("email"), det("jwt"), rx(`secret-[0-9]+`, model.ReplacePartial))
	in := `{"list":[1,"two",{"3":[true,null]}],"user":{"pass\u0077ord":"p\u00e9\ud83d\ude00","email":"a.b@example.com"},` +
		`"tok":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_-","note":"secret-123456 and \"quoted\" \\ back","n":-1.5e+3}`
	whole, err := maskWith(m, ctHeader("application/json"), []byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid([]byte(whole)) {
		t.Fatalf("invalid JSON: %s", whole)
	}
	for _, s := range []string{"a.b@", "eyJ", "p\\u00e9", "secret-12"} {
		if strings.Contains(whole, s) {
			t.Fatalf("%q survived: %s", s, whole)
		}
	}
	for cut := 1; cut < len(in); cut++ {
		got, err := maskWith(m, ctHeader("application/json"), []byte(in), func(io.Reader) io.Reader {
			return &splitReader{b: []byte(in), cut: cut}
		})
		if err != nil || got != whole {
			t.Fatalf("split at %d: %v\n got %s\nwant %s", cut, err, got, whole)
		}
	}
}

// splitReader returns b in two reads, cut at cut.
type splitReader struct {
	b   []byte
	cut int
	n   int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if s.n >= len(s.b) {
		return 0, io.EOF
	}
	end := len(s.b)
	if s.n < s.cut {
		end = s.cut
	}
	k := copy(p, s.b[s.n:end])
	s.n += k
	return k, nil
}

func TestMaskedHeadersAndEmptyRules(t *testing.T) {
	m := compile(t, path("$.a"))
	h := http.Header{"Content-Type": {"application/json"}, "Content-Length": {"9"}, "Etag": {`"abc"`}, "Accept-Ranges": {"bytes"}, "Content-Md5": {"x"}}
	if _, err := maskWith(m, h, []byte(`{"a":"b"}`), nil); err != nil {
		t.Fatal(err)
	}
	if h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "" || h.Get("Content-Md5") != "" || h.Get("Etag") != `W/"abc"` {
		t.Fatalf("headers %v", h)
	}
	var none *Masker
	if none.Active() || compile(t).Active() || !m.Active() {
		t.Fatal("Active")
	}
}
