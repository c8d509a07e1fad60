package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Ensure the implementation satisfies the framework interfaces it means to.
var (
	_ resource.ResourceWithConfigure      = (*gatewayResource)(nil)
	_ resource.ResourceWithImportState    = (*gatewayResource)(nil)
	_ resource.ResourceWithValidateConfig = (*gatewayResource)(nil)
)

// NewGatewayResource returns the sallyport_gateway resource.
func NewGatewayResource() resource.Resource { return &gatewayResource{} }

// gatewayResource manages a gateway: a listener planners connect to.
type gatewayResource struct {
	client *client.Client
}

// gatewayModel maps the resource's schema.
type gatewayModel struct {
	ID            types.String        `tfsdk:"id"`
	Name          types.String        `tfsdk:"name"`
	ListenAddr    types.String        `tfsdk:"listen_addr"`
	Hostnames     types.Set           `tfsdk:"hostnames"`
	TLSSettingsID types.String        `tfsdk:"tls_settings_id"`
	OIDCProviders []oidcProviderModel `tfsdk:"oidc_providers"`
	Certificate   types.Object        `tfsdk:"certificate"`
	Ready         types.Bool          `tfsdk:"ready"`
	CreatedAt     timetypes.RFC3339   `tfsdk:"created_at"`
	Timeouts      timeouts.Value      `tfsdk:"timeouts"`
}

// oidcProviderModel maps one element of oidc_providers.
type oidcProviderModel struct {
	IssuerURL         types.String `tfsdk:"issuer_url"`
	Audiences         types.Set    `tfsdk:"audiences"`
	AllowedAlgorithms types.Set    `tfsdk:"allowed_algorithms"`
	CAPEM             types.String `tfsdk:"ca_pem"`
	TokenType         types.String `tfsdk:"token_type"`
}

// certificateStatusAttrTypes is the type of a gateway's computed
// certificate.
var certificateStatusAttrTypes = map[string]attr.Type{
	"subject":            types.StringType,
	"issuer":             types.StringType,
	"not_after":          timetypes.RFC3339Type{},
	"sha256_fingerprint": types.StringType,
}

// gatewayProblems maps the appliance's problem fields to attributes; the
// set elements are filled in per spec by gatewayProblemPaths.
func gatewayProblemPaths(s *model.GatewaySpec) problemPaths {
	pp := problemPaths{
		sets: map[string]bool{
			"hostnames":                         true,
			"oidc_providers.audiences":          true,
			"oidc_providers.allowed_algorithms": true,
		},
		setValues: map[string][]string{"spec.hostnames": s.Hostnames},
	}
	for i, p := range s.OIDCProviders {
		prefix := fmt.Sprintf("spec.oidc_providers[%d]", i)
		pp.setValues[prefix+".audiences"] = p.Audiences
		pp.setValues[prefix+".allowed_algorithms"] = p.AllowedAlgorithms
	}
	return pp
}

// Metadata names the resource type.
func (r *gatewayResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_gateway"
}

