package model

import (
	"fmt"
	"regexp"
	"strings"
)

// RecordingSpec configures session recording for a connection.
type RecordingSpec struct {
	// Enabled records every request and response of the connection.
	Enabled bool `json:"enabled"`
	// MaxBodyBytes caps how much of each body is recorded (after masking);
	// 0 means the default of 64 KiB, -1 records no bodies.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// OnDiskFull is "refuse" (default: new sessions are refused while the
	// recording disk is full) or "continue" (sessions go on unrecorded,
	// with an alert and a metric).
	OnDiskFull string `json:"on_disk_full,omitempty"`
}

// Recording disk-full policies.
const (
	OnDiskFullRefuse   = "refuse"
	OnDiskFullContinue = "continue"
)

// MaskingRule masks matching values in responses before they reach the
// planner and before they are recorded. Exactly one of JSONPath, Regex and
// Detector is set.
type MaskingRule struct {
	// JSONPath selects JSON values ("$.data[*].password", "$..token").
	JSONPath string `json:"json_path,omitempty"`
	// Regex matches text anywhere in the body (RE2 syntax).
	Regex string `json:"regex,omitempty"`
	// Detector is a built-in detector: one of MaskingDetectors.
	Detector string `json:"detector,omitempty"`
	// Replacement is "redact" (default, "***"), "partial" (keep the last
	// 4 characters) or "hash" (a keyed hash, stable per value).
	Replacement string `json:"replacement,omitempty"`
}

// MaskingDetectors are the built-in detectors.
var MaskingDetectors = []string{"payment_card", "aws_access_key", "pem_private_key", "jwt", "email", "us_ssn", "iban"}

// Masking replacements.
const (
	ReplaceRedact  = "redact"
	ReplacePartial = "partial"
	ReplaceHash    = "hash"
)

// Guardrails stop dangerous requests before they reach the executor. On a
// connection they apply to every caller; on an identity binding, to the
// callers it admits (both apply). A denial answers 403 with the id of the
// rule: its scope and field path ("connection.guardrails.deny_path_patterns[0]",
// "binding.guardrails.allowed_mcp_tools").
type Guardrails struct {
	// DenyPathPatterns, DenyQueryPatterns and DenyBodyPatterns are RE2
	// regular expressions; a match denies the request.
	DenyPathPatterns  []string `json:"deny_path_patterns,omitempty"`
	DenyQueryPatterns []string `json:"deny_query_patterns,omitempty"`
	DenyBodyPatterns  []string `json:"deny_body_patterns,omitempty"`
	// MaxRequestBodyBytes caps the request body (0: no cap beyond the
	// gateway's own).
	MaxRequestBodyBytes int64 `json:"max_request_body_bytes,omitempty"`
	// AllowedContentTypes lists the media types a request body may have
	// ("application/json"); empty allows any.
	AllowedContentTypes []string `json:"allowed_content_types,omitempty"`
	// AllowedJSONRPCMethods lists the JSON-RPC methods a request may call
	// (globs; empty allows any). Applies to JSON-RPC 2.0 bodies, batches
	// included.
	AllowedJSONRPCMethods []string `json:"allowed_jsonrpc_methods,omitempty"`
	// AllowedMCPTools lists the Model Context Protocol tool names a
	// "tools/call" may name (globs; empty allows any).
	AllowedMCPTools []string `json:"allowed_mcp_tools,omitempty"`
}

func (r *RecordingSpec) validate(ps *Problems, p string) {
	if r.MaxBodyBytes < -1 {
		ps.Add(p+".max_body_bytes", "must be -1 (no bodies), 0 (default) or a positive size")
	}
	if r.OnDiskFull != "" {
		ps.Check(p+".on_disk_full", CheckOneOf(r.OnDiskFull, OnDiskFullRefuse, OnDiskFullContinue))
	}
}

func validateMasking(rules []MaskingRule, ps *Problems, p string) {
	for i, r := range rules {
		f := fmt.Sprintf("%s[%d]", p, i)
		set := 0
		for _, v := range []string{r.JSONPath, r.Regex, r.Detector} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			ps.Add(f, "set exactly one of json_path, regex and detector")
		}
		if r.JSONPath != "" {
			ps.Check(f+".json_path", CheckJSONPath(r.JSONPath))
		}
		if r.Regex != "" {
			ps.Check(f+".regex", CheckRegex(r.Regex))
		}
		if r.Detector != "" {
			ps.Check(f+".detector", CheckOneOf(r.Detector, MaskingDetectors...))
		}
		if r.Replacement != "" {
			ps.Check(f+".replacement", CheckOneOf(r.Replacement, ReplaceRedact, ReplacePartial, ReplaceHash))
		}
	}
}

func (g *Guardrails) validate(ps *Problems, p string) {
	for name, list := range map[string][]string{
		"deny_path_patterns": g.DenyPathPatterns, "deny_query_patterns": g.DenyQueryPatterns, "deny_body_patterns": g.DenyBodyPatterns,
	} {
		for i, re := range list {
			ps.Check(fmt.Sprintf("%s.%s[%d]", p, name, i), CheckRegex(re))
		}
	}
	if g.MaxRequestBodyBytes < 0 {
		ps.Add(p+".max_request_body_bytes", "must not be negative")
	}
	for i, ct := range g.AllowedContentTypes {
		if !strings.Contains(ct, "/") || strings.ContainsAny(ct, " ;,") {
			ps.Add(fmt.Sprintf("%s.allowed_content_types[%d]", p, i), "%q must be a media type such as \"application/json\" (no parameters)", ct)
		}
	}
	for i, m := range g.AllowedJSONRPCMethods {
		ps.Check(fmt.Sprintf("%s.allowed_jsonrpc_methods[%d]", p, i), checkNonEmptyGlob(m))
	}
	for i, m := range g.AllowedMCPTools {
		ps.Check(fmt.Sprintf("%s.allowed_mcp_tools[%d]", p, i), checkNonEmptyGlob(m))
	}
}

func checkNonEmptyGlob(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	return CheckGlob(s)
}

// CheckRegex checks an RE2 regular expression.
func CheckRegex(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if _, err := regexp.Compile(s); err != nil {
		return fmt.Errorf("not a valid regular expression: %w", err)
	}
	return nil
}

var jsonPathRE = regexp.MustCompile(`^\$((\.\.?[A-Za-z_][A-Za-z0-9_-]*)|(\.\.?\*)|(\[\*\])|(\[[0-9]+\])|(\['[^']+'\]))+$`)

// CheckJSONPath checks the JSONPath subset masking supports: "$" followed
// by .name, ..name (any depth), .*, [*], [N] and ['name'] steps.
func CheckJSONPath(s string) error {
	if !jsonPathRE.MatchString(s) {
		return fmt.Errorf("%q is not a supported JSONPath: use $ followed by .name, ..name, .*, [*], [N] or ['name'] steps", s)
	}
	return nil
}
