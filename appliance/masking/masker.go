package masking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// ErrUnmaskable is wrapped by every error that means a response cannot be
// masked safely: an unsupported Content-Type, charset or Content-Encoding,
// malformed JSON, a decoding limit, an event or token over its bound. The
// caller must not pass the response on.
var ErrUnmaskable = errors.New("masking: response cannot be masked safely")

// MinHashKeyBytes is the shortest Options.HashKey accepted.
const MinHashKeyBytes = 16

// hashHexDigits is how much of the HMAC a "hash" replacement keeps: 128
// bits, as hex, enough to tell values apart and to join on them.
const hashHexDigits = 32

// Options configure Compile.
type Options struct {
	// HashKey keys the "hash" replacement (HMAC-SHA256). It is required
	// (at least MinHashKeyBytes) when a rule uses "hash". Each appliance
	// has its own, so a hash cannot be reversed by hashing guesses
	// without it.
	HashKey []byte
	// Limits bound the work and memory of masking one response; zero
	// fields take the defaults given in Limits.
	Limits Limits
}

// Limits bound what masking one response may cost. A zero field takes the
// default given in its comment.
type Limits struct {
	// Window is the longest match a regular expression or detector is
	// guaranteed to find in text that arrives in pieces (16 KiB: a PEM
	// block of an RSA 8192 key fits). Text is held back by up to twice
	// the window before it is passed on, so that a match spanning reads
	// is still caught whole.
	Window int
	// MaxTokenBytes bounds a JSON object key and a JSON number, which are
	// matched whole (64 KiB). String values are streamed, not bounded.
	MaxTokenBytes int
	// MaxDepth bounds JSON nesting (512).
	MaxDepth int
	// MaxEventBytes bounds one server-sent event, which is masked whole
	// (1 MiB).
	MaxEventBytes int
	// MaxBufferedBytes bounds Reader.Prefetch (1 MiB of masked output).
	MaxBufferedBytes int
	// MaxDecodedBytes bounds the decoded size of a gzip, deflate or br
	// body (256 MiB).
	MaxDecodedBytes int64
	// MaxRatio bounds decoded bytes per encoded byte once RatioGrace
	// decoded bytes have been produced (200).
	MaxRatio int64
	// RatioGrace is how many decoded bytes may come before MaxRatio
	// applies (1 MiB): small, very repetitive bodies are legitimate.
	RatioGrace int64
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Window, 16<<10)
	def(&l.MaxTokenBytes, 64<<10)
	def(&l.MaxDepth, 512)
	def(&l.MaxEventBytes, 1<<20)
	def(&l.MaxBufferedBytes, 1<<20)
	def64(&l.MaxDecodedBytes, 256<<20)
	def64(&l.MaxRatio, 200)
	def64(&l.RatioGrace, 1<<20)
	return l
}

// replacement is what a match becomes.
type replacement uint8

const (
	replRedact replacement = iota
	replPartial
	replHash
)

// textRule is a regular expression or detector rule: it masks matching
// text inside strings, numbers, keys and text bodies.
type textRule struct {
	idx  int // index in the connection's rules: the earlier wins
	repl replacement
	re   *regexp.Regexp
	det  *detector
}

// Masker applies one connection's masking rules to response bodies. It is
// immutable and safe for concurrent use; each response gets its own
// Reader.
type Masker struct {
	key     []byte
	lim     Limits
	paths   []pathRule // sorted by rule index
	text    []textRule
	repls   []replacement // by rule index
	hasHash bool
}