// Schema describes the resource.
func (r *gatewayResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A gateway: a TLS listener that planners connect to. It serves a certificate from its " +
			"TLS settings for its hostnames, and verifies callers' OIDC tokens against the issuers it trusts " +
			"(`oidc_providers`) or their client certificates (the TLS settings' `client_auth`). Connections " +
			"route requests through it to executors.\n\n" +
			"Create and update return once the appliance serves the change.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The appliance's id of the gateway (`gw_...`).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Unique name: 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit. " +
					"Can be changed in place.",
				Validators: []validator.String{nameRule()},
			},
			"listen_addr": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "`HOST:PORT` to listen on, e.g. `0.0.0.0:443` or `127.0.0.1:9443`; `HOST` is an IP " +
					"address, `localhost` or empty (all interfaces).",
				Validators: []validator.String{listenAddrRule()},
			},
			"hostnames": schema.SetAttribute{
				Required:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "The DNS names the gateway serves (SNI and `Host`), lower case; `*.example.com` wildcards allowed.",
				// The appliance's rules (ValidateConfig) require at least one.
				Validators: []validator.Set{setvalidator.ValueStringsAre(hostnameRule())},
			},
			"tls_settings_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The id of the `sallyport_tls_settings` of the side planners connect to.",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"oidc_providers": schema.ListNestedAttribute{
				Optional: true,
				MarkdownDescription: "The OIDC token issuers the gateway trusts. A planner presents a token from one of them " +
					"as `Authorization: Bearer`; identity bindings then decide what it may do.",
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"issuer_url": schema.StringAttribute{
							Required: true,
							MarkdownDescription: "The issuer (`iss`), an `https` URL (`http` only on loopback); discovery " +
								"is read from it.",
						},
						"audiences": schema.SetAttribute{
							Required:            true,
							ElementType:         types.StringType,
							MarkdownDescription: "The accepted `aud` values, at least one; tokens for any other audience are refused.",
						},
						"allowed_algorithms": schema.SetAttribute{
							Optional:    true,
							ElementType: types.StringType,
							MarkdownDescription: "The accepted token signing algorithms (`RS256` when unset), from " +
								"`RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `ES512`, `EdDSA`.",
							Validators: []validator.Set{
								setvalidator.SizeAtLeast(1),
								setvalidator.ValueStringsAre(oneOfRule(model.OIDCAlgorithms...)),
							},
						},
						"ca_pem": schema.StringAttribute{
							Optional:            true,
							MarkdownDescription: "PEM CA certificates that verify the IdP's TLS (the system roots when unset).",
							Validators:          []validator.String{pemCertificatesRule()},
						},
						"token_type": schema.StringAttribute{
							Optional: true,
							MarkdownDescription: "Accept only this type of token: `access` (an RFC 9068 access token, " +
								"`typ` `at+jwt`) or `id` (an OpenID Connect ID token), so one cannot be replayed as the other.",
							Validators: []validator.String{oneOfRule(model.TokenTypeAccess, model.TokenTypeID)},
						},
					},
				},
			},
			"certificate": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The certificate the gateway serves now, as the appliance reports it.",
				Attributes:          certificateStatusSchema(),
			},
			"ready": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the appliance serves the gateway's current configuration.",
			},
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance created the gateway (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"timeouts": operationTimeouts(ctx, "a new gateway"),
		},
	}
}

// certificateStatusSchema is the schema of a gateway's computed
// certificate.
func certificateStatusSchema() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"subject": schema.StringAttribute{
			Computed:            true,
			MarkdownDescription: "The certificate's subject.",
		},
		"issuer": schema.StringAttribute{
			Computed:            true,
			MarkdownDescription: "The certificate's issuer.",
		},
		"not_after": schema.StringAttribute{
			CustomType:          timetypes.RFC3339Type{},
			Computed:            true,
			MarkdownDescription: "When the certificate expires (RFC 3339).",
		},
		"sha256_fingerprint": schema.StringAttribute{
			Computed:            true,
			MarkdownDescription: "The SHA-256 fingerprint of the certificate (lower-case hex).",
		},
	}
}

// Configure receives the provider's client.
func (r *gatewayResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, diags := clientFromProviderData(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.client = c
}

// spec builds the gateway spec from a model; ok is false when a value it
// needs is unknown. An unknown tls_settings_id (TLS settings created in the
// same apply) is replaced by a placeholder: the model only checks that it is
// set.
func (m *gatewayModel) spec(ctx context.Context) (model.GatewaySpec, bool) {
	s := model.GatewaySpec{
		ListenAddr:    m.ListenAddr.ValueString(),
		TLSSettingsID: refID(m.TLSSettingsID),
	}
	hosts, ok := setStrings(ctx, m.Hostnames)
	s.Hostnames = hosts
	ok = ok && known(m.ListenAddr)
	for _, p := range m.OIDCProviders {
		aud, audOK := setStrings(ctx, p.Audiences)
		algs, algOK := setStrings(ctx, p.AllowedAlgorithms)
		ok = ok && audOK && algOK && known(p.IssuerURL, p.CAPEM, p.TokenType)
		s.OIDCProviders = append(s.OIDCProviders, model.OIDCProvider{
			IssuerURL:         p.IssuerURL.ValueString(),
			Audiences:         aud,
			AllowedAlgorithms: algs,
			CAPEM:             p.CAPEM.ValueString(),
			TokenType:         p.TokenType.ValueString(),
		})
	}
	return s, ok
}

// ValidateConfig checks the configuration with the appliance's own rules
// (model.GatewaySpec.Validate), reporting each problem on its attribute.
func (r *gatewayResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m gatewayModel
	if req.Config.Get(ctx, &m).HasError() {
		return // an unknown list: checked once known
	}
	spec, ok := m.spec(ctx)
	if !ok || m.Hostnames.IsNull() {
		return
	}
	addProblems(&resp.Diagnostics, gatewayProblemPaths(&spec), spec.Validate(nil))
}

// Create creates the gateway and waits until the appliance serves it.
func (r *gatewayResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan gatewayModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, _ := plan.spec(ctx)
	col := r.client.Gateways()
	o, err := col.Create(ctx, plan.Name.ValueString(), spec)
	ready := awaitLive(ctx, col, o, err, timeout, "create gateway", gatewayProblemPaths(&spec), "timeouts.create", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, gatewayFromAPI(ready, plan.Timeouts))...)
}

