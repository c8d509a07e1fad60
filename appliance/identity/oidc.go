package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Why a token was rejected: the Reason of a VerifyError. Fixed strings, safe
// as metric labels.
const (
	TokenReasonMalformed           = "malformed"
	TokenReasonUnknownIssuer       = "unknown issuer"
	TokenReasonIDPUnavailable      = "idp unavailable"
	TokenReasonAlgorithmNotAllowed = "algorithm not allowed"
	TokenReasonTypeMismatch        = "token type mismatch"
	TokenReasonUnknownKey          = "unknown signing key"
	TokenReasonBadSignature        = "bad signature"
	TokenReasonAudienceMismatch    = "audience mismatch"
	TokenReasonExpired             = "expired"
	TokenReasonNotYetValid         = "not yet valid"
	TokenReasonInvalid             = "invalid"
)

// MaxTokenSize bounds the raw tokens Verify looks at; larger ones are
// refused before any parsing.
const MaxTokenSize = 64 << 10

// maxDocumentSize bounds discovery documents and key sets read from an IdP.
const maxDocumentSize = 1 << 20

// VerifyError is why a token was rejected. Its message is for logs: it may
// name issuers, key ids and times, and must never be shown to the caller.
type VerifyError struct {
	// Reason is one of the TokenReason constants.
	Reason string
	// Issuer is the issuer the token claims, when it could be read.
	Issuer string
	// Err is the underlying cause.
	Err error
}

