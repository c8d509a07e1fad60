package identity

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Glob is a compiled pattern used for every matcher of a binding: subjects,
// claim values, client-certificate URI SANs, paths and gRPC method names.
// The syntax is that of path.Match (so every pattern the admin API accepts
// compiles), with '/' as the segment separator and one addition, "**":
//
//   - '*' matches any run of characters, possibly empty, within one
//     segment: never '/'. "/jobs/*" matches "/jobs/1" (and "/jobs/") but
//     not "/jobs/1/logs".
//   - '?' matches one character other than '/'.
//   - '[...]' is a character class as in path.Match ("[a-z]", negated with
//     "[^a-z]"); unlike path.Match, a class never matches '/'.
//   - '\' makes the next character literal.
//   - "**" as a whole segment (between slashes, or at either end next to a
//     slash) matches zero or more whole segments: "/jobs/**" matches "/jobs",
//     "/jobs/" and "/jobs/1/logs"; "/a/**/z" matches "/a/z" and "/a/b/c/z".
//   - "**" inside a segment matches any run of characters, '/' included:
//     "repo:octo/app:**" matches "repo:octo/app:ref:refs/heads/main".
//   - Any other character matches itself; matching is case-sensitive and
//     always covers the whole string.
//
// A pattern without special characters is an exact match. Matching runs in
// time linear in the input (RE2), whatever the pattern.
type Glob struct {
	pattern string
	literal bool
	re      *regexp.Regexp
}

// errBadPattern mirrors path.ErrBadPattern for the wrapped errors below.
var errBadPattern = errors.New("syntax error in glob pattern")

