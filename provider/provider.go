// Package provider is the Sallyport Terraform provider: it declares
// gateways, connections, identity bindings and TLS settings in HCL and
// reconciles them on a Sallyport appliance through its admin API.
//
// This file holds the provider itself and its configuration; each resource
// and data source lives in its own file beside it.
package provider

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// Environment variables that supply a configuration attribute the provider
// block leaves unset.
const (
	EnvEndpoint       = "SALLYPORT_ENDPOINT"
	EnvToken          = "SALLYPORT_TOKEN"
	EnvCACertPEM      = "SALLYPORT_CA_CERT_PEM"
	EnvCAFingerprint  = "SALLYPORT_CA_FINGERPRINT"
	EnvRequestTimeout = "SALLYPORT_REQUEST_TIMEOUT"
)

// Diagnostic summaries, shared by the plan-time validators and Configure.
const (
	summaryEndpoint    = "Invalid Sallyport endpoint"
	summaryCACert      = "Invalid Sallyport CA certificate"
	summaryFingerprint = "Invalid Sallyport CA fingerprint"
	summaryTimeout     = "Invalid Sallyport request timeout"
)

// DefaultRequestTimeout is the per-request timeout towards the admin API
// when neither request_timeout nor SALLYPORT_REQUEST_TIMEOUT is set.
const DefaultRequestTimeout = 30 * time.Second

// Config is the provider's resolved configuration: provider block values,
// with environment variables filling what the block leaves unset, validated
// and normalised. Configure hands a *Config to every resource and data source
// as their provider data.
type Config struct {
	// Endpoint is the admin API's base URL, always https.
	Endpoint string
	// Token is the admin API bearer token.
	Token string
	// CACertPEM is the PEM of the CA that verifies the admin API's
	// certificate; empty when the fingerprint or the system roots are used.
	CACertPEM string
	// CAFingerprint is the pinned SHA-256 fingerprint of the admin CA
	// certificate: 64 lowercase hex characters without colons; empty when
	// not pinned by fingerprint. It is set together with CACertPEM only when
	// both came from the environment and name the same CA (as `sallyportd
	// dev` prints them); the client then requires both to hold.
	CAFingerprint string
	// RequestTimeout bounds each request to the admin API.
	RequestTimeout time.Duration
	// Client is the admin API client built from the fields above; every
	// resource and data source talks to the appliance through it.
	Client *client.Client
}

// Ensure the implementation satisfies the framework interfaces it means to.
var _ provider.Provider = (*sallyportProvider)(nil)

// sallyportProvider is the provider implementation; version is the
// provider's release version ("dev" for local builds, "test" in tests).
type sallyportProvider struct {
	version string
}

// configModel maps the provider block.
type configModel struct {
	Endpoint            types.String `tfsdk:"endpoint"`
	Token               types.String `tfsdk:"token"`
	CACertPEM           types.String `tfsdk:"ca_cert_pem"`
	CAFingerprintSHA256 types.String `tfsdk:"ca_fingerprint_sha256"`
	RequestTimeout      types.String `tfsdk:"request_timeout"`
}

// New returns a constructor of the provider at the given version, the shape
// providerserver.Serve and the test factories expect.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &sallyportProvider{version: version}
	}
}

// Metadata sets the provider's type name (the prefix of every resource
// type) and version.
func (p *sallyportProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "sallyport"
	resp.Version = p.version
}

