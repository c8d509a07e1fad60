package identity_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

const issuer = "https://idp.example.com"

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func oidcID(sub string, claims map[string]any) *identity.Identity {
	return &identity.Identity{Source: identity.SourceOIDC, Issuer: issuer, Subject: sub, Claims: claims, Expiry: now.Add(time.Hour)}
}

func certID(sans ...string) *identity.Identity {
	return &identity.Identity{Source: identity.SourceClientCert, Subject: "CN=planner", URISANs: sans, Expiry: now.Add(time.Hour)}
}

// claimsJSON decodes claims the way the verifier does (numbers as
// json.Number).
func claimsJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBindingAllows(t *testing.T) {
	get := identity.Request{Method: "GET", Path: "/jobs/1"}
	gh := func(t *testing.T) map[string]any {
		return claimsJSON(t, `{
			"repository": "octo/app", "ref": "refs/heads/main", "repository_owner_id": 12345678901234567890,
			"runner_environment": "github-hosted", "groups": ["dev", "ops/oncall"], "admin": true, "level": 2.5,
			"kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "builder", "uid": "u-1"}},
			"a": {"b.c": {"d": "deep"}}, "obj": {"x": 1}, "nothing": null
		}`)
	}
	tests := []struct {
		name   string
		spec   model.IdentityBindingSpec
		id     *identity.Identity
		req    identity.Request
		at     time.Time
		want   bool
		reason string
	}{
		{"exact subject", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice"}, oidcID("alice", nil), get, now, true, identity.ReasonAllowed},
		{"subject differs", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice"}, oidcID("alice2", nil), get, now, false, identity.ReasonSubjectMismatch},
		{"subject glob", model.IdentityBindingSpec{Issuer: issuer, Subject: "repo:octo/app:*"}, oidcID("repo:octo/app:pull_request", nil), get, now, true, identity.ReasonAllowed},
		{"subject glob star stops at slash", model.IdentityBindingSpec{Issuer: issuer, Subject: "repo:octo/app:*"}, oidcID("repo:octo/app:ref:refs/heads/main", nil), get, now, false, identity.ReasonSubjectMismatch},
		{"subject glob double star crosses slash", model.IdentityBindingSpec{Issuer: issuer, Subject: "repo:octo/app:**"}, oidcID("repo:octo/app:ref:refs/heads/main", nil), get, now, true, identity.ReasonAllowed},
		{"issuer trailing slash normalized", model.IdentityBindingSpec{Issuer: issuer + "/", Subject: "alice"}, oidcID("alice", nil), get, now, true, identity.ReasonAllowed},
		{"issuer differs", model.IdentityBindingSpec{Issuer: "https://other.example.com", Subject: "alice"}, oidcID("alice", nil), get, now, false, identity.ReasonIssuerMismatch},
		{"issuer prefix is not the issuer", model.IdentityBindingSpec{Issuer: issuer + "/tenant", Subject: "alice"}, oidcID("alice", nil), get, now, false, identity.ReasonIssuerMismatch},

		{"string claim glob", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"repository": "octo/*"}}, oidcID("x", gh(t)), get, now, true, identity.ReasonAllowed},
		{"string claim mismatch", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"repository": "evil/*"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"every claim must match", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"repository": "octo/app", "ref": "refs/heads/release"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"array membership", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"groups": "ops/*"}}, oidcID("x", gh(t)), get, now, true, identity.ReasonAllowed},
		{"array no member", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"groups": "admins"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"array of strings (Go value)", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"groups": "ops"}}, oidcID("x", map[string]any{"groups": []string{"dev", "ops"}}), get, now, true, identity.ReasonAllowed},
		{"large number keeps its digits", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"repository_owner_id": "12345678901234567890"}}, oidcID("x", gh(t)), get, now, true, identity.ReasonAllowed},
		{"float64 number", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"n": "42"}}, oidcID("x", map[string]any{"n": float64(42)}), get, now, true, identity.ReasonAllowed},
		{"fractional number", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"level": "2.5"}}, oidcID("x", gh(t)), get, now, true, identity.ReasonAllowed},
		{"bool", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"admin": "true"}}, oidcID("x", gh(t)), get, now, true, identity.ReasonAllowed},
		{"nested dotted path", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"kubernetes.io.namespace": "ci", "kubernetes.io.serviceaccount.name": "build*"}}, oidcID("system:serviceaccount:ci:builder", gh(t)), get, now, true, identity.ReasonAllowed},
		{"nested key with dots", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"a.b.c.d": "deep"}}, oidcID("x", gh(t)), get, now, true, identity.ReasonAllowed},
		{"object never matches", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"obj": "*"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"null never matches", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"nothing": "*"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"missing claim never matches", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"team": "*"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"missing nested claim", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"kubernetes.io.pod.name": "*"}}, oidcID("x", gh(t)), get, now, false, identity.ReasonClaimMismatch},
		{"no claims at all", model.IdentityBindingSpec{Issuer: issuer, Claims: map[string]string{"repository": "*"}}, oidcID("x", nil), get, now, false, identity.ReasonClaimMismatch},

		{"cert uri san", model.IdentityBindingSpec{ClientCertURISAN: "spiffe://prod.example/ns/ci/sa/*"}, certID("spiffe://prod.example/ns/ci/sa/builder"), get, now, true, identity.ReasonAllowed},
		{"cert any of several sans", model.IdentityBindingSpec{ClientCertURISAN: "spiffe://prod.example/ns/ci/sa/*"}, certID("https://other", "spiffe://prod.example/ns/ci/sa/builder"), get, now, true, identity.ReasonAllowed},
		{"cert star stops at slash", model.IdentityBindingSpec{ClientCertURISAN: "spiffe://prod.example/ns/*/sa/builder"}, certID("spiffe://prod.example/ns/ci/extra/sa/builder"), get, now, false, identity.ReasonURISANMismatch},
		{"cert without sans", model.IdentityBindingSpec{ClientCertURISAN: "*"}, certID(), get, now, false, identity.ReasonURISANMismatch},
		{"oidc identity never matches cert binding", model.IdentityBindingSpec{ClientCertURISAN: "**"}, oidcID("spiffe://prod.example/x", nil), get, now, false, identity.ReasonSourceMismatch},
		{"cert identity never matches token binding", model.IdentityBindingSpec{Issuer: issuer, Subject: "**"}, &identity.Identity{Source: identity.SourceClientCert, Issuer: issuer, Subject: "anything"}, get, now, false, identity.ReasonSourceMismatch},
		{"unknown source", model.IdentityBindingSpec{Issuer: issuer, Subject: "**"}, &identity.Identity{Issuer: issuer, Subject: "x"}, get, now, false, identity.ReasonSourceMismatch},
		{"nil identity", model.IdentityBindingSpec{Issuer: issuer, Subject: "**"}, nil, get, now, false, identity.ReasonNoIdentity},

		{"method allowed", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedMethods: []string{"GET", "HEAD"}}, oidcID("alice", nil), get, now, true, identity.ReasonAllowed},
		{"method not allowed", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedMethods: []string{"GET"}}, oidcID("alice", nil), identity.Request{Method: "DELETE", Path: "/jobs/1"}, now, false, identity.ReasonMethodNotAllowed},
		{"method is case-sensitive", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedMethods: []string{"GET"}}, oidcID("alice", nil), identity.Request{Method: "get", Path: "/jobs/1"}, now, false, identity.ReasonMethodNotAllowed},
		{"method list denies tcp", model.IdentityBindingSpec{ClientCertURISAN: "*", AllowedMethods: []string{"GET"}}, certID("x"), identity.Request{}, now, false, identity.ReasonMethodNotAllowed},
		{"no lists allow tcp", model.IdentityBindingSpec{ClientCertURISAN: "*"}, certID("x"), identity.Request{}, now, true, identity.ReasonAllowed},
		{"path glob", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedPaths: []string{"/jobs/*"}}, oidcID("alice", nil), get, now, true, identity.ReasonAllowed},
		{"path star does not cross slash", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedPaths: []string{"/jobs/*"}}, oidcID("alice", nil), identity.Request{Method: "GET", Path: "/jobs/1/admin"}, now, false, identity.ReasonPathNotAllowed},
		{"path double star", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedPaths: []string{"/jobs/**"}}, oidcID("alice", nil), identity.Request{Method: "GET", Path: "/jobs/1/logs/2"}, now, true, identity.ReasonAllowed},
		{"path double star covers the base", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedPaths: []string{"/jobs/**"}}, oidcID("alice", nil), identity.Request{Method: "GET", Path: "/jobs"}, now, true, identity.ReasonAllowed},
		{"path prefix lookalike", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedPaths: []string{"/jobs/**"}}, oidcID("alice", nil), identity.Request{Method: "GET", Path: "/jobs-admin/1"}, now, false, identity.ReasonPathNotAllowed},
		{"one of several paths", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedPaths: []string{"/health", "/jobs/*"}}, oidcID("alice", nil), identity.Request{Method: "GET", Path: "/health"}, now, true, identity.ReasonAllowed},
		{"path list denies tcp", model.IdentityBindingSpec{ClientCertURISAN: "*", AllowedPaths: []string{"/**"}}, certID("x"), identity.Request{}, now, false, identity.ReasonPathNotAllowed},
		{"grpc method glob", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedGRPCMethods: []string{"/jobs.v1.Jobs/*"}}, oidcID("alice", nil), identity.Request{Method: "POST", Path: "/jobs.v1.Jobs/Run", GRPCMethod: "/jobs.v1.Jobs/Run"}, now, true, identity.ReasonAllowed},
		{"grpc other service", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedGRPCMethods: []string{"/jobs.v1.Jobs/*"}}, oidcID("alice", nil), identity.Request{Method: "POST", Path: "/admin.v1.Admin/Run", GRPCMethod: "/admin.v1.Admin/Run"}, now, false, identity.ReasonGRPCMethodNotAllowed},
		{"grpc service prefix lookalike", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedGRPCMethods: []string{"/jobs.v1.Jobs/Get*"}}, oidcID("alice", nil), identity.Request{Method: "POST", GRPCMethod: "/jobs.v1.JobsAdmin/GetAll"}, now, false, identity.ReasonGRPCMethodNotAllowed},
		{"grpc list denies plain http", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedGRPCMethods: []string{"/jobs.v1.Jobs/*"}}, oidcID("alice", nil), get, now, false, identity.ReasonGRPCMethodNotAllowed},

		{"before expiry", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", ExpiresAt: "2026-06-01T12:00:01Z"}, oidcID("alice", nil), get, now, true, identity.ReasonAllowed},
		{"at expiry", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", ExpiresAt: "2026-06-01T12:00:00Z"}, oidcID("alice", nil), get, now, false, identity.ReasonExpired},
		{"after expiry", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", ExpiresAt: "2026-06-01T11:00:00Z"}, oidcID("alice", nil), get, now, false, identity.ReasonExpired},
		{"expiry with offset", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", ExpiresAt: "2026-06-01T13:30:00+02:00"}, oidcID("alice", nil), get, now, false, identity.ReasonExpired},
		{"expired binding reports the stranger as a stranger", model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", ExpiresAt: "2026-06-01T11:00:00Z"}, oidcID("mallory", nil), get, now, false, identity.ReasonSubjectMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := identity.CompileBinding("b1", "binding", &tt.spec)
			if err != nil {
				t.Fatalf("CompileBinding: %v", err)
			}
			got, reason := b.Allows(tt.id, tt.req, tt.at)
			if got != tt.want || reason != tt.reason {
				t.Errorf("Allows = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestCompileBindingRefusesUnsafeSpecs(t *testing.T) {
	for name, spec := range map[string]*model.IdentityBindingSpec{
		"nil":                   nil,
		"empty":                 {},
		"issuer alone":          {Issuer: issuer},
		"subject without issue": {Subject: "alice"},
		"token and cert":        {Issuer: issuer, Subject: "alice", ClientCertURISAN: "spiffe://x"},
		"bad subject glob":      {Issuer: issuer, Subject: "[a"},
		"bad claim glob":        {Issuer: issuer, Claims: map[string]string{"groups": "a\\"}},
		"bad path glob":         {Issuer: issuer, Subject: "a", AllowedPaths: []string{"/[x"}},
		"bad grpc glob":         {Issuer: issuer, Subject: "a", AllowedGRPCMethods: []string{"/a/[x"}},
		"bad expiry":            {Issuer: issuer, Subject: "a", ExpiresAt: "tomorrow"},
	} {
		if _, err := identity.CompileBinding("b", "n", spec); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	b, err := identity.CompileBinding("id-1", "ci", &model.IdentityBindingSpec{Issuer: issuer, Subject: "a", ExpiresAt: "2026-06-01T12:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "id-1" || b.Name != "ci" || !b.ExpiresAt().Equal(now) {
		t.Errorf("binding %+v expires %s", b, b.ExpiresAt())
	}
}

func TestAuthorize(t *testing.T) {
	compile := func(spec model.IdentityBindingSpec) *identity.Binding {
		b, err := identity.CompileBinding(spec.Subject+spec.ClientCertURISAN, "", &spec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := compile(model.IdentityBindingSpec{Issuer: "https://other.example.com", Subject: "alice"})
	readOnly := compile(model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedMethods: []string{"GET"}})
	writer := compile(model.IdentityBindingSpec{Issuer: issuer, Subject: "alice", AllowedMethods: []string{"POST"}, AllowedPaths: []string{"/jobs"}})
	alice := oidcID("alice", nil)

	if b, reason := identity.Authorize(nil, alice, identity.Request{Method: "GET"}, now); b != nil || reason != identity.ReasonNoBinding {
		t.Errorf("no bindings: %v %q", b, reason)
	}
	if b, reason := identity.Authorize([]*identity.Binding{other, readOnly}, nil, identity.Request{}, now); b != nil || reason != identity.ReasonNoIdentity {
		t.Errorf("no identity: %v %q", b, reason)
	}
	if b, reason := identity.Authorize([]*identity.Binding{other, readOnly, writer}, alice, identity.Request{Method: "POST", Path: "/jobs"}, now); b != writer || reason != identity.ReasonAllowed {
		t.Errorf("POST /jobs: %v %q", b, reason)
	}
	// The denial names what stopped the binding that recognized the caller.
	if b, reason := identity.Authorize([]*identity.Binding{other, readOnly}, alice, identity.Request{Method: "DELETE", Path: "/jobs"}, now); b != nil || reason != identity.ReasonMethodNotAllowed {
		t.Errorf("DELETE: %v %q", b, reason)
	}
	if b, reason := identity.Authorize([]*identity.Binding{readOnly, other}, oidcID("bob", nil), identity.Request{Method: "GET"}, now); b != nil || reason != identity.ReasonSubjectMismatch {
		t.Errorf("bob: %v %q", b, reason)
	}
}
