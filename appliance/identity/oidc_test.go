package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// testClock is an injectable clock; it starts at the real time because
// the IdP stamps tokens with it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// requestCounter counts the requests a real IdP serves, per path.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (rc *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		if rc.counts == nil {
			rc.counts = map[string]int{}
		}
		rc.counts[r.URL.Path]++
		rc.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (rc *requestCounter) get(path string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.counts[path]
}

const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/keys"
	audience      = "sallyport"
)

// fixture is a real development IdP over TLS on 127.0.0.1 and the means to
// build verifiers against it.
type fixture struct {
	idp      *devidp.IDP
	requests *requestCounter
	clock    *testClock
	opts     devidp.Options
}

var workloadClaims = map[string]any{
	// GitHub Actions style.
	"repository":          "octo/app",
	"ref":                 "refs/heads/main",
	"repository_owner_id": json.Number("12345678901234567890"),
	// Kubernetes projected service account style.
	"kubernetes.io": map[string]any{
		"namespace":      "ci",
		"serviceaccount": map[string]any{"name": "builder", "uid": "9f2c"},
	},
	"groups": []string{"dev", "ops"},
}

func newFixture(t testing.TB, mods ...func(*devidp.Options)) *fixture {
	t.Helper()
	cert, caPEM, err := devidp.GenerateTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{requests: &requestCounter{}, clock: newTestClock()}
	f.opts = devidp.Options{
		Certificate: cert,
		CACertPEM:   caPEM,
		Audience:    []string{audience},
		Clients: []devidp.Client{
			{ID: "planner", Secret: "s3cret", Subject: "repo:octo/app:ref:refs/heads/main", Claims: workloadClaims},
			{ID: "intruder", Secret: "x", Audience: []string{"someone-else"}},
		},
		Wrap: f.requests.wrap,
	}
	for _, m := range mods {
		m(&f.opts)
	}
	f.start(t)
	return f
}

