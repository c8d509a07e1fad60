package identity

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// keySet is an issuer's JWKS, implementing oidc.KeySet with a rate limit:
// go-oidc's RemoteKeySet refetches on every unknown key id, which lets
// anyone with a forged kid make the gateway hammer the IdP. Here a fetch
// happens at most once per KeyRefreshInterval, whatever the traffic.
type keySet struct {
	issuer, url string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	opts        OIDCOptions

	state atomic.Pointer[keyState]
	// gate serializes fetches; waiters can give up with their context.
	gate chan struct{}

	mu          sync.Mutex // guards lastAttempt and lastErr
	lastAttempt time.Time
	lastErr     error

	background atomic.Bool // a stale-set refresh is running
}

// keyState is one fetched key set; it is never modified once stored.
type keyState struct {
	keys      []verificationKey
	fetchedAt time.Time
}

type verificationKey struct {
	jwk        jose.JSONWebKey
	thumbprint string
}

var _ oidc.KeySet = (*keySet)(nil)

func newKeySet(issuer, url string, client *http.Client, algs []string, o OIDCOptions) *keySet {
	ks := &keySet{issuer: issuer, url: url, client: client, opts: o, gate: make(chan struct{}, 1)}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	ks.state.Store(&keyState{})
	return ks
}

// VerifySignature implements oidc.KeySet: it verifies the JWS with the key
// its kid names (every key when it names none), fetching the key set again
// when the kid is unknown and the rate limit allows. Failures are reported
// to Verify through the sigResult in ctx.
func (ks *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	res, _ := ctx.Value(sigResultKey{}).(*sigResult)
	if res == nil {
		res = &sigResult{}
	}
	fail := func(reason string, err error) ([]byte, error) {
		res.reason, res.err = reason, err
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, ks.algs)
	if err != nil {
		return fail(TokenReasonMalformed, fmt.Errorf("parsing JWS: %w", err))
	}
	if len(jws.Signatures) != 1 {
		return fail(TokenReasonMalformed, fmt.Errorf("%d signatures, want 1", len(jws.Signatures)))
	}
	hdr := jws.Signatures[0].Header

	payload, thumb, found, err := ks.state.Load().verify(jws, hdr)
	if !found {
		rerr := ks.refresh(ctx, "unknown key id")
		payload, thumb, found, err = ks.state.Load().verify(jws, hdr)
		if !found {
			st := ks.state.Load()
			cause := fmt.Errorf("no key with kid %q and alg %s in %s (%d keys, fetched %s)",
				hdr.KeyID, hdr.Algorithm, ks.url, len(st.keys), st.fetchedAt.UTC().Format(time.RFC3339))
			if rerr != nil {
				cause = fmt.Errorf("%w; refetch: %w", cause, rerr)
			}
			return fail(TokenReasonUnknownKey, cause)
		}
	}
	if err != nil {
		return fail(TokenReasonBadSignature, err)
	}
	ks.maybeRefreshStale()
	res.payload, res.thumbprint = payload, thumb
	return payload, nil
}

// verify tries the candidate keys: found is false when there is none, so
// that only an unknown key id (not a bad signature) causes a refetch.
func (st *keyState) verify(jws *jose.JSONWebSignature, hdr jose.Header) (payload []byte, thumb string, found bool, err error) {
	for _, k := range st.keys {
		if hdr.KeyID != "" && k.jwk.KeyID != hdr.KeyID {
			continue
		}
		if k.jwk.Algorithm != "" && k.jwk.Algorithm != hdr.Algorithm {
			continue
		}
		found = true
		p, verr := jws.Verify(k.jwk.Key)
		if verr == nil {
			return p, k.thumbprint, true, nil
		}
		err = verr
	}
	if found {
		return nil, "", true, fmt.Errorf("signature does not verify (kid %q): %w", hdr.KeyID, err)
	}
	return nil, "", false, nil
}

// has reports whether the current key set still holds the key with this
// thumbprint.
func (ks *keySet) has(thumbprint string) bool {
	for _, k := range ks.state.Load().keys {
		if k.thumbprint == thumbprint {
			return true
		}
	}
	return false
}

// errRateLimited says a refetch was due but not yet allowed.
var errRateLimited = errors.New("key set refetch rate-limited")

// refresh fetches the key set unless one was attempted less than
// KeyRefreshInterval ago (then it returns errRateLimited at once). Callers
// that queued behind a fetch find it done and simply look again.
func (ks *keySet) refresh(ctx context.Context, why string) error {
	select {
	case ks.gate <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for key set of %s: %w", ks.issuer, ctx.Err())
	}
	defer func() { <-ks.gate }()

	now := ks.opts.Clock()
	ks.mu.Lock()
	last, lastErr := ks.lastAttempt, ks.lastErr
	due := last.IsZero() || now.Sub(last) >= ks.opts.KeyRefreshInterval
	if due {
		ks.lastAttempt = now
	}
	ks.mu.Unlock()
	if !due {
		if lastErr != nil {
			return fmt.Errorf("%w until %s; last fetch failed: %w", errRateLimited, last.Add(ks.opts.KeyRefreshInterval).UTC().Format(time.RFC3339), lastErr)
		}
		return fmt.Errorf("%w until %s", errRateLimited, last.Add(ks.opts.KeyRefreshInterval).UTC().Format(time.RFC3339))
	}

	keys, err := ks.fetch(ctx)
	ks.mu.Lock()
	ks.lastErr = err
	ks.mu.Unlock()
	if err != nil {
		ks.opts.Logger.Warn("oidc key set fetch failed", "issuer", ks.issuer, "jwks_uri", ks.url, "reason", why, "error", err)
		return err
	}
	ks.state.Store(&keyState{keys: keys, fetchedAt: now})
	ks.opts.Logger.Info("oidc key set fetched", "issuer", ks.issuer, "reason", why, "keys", len(keys))
	return nil
}

// maybeRefreshStale refetches a key set older than KeyMaxAge, in the
// background so that no request waits for it.
func (ks *keySet) maybeRefreshStale() {
	if ks.opts.KeyMaxAge < 0 {
		return
	}
	now := ks.opts.Clock()
	if now.Sub(ks.state.Load().fetchedAt) < ks.opts.KeyMaxAge {
		return
	}
	ks.mu.Lock()
	recent := now.Sub(ks.lastAttempt) < ks.opts.KeyRefreshInterval
	ks.mu.Unlock()
	if recent || !ks.background.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer ks.background.Store(false)
		_ = ks.refresh(context.Background(), "key set older than max age") // logged by refresh
	}()
}

// fetch reads the JWKS. Keys that cannot be used for verification (an
// unknown type, "use" other than "sig", private parts) are skipped or
// reduced to their public part rather than failing the whole set.
func (ks *keySet) fetch(ctx context.Context) ([]verificationKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ks.opts.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("key set request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching key set %s: %w", ks.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading key set %s: %w", ks.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching key set %s: %s", ks.url, resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding key set %s: %w", ks.url, err)
	}
	keys := make([]verificationKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			ks.opts.Logger.Debug("oidc key skipped", "issuer", ks.issuer, "error", err)
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		if !k.Valid() {
			continue
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			continue
		}
		keys = append(keys, verificationKey{jwk: k, thumbprint: base64.RawURLEncoding.EncodeToString(tp)})
	}
	return keys, nil
}
