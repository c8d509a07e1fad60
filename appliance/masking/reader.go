package masking

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

// Format is how a response body is masked, from its Content-Type.
type Format string

// Formats.
const (
	// FormatJSON is one JSON value (application/json, */*+json).
	FormatJSON Format = "json"
	// FormatJSONLines is a sequence of JSON values (application/x-ndjson,
	// application/jsonl, application/json-seq and their aliases).
	FormatJSONLines Format = "json-lines"
	// FormatSSE is text/event-stream.
	FormatSSE Format = "sse"
	// FormatText is any other text (text/*, XML, JavaScript, YAML, forms,
	// and bodies without a Content-Type).
	FormatText Format = "text"
)

var jsonLinesTypes = map[string]bool{
	"application/x-ndjson": true, "application/ndjson": true, "application/jsonl": true,
	"application/x-jsonl": true, "application/jsonlines": true, "application/x-jsonlines": true,
	"application/json-seq": true, "application/stream+json": true,
}

var textTypes = map[string]bool{
	"application/xml": true, "application/javascript": true, "application/ecmascript": true,
	"application/x-javascript": true, "application/x-www-form-urlencoded": true,
	"application/yaml": true, "application/x-yaml": true, "application/toml": true,
	"application/graphql": true, "application/sql": true, "application/csv": true,
}

// asciiCharsets are the charsets whose text the rules can match: ASCII
// and the encodings that keep ASCII bytes as they are. Anything else
// (UTF-16 in particular) would hide text from byte patterns.
var asciiCharsets = map[string]bool{
	"utf-8": true, "utf8": true, "us-ascii": true, "ascii": true,
	"iso-8859-1": true, "latin1": true, "windows-1252": true,
}

// classify picks the format of a response from its Content-Type, or
// refuses it: several Content-Type fields, an unparsable one, a charset
// the rules cannot read, and binary media types (images, archives,
// octet streams, protobuf, multipart...) cannot be masked.
func classify(h http.Header) (Format, error) {
	cts := h.Values("Content-Type")
	switch len(cts) {
	case 0:
		return FormatText, nil
	case 1:
	default:
		return "", fmt.Errorf("%w: %d Content-Type fields", ErrUnmaskable, len(cts))
	}
	for _, c := range commonTypes {
		if strings.EqualFold(cts[0], c.ct) {
			return c.f, nil
		}
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil {
		return "", fmt.Errorf("%w: Content-Type %q: %w", ErrUnmaskable, cts[0], err)
	}
	if cs, ok := params["charset"]; ok && !asciiCharsets[strings.ToLower(cs)] {
		return "", fmt.Errorf("%w: charset %q", ErrUnmaskable, cs)
	}
	switch {
	case mt == "text/event-stream":
		return FormatSSE, nil
	case jsonLinesTypes[mt]:
		return FormatJSONLines, nil
	case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON, nil
	case strings.HasPrefix(mt, "text/") || textTypes[mt] || strings.HasSuffix(mt, "+xml"):
		return FormatText, nil
	}
	return "", fmt.Errorf("%w: media type %q is not text", ErrUnmaskable, mt)
}

// commonTypes are Content-Types classified without parsing them (which
// costs allocations on every response): what classify would decide for
// them, exactly as written.
var commonTypes = []struct {
	ct string
	f  Format
}{
	{"application/json", FormatJSON},
	{"application/json; charset=utf-8", FormatJSON},
	{"application/json;charset=utf-8", FormatJSON},
	{"text/event-stream", FormatSSE},
	{"application/x-ndjson", FormatJSONLines},
	{"text/plain; charset=utf-8", FormatText},
}

// coding returns the one content coding of a response ("" for none).
func coding(h http.Header) (string, error) {
	var c string
	for _, v := range h.Values("Content-Encoding") {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.ToLower(strings.TrimSpace(t))
			switch t {
			case "", "identity":
				continue
			case "x-gzip":
				t = "gzip"
			}
			if t != "gzip" && t != "deflate" && t != "br" {
				return "", fmt.Errorf("%w: unsupported Content-Encoding %q", ErrUnmaskable, t)
			}
			if c != "" {
				return "", fmt.Errorf("%w: more than one content coding", ErrUnmaskable)
			}
			c = t
		}
	}
	return c, nil
}

// AcceptEncoding is the Accept-Encoding to send upstream for a masked
// response: the codings Wrap decodes.
const AcceptEncoding = "gzip, deflate, br"

// processor masks one body format as it streams.
type processor interface {
	write(p []byte) error
	close() error
}