// Error implements error.
func (e *VerifyError) Error() string {
	if e.Issuer != "" {
		return fmt.Sprintf("oidc token from %q rejected: %s: %v", e.Issuer, e.Reason, e.Err)
	}
	return fmt.Sprintf("oidc token rejected: %s: %v", e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *VerifyError) Unwrap() error { return e.Err }

// OIDCOptions tune an OIDCVerifier. Zero values select the defaults.
type OIDCOptions struct {
	// Logger receives discovery and key refresh events (never tokens).
	Logger *slog.Logger
	// Clock is the time source for exp/nbf checks, the cache and the
	// refresh intervals (time.Now by default); tests inject their own.
	Clock func() time.Time
	// MaxSkew is the clock skew tolerated on exp and nbf (default 60s;
	// negative means none).
	MaxSkew time.Duration
	// KeyRefreshInterval is the minimum time between two fetches of an
	// issuer's key set (default 1m): a flood of tokens with unknown key ids
	// causes at most one fetch per interval.
	KeyRefreshInterval time.Duration
	// KeyMaxAge is how old a key set may get before it is refetched in the
	// background (default 15m), so that a key the IdP withdrew stops being
	// trusted even if no new key id ever shows up. Negative disables it.
	KeyMaxAge time.Duration
	// DiscoveryRetryInterval is the minimum time between two discovery
	// attempts of an issuer after a failure (default 5s). Until discovery
	// succeeds, its tokens are refused.
	DiscoveryRetryInterval time.Duration
	// HTTPTimeout bounds each request to an IdP (default 10s).
	HTTPTimeout time.Duration
	// CacheSize is how many verified tokens are remembered (default 10000;
	// negative disables the cache).
	CacheSize int
	// CacheTTL is how long a verified token is remembered at most (default
	// 5m); never beyond its exp.
	CacheTTL time.Duration
	// Previous is the verifier this one replaces, if any. The state of
	// every provider whose configuration is unchanged (discovery, keys,
	// verified tokens) carries over, so a configuration reload neither
	// contacts the IdP again nor re-verifies tokens; such a provider keeps
	// the options it was built with. The previous verifier stays usable.
	Previous *OIDCVerifier
}

func (o *OIDCOptions) withDefaults() OIDCOptions {
	d := *o
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	switch {
	case d.MaxSkew == 0:
		d.MaxSkew = 60 * time.Second
	case d.MaxSkew < 0:
		d.MaxSkew = 0
	}
	if d.KeyRefreshInterval <= 0 {
		d.KeyRefreshInterval = time.Minute
	}
	if d.KeyMaxAge == 0 {
		d.KeyMaxAge = 15 * time.Minute
	}
	if d.DiscoveryRetryInterval <= 0 {
		d.DiscoveryRetryInterval = 5 * time.Second
	}
	if d.HTTPTimeout <= 0 {
		d.HTTPTimeout = 10 * time.Second
	}
	if d.CacheSize == 0 {
		d.CacheSize = 10000
	}
	if d.CacheTTL <= 0 {
		d.CacheTTL = 5 * time.Minute
	}
	return d
}

// OIDCVerifier verifies bearer tokens against the OIDC providers one
// gateway trusts. It implements TokenVerifier and is safe for concurrent
// use.
//
// A token is accepted when, in order: it is a compact JWS no larger than
// MaxTokenSize; its "iss" names a configured provider (that selects the
// provider); its "alg" is in the provider's allowed_algorithms (RS256 when
// none are configured); its JOSE "typ" fits the provider's token_type
// ("access": "at+jwt" or "application/at+jwt", RFC 9068; "id": absent or
// "JWT", so an access token cannot pass for an ID token and vice versa; any
// when unset); its signature verifies with a key from the provider's JWKS
// (go-oidc does the JWT checks); one of its "aud" values is a configured
// audience; it has "sub" and "exp"; exp+MaxSkew is still ahead; and nbf,
// when present, is no later than now+MaxSkew.
//
// Discovery is lazy: an unreachable IdP does not fail construction, its
// tokens are refused until discovery (and the first key set fetch)
// succeeds, retried at most once per DiscoveryRetryInterval. Keys are
// cached per issuer; a token with an unknown key id triggers a refetch at
// most once per KeyRefreshInterval, and a key set older than KeyMaxAge is
// refetched in the background. When the IdP is down, tokens signed by keys
// already held keep verifying; new keys cannot be learned, so their tokens
// are refused.
//
// Verified tokens are cached (by SHA-256 of the raw token) until the
// earlier of exp and CacheTTL; a cached token is refused as soon as a key
// set fetch shows its signing key withdrawn. Returned identities may be
// shared between calls and must be treated as read-only. Claims keep every
// claim of the token, with numbers as json.Number so large integer ids
// keep all their digits.
type OIDCVerifier struct {
	providers map[string]*oidcProvider // by exact issuer URL
	cache     *tokenCache              // nil when disabled
	opts      OIDCOptions
}

var _ TokenVerifier = (*OIDCVerifier)(nil)

// NewOIDCVerifier builds a verifier for providers. It does not contact any
// IdP (see OIDCVerifier); it fails only on configuration that can never
// work: an issuer that is not an https URL, no audience, an unknown
// algorithm, an unparsable CA or token type, or an issuer listed twice.
func NewOIDCVerifier(providers []model.OIDCProvider, opts OIDCOptions) (*OIDCVerifier, error) {
	o := opts.withDefaults()
	v := &OIDCVerifier{providers: make(map[string]*oidcProvider, len(providers)), opts: o}
	prev := opts.Previous
	for i := range providers {
		cfg := providers[i]
		if _, dup := v.providers[cfg.IssuerURL]; dup {
			return nil, fmt.Errorf("oidc provider %q is listed twice", cfg.IssuerURL)
		}
		fp := fingerprint(cfg)
		if prev != nil {
			if old, ok := prev.providers[cfg.IssuerURL]; ok && old.fingerprint == fp {
				v.providers[cfg.IssuerURL] = old
				continue
			}
		}
		p, err := newOIDCProvider(cfg, fp, o)
		if err != nil {
			return nil, err
		}
		v.providers[cfg.IssuerURL] = p
	}
	if o.CacheSize > 0 {
		// Entries are only ever served for the provider object that
		// verified them, so sharing the previous cache is safe.
		if prev != nil && prev.cache != nil && prev.cache.max == o.CacheSize {
			v.cache = prev.cache
		} else {
			v.cache = newTokenCache(o.CacheSize)
		}
	}
	return v, nil
}

// Verify checks a raw JWT and returns its identity. Every failure is a
// *VerifyError; the caller denies.
func (v *OIDCVerifier) Verify(ctx context.Context, rawToken string) (*Identity, error) {
	if rawToken == "" {
		return nil, &VerifyError{Reason: TokenReasonMalformed, Err: errors.New("empty token")}
	}
	if len(rawToken) > MaxTokenSize {
		return nil, &VerifyError{Reason: TokenReasonMalformed, Err: fmt.Errorf("token of %d bytes exceeds %d", len(rawToken), MaxTokenSize)}
	}
	now := v.opts.Clock()

	var key [sha256.Size]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(rawToken))
		if e := v.cache.get(key, now); e != nil && v.providers[e.id.Issuer] == e.provider {
			// Served only for the provider configuration that verified it
			// (a cache shared across a reload holds entries of both), and
			// while its signing key has not been withdrawn.
			if e.keys.has(e.thumbprint) {
				e.keys.maybeRefreshStale()
				return e.id, nil
			}
			v.cache.remove(key)
		}
	}

	hdr, iss, err := peek(rawToken)
	if err != nil {
		return nil, &VerifyError{Reason: TokenReasonMalformed, Err: err}
	}
	p := v.providers[iss]
	if p == nil {
		return nil, &VerifyError{Reason: TokenReasonUnknownIssuer, Issuer: iss, Err: fmt.Errorf("issuer %q is not trusted by this gateway", iss)}
	}
	fail := func(reason string, err error) (*Identity, error) {
		return nil, &VerifyError{Reason: reason, Issuer: iss, Err: err}
	}
	if !slices.Contains(p.algs, hdr.Alg) {
		return fail(TokenReasonAlgorithmNotAllowed, fmt.Errorf("algorithm %q is not one of %v", hdr.Alg, p.algs))
	}
	if err := checkTokenType(p.cfg.TokenType, hdr.Typ); err != nil {
		return fail(TokenReasonTypeMismatch, err)
	}
	d, err := p.ready(ctx)
	if err != nil {
		return fail(TokenReasonIDPUnavailable, err)
	}

	res := &sigResult{}
	tok, err := d.verifier.Verify(context.WithValue(ctx, sigResultKey{}, res), rawToken)
	if err != nil {
		if res.reason != "" {
			return fail(res.reason, res.err)
		}
		return fail(TokenReasonInvalid, err)
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return p.audiences[a] }) {
		return fail(TokenReasonAudienceMismatch, fmt.Errorf("audience %q contains none of %v", tok.Audience, p.cfg.Audiences))
	}
	if tok.Subject == "" {
		return fail(TokenReasonMalformed, errors.New("token has no sub"))
	}
	if tok.Expiry.IsZero() {
		return fail(TokenReasonMalformed, errors.New("token has no exp"))
	}
	if now.After(tok.Expiry.Add(v.opts.MaxSkew)) {
		return fail(TokenReasonExpired, fmt.Errorf("expired at %s (now %s, skew %s)", tok.Expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.opts.MaxSkew))
	}
	claims, err := decodeClaims(res.payload)
	if err != nil {
		return fail(TokenReasonMalformed, err)
	}
	if nbf, ok, err := numericDate(claims["nbf"]); err != nil {
		return fail(TokenReasonMalformed, fmt.Errorf("nbf: %w", err))
	} else if ok && nbf.After(now.Add(v.opts.MaxSkew)) {
		return fail(TokenReasonNotYetValid, fmt.Errorf("not valid before %s (now %s, skew %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.opts.MaxSkew))
	}

	id := &Identity{
		Source:  SourceOIDC,
		Issuer:  tok.Issuer,
		Subject: tok.Subject,
		Claims:  claims,
		Expiry:  tok.Expiry,
	}
	if v.cache != nil {
		until := earlier(tok.Expiry, now.Add(v.opts.CacheTTL))
		if until.After(now) {
			v.cache.put(&cacheEntry{key: key, id: id, until: until, provider: p, keys: d.keys, thumbprint: res.thumbprint})
		}
	}
	return id, nil
}

// earlier returns the earlier of two times.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// joseHeader is the part of a JWS header read before verification.
type joseHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

// peek reads the header and the issuer of an unverified compact JWS. The
// issuer only selects which provider verifies the token.
func peek(raw string) (joseHeader, string, error) {
	var h joseHeader
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return h, "", fmt.Errorf("not a signed JWT: %d parts instead of 3", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, "", fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, "", fmt.Errorf("header: %w", err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return h, "", fmt.Errorf("payload: %w", err)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return h, "", fmt.Errorf("payload: %w", err)
	}
	if c.Iss == "" {
		return h, "", errors.New("token has no iss")
	}
	return h, c.Iss, nil
}

// checkTokenType enforces a provider's token_type on the JOSE "typ"
// header (media types compare case-insensitively, RFC 7515 4.1.9).
func checkTokenType(want, typ string) error {
	isAT := strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
	switch want {
	case "":
		return nil
	case model.TokenTypeAccess:
		if !isAT {
			return fmt.Errorf("typ %q is not an access token (want at+jwt)", typ)
		}
	case model.TokenTypeID:
		if typ != "" && !strings.EqualFold(typ, "JWT") && !strings.EqualFold(typ, "application/jwt") {
			return fmt.Errorf("typ %q is not an ID token (want JWT or none)", typ)
		}
	default:
		return fmt.Errorf("unknown token type %q configured", want)
	}
	return nil
}

// decodeClaims decodes a verified payload keeping numbers exact.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	return claims, nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch, possibly
// fractional).
func numericDate(v any) (time.Time, bool, error) {
	if v == nil {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%v is not a number", v)
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%v: %w", v, err)
	}
	// Bounded so the conversion below cannot overflow into the past.
	if f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%v is out of range", v)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, nil
}

// fingerprint identifies a provider configuration, for reuse across
// reloads.
func fingerprint(p model.OIDCProvider) string {
	p.Audiences = slices.Sorted(slices.Values(p.Audiences))
	p.AllowedAlgorithms = slices.Sorted(slices.Values(p.AllowedAlgorithms))
	b, _ := json.Marshal(p) // a struct of strings always marshals
	sum := sha256.Sum256(b)
	return string(sum[:])
}

// oidcProvider is the state of one trusted issuer: its configuration, its
// HTTP client, and once discovered, its go-oidc verifier and key set.
type oidcProvider struct {
	cfg         model.OIDCProvider
	fingerprint string
	audiences   map[string]bool
	algs        []string
	client      *http.Client
	opts        OIDCOptions

	discovered atomic.Pointer[discovery]
	// gate serializes discovery attempts; lastAttempt and lastErr are
	// only touched while holding it.
	gate        chan struct{}
	lastAttempt time.Time
	lastErr     error
}

// discovery is what a successful discovery yields.
type discovery struct {
	verifier *oidc.IDTokenVerifier
	keys     *keySet
}

func newOIDCProvider(cfg model.OIDCProvider, fp string, o OIDCOptions) (*oidcProvider, error) {
	u, err := url.Parse(cfg.IssuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("oidc provider %q: issuer must be an https URL", cfg.IssuerURL)
	}
	if len(cfg.Audiences) == 0 {
		return nil, fmt.Errorf("oidc provider %q: no audience: tokens for any audience would be accepted", cfg.IssuerURL)
	}
	p := &oidcProvider{
		cfg:         cfg,
		fingerprint: fp,
		audiences:   map[string]bool{},
		algs:        cfg.AllowedAlgorithms,
		opts:        o,
		gate:        make(chan struct{}, 1),
	}
	for _, a := range cfg.Audiences {
		p.audiences[a] = true
	}
	if len(p.algs) == 0 {
		p.algs = []string{"RS256"}
	}
	for _, a := range p.algs {
		if !slices.Contains(model.OIDCAlgorithms, a) {
			return nil, fmt.Errorf("oidc provider %q: algorithm %q is not supported", cfg.IssuerURL, a)
		}
	}
	switch cfg.TokenType {
	case "", model.TokenTypeAccess, model.TokenTypeID:
	default:
		return nil, fmt.Errorf("oidc provider %q: unknown token_type %q", cfg.IssuerURL, cfg.TokenType)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cfg.CAPEM)) {
			return nil, fmt.Errorf("oidc provider %q: ca_pem holds no certificate", cfg.IssuerURL)
		}
		tlsConf.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: o.HTTPTimeout,
		// Verifiers are rebuilt on reloads: idle connections must not
		// outlive them for long.
		IdleConnTimeout:   30 * time.Second,
		MaxIdleConns:      4,
		ForceAttemptHTTP2: true,
	}
	p.client = &http.Client{
		Transport: limitedTransport{transport},
		Timeout:   o.HTTPTimeout,
		// Keys must arrive over verified TLS all the way: an https
		// redirect is followed, a downgrade is not.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return fmt.Errorf("refusing redirect to %s: not https", req.URL.Redacted())
			}
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
	return p, nil
}

