package provider

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// tfValue builds a Terraform value of type typ from Go values: nil is null,
// unknown{} is unknown, map[string]any an object or map, []any a list or
// set, string, int and bool the primitives. Object attributes left out are
// null.
func tfValue(t *testing.T, typ tftypes.Type, v any) tftypes.Value {
	t.Helper()
	switch v.(type) {
	case nil:
		return tftypes.NewValue(typ, nil)
	case unknown:
		return tftypes.NewValue(typ, tftypes.UnknownValue)
	}
	switch typ := typ.(type) {
	case tftypes.Object:
		m := v.(map[string]any)
		for k := range m {
			if _, ok := typ.AttributeTypes[k]; !ok {
				t.Fatalf("no attribute %q in %s", k, typ)
			}
		}
		vals := map[string]tftypes.Value{}
		for name, at := range typ.AttributeTypes {
			vals[name] = tfValue(t, at, m[name])
		}
		return tftypes.NewValue(typ, vals)
	case tftypes.Map:
		vals := map[string]tftypes.Value{}
		for k, e := range v.(map[string]any) {
			vals[k] = tfValue(t, typ.ElementType, e)
		}
		return tftypes.NewValue(typ, vals)
	case tftypes.List:
		var vals []tftypes.Value
		for _, e := range v.([]any) {
			vals = append(vals, tfValue(t, typ.ElementType, e))
		}
		return tftypes.NewValue(typ, vals)
	case tftypes.Set:
		var vals []tftypes.Value
		for _, e := range v.([]any) {
			vals = append(vals, tfValue(t, typ.ElementType, e))
		}
		return tftypes.NewValue(typ, vals)
	}
	switch {
	case typ.Is(tftypes.String):
		return tftypes.NewValue(typ, v.(string))
	case typ.Is(tftypes.Number):
		return tftypes.NewValue(typ, big.NewFloat(float64(v.(int))))
	case typ.Is(tftypes.Bool):
		return tftypes.NewValue(typ, v.(bool))
	}
	t.Fatalf("unsupported type %s", typ)
	return tftypes.Value{}
}

// validateResource runs Terraform's ValidateResourceConfig on the provider
// (schema validators and ValidateConfig) and returns its diagnostics.
func validateResource(t *testing.T, typeName string, cfg map[string]any) []*tfprotov6.Diagnostic {
	t.Helper()
	ctx := context.Background()
	s := server(t)
	schemas, err := s.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	typ := schemas.ResourceSchemas[typeName].ValueType()
	dv, err := tfprotov6.NewDynamicValue(typ, tfValue(t, typ, cfg))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{
		TypeName: typeName, Config: &dv,
		// As Terraform 1.11 and later send it.
		ClientCapabilities: &tfprotov6.ValidateResourceConfigClientCapabilities{WriteOnlyAttributesAllowed: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Diagnostics
}

// attrPath renders an attribute path the way the tests spell them:
// certificate.static.key_pem_wo, hostnames["a.example"], inject_headers_wo["X"],
// oidc_providers[0].audiences.
func attrPath(p *tftypes.AttributePath) string {
	if p == nil {
		return "<none>"
	}
	var b strings.Builder
	for _, st := range p.Steps() {
		switch st := st.(type) {
		case tftypes.AttributeName:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(st))
		case tftypes.ElementKeyString:
			fmt.Fprintf(&b, "[%q]", string(st))
		case tftypes.ElementKeyInt:
			fmt.Fprintf(&b, "[%d]", int64(st))
		case tftypes.ElementKeyValue:
			var s string
			if err := tftypes.Value(st).As(&s); err == nil {
				fmt.Fprintf(&b, "[%q]", s)
			} else {
				b.WriteString("[?]")
			}
		}
	}
	return b.String()
}

// wantErrors checks that the error diagnostics are exactly one per wanted
// path (and none when want is empty), each mentioning the wanted text.
func wantErrors(t *testing.T, diags []*tfprotov6.Diagnostic, want map[string]string) {
	t.Helper()
	got := map[string][]string{}
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			p := attrPath(d.Attribute)
			got[p] = append(got[p], d.Summary+": "+d.Detail)
		}
	}
	for p, text := range want {
		msgs := got[p]
		switch {
		case len(msgs) == 0:
			t.Errorf("no error at %s; errors: %v", p, got)
		case len(msgs) > 1:
			t.Errorf("%d errors at %s, want one: %q", len(msgs), p, msgs)
		case !strings.Contains(msgs[0], text):
			t.Errorf("error at %s is %q, want it to mention %q", p, msgs[0], text)
		}
	}
	for p, msgs := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected error at %s: %q", p, msgs)
		}
	}
}

