package devidp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
)

func start(t *testing.T, opts devidp.Options) *devidp.IDP {
	t.Helper()
	idp, err := devidp.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	return idp
}

// verify checks a token with go-oidc against the IdP's published keys,
// over the IdP's real TLS, and returns its claims.
func verify(t *testing.T, idp *devidp.IDP, token string, algs ...string) map[string]any {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), idp.HTTPClient())
	p, err := oidc.NewProvider(ctx, idp.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	tok, err := p.VerifierContext(ctx, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: algs}).Verify(ctx, token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func header(t *testing.T, token string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header
}

func TestIssueTokenThroughTokenEndpoint(t *testing.T) {
	idp := start(t, devidp.Options{
		Audience: []string{"sallyport"},
		Clients: []devidp.Client{{
			ID: "planner", Secret: "s3cret", Subject: "ci-runner-7",
			Claims: map[string]any{
				"groups":        []string{"ops", "dev"},
				"kubernetes.io": map[string]any{"namespace": "ci"},
			},
		}},
	})
	if !strings.HasPrefix(idp.Issuer(), "https://127.0.0.1:") {
		t.Fatalf("issuer %q", idp.Issuer())
	}
	token, err := idp.IssueToken(t.Context(), "planner", "s3cret", "openid")
	if err != nil {
		t.Fatal(err)
	}
	claims := verify(t, idp, token)
	if claims["iss"] != idp.Issuer() || claims["sub"] != "ci-runner-7" || claims["client_id"] != "planner" {
		t.Errorf("claims %v", claims)
	}
	if aud, _ := claims["aud"].([]any); !slices.Equal(aud, []any{"sallyport"}) {
		t.Errorf("aud %v", claims["aud"])
	}
	if g, _ := claims["groups"].([]any); !slices.Equal(g, []any{"ops", "dev"}) {
		t.Errorf("groups %v", claims["groups"])
	}
	if k, _ := claims["kubernetes.io"].(map[string]any); k["namespace"] != "ci" {
		t.Errorf("kubernetes.io %v", claims["kubernetes.io"])
	}
	exp := time.Unix(int64(claims["exp"].(float64)), 0)
	if d := time.Until(exp); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("exp in %s, want the default 10m", d)
	}
	if h := header(t, token); h.KeyID != idp.SigningKeyID() || h.Algorithm != "RS256" {
		t.Errorf("header kid=%q alg=%q, want kid %q", h.KeyID, h.Algorithm, idp.SigningKeyID())
	}
}

func TestDefaultsSubjectAndAudienceToClientID(t *testing.T) {
	idp := start(t, devidp.Options{Clients: []devidp.Client{{ID: "svc", Secret: "x"}}})
	token, err := idp.IssueToken(t.Context(), "svc", "x")
	if err != nil {
		t.Fatal(err)
	}
	claims := verify(t, idp, token)
	if claims["sub"] != "svc" {
		t.Errorf("sub %v", claims["sub"])
	}
	if aud, _ := claims["aud"].([]any); !slices.Equal(aud, []any{"svc"}) {
		t.Errorf("aud %v", claims["aud"])
	}
}

func TestRefusesBadClientCredentials(t *testing.T) {
	idp := start(t, devidp.Options{Clients: []devidp.Client{{ID: "svc", Secret: "right"}}})
	if _, err := idp.IssueToken(t.Context(), "svc", "wrong"); err == nil {
		t.Error("wrong secret: got a token")
	}
	if _, err := idp.IssueToken(t.Context(), "nobody", "right"); err == nil {
		t.Error("unknown client: got a token")
	}
}

func TestAddClientRefusesRegisteredClaims(t *testing.T) {
	idp := start(t, devidp.Options{})
	if err := idp.AddClient(devidp.Client{ID: "a", Secret: "b", Claims: map[string]any{"sub": "root"}}); err == nil {
		t.Error("a client overriding sub was accepted")
	}
	if err := idp.AddClient(devidp.Client{ID: "a"}); err == nil {
		t.Error("a client without secret was accepted")
	}
	if err := idp.AddClient(devidp.Client{ID: "late", Secret: "b", Subject: "someone"}); err != nil {
		t.Fatal(err)
	}
	token, err := idp.IssueToken(t.Context(), "late", "b")
	if err != nil {
		t.Fatal(err)
	}
	if sub := verify(t, idp, token)["sub"]; sub != "someone" {
		t.Errorf("sub %v", sub)
	}
}