// ready returns the provider's discovery, performing it if needed. After a
// failure, further attempts wait DiscoveryRetryInterval; meanwhile the last
// error is returned at once.
func (p *oidcProvider) ready(ctx context.Context) (*discovery, error) {
	if d := p.discovered.Load(); d != nil {
		return d, nil
	}
	select {
	case p.gate <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for discovery of %s: %w", p.cfg.IssuerURL, ctx.Err())
	}
	defer func() { <-p.gate }()
	if d := p.discovered.Load(); d != nil {
		return d, nil
	}
	now := p.opts.Clock()
	if !p.lastAttempt.IsZero() && now.Sub(p.lastAttempt) < p.opts.DiscoveryRetryInterval {
		return nil, fmt.Errorf("discovery failed at %s, next attempt after %s: %w",
			p.lastAttempt.UTC().Format(time.RFC3339), p.lastAttempt.Add(p.opts.DiscoveryRetryInterval).UTC().Format(time.RFC3339), p.lastErr)
	}
	p.lastAttempt = now
	d, err := p.discover(ctx)
	if err != nil {
		p.lastErr = err
		p.opts.Logger.Warn("oidc discovery failed", "issuer", p.cfg.IssuerURL, "error", err)
		return nil, err
	}
	p.discovered.Store(d)
	p.opts.Logger.Info("oidc provider discovered", "issuer", p.cfg.IssuerURL, "jwks_uri", d.keys.url, "keys", len(d.keys.state.Load().keys))
	return d, nil
}

