package identity

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{"/jobs", []string{"/jobs"}, []string{"/jobs/", "/Jobs", "/jobs/1", "/job"}},
		{"/jobs/*", []string{"/jobs/1", "/jobs/abc.def", "/jobs/"}, []string{"/jobs", "/jobs/1/logs", "/jobs/1/"}},
		// '*' never crosses '/', even when the rest would line up.
		{"/jobs/*/logs", []string{"/jobs/1/logs"}, []string{"/jobs/1/2/logs", "/jobs//logs/x"}},
		{"/*", []string{"/a", "/"}, []string{"/a/b"}},
		{"/api/v?/x", []string{"/api/v1/x"}, []string{"/api/v/x", "/api/v//x", "/api/v12/x"}},
		// "**" as a segment: zero or more whole segments.
		{"/jobs/**", []string{"/jobs", "/jobs/", "/jobs/1", "/jobs/1/logs/2"}, []string{"/job", "/jobsx", "/jobsx/1", "/other/jobs/1"}},
		{"/a/**/z", []string{"/a/z", "/a/b/z", "/a/b/c/z"}, []string{"/a/bz", "/az", "/a/b/zz"}},
		{"**/z", []string{"z", "/z", "a/b/z"}, []string{"az", "/a/bz"}},
		{"**", []string{"", "/", "/a/b/c"}, nil},
		{"/**", []string{"", "/", "/a/b"}, nil},
		// "**" inside a segment: any characters, '/' included.
		{"repo:octo/app:**", []string{"repo:octo/app:ref:refs/heads/main", "repo:octo/app:"}, []string{"repo:octo/app2:ref", "repo:octo/other:x"}},
		{"repo:octo/app:*", []string{"repo:octo/app:pull_request"}, []string{"repo:octo/app:ref:refs/heads/main"}},
		{"spiffe://prod.example/ns/*/sa/build", []string{"spiffe://prod.example/ns/ci/sa/build"}, []string{"spiffe://prod.example/ns/ci/x/sa/build", "spiffe://evil.example/ns/ci/sa/build"}},
		// Character classes, never matching '/'.
		{"/v[0-9]/x", []string{"/v1/x", "/v9/x"}, []string{"/va/x", "/v10/x"}},
		{"/v[^0-9]/x", []string{"/va/x"}, []string{"/v1/x", "/v//x"}},
		{"/a[!-0]b", []string{"/a!b", "/a.b", "/a0b"}, []string{"/a/b"}},
		{"/a[/]b", nil, []string{"/a/b", "/a[/]b"}},
		{"[z-a]", nil, []string{"m", "a", "z", ""}},
		{`[\]]`, []string{"]"}, []string{`\`}},
		// Escapes make metacharacters literal; regexp metacharacters are
		// literal anyway.
		{`/a\*b`, []string{"/a*b"}, []string{"/axb"}},
		{`/a\[b`, []string{"/a[b"}, nil},
		{"/a.b+c(d)|e$", []string{"/a.b+c(d)|e$"}, []string{"/aXb+c(d)|e$", "/a.bbc(d)|e$"}},
		{"/é/*", []string{"/é/ü"}, []string{"/e/ü"}},
		// Whole-string anchoring.
		{"*.example.com", []string{"api.example.com"}, []string{"api.example.com.evil", "x.api.example.org"}},
		// Newlines are ordinary characters.
		{"a*b", []string{"a\nb"}, []string{"a/b"}},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Errorf("CompileGlob(%q): %v", tt.pattern, err)
			continue
		}
		if g.String() != tt.pattern {
			t.Errorf("String() = %q, want %q", g.String(), tt.pattern)
		}
		for _, s := range tt.match {
			if !g.Match(s) {
				t.Errorf("%q should match %q", tt.pattern, s)
			}
		}
		for _, s := range tt.noMatch {
			if g.Match(s) {
				t.Errorf("%q should not match %q", tt.pattern, s)
			}
		}
	}
}

func TestGlobRejectsWhatPathMatchRejects(t *testing.T) {
	for _, p := range []string{"[", "a[", "[]", "[^]", "[a-]", "[-a]", `a\`, `[\`, "[a", "*[", string([]byte{0xff})} {
		if _, err := CompileGlob(p); err == nil {
			t.Errorf("CompileGlob(%q) accepted a bad pattern", p)
		}
	}
}

// FuzzGlobAgreesWithPathMatch checks that every pattern the model's
// validation (path.Match) accepts compiles, that the bad ones are refused,
// and that where no '/' is involved (so "**" and classes behave the same)
// both agree.
func FuzzGlobAgreesWithPathMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*", "abc"}, {"a?c", "abc"}, {"[a-c]x", "bx"}, {"[^a-c]x", "dx"}, {`\*`, "*"},
		{"**", "ab"}, {"a**b", "axxb"}, {"[", ""}, {"[]]", "]"}, {"[z-a]", "m"}, {`[\-]`, "-"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		// Long inputs only slow path.Match's backtracking down.
		if len(pattern) > 64 || len(name) > 64 || !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return
		}
		want, perr := path.Match(pattern, name)
		g, err := CompileGlob(pattern)
		if (perr != nil) != (err != nil) {
			t.Fatalf("pattern %q: path.Match error %v, CompileGlob error %v", pattern, perr, err)
		}
		if err != nil || strings.Contains(name, "/") || strings.Contains(pattern, "/") {
			return
		}
		if got := g.Match(name); got != want {
			t.Fatalf("pattern %q name %q: Match %v, path.Match %v", pattern, name, got, want)
		}
	})
}
