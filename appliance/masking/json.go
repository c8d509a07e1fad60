package masking

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// What the JSON tokenizer expects next.
const (
	jTop      = iota // between top-level values
	jValue           // a value (after ':' or ',' in an array)
	jArrFirst        // a value or ']'
	jObjFirst        // a key or '}'
	jKey             // a key
	jColon           // ':'
	jAfter           // ',' or the container's end
	jString          // inside a string (key or value)
	jNumber          // inside a number
	jLiteral         // inside true, false or null
)

// Where a string's content goes.
const (
	tVerbatim = iota // copied as is (no text rules, not replaced)
	tText            // masked by the text rules as it streams
	tKey             // collected: an object key
	tSkip            // inside a replaced value: hashed or dropped
)

// frame is an open object or array.
type frame struct {
	obj   bool
	index int      // next element index (arrays)
	set   []pstate // path positions at this container
}

// jsonProc masks a stream of JSON as it arrives, with memory bounded by
// the nesting depth, the path rules and the longest key or number (string
// values are streamed): values a json_path selects are replaced whole
// (every duplicate key included, keys compared after decoding escapes),
// and the text rules run over every string value, key and number after
// decoding escapes. The output is the input with those replacements;
// whitespace and escapes elsewhere are kept.
type jsonProc struct {
	st    *state
	out   *[]byte
	multi bool // a sequence of values (JSON lines, JSON text sequences)
	done  bool // single: the value has been read

	mode  int
	stack []frame
	run   int // start in the current chunk of bytes to copy as is, or -1

	// the current string
	target  int
	isKey   bool
	err     error // sticky, from a string's content
	esc     int   // 0, 1 after '\', 2-5 in \uXXXX
	hex     rune
	high    rune // pending high surrogate
	key     []byte
	keyText bool // the key is masked by text rules (not copied)
	text    textStream

	tok         []byte // number or literal so far
	lit         string // literal expected
	member      []pstate
	memberMatch int
	next        []pstate
	root        []pstate

	// the value being replaced (skip > 0 while inside it)
	skip      bool
	replDepth int
	replRule  int // index in Masker.paths
	replStr   bool
	tail      []byte // partial: the last bytes of a scalar
	runes     int
	hbuf      []byte // canonical bytes waiting for the HMAC
}

var errTruncated = errors.New("truncated JSON")

// quickPaths enables the shortcuts for plain keys and string values that
// are whole in one read (quickKey, beginValue). Tests turn it off to
// compare with the general path.
var quickPaths = true

func newJSONProc(st *state, out *[]byte, multi bool) *jsonProc {
	j := &jsonProc{}
	j.init(st, out, multi)
	return j
}

// init makes j a new processor for st, out and multi, keeping only the
// capacity of its scratch slices (a pooled processor is reused this way:
// nothing of the previous response survives but bytes past the slices'
// lengths, which are always written before they are read).
func (j *jsonProc) init(st *state, out *[]byte, multi bool) {
	*j = jsonProc{
		st: st, out: out, multi: multi, run: -1,
		stack: j.stack[:0], key: j.key[:0], tok: j.tok[:0],
		member: j.member[:0], next: j.next[:0], root: j.root[:0],
		tail: j.tail[:0], hbuf: j.hbuf[:0],
		text: textStream{st: st, out: out, escape: true, buf: j.text.buf[:0]},
	}
	for i := range st.m.paths {
		j.root = append(j.root, pstate{uint16(i), 0})
	}
}

// reset prepares j for another document.
func (j *jsonProc) reset() {
	j.done, j.mode, j.stack, j.run = false, jTop, j.stack[:0], -1
	j.esc, j.high, j.skip = 0, 0, false
	j.text.buf = j.text.buf[:0]
}

func jsonError(format string, args ...any) error {
	return fmt.Errorf("%w: malformed JSON: %s", ErrUnmaskable, fmt.Sprintf(format, args...))
}

// keep marks p[i] to be copied as is, unless inside a replaced value.
func (j *jsonProc) keep(i int) {
	if j.skip {
		return
	}
	if j.run < 0 {
		j.run = i
	}
}

// drop ends the bytes copied as is before p[i]: what comes next is
// transformed or dropped.
func (j *jsonProc) drop(p []byte, i int) {
	if j.run >= 0 {
		*j.out = append(*j.out, p[j.run:i]...)
		j.run = -1
	}
}

func (j *jsonProc) write(p []byte) error {
	j.run = -1
	i := 0
	for i < len(p) {
		var err error
		if j.mode == jString {
			i, err = j.scanString(p, i)
		} else {
			i, err = j.step(p, i)
		}
		if err != nil {
			return err
		}
	}
	j.drop(p, len(p))
	return nil
}