// discover reads the discovery document (go-oidc checks that it names the
// same issuer) and the first key set. The attempt is detached from the
// caller's cancellation: other requests wait on it, and a cancelled
// request must not count as the IdP failing.
func (p *oidcProvider) discover(ctx context.Context) (*discovery, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.HTTPTimeout)
	defer cancel()
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", p.cfg.IssuerURL, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", p.cfg.IssuerURL, err)
	}
	ju, err := url.Parse(meta.JWKSURI)
	if err != nil || ju.Scheme != "https" || ju.Host == "" {
		return nil, fmt.Errorf("discovery of %s: jwks_uri %q is not an https URL", p.cfg.IssuerURL, meta.JWKSURI)
	}
	ks := newKeySet(p.cfg.IssuerURL, meta.JWKSURI, p.client, p.algs, p.opts)
	if err := ks.refresh(ctx, "discovery"); err != nil {
		return nil, err
	}
	verifier := oidc.NewVerifier(p.cfg.IssuerURL, ks, &oidc.Config{
		// Audiences (several), expiry and nbf (with our skew) are checked
		// by Verify itself; go-oidc checks the signature, alg and iss.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: p.algs,
		Now:                  p.opts.Clock,
	})
	return &discovery{verifier: verifier, keys: ks}, nil
}

