package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

type ctxKey int

const (
	ctxRequestInfo ctxKey = iota
)

// requestInfo travels with a request through the middleware: what the log
// line and metrics need to know once the handler is done.
type requestInfo struct {
	id    string
	actor string
	route string
}

func info(r *http.Request) *requestInfo {
	if ri, ok := r.Context().Value(ctxRequestInfo).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// RequestID returns the id of the request being served.
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(ctxRequestInfo).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// statusWriter remembers the status code for the log line.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int
}

// WriteHeader records the first status code.
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes of the body.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestLog gives every request an id (a well-formed one from the
// client is kept, so callers can correlate), then logs and counts it. It
// logs neither headers nor bodies: they may carry tokens and secrets.
func (s *Server) withRequestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: r.Header.Get("X-Request-Id"), route: "unmatched"}
		if !requestIDRE.MatchString(ri.id) {
			ri.id = newRequestID()
		}
		w.Header().Set("X-Request-Id", ri.id)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxRequestInfo, ri)))
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		elapsed := time.Since(start)
		s.metrics.observe(ri.route, r.Method, sw.code, elapsed)
		level := slog.LevelInfo
		if sw.code >= 500 {
			level = slog.LevelError
		}
		s.cfg.Logger.LogAttrs(r.Context(), level, "admin request",
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("route", ri.route),
			slog.String("path", r.URL.EscapedPath()),
			slog.Int("status", sw.code),
			slog.Int("bytes", sw.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("actor", ri.actor),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// recordRoute notes the matched route template for logs and metrics
// (templates, not paths, keep metric labels bounded).
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cr := mux.CurrentRoute(r); cr != nil {
			if t, err := cr.GetPathTemplate(); err == nil {
				info(r).route = t
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				slog.Error("panic in admin API handler", "request_id", info(r).id, "panic", v, "stack", string(debug.Stack()))
				writeError(w, r, http.StatusInternalServerError, "internal error; the appliance log has details under this request id")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a valid admin bearer token on every request.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		actor, valid := "", false
		if ok {
			actor, valid = s.cfg.Tokens.Verify(token)
		}
		if !valid {
			s.metrics.authFailures.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="sallyport"`)
			msg := "an admin token is required: send \"Authorization: Bearer <token>\""
			if ok {
				msg = "the admin token is not valid"
			}
			writeError(w, r, http.StatusUnauthorized, msg)
			return
		}
		info(r).actor = actor
		next.ServeHTTP(w, r)
	})
}

func bearerToken(h string) (string, bool) {
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// refuseCrossOrigin refuses requests a browser makes on behalf of another
// site. The API sends no CORS headers, so browsers cannot read answers;
// this also stops "simple" cross-origin writes from being acted on.
func refuseCrossOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		site := r.Header.Get("Sec-Fetch-Site")
		if (origin != "" && origin != "https://"+r.Host) || site == "cross-site" || site == "same-site" {
			writeError(w, r, http.StatusForbidden, "cross-origin requests are refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}
