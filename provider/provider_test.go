package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// configType is the provider block's object type, as Terraform sends it.
var configType = tftypes.Object{AttributeTypes: map[string]tftypes.Type{
	"endpoint":              tftypes.String,
	"token":                 tftypes.String,
	"ca_cert_pem":           tftypes.String,
	"ca_fingerprint_sha256": tftypes.String,
	"request_timeout":       tftypes.String,
}}

// unknown marks an attribute value as unknown (known only after apply).
type unknown struct{}

// configValue builds a provider block value: attributes not in attrs are
// null, strings are known, unknown{} is unknown.
func configValue(attrs map[string]any) tftypes.Value {
	vals := map[string]tftypes.Value{}
	for name := range configType.AttributeTypes {
		switch v := attrs[name].(type) {
		case nil:
			vals[name] = tftypes.NewValue(tftypes.String, nil)
		case unknown:
			vals[name] = tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
		case string:
			vals[name] = tftypes.NewValue(tftypes.String, v)
		default:
			panic("unsupported test value")
		}
	}
	return tftypes.NewValue(configType, vals)
}

func dynamicConfig(t *testing.T, attrs map[string]any) *tfprotov6.DynamicValue {
	t.Helper()
	dv, err := tfprotov6.NewDynamicValue(configType, configValue(attrs))
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

// server returns the provider as Terraform sees it: a protocol 6 server.
func server(t *testing.T) tfprotov6.ProviderServer {
	t.Helper()
	s, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clearEnv makes sure the developer's own SALLYPORT_* variables (e.g. from
// `make dev`) do not leak into a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, env := range []string{EnvEndpoint, EnvToken, EnvCACertPEM, EnvCAFingerprint, EnvRequestTimeout} {
		t.Setenv(env, "")
	}
}

func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), "admin-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// colonFingerprint formats a fingerprint the way openssl prints it.
func colonFingerprint(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(block.Bytes)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return strings.Join(parts, ":")
}

func TestProviderSchema(t *testing.T) {
	resp, err := server(t).GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("diagnostic: %s: %s", d.Summary, d.Detail)
	}
	for _, name := range []string{"sallyport_tls_settings", "sallyport_gateway", "sallyport_connection", "sallyport_identity_binding"} {
		if resp.ResourceSchemas[name] == nil {
			t.Errorf("resource %s missing", name)
		}
	}
	for _, name := range []string{"sallyport_appliance", "sallyport_gateway", "sallyport_connection"} {
		if resp.DataSourceSchemas[name] == nil {
			t.Errorf("data source %s missing", name)
		}
	}
	if len(resp.ResourceSchemas) != 4 || len(resp.DataSourceSchemas) != 3 {
		t.Errorf("resources %d, data sources %d; want 4 and 3", len(resp.ResourceSchemas), len(resp.DataSourceSchemas))
	}

	attrs := map[string]*tfprotov6.SchemaAttribute{}
	for _, a := range resp.Provider.Block.Attributes {
		attrs[a.Name] = a
	}
	for name := range configType.AttributeTypes {
		a, ok := attrs[name]
		if !ok {
			t.Errorf("attribute %s missing", name)
			continue
		}
		if !a.Optional || a.Required || a.Computed {
			t.Errorf("%s: optional=%t required=%t computed=%t; want optional only (every attribute has an environment fallback)",
				name, a.Optional, a.Required, a.Computed)
		}
		if !a.Type.Is(tftypes.String) {
			t.Errorf("%s: type %s, want string", name, a.Type)
		}
		if a.Description == "" {
			t.Errorf("%s has no description", name)
		}
		if wantSensitive := name == "token"; a.Sensitive != wantSensitive {
			t.Errorf("%s: sensitive=%t, want %t", name, a.Sensitive, wantSensitive)
		}
	}
	if len(attrs) != len(configType.AttributeTypes) {
		t.Errorf("schema has %d attributes, want %d", len(attrs), len(configType.AttributeTypes))
	}
	// The env variables are part of the user-facing contract: documented.
	for name, env := range map[string]string{"endpoint": EnvEndpoint, "token": EnvToken, "ca_cert_pem": EnvCACertPEM,
		"ca_fingerprint_sha256": EnvCAFingerprint, "request_timeout": EnvRequestTimeout} {
		if a := attrs[name]; a != nil && !strings.Contains(a.Description, env) {
			t.Errorf("%s description does not mention %s", name, env)
		}
	}
}

