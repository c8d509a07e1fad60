package masking

import (
	"cmp"
	"slices"
)

// find returns the merged spans the text rules match in b: overlapping
// matches of any rules become one span, masked with the replacement of
// the earliest rule among them. The result is in st.spans (reused).
func (st *state) find(b []byte) []span {
	spans := st.spans[:0]
	for i := range st.m.text {
		r := &st.m.text[i]
		if r.det != nil {
			spans = r.det.find(b, spans, r.idx)
			continue
		}
		for _, loc := range r.re.FindAllIndex(b, -1) {
			if loc[1] > loc[0] {
				spans = append(spans, span{loc[0], loc[1], r.idx})
			}
		}
	}
	if len(spans) > 1 {
		slices.SortFunc(spans, func(a, b span) int {
			return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.rule, b.rule))
		})
		merged := spans[:1]
		for _, s := range spans[1:] {
			last := &merged[len(merged)-1]
			if s.start < last.end {
				last.end = max(last.end, s.end)
				last.rule = min(last.rule, s.rule)
				continue
			}
			merged = append(merged, s)
		}
		spans = merged
	}
	st.spans = spans
	return spans
}

// maskAll appends b to dst with every text rule applied, escaped as JSON
// string content when escape is set. It reports whether anything matched.
func (st *state) maskAll(dst, b []byte, escape bool) ([]byte, bool) {
	spans := st.find(b)
	if len(spans) == 0 {
		return appendText(dst, b, escape), false
	}
	pos := 0
	var tmp [64]byte
	for _, s := range spans {
		dst = appendText(dst, b[pos:s.start], escape)
		dst = appendText(dst, st.replace(tmp[:0], st.m.repls[s.rule], b[s.start:s.end]), escape)
		pos = s.end
	}
	return appendText(dst, b[pos:], escape), true
}

// appendText appends b, escaped as JSON string content if escape is set.
func appendText(dst, b []byte, escape bool) []byte {
	if !escape {
		return append(dst, b...)
	}
	return appendEscaped(dst, b)
}

// textStream masks text that arrives in pieces with bounded memory: it
// holds back the last Window bytes (a match may continue into the next
// piece) and masks what comes before once it has twice that much. Matches
// that start before the held-back part are complete unless longer than
// the window.
type textStream struct {
	st     *state
	out    *[]byte
	escape bool // output is JSON string content
	buf    []byte
}

func (t *textStream) write(p []byte) {
	t.buf = append(t.buf, p...)
	if len(t.buf) >= 2*t.st.m.lim.Window {
		t.flush(false)
	}
}

// close masks and emits everything held.
func (t *textStream) close() {
	t.flush(true)
	t.buf = t.buf[:0]
}

// boundaryBack is how far flush looks back for a delimiter to cut at.
const boundaryBack = 256

func (t *textStream) flush(eof bool) {
	b := t.buf
	if len(b) == 0 {
		return
	}
	limit := len(b)
	if !eof {
		limit -= t.st.m.lim.Window
	}
	out := *t.out
	pos := 0
	var tmp [64]byte
	for _, s := range t.st.find(b) {
		if s.start >= limit {
			break
		}
		out = appendText(out, b[pos:s.start], t.escape)
		out = appendText(out, t.st.replace(tmp[:0], t.st.m.repls[s.rule], b[s.start:s.end]), t.escape)
		pos = s.end
	}
	end := max(limit, pos)
	if !eof {
		// Cut after a delimiter when there is one close by, so that the
		// next round does not start inside a word (where a detector
		// could see half a token as a whole one).
		for k := end - 1; k >= pos && k >= end-boundaryBack; k-- {
			if isDelimiter(b[k]) {
				end = k + 1
				break
			}
		}
	}
	out = appendText(out, b[pos:end], t.escape)
	*t.out = out
	n := copy(t.buf, b[end:])
	t.buf = t.buf[:n]
}

func isDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '"', '\'', '<', '>', ',', ';', '(', ')', '[', ']', '{', '}':
		return true
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends b as JSON string content: quote, backslash and
// control characters escaped, everything else (including bytes that are
// not UTF-8) as is, so that content without escapes is unchanged.
func appendEscaped(dst, b []byte) []byte {
	start := 0
	for i, c := range b {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, b[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(dst, b[start:]...)
}