func (f *fixture) start(t testing.TB) {
	t.Helper()
	idp, err := devidp.Start(t.Context(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	f.idp = idp
}

// restart brings the IdP back at the same issuer URL (with new keys).
func (f *fixture) restart(t testing.TB) {
	t.Helper()
	f.opts.Addr = f.idp.Addr()
	f.start(t)
}

func (f *fixture) provider(mods ...func(*model.OIDCProvider)) model.OIDCProvider {
	p := model.OIDCProvider{IssuerURL: f.idp.Issuer(), Audiences: []string{audience}, CAPEM: string(f.idp.CACertPEM())}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func (f *fixture) verifier(t testing.TB, opts OIDCOptions, providers ...model.OIDCProvider) *OIDCVerifier {
	t.Helper()
	if len(providers) == 0 {
		providers = []model.OIDCProvider{f.provider()}
	}
	if opts.Clock == nil {
		opts.Clock = f.clock.Now
	}
	v, err := NewOIDCVerifier(providers, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) token(t testing.TB) string {
	t.Helper()
	return f.tokenFor(t, "planner", "s3cret")
}

func (f *fixture) tokenFor(t testing.TB, client, secret string) string {
	t.Helper()
	tok, err := f.idp.IssueToken(t.Context(), client, secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rewrite changes a token's header and/or payload, keeping its signature
// (which then no longer matches, except where only the kid changed and the
// check never gets that far).
func rewrite(t testing.TB, token string, header, payload func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	edit := func(i int, fn func(map[string]any)) {
		if fn == nil {
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		parts[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	edit(0, header)
	edit(1, payload)
	return strings.Join(parts, ".")
}

func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T), want a *VerifyError with reason %q", err, err, reason)
	}
	if ve.Reason != reason {
		t.Fatalf("reason %q (%v), want %q", ve.Reason, err, reason)
	}
}

func TestVerifyAcceptsValidToken(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, OIDCOptions{})
	id, err := v.Verify(t.Context(), f.token(t))
	if err != nil {
		t.Fatal(err)
	}
	if id.Source != SourceOIDC || id.Issuer != f.idp.Issuer() || id.Subject != "repo:octo/app:ref:refs/heads/main" {
		t.Errorf("identity %+v", id)
	}
	if d := id.Expiry.Sub(f.clock.Now()); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expiry in %s", d)
	}
	if id.Claims["repository"] != "octo/app" || id.Claims["client_id"] != "planner" {
		t.Errorf("claims %v", id.Claims)
	}
	if n, ok := id.Claims["repository_owner_id"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("repository_owner_id %#v lost digits", id.Claims["repository_owner_id"])
	}
	k8s, _ := id.Claims["kubernetes.io"].(map[string]any)
	if sa, _ := k8s["serviceaccount"].(map[string]any); sa["name"] != "builder" {
		t.Errorf("kubernetes.io %v", id.Claims["kubernetes.io"])
	}

	// End to end with a binding over workload claims.
	b, err := CompileBinding("b", "ci", &model.IdentityBindingSpec{
		Issuer:  f.idp.Issuer() + "/",
		Subject: "repo:octo/app:**",
		Claims:  map[string]string{"repository": "octo/*", "kubernetes.io.namespace": "ci", "groups": "ops"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, reason := b.Allows(id, Request{Method: "GET", Path: "/"}, f.clock.Now()); !ok {
		t.Errorf("binding denied: %s", reason)
	}
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // another real IdP, trusted by nobody here
	good := f.token(t)
	exp := time.Now().Add(10 * time.Minute)

	tests := []struct {
		name     string
		provider func(*model.OIDCProvider)
		opts     OIDCOptions
		clock    func(*testClock)
		token    func(t *testing.T) string
		reason   string
	}{
		{name: "wrong audience", provider: func(p *model.OIDCProvider) { p.Audiences = []string{"other-gateway"} }, reason: TokenReasonAudienceMismatch},
		{name: "token for another audience", token: func(t *testing.T) string { return f.tokenFor(t, "intruder", "x") }, reason: TokenReasonAudienceMismatch},
		{name: "unknown issuer", token: func(t *testing.T) string { return other.token(t) }, reason: TokenReasonUnknownIssuer},
		{name: "issuer forged by another IdP", token: func(t *testing.T) string {
			return rewrite(t, other.token(t), nil, func(c map[string]any) { c["iss"] = f.idp.Issuer() })
		}, reason: TokenReasonUnknownKey},
		{name: "issuer swapped", token: func(t *testing.T) string {
			return rewrite(t, good, nil, func(c map[string]any) { c["iss"] = other.idp.Issuer() })
		}, reason: TokenReasonUnknownIssuer},
		{name: "expired beyond skew", clock: func(c *testClock) { c.Set(exp.Add(2 * time.Minute)) }, reason: TokenReasonExpired},
		{name: "expired beyond a smaller skew", opts: OIDCOptions{MaxSkew: time.Second}, clock: func(c *testClock) { c.Set(exp.Add(30 * time.Second)) }, reason: TokenReasonExpired},
		{name: "not yet valid beyond skew", clock: func(c *testClock) { c.Set(time.Now().Add(-5 * time.Minute)) }, reason: TokenReasonNotYetValid},
		{name: "algorithm not allowed", provider: func(p *model.OIDCProvider) { p.AllowedAlgorithms = []string{"ES256"} }, reason: TokenReasonAlgorithmNotAllowed},
		{name: "alg none", token: func(t *testing.T) string {
			tok := rewrite(t, good, func(h map[string]any) { h["alg"] = "none" }, nil)
			return tok[:strings.LastIndex(tok, ".")+1]
		}, reason: TokenReasonAlgorithmNotAllowed},
		{name: "alg HS256 (key confusion)", token: func(t *testing.T) string {
			return rewrite(t, good, func(h map[string]any) { h["alg"] = "HS256" }, nil)
		}, reason: TokenReasonAlgorithmNotAllowed},
		{name: "access required, got typ JWT", provider: func(p *model.OIDCProvider) { p.TokenType = model.TokenTypeAccess }, reason: TokenReasonTypeMismatch},
		{name: "id required, got at+jwt", provider: func(p *model.OIDCProvider) { p.TokenType = model.TokenTypeID }, token: func(t *testing.T) string {
			return rewrite(t, good, func(h map[string]any) { h["typ"] = "at+jwt" }, nil)
		}, reason: TokenReasonTypeMismatch},
		{name: "tampered signature", token: func(t *testing.T) string {
			parts := strings.Split(good, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 0x01
			parts[2] = base64.RawURLEncoding.EncodeToString(sig)
			return strings.Join(parts, ".")
		}, reason: TokenReasonBadSignature},
		{name: "tampered claims", token: func(t *testing.T) string {
			return rewrite(t, good, nil, func(c map[string]any) { c["sub"] = "admin" })
		}, reason: TokenReasonBadSignature},
		{name: "empty", token: func(*testing.T) string { return "" }, reason: TokenReasonMalformed},
		{name: "not a JWT", token: func(*testing.T) string { return "opaque-token" }, reason: TokenReasonMalformed},
		{name: "JWE shape", token: func(*testing.T) string { return "a.b.c.d.e" }, reason: TokenReasonMalformed},
		{name: "garbage header", token: func(*testing.T) string { return "!!!." + strings.SplitN(good, ".", 2)[1] }, reason: TokenReasonMalformed},
		{name: "no iss", token: func(t *testing.T) string {
			return rewrite(t, good, nil, func(c map[string]any) { delete(c, "iss") })
		}, reason: TokenReasonMalformed},
		{name: "oversized", token: func(*testing.T) string { return strings.Repeat("a", MaxTokenSize+1) }, reason: TokenReasonMalformed},
		{name: "wrong CA for the IdP", provider: func(p *model.OIDCProvider) { p.CAPEM = string(other.idp.CACertPEM()) }, reason: TokenReasonIDPUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			if tt.clock != nil {
				tt.clock(clock)
			}
			opts := tt.opts
			opts.Clock = clock.Now
			p := f.provider()
			if tt.provider != nil {
				tt.provider(&p)
			}
			v := f.verifier(t, opts, p)
			tok := good
			if tt.token != nil {
				tok = tt.token(t)
			}
			id, err := v.Verify(t.Context(), tok)
			if id != nil {
				t.Fatalf("accepted: %+v", id)
			}
			wantReason(t, err, tt.reason)
		})
	}
}

func TestVerifyToleratesBoundedSkew(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t)
	for name, at := range map[string]time.Time{
		"just after exp":  time.Now().Add(10*time.Minute + 30*time.Second),
		"just before nbf": time.Now().Add(-30 * time.Second),
	} {
		clock := newTestClock()
		clock.Set(at)
		v := f.verifier(t, OIDCOptions{Clock: clock.Now})
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTokenTypeID(t *testing.T) {
	f := newFixture(t)
	// The op package types its JWTs "JWT", which is what an ID token
	// carries: accepted where ID tokens are expected.
	v := f.verifier(t, OIDCOptions{}, f.provider(func(p *model.OIDCProvider) { p.TokenType = model.TokenTypeID }))
	if _, err := v.Verify(t.Context(), f.token(t)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want, typ string
		ok        bool
	}{
		{model.TokenTypeAccess, "at+jwt", true},
		{model.TokenTypeAccess, "application/AT+JWT", true},
		{model.TokenTypeAccess, "JWT", false},
		{model.TokenTypeAccess, "", false},
		{model.TokenTypeID, "", true},
		{model.TokenTypeID, "JWT", true},
		{model.TokenTypeID, "at+jwt", false},
		{model.TokenTypeID, "application/at+jwt", false},
		{"", "anything", true},
	} {
		if err := checkTokenType(tc.want, tc.typ); (err == nil) != tc.ok {
			t.Errorf("checkTokenType(%q, %q) = %v", tc.want, tc.typ, err)
		}
	}
}

func TestKeyRotationWithdrawingTheOldKey(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, OIDCOptions{KeyMaxAge: -1})
	old := f.token(t)
	oldID, err := v.Verify(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.requests.get(jwksPath); n != 1 {
		t.Fatalf("JWKS fetched %d times after discovery, want 1", n)
	}

	if err := f.idp.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	// Until the verifier sees the new key set, the old token still stands.
	if id, err := v.Verify(t.Context(), old); err != nil || id != oldID {
		t.Fatalf("old token before any refetch: %v, %v", id, err)
	}

	// A token signed with the new key, right after the key set was
	// fetched: the rate limit holds (refused, no fetch).
	fresh := f.token(t)
	_, err = v.Verify(t.Context(), fresh)
	wantReason(t, err, TokenReasonUnknownKey)
	if n := f.requests.get(jwksPath); n != 1 {
		t.Fatalf("JWKS fetched %d times within the refresh interval, want 1", n)
	}

	// Once the interval has passed: one refetch, then accepted.
	f.clock.Advance(time.Minute)
	if _, err := v.Verify(t.Context(), fresh); err != nil {
		t.Fatalf("token signed with the new key: %v", err)
	}
	if n := f.requests.get(jwksPath); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (one refetch for the new kid)", n)
	}

	// The refetched set no longer holds the old key: the old token, cached
	// or not, is refused from now on, without another fetch.
	_, err = v.Verify(t.Context(), old)
	wantReason(t, err, TokenReasonUnknownKey)
	uncached := f.verifier(t, OIDCOptions{KeyMaxAge: -1, CacheSize: -1})
	_, err = uncached.Verify(t.Context(), old)
	wantReason(t, err, TokenReasonUnknownKey)
	if _, err := v.Verify(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	if n := f.requests.get(jwksPath); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3 (2 for v, 1 for the uncached verifier's discovery)", n)
	}
}

func TestKeyRotationKeepingThePreviousKey(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, OIDCOptions{KeyMaxAge: -1})
	old := f.token(t)
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if err := f.idp.RotateKeysGracefully(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := v.Verify(t.Context(), f.token(t)); err != nil {
		t.Fatal(err)
	}
	if n := f.requests.get(jwksPath); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
	// The previous key is still published: the old token stands, until
	// its exp.
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("old token after a graceful rotation: %v", err)
	}
	f.clock.Advance(11 * time.Minute)
	_, err := v.Verify(t.Context(), old)
	wantReason(t, err, TokenReasonExpired)
}

func TestStaleKeySetIsRefetchedInBackground(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, OIDCOptions{KeyMaxAge: 2 * time.Minute, KeyRefreshInterval: time.Minute})
	tok := f.token(t)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	// The IdP withdraws the key; no token with a new kid ever arrives.
	if err := f.idp.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Minute)
	// This request is served from what is known and starts a refetch.
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(t.Context(), tok)
		if err != nil {
			wantReason(t, err, TokenReasonUnknownKey)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the withdrawn key was still trusted 10s after the key set went stale")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := f.requests.get(jwksPath); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

// TestUnknownKidFloodIsRateLimited sends many concurrent tokens with
// random key ids: however many, the real IdP sees at most one key set
// fetch per KeyRefreshInterval.
func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	f := newFixture(t)
	const interval = time.Minute
	v := f.verifier(t, OIDCOptions{KeyRefreshInterval: interval, KeyMaxAge: -1})
	good := f.token(t)
	if _, err := v.Verify(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	flood := func() {
		var tokens [8][50]string
		for i := range tokens {
			for j := range tokens[i] {
				kid := make([]byte, 12)
				_, _ = rand.Read(kid)
				tokens[i][j] = rewrite(t, good, func(h map[string]any) { h["kid"] = base64.RawURLEncoding.EncodeToString(kid) }, nil)
			}
		}
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for i := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, tok := range tokens[i] {
					if _, err := v.Verify(context.Background(), tok); err == nil {
						accepted.Add(1)
					} else {
						var ve *VerifyError
						if !errors.As(err, &ve) || ve.Reason != TokenReasonUnknownKey {
							t.Errorf("flood token: %v", err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if accepted.Load() != 0 {
			t.Errorf("%d tokens with random kids accepted", accepted.Load())
		}
	}
	steps := []struct {
		advance time.Duration
		fetches int
	}{
		{0, 1},                        // right after discovery: no refetch at all
		{interval, 2},                 // an interval later: exactly one
		{interval / 2, 2},             // half an interval later: none
		{interval/2 + time.Second, 3}, // past the interval again: one more
	}
	for i, s := range steps {
		f.clock.Advance(s.advance)
		flood()
		if n := f.requests.get(jwksPath); n != s.fetches {
			t.Fatalf("step %d: %d JWKS fetches for 400 unknown kids, want %d", i, n, s.fetches)
		}
	}
	// Genuine tokens were never disturbed.
	if _, err := v.Verify(t.Context(), good); err != nil {
		t.Fatal(err)
	}
}

func TestIdPDownAtStartThenBack(t *testing.T) {
	f := newFixture(t)
	stale := f.token(t)
	if err := f.idp.Close(); err != nil {
		t.Fatal(err)
	}

	// Construction does not need the IdP.
	v := f.verifier(t, OIDCOptions{DiscoveryRetryInterval: 5 * time.Second, HTTPTimeout: 5 * time.Second})
	_, err := v.Verify(t.Context(), stale)
	wantReason(t, err, TokenReasonIDPUnavailable)

	// Back, but within the retry interval: refused at once, the IdP is not
	// asked.
	f.restart(t)
	before := f.requests.get(discoveryPath)
	_, err = v.Verify(t.Context(), f.token(t))
	wantReason(t, err, TokenReasonIDPUnavailable)
	if n := f.requests.get(discoveryPath); n != before {
		t.Fatalf("discovery asked %d times within the retry interval", n-before)
	}

	f.clock.Advance(5 * time.Second)
	id, err := v.Verify(t.Context(), f.token(t))
	if err != nil {
		t.Fatalf("after the IdP came back: %v", err)
	}
	if id.Issuer != f.idp.Issuer() {
		t.Errorf("issuer %q", id.Issuer)
	}
	// The token signed before the outage used a key that is gone.
	_, err = v.Verify(t.Context(), stale)
	wantReason(t, err, TokenReasonUnknownKey)
}

func TestIdPDownAfterDiscovery(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, OIDCOptions{CacheSize: -1, KeyMaxAge: -1, HTTPTimeout: 5 * time.Second})
	tok := f.token(t)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if err := f.idp.Close(); err != nil {
		t.Fatal(err)
	}
	// Keys already held keep verifying (no cache involved here).
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("known key while the IdP is down: %v", err)
	}
	// A key the verifier cannot learn: refused.
	f.clock.Advance(2 * time.Minute)
	_, err := v.Verify(t.Context(), rewrite(t, tok, func(h map[string]any) { h["kid"] = "new-key" }, nil))
	wantReason(t, err, TokenReasonUnknownKey)
	if !strings.Contains(err.Error(), "refetch") {
		t.Errorf("error %q does not say the refetch failed", err)
	}
}

func TestCacheHitNeedsNoNetwork(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, OIDCOptions{})
	tok := f.token(t)
	first, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	total := f.requests.get(discoveryPath) + f.requests.get(jwksPath)
	if err := f.idp.Close(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		id, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if id != first {
			t.Fatal("cache miss: the identity was rebuilt")
		}
	}
	if n := f.requests.get(discoveryPath) + f.requests.get(jwksPath); n != total {
		t.Errorf("%d IdP requests on cache hits", n-total)
	}
}

func TestCacheBoundsAndLifetime(t *testing.T) {
	f := newFixture(t, func(o *devidp.Options) {
		o.Clients = append(o.Clients, devidp.Client{ID: "c2", Secret: "x"}, devidp.Client{ID: "c3", Secret: "x"})
	})
	v := f.verifier(t, OIDCOptions{CacheSize: 2, CacheTTL: time.Minute, KeyMaxAge: -1})
	t1, t2, t3 := f.token(t), f.tokenFor(t, "c2", "x"), f.tokenFor(t, "c3", "x")
	id1, err := v.Verify(t.Context(), t1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{t2, t3} {
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want its bound 2", n)
	}
	// t1 was least recently used: evicted, so verified anew.
	again, err := v.Verify(t.Context(), t1)
	if err != nil {
		t.Fatal(err)
	}
	if again == id1 {
		t.Error("t1 was not evicted")
	}
	// Within the TTL the entry is served; past it, verified anew.
	if id, _ := v.Verify(t.Context(), t1); id != again {
		t.Error("t1 not served from the cache")
	}
	f.clock.Advance(61 * time.Second)
	if id, _ := v.Verify(t.Context(), t1); id == again {
		t.Error("t1 served from the cache past its TTL")
	}
	// Never past exp: with a long TTL, an expired token is not served.
	long := f.verifier(t, OIDCOptions{CacheTTL: time.Hour, MaxSkew: -1, KeyMaxAge: -1})
	if _, err := long.Verify(t.Context(), t2); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Minute)
	_, err = long.Verify(t.Context(), t2)
	wantReason(t, err, TokenReasonExpired)
}

func TestPreviousVerifierStateCarriesOver(t *testing.T) {
	f := newFixture(t)
	v1 := f.verifier(t, OIDCOptions{KeyMaxAge: -1})
	tok := f.token(t)
	id1, err := v1.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	requests := func() int { return f.requests.get(discoveryPath) + f.requests.get(jwksPath) }
	before := requests()

	// Same configuration: no discovery, and the cached identity is served.
	v2 := f.verifier(t, OIDCOptions{KeyMaxAge: -1, Previous: v1})
	if id, err := v2.Verify(t.Context(), tok); err != nil || id != id1 {
		t.Fatalf("v2: %v, %v (same identity: %v)", id, err, id == id1)
	}
	if n := requests(); n != before {
		t.Errorf("reload contacted the IdP %d times", n-before)
	}

	// Changed configuration: that provider starts afresh, and the cache
	// entry verified under the old configuration is not served.
	v3 := f.verifier(t, OIDCOptions{KeyMaxAge: -1, Previous: v2}, f.provider(func(p *model.OIDCProvider) { p.Audiences = []string{"other"} }))
	_, err = v3.Verify(t.Context(), tok)
	wantReason(t, err, TokenReasonAudienceMismatch)
	if n := requests(); n != before+2 {
		t.Errorf("changed provider: %d IdP requests, want 2 (discovery and JWKS)", n-before)
	}
	// The previous verifier is still usable.
	if id, err := v1.Verify(t.Context(), tok); err != nil || id != id1 {
		t.Errorf("v1 after reloads: %v, %v", id, err)
	}
}

func TestNewOIDCVerifierRefusesBadConfig(t *testing.T) {
	ok := model.OIDCProvider{IssuerURL: "https://idp.example.com", Audiences: []string{"a"}}
	for name, mod := range map[string]func(*model.OIDCProvider){
		"http issuer":    func(p *model.OIDCProvider) { p.IssuerURL = "http://idp.example.com" },
		"no issuer":      func(p *model.OIDCProvider) { p.IssuerURL = "" },
		"no audience":    func(p *model.OIDCProvider) { p.Audiences = nil },
		"HS256":          func(p *model.OIDCProvider) { p.AllowedAlgorithms = []string{"HS256"} },
		"none":           func(p *model.OIDCProvider) { p.AllowedAlgorithms = []string{"none"} },
		"bad CA":         func(p *model.OIDCProvider) { p.CAPEM = "not a certificate" },
		"bad token type": func(p *model.OIDCProvider) { p.TokenType = "refresh" },
	} {
		p := ok
		mod(&p)
		if _, err := NewOIDCVerifier([]model.OIDCProvider{p}, OIDCOptions{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewOIDCVerifier([]model.OIDCProvider{ok, ok}, OIDCOptions{}); err == nil {
		t.Error("duplicate issuer accepted")
	}
	// An unreachable IdP is not a configuration error.
	if _, err := NewOIDCVerifier([]model.OIDCProvider{{IssuerURL: "https://127.0.0.1:1", Audiences: []string{"a"}}}, OIDCOptions{}); err != nil {
		t.Errorf("unreachable IdP failed construction: %v", err)
	}
}

func TestVerifyHonoursContextWhileDiscoveryIsBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	// An IdP whose discovery hangs until released.
	f := newFixture(t, func(o *devidp.Options) {
		o.Wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == discoveryPath {
					select {
					case entered <- struct{}{}:
					default:
					}
					<-release
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	defer close(release)
	tok := f.token(t)

	v := f.verifier(t, OIDCOptions{HTTPTimeout: 30 * time.Second})
	go func() { _, _ = v.Verify(context.Background(), tok) }()
	<-entered
	// A second request gives up with its own context instead of waiting
	// for the hung discovery.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, TokenReasonIDPUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestNumericDate(t *testing.T) {
	if _, ok, err := numericDate(nil); ok || err != nil {
		t.Errorf("absent: %v %v", ok, err)
	}
	if d, ok, err := numericDate(json.Number("1700000000.5")); !ok || err != nil || !d.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("fractional: %s %v %v", d, ok, err)
	}
	for _, bad := range []any{"1700000000", json.Number("1e300"), json.Number("-1"), json.Number("x"), true} {
		if _, _, err := numericDate(bad); err == nil {
			t.Errorf("%#v accepted", bad)
		}
	}
}