// limitedTransport caps what is read from an IdP, so a hostile or broken
// one cannot make the gateway buffer without bound.
type limitedTransport struct{ rt http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, maxDocumentSize), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// sigResultKey carries a *sigResult through go-oidc into the key set, which
// reports which key verified the token (for the cache) or why none did.
type sigResultKey struct{}

type sigResult struct {
	payload    []byte
	thumbprint string
	reason     string
	err        error
}

// tokenCache is a bounded LRU of verified tokens.
type tokenCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]*cacheEntry
	// head is the most recently used entry, tail the least; a ring through
	// a sentinel keeps insertion and removal branch-free.
	sentinel cacheEntry
}

type cacheEntry struct {
	key        [sha256.Size]byte
	id         *Identity
	until      time.Time
	provider   *oidcProvider
	keys       *keySet
	thumbprint string
	prev, next *cacheEntry
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{max: size, entries: make(map[[sha256.Size]byte]*cacheEntry, min(size, 1024))}
	c.sentinel.prev, c.sentinel.next = &c.sentinel, &c.sentinel
	return c
}

// get returns the live entry for key, or nil; expired entries are dropped.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		return nil
	}
	if !now.Before(e.until) {
		c.unlink(e)
		return nil
	}
	c.unlinkOnly(e)
	c.pushFront(e)
	return e
}

func (c *tokenCache) put(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[e.key]; old != nil {
		c.unlink(old)
	}
	for len(c.entries) >= c.max {
		c.unlink(c.sentinel.prev)
	}
	c.entries[e.key] = e
	c.pushFront(e)
}

func (c *tokenCache) remove(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		c.unlink(e)
	}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *tokenCache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.sentinel, c.sentinel.next
	e.next.prev = e
	c.sentinel.next = e
}

func (c *tokenCache) unlinkOnly(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *tokenCache) unlink(e *cacheEntry) {
	c.unlinkOnly(e)
	delete(c.entries, e.key)
}
