package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// ServeGoProxy runs the "bare Go" peer on addr until ctx ends: an
// httputil.ReverseProxy to upstream with a keep-alive transport that
// verifies the executor against caFile. It is the floor for a Go gateway:
// no identity, no policy, no logging.
func ServeGoProxy(ctx context.Context, addr, certFile, keyFile, upstream, caFile string) error {
	h, err := newGoProxy(upstream, caFile, goProxyOptions{})
	if err != nil {
		return err
	}
	return serveTLS(ctx, addr, certFile, keyFile, h)
}

// goProxyOptions vary the bare Go peer for the profiling benchmarks, to
// measure what a gateway's choices cost on the same floor.
type goProxyOptions struct {
	// upstreamH1 speaks HTTP/1.1 to the executor (a keep-alive pool, as
	// nginx does) instead of HTTP/2.
	upstreamH1 bool
	// requestID adds an X-Request-Id with a new value to every upstream
	// request, as Sallyport does.
	requestID bool
	// encoderTable, when set, bounds the upstream HTTP/2 HPACK encoder's
	// dynamic table (1 byte: nothing is indexed).
	encoderTable int
}

func newGoProxy(upstream, caFile string, opts goProxyOptions) (http.Handler, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("bench: upstream: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("bench: no certificate in %s", caFile)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     !opts.upstreamH1,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if opts.encoderTable > 0 {
		rp.Transport.(*http.Transport).HTTP2 = &http.HTTP2Config{MaxEncoderHeaderTableSize: opts.encoderTable}
	}
	rp.ErrorLog = discardLogger()
	if opts.requestID {
		// Set on the inbound request, which ReverseProxy copies out.
		var n atomic.Uint64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header["X-Request-Id"] = []string{"5f2b9c4e0a1d-" + strconv.FormatUint(n.Add(1), 36)}
			rp.ServeHTTP(w, r)
		}), nil
	}
	return rp, nil
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