func TestProblemPaths(t *testing.T) {
	pp := problemPaths{
		renames: map[string]string{"certificate.static.key_pem": "key_pem_wo", "inject_headers": "inject_headers_wo"},
		sets:    map[string]bool{"hostnames": true, "oidc_providers.audiences": true},
		maps:    map[string]bool{"inject_headers": true, "claims": true},
		setValues: map[string][]string{
			"spec.hostnames":                   {"b.example", "a.example"},
			"spec.oidc_providers[1].audiences": {"x", ""},
		},
	}
	for field, want := range map[string]path.Path{
		"name":                                   path.Root("name"),
		"spec.listen_addr":                       path.Root("listen_addr"),
		"spec.certificate.static.key_pem":        path.Root("certificate").AtName("static").AtName("key_pem_wo"),
		"spec.certificate.static.cert_pem":       path.Root("certificate").AtName("static").AtName("cert_pem"),
		"spec.hostnames[1]":                      path.Root("hostnames").AtSetValue(types.StringValue("a.example")),
		"spec.hostnames[7]":                      path.Root("hostnames"),
		"spec.hostnames":                         path.Root("hostnames"),
		"spec.oidc_providers[1].issuer_url":      path.Root("oidc_providers").AtListIndex(1).AtName("issuer_url"),
		"spec.oidc_providers[1].audiences[1]":    path.Root("oidc_providers").AtListIndex(1).AtName("audiences").AtSetValue(types.StringValue("")),
		"spec.inject_headers.X-Api.Key":          path.Root("inject_headers_wo").AtMapKey("X-Api.Key"),
		"spec.inject_headers":                    path.Root("inject_headers_wo"),
		"spec.claims.https://example.com/groups": path.Root("claims").AtMapKey("https://example.com/groups"),
		"query.limit":                            path.Empty(),
		"spec.x[bad]":                            path.Empty(),
	} {
		if got := pp.path(field); !got.Equal(want) {
			t.Errorf("path(%q) = %s, want %s", field, got, want)
		}
	}
}

func TestSecretWrite(t *testing.T) {
	v := func(n int64) types.Int64 { return types.Int64Value(n) }
	null := types.Int64Null()
	val := types.StringValue("s3cret")
	noVal := types.StringNull()
	const (
		send = "send"
		keep = "keep"
		drop = "remove"
		fail = "error"
	)
	for _, tc := range []struct {
		name                  string
		create, stored        bool
		value                 types.String
		version, priorVersion types.Int64
		want                  string
	}{
		{name: "create with a value", create: true, value: val, version: v(1), priorVersion: null, want: send},
		{name: "create with a value, no version", create: true, value: val, version: null, priorVersion: null, want: send},
		{name: "create without a value", create: true, value: noVal, version: null, priorVersion: null, want: drop},
		{name: "create, version without a value", create: true, value: noVal, version: v(1), priorVersion: null, want: fail},
		{name: "version bumped", value: val, version: v(2), priorVersion: v(1), stored: true, want: send},
		{name: "version bumped without a value", value: noVal, version: v(2), priorVersion: v(1), stored: true, want: fail},
		{name: "version and value removed", value: noVal, version: null, priorVersion: v(1), stored: true, want: drop},
		{name: "version unchanged keeps", value: val, version: v(1), priorVersion: v(1), stored: true, want: keep},
		{name: "version unchanged, value left out, keeps", value: noVal, version: v(1), priorVersion: v(1), stored: true, want: keep},
		{name: "no version, value kept in config", value: val, version: null, priorVersion: null, stored: true, want: keep},
		{name: "no version, value removed", value: noVal, version: null, priorVersion: null, stored: true, want: drop},
		{name: "no version, nothing stored yet", value: val, version: null, priorVersion: null, want: send},
		{name: "version unchanged, nothing stored, no value", value: noVal, version: v(1), priorVersion: v(1), want: fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var diags diag.Diagnostics
			w := secretWrite{Value: tc.value, Version: tc.version, PriorVersion: tc.priorVersion, Stored: tc.stored, Create: tc.create,
				ValuePath: path.Root("x_wo"), VersionPath: path.Root("x_wo_version")}
			s := w.secret(&diags)
			got := ""
			switch {
			case diags.HasError():
				got = fail
				if !diags[0].(diag.DiagnosticWithPath).Path().Equal(path.Root("x_wo_version")) {
					t.Errorf("error at %s, want x_wo_version", diags[0].(diag.DiagnosticWithPath).Path())
				}
			case s == nil:
				got = drop
			case s.Value == "":
				got = keep
			case s.Value == "s3cret":
				got = send
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestInstantSemanticEquality(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"2030-01-01T01:00:00+01:00", "2030-01-01T00:00:00Z", true},
		{"2030-01-01T00:00:00.9Z", "2030-01-01T00:00:00Z", true}, // the appliance keeps seconds
		{"2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z", false},
		{"not a time", "2030-01-01T00:00:00Z", false},
	} {
		got, diags := instantOf(tc.a).StringSemanticEquals(ctx, instantOf(tc.b))
		if diags.HasError() || got != tc.want {
			t.Errorf("%s ~ %s = %t (%v), want %t", tc.a, tc.b, got, diags, tc.want)
		}
	}
	// The appliance normalizes the same way.
	s := model.IdentityBindingSpec{ExpiresAt: "2030-01-01T01:00:00.9+01:00"}
	s.Normalize()
	if n, _ := normalizeInstant("2030-01-01T01:00:00.9+01:00"); n != s.ExpiresAt {
		t.Errorf("normalizeInstant = %s, the appliance stores %s", n, s.ExpiresAt)
	}
}

func TestImportParts(t *testing.T) {
	if p, ok := importParts("gw/conn", 2); !ok || !slices.Equal(p, []string{"gw", "conn"}) {
		t.Errorf("importParts = %v, %t", p, ok)
	}
	for _, bad := range []string{"gw", "gw/", "/conn", "a/b/c"} {
		if _, ok := importParts(bad, 2); ok {
			t.Errorf("importParts(%q) accepted", bad)
		}
	}
	if !looksLikeID(model.KindGateway, "gw_abc") || looksLikeID(model.KindGateway, "edge") || looksLikeID(model.KindGateway, "gw_a/b") {
		t.Error("looksLikeID")
	}
}
