package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Ensure the implementation satisfies the framework interfaces it means to.
var (
	_ resource.ResourceWithConfigure      = (*tlsSettingsResource)(nil)
	_ resource.ResourceWithImportState    = (*tlsSettingsResource)(nil)
	_ resource.ResourceWithValidateConfig = (*tlsSettingsResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*tlsSettingsResource)(nil)
)

// NewTLSSettingsResource returns the sallyport_tls_settings resource.
func NewTLSSettingsResource() resource.Resource { return &tlsSettingsResource{} }

// tlsSettingsResource manages a TLS settings object: a TLS identity (where
// the certificate comes from) and trust policy (which peer CAs, whether a
// peer certificate is required, the protocol floor).
type tlsSettingsResource struct {
	client *client.Client
}

// tlsSettingsModel maps the resource's schema.
type tlsSettingsModel struct {
	ID          types.String      `tfsdk:"id"`
	Name        types.String      `tfsdk:"name"`
	MinVersion  types.String      `tfsdk:"min_version"`
	Certificate *certificateModel `tfsdk:"certificate"`
	PeerCAPEM   types.String      `tfsdk:"peer_ca_pem"`
	ClientAuth  types.String      `tfsdk:"client_auth"`
	ServerName  types.String      `tfsdk:"server_name"`
	CreatedAt   timetypes.RFC3339 `tfsdk:"created_at"`
	Timeouts    timeouts.Value    `tfsdk:"timeouts"`
}

// certificateModel maps certificate.
type certificateModel struct {
	Source types.String     `tfsdk:"source"`
	ACME   *acmeModel       `tfsdk:"acme"`
	Static *staticCertModel `tfsdk:"static"`
}

// acmeModel maps certificate.acme.
type acmeModel struct {
	DirectoryURL      types.String `tfsdk:"directory_url"`
	Email             types.String `tfsdk:"email"`
	TrustedRootsPEM   types.String `tfsdk:"trusted_roots_pem"`
	EABKeyID          types.String `tfsdk:"eab_key_id"`
	EABHMACWO         types.String `tfsdk:"eab_hmac_wo"`
	EABHMACWOVersion  types.Int64  `tfsdk:"eab_hmac_wo_version"`
	HTTPChallengeAddr types.String `tfsdk:"http_challenge_addr"`
}

// staticCertModel maps certificate.static.
type staticCertModel struct {
	CertPEM         types.String `tfsdk:"cert_pem"`
	KeyPEMWO        types.String `tfsdk:"key_pem_wo"`
	KeyPEMWOVersion types.Int64  `tfsdk:"key_pem_wo_version"`
}

// Attribute paths of the TLS settings' write-only secrets and their
// versions.
var (
	pathEABHMAC        = path.Root("certificate").AtName("acme").AtName("eab_hmac_wo")
	pathEABHMACVersion = path.Root("certificate").AtName("acme").AtName("eab_hmac_wo_version")
	pathKeyPEM         = path.Root("certificate").AtName("static").AtName("key_pem_wo")
	pathKeyPEMVersion  = path.Root("certificate").AtName("static").AtName("key_pem_wo_version")
)

// tlsSettingsProblems maps the appliance's problem fields to attributes.
var tlsSettingsProblems = problemPaths{
	renames: map[string]string{
		"certificate.acme.eab_hmac":  "eab_hmac_wo",
		"certificate.static.key_pem": "key_pem_wo",
	},
}

// Metadata names the resource type.
func (r *tlsSettingsResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_tls_settings"
}

