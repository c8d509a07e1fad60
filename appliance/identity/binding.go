package identity

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Reasons a binding gives for its decision. They are fixed strings, safe
// as metric labels, and meant for logs, never for the caller.
const (
	ReasonAllowed              = "allowed"
	ReasonNoIdentity           = "no identity"
	ReasonNoBinding            = "no binding"
	ReasonExpired              = "expired"
	ReasonSourceMismatch       = "identity source mismatch"
	ReasonIssuerMismatch       = "issuer mismatch"
	ReasonSubjectMismatch      = "subject mismatch"
	ReasonClaimMismatch        = "claim mismatch"
	ReasonURISANMismatch       = "client certificate uri san mismatch"
	ReasonMethodNotAllowed     = "method not allowed"
	ReasonPathNotAllowed       = "path not allowed"
	ReasonGRPCMethodNotAllowed = "grpc method not allowed"
)

// Binding is a compiled identity binding: who may use a connection, and for
// which methods, paths and gRPC methods. It is immutable and safe for
// concurrent use.
//
// Matching, in order (the first failing rule is the reason given):
//
//  1. Who: a token binding matches only "oidc" identities whose issuer
//     equals the binding's (one trailing slash ignored), whose subject
//     matches the subject glob (when set), and for which every claim
//     matcher matches. A certificate binding matches only "client_cert"
//     identities with at least one URI SAN matching its glob.
//  2. When: at or after expires_at the binding allows nothing.
//  3. What: allowed_methods (exact, case-sensitive; empty allows all),
//     allowed_paths (globs over the normalized path), allowed_grpc_methods
//     (globs over "/pkg.Service/Method"). A non-empty list denies a request
//     that lacks the attribute (a tcp stream has no method or path, an HTTP
//     request no gRPC method): a restriction that cannot be checked denies.
//
// Claim matchers: the claim is looked up by its name; when no claim has
// that exact name, dots descend into nested objects, so
// "kubernetes.io.namespace" reaches {"kubernetes.io": {"namespace": ...}}
// (keys containing dots are tried too). A string claim matches the glob; an
// array claim (such as "groups") matches when one of its scalar elements
// does; numbers and booleans are matched in their JSON form ("42", "true");
// objects, null and missing claims never match.
//
// All patterns are Glob patterns (see Glob).
type Binding struct {
	// ID and Name identify the binding in logs, metrics and recordings.
	ID, Name string

	cert    bool // a client-certificate binding rather than a token one
	issuer  string
	subject *Glob
	claims  []claimMatcher
	uriSAN  *Glob

	methods     []string
	paths       []*Glob
	grpcMethods []*Glob
	expires     time.Time
}

type claimMatcher struct {
	name string
	glob *Glob
}

// CompileBinding prepares a binding for evaluation: patterns are compiled
// once here, never per request. A spec that would admit everyone, or that
// mixes token and certificate matchers, is refused even if it slipped past
// validation: the binding fails closed.
func CompileBinding(id, name string, spec *model.IdentityBindingSpec) (*Binding, error) {
	if spec == nil {
		return nil, fmt.Errorf("identity binding %s: no spec", id)
	}
	b := &Binding{ID: id, Name: name}
	token := spec.Issuer != "" || spec.Subject != "" || len(spec.Claims) > 0
	switch {
	case token && spec.ClientCertURISAN != "":
		return nil, fmt.Errorf("identity binding %s: matches both a token and a client certificate", id)
	case token && spec.Issuer == "":
		return nil, fmt.Errorf("identity binding %s: subject and claims need an issuer", id)
	case token && spec.Subject == "" && len(spec.Claims) == 0:
		return nil, fmt.Errorf("identity binding %s: an issuer alone would admit every identity it issues", id)
	case !token && spec.ClientCertURISAN == "":
		return nil, fmt.Errorf("identity binding %s: matches no identity", id)
	}

	var err error
	compile := func(field, pattern string) *Glob {
		if err != nil {
			return nil
		}
		g, cerr := CompileGlob(pattern)
		if cerr != nil {
			err = fmt.Errorf("identity binding %s: %s: %w", id, field, cerr)
		}
		return g
	}

	if token {
		b.issuer = normalizeIssuer(spec.Issuer)
		if spec.Subject != "" {
			b.subject = compile("subject", spec.Subject)
		}
		for _, k := range sortedKeys(spec.Claims) {
			b.claims = append(b.claims, claimMatcher{name: k, glob: compile("claims."+k, spec.Claims[k])})
		}
	} else {
		b.cert = true
		b.uriSAN = compile("client_cert_uri_san", spec.ClientCertURISAN)
	}
	b.methods = slices.Clone(spec.AllowedMethods)
	for i, p := range spec.AllowedPaths {
		b.paths = append(b.paths, compile(fmt.Sprintf("allowed_paths[%d]", i), p))
	}
	for i, m := range spec.AllowedGRPCMethods {
		b.grpcMethods = append(b.grpcMethods, compile(fmt.Sprintf("allowed_grpc_methods[%d]", i), m))
	}
	if err != nil {
		return nil, err
	}
	if spec.ExpiresAt != "" {
		t, perr := time.Parse(time.RFC3339, spec.ExpiresAt)
		if perr != nil {
			return nil, fmt.Errorf("identity binding %s: expires_at: %w", id, perr)
		}
		b.expires = t
	}
	return b, nil
}