func TestValidateProviderConfig(t *testing.T) {
	ca := testCA(t)
	fp := ca.Fingerprint()
	valid := map[string]any{
		"endpoint":        "https://127.0.0.1:8443",
		"token":           "secret-token",
		"ca_cert_pem":     string(ca.CertPEM()),
		"request_timeout": "45s",
	}
	with := func(changes map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range valid {
			out[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(out, k)
				continue
			}
			out[k] = v
		}
		return out
	}

	tests := []struct {
		name string
		cfg  map[string]any
		// wantPaths are the attributes that must carry an error; none means
		// the config is valid.
		wantPaths []string
		wantText  string
	}{
		{name: "valid with CA PEM", cfg: valid},
		{name: "valid with fingerprint", cfg: with(map[string]any{"ca_cert_pem": nil, "ca_fingerprint_sha256": fp})},
		{name: "fingerprint with colons, upper case", cfg: with(map[string]any{"ca_cert_pem": nil, "ca_fingerprint_sha256": colonFingerprint(ca.CertPEM())})},
		{name: "empty block", cfg: map[string]any{}},
		{name: "endpoint with base path", cfg: with(map[string]any{"endpoint": "https://sallyport.example.com/admin/"})},
		{name: "IPv6 endpoint", cfg: with(map[string]any{"endpoint": "https://[::1]:8443"})},
		{
			name:      "both CA pins",
			cfg:       with(map[string]any{"ca_fingerprint_sha256": fp}),
			wantPaths: []string{"ca_cert_pem", "ca_fingerprint_sha256"},
			wantText:  "ca_fingerprint_sha256",
		},
		{name: "http endpoint", cfg: with(map[string]any{"endpoint": "http://127.0.0.1:8443"}), wantPaths: []string{"endpoint"}, wantText: "https"},
		{name: "endpoint without scheme", cfg: with(map[string]any{"endpoint": "127.0.0.1:8443"}), wantPaths: []string{"endpoint"}},
		{name: "endpoint without host", cfg: with(map[string]any{"endpoint": "https:///v1"}), wantPaths: []string{"endpoint"}, wantText: "host"},
		{name: "endpoint with query", cfg: with(map[string]any{"endpoint": "https://a.example?x=1"}), wantPaths: []string{"endpoint"}},
		{
			name:      "endpoint with credentials",
			cfg:       with(map[string]any{"endpoint": "https://admin:hunter2@a.example"}),
			wantPaths: []string{"endpoint"},
			wantText:  "user info",
		},
		{name: "short fingerprint", cfg: with(map[string]any{"ca_cert_pem": nil, "ca_fingerprint_sha256": fp[:62]}), wantPaths: []string{"ca_fingerprint_sha256"}, wantText: "64 hex"},
		{name: "non-hex fingerprint", cfg: with(map[string]any{"ca_cert_pem": nil, "ca_fingerprint_sha256": "zz" + fp[2:]}), wantPaths: []string{"ca_fingerprint_sha256"}},
		{name: "garbage CA PEM", cfg: with(map[string]any{"ca_cert_pem": "not a certificate"}), wantPaths: []string{"ca_cert_pem"}},
		{name: "bad duration", cfg: with(map[string]any{"request_timeout": "thirty seconds"}), wantPaths: []string{"request_timeout"}},
		{name: "negative duration", cfg: with(map[string]any{"request_timeout": "-5s"}), wantPaths: []string{"request_timeout"}, wantText: "positive"},
		{name: "empty token", cfg: with(map[string]any{"token": ""}), wantPaths: []string{"token"}},
		{
			name: "unknown values are not validated yet",
			cfg: map[string]any{"endpoint": unknown{}, "token": unknown{}, "ca_cert_pem": unknown{},
				"ca_fingerprint_sha256": unknown{}, "request_timeout": unknown{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := server(t).ValidateProviderConfig(context.Background(), &tfprotov6.ValidateProviderConfigRequest{
				Config: dynamicConfig(t, tc.cfg),
			})
			if err != nil {
				t.Fatal(err)
			}
			checkDiagnostics(t, resp.Diagnostics, tc.wantPaths, tc.wantText)
			// A secret never appears in a diagnostic.
			for _, d := range resp.Diagnostics {
				for _, secret := range []string{"secret-token", "hunter2"} {
					if strings.Contains(d.Summary+d.Detail, secret) {
						t.Errorf("diagnostic reveals %q: %s: %s", secret, d.Summary, d.Detail)
					}
				}
			}
		})
	}
}

func TestConfigureResolvesConfig(t *testing.T) {
	ca, otherCA := testCA(t), testCA(t)
	ctx := context.Background()

	t.Run("provider block", func(t *testing.T) {
		clearEnv(t)
		cfg := configure(t, map[string]any{
			"endpoint":              "https://appliance.example.com:8443/",
			"token":                 "tok",
			"ca_fingerprint_sha256": colonFingerprint(ca.CertPEM()),
			"request_timeout":       "2m",
		})
		want := Config{
			Endpoint:       "https://appliance.example.com:8443",
			Token:          "tok",
			CAFingerprint:  ca.Fingerprint(),
			RequestTimeout: 2 * time.Minute,
		}
		if *cfg != want {
			t.Errorf("Config = %+v, want %+v", *cfg, want)
		}
	})

	t.Run("environment fills the gaps", func(t *testing.T) {
		clearEnv(t)
		t.Setenv(EnvEndpoint, "https://127.0.0.1:8443")
		t.Setenv(EnvToken, "env-token")
		t.Setenv(EnvCACertPEM, string(ca.CertPEM()))
		cfg := configure(t, map[string]any{"token": "block-token"})
		want := Config{
			Endpoint:       "https://127.0.0.1:8443",
			Token:          "block-token", // the block wins over the environment
			CACertPEM:      string(ca.CertPEM()),
			RequestTimeout: DefaultRequestTimeout,
		}
		if *cfg != want {
			t.Errorf("Config = %+v, want %+v", *cfg, want)
		}
	})

	t.Run("environment only, as make dev prints it", func(t *testing.T) {
		clearEnv(t)
		t.Setenv(EnvEndpoint, "https://127.0.0.1:8443")
		t.Setenv(EnvToken, "env-token")
		t.Setenv(EnvCAFingerprint, ca.Fingerprint())
		t.Setenv(EnvRequestTimeout, "10s")
		cfg := configure(t, map[string]any{})
		if cfg.CAFingerprint != ca.Fingerprint() || cfg.RequestTimeout != 10*time.Second || cfg.Token != "env-token" {
			t.Errorf("Config = %+v", *cfg)
		}
	})

	t.Run("both CA pins in the environment, for the same CA (as make dev prints them)", func(t *testing.T) {
		clearEnv(t)
		t.Setenv(EnvCACertPEM, string(ca.CertPEM()))
		t.Setenv(EnvCAFingerprint, colonFingerprint(ca.CertPEM()))
		cfg := configure(t, map[string]any{"endpoint": "https://a.example", "token": "t"})
		if cfg.CACertPEM != string(ca.CertPEM()) || cfg.CAFingerprint != ca.Fingerprint() {
			t.Errorf("Config = %+v, want both pins", *cfg)
		}
	})

	t.Run("a CA pin in the block overrides the environment's", func(t *testing.T) {
		clearEnv(t)
		t.Setenv(EnvCACertPEM, string(ca.CertPEM()))
		cfg := configure(t, map[string]any{"endpoint": "https://a.example", "token": "t", "ca_fingerprint_sha256": ca.Fingerprint()})
		if cfg.CACertPEM != "" || cfg.CAFingerprint != ca.Fingerprint() {
			t.Errorf("Config = %+v, want only the block's fingerprint", *cfg)
		}
	})

	for _, tc := range []struct {
		name      string
		env       map[string]string
		cfg       map[string]any
		wantPaths []string
		wantText  string
	}{
		{name: "nothing set", cfg: map[string]any{}, wantPaths: []string{"endpoint", "token"}, wantText: EnvEndpoint},
		{
			name:      "bad endpoint from the environment",
			env:       map[string]string{EnvEndpoint: "http://127.0.0.1:8443", EnvToken: "t"},
			cfg:       map[string]any{},
			wantPaths: []string{"endpoint"},
			wantText:  EnvEndpoint,
		},
		{
			name:      "both CA pins in the environment, for different CAs",
			env:       map[string]string{EnvCACertPEM: string(ca.CertPEM()), EnvCAFingerprint: otherCA.Fingerprint()},
			cfg:       map[string]any{"endpoint": "https://a.example", "token": "t"},
			wantPaths: []string{"ca_fingerprint_sha256"},
			wantText:  EnvCAFingerprint,
		},
		{
			name:      "bad fingerprint from the environment",
			env:       map[string]string{EnvCAFingerprint: "abc"},
			cfg:       map[string]any{"endpoint": "https://a.example", "token": "t"},
			wantPaths: []string{"ca_fingerprint_sha256"},
			wantText:  EnvCAFingerprint,
		},
		{
			name:      "bad timeout from the environment",
			env:       map[string]string{EnvRequestTimeout: "soon"},
			cfg:       map[string]any{"endpoint": "https://a.example", "token": "t"},
			wantPaths: []string{"request_timeout"},
			wantText:  EnvRequestTimeout,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			resp, err := server(t).ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: dynamicConfig(t, tc.cfg)})
			if err != nil {
				t.Fatal(err)
			}
			checkDiagnostics(t, resp.Diagnostics, tc.wantPaths, tc.wantText)
		})
	}
}