// Schema describes the resource.
func (r *tlsSettingsResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A TLS identity and trust policy: where a certificate comes from (`acme`, `static`, " +
			"`self_signed` or `none`), which CA verifies the peer, whether a peer certificate is required, and the " +
			"protocol floor. A gateway uses TLS settings for the side planners connect to (`tls_settings_id`); a " +
			"connection uses them for the side it opens to its executor (`upstream_tls_settings_id`), where a " +
			"certificate makes the connection mutual TLS.\n\n" +
			"Secrets (the static key, the ACME EAB HMAC) are write-only: they are sent to the appliance and never " +
			"stored in the Terraform state or plan. Bump the matching `*_wo_version` to send a new value. " +
			"Write-only attributes need Terraform 1.11 or later.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The appliance's id of the TLS settings (`tls_...`).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Unique name: 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit. " +
					"Can be changed in place.",
				Validators: []validator.String{nameRule()},
			},
			"min_version": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(model.TLS12),
				MarkdownDescription: "The lowest TLS version accepted: `1.2` (the default) or `1.3`.",
				Validators:          []validator.String{oneOfRule(model.TLS12, model.TLS13)},
			},
			"certificate": schema.SingleNestedAttribute{
				Required:            true,
				MarkdownDescription: "Where this side's own certificate comes from.",
				Attributes: map[string]schema.Attribute{
					"source": schema.StringAttribute{
						Required: true,
						MarkdownDescription: "`acme` (issued and renewed by an ACME CA; configure `acme`), `static` (an operator's " +
							"chain and key; configure `static`), `self_signed` (issued by the appliance's internal CA for the " +
							"gateway's hostnames, or as a client certificate for mTLS to executors) or `none` (no certificate: " +
							"for TLS settings that only verify an executor).",
						Validators: []validator.String{oneOfRule(model.SourceACME, model.SourceStatic, model.SourceSelfSigned, model.SourceNone)},
					},
					"acme": schema.SingleNestedAttribute{
						Optional:            true,
						MarkdownDescription: "The ACME CA to obtain certificates from; required when `source` is `acme`.",
						Attributes: map[string]schema.Attribute{
							"directory_url": schema.StringAttribute{
								Required:            true,
								MarkdownDescription: "The CA's ACME directory URL (`https`), e.g. `https://acme-v02.api.letsencrypt.org/directory`.",
							},
							"email": schema.StringAttribute{
								Optional:            true,
								MarkdownDescription: "Contact e-mail address of the ACME account.",
								Validators:          []validator.String{emailRule()},
							},
							"trusted_roots_pem": schema.StringAttribute{
								Optional:            true,
								MarkdownDescription: "PEM CA certificates that verify a private ACME CA's own TLS (step-ca, Pebble).",
								Validators:          []validator.String{pemCertificatesRule()},
							},
							"eab_key_id": schema.StringAttribute{
								Optional:            true,
								MarkdownDescription: "Key id of the CA's External Account Binding; requires `eab_hmac_wo`.",
								Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
							},
							"eab_hmac_wo": schema.StringAttribute{
								Optional:  true,
								WriteOnly: true,
								Sensitive: true,
								MarkdownDescription: "The External Account Binding HMAC key (base64url, as the CA issued it). " +
									"Write-only: never stored in state; sent on create and whenever `eab_hmac_wo_version` changes.",
								Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
							},
							"eab_hmac_wo_version": schema.Int64Attribute{
								Optional: true,
								MarkdownDescription: "Change this number to send a new `eab_hmac_wo`. While it stays the same the " +
									"appliance keeps the HMAC it has.",
							},
							"http_challenge_addr": schema.StringAttribute{
								Optional: true,
								MarkdownDescription: "Where the appliance answers HTTP-01 challenges, e.g. `:80` for a public CA. " +
									"TLS-ALPN-01 is always answered on the gateway's own listener.",
								Validators: []validator.String{listenAddrRule()},
							},
						},
					},
					"static": schema.SingleNestedAttribute{
						Optional:            true,
						MarkdownDescription: "An operator-provided certificate; required when `source` is `static`.",
						Attributes: map[string]schema.Attribute{
							"cert_pem": schema.StringAttribute{
								Required:            true,
								MarkdownDescription: "The certificate chain in PEM, leaf first.",
								Validators:          []validator.String{pemCertificatesRule()},
							},
							"key_pem_wo": schema.StringAttribute{
								Optional:  true,
								WriteOnly: true,
								Sensitive: true,
								MarkdownDescription: "The leaf certificate's private key in PEM (PKCS#8, EC or RSA of at least 2048 bits). " +
									"Write-only: never stored in state; sent on create and whenever `key_pem_wo_version` changes.",
								Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
							},
							"key_pem_wo_version": schema.Int64Attribute{
								Optional: true,
								MarkdownDescription: "Change this number to send a new `key_pem_wo` (for example together with a renewed " +
									"`cert_pem`). While it stays the same the appliance keeps the key it has.",
							},
						},
					},
				},
			},
			"peer_ca_pem": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "PEM CA certificates that verify the peer: planners' client certificates when a gateway " +
					"uses these settings, the executor's certificate when a connection does (the system roots when unset). " +
					"Required when `client_auth` is `optional` or `require`.",
				Validators: []validator.String{pemCertificatesRule()},
			},
			"client_auth": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(model.ClientAuthNone),
				MarkdownDescription: "A gateway's client-certificate policy: `none` (the default), `optional` or `require`.",
				Validators:          []validator.String{oneOfRule(model.ClientAuthNone, model.ClientAuthOptional, model.ClientAuthRequire)},
			},
			"server_name": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "When a connection uses these settings: the name sent as SNI and verified in the executor's " +
					"certificate instead of the upstream URL's host.",
				Validators: []validator.String{hostnameRule()},
			},
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance created the TLS settings (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"timeouts": operationTimeouts(ctx, "new TLS settings"),
		},
	}
}

