package devidp

import (
	"context"
	"crypto"
	"crypto/subtle"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// errUnsupported answers every flow but client credentials: the
// development IdP has no users, no login and no refresh tokens.
var errUnsupported = errors.New("devidp: only the client_credentials grant is supported")

// storage is the op.Storage of the development IdP: registered clients,
// the signing keys, and nothing else. Access tokens are self-contained
// JWTs, so none is stored.
type storage struct {
	lifetime time.Duration

	mu        sync.RWMutex
	clients   map[string]Client
	signing   *signingKey
	published []*signingKey // the keys in the JWKS, signing first
}

var (
	_ op.Storage                  = (*storage)(nil)
	_ op.ClientCredentialsStorage = (*storage)(nil)
)

// signingKey is one key pair; it serves as op.SigningKey (private half)
// and, through publicKey, as op.Key (public half, in the JWKS).
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

// SignatureAlgorithm implements op.SigningKey.
func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }

// Key implements op.SigningKey.
func (k *signingKey) Key() any { return k.key }

// ID implements op.SigningKey.
func (k *signingKey) ID() string { return k.id }

type publicKey struct{ k *signingKey }

// ID implements op.Key.
func (p publicKey) ID() string { return p.k.id }

// Algorithm implements op.Key.
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }

// Use implements op.Key.
func (p publicKey) Use() string { return "sig" }

// Key implements op.Key.
func (p publicKey) Key() any { return p.k.key.Public() }

// tokenRequest is what a client credentials grant is turned into.
type tokenRequest struct {
	clientID, subject string
	audience, scopes  []string
}

// GetSubject implements op.TokenRequest.
func (r *tokenRequest) GetSubject() string { return r.subject }

// GetAudience implements op.TokenRequest.
func (r *tokenRequest) GetAudience() []string { return r.audience }

// GetScopes implements op.TokenRequest.
func (r *tokenRequest) GetScopes() []string { return r.scopes }

// opClient presents a Client to the op package: a confidential client that
// may only use client credentials and receives JWT access tokens.
type opClient struct {
	id       string
	lifetime time.Duration
}

// GetID implements op.Client.
func (c opClient) GetID() string { return c.id }

// RedirectURIs implements op.Client.
func (c opClient) RedirectURIs() []string { return nil }

// PostLogoutRedirectURIs implements op.Client.
func (c opClient) PostLogoutRedirectURIs() []string { return nil }

// ApplicationType implements op.Client.
func (c opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod implements op.Client.
func (c opClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }

// ResponseTypes implements op.Client.
func (c opClient) ResponseTypes() []oidc.ResponseType { return nil }

// GrantTypes implements op.Client.
func (c opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}

// LoginURL implements op.Client.
func (c opClient) LoginURL(string) string { return "" }

// AccessTokenType implements op.Client.
func (c opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// IDTokenLifetime implements op.Client.
func (c opClient) IDTokenLifetime() time.Duration { return c.lifetime }

// DevMode implements op.Client.
func (c opClient) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes implements op.Client.
func (c opClient) RestrictAdditionalIdTokenScopes() func([]string) []string { //nolint:revive // the name is op.Client's
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes implements op.Client.
func (c opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed implements op.Client.
func (c opClient) IsScopeAllowed(string) bool { return true }

// IDTokenUserinfoClaimsAssertion implements op.Client.
func (c opClient) IDTokenUserinfoClaimsAssertion() bool { return false }

// ClockSkew implements op.Client.
func (c opClient) ClockSkew() time.Duration { return 0 }

func (s *storage) client(id string) (Client, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	return c, ok
}

// ClientCredentials implements op.ClientCredentialsStorage.
func (s *storage) ClientCredentials(_ context.Context, clientID, clientSecret string) (op.Client, error) {
	c, ok := s.client(clientID)
	// Compare even for an unknown client, so timing does not tell them apart.
	secretOK := subtle.ConstantTimeCompare([]byte(c.Secret), []byte(clientSecret)) == 1
	if !ok || !secretOK {
		return nil, errors.New("devidp: unknown client or wrong secret")
	}
	return opClient{id: c.ID, lifetime: s.lifetime}, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, ok := s.client(clientID)
	if !ok {
		return nil, errors.New("devidp: unknown client")
	}
	return &tokenRequest{clientID: c.ID, subject: c.Subject, audience: slices.Clone(c.Audience), scopes: scopes}, nil
}

// CreateAccessToken implements op.Storage: the token is a JWT, so only its
// id and expiry are decided here.
func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return uuid.NewString(), time.Now().Add(s.lifetime), nil
}

// GetPrivateClaimsFromScopes implements op.Storage: a client's configured
// claims go into every access token it receives.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, _, clientID string, _ []string) (map[string]any, error) {
	c, ok := s.client(clientID)
	if !ok {
		return nil, errors.New("devidp: unknown client")
	}
	return maps.Clone(c.Claims), nil
}

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.client(clientID)
	if !ok {
		return nil, errors.New("devidp: unknown client")
	}
	return opClient{id: c.ID, lifetime: s.lifetime}, nil
}

// AuthorizeClientIDSecret implements op.Storage.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	_, err := s.ClientCredentials(ctx, clientID, clientSecret)
	return err
}

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signing, nil
}

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return []jose.SignatureAlgorithm{s.signing.alg}, nil
}

// KeySet implements op.Storage: the published keys (the JWKS).
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]op.Key, 0, len(s.published))
	for _, k := range s.published {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

// rotate makes next the signing key; the previous one stays published
// when keepPrevious, and is withdrawn otherwise. Older keys are always
// withdrawn.
func (s *storage) rotate(next *signingKey, keepPrevious bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pub := []*signingKey{next}
	if keepPrevious {
		pub = append(pub, s.signing)
	}
	s.signing, s.published = next, pub
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

// The rest of op.Storage serves flows the development IdP does not offer.

// CreateAuthRequest implements op.Storage.
func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}

// AuthRequestByID implements op.Storage.
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}

// AuthRequestByCode implements op.Storage.
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}

// SaveAuthCode implements op.Storage.
func (s *storage) SaveAuthCode(context.Context, string, string) error { return errUnsupported }

// DeleteAuthRequest implements op.Storage.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return errUnsupported }

// CreateAccessAndRefreshTokens implements op.Storage.
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errUnsupported
}

// TerminateSession implements op.Storage.
func (s *storage) TerminateSession(context.Context, string, string) error { return errUnsupported }

// RevokeToken implements op.Storage.
func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrInvalidRequest().WithDescription("devidp: revocation is not supported")
}

// GetRefreshTokenInfo implements op.Storage.
func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// SetUserinfoFromScopes implements op.Storage.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return errUnsupported
}

// SetUserinfoFromToken implements op.Storage.
func (s *storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errUnsupported
}

// SetIntrospectionFromToken implements op.Storage.
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}

// GetKeyByIDAndClientID implements op.Storage.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}

// ValidateJWTProfileScopes implements op.Storage.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupported
}