// Schema describes the provider block.
func (p *sallyportProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	caConflict := stringvalidator.ConflictsWith(path.MatchRoot("ca_cert_pem"), path.MatchRoot("ca_fingerprint_sha256"))
	resp.Schema = schema.Schema{
		Description: "The Sallyport provider manages gateways, connections, identity bindings and TLS settings " +
			"on a Sallyport appliance through its admin API.",
		MarkdownDescription: "The Sallyport provider manages gateways, connections, identity bindings and TLS settings " +
			"on a Sallyport appliance through its admin API. Every attribute can also be set by an environment " +
			"variable; a value in the provider block wins.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional: true,
				Description: "Base URL of the appliance's admin API, e.g. https://127.0.0.1:8443. " +
					"Must be https. Defaults to the " + EnvEndpoint + " environment variable.",
				MarkdownDescription: "Base URL of the appliance's admin API, e.g. `https://127.0.0.1:8443`. " +
					"Must be `https`. Defaults to the `" + EnvEndpoint + "` environment variable.",
				Validators: []validator.String{httpsURLRule()},
			},
			"token": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				Description: "Admin API bearer token (sallyportd writes the first one to <data-dir>/admin-token). " +
					"Defaults to the " + EnvToken + " environment variable.",
				MarkdownDescription: "Admin API bearer token (`sallyportd` writes the first one to `<data-dir>/admin-token`). " +
					"Defaults to the `" + EnvToken + "` environment variable.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"ca_cert_pem": schema.StringAttribute{
				Optional: true,
				Description: "PEM of the CA that issued the admin API's certificate (the appliance's admin-ca.pem). " +
					"Conflicts with ca_fingerprint_sha256. Defaults to the " + EnvCACertPEM + " environment variable. " +
					"When neither is set, the system's trusted roots verify the appliance.",
				MarkdownDescription: "PEM of the CA that issued the admin API's certificate (the appliance's `admin-ca.pem`). " +
					"Conflicts with `ca_fingerprint_sha256`. Defaults to the `" + EnvCACertPEM + "` environment variable. " +
					"When neither is set, the system's trusted roots verify the appliance.",
				Validators: []validator.String{caConflict, certPEMRule()},
			},
			"ca_fingerprint_sha256": schema.StringAttribute{
				Optional: true,
				Description: "SHA-256 fingerprint of the admin CA certificate, 64 hex characters (colons allowed), " +
					"as printed by `sallyportd dev` or `openssl x509 -noout -fingerprint -sha256`. " +
					"Conflicts with ca_cert_pem. Defaults to the " + EnvCAFingerprint + " environment variable.",
				MarkdownDescription: "SHA-256 fingerprint of the admin CA certificate, 64 hex characters (colons allowed), " +
					"as printed by `sallyportd dev` or `openssl x509 -noout -fingerprint -sha256`. " +
					"Conflicts with `ca_cert_pem`. Defaults to the `" + EnvCAFingerprint + "` environment variable.",
				Validators: []validator.String{caConflict, fingerprintRule()},
			},
			"request_timeout": schema.StringAttribute{
				Optional: true,
				Description: "Timeout of each admin API request, a Go duration such as 30s or 2m. " +
					"Defaults to the " + EnvRequestTimeout + " environment variable, then 30s.",
				MarkdownDescription: "Timeout of each admin API request, a Go duration such as `30s` or `2m`. " +
					"Defaults to the `" + EnvRequestTimeout + "` environment variable, then `30s`.",
				Validators: []validator.String{durationRule()},
			},
		},
	}
}

// Configure resolves the provider block against the environment and hands
// the result to resources and data sources.
func (p *sallyportProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m configModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// A value only known after apply (e.g. an endpoint taken from another
	// resource) cannot be resolved yet. Returning without provider data
	// leaves the dependent resources unknown in the plan rather than
	// failing or, worse, silently using an environment default.
	for _, v := range []types.String{m.Endpoint, m.Token, m.CACertPEM, m.CAFingerprintSHA256, m.RequestTimeout} {
		if v.IsUnknown() {
			if req.ClientCapabilities.DeferralAllowed {
				resp.Deferred = &provider.Deferred{Reason: provider.DeferredReasonProviderConfigUnknown}
			}
			return
		}
	}

	cfg, diags := resolveConfig(m, os.Getenv)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	c, err := client.New(client.Config{
		Endpoint:      cfg.Endpoint,
		Token:         cfg.Token,
		CACertPEM:     cfg.CACertPEM,
		CAFingerprint: cfg.CAFingerprint,
		Timeout:       cfg.RequestTimeout,
		UserAgent:     "terraform-provider-sallyport/" + p.version + " terraform/" + req.TerraformVersion,
	})
	if err != nil {
		// resolveConfig has checked every field; what is left (a CA
		// certificate the fingerprint does not match) concerns the pin.
		resp.Diagnostics.AddError("Invalid Sallyport provider configuration", err.Error())
		return
	}
	cfg.Client = c
	resp.ResourceData = cfg
	resp.DataSourceData = cfg
}

// Resources lists the provider's resources.
func (p *sallyportProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewTLSSettingsResource,
		NewGatewayResource,
		NewConnectionResource,
		NewIdentityBindingResource,
	}
}

// DataSources lists the provider's data sources.
func (p *sallyportProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewApplianceDataSource,
		NewGatewayDataSource,
		NewConnectionDataSource,
	}
}

