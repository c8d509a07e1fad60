package model

import (
	"encoding/base64"
	"strings"
)

// Certificate sources of a TLS settings object.
const (
	SourceACME       = "acme"
	SourceStatic     = "static"
	SourceSelfSigned = "self_signed"
	SourceNone       = "none"
)

// Client certificate policies.
const (
	ClientAuthNone     = "none"
	ClientAuthOptional = "optional"
	ClientAuthRequire  = "require"
)

// TLS protocol floors.
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// TLSSettingsSpec is a TLS identity and trust policy, used by a gateway for
// the side planners connect to and by a connection for the side it opens to
// an executor.
type TLSSettingsSpec struct {
	// MinVersion is the protocol floor: "1.2" (default) or "1.3".
	MinVersion string `json:"min_version,omitempty"`
	// Certificate says where this side's own certificate comes from.
	Certificate CertificateSpec `json:"certificate"`
	// PeerCAPEM verifies the peer: planners' client certificates when used by
	// a gateway, the executor's certificate when used by a connection (system
	// roots when empty).
	PeerCAPEM string `json:"peer_ca_pem,omitempty"`
	// ClientAuth is the gateway's client-certificate policy: "none"
	// (default), "optional" or "require".
	ClientAuth string `json:"client_auth,omitempty"`
	// ServerName overrides the SNI and verified name when dialing an
	// executor (the upstream URL's host when empty).
	ServerName string `json:"server_name,omitempty"`
}

// CertificateSpec is the source of a certificate and its source's settings.
type CertificateSpec struct {
	// Source is "acme", "static", "self_signed" or "none".
	Source string `json:"source"`
	// ACME configures Source "acme".
	ACME *ACMESpec `json:"acme,omitempty"`
	// Static configures Source "static".
	Static *StaticCertificateSpec `json:"static,omitempty"`
}

// ACMESpec configures certificates from an ACME CA.
type ACMESpec struct {
	// DirectoryURL is the CA's ACME directory (https).
	DirectoryURL string `json:"directory_url"`
	// Email is the account contact.
	Email string `json:"email,omitempty"`
	// TrustedRootsPEM verifies a private ACME CA's TLS (step-ca, Pebble).
	TrustedRootsPEM string `json:"trusted_roots_pem,omitempty"`
	// EABKeyID and EABHMAC are the External Account Binding credentials.
	EABKeyID string  `json:"eab_key_id,omitempty"`
	EABHMAC  *Secret `json:"eab_hmac,omitempty"`
	// HTTPChallengeAddr, when set, is where the appliance answers HTTP-01
	// challenges (":80" for a public CA). TLS-ALPN-01 is always answered
	// on the gateway's own listener.
	HTTPChallengeAddr string `json:"http_challenge_addr,omitempty"`
}

// StaticCertificateSpec is an operator's certificate chain and key.
type StaticCertificateSpec struct {
	// CertPEM is the chain, leaf first.
	CertPEM string `json:"cert_pem"`
	// KeyPEM is the leaf's private key.
	KeyPEM *Secret `json:"key_pem,omitempty"`
}

// Secret field paths of a TLS settings spec.
const (
	PathEABHMAC = "spec.certificate.acme.eab_hmac"
	PathKeyPEM  = "spec.certificate.static.key_pem"
)

// Kind implements Spec.
func (s *TLSSettingsSpec) Kind() Kind { return KindTLSSettings }

// Parent implements Spec: TLS settings names are global.
func (s *TLSSettingsSpec) Parent() string { return "" }

// References implements Spec: TLS settings point at nothing.
func (s *TLSSettingsSpec) References() []Reference { return nil }

// Normalize implements Spec.
func (s *TLSSettingsSpec) Normalize() {
	if s.MinVersion == "" {
		s.MinVersion = TLS12
	}
	if s.ClientAuth == "" {
		s.ClientAuth = ClientAuthNone
	}
}

// Secrets implements Spec.
func (s *TLSSettingsSpec) Secrets() []SecretField {
	var out []SecretField
	if a := s.Certificate.ACME; a != nil {
		out = append(out, SecretField{Path: PathEABHMAC, Secret: a.EABHMAC})
	}
	if st := s.Certificate.Static; st != nil {
		out = append(out, SecretField{Path: PathKeyPEM, Secret: st.KeyPEM})
	}
	return out
}