// Configure receives the provider's client.
func (r *tlsSettingsResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, diags := clientFromProviderData(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.client = c
}

// spec builds the TLS settings spec from a model without secrets; ok is
// false when a value it needs is unknown.
func (m *tlsSettingsModel) spec() (model.TLSSettingsSpec, bool) {
	s := model.TLSSettingsSpec{
		MinVersion: m.MinVersion.ValueString(),
		PeerCAPEM:  m.PeerCAPEM.ValueString(),
		ClientAuth: m.ClientAuth.ValueString(),
		ServerName: m.ServerName.ValueString(),
	}
	ok := known(m.MinVersion, m.PeerCAPEM, m.ClientAuth, m.ServerName)
	if c := m.Certificate; c != nil {
		s.Certificate.Source = c.Source.ValueString()
		ok = ok && known(c.Source)
		if a := c.ACME; a != nil {
			s.Certificate.ACME = &model.ACMESpec{
				DirectoryURL:      a.DirectoryURL.ValueString(),
				Email:             a.Email.ValueString(),
				TrustedRootsPEM:   a.TrustedRootsPEM.ValueString(),
				EABKeyID:          a.EABKeyID.ValueString(),
				HTTPChallengeAddr: a.HTTPChallengeAddr.ValueString(),
			}
			ok = ok && known(a.DirectoryURL, a.Email, a.TrustedRootsPEM, a.EABKeyID, a.HTTPChallengeAddr)
		}
		if st := c.Static; st != nil {
			s.Certificate.Static = &model.StaticCertificateSpec{CertPEM: st.CertPEM.ValueString()}
			ok = ok && known(st.CertPEM)
		}
	}
	return s, ok
}

// ValidateConfig checks the configuration with the appliance's own rules
// (model.TLSSettingsSpec.Validate), reporting each problem on its attribute.
// Values unknown until apply are checked by the appliance then.
func (r *tlsSettingsResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m tlsSettingsModel
	if req.Config.Get(ctx, &m).HasError() {
		return // an unknown nested object: checked once known
	}
	spec, ok := m.spec()
	if !ok || m.Certificate == nil {
		return
	}
	if spec.MinVersion == "" {
		spec.MinVersion = model.TLS12
	}
	if spec.ClientAuth == "" {
		spec.ClientAuth = model.ClientAuthNone
	}
	// Secrets: a configured value is checked; one left out of the
	// configuration while its version is set is kept by the appliance,
	// which checks it.
	var values = map[string]string{}
	kept := map[string]bool{}
	if a := m.Certificate.ACME; a != nil {
		switch {
		case a.EABHMACWO.IsUnknown():
			kept[model.PathEABHMAC] = true
			spec.Certificate.ACME.EABHMAC = &model.Secret{}
		case !a.EABHMACWO.IsNull():
			values[model.PathEABHMAC] = a.EABHMACWO.ValueString()
			spec.Certificate.ACME.EABHMAC = model.NewSecret(a.EABHMACWO.ValueString())
		case !a.EABHMACWOVersion.IsNull():
			kept[model.PathEABHMAC] = true
			spec.Certificate.ACME.EABHMAC = &model.Secret{}
		}
	}
	if st := m.Certificate.Static; st != nil {
		switch {
		case st.KeyPEMWO.IsUnknown():
			kept[model.PathKeyPEM] = true
			spec.Certificate.Static.KeyPEM = &model.Secret{}
		case !st.KeyPEMWO.IsNull():
			values[model.PathKeyPEM] = st.KeyPEMWO.ValueString()
			spec.Certificate.Static.KeyPEM = model.NewSecret(st.KeyPEMWO.ValueString())
		case !st.KeyPEMWOVersion.IsNull():
			kept[model.PathKeyPEM] = true
			spec.Certificate.Static.KeyPEM = &model.Secret{}
		}
	}
	problems := spec.Validate(func(p string) (string, bool) {
		v, ok := values[p]
		return v, ok
	})
	var shown model.Problems
	for _, p := range problems {
		if !kept[p.Field] {
			shown = append(shown, p)
		}
	}
	addProblems(&resp.Diagnostics, tlsSettingsProblems, shown)
}

// ModifyPlan refuses, at plan time, a *_wo_version change without a value
// to send.
func (r *tlsSettingsResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	checkVersionChange(ctx, req, resp, pathEABHMAC, pathEABHMACVersion)
	checkVersionChange(ctx, req, resp, pathKeyPEM, pathKeyPEMVersion)
}

// Create creates the TLS settings and waits until the appliance has them
// live.
func (r *tlsSettingsResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan, config tlsSettingsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	spec, _ := plan.spec()
	r.setSecrets(&spec, &config, nil, nil, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	col := r.client.TLSSettings()
	o, err := col.Create(ctx, plan.Name.ValueString(), spec)
	ready := awaitLive(ctx, col, o, err, timeout, "create TLS settings", tlsSettingsProblems, "timeouts.create", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, tlsSettingsFromAPI(ready, &plan))...)
}

// Read refreshes the state from the appliance; a deleted object is removed
// from state so that the next plan creates it again.
func (r *tlsSettingsResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state tlsSettingsModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	o := readObject(ctx, r.client.TLSSettings(), state.ID.ValueString(), resp)
	if o == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, tlsSettingsFromAPI(o, &state))...)
}

