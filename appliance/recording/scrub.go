package recording

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Redacted replaces a secret wherever the recorder finds one.
const Redacted = "[REDACTED]"

// FixedRedactHeaders are removed from every recorded request and
// response, whatever the caller asks: credentials of the planner, of the
// executor, and cookies.
var FixedRedactHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	"X-Api-Key", "X-Auth-Token", "X-Amz-Security-Token",
}

// redactQueryParams have their values replaced in recorded query strings:
// they carry credentials by convention.
var redactQueryParams = map[string]bool{
	"access_token": true, "id_token": true, "refresh_token": true, "client_secret": true,
	"password": true, "api_key": true, "apikey": true,
}

// minSecretLen is the shortest value scrubbed: shorter ones would match
// everywhere and are not credentials anyway.
const minSecretLen = 4

// minEncodedLen is the shortest encoded form (a base64 fragment) scrubbed.
const minEncodedLen = 8

// scrubber removes secret values, in every encoding a recording could
// carry them in, from everything recorded.
type scrubber struct {
	variants [][]byte // longest first
	maxLen   int
}

func newScrubber(secrets []string) *scrubber {
	seen := map[string]bool{}
	var vs [][]byte
	add := func(v string, minLen int) {
		if len(v) >= minLen && !seen[v] {
			seen[v] = true
			vs = append(vs, []byte(v))
		}
	}
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		for _, v := range encodings(s) {
			add(v, minSecretLen)
		}
		for _, v := range base64Fragments(s) {
			add(v, minEncodedLen)
		}
	}
	slices.SortFunc(vs, func(a, b []byte) int { return len(b) - len(a) })
	sc := &scrubber{variants: vs}
	if len(vs) > 0 {
		sc.maxLen = len(vs[0])
	}
	return sc
}

// encodings are the forms of s a recorded string or body may hold: plain,
// hex, URL-encoded and JSON-escaped.
func encodings(s string) []string {
	b := []byte(s)
	out := []string{s, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(s), url.PathEscape(s), percentAll(b, "%%%02X"), percentAll(b, "%%%02x")}
	for _, html := range []bool{true, false} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(s) // encoding a string cannot fail
		j := strings.TrimSuffix(strings.TrimSpace(buf.String()), "\"")[1:]
		out = append(out, j, strings.ReplaceAll(j, "/", `\/`))
	}
	out = append(out, unicodeEscapes(s, "\\u%04x"), unicodeEscapes(s, "\\u%04X"))
	return out
}

func percentAll(b []byte, format string) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, format, c)
	}
	return sb.String()
}

// unicodeEscapes writes every character as a JSON \u escape.
func unicodeEscapes(s string, format string) string {
	var sb strings.Builder
	for _, r := range s {
		if r > 0xFFFF {
			r -= 0x10000
			fmt.Fprintf(&sb, format, 0xD800+(r>>10))
			fmt.Fprintf(&sb, format, 0xDC00+(r&0x3FF))
			continue
		}
		fmt.Fprintf(&sb, format, r)
	}
	return sb.String()
}

// base64Fragments are the parts of s's base64 encoding that do not depend
// on the bytes around it, for each of the three alignments s can have
// inside a longer encoded value ("Basic " credentials, a token inside a
// base64 body), in both alphabets.
func base64Fragments(s string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := range 3 {
			full := enc.EncodeToString(append(make([]byte, k), s...))
			from := (8*k + 5) / 6
			to := 8 * (k + len(s)) / 6
			if to > from {
				out = append(out, full[from:to])
			}
		}
	}
	return out
}

func (s *scrubber) active() bool { return len(s.variants) > 0 }

// bytes returns b with every secret form replaced (b itself when there is
// none).
func (s *scrubber) bytes(b []byte) []byte {
	for _, v := range s.variants {
		if bytes.Contains(b, v) {
			b = bytes.ReplaceAll(b, v, []byte(Redacted))
		}
	}
	return b
}

func (s *scrubber) str(v string) string {
	if !s.active() || v == "" {
		return v
	}
	for _, x := range s.variants {
		if strings.Contains(v, string(x)) {
			v = strings.ReplaceAll(v, string(x), Redacted)
		}
	}
	return v
}

// contains reports whether b holds any secret form.
func (s *scrubber) contains(b []byte) bool {
	for _, v := range s.variants {
		if bytes.Contains(b, v) {
			return true
		}
	}
	return false
}

// trimPartialSuffix drops a tail of b that is the beginning of a secret
// form: a body cut at the cap must not keep half a token.
func (s *scrubber) trimPartialSuffix(b []byte) []byte {
	cut := 0
	for _, v := range s.variants {
		for l := min(len(v)-1, len(b)); l >= minSecretLen && l > cut; l-- {
			if bytes.HasSuffix(b, v[:l]) {
				cut = l
				break
			}
		}
	}
	return b[:len(b)-cut]
}

// split scrubs the part of buf that can be written now and returns the
// tail to hold back: a secret may continue in the next chunk of a stream.
func (s *scrubber) split(buf []byte) (emit, hold []byte) {
	if !s.active() {
		return buf, nil
	}
	b := len(buf) - (s.maxLen - 1)
	if b <= 0 {
		return nil, buf
	}
	// Move the cut before any secret form that straddles it; a match
	// inside the window [b-len+1, b+len-1) always does. b only decreases,
	// so this ends.
	for changed := true; changed; {
		changed = false
		for _, v := range s.variants {
			lo, hi := max(0, b-len(v)+1), min(len(buf), b+len(v)-1)
			if hi-lo < len(v) {
				continue
			}
			if j := bytes.Index(buf[lo:hi], v); j >= 0 {
				b, changed = lo+j, true
			}
		}
	}
	return s.bytes(bytes.Clone(buf[:b])), buf[b:]
}

// headers returns a copy of h without the redacted headers and with
// secrets scrubbed from values, and the sorted names it removed.
func (s *scrubber) headers(h http.Header, redact map[string]bool) (http.Header, []string) {
	if len(h) == 0 {
		return nil, nil
	}
	out := make(http.Header, len(h))
	var removed []string
	for name, values := range h {
		canon := http.CanonicalHeaderKey(name)
		if redact[canon] {
			if !slices.Contains(removed, canon) {
				removed = append(removed, canon)
			}
			continue
		}
		vs := make([]string, len(values))
		for i, v := range values {
			vs[i] = s.str(v)
		}
		out[s.str(name)] = vs
	}
	slices.Sort(removed)
	return out, removed
}

// query scrubs a raw query string: values of credential-named parameters
// are replaced, secrets removed everywhere; the rest is kept as sent.
func (s *scrubber) query(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if hasValue && redactQueryParams[strings.ToLower(name)] {
			parts[i] = p[:strings.IndexByte(p, '=')+1] + url.QueryEscape(Redacted)
		}
	}
	return s.str(strings.Join(parts, "&"))
}

// redactSet is the canonical header names to remove.
func redactSet(extra []string) map[string]bool {
	m := make(map[string]bool, len(FixedRedactHeaders)+len(extra))
	for _, n := range FixedRedactHeaders {
		m[http.CanonicalHeaderKey(n)] = true
	}
	for _, n := range extra {
		if n = strings.TrimSpace(n); n != "" {
			m[http.CanonicalHeaderKey(n)] = true
		}
	}
	return m
}

// printable reports whether b reads as text.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}
