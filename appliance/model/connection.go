package model

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Connection protocols.
const (
	ProtocolHTTP = "http"
	ProtocolGRPC = "grpc"
	ProtocolTCP  = "tcp"
)

// ConnectionSpec is one executor behind one gateway.
type ConnectionSpec struct {
	// GatewayID is the gateway planners reach this executor through.
	GatewayID string `json:"gateway_id"`
	// Protocol is "http", "grpc" or "tcp".
	Protocol string `json:"protocol"`
	// Hostname routes requests for this name (one of the gateway's
	// hostnames, or a name under one of its wildcards).
	Hostname string `json:"hostname,omitempty"`
	// PathPrefix routes requests whose path starts with it (http and grpc).
	PathPrefix string `json:"path_prefix,omitempty"`
	// UpstreamURL is the executor: https://host[:port][/base] for http and
	// grpc, tls://host:port for tcp.
	UpstreamURL string `json:"upstream_url"`
	// UpstreamTLSSettingsID verifies the executor and may give a client
	// certificate for mTLS (system roots when empty).
	UpstreamTLSSettingsID string `json:"upstream_tls_settings_id,omitempty"`
	// InjectHeaders are added to every request to the executor; their values
	// are secrets.
	InjectHeaders map[string]*Secret `json:"inject_headers,omitempty"`
	// Timeouts bound the upstream side.
	Timeouts *ConnectionTimeouts `json:"timeouts,omitempty"`
	// Recording records the connection's sessions.
	Recording *RecordingSpec `json:"recording,omitempty"`
	// Masking rules apply to responses, in order.
	Masking []MaskingRule `json:"masking,omitempty"`
	// Guardrails apply to every request of the connection.
	Guardrails *Guardrails `json:"guardrails,omitempty"`
}

// ConnectionTimeouts bound the upstream side of a connection; each is a Go
// duration string ("10s").
type ConnectionTimeouts struct {
	// Connect bounds dialing and the TLS handshake (default 10s).
	Connect string `json:"connect,omitempty"`
	// ResponseHeader bounds the wait for response headers (default 60s).
	ResponseHeader string `json:"response_header,omitempty"`
	// Idle closes pooled idle upstream connections (default 90s).
	Idle string `json:"idle,omitempty"`
}

// InjectHeaderPath is the field path of the injected header name.
func InjectHeaderPath(name string) string { return "spec.inject_headers." + name }

// headers a connection must not inject: they belong to the transport.
var reservedHeaders = map[string]bool{
	"Host": true, "Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Te": true, "Trailer": true, "Upgrade": true, "Content-Length": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
}

// Kind implements Spec.
func (s *ConnectionSpec) Kind() Kind { return KindConnection }

// Parent implements Spec: connection names are unique per gateway.
func (s *ConnectionSpec) Parent() string { return s.GatewayID }

// References implements Spec.
func (s *ConnectionSpec) References() []Reference {
	refs := []Reference{{Field: "spec.gateway_id", Kind: KindGateway, ID: s.GatewayID}}
	if s.UpstreamTLSSettingsID != "" {
		refs = append(refs, Reference{Field: "spec.upstream_tls_settings_id", Kind: KindTLSSettings, ID: s.UpstreamTLSSettingsID})
	}
	return refs
}

// Secrets implements Spec, in header-name order.
func (s *ConnectionSpec) Secrets() []SecretField {
	names := make([]string, 0, len(s.InjectHeaders))
	for n := range s.InjectHeaders {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]SecretField, len(names))
	for i, n := range names {
		out[i] = SecretField{Path: InjectHeaderPath(n), Secret: s.InjectHeaders[n]}
	}
	return out
}

// Normalize implements Spec.
func (s *ConnectionSpec) Normalize() {
	if len(s.InjectHeaders) == 0 {
		s.InjectHeaders = nil
	}
	if s.Timeouts != nil && *s.Timeouts == (ConnectionTimeouts{}) {
		s.Timeouts = nil
	}
}