// Validate implements Spec.
func (s *TLSSettingsSpec) Validate(secret SecretLookup) Problems {
	var ps Problems
	if s.MinVersion != "" {
		ps.Check("spec.min_version", CheckOneOf(s.MinVersion, TLS12, TLS13))
	}
	if s.ClientAuth != "" {
		ps.Check("spec.client_auth", CheckOneOf(s.ClientAuth, ClientAuthNone, ClientAuthOptional, ClientAuthRequire))
	}
	if s.PeerCAPEM != "" {
		_, err := ParseCertificatesPEM(s.PeerCAPEM)
		ps.Check("spec.peer_ca_pem", err)
	} else if s.ClientAuth == ClientAuthOptional || s.ClientAuth == ClientAuthRequire {
		ps.Add("spec.peer_ca_pem", "required when client_auth is %q: the CA that verifies planners' client certificates", s.ClientAuth)
	}
	if s.ServerName != "" {
		ps.Check("spec.server_name", CheckHostname(s.ServerName))
	}
	s.Certificate.validate(&ps, secret)
	return ps
}

func (c *CertificateSpec) validate(ps *Problems, secret SecretLookup) {
	const p = "spec.certificate"
	if c.Source == "" {
		ps.Add(p+".source", "required: one of \"acme\", \"static\", \"self_signed\", \"none\"")
		return
	}
	if err := CheckOneOf(c.Source, SourceACME, SourceStatic, SourceSelfSigned, SourceNone); err != nil {
		ps.Check(p+".source", err)
		return
	}
	if c.Source != SourceACME && c.ACME != nil {
		ps.Add(p+".acme", "only allowed when source is \"acme\"")
	}
	if c.Source != SourceStatic && c.Static != nil {
		ps.Add(p+".static", "only allowed when source is \"static\"")
	}
	switch c.Source {
	case SourceACME:
		if c.ACME == nil {
			ps.Add(p+".acme", "required when source is \"acme\"")
			return
		}
		c.ACME.validate(ps, secret)
	case SourceStatic:
		if c.Static == nil {
			ps.Add(p+".static", "required when source is \"static\"")
			return
		}
		c.Static.validate(ps, secret)
	}
}

func (a *ACMESpec) validate(ps *Problems, secret SecretLookup) {
	const p = "spec.certificate.acme"
	_, err := CheckServiceURL(a.DirectoryURL, "https")
	ps.Check(p+".directory_url", err)
	if a.Email != "" {
		ps.Check(p+".email", CheckEmail(a.Email))
	}
	if a.TrustedRootsPEM != "" {
		_, err := ParseCertificatesPEM(a.TrustedRootsPEM)
		ps.Check(p+".trusted_roots_pem", err)
	}
	if a.HTTPChallengeAddr != "" {
		ps.Check(p+".http_challenge_addr", CheckListenAddr(a.HTTPChallengeAddr))
	}
	hmac, hasHMAC := secret(PathEABHMAC)
	switch {
	case a.EABKeyID != "" && a.EABHMAC == nil:
		ps.Add(p+".eab_hmac", "required when eab_key_id is set")
	case a.EABKeyID == "" && a.EABHMAC != nil:
		ps.Add(p+".eab_key_id", "required when eab_hmac is set")
	case a.EABHMAC != nil && !hasHMAC:
		ps.Add(p+".eab_hmac", "no value is stored yet: send one in \"value\"")
	case hasHMAC:
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hmac, "=")); err != nil {
			ps.Add(p+".eab_hmac", "must be the base64url-encoded HMAC key the CA issued")
		}
	}
}

func (st *StaticCertificateSpec) validate(ps *Problems, secret SecretLookup) {
	const p = "spec.certificate.static"
	certs, err := ParseCertificatesPEM(st.CertPEM)
	ps.Check(p+".cert_pem", err)
	if st.KeyPEM == nil {
		ps.Add(p+".key_pem", "required: the private key of the first certificate")
		return
	}
	keyPEM, ok := secret(PathKeyPEM)
	if !ok {
		ps.Add(p+".key_pem", "no value is stored yet: send one in \"value\"")
		return
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		ps.Check(p+".key_pem", err)
		return
	}
	if len(certs) > 0 {
		ps.Check(p+".key_pem", CheckKeyMatchesCertificate(key, certs[0]))
	}
}