// CompileGlob compiles pattern (see Glob).
func CompileGlob(pattern string) (*Glob, error) {
	if !utf8.ValidString(pattern) {
		return nil, fmt.Errorf("glob %q: %w: not valid UTF-8", pattern, errBadPattern)
	}
	if !strings.ContainsAny(pattern, `*?[\`) {
		return &Glob{pattern: pattern, literal: true}, nil
	}
	expr, err := globToRegexp(pattern)
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		// A translation bug, not a user error; still refuse the pattern
		// rather than match something unintended.
		return nil, fmt.Errorf("glob %q: translating to %q: %w", pattern, expr, err)
	}
	return &Glob{pattern: pattern, re: re}, nil
}

// MustCompileGlob is CompileGlob for patterns known to be valid (tests,
// constants); it panics on a bad pattern.
func MustCompileGlob(pattern string) *Glob {
	g, err := CompileGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// Match reports whether s matches the whole pattern.
func (g *Glob) Match(s string) bool {
	if g.literal {
		return s == g.pattern
	}
	return g.re.MatchString(s)
}

// String returns the pattern as written.
func (g *Glob) String() string { return g.pattern }

// globToRegexp translates a glob into an anchored RE2 expression. Pieces
// are collected in a slice so that a trailing "/**" can take back the slash
// before it (the slash becomes optional: "/jobs/**" matches "/jobs").
func globToRegexp(p string) (string, error) {
	var out []string
	for i := 0; i < len(p); {
		c := p[i]
		switch c {
		case '*':
			j := i
			for j < len(p) && p[j] == '*' {
				j++
			}
			if j-i == 1 {
				out = append(out, `[^/]*`)
				i = j
				continue
			}
			startsSegment := i == 0 || p[i-1] == '/'
			endsSegment := j == len(p) || p[j] == '/'
			switch {
			case startsSegment && endsSegment && j < len(p):
				// "**/": zero or more segments, each with its slash.
				out = append(out, `(?:.*/)?`)
				j++ // the slash is part of the group
			case startsSegment && endsSegment && i > 0:
				// Trailing "/**": the slash itself becomes optional.
				out = out[:len(out)-1]
				out = append(out, `(?:/.*)?`)
			default:
				// The whole pattern "**", or "**" within a segment.
				out = append(out, `.*`)
			}
			i = j
		case '?':
			out = append(out, `[^/]`)
			i++
		case '\\':
			if i+1 >= len(p) {
				return "", fmt.Errorf("%w: trailing backslash", errBadPattern)
			}
			r, n := utf8.DecodeRuneInString(p[i+1:])
			out = append(out, regexp.QuoteMeta(string(r)))
			i += 1 + n
		case '[':
			class, n, err := translateClass(p[i:])
			if err != nil {
				return "", err
			}
			out = append(out, class)
			i += n
		default:
			r, n := utf8.DecodeRuneInString(p[i:])
			out = append(out, regexp.QuoteMeta(string(r)))
			i += n
		}
	}
	return `^(?s:` + strings.Join(out, "") + `)$`, nil
}

// runeRange is an inclusive range of a character class.
type runeRange struct{ lo, hi rune }

// translateClass translates the class at the start of s ("[...]") with the
// grammar of path.Match, and returns the expression and the bytes consumed.
// '/' is removed from the class: a class never crosses a segment.
func translateClass(s string) (string, int, error) {
	i := 1
	negated := false
	if i < len(s) && s[i] == '^' {
		negated = true
		i++
	}
	var ranges []runeRange
	for {
		if i >= len(s) {
			return "", 0, fmt.Errorf("%w: unterminated character class", errBadPattern)
		}
		if s[i] == ']' && len(ranges) > 0 {
			i++
			break
		}
		lo, n, err := classChar(s[i:])
		if err != nil {
			return "", 0, err
		}
		i += n
		hi := lo
		if i < len(s) && s[i] == '-' {
			hi, n, err = classChar(s[i+1:])
			if err != nil {
				return "", 0, err
			}
			i += 1 + n
		}
		ranges = append(ranges, runeRange{lo, hi})
	}

	var b strings.Builder
	if negated {
		// Everything but the listed characters and '/'.
		b.WriteString(`[^`)
		for _, r := range ranges {
			if r.lo <= r.hi {
				writeRange(&b, r)
			}
		}
		b.WriteString(`/]`)
		return b.String(), i, nil
	}
	for _, r := range ranges {
		// Split each range around '/' so the class cannot match it.
		for _, part := range withoutSlash(r) {
			writeRange(&b, part)
		}
	}
	if b.Len() == 0 {
		// An empty class ("[z-a]", "[/]") matches nothing, as in path.Match.
		return `[^\x00-\x{10FFFF}]`, i, nil
	}
	return `[` + b.String() + `]`, i, nil
}

// classChar reads one class character, possibly escaped, as path.Match
// does: an unescaped '-' or ']' here is a syntax error.
func classChar(s string) (rune, int, error) {
	if s == "" || s[0] == '-' || s[0] == ']' {
		return 0, 0, fmt.Errorf("%w: bad character class", errBadPattern)
	}
	n := 0
	if s[0] == '\\' {
		n = 1
		s = s[1:]
		if s == "" {
			return 0, 0, fmt.Errorf("%w: bad character class", errBadPattern)
		}
	}
	r, w := utf8.DecodeRuneInString(s)
	return r, n + w, nil
}

// withoutSlash returns r minus '/'; a reversed range (lo > hi) matches
// nothing, as in path.Match.
func withoutSlash(r runeRange) []runeRange {
	switch {
	case r.lo > r.hi:
		return nil
	case r.hi < '/' || r.lo > '/':
		return []runeRange{r}
	}
	var parts []runeRange
	if r.lo < '/' {
		parts = append(parts, runeRange{r.lo, '/' - 1})
	}
	if r.hi > '/' {
		parts = append(parts, runeRange{'/' + 1, r.hi})
	}
	return parts
}

// writeRange writes r as RE2 class items, every character as \x{...} so no
// character can be mistaken for class syntax.
func writeRange(b *strings.Builder, r runeRange) {
	b.WriteString(`\x{` + strconv.FormatInt(int64(r.lo), 16) + `}`)
	if r.hi != r.lo {
		b.WriteString(`-\x{` + strconv.FormatInt(int64(r.hi), 16) + `}`)
	}
}
