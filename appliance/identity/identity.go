// Package identity answers "who is calling, and may they do this?" for the
// gateway: it verifies OIDC bearer tokens (go-oidc) and client
// certificates, and evaluates identity bindings. It knows nothing of the
// gateway, the store or the admin API.
package identity

import (
	"context"
	"crypto/x509"
	"time"
)

// Identity sources.
const (
	SourceOIDC       = "oidc"
	SourceClientCert = "client_cert"
)

// Identity is a verified caller. Identities returned by a verifier may be
// shared between requests: treat them as read-only.
type Identity struct {
	// Source is SourceOIDC or SourceClientCert.
	Source string
	// Issuer and Subject are the token's "iss" and "sub" (oidc), or the
	// certificate's subject (client_cert).
	Issuer, Subject string
	// Claims are all of the token's claims (oidc), as decoded JSON with
	// numbers as json.Number.
	Claims map[string]any
	// Expiry is when the identity stops being valid (token "exp", or the
	// certificate's NotAfter).
	Expiry time.Time
	// Certificate is the verified client certificate (client_cert), and
	// URISANs its URI SANs (SPIFFE IDs).
	Certificate *x509.Certificate
	URISANs     []string
}

// Request is what a binding's allow-lists are checked against.
type Request struct {
	// Method is the HTTP method ("" for tcp).
	Method string
	// Path is the normalized path, the same that is forwarded.
	Path string
	// GRPCMethod is the full method name for gRPC ("/pkg.Service/Method").
	GRPCMethod string
}

// TokenVerifier verifies bearer tokens for one gateway, against the OIDC
// providers it trusts.
type TokenVerifier interface {
	// Verify checks a raw JWT and returns its identity. Every failure
	// (bad signature, wrong issuer or audience, expired, algorithm not
	// allowed, IdP unreachable) is an error: the caller denies.
	Verify(ctx context.Context, rawToken string) (*Identity, error)
}