// Read refreshes the state from the appliance; a deleted gateway is removed
// from state so that the next plan creates it again.
func (r *gatewayResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state gatewayModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	o := readObject(ctx, r.client.Gateways(), state.ID.ValueString(), resp)
	if o == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, gatewayFromAPI(o, state.Timeouts))...)
}

// Update replaces the gateway in place and waits until the appliance serves
// the change.
func (r *gatewayResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan, state gatewayModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, _ := plan.spec(ctx)
	col := r.client.Gateways()
	o, err := col.Replace(ctx, state.ID.ValueString(), plan.Name.ValueString(), spec, client.WriteOptions{})
	ready := awaitLive(ctx, col, o, err, timeout, "update gateway", gatewayProblemPaths(&spec), "timeouts.update", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, gatewayFromAPI(ready, plan.Timeouts))...)
}

// Delete deletes the gateway; already gone is fine. A gateway that
// connections still use cannot be deleted: the appliance names them.
func (r *gatewayResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state gatewayModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	deleteObject(ctx, r.client.Gateways(), state.ID.ValueString(), state.Timeouts, &resp.Diagnostics)
}

// ImportState imports a gateway by id or by name.
func (r *gatewayResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	o, err := lookup(ctx, r.client.Gateways(), "", req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import gateway",
			fmt.Sprintf("No gateway with id or name %q: %s. Import by id (gw_...) or by name.", req.ID, err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), o.ID)...)
}

// gatewayFromAPI builds the state from a gateway read from the appliance.
func gatewayFromAPI(o *model.Gateway, to timeouts.Value) *gatewayModel {
	s := o.Spec
	return &gatewayModel{
		ID:            types.StringValue(o.ID),
		Name:          types.StringValue(o.Name),
		ListenAddr:    types.StringValue(s.ListenAddr),
		Hostnames:     stringSet(s.Hostnames),
		TLSSettingsID: types.StringValue(s.TLSSettingsID),
		OIDCProviders: oidcProvidersFromAPI(s.OIDCProviders),
		Certificate:   certificateStatusFromAPI(o.Status.Certificate),
		Ready:         types.BoolValue(o.Status.Ready && o.Status.ObservedGeneration >= o.Generation),
		CreatedAt:     rfc3339(o.CreatedAt),
		Timeouts:      to,
	}
}

// oidcProvidersFromAPI converts a gateway's OIDC providers (nil for none).
func oidcProvidersFromAPI(ps []model.OIDCProvider) []oidcProviderModel {
	var out []oidcProviderModel
	for _, p := range ps {
		out = append(out, oidcProviderModel{
			IssuerURL:         types.StringValue(p.IssuerURL),
			Audiences:         stringSet(p.Audiences),
			AllowedAlgorithms: stringSet(p.AllowedAlgorithms),
			CAPEM:             optString(p.CAPEM),
			TokenType:         optString(p.TokenType),
		})
	}
	return out
}

// certificateStatusFromAPI converts a gateway's certificate status; null
// while the gateway serves none.
func certificateStatusFromAPI(c *model.CertificateStatus) types.Object {
	if c == nil {
		return types.ObjectNull(certificateStatusAttrTypes)
	}
	return types.ObjectValueMust(certificateStatusAttrTypes, map[string]attr.Value{
		"subject":            types.StringValue(c.Subject),
		"issuer":             types.StringValue(c.Issuer),
		"not_after":          rfc3339(c.NotAfter),
		"sha256_fingerprint": types.StringValue(c.SHA256Fingerprint),
	})
}
