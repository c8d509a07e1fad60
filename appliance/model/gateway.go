package model

import (
	"fmt"
	"slices"
	"strings"
)

// OIDCAlgorithms are the signing algorithms a gateway may accept for OIDC
// tokens.
var OIDCAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// GatewaySpec is a listener that planners connect to.
type GatewaySpec struct {
	// ListenAddr is HOST:PORT to listen on.
	ListenAddr string `json:"listen_addr"`
	// Hostnames are the names the gateway serves (SNI and Host).
	Hostnames []string `json:"hostnames"`
	// TLSSettingsID is the TLS settings of the serving side.
	TLSSettingsID string `json:"tls_settings_id"`
	// OIDCProviders are the token issuers the gateway trusts.
	OIDCProviders []OIDCProvider `json:"oidc_providers,omitempty"`
}

// OIDCProvider is one trusted OIDC token issuer.
type OIDCProvider struct {
	// IssuerURL is the issuer ("iss"); discovery is read from it.
	IssuerURL string `json:"issuer_url"`
	// Audiences are the accepted "aud" values; at least one is required.
	Audiences []string `json:"audiences"`
	// AllowedAlgorithms restricts signing algorithms (RS256 when empty).
	AllowedAlgorithms []string `json:"allowed_algorithms,omitempty"`
	// CAPEM verifies the IdP's TLS (system roots when empty).
	CAPEM string `json:"ca_pem,omitempty"`
	// TokenType, when set, accepts only that type of token: "access" (an
	// RFC 9068 access token, typ "at+jwt") or "id" (an OpenID Connect ID
	// token), so one cannot be replayed as the other.
	TokenType string `json:"token_type,omitempty"`
}

// Token types a gateway can require.
const (
	TokenTypeAccess = "access"
	TokenTypeID     = "id"
)

// Kind implements Spec.
func (s *GatewaySpec) Kind() Kind { return KindGateway }

// Parent implements Spec: gateway names are global.
func (s *GatewaySpec) Parent() string { return "" }

// Secrets implements Spec: a gateway holds none.
func (s *GatewaySpec) Secrets() []SecretField { return nil }

// References implements Spec.
func (s *GatewaySpec) References() []Reference {
	return []Reference{{Field: "spec.tls_settings_id", Kind: KindTLSSettings, ID: s.TLSSettingsID}}
}

// Normalize implements Spec: hostnames, audiences and algorithms are sets.
func (s *GatewaySpec) Normalize() {
	slices.Sort(s.Hostnames)
	for i := range s.OIDCProviders {
		p := &s.OIDCProviders[i]
		slices.Sort(p.Audiences)
		slices.Sort(p.AllowedAlgorithms)
	}
}

// Validate implements Spec.
func (s *GatewaySpec) Validate(SecretLookup) Problems {
	var ps Problems
	if s.ListenAddr == "" {
		ps.Add("spec.listen_addr", "required, for example \"0.0.0.0:443\"")
	} else {
		ps.Check("spec.listen_addr", CheckListenAddr(s.ListenAddr))
	}
	if len(s.Hostnames) == 0 {
		ps.Add("spec.hostnames", "at least one hostname is required")
	}
	seen := map[string]bool{}
	for i, h := range s.Hostnames {
		f := fmt.Sprintf("spec.hostnames[%d]", i)
		ps.Check(f, CheckHostname(h))
		if seen[h] {
			ps.Add(f, "%q is listed twice", h)
		}
		seen[h] = true
	}
	if s.TLSSettingsID == "" {
		ps.Add("spec.tls_settings_id", "required: the id of a sallyport TLS settings object")
	}
	issuers := map[string]bool{}
	for i, p := range s.OIDCProviders {
		f := fmt.Sprintf("spec.oidc_providers[%d]", i)
		_, err := CheckServiceURL(p.IssuerURL, "https")
		ps.Check(f+".issuer_url", err)
		if issuers[p.IssuerURL] {
			ps.Add(f+".issuer_url", "issuer %q is listed twice", p.IssuerURL)
		}
		issuers[p.IssuerURL] = true
		if len(p.Audiences) == 0 {
			ps.Add(f+".audiences", "at least one audience is required: tokens for other audiences must not be accepted")
		}
		for j, a := range p.Audiences {
			if strings.TrimSpace(a) == "" {
				ps.Add(fmt.Sprintf("%s.audiences[%d]", f, j), "must not be empty")
			}
		}
		for j, a := range p.AllowedAlgorithms {
			ps.Check(fmt.Sprintf("%s.allowed_algorithms[%d]", f, j), CheckOneOf(a, OIDCAlgorithms...))
		}
		if p.CAPEM != "" {
			_, err := ParseCertificatesPEM(p.CAPEM)
			ps.Check(f+".ca_pem", err)
		}
		if p.TokenType != "" {
			ps.Check(f+".token_type", CheckOneOf(p.TokenType, TokenTypeAccess, TokenTypeID))
		}
	}
	return ps
}