func TestConfigureUnknownValues(t *testing.T) {
	for name := range configType.AttributeTypes {
		t.Run(name, func(t *testing.T) {
			// Only this attribute is set, and to a value known after apply.
			// With no environment either, resolving now would fail for the
			// missing endpoint or token: Configure must return before that,
			// and must not fall back to the environment.
			clearEnv(t)
			cfg := map[string]any{name: unknown{}}

			resp, err := server(t).ConfigureProvider(context.Background(), &tfprotov6.ConfigureProviderRequest{Config: dynamicConfig(t, cfg)})
			if err != nil {
				t.Fatal(err)
			}
			checkDiagnostics(t, resp.Diagnostics, nil, "")

			// Directly: no provider data while anything is unknown.
			p := New("test")()
			var presp provider.ConfigureResponse
			p.Configure(context.Background(), provider.ConfigureRequest{Config: tfsdkConfig(t, p, cfg)}, &presp)
			if presp.Diagnostics.HasError() {
				t.Fatalf("diagnostics: %v", presp.Diagnostics)
			}
			if presp.ResourceData != nil || presp.DataSourceData != nil {
				t.Error("provider data set although the configuration is not known yet")
			}
			if presp.Deferred != nil {
				t.Error("deferred although the client does not allow deferral")
			}

			// Terraform versions that support deferral get a deferral.
			presp = provider.ConfigureResponse{}
			p.Configure(context.Background(), provider.ConfigureRequest{
				Config:             tfsdkConfig(t, p, cfg),
				ClientCapabilities: provider.ConfigureProviderClientCapabilities{DeferralAllowed: true},
			}, &presp)
			if presp.Deferred == nil || presp.Deferred.Reason != provider.DeferredReasonProviderConfigUnknown {
				t.Errorf("Deferred = %+v, want provider config unknown", presp.Deferred)
			}
		})
	}
}

