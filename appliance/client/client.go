// Package client is the Go client of the Sallyport appliance's admin API
// (see package api for the contract). The Terraform provider reaches the
// appliance only through it.
//
// A Client is created once from a Config and is safe for concurrent use:
//
//	c, err := client.New(client.Config{
//		Endpoint:      "https://appliance.example:8443",
//		Token:         token,
//		CAFingerprint: "3f:8a:...",
//	})
//	gw, err := c.Gateways().Create(ctx, "edge", model.GatewaySpec{...})
//	gw, err = c.Gateways().WaitReady(ctx, gw.ID, gw.Generation)
//
// Errors the appliance answers with are *APIError values; IsNotFound,
// IsConflict, IsPreconditionFailed, IsValidation and IsUnauthorized classify
// them. The admin token never appears in an error.
package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Defaults applied by New to a zero Config field.
const (
	// DefaultTimeout bounds one HTTP attempt, including reading the body.
	DefaultTimeout = 30 * time.Second
	// DefaultUserAgent is sent when Config.UserAgent is empty.
	DefaultUserAgent = "sallyport-go-client"
	// DefaultMaxRetries is how often an idempotent request is retried after
	// a connection error or a 502, 503 or 504.
	DefaultMaxRetries = 3
)

// maxResponseBytes caps how much of a response body is read, so a
// misbehaving server cannot exhaust the caller's memory.
const maxResponseBytes = 8 << 20

// Config says how to reach and trust an appliance.
type Config struct {
	// Endpoint is the admin API's base URL, for example
	// "https://127.0.0.1:8443". It must use https.
	Endpoint string
	// Token is the admin bearer token. It is sent only in the Authorization
	// header and never included in errors.
	Token string
	// CACertPEM, when set, holds the CA certificate(s) that verify the
	// appliance's server certificate instead of the system roots.
	CACertPEM string
	// CAFingerprint, when set, is the SHA-256 of the admin CA certificate's
	// DER encoding: 64 hex digits, optionally separated by colons. Without
	// CACertPEM the server must present that CA in its chain and its leaf
	// must verify against it for the endpoint's host; with CACertPEM the
	// fingerprint must match one of those certificates, which becomes the
	// only trusted root.
	CAFingerprint string
	// Timeout bounds each HTTP attempt (DefaultTimeout when zero). The
	// caller's context bounds the whole call, retries included.
	Timeout time.Duration
	// UserAgent is sent as User-Agent (DefaultUserAgent when empty).
	UserAgent string
	// MaxRetries is how often an idempotent request is retried
	// (DefaultMaxRetries when zero; negative disables retries).
	MaxRetries int
	// HTTPClient, when set, sends every request as is, for tests that need
	// their own transport. CACertPEM and CAFingerprint cannot be applied to
	// it and must then be empty.
	HTTPClient *http.Client
}

// Client talks to one appliance's admin API. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	token      string
	userAgent  string
	timeout    time.Duration
	maxRetries int
	http       *http.Client
	// backoff returns the wait before retry n (1-based); tests shorten it.
	backoff func(n int) time.Duration
}

// New validates cfg and returns a Client. It does not contact the
// appliance.
func New(cfg Config) (*Client, error) {
	base, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	// Tokens are often read from files or env vars with a trailing newline.
	token := strings.TrimSpace(cfg.Token)
	if token == "" {
		return nil, errors.New("sallyport: token is required")
	}
	for _, r := range token {
		// Reject what would corrupt the header; never echo the token.
		if r < 0x21 || r > 0x7e {
			return nil, errors.New("sallyport: token contains characters not allowed in an HTTP header")
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("sallyport: timeout must not be negative, got %s", cfg.Timeout)
	}
	c := &Client{
		base:       base,
		token:      token,
		userAgent:  cfg.UserAgent,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		backoff:    retryBackoff,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if cfg.HTTPClient != nil {
		if cfg.CACertPEM != "" || cfg.CAFingerprint != "" {
			return nil, errors.New("sallyport: CACertPEM and CAFingerprint cannot be applied to a caller-supplied HTTPClient; configure its transport instead")
		}
		c.http = cfg.HTTPClient
		return c, nil
	}
	tlsConfig, err := newTLSConfig(base.Hostname(), cfg.CACertPEM, cfg.CAFingerprint)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	c.http = &http.Client{
		Transport: transport,
		// The API never redirects; following one could carry the token
		// somewhere unexpected.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// parseEndpoint checks that s is an https URL with a host and nothing but
// an optional base path.
func parseEndpoint(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("sallyport: endpoint is required, for example https://127.0.0.1:8443")
	}
	if !strings.Contains(s, "://") {
		return nil, fmt.Errorf("sallyport: endpoint %q must be an https URL, for example https://%s", s, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("sallyport: endpoint %q is not a valid URL: %w", s, err)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return nil, fmt.Errorf("sallyport: endpoint %q must use https: the admin API is served over TLS only", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("sallyport: endpoint %q has no host", s)
	}
	if u.User != nil {
		return nil, errors.New("sallyport: endpoint must not contain user info; pass the token in Token")
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") {
		return nil, fmt.Errorf("sallyport: endpoint %q must not contain a query or fragment", s)
	}
	u.Scheme = "https"
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Endpoint returns the base URL requests are sent to.
func (c *Client) Endpoint() string { return c.base.String() }

// TLSSettings returns the collection of TLS settings objects.
func (c *Client) TLSSettings() *Collection[model.TLSSettingsSpec] {
	return &Collection[model.TLSSettingsSpec]{c: c, kind: model.KindTLSSettings}
}

// Gateways returns the collection of gateways.
func (c *Client) Gateways() *Collection[model.GatewaySpec] {
	return &Collection[model.GatewaySpec]{c: c, kind: model.KindGateway}
}

// Connections returns the collection of connections.
func (c *Client) Connections() *Collection[model.ConnectionSpec] {
	return &Collection[model.ConnectionSpec]{c: c, kind: model.KindConnection}
}

// IdentityBindings returns the collection of identity bindings.
func (c *Client) IdentityBindings() *Collection[model.IdentityBindingSpec] {
	return &Collection[model.IdentityBindingSpec]{c: c, kind: model.KindIdentityBinding}
}