// Update replaces the TLS settings in place and waits until the change is
// live.
func (r *tlsSettingsResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan, config, state tlsSettingsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	col := r.client.TLSSettings()
	current, err := col.Get(ctx, state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Failed to read TLS settings", err.Error())
		return
	}
	spec, _ := plan.spec()
	r.setSecrets(&spec, &config, &state, current, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	o, err := col.Replace(ctx, current.ID, plan.Name.ValueString(), spec, client.WriteOptions{IfMatch: current.Generation})
	ready := awaitLive(ctx, col, o, err, timeout, "update TLS settings", tlsSettingsProblems, "timeouts.update", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, tlsSettingsFromAPI(ready, &plan))...)
}

// Delete deletes the TLS settings; already gone is fine.
func (r *tlsSettingsResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state tlsSettingsModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	deleteObject(ctx, r.client.TLSSettings(), state.ID.ValueString(), state.Timeouts, &resp.Diagnostics)
}

// ImportState imports TLS settings by id or by name.
func (r *tlsSettingsResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	o, err := lookup(ctx, r.client.TLSSettings(), "", req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import TLS settings",
			fmt.Sprintf("No TLS settings with id or name %q: %s. Import by id (tls_...) or by name.", req.ID, err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), o.ID)...)
}

// setSecrets puts the write-only secrets into spec: new values from config,
// keep markers, or nothing, as secretWrite decides. state and current are
// nil on create.
func (r *tlsSettingsResource) setSecrets(spec *model.TLSSettingsSpec, config, state *tlsSettingsModel, current *model.TLSSettings, diags *diag.Diagnostics) {
	create := state == nil
	if a := spec.Certificate.ACME; a != nil {
		w := secretWrite{Create: create, ValuePath: pathEABHMAC, VersionPath: pathEABHMACVersion,
			Value: types.StringNull(), Version: types.Int64Null(), PriorVersion: types.Int64Null()}
		if ca := config.Certificate.ACME; ca != nil {
			w.Value, w.Version = ca.EABHMACWO, ca.EABHMACWOVersion
		}
		if state != nil && state.Certificate != nil && state.Certificate.ACME != nil {
			w.PriorVersion = state.Certificate.ACME.EABHMACWOVersion
		}
		if current != nil && current.Spec.Certificate.ACME != nil {
			w.Stored = stored(current.Spec.Certificate.ACME.EABHMAC)
		}
		a.EABHMAC = w.secret(diags)
	}
	if st := spec.Certificate.Static; st != nil {
		w := secretWrite{Create: create, ValuePath: pathKeyPEM, VersionPath: pathKeyPEMVersion,
			Value: types.StringNull(), Version: types.Int64Null(), PriorVersion: types.Int64Null()}
		if cs := config.Certificate.Static; cs != nil {
			w.Value, w.Version = cs.KeyPEMWO, cs.KeyPEMWOVersion
		}
		if state != nil && state.Certificate != nil && state.Certificate.Static != nil {
			w.PriorVersion = state.Certificate.Static.KeyPEMWOVersion
		}
		if current != nil && current.Spec.Certificate.Static != nil {
			w.Stored = stored(current.Spec.Certificate.Static.KeyPEM)
		}
		st.KeyPEM = w.secret(diags)
	}
}

