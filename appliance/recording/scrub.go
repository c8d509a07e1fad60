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
//
// Every form is at least minSecretLen (4) bytes long, so an occurrence
// starting at i covers the two bytes at the even offset j (i or i+1) and
// j+1: the form's bytes 0-1 or 1-2. A search reads the input two bytes at
// a time at even offsets, tests them against a 64 Ki-bit set of those
// pairs, and only where one is set compares the forms that start at j-1
// or j (indexed by their first four bytes). The cost of a search is about
// one bit test per two input bytes, whatever the number of secrets and
// forms.
type scrubber struct {
	variants [][]byte // longest first
	maxLen   int
	pairs    []uint64           // bit p is set for bytes 0-1 and 1-2 (little-endian) of every form
	byPrefix map[uint32][]int32 // first four bytes -> forms (longest first)
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
		sc.pairs = make([]uint64, 1<<16/64)
		sc.byPrefix = make(map[uint32][]int32, len(vs))
		for i, v := range vs {
			for _, k := range []int{0, 1} {
				pr := uint32(v[k]) | uint32(v[k+1])<<8
				sc.pairs[pr>>6] |= 1 << (pr & 63)
			}
			p := prefix4(v, 0)
			sc.byPrefix[p] = append(sc.byPrefix[p], int32(i)) //nolint:gosec // far fewer than 2^31 forms
		}
	}
	return sc
}

// prefix4 is the four bytes of s at i, as a little-endian word.
func prefix4[S ~string | ~[]byte](s S, i int) uint32 {
	_ = s[i+3]
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// find returns the position and length of the first (then longest)
// secret form in s at or after from, or -1.
func find[S ~string | ~[]byte](sc *scrubber, s S, from int) (int, int) {
	if len(sc.variants) == 0 {
		return -1, 0
	}
	pairs := sc.pairs
	// j is even relative to from; an occurrence at from-1 is not wanted,
	// so a candidate at j-1 < from is skipped.
	for j := from; j+1 < len(s); j += 2 {
		pr := uint32(s[j]) | uint32(s[j+1])<<8
		if pairs[pr>>6]&(1<<(pr&63)) == 0 {
			continue
		}
		for i := max(j-1, from); i <= j; i++ {
			if n := matchAt(sc, s, i); n > 0 {
				return i, n
			}
		}
	}
	return -1, 0
}

// matchAt returns the length of the longest form at s[i:], or 0.
func matchAt[S ~string | ~[]byte](sc *scrubber, s S, i int) int {
	if i+minSecretLen > len(s) {
		return 0
	}
	for _, vi := range sc.byPrefix[prefix4(s, i)] {
		v := sc.variants[vi]
		if len(s)-i >= len(v) && string(s[i:i+len(v)]) == string(v) {
			return len(v)
		}
	}
	return 0
}

// replace returns s with every secret form replaced by Redacted, and
// whether it changed anything (s itself when not).
func replace[S ~string | ~[]byte](sc *scrubber, s S) (S, bool) {
	i, n := find(sc, s, 0)
	if i < 0 {
		return s, false
	}
	out := make([]byte, 0, len(s))
	last := 0
	for i >= 0 {
		out = append(out, s[last:i]...)
		out = append(out, Redacted...)
		last = i + n
		i, n = find(sc, s, last)
	}
	out = append(out, s[last:]...)
	return S(out), true
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
	// As the payload encoder escapes it (the same as encoding/json's: a
	// duplicate is dropped).
	j := string(appendJSONStrBody(nil, s))
	out = append(out, j, strings.ReplaceAll(j, "/", `\/`))
	out = append(out, unicodeEscapes(s, "\\u%04x"), unicodeEscapes(s, "\\u%04X"))
	return out
}

func percentAll(b []byte, format string) string {
	digits := "0123456789ABCDEF"
	if format == "%%%02x" {
		digits = hexDigits
	}
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '%', digits[c>>4], digits[c&0xF])
	}
	return string(out)
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
	out, _ := replace(s, b)
	return out
}

func (s *scrubber) str(v string) string {
	if !s.active() || v == "" {
		return v
	}
	out, _ := replace(s, v)
	return out
}

// contains reports whether b holds any secret form.
func (s *scrubber) contains(b []byte) bool {
	i, _ := find(s, b, 0)
	return i >= 0
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

// redactQuery replaces the values of credential-named parameters in a raw
// query string; the rest is kept as sent.
func redactQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	changed := false
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if redactQueryParams[strings.ToLower(name)] {
			parts[i] = p[:strings.IndexByte(p, '=')+1] + url.QueryEscape(Redacted)
			changed = true
		}
	}
	if !changed {
		return q
	}
	return strings.Join(parts, "&")
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