// Reader is a response body as masked. Its errors from Read wrap
// ErrUnmaskable when the body turned out not to be maskable (the caller
// must then abort the response, not end it cleanly), or are the
// executor's own read errors.
type Reader struct {
	m      *Masker
	format Format
	body   io.ReadCloser
	coding string
	raw    countingReader
	src    io.Reader
	gz     *gzip.Reader
	zr     io.Closer
	proc   processor

	// w is the per-response state taken from workPool, returned by
	// Close; st is &w.st while the Reader is open.
	w      *work
	st     *state
	masked int // the replacement count once Closed

	buf  []byte
	out  []byte
	off  int
	err  error
	done bool // the body was read to its end and masked whole
}

// Wrap starts masking a response body. It fixes h for the masked body:
// Content-Encoding, Content-Length, digests and Accept-Ranges are
// removed (the body is sent decoded and changes length) and a strong
// ETag becomes weak. A response that cannot be masked is refused here
// with an error wrapping ErrUnmaskable: h and body are then untouched
// and the caller closes body.
func (m *Masker) Wrap(h http.Header, body io.ReadCloser) (*Reader, error) {
	f, err := classify(h)
	if err != nil {
		return nil, err
	}
	c, err := coding(h)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"Content-Encoding", "Content-Length", "Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Accept-Ranges"} {
		delete(h, k)
	}
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et)
	}
	w := workPool.Get().(*work)
	w.st = state{m: m, mac: w.st.macFor(m), spans: w.st.spans[:0], sum: w.st.sum[:0]}
	r := &Reader{m: m, format: f, body: body, coding: c, w: w, st: &w.st, buf: w.in[:], out: w.out[:0]}
	r.raw.r = body
	switch f {
	case FormatJSON:
		r.proc = w.jsonProc(&r.out, false)
	case FormatJSONLines:
		r.proc = w.jsonProc(&r.out, true)
	case FormatSSE:
		r.proc = newSSEProc(r.st, &r.out)
	default:
		r.proc = &textProc{t: textStream{st: r.st, out: &r.out}}
	}
	return r, nil
}

// Format is the format the body is masked as.
func (r *Reader) Format() Format { return r.format }

// Streaming reports whether the body is a stream of events or lines,
// masked and passed on one at a time: such a body should never be
// prefetched.
func (r *Reader) Streaming() bool { return r.format == FormatSSE || r.format == FormatJSONLines }

// Masked is how many values or matches were replaced so far (after
// Close: in all).
func (r *Reader) Masked() int {
	if r.st == nil {
		return r.masked
	}
	return r.st.count
}

// Prefetch masks ahead, until the end of the body or until
// Limits.MaxBufferedBytes of masked output wait, so that a body that
// cannot be masked is known before the response starts. It reports
// whether the whole body is masked; its length is then Len.
func (r *Reader) Prefetch() (bool, error) {
	for !r.done && len(r.out)-r.off < r.m.lim.MaxBufferedBytes {
		if err := r.fill(); err != nil {
			return false, err
		}
	}
	return r.done, nil
}

// Len is the number of masked bytes waiting to be read.
func (r *Reader) Len() int { return len(r.out) - r.off }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.done {
			return 0, io.EOF
		}
		r.out, r.off = r.out[:0], 0
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// fill reads once from the body and masks what came.
func (r *Reader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.src == nil {
		if err := r.openDecoder(); err != nil {
			return r.fail(err)
		}
	}
	n, err := r.src.Read(r.buf)
	if n > 0 {
		if perr := r.proc.write(r.buf[:n]); perr != nil {
			return r.fail(perr)
		}
	}
	switch {
	case err == io.EOF:
		if perr := r.proc.close(); perr != nil {
			return r.fail(perr)
		}
		r.done = true
	case err != nil:
		if r.raw.err != nil || errors.Is(err, ErrUnmaskable) {
			// The executor's own error, or a limit.
			return r.fail(err)
		}
		return r.fail(fmt.Errorf("%w: decoding %s: %w", ErrUnmaskable, r.coding, err))
	}
	return nil
}

// fail makes err sticky and drops output not yet read: nothing after a
// failure reaches the client.
func (r *Reader) fail(err error) error {
	r.err = err
	r.out, r.off = r.out[:0], 0
	return err
}

func (r *Reader) openDecoder() error {
	lim := r.m.lim
	var dec io.Reader
	switch r.coding {
	case "":
		r.src = &r.raw
		return nil
	case "gzip":
		gz, err := gzip.NewReader(&r.raw)
		if err != nil {
			if r.raw.err != nil {
				return r.raw.err
			}
			return fmt.Errorf("%w: gzip: %w", ErrUnmaskable, err)
		}
		r.gz, dec = gz, gz
	case "deflate":
		// "deflate" is zlib (RFC 9110), but some servers send raw
		// deflate: tell them apart by the zlib header.
		br := bufio.NewReader(&r.raw)
		h, _ := br.Peek(2)
		if len(h) == 2 && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return fmt.Errorf("%w: deflate: %w", ErrUnmaskable, err)
			}
			r.zr, dec = zr, zr
		} else {
			fr := flate.NewReader(br)
			r.zr, dec = fr, fr
		}
	case "br":
		dec = brotli.NewReader(&r.raw)
	}
	r.src = &boundedReader{r: dec, raw: &r.raw, max: lim.MaxDecodedBytes, ratio: lim.MaxRatio, grace: lim.RatioGrace}
	return nil
}