// Compile checks and compiles masking rules, in the order given (when
// several rules match the same value or overlapping text, the first one's
// replacement is used). Errors name the offending rule as
// "masking[i].field".
func Compile(rules []model.MaskingRule, opts Options) (*Masker, error) {
	m := &Masker{lim: opts.Limits.withDefaults()}
	for i, r := range rules {
		f := fmt.Sprintf("masking[%d]", i)
		var repl replacement
		switch r.Replacement {
		case "", model.ReplaceRedact:
			repl = replRedact
		case model.ReplacePartial:
			repl = replPartial
		case model.ReplaceHash:
			repl = replHash
			m.hasHash = true
		default:
			return nil, fmt.Errorf("%s.replacement: %q is not redact, partial or hash", f, r.Replacement)
		}
		m.repls = append(m.repls, repl)
		set := 0
		if r.JSONPath != "" {
			set++
			p, err := parsePath(r.JSONPath)
			if err != nil {
				return nil, fmt.Errorf("%s.json_path: %w", f, err)
			}
			p.idx, p.repl = i, repl
			m.paths = append(m.paths, p)
		}
		if r.Regex != "" {
			set++
			re, err := regexp.Compile(r.Regex)
			if err != nil {
				return nil, fmt.Errorf("%s.regex: %w", f, err)
			}
			m.text = append(m.text, textRule{idx: i, repl: repl, re: re})
		}
		if r.Detector != "" {
			set++
			d := detectors[r.Detector]
			if d == nil {
				return nil, fmt.Errorf("%s.detector: %q is not one of %v", f, r.Detector, model.MaskingDetectors)
			}
			m.text = append(m.text, textRule{idx: i, repl: repl, det: d})
		}
		if set != 1 {
			return nil, fmt.Errorf("%s: set exactly one of json_path, regex and detector", f)
		}
	}
	if m.hasHash {
		if len(opts.HashKey) < MinHashKeyBytes {
			return nil, fmt.Errorf("masking: a rule uses the hash replacement but the appliance's hash key is %d bytes (want at least %d)", len(opts.HashKey), MinHashKeyBytes)
		}
		m.key = slices.Clone(opts.HashKey)
	}
	if len(m.paths) > 1<<15 {
		return nil, fmt.Errorf("masking: %d json_path rules is too many", len(m.paths))
	}
	return m, nil
}

// Active reports whether m masks anything: a nil Masker, or one without
// rules, passes bodies through untouched and need not be called.
func (m *Masker) Active() bool { return m != nil && len(m.repls) > 0 }

// state is what one response's processors share: the output, the keyed
// hash, the replacement count and scratch space.
type state struct {
	m     *Masker
	mac   hash.Hash
	count int
	spans []span
	sum   []byte // the HMAC, reused (a local array would escape)
}

// hashOf returns the "hash" replacement of b.
func (st *state) hashOf(dst, b []byte) []byte {
	st.macReset()
	st.mac.Write(b)
	return st.hashSum(dst)
}

func (st *state) macReset() {
	if st.mac == nil {
		st.mac = hmac.New(sha256.New, st.m.key)
	}
	st.mac.Reset()
}

// hashSum appends "hash:" and the truncated hex HMAC of what was written.
func (st *state) hashSum(dst []byte) []byte {
	st.sum = st.mac.Sum(st.sum[:0])
	dst = append(dst, "hash:"...)
	return hex.AppendEncode(dst, st.sum[:hashHexDigits/2])
}

// replace appends the replacement of matched text.
func (st *state) replace(dst []byte, r replacement, matched []byte) []byte {
	st.count++
	switch r {
	case replPartial:
		return appendPartial(dst, matched, utf8.RuneCount(matched))
	case replHash:
		return st.hashOf(dst, matched)
	}
	return append(dst, "***"...)
}

// partialMinRunes is the shortest value "partial" keeps the end of:
// below it, the last four characters would reveal most of the value.
const partialMinRunes = 8

// appendPartial appends "***" and the last four characters of tail, a
// suffix of a value of n characters (whole ones, at least 4 of them).
func appendPartial(dst, tail []byte, n int) []byte {
	dst = append(dst, "***"...)
	if n < partialMinRunes {
		return dst
	}
	end := len(tail)
	for range 4 {
		_, size := utf8.DecodeLastRune(tail[:end])
		end -= size
	}
	return append(dst, tail[end:]...)
}