// resolveConfig merges the provider block with the environment (getenv) and
// validates the result. Environment values have not passed the schema
// validators, so everything is checked again here, with diagnostics naming
// both the attribute and the variable.
func resolveConfig(m configModel, getenv func(string) string) (*Config, diag.Diagnostics) {
	var diags diag.Diagnostics
	cfg := &Config{}

	endpoint, fromEnv := pick(m.Endpoint, EnvEndpoint, getenv)
	if endpoint == "" {
		diags.AddAttributeError(path.Root("endpoint"), "Missing Sallyport endpoint",
			"Set endpoint in the provider block or the "+EnvEndpoint+" environment variable to the admin API URL, e.g. https://127.0.0.1:8443 (`sallyportd dev` prints it).")
	} else {
		if err := checkHTTPSURL(endpoint); err != nil {
			diags.AddAttributeError(path.Root("endpoint"), summaryEndpoint, source(fromEnv, EnvEndpoint)+err.Error())
		}
		// The client joins API paths onto the endpoint.
		cfg.Endpoint = strings.TrimRight(endpoint, "/")
	}

	token, _ := pick(m.Token, EnvToken, getenv)
	if token == "" {
		diags.AddAttributeError(path.Root("token"), "Missing Sallyport token",
			"Set token in the provider block or the "+EnvToken+" environment variable to an admin API token (`sallyportd dev` prints one; `sallyportd serve` writes the first to <data-dir>/admin-token).")
	}
	cfg.Token = token

	// The provider block pins the CA one way or the other (the schema
	// refuses both). When it pins it, the environment's pin is ignored
	// entirely: mixing a configured certificate with an inherited
	// fingerprint would be surprising.
	certPEM, fingerprint := m.CACertPEM.ValueString(), m.CAFingerprintSHA256.ValueString()
	var certFromEnv, fpFromEnv bool
	if m.CACertPEM.IsNull() && m.CAFingerprintSHA256.IsNull() {
		certPEM, fingerprint = getenv(EnvCACertPEM), getenv(EnvCAFingerprint)
		certFromEnv, fpFromEnv = certPEM != "", fingerprint != ""
	}
	if certPEM != "" {
		if err := checkCertPEM(certPEM); err != nil {
			diags.AddAttributeError(path.Root("ca_cert_pem"), summaryCACert, source(certFromEnv, EnvCACertPEM)+err.Error())
		}
		cfg.CACertPEM = certPEM
	}
	if fingerprint != "" {
		norm, err := normalizeFingerprint(fingerprint)
		if err != nil {
			diags.AddAttributeError(path.Root("ca_fingerprint_sha256"), summaryFingerprint, source(fpFromEnv, EnvCAFingerprint)+err.Error())
		}
		cfg.CAFingerprint = norm
	}
	// `sallyportd dev` prints both variables for the same CA, so both from
	// the environment are accepted when they agree; when they do not, one of
	// them is stale and guessing which would be unsafe.
	if certFromEnv && fpFromEnv && !diags.HasError() {
		if actual, err := pki.FingerprintPEM([]byte(certPEM)); err == nil && actual != cfg.CAFingerprint {
			diags.AddAttributeError(path.Root("ca_fingerprint_sha256"), "Conflicting Sallyport CA settings",
				"The "+EnvCACertPEM+" and "+EnvCAFingerprint+" environment variables name different CAs: the certificate's "+
					"SHA-256 fingerprint is "+actual+", the variable says "+cfg.CAFingerprint+". Unset the stale one.")
		}
	}

	cfg.RequestTimeout = DefaultRequestTimeout
	if timeout, fromEnv := pick(m.RequestTimeout, EnvRequestTimeout, getenv); timeout != "" {
		d, err := parseTimeout(timeout)
		if err != nil {
			diags.AddAttributeError(path.Root("request_timeout"), summaryTimeout, source(fromEnv, EnvRequestTimeout)+err.Error())
		}
		cfg.RequestTimeout = d
	}

	if diags.HasError() {
		return nil, diags
	}
	return cfg, diags
}

// pick returns the configured value, or the environment variable's when the
// attribute is null, and whether it came from the environment.
func pick(v types.String, env string, getenv func(string) string) (string, bool) {
	if !v.IsNull() {
		return v.ValueString(), false
	}
	return getenv(env), true
}

// source prefixes a message with the environment variable that supplied the
// value, so the user knows where to look.
func source(fromEnv bool, env string) string {
	if fromEnv {
		return "From the " + env + " environment variable: "
	}
	return ""
}

// checkHTTPSURL accepts an absolute https URL with a host and without user
// info, query or fragment: the token must never travel in clear text, and
// anything beyond a base path would be silently dropped by the client.
func checkHTTPSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%q must use https (the admin API is served over TLS only)", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		// Redacted: the password may be a secret.
		return fmt.Errorf("%q must not contain user info; use token for authentication", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q must not contain a query or fragment", s)
	}
	if port := u.Port(); port == "" && strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q has an empty port", s)
	}
	return nil
}

// checkCertPEM accepts PEM holding at least one parseable certificate.
func checkCertPEM(s string) error {
	if _, err := model.ParseCertificatesPEM(s); err != nil {
		return fmt.Errorf("not a PEM certificate: %w", err)
	}
	return nil
}

// normalizeFingerprint accepts 64 hex characters, optionally separated by
// colons and in either case (as openssl prints them), and returns them
// lowercase without colons, the form the appliance prints.
func normalizeFingerprint(s string) (string, error) {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if len(norm) != 64 {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint: want 64 hex characters (colons allowed), got %d", s, len(norm))
	}
	if _, err := hex.DecodeString(norm); err != nil {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint: want hex characters only (colons allowed)", s)
	}
	return norm, nil
}

// parseTimeout parses a positive Go duration.
func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30s or 2m: %w", s, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}
