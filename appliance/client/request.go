package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// request is one admin API call.
type request struct {
	method string
	// path is relative to the endpoint and already escaped, e.g.
	// "/v1/gateways/gw_1".
	path  string
	query url.Values
	// body, when non-nil, is sent as JSON.
	body any
	// ifMatch, when non-zero, is sent as If-Match: "<ifMatch>".
	ifMatch int64
}

// idempotent reports whether sending r twice has the effect of sending it
// once, so it may be retried after an ambiguous failure. A PUT is retried
// only with If-Match: an unconditional replace could overwrite a change
// someone made between the attempts.
func (r *request) idempotent() bool {
	switch r.method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		return true
	case http.MethodPut:
		return r.ifMatch != 0
	}
	return false
}

// response is what one successful round trip returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r, retrying idempotent requests on connection errors and 502,
// 503 and 504, and decodes a 2xx JSON body into out (when non-nil). A non-2xx
// answer is an *APIError.
func (c *Client) do(ctx context.Context, r request, out any) (*response, error) {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("sallyport: encoding %s %s request: %w", r.method, r.path, err)
		}
	}
	// r.path is already escaped (ids go through url.PathEscape), so it
	// becomes RawPath; Path must be its unescaped twin for URL to use it.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + r.path
	unescaped, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("sallyport: %s %s: %w", r.method, r.path, err)
	}
	u.Path = unescaped
	u.RawQuery = r.query.Encode()
	target := u.String()

	for attempt := 0; ; attempt++ {
		resp, err := c.roundTrip(ctx, r, target, payload)
		retry := false
		switch {
		case err != nil:
			retry = retryableError(err)
		case resp.status == http.StatusBadGateway, resp.status == http.StatusServiceUnavailable, resp.status == http.StatusGatewayTimeout:
			retry = true
		}
		if !retry || !r.idempotent() || attempt >= c.maxRetries || ctx.Err() != nil {
			if err != nil {
				return nil, err
			}
			return resp, c.finish(r, resp, out)
		}
		wait := c.backoff(attempt + 1)
		if resp != nil {
			wait = max(wait, retryAfter(resp.header))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = c.finish(r, resp, nil)
			}
			return nil, fmt.Errorf("sallyport: %s %s: gave up retrying: %w (last error: %w)", r.method, r.path, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// finish turns a non-2xx response into an *APIError and decodes a 2xx one
// into out.
func (c *Client) finish(r request, resp *response, out any) error {
	if resp.status < 200 || resp.status > 299 {
		return newAPIError(&http.Response{StatusCode: resp.status, Header: resp.header}, resp.body)
	}
	if out == nil {
		return nil
	}
	if len(bytes.TrimSpace(resp.body)) == 0 {
		return fmt.Errorf("sallyport: %s %s: empty response body (status %d)", r.method, r.path, resp.status)
	}
	// Decoded leniently: fields a newer appliance adds are ignored.
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("sallyport: decoding the response to %s %s: %w", r.method, r.path, err)
	}
	return nil
}

// roundTrip makes one attempt, bounded by the client's timeout, and reads
// the whole (capped) response body.
func (c *Client) roundTrip(ctx context.Context, r request, target string, payload []byte) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("sallyport: building %s %s request: %w", r.method, r.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.ifMatch != 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(r.ifMatch, 10)))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, actx, r, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, actx, r, fmt.Errorf("reading the response: %w", err))
	}
	if len(data) > maxResponseBytes {
		return nil, &oversizeError{method: r.method, path: r.path}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// transportError words a failed attempt; an attempt that ran out of its own
// time says so rather than blaming the caller's context.
func (c *Client) transportError(ctx, actx context.Context, r request, err error) error {
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &timeoutError{method: r.method, path: r.path, after: c.timeout, err: err}
	}
	return fmt.Errorf("sallyport: %w", err)
}

// timeoutError is an attempt that exceeded Config.Timeout; it is retryable.
type timeoutError struct {
	method, path string
	after        time.Duration
	err          error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("sallyport: %s %s: no complete answer within %s", e.method, e.path, e.after)
}

func (e *timeoutError) Unwrap() error { return e.err }

// Timeout marks the error as a timeout for net.Error-style checks.
func (e *timeoutError) Timeout() bool { return true }

// oversizeError is a response body over maxResponseBytes; retrying would
// not shrink it.
type oversizeError struct{ method, path string }

func (e *oversizeError) Error() string {
	return fmt.Sprintf("sallyport: %s %s: response body exceeds %d MiB", e.method, e.path, maxResponseBytes>>20)
}

// retryableError reports whether a failed attempt may succeed when repeated:
// connection errors and timeouts may, certificate failures and an oversized
// body never will.
func retryableError(err error) bool {
	var (
		timeout   *timeoutError
		oversize  *oversizeError
		pin       *PinError
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		recordHdr tls.RecordHeaderError
		alert     tls.AlertError
		opErr     *net.OpError
	)
	switch {
	case errors.As(err, &timeout):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller's own context ended.
		return false
	case errors.As(err, &oversize), errors.As(err, &pin), errors.As(err, &verify),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &recordHdr), errors.As(err, &alert):
		return false
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert from the server this way: it refused
		// the handshake (protocol version, cipher suites, our certificate),
		// which a new attempt will not change.
		return false
	}
	return true
}

// retryBackoff is the wait before retry n: 200ms doubling up to 2s, with
// jitter so that many clients do not retry in lockstep.
func retryBackoff(n int) time.Duration {
	d := 200 * time.Millisecond << min(n-1, 4)
	d = min(d, 2*time.Second)
	return d - time.Duration(rand.Int64N(int64(d/4)))
}

// retryAfter is the server's Retry-After in seconds, capped so a hostile
// value cannot stall the caller; 0 when absent.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, 5*time.Second)
}