// Validate implements Spec.
func (s *ConnectionSpec) Validate(secret SecretLookup) Problems {
	var ps Problems
	if s.GatewayID == "" {
		ps.Add("spec.gateway_id", "required: the id of the gateway planners reach this executor through")
	}
	if s.Protocol == "" {
		ps.Add("spec.protocol", "required: one of \"http\", \"grpc\", \"tcp\"")
	} else {
		ps.Check("spec.protocol", CheckOneOf(s.Protocol, ProtocolHTTP, ProtocolGRPC, ProtocolTCP))
	}
	if s.Hostname != "" {
		ps.Check("spec.hostname", CheckHostname(s.Hostname))
	}
	if s.PathPrefix != "" {
		ps.Check("spec.path_prefix", CheckPathPrefix(s.PathPrefix))
	}
	switch {
	case s.Protocol == ProtocolTCP && s.Hostname == "":
		ps.Add("spec.hostname", "required for protocol \"tcp\": TCP connections are routed by SNI")
	case s.Protocol == ProtocolTCP && s.PathPrefix != "":
		ps.Add("spec.path_prefix", "not allowed for protocol \"tcp\": a byte stream has no path")
	case s.Hostname == "" && s.PathPrefix == "":
		ps.Add("spec.hostname", "set hostname, path_prefix or both: a connection needs a route")
	}
	scheme := "https"
	if s.Protocol == ProtocolTCP {
		scheme = "tls"
	}
	if u, err := CheckServiceURL(s.UpstreamURL, scheme); err != nil {
		ps.Check("spec.upstream_url", err)
	} else {
		if u.RawQuery != "" || u.ForceQuery {
			ps.Add("spec.upstream_url", "must not contain a query")
		}
		if s.Protocol == ProtocolTCP && (u.Port() == "" || u.Path != "") {
			ps.Add("spec.upstream_url", "must be tls://HOST:PORT for protocol \"tcp\"")
		}
	}
	for _, f := range s.Secrets() {
		name := strings.TrimPrefix(f.Path, "spec.inject_headers.")
		if err := CheckHeaderName(name); err != nil {
			ps.Check(f.Path, err)
			continue
		}
		if reservedHeaders[http.CanonicalHeaderKey(name)] {
			ps.Add(f.Path, "%q is managed by the gateway and cannot be injected", name)
			continue
		}
		if f.Secret == nil {
			ps.Add(f.Path, "a value is required")
			continue
		}
		v, ok := secret(f.Path)
		if !ok {
			ps.Add(f.Path, "no value is stored yet: send one in \"value\"")
			continue
		}
		ps.Check(f.Path, CheckHeaderValue(v))
	}
	if s.Protocol == ProtocolTCP && len(s.InjectHeaders) > 0 {
		ps.Add("spec.inject_headers", "not allowed for protocol \"tcp\": a byte stream has no headers")
	}
	seen := map[string]string{}
	for n := range s.InjectHeaders {
		c := http.CanonicalHeaderKey(n)
		if other, dup := seen[c]; dup {
			ps.Add(InjectHeaderPath(n), "same header as %q (header names are case-insensitive)", other)
		}
		seen[c] = n
	}
	if s.Recording != nil {
		s.Recording.validate(&ps, "spec.recording")
	}
	validateMasking(s.Masking, &ps, "spec.masking")
	if s.Guardrails != nil {
		s.Guardrails.validate(&ps, "spec.guardrails")
	}
	if t := s.Timeouts; t != nil {
		for _, d := range []struct{ name, v string }{{"connect", t.Connect}, {"response_header", t.ResponseHeader}, {"idle", t.Idle}} {
			if d.v != "" {
				ps.Check("spec.timeouts."+d.name, CheckDuration(d.v, time.Millisecond, time.Hour))
			}
		}
	}
	return ps
}

// CheckPathPrefix checks a route's path prefix: it starts with '/', and has
// no empty, "." or ".." segments, no '%', '\\' or control characters, so it
// can only ever match the normalized paths the gateway forwards.
func CheckPathPrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with '/'", p)
	}
	for _, c := range p {
		if c < ' ' || c == 0x7f || c == '%' || c == '\\' || c == '?' || c == '#' || c == '*' {
			return fmt.Errorf("%q must be a plain path: no '%%', '\\', '?', '#', '*' or control characters", p)
		}
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for _, seg := range segs {
		if p != "/" && (seg == "" || seg == "." || seg == "..") {
			return fmt.Errorf("%q must not contain empty, \".\" or \"..\" segments", p)
		}
	}
	return nil
}