// tlsSettingsFromAPI builds the state from an object read from the
// appliance. prior supplies what the appliance does not return: the
// *_wo_version attributes and the timeouts.
func tlsSettingsFromAPI(o *model.TLSSettings, prior *tlsSettingsModel) *tlsSettingsModel {
	s := o.Spec
	m := &tlsSettingsModel{
		ID:         types.StringValue(o.ID),
		Name:       types.StringValue(o.Name),
		MinVersion: types.StringValue(s.MinVersion),
		PeerCAPEM:  optString(s.PeerCAPEM),
		ClientAuth: types.StringValue(s.ClientAuth),
		ServerName: optString(s.ServerName),
		CreatedAt:  rfc3339(o.CreatedAt),
		Timeouts:   prior.Timeouts,
		Certificate: &certificateModel{
			Source: types.StringValue(s.Certificate.Source),
		},
	}
	if m.MinVersion.ValueString() == "" {
		m.MinVersion = types.StringValue(model.TLS12)
	}
	if m.ClientAuth.ValueString() == "" {
		m.ClientAuth = types.StringValue(model.ClientAuthNone)
	}
	var priorACME *acmeModel
	var priorStatic *staticCertModel
	if prior.Certificate != nil {
		priorACME, priorStatic = prior.Certificate.ACME, prior.Certificate.Static
	}
	if a := s.Certificate.ACME; a != nil {
		am := &acmeModel{
			DirectoryURL:      types.StringValue(a.DirectoryURL),
			Email:             optString(a.Email),
			TrustedRootsPEM:   optString(a.TrustedRootsPEM),
			EABKeyID:          optString(a.EABKeyID),
			EABHMACWO:         types.StringNull(),
			EABHMACWOVersion:  types.Int64Null(),
			HTTPChallengeAddr: optString(a.HTTPChallengeAddr),
		}
		if priorACME != nil {
			am.EABHMACWOVersion = priorACME.EABHMACWOVersion
		}
		m.Certificate.ACME = am
	}
	if st := s.Certificate.Static; st != nil {
		sm := &staticCertModel{
			CertPEM:         types.StringValue(st.CertPEM),
			KeyPEMWO:        types.StringNull(),
			KeyPEMWOVersion: types.Int64Null(),
		}
		if priorStatic != nil {
			sm.KeyPEMWOVersion = priorStatic.KeyPEMWOVersion
		}
		m.Certificate.Static = sm
	}
	return m
}
