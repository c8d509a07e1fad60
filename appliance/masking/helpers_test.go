package masking

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/iotest"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func compile(t testing.TB, rules ...model.MaskingRule) *Masker {
	t.Helper()
	m, err := Compile(rules, Options{HashKey: testKey})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

func path(p string, repl ...string) model.MaskingRule {
	r := model.MaskingRule{JSONPath: p}
	if len(repl) > 0 {
		r.Replacement = repl[0]
	}
	return r
}

func det(d string, repl ...string) model.MaskingRule {
	r := model.MaskingRule{Detector: d}
	if len(repl) > 0 {
		r.Replacement = repl[0]
	}
	return r
}

func rx(re string, repl ...string) model.MaskingRule {
	r := model.MaskingRule{Regex: re}
	if len(repl) > 0 {
		r.Replacement = repl[0]
	}
	return r
}

// mask masks body as a response of content type ct, read through r
// (whole when r is nil).
func maskWith(m *Masker, h http.Header, body []byte, wrap func(io.Reader) io.Reader) (string, error) {
	var src io.Reader = bytes.NewReader(body)
	if wrap != nil {
		src = wrap(src)
	}
	rd, err := m.Wrap(h, io.NopCloser(src))
	if err != nil {
		return "", err
	}
	defer rd.Close()
	out, err := io.ReadAll(rd)
	return string(out), err
}

func ctHeader(ct string) http.Header {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return h
}

// mustMask masks body whole, one byte at a time and in halves, and fails
// unless all three agree.
func mustMask(t *testing.T, m *Masker, ct, body string) string {
	t.Helper()
	whole, err := maskWith(m, ctHeader(ct), []byte(body), nil)
	if err != nil {
		t.Fatalf("mask %q: %v", body, err)
	}
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"one byte at a time": iotest.OneByteReader,
		"halves":             iotest.HalfReader,
	} {
		got, err := maskWith(m, ctHeader(ct), []byte(body), wrap)
		if err != nil {
			t.Fatalf("mask %q %s: %v", body, name, err)
		}
		if got != whole {
			t.Fatalf("mask %q %s:\n got %q\nwant %q", body, name, got, whole)
		}
	}
	return whole
}

// mustRefuse checks that masking body fails with ErrUnmaskable, whole and
// one byte at a time.
func mustRefuse(t *testing.T, m *Masker, h http.Header, body string) {
	t.Helper()
	for _, wrap := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader} {
		out, err := maskWith(m, h.Clone(), []byte(body), wrap)
		if !errors.Is(err, ErrUnmaskable) {
			t.Fatalf("mask %q: got %q, %v; want ErrUnmaskable", body, out, err)
		}
	}
}