func (j *jsonProc) close() error {
	if j.mode == jNumber {
		if err := j.endNumber(nil, 0); err != nil {
			return err
		}
	}
	if j.mode != jTop || len(j.stack) > 0 {
		return jsonError("%v", errTruncated)
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// step consumes at least one byte at p[i] and returns where to go on.
func (j *jsonProc) step(p []byte, i int) (int, error) {
	c := p[i]
	switch j.mode {
	case jString:
		return j.scanString(p, i)
	case jNumber:
		k := i
		for k < len(p) && isNumByte(p[k]) {
			k++
		}
		if k == i {
			return i, j.endNumber(p, i)
		}
		if len(j.tok)+k-i > j.st.m.lim.MaxTokenBytes {
			return 0, fmt.Errorf("%w: a JSON number is longer than %d bytes", ErrUnmaskable, j.st.m.lim.MaxTokenBytes)
		}
		j.tok = append(j.tok, p[i:k]...)
		if j.numVerbatim() {
			j.keep(i)
		}
		return k, nil
	case jLiteral:
		if c != j.lit[len(j.tok)] {
			return 0, jsonError("unexpected %q in a literal", c)
		}
		j.tok = append(j.tok, c)
		j.keep(i)
		if len(j.tok) == len(j.lit) {
			j.hfeed(j.tok)
			j.partialScalar(j.tok)
			j.endValue(p, i+1)
		}
		return i + 1, nil
	}
	if isSpace(c) || c == 0x1e && j.multi && j.mode == jTop {
		j.keep(i)
		return i + 1, nil
	}
	switch j.mode {
	case jTop:
		if j.done && !j.multi {
			return 0, jsonError("data after the JSON value")
		}
		return j.beginValue(p, i)
	case jValue:
		return j.beginValue(p, i)
	case jArrFirst:
		if c == ']' {
			return j.closeContainer(p, i, false)
		}
		return j.beginValue(p, i)
	case jObjFirst, jKey:
		if c == '}' && j.mode == jObjFirst {
			return j.closeContainer(p, i, true)
		}
		if c != '"' {
			return 0, jsonError("expected a key, got %q", c)
		}
		if k, ok, err := j.quickKey(p, i); ok {
			return k, err
		}
		j.beginString(p, i, tKey)
		return i + 1, nil
	case jColon:
		if c != ':' {
			return 0, jsonError("expected ':', got %q", c)
		}
		j.keep(i)
		j.hfeed1(c)
		j.mode = jValue
		return i + 1, nil
	case jAfter:
		f := &j.stack[len(j.stack)-1]
		switch {
		case c == ',':
			j.keep(i)
			j.hfeed1(c)
			j.mode = jValue
			if f.obj {
				j.mode = jKey
				if i+1 < len(p) && p[i+1] == '"' {
					if k, ok, err := j.quickKey(p, i+1); ok {
						return k, err
					}
				}
			}
			return i + 1, nil
		case c == '}' && f.obj, c == ']' && !f.obj:
			return j.closeContainer(p, i, f.obj)
		}
		return 0, jsonError("expected ',' or the end of the container, got %q", c)
	}
	return 0, jsonError("tokenizer state %d", j.mode)
}

// quickKey handles the key whose opening quote is p[i] when it can be
// matched in place: no escapes, whole in p, neither hashed (inside a
// replaced value) nor masked by text rules. It consumes the key and the
// ':' after it when that is in p too, and begins the value when it
// follows at once. Otherwise it does nothing and reports false:
// beginString and scanString handle the key.
func (j *jsonProc) quickKey(p []byte, i int) (int, bool, error) {
	if j.skip || len(j.st.m.text) > 0 || !quickPaths {
		return 0, false, nil
	}
	k := i + 1 + stringRun(p[i+1:])
	if k == len(p) || p[k] != '"' || k-i-1 > j.st.m.lim.MaxTokenBytes {
		return 0, false, nil
	}
	j.keep(i)
	if len(j.st.m.paths) > 0 {
		f := &j.stack[len(j.stack)-1]
		j.member, j.memberMatch = j.st.m.childSet(j.member, f.set, p[i+1:k], 0, true)
	}
	j.mode = jColon
	k++
	for k < len(p) && isSpace(p[k]) {
		k++
	}
	if k < len(p) && p[k] == ':' {
		j.mode = jValue
		k++
		if k < len(p) && !isSpace(p[k]) {
			k, err := j.beginValue(p, k)
			return k, true, err
		}
	}
	return k, true, nil
}

// beginValue starts the value at p[i]: it works out the value's path
// positions and whether a json_path replaces it.
func (j *jsonProc) beginValue(p []byte, i int) (int, error) {
	c := p[i]
	var set []pstate
	if !j.skip && len(j.st.m.paths) > 0 {
		matched := -1
		switch {
		case len(j.stack) == 0:
			set = j.root
		case j.stack[len(j.stack)-1].obj:
			set = j.member
			matched = j.memberMatch
		default:
			f := &j.stack[len(j.stack)-1]
			j.next, matched = j.st.m.childSet(j.next, f.set, nil, f.index, false)
			set = j.next
		}
		if matched >= 0 {
			j.drop(p, i)
			j.skip, j.replDepth, j.replRule = true, len(j.stack), matched
			j.replStr = c == '"'
			j.tail, j.runes, j.hbuf = j.tail[:0], 0, j.hbuf[:0]
			if j.replacement() == replHash {
				j.st.macReset()
			}
			set = nil
		}
	}
	if len(j.stack) > 0 && !j.stack[len(j.stack)-1].obj {
		j.stack[len(j.stack)-1].index++
	}
	switch {
	case c == '{' || c == '[':
		if len(j.stack) >= j.st.m.lim.MaxDepth {
			return 0, fmt.Errorf("%w: JSON nested deeper than %d", ErrUnmaskable, j.st.m.lim.MaxDepth)
		}
		j.keep(i)
		j.hfeed1(c)
		if len(j.stack) < cap(j.stack) {
			j.stack = j.stack[:len(j.stack)+1]
		} else {
			j.stack = append(j.stack, frame{})
		}
		f := &j.stack[len(j.stack)-1]
		f.obj, f.index = c == '{', 0
		f.set = append(f.set[:0], set...)
		j.mode = jArrFirst
		if f.obj {
			j.mode = jObjFirst
		}
		return i + 1, nil
	case c == '"':
		t := tVerbatim
		switch {
		case j.skip:
			t = tSkip
		case len(j.st.m.text) > 0:
			t = tText
		}
		if t == tVerbatim && quickPaths {
			// A plain string whole in p: nothing to do but keep it.
			if k := i + 1 + stringRun(p[i+1:]); k < len(p) && p[k] == '"' {
				j.keep(i)
				j.endValue(p, k+1)
				return k + 1, nil
			}
		}
		j.beginString(p, i, t)
		return i + 1, nil
	case c == '-' || isDigit(c):
		j.tok = append(j.tok[:0], c)
		j.mode = jNumber
		if j.numVerbatim() {
			j.keep(i)
		} else {
			j.drop(p, i)
		}
		return i + 1, nil
	case c == 't' || c == 'f' || c == 'n':
		switch c {
		case 't':
			j.lit = "true"
		case 'f':
			j.lit = "false"
		default:
			j.lit = "null"
		}
		j.tok = append(j.tok[:0], c)
		j.mode = jLiteral
		j.keep(i)
		return i + 1, nil
	}
	return 0, jsonError("unexpected %q where a value should be", c)
}

// numVerbatim reports whether number bytes are copied as is.
func (j *jsonProc) numVerbatim() bool { return !j.skip && len(j.st.m.text) == 0 }

func (j *jsonProc) replacement() replacement { return j.st.m.paths[j.replRule].repl }

func (j *jsonProc) closeContainer(p []byte, i int, obj bool) (int, error) {
	j.keep(i)
	if obj {
		j.hfeed1('}')
	} else {
		j.hfeed1(']')
	}
	j.stack = j.stack[:len(j.stack)-1]
	j.endValue(p, i+1)
	return i + 1, nil
}

// endValue ends a value whose last byte is before p[i]: a replaced value
// is replaced now.
func (j *jsonProc) endValue(p []byte, i int) {
	if j.skip && j.replDepth == len(j.stack) {
		j.drop(p, i)
		out := append(*j.out, '"')
		var tmp [64]byte
		var r []byte
		switch j.replacement() {
		case replHash:
			j.flushHash()
			r = j.st.hashSum(tmp[:0])
		case replPartial:
			r = appendPartial(tmp[:0], j.tail, j.runes)
		default:
			r = append(tmp[:0], "***"...)
		}
		out = appendEscaped(out, r)
		*j.out = append(out, '"')
		j.st.count++
		j.skip = false
	}
	if len(j.stack) == 0 {
		j.mode, j.done = jTop, true
		return
	}
	j.mode = jAfter
}

// hfeed adds canonical bytes of a replaced value to its hash.
func (j *jsonProc) hfeed(b []byte) {
	if j.skip && j.replacement() == replHash {
		j.hbuf = append(j.hbuf, b...)
		if len(j.hbuf) >= 4096 {
			j.flushHash()
		}
	}
}

func (j *jsonProc) hfeed1(c byte) {
	if j.skip && j.replacement() == replHash {
		j.hbuf = append(j.hbuf, c)
	}
}

func (j *jsonProc) flushHash() {
	j.st.mac.Write(j.hbuf)
	j.hbuf = j.hbuf[:0]
}

// partialScalar records the text of a replaced number or literal (a
// scalar replaced by "partial" keeps its end).
func (j *jsonProc) partialScalar(b []byte) {
	if j.skip && j.replDepth == len(j.stack) && j.replacement() == replPartial {
		j.tail = append(j.tail[:0], b...)
		j.runes = len(b)
	}
}

// partialBytes follows the decoded content of a replaced string, keeping
// its last bytes and counting its characters.
func (j *jsonProc) partialBytes(b []byte) {
	j.runes += utf8.RuneCount(b)
	j.tail = append(j.tail, b...)
	if len(j.tail) > 64 {
		n := copy(j.tail, j.tail[len(j.tail)-32:])
		j.tail = j.tail[:n]
	}
}

func isNumByte(c byte) bool {
	return isDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// endNumber ends the number in j.tok, whose last byte is before p[i].
func (j *jsonProc) endNumber(p []byte, i int) error {
	if !validNumber(j.tok) {
		return jsonError("invalid number %q", j.tok)
	}
	switch {
	case j.skip:
		j.hfeed(j.tok)
		j.partialScalar(j.tok)
	case len(j.st.m.text) > 0:
		j.drop(p, i)
		// A number a text rule matches becomes a string: the masked
		// digits are not a number any more.
		if spans := j.st.find(j.tok); len(spans) > 0 {
			out := append(*j.out, '"')
			out, _ = j.st.maskAll(out, j.tok, true)
			*j.out = append(out, '"')
		} else {
			*j.out = append(*j.out, j.tok...)
		}
	}
	j.endValue(p, i)
	return nil
}

// validNumber checks JSON number syntax.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i == len(b)
}

// beginString starts a string whose opening quote is p[i].
func (j *jsonProc) beginString(p []byte, i int, target int) {
	j.isKey = target == tKey
	if j.skip {
		target = tSkip
	}
	j.target, j.esc, j.high = target, 0, 0
	j.mode = jString
	switch target {
	case tSkip:
		if !j.replStr || j.replDepth != len(j.stack) {
			j.hfeed1('"')
		}
	case tKey:
		j.key = j.key[:0]
		j.keyText = len(j.st.m.text) > 0
		if j.keyText {
			j.drop(p, i)
		} else {
			j.keep(i)
		}
	default:
		j.keep(i)
	}
}

// scanString consumes string content from p[i].
func (j *jsonProc) scanString(p []byte, i int) (int, error) {
	for i < len(p) {
		if j.esc > 0 {
			if err := j.escByte(p, i); err != nil {
				return 0, err
			}
			if j.err != nil {
				return 0, j.err
			}
			i++
			continue
		}
		k := i + stringRun(p[i:])
		if k > i {
			j.plain(p, i, k)
			i = k
			if j.err != nil {
				return 0, j.err
			}
			if i == len(p) {
				break
			}
		}
		switch c := p[i]; c {
		case '"':
			j.flushHigh()
			return i + 1, j.endString(p, i)
		case '\\':
			j.esc = 1
			if j.target == tVerbatim || j.target == tKey && !j.keyText {
				j.keep(i)
			} else {
				j.drop(p, i)
			}
		default:
			return 0, jsonError("control character 0x%02x in a string", c)
		}
		i++
	}
	return i, nil
}

// Masks of the bytes of a uint64, for stringRun.
const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// stringRun returns the length of the longest prefix of b that is plain
// string content: no '"', no '\\' and no control character. It looks at
// eight bytes at a time: a byte is flagged when it is below 0x20 or, once
// xored with '"' or '\\', zero (the classic "has a zero byte" test, whose
// lowest flag is exact: a false flag can only follow a true one, through
// a borrow).
func stringRun(b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		x := binary.LittleEndian.Uint64(b[n:])
		q := x ^ ('"' * lsb8)
		s := x ^ ('\\' * lsb8)
		m := ((x - 0x20*lsb8) &^ x) | ((q - lsb8) &^ q) | ((s - lsb8) &^ s)
		if m &= msb8; m != 0 {
			return n + bits.TrailingZeros64(m)/8
		}
		n += 8
	}
	for n < len(b) {
		if c := b[n]; c == '"' || c == '\\' || c < 0x20 {
			break
		}
		n++
	}
	return n
}

// plain handles unescaped string content p[i:k].
func (j *jsonProc) plain(p []byte, i, k int) {
	if j.target == tVerbatim {
		j.keep(i)
		return
	}
	j.flushHigh()
	if j.target == tKey && !j.keyText {
		j.keep(i)
	} else {
		j.drop(p, i)
	}
	j.decoded(p[i:k])
}

// escByte handles the byte after a backslash or in \uXXXX.
func (j *jsonProc) escByte(p []byte, i int) error {
	c := p[i]
	verbatim := j.target == tVerbatim || j.target == tKey && !j.keyText
	if verbatim {
		j.keep(i)
	}
	if j.esc == 1 {
		var r byte
		switch c {
		case '"', '\\', '/':
			r = c
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			j.esc, j.hex = 2, 0
			return nil
		default:
			return jsonError("invalid escape \\%c", c)
		}
		j.esc = 0
		if j.target != tVerbatim {
			j.flushHigh()
			j.decoded([]byte{r})
		}
		return nil
	}
	var v rune
	switch {
	case isDigit(c):
		v = rune(c - '0')
	case 'a' <= c && c <= 'f':
		v = rune(c-'a') + 10
	case 'A' <= c && c <= 'F':
		v = rune(c-'A') + 10
	default:
		return jsonError("invalid \\u escape")
	}
	j.hex = j.hex<<4 | v
	j.esc++
	if j.esc < 6 {
		return nil
	}
	j.esc = 0
	if j.target != tVerbatim {
		j.gotRune(j.hex)
	}
	return nil
}

// gotRune delivers a \u escape, pairing surrogates; a lone surrogate
// becomes U+FFFD, as encoding/json decodes it.
func (j *jsonProc) gotRune(r rune) {
	if j.high != 0 {
		high := j.high
		j.high = 0
		if 0xDC00 <= r && r < 0xE000 {
			j.decodedRune(utf16.DecodeRune(high, r))
			return
		}
		j.decodedRune(utf8.RuneError)
	}
	switch {
	case 0xD800 <= r && r < 0xDC00:
		j.high = r
		return
	case 0xDC00 <= r && r < 0xE000:
		r = utf8.RuneError
	}
	j.decodedRune(r)
}

func (j *jsonProc) flushHigh() {
	if j.high != 0 {
		j.high = 0
		j.decodedRune(utf8.RuneError)
	}
}

func (j *jsonProc) decodedRune(r rune) {
	var b [utf8.UTFMax]byte
	j.decoded(utf8.AppendRune(b[:0], r))
}

// decoded delivers decoded string content to the string's target.
func (j *jsonProc) decoded(b []byte) {
	switch j.target {
	case tText:
		j.text.write(b)
	case tKey:
		if len(j.key)+len(b) > j.st.m.lim.MaxTokenBytes {
			j.err = fmt.Errorf("%w: a JSON key is longer than %d bytes", ErrUnmaskable, j.st.m.lim.MaxTokenBytes)
			return
		}
		j.key = append(j.key, b...)
	case tSkip:
		if j.replStr && j.replDepth == len(j.stack) {
			// The replaced value is this string: its hash is that of
			// the text, as a text rule would hash it.
			if j.replacement() == replHash {
				j.hfeed(b)
			} else if j.replacement() == replPartial {
				j.partialBytes(b)
			}
			return
		}
		if j.replacement() == replHash {
			j.hbuf = appendEscaped(j.hbuf, b)
			if len(j.hbuf) >= 4096 {
				j.flushHash()
			}
		}
	}
}

// endString ends the string whose closing quote is p[i].
func (j *jsonProc) endString(p []byte, i int) error {
	switch j.target {
	case tVerbatim:
		j.keep(i)
	case tText:
		j.drop(p, i)
		j.text.close()
		j.keep(i)
	case tSkip:
		if !j.replStr || j.replDepth != len(j.stack) {
			j.hfeed1('"')
		}
	case tKey:
		if j.keyText {
			out := append(*j.out, '"')
			out, _ = j.st.maskAll(out, j.key, true)
			*j.out = append(out, '"')
		} else {
			j.keep(i)
		}
		if len(j.st.m.paths) > 0 {
			f := &j.stack[len(j.stack)-1]
			j.member, j.memberMatch = j.st.m.childSet(j.member, f.set, j.key, 0, true)
		}
	}
	if j.isKey {
		j.mode = jColon
		return nil
	}
	j.endValue(p, i+1)
	return nil
}
