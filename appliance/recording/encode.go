package recording

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The payloads of an exchange's records (decision, http_request,
// http_response) are encoded here by hand, in one pass and without
// reflection or copies of the headers: redacted headers are skipped as
// they are written. Secrets are not searched field by field: the encoded
// payload is searched once (the scrubber knows each secret's forms as
// this encoder writes them), and only a payload that holds one is built
// again the slow way, every field scrubbed, and searched again (still
// holding one, it is withheld). Bodies are scrubbed as raw bytes before
// they are encoded (a short secret's base64 form inside an encoded body
// is not searchable), and the fast path's search skips their base64.
//
// The output decodes (encoding/json) to the same values as
// json.Marshal's.

// encBuf is a payload buffer; encPool keeps them.
type encBuf struct{ b []byte }

var encPool = sync.Pool{New: func() any { return &encBuf{b: make([]byte, 0, 4<<10)} }}

func getEnc() *encBuf { return encPool.Get().(*encBuf) }

func putEnc(e *encBuf) {
	if cap(e.b) <= 256<<10 {
		e.b = e.b[:0]
		encPool.Put(e)
	}
}

// appendJSONStr appends s as a JSON string, escaped as encoding/json
// escapes it (HTML characters included).
func appendJSONStr[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = appendJSONStrBody(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

func appendJSONStrBody[S ~string | ~[]byte](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		c, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

func appendStrField(dst []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONStr(dst, v)
}

func appendIntField(dst []byte, name string, v int64, omitEmpty bool) []byte {
	if omitEmpty && v == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, v, 10)
}

// appendBytesField appends a base64 field and where its value's encoding
// is in dst (empty when there is none).
func appendBytesField(dst []byte, name string, v []byte) ([]byte, span) {
	if len(v) == 0 {
		return dst, span{}
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '"')
	start := len(dst)
	dst = base64.StdEncoding.AppendEncode(dst, v)
	return append(dst, '"'), span{start, len(dst)}
}

// span is a part of an encoded payload: the base64 of a body, which was
// scrubbed before it was encoded, so the payload's search for secrets
// skips it.
type span struct{ from, to int }

// containsOutside reports whether p holds a secret form outside sp.
func (s *scrubber) containsOutside(p []byte, sp span) bool {
	if sp.to == 0 {
		return s.contains(p)
	}
	return s.contains(p[:sp.from]) || s.contains(p[sp.to:])
}

func appendBoolField(dst []byte, name string, v bool) []byte {
	if !v {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	return append(dst, `":true`...)
}

func appendTimeField(dst []byte, name string, t time.Time) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

func appendStrings(dst []byte, name string, vs []string) []byte {
	if len(vs) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONStr(dst, v)
	}
	return append(dst, ']')
}

// appendHeaderField writes the headers of h that are not in redact (in
// map order: a JSON object's members have none) and adds the canonical
// names it skipped to removed (sorted, once each).
func appendHeaderField(dst []byte, name string, h http.Header, redact map[string]bool, removed []string) ([]byte, []string) {
	if len(h) == 0 {
		return dst, removed
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '{')
	mark, first := len(dst), true
	for n, vs := range h {
		if c := http.CanonicalHeaderKey(n); redact[c] {
			if !slices.Contains(removed, c) {
				removed = append(removed, c)
			}
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONStr(dst, n)
		dst = append(dst, ':', '[')
		for j, v := range vs {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONStr(dst, v)
		}
		dst = append(dst, ']')
	}
	slices.Sort(removed)
	if first { // every header was redacted: no field, as json's omitempty
		return dst[:mark-len(name)-5], removed
	}
	return append(dst, '}'), removed
}

// encodeHTTPRequest encodes req (its body already scrubbed and capped)
// leaving out the redacted headers, which it names in redacted_headers,
// and returns where the body's base64 is.
func encodeHTTPRequest(dst []byte, req *HTTPRequest, redact map[string]bool) ([]byte, span) {
	dst = append(dst, `{"method":`...)
	dst = appendJSONStr(dst, req.Method)
	dst = appendStrField(dst, "scheme", req.Scheme, true)
	dst = appendStrField(dst, "host", req.Host, true)
	dst = appendStrField(dst, "path", req.Path, false)
	dst = appendStrField(dst, "query", req.Query, true)
	dst = appendStrField(dst, "proto", req.Proto, true)
	var stack [8]string
	dst, removed := appendHeaderField(dst, "header", req.Header, redact, stack[:0])
	dst, body := appendBytesField(dst, "body", req.Body)
	dst = appendIntField(dst, "body_size", req.BodySize, false)
	dst = appendBoolField(dst, "body_truncated", req.BodyTruncated)
	dst = appendStrings(dst, "redacted_headers", removed)
	dst = appendTimeField(dst, "time", req.Time)
	if req.Identity != nil {
		dst = append(dst, `,"identity":`...)
		dst = appendIdentity(dst, req.Identity)
	}
	return append(dst, '}'), body
}

func appendIdentity(dst []byte, id *Identity) []byte {
	n := len(dst)
	dst = appendStrField(dst, "issuer", id.Issuer, true)
	dst = appendStrField(dst, "subject", id.Subject, true)
	dst = appendStrField(dst, "client_cert_uri", id.ClientCertURI, true)
	dst = appendStrField(dst, "client_cert_subject", id.ClientCertSubject, true)
	dst = appendStrField(dst, "binding_id", id.BindingID, true)
	dst = appendStrField(dst, "binding_name", id.BindingName, true)
	if len(dst) == n {
		return append(dst, '{', '}')
	}
	dst[n] = '{' // the first field's comma
	return append(dst, '}')
}

// encodeHTTPResponse encodes resp (its body already scrubbed and capped)
// leaving out the redacted headers and trailers, and returns where the
// body's base64 is.
func encodeHTTPResponse(dst []byte, resp *HTTPResponse, redact map[string]bool) ([]byte, span) {
	dst = append(dst, `{"status":`...)
	dst = strconv.AppendInt(dst, int64(resp.Status), 10)
	dst = appendStrField(dst, "proto", resp.Proto, true)
	var stack [8]string
	dst, removed := appendHeaderField(dst, "header", resp.Header, redact, stack[:0])
	dst, removed = appendHeaderField(dst, "trailer", resp.Trailer, redact, removed)
	dst, body := appendBytesField(dst, "body", resp.Body)
	dst = appendIntField(dst, "body_size", resp.BodySize, false)
	dst = appendBoolField(dst, "body_truncated", resp.BodyTruncated)
	dst = appendStrings(dst, "redacted_headers", removed)
	dst = appendIntField(dst, "latency_ns", int64(resp.Latency), true)
	dst = appendIntField(dst, "duration_ns", int64(resp.Duration), true)
	dst = appendStrField(dst, "error", resp.Error, true)
	return append(dst, '}'), body
}

func encodeDecision(dst []byte, d *Decision) []byte {
	dst = append(dst, `{"kind":`...)
	dst = appendJSONStr(dst, d.Kind)
	dst = appendStrField(dst, "outcome", d.Outcome, false)
	dst = appendStrField(dst, "rule", d.Rule, true)
	dst = appendStrField(dst, "reason", d.Reason, true)
	dst = appendIntField(dst, "status", int64(d.Status), true)
	return append(dst, '}')
}