func jwksKeyIDs(t *testing.T, idp *devidp.IDP) []string {
	t.Helper()
	resp, err := idp.HTTPClient().Get(idp.Issuer() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

func TestRotateKeys(t *testing.T) {
	idp := start(t, devidp.Options{Clients: []devidp.Client{{ID: "svc", Secret: "x"}}})
	first := idp.SigningKeyID()
	if ids := jwksKeyIDs(t, idp); !slices.Equal(ids, []string{first}) {
		t.Fatalf("JWKS %v, want [%s]", ids, first)
	}

	if err := idp.RotateKeysGracefully(); err != nil {
		t.Fatal(err)
	}
	second := idp.SigningKeyID()
	if second == first {
		t.Fatal("rotation kept the key id")
	}
	if ids := jwksKeyIDs(t, idp); !slices.Equal(ids, []string{second, first}) {
		t.Errorf("after graceful rotation JWKS %v, want [%s %s]", ids, second, first)
	}
	token, err := idp.IssueToken(t.Context(), "svc", "x")
	if err != nil {
		t.Fatal(err)
	}
	if kid := header(t, token).KeyID; kid != second {
		t.Errorf("new token signed with %q, want %q", kid, second)
	}

	if err := idp.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	third := idp.SigningKeyID()
	if ids := jwksKeyIDs(t, idp); !slices.Equal(ids, []string{third}) {
		t.Errorf("after rotation JWKS %v, want only [%s]", ids, third)
	}
	if !slices.Equal(idp.PublishedKeyIDs(), []string{third}) {
		t.Errorf("PublishedKeyIDs %v", idp.PublishedKeyIDs())
	}
}

func TestES256(t *testing.T) {
	idp := start(t, devidp.Options{Algorithm: "ES256", Clients: []devidp.Client{{ID: "svc", Secret: "x"}}})
	token, err := idp.IssueToken(t.Context(), "svc", "x")
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, token); h.Algorithm != "ES256" {
		t.Errorf("alg %q", h.Algorithm)
	}
	verify(t, idp, token, "ES256")
	if _, err := devidp.Start(t.Context(), devidp.Options{Algorithm: "HS256"}); err == nil {
		t.Error("HS256 accepted")
	}
}

func TestCallerCertificateAndRestartAtSameAddress(t *testing.T) {
	cert, caPEM, err := devidp.GenerateTLS("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts := devidp.Options{Certificate: cert, CACertPEM: caPEM, Host: "localhost", Clients: []devidp.Client{{ID: "svc", Secret: "x"}}}
	idp := start(t, opts)
	if !strings.HasPrefix(idp.Issuer(), "https://localhost:") {
		t.Fatalf("issuer %q", idp.Issuer())
	}
	issuer := idp.Issuer()
	if err := idp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	opts.Addr = idp.Addr()
	again := start(t, opts)
	if again.Issuer() != issuer {
		t.Fatalf("restarted issuer %q, want %q", again.Issuer(), issuer)
	}
	token, err := again.IssueToken(t.Context(), "svc", "x")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, again, token)

	// Only the given CA is trusted.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	other, _, err := devidp.GenerateTLS("localhost")
	if err != nil {
		t.Fatal(err)
	}
	otherPool := x509.NewCertPool()
	otherPool.AddCert(mustParse(t, other.Certificate[1]))
	c2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: otherPool}}}
	if resp, err := c2.Get(issuer + "/.well-known/openid-configuration"); err == nil {
		resp.Body.Close()
		t.Error("a client trusting another CA connected")
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	idp, err := devidp.Start(ctx, devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", idp.Addr(), time.Second)
		if err != nil {
			var opErr *net.OpError
			if !errors.As(err, &opErr) {
				t.Fatalf("dial: %v", err)
			}
			return // refused: stopped
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("IdP still accepting connections 10s after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
