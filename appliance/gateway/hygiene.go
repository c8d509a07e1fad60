package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// errBadPath is returned for every path the gateway refuses; the detail
// stays in logs only.
var errBadPath = errors.New("ambiguous or malformed request path")

// requestPath returns the raw (still escaped) path of r's request target,
// without the query. It handles origin-form ("/a?b") and absolute-form
// ("https://host/a?b") targets; anything else is refused.
func requestPath(r *http.Request) (string, error) {
	raw := r.RequestURI
	if raw == "" { // HTTP/2 without :path never gets here, but be safe
		return "", errBadPath
	}
	if raw[0] != '/' {
		// Absolute form: the host part has already become r.Host (checked
		// against the SNI's gateway); keep only the path.
		i := strings.Index(raw, "://")
		if i <= 0 {
			return "", errBadPath
		}
		rest := raw[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 || rest[j] == '?' {
			return "/", nil
		}
		raw = rest[j:]
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw, nil
}

// normalizePath returns the one canonical form of an escaped request path,
// or errBadPath for anything ambiguous (see the package documentation).
// It does not allocate when the path is already canonical.
func normalizePath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", errBadPath
	}
	// First pass: validate and find out whether anything must change.
	changed := false
	segStart := 0 // index just after the last '/'
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if i > 0 {
				if i == segStart {
					return "", errBadPath // empty segment: "//"
				}
				if isDotSegment(p[segStart:i]) {
					return "", errBadPath
				}
			}
			segStart = i + 1
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errBadPath
			}
			b := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case b == '/' || b == '\\' || b < 0x20 || b == 0x7f:
				return "", errBadPath
			case isUnreserved(b), isLowerHex(p[i+1]) || isLowerHex(p[i+2]):
				changed = true
			}
			i += 2
		case c == '\\' || c < 0x21 || c >= 0x7f:
			// Backslash, NUL, controls, space and raw non-ASCII bytes.
			return "", errBadPath
		case !isPathChar(c):
			return "", errBadPath
		}
	}
	if isDotSegment(p[segStart:]) {
		return "", errBadPath
	}
	if !changed {
		return p, nil
	}
	// Second pass: decode unreserved characters, upper-case other escapes.
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex(p[i+1]))
			b.WriteByte(upperHex(p[i+2]))
		}
		i += 2
	}
	n := b.String()
	// Decoding may have produced a dot segment ("%2e%2e"): refuse it.
	if hasDotSegment(n) {
		return "", errBadPath
	}
	return n, nil
}

// isDotSegment reports whether seg is "." or "..", also with a ";params"
// suffix that some servers strip ("..;").
func isDotSegment(seg string) bool {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		seg = seg[:i]
	}
	return seg == "." || seg == ".."
}

func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p[1:], "/") {
		if isDotSegment(seg) {
			return true
		}
	}
	return false
}

// decodePath returns the decoded form of a normalized path, for url.URL's
// Path (its RawPath keeps the normalized form).
func decodePath(n string) string {
	if strings.IndexByte(n, '%') < 0 {
		return n
	}
	d, err := url.PathUnescape(n)
	if err != nil { // cannot happen for a normalized path
		return n
	}
	return d
}

// pathHasPrefix reports whether path is under prefix, on a segment
// boundary: "/api" matches "/api" and "/api/x", not "/apix".
func pathHasPrefix(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar reports whether c may appear unescaped in a path: pchar of RFC
// 3986 plus '/'.
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '/', ':', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func upperHex(c byte) byte {
	if isLowerHex(c) {
		return c - 'a' + 'A'
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// hopHeaders are removed from every request in addition to those
// httputil.ReverseProxy removes (which include the ones Connection names).
var hopHeaders = [...]string{"Http2-Settings", "Proxy-Connection", "Keep-Alive"}

// plannerCredentials never reach an executor.
var plannerCredentials = [...]string{"Authorization", "Cookie", "Proxy-Authorization"}

// spoofableHeaders are dropped from the client's request: the gateway is
// the only one who may say who the client is or what it asked for.
var spoofableHeaders = map[string]bool{
	"Forwarded":                   true,
	"X-Real-Ip":                   true,
	"X-Client-Ip":                 true,
	"True-Client-Ip":              true,
	"Cf-Connecting-Ip":            true,
	"Fastly-Client-Ip":            true,
	"X-Cluster-Client-Ip":         true,
	"Client-Ip":                   true,
	"X-Original-Url":              true,
	"X-Rewrite-Url":               true,
	"X-Original-Forwarded-For":    true,
	"X-Http-Method-Override":      true,
	"X-Http-Method":               true,
	"X-Method-Override":           true,
	"X-Request-Id":                true,
	"X-Sallyport-Request-Id":      true,
	"X-Forwarded-Client-Cert":     true,
	"X-Ssl-Client-Cert":           true,
	"X-Client-Cert":               true,
	"Ssl-Client-Cert":             true,
	"X-Ssl-Client-Verify":         true,
	"X-Authenticated-User":        true,
	"X-Remote-User":               true,
	"Remote-User":                 true,
	"X-Auth-Request-User":         true,
	"X-Auth-Request-Email":        true,
	"X-Auth-Request-Access-Token": true,
}

// scrubHeaders removes everything from h that the executor must not get
// from the client: see the package documentation.
func scrubHeaders(h http.Header) {
	for _, k := range hopHeaders {
		delete(h, k)
	}
	for _, k := range plannerCredentials {
		delete(h, k)
	}
	for k := range h {
		if spoofableHeaders[k] || strings.IndexByte(k, '_') >= 0 || hasFoldPrefix(k, "X-Forwarded-") {
			delete(h, k)
		}
	}
}

// hasFoldPrefix is strings.HasPrefix ignoring ASCII case, without
// allocating (header keys are canonical only when they are valid tokens).
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// reservedInject are headers a connection may not inject: they belong to
// the transport or to the gateway.
var reservedInject = map[string]bool{
	"Host": true, "Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Te": true, "Trailer": true, "Upgrade": true,
	"Content-Length": true, "Http2-Settings": true, "Forwarded": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Request-Id": true,
}

// upgradeType returns the protocol a request asks to switch to, as
// httputil.ReverseProxy sees it ("" for none).
func upgradeType(h http.Header) string {
	if !headerHasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