// work is what masking one response needs beyond the Reader itself: the
// read and output buffers, the shared state and the JSON processor. It
// is pooled across Maskers (most responses are small and masked in one
// read: setting these up would otherwise cost as much as masking) and
// given back by Close; Wrap and jsonProc.init reset it for the next
// response.
type work struct {
	in   [readBytes]byte
	out  []byte
	st   state
	json jsonProc
}

// readBytes is the most read from a body at once, and outBytes the first
// capacity of the output (it grows as a body needs). They are kept small:
// the GC empties the pool of what sits idle in it, so every pooled byte
// is allocated again now and then (the executor's frames are 16 KiB at
// most in HTTP/2 and a typical JSON response is smaller).
const (
	readBytes = 16 << 10
	outBytes  = 8 << 10
)

var workPool = sync.Pool{New: func() any { return &work{out: make([]byte, 0, outBytes)} }}

// maxPooledOut is the largest output buffer kept in the pool: one that
// grew for an unusually large body is left to the GC.
const maxPooledOut = 1 << 20

// jsonProc returns the pooled JSON processor, reset for a new response
// of the Masker of w.st.
func (w *work) jsonProc(out *[]byte, multi bool) *jsonProc {
	w.json.init(&w.st, out, multi)
	return &w.json
}

// macFor returns the pooled HMAC if it was keyed for m (the key decides
// the hash), or nil: state creates one on first use.
func (st *state) macFor(m *Masker) hash.Hash {
	if st.mac != nil && st.m == m {
		return st.mac
	}
	return nil
}

var errClosed = errors.New("masking: read after Close")

// Close closes the body and gives the Reader's buffers and processor
// back to the pool: the caller must not use the Reader concurrently with
// Close or after it, except for Masked (reads fail). The next user of the
// pooled state sees nothing of this response: every buffer is reused
// from length zero and written before it is read, and the processor and
// counters are reset.
func (r *Reader) Close() error {
	if w := r.w; w != nil {
		r.masked = r.st.count
		if cap(r.out) <= maxPooledOut {
			w.out = r.out[:0]
		}
		if w.st.mac != nil {
			w.st.mac.Reset()
		}
		// The processor points at r.out: let go of r (and its body).
		w.json.out, w.json.text.out = nil, nil
		r.w, r.st, r.proc, r.buf, r.out, r.off = nil, nil, nil, nil, nil, 0
		r.err = errClosed
		workPool.Put(w)
	}
	if r.gz != nil {
		_ = r.gz.Close()
	}
	if r.zr != nil {
		_ = r.zr.Close()
	}
	return r.body.Close()
}

// countingReader counts the encoded bytes and remembers the executor's
// read error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// boundedReader stops a decoder that produces more than max bytes, or
// more than ratio decoded bytes per encoded byte past grace: a
// decompression bomb is refused before it costs memory or time.
type boundedReader struct {
	r                 io.Reader
	raw               *countingReader
	n                 int64
	max, ratio, grace int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if rem := b.max - b.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.max:
		return 0, fmt.Errorf("%w: decoded body larger than %d bytes", ErrUnmaskable, b.max)
	case b.n > b.grace && b.n > b.ratio*b.raw.n:
		return 0, fmt.Errorf("%w: compression ratio above %d:1", ErrUnmaskable, b.ratio)
	}
	return n, err
}

// sniffBytes is how much of a text body is looked at to tell text from
// binary content (http.DetectContentType reads no more).
const sniffBytes = 512

// textProc masks text with the sliding window. It first refuses a body
// whose first bytes are binary (an archive, an image, compressed data
// without Content-Encoding, UTF-16): what is inside cannot be masked.
type textProc struct {
	t       textStream
	sniffed bool
}

func (p *textProc) write(b []byte) error {
	if !p.sniffed && len(p.t.buf)+len(b) >= sniffBytes {
		head := append(p.t.buf[:len(p.t.buf):len(p.t.buf)], b...)
		if err := p.sniff(head[:sniffBytes]); err != nil {
			return err
		}
	}
	p.t.write(b)
	return nil
}

func (p *textProc) close() error {
	if !p.sniffed && len(p.t.buf) > 0 {
		if err := p.sniff(p.t.buf); err != nil {
			return err
		}
	}
	p.t.close()
	return nil
}

func (p *textProc) sniff(b []byte) error {
	p.sniffed = true
	if ct := http.DetectContentType(b); !strings.HasPrefix(ct, "text/") || strings.Contains(ct, "utf-16") {
		return fmt.Errorf("%w: a text body whose content is %s", ErrUnmaskable, ct)
	}
	return nil
}