// configure runs the provider's Configure on attrs and returns the Config it
// hands to resources, failing the test on any error diagnostic.
func configure(t *testing.T, attrs map[string]any) *Config {
	t.Helper()
	p := New("test")()
	var resp provider.ConfigureResponse
	p.Configure(context.Background(), provider.ConfigureRequest{Config: tfsdkConfig(t, p, attrs)}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatalf("Configure: %v", resp.Diagnostics)
	}
	cfg, ok := resp.ResourceData.(*Config)
	if !ok {
		t.Fatalf("ResourceData is %T, want *Config", resp.ResourceData)
	}
	if ds, ok := resp.DataSourceData.(*Config); !ok || ds != cfg {
		t.Fatalf("DataSourceData is %T, want the same *Config", resp.DataSourceData)
	}
	if cfg.Client == nil {
		t.Fatal("Config.Client is nil: Configure must build the client")
	}
	if got, want := cfg.Client.Endpoint(), cfg.Endpoint; got != want {
		t.Errorf("client endpoint %q, want %q", got, want)
	}
	// The rest of the Config is compared by value in the tests.
	out := *cfg
	out.Client = nil
	return &out
}

func tfsdkConfig(t *testing.T, p provider.Provider, attrs map[string]any) tfsdk.Config {
	t.Helper()
	var sresp provider.SchemaResponse
	p.Schema(context.Background(), provider.SchemaRequest{}, &sresp)
	if sresp.Diagnostics.HasError() {
		t.Fatalf("Schema: %v", sresp.Diagnostics)
	}
	return tfsdk.Config{Schema: sresp.Schema, Raw: configValue(attrs)}
}

// checkDiagnostics asserts that diags holds an error on each of wantPaths
// (and only there), that at least one mentions wantText, and that there is
// none at all when wantPaths is empty.
func checkDiagnostics(t *testing.T, diags []*tfprotov6.Diagnostic, wantPaths []string, wantText string) {
	t.Helper()
	var errs []*tfprotov6.Diagnostic
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			errs = append(errs, d)
		}
	}
	if len(wantPaths) == 0 {
		for _, d := range errs {
			t.Errorf("unexpected error: %s: %s (at %v)", d.Summary, d.Detail, d.Attribute)
		}
		return
	}
	for _, want := range wantPaths {
		p := tftypes.NewAttributePath().WithAttributeName(want)
		found := false
		for _, d := range errs {
			if d.Attribute != nil && d.Attribute.Equal(p) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error on %s; errors: %s", want, describe(errs))
		}
	}
	for _, d := range errs {
		if d.Attribute == nil {
			t.Errorf("error without attribute path: %s: %s", d.Summary, d.Detail)
		}
	}
	if wantText != "" {
		found := false
		for _, d := range errs {
			if strings.Contains(d.Summary+" "+d.Detail, wantText) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error mentions %q; errors: %s", wantText, describe(errs))
		}
	}
}

func describe(diags []*tfprotov6.Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("\n\t")
		if d.Attribute != nil {
			b.WriteString(d.Attribute.String() + ": ")
		}
		b.WriteString(d.Summary + ": " + d.Detail)
	}
	return b.String()
}
