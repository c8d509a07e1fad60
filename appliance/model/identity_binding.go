package model

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// HTTPMethods are the methods a binding may allow.
var HTTPMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// IdentityBindingSpec says who may use a connection and for what. Access is
// denied unless some binding of the connection allows it.
type IdentityBindingSpec struct {
	// ConnectionID is the connection this binding opens.
	ConnectionID string `json:"connection_id"`
	// Issuer is the OIDC issuer URL tokens must come from; the gateway must
	// trust it (oidc_providers).
	Issuer string `json:"issuer,omitempty"`
	// Subject matches the token's "sub" (exact, or a glob).
	Subject string `json:"subject,omitempty"`
	// Claims match further token claims: each value is a glob; for array
	// claims (such as "groups") one element must match.
	Claims map[string]string `json:"claims,omitempty"`
	// ClientCertURISAN matches a URI SAN of the planner's client certificate
	// (a SPIFFE ID, exact or glob) instead of a token.
	ClientCertURISAN string `json:"client_cert_uri_san,omitempty"`
	// AllowedMethods limits HTTP methods (all when empty).
	AllowedMethods []string `json:"allowed_methods,omitempty"`
	// AllowedPaths limits paths, as globs over the normalized path (all when
	// empty).
	AllowedPaths []string `json:"allowed_paths,omitempty"`
	// AllowedGRPCMethods limits gRPC full method names ("/pkg.Service/Method",
	// globs allowed; all when empty).
	AllowedGRPCMethods []string `json:"allowed_grpc_methods,omitempty"`
	// ExpiresAt ends the binding by itself (RFC 3339), for just-in-time
	// access.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Guardrails apply to the requests this binding admits, on top of the
	// connection's.
	Guardrails *Guardrails `json:"guardrails,omitempty"`
}

// Kind implements Spec.
func (s *IdentityBindingSpec) Kind() Kind { return KindIdentityBinding }

// Parent implements Spec: binding names are unique per connection.
func (s *IdentityBindingSpec) Parent() string { return s.ConnectionID }

// Secrets implements Spec: a binding holds none.
func (s *IdentityBindingSpec) Secrets() []SecretField { return nil }

// References implements Spec.
func (s *IdentityBindingSpec) References() []Reference {
	return []Reference{{Field: "spec.connection_id", Kind: KindConnection, ID: s.ConnectionID}}
}

// Normalize implements Spec: allow-lists are sets, and expiry is kept in
// UTC.
func (s *IdentityBindingSpec) Normalize() {
	slices.Sort(s.AllowedMethods)
	slices.Sort(s.AllowedPaths)
	slices.Sort(s.AllowedGRPCMethods)
	if len(s.Claims) == 0 {
		s.Claims = nil
	}
	if t, err := time.Parse(time.RFC3339, s.ExpiresAt); err == nil {
		s.ExpiresAt = t.UTC().Format(time.RFC3339)
	}
}

// Validate implements Spec.
func (s *IdentityBindingSpec) Validate(SecretLookup) Problems {
	var ps Problems
	if s.ConnectionID == "" {
		ps.Add("spec.connection_id", "required: the id of the connection this binding opens")
	}
	token := s.Issuer != "" || s.Subject != "" || len(s.Claims) > 0
	switch {
	case token && s.ClientCertURISAN != "":
		ps.Add("spec.client_cert_uri_san", "a binding matches either a token (issuer, subject, claims) or a client certificate, not both")
	case !token && s.ClientCertURISAN == "":
		ps.Add("spec.issuer", "set issuer with subject and/or claims, or client_cert_uri_san: a binding must say whom it admits")
	case token && s.Issuer == "":
		ps.Add("spec.issuer", "required with subject or claims: the issuer that vouches for them")
	case token && s.Subject == "" && len(s.Claims) == 0:
		ps.Add("spec.subject", "set subject and/or claims: an issuer alone would admit every identity it issues")
	}
	if s.Issuer != "" {
		_, err := CheckServiceURL(s.Issuer, "https")
		ps.Check("spec.issuer", err)
	}
	if s.Subject != "" {
		ps.Check("spec.subject", CheckGlob(s.Subject))
	}
	if s.ClientCertURISAN != "" {
		ps.Check("spec.client_cert_uri_san", CheckGlob(s.ClientCertURISAN))
	}
	for k, v := range s.Claims {
		f := "spec.claims." + k
		if strings.TrimSpace(k) == "" {
			ps.Add("spec.claims", "claim names must not be empty")
		}
		if k == "iss" || k == "sub" || k == "aud" || k == "exp" || k == "nbf" || k == "iat" {
			ps.Add(f, "%q is checked by the gateway itself; use issuer or subject", k)
		}
		if v == "" {
			ps.Add(f, "must not be empty")
		} else {
			ps.Check(f, CheckGlob(v))
		}
	}
	for i, m := range s.AllowedMethods {
		ps.Check(fmt.Sprintf("spec.allowed_methods[%d]", i), CheckOneOf(m, HTTPMethods...))
	}
	for i, p := range s.AllowedPaths {
		f := fmt.Sprintf("spec.allowed_paths[%d]", i)
		if !strings.HasPrefix(p, "/") {
			ps.Add(f, "%q must start with '/'", p)
		} else {
			ps.Check(f, CheckGlob(p))
		}
	}
	for i, m := range s.AllowedGRPCMethods {
		ps.Check(fmt.Sprintf("spec.allowed_grpc_methods[%d]", i), CheckGRPCMethod(m))
	}
	if s.Guardrails != nil {
		s.Guardrails.validate(&ps, "spec.guardrails")
	}
	if s.ExpiresAt != "" {
		if _, err := time.Parse(time.RFC3339, s.ExpiresAt); err != nil {
			ps.Add("spec.expires_at", "%q is not an RFC 3339 time such as \"2026-12-31T23:59:59Z\"", s.ExpiresAt)
		}
	}
	return ps
}

// CheckGRPCMethod checks a gRPC full method name pattern:
// "/package.Service/Method", where either part may be a glob.
func CheckGRPCMethod(m string) error {
	parts := strings.Split(m, "/")
	if len(parts) != 3 || parts[0] != "" || parts[1] == "" || parts[2] == "" {
		return fmt.Errorf("%q must be a full method name such as \"/pkg.Service/Method\" or \"/pkg.Service/*\"", m)
	}
	return CheckGlob(m)
}
