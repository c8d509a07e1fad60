package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Executor paths. Every peer forwards the path as it is, and Sallyport's
// connections for masking and recording add a prefix, so the executor
// routes on the path's suffix.
const (
	PathJSON64   = "/json/64"
	PathJSON4K   = "/json/4k"
	PathDownload = "/blob/64m"
	PathUpload   = "/upload"
)

// TransferSize is the size of a download and an upload.
const TransferSize = 64 << 20

// SecretPrefix starts every "token" value in the executor's JSON; masking
// rules of the benchmark redact them.
const SecretPrefix = "tok_"

// JSON64 and JSON4K are the executor's small responses: exactly 64 and 4096
// bytes of JSON, each with "token" values a masking rule can redact.
var (
	JSON64 = padJSON(`{"status":"ok","token":"`+SecretPrefix+`5f2b9c4e","pad":"`, `"}`, 64)
	JSON4K = json4K()
)

// padJSON returns head + filler + tail, exactly size bytes long.
func padJSON(head, tail string, size int) []byte {
	n := size - len(head) - len(tail)
	if n < 0 {
		panic("bench: payload head and tail exceed the size")
	}
	return []byte(head + strings.Repeat("x", n) + tail)
}

func json4K() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; i < 24; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"job-%03d","owner":"user-%03d@example.com","token":"%s%08x","state":"done"}`, i, i, i, SecretPrefix, i*2654435761)
	}
	b.WriteString(`],"pad":"`)
	return padJSON(b.String(), `"}`, 4096)
}

// ExecutorHandler serves the executor's endpoints.
func ExecutorHandler() http.Handler {
	blob := make([]byte, 256<<10)
	for i := range blob {
		blob[i] = byte('a' + i%26)
	}
	json64Len, json4KLen := strconv.Itoa(len(JSON64)), strconv.Itoa(len(JSON4K))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, PathJSON64):
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{json64Len}
			_, _ = w.Write(JSON64)
		case strings.HasSuffix(p, PathJSON4K):
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{json4KLen}
			_, _ = w.Write(JSON4K)
		case strings.HasSuffix(p, PathDownload):
			h["Content-Type"] = []string{"application/octet-stream"}
			h["Content-Length"] = []string{strconv.Itoa(TransferSize)}
			for sent := 0; sent < TransferSize; sent += len(blob) {
				if _, err := w.Write(blob); err != nil {
					return
				}
			}
		case strings.HasSuffix(p, PathUpload):
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			h["Content-Type"] = []string{"application/json"}
			_, _ = fmt.Fprintf(w, `{"received":%d}`, n)
		default:
			http.NotFound(w, r)
		}
	})
}

// ServeExecutor runs the executor on addr (TLS 1.3, HTTP/1.1 and HTTP/2)
// until ctx ends.
func ServeExecutor(ctx context.Context, addr, certFile, keyFile string) error {
	return serveTLS(ctx, addr, certFile, keyFile, ExecutorHandler())
}

// serveTLS serves h over TLS 1.3 (HTTP/1.1 and HTTP/2) on addr until ctx
// ends.
func serveTLS(ctx context.Context, addr, certFile, keyFile string, h http.Handler) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
		},
		// The load rows close thousands of connections on purpose.
		ErrorLog: discardLogger(),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