// ExpiresAt returns when the binding stops allowing anything (zero when
// never).
func (b *Binding) ExpiresAt() time.Time { return b.expires }

// Allows reports whether the binding admits id for req at now, and if not,
// why (one of the Reason constants, for logs and metrics, never for the
// caller).
func (b *Binding) Allows(id *Identity, req Request, now time.Time) (bool, string) {
	if id == nil {
		return false, ReasonNoIdentity
	}
	if reason := b.matchIdentity(id); reason != "" {
		return false, reason
	}
	// Expiry is checked once the caller is recognized, so that "expired" is
	// only ever reported to the logs about someone the binding was for.
	if !b.expires.IsZero() && !now.Before(b.expires) {
		return false, ReasonExpired
	}
	if len(b.methods) > 0 && !slices.Contains(b.methods, req.Method) {
		return false, ReasonMethodNotAllowed
	}
	if len(b.paths) > 0 && (req.Path == "" || !anyMatch(b.paths, req.Path)) {
		return false, ReasonPathNotAllowed
	}
	if len(b.grpcMethods) > 0 && (req.GRPCMethod == "" || !anyMatch(b.grpcMethods, req.GRPCMethod)) {
		return false, ReasonGRPCMethodNotAllowed
	}
	return true, ReasonAllowed
}

// matchIdentity returns "" when id is whom the binding admits, else the
// reason it is not.
func (b *Binding) matchIdentity(id *Identity) string {
	if b.cert {
		if id.Source != SourceClientCert {
			return ReasonSourceMismatch
		}
		for _, u := range id.URISANs {
			if b.uriSAN.Match(u) {
				return ""
			}
		}
		return ReasonURISANMismatch
	}
	if id.Source != SourceOIDC {
		return ReasonSourceMismatch
	}
	if normalizeIssuer(id.Issuer) != b.issuer {
		return ReasonIssuerMismatch
	}
	if b.subject != nil && !b.subject.Match(id.Subject) {
		return ReasonSubjectMismatch
	}
	for _, c := range b.claims {
		v, ok := lookupClaim(id.Claims, c.name)
		if !ok || !matchClaim(c.glob, v) {
			return ReasonClaimMismatch
		}
	}
	return ""
}

// Authorize evaluates a connection's bindings for one request: it returns
// the first binding that allows it (and ReasonAllowed), or nil and the
// reason of the binding that came closest, so that a log says "path not
// allowed" rather than "issuer mismatch" when some binding did recognize
// the caller. No bindings means nobody is allowed.
func Authorize(bindings []*Binding, id *Identity, req Request, now time.Time) (*Binding, string) {
	if id == nil {
		return nil, ReasonNoIdentity
	}
	best, bestRank := ReasonNoBinding, -1
	for _, b := range bindings {
		ok, reason := b.Allows(id, req, now)
		if ok {
			return b, reason
		}
		if r := reasonRank(reason); r > bestRank {
			best, bestRank = reason, r
		}
	}
	return nil, best
}

// reasonRank orders denial reasons by how far evaluation got.
func reasonRank(reason string) int {
	switch reason {
	case ReasonSourceMismatch:
		return 0
	case ReasonIssuerMismatch:
		return 1
	case ReasonSubjectMismatch, ReasonURISANMismatch:
		return 2
	case ReasonClaimMismatch:
		return 3
	case ReasonExpired:
		return 4
	case ReasonMethodNotAllowed, ReasonPathNotAllowed, ReasonGRPCMethodNotAllowed:
		return 5
	}
	return 0
}

func anyMatch(globs []*Glob, s string) bool {
	for _, g := range globs {
		if g.Match(s) {
			return true
		}
	}
	return false
}

// normalizeIssuer drops one trailing slash: "https://idp/" and
// "https://idp" name the same issuer in a binding.
func normalizeIssuer(s string) string { return strings.TrimSuffix(s, "/") }

// lookupClaim finds a claim by exact name first, then by a dotted path
// through nested objects, trying every split so that keys which contain
// dots themselves ("kubernetes.io") are found.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		nested, ok := claims[name[:i]].(map[string]any)
		if !ok {
			continue
		}
		if v, ok := lookupClaim(nested, name[i+1:]); ok {
			return v, true
		}
	}
	return nil, false
}

// matchClaim matches a claim value: scalars by their string form, arrays
// by any scalar element.
func matchClaim(g *Glob, v any) bool {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if s, ok := scalarString(e); ok && g.Match(s) {
				return true
			}
		}
		return false
	case []string:
		return slices.ContainsFunc(v, g.Match)
	}
	s, ok := scalarString(v)
	return ok && g.Match(s)
}

// scalarString renders a JSON scalar the way it is written in JSON.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
