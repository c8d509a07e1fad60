package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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
	_ resource.ResourceWithConfigure      = (*identityBindingResource)(nil)
	_ resource.ResourceWithImportState    = (*identityBindingResource)(nil)
	_ resource.ResourceWithValidateConfig = (*identityBindingResource)(nil)
)

// NewIdentityBindingResource returns the sallyport_identity_binding
// resource.
func NewIdentityBindingResource() resource.Resource { return &identityBindingResource{} }

// identityBindingResource manages an identity binding: who may use a
// connection, and for what.
type identityBindingResource struct {
	client *client.Client
}

// identityBindingModel maps the resource's schema.
type identityBindingModel struct {
	ID                 types.String      `tfsdk:"id"`
	Name               types.String      `tfsdk:"name"`
	ConnectionID       types.String      `tfsdk:"connection_id"`
	Issuer             types.String      `tfsdk:"issuer"`
	Subject            types.String      `tfsdk:"subject"`
	Claims             types.Map         `tfsdk:"claims"`
	ClientCertURISAN   types.String      `tfsdk:"client_cert_uri_san"`
	AllowedMethods     types.Set         `tfsdk:"allowed_methods"`
	AllowedPaths       types.Set         `tfsdk:"allowed_paths"`
	AllowedGRPCMethods types.Set         `tfsdk:"allowed_grpc_methods"`
	Guardrails         *guardrailsModel  `tfsdk:"guardrails"`
	ExpiresAt          instantValue      `tfsdk:"expires_at"`
	CreatedAt          timetypes.RFC3339 `tfsdk:"created_at"`
	Timeouts           timeouts.Value    `tfsdk:"timeouts"`
}

// identityBindingProblemPaths maps the appliance's problem fields to
// attributes.
func identityBindingProblemPaths(s *model.IdentityBindingSpec) problemPaths {
	return problemPaths{
		sets: map[string]bool{"allowed_methods": true, "allowed_paths": true, "allowed_grpc_methods": true},
		maps: map[string]bool{"claims": true},
		setValues: map[string][]string{
			"spec.allowed_methods":      s.AllowedMethods,
			"spec.allowed_paths":        s.AllowedPaths,
			"spec.allowed_grpc_methods": s.AllowedGRPCMethods,
		},
	}
}

// Metadata names the resource type.
func (r *identityBindingResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity_binding"
}

// Schema describes the resource.
func (r *identityBindingResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	setOf := func(desc string, elem ...validator.String) schema.SetAttribute {
		v := []validator.Set{setvalidator.SizeAtLeast(1)}
		if len(elem) > 0 {
			v = append(v, setvalidator.ValueStringsAre(elem...))
		}
		return schema.SetAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: desc, Validators: v}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An identity binding: who may use a connection, and for what. Access through a " +
			"connection is denied unless one of its bindings allows it. A binding admits either callers with a " +
			"token from `issuer` whose `subject` and/or `claims` match, or callers whose client certificate has a " +
			"matching URI SAN (`client_cert_uri_san`, e.g. a SPIFFE ID); it can limit them to some HTTP methods, " +
			"paths and gRPC methods, and end by itself at `expires_at` for just-in-time access.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The appliance's id of the binding (`bind_...`).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Name, unique within the connection: 1 to 63 letters, digits, `.`, `_` or `-`, starting " +
					"with a letter or digit. Can be changed in place.",
				Validators: []validator.String{nameRule()},
			},
			"connection_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The id of the `sallyport_connection` this binding opens. Can be changed in place.",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"issuer": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The OIDC issuer URL tokens must come from; the connection's gateway must trust it " +
					"(`oidc_providers`). Required with `subject` or `claims`.",
			},
			"subject": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Matches the token's `sub`: exact, or a glob such as `repo:acme/deploy:*`.",
				Validators:          []validator.String{globRule()},
			},
			"claims": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: "Further token claims to match, claim name to glob; for an array claim such as " +
					"`groups` one element must match.",
				Validators: []validator.Map{
					mapvalidator.SizeAtLeast(1),
					mapvalidator.ValueStringsAre(globRule()),
				},
			},
			"client_cert_uri_san": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Matches a URI SAN of the caller's client certificate (exact or glob, e.g. " +
					"`spiffe://example.org/planner/*`) instead of a token. Conflicts with `issuer`, `subject` and `claims`.",
				Validators: []validator.String{globRule()},
			},
			"allowed_methods": setOf("The HTTP methods allowed (all when unset), e.g. `[\"GET\", \"POST\"]`.",
				oneOfRule(model.HTTPMethods...)),
			"allowed_paths": setOf("Globs over the normalized request path that are allowed (all when unset), " +
				"e.g. `[\"/jobs/*\"]`; each starts with `/`."),
			"allowed_grpc_methods": setOf("The gRPC full method names allowed (all when unset), e.g. "+
				"`[\"/jobs.v1.Jobs/*\"]`.", grpcMethodRule()),
			"guardrails": guardrailsAttribute("Guardrails for the callers this binding admits: their requests that " +
				"match one of these rules are denied before they reach the executor (HTTP 403 naming the rule, e.g. " +
				"`binding.guardrails.allowed_mcp_tools`). They apply on top of the connection's own `guardrails`. Not for " +
				"bindings of `tcp` connections; for `grpc` connections only `deny_path_patterns`, `deny_query_patterns` " +
				"and `allowed_content_types` apply (otherwise the binding admits nobody until fixed)."),
			"expires_at": schema.StringAttribute{
				CustomType: instantType{},
				Optional:   true,
				MarkdownDescription: "When the binding stops admitting anyone (for just-in-time access), an RFC 3339 time " +
					"such as `2026-12-31T23:59:59Z`. The appliance keeps it in UTC to the second; any spelling of the same " +
					"instant matches it.",
				Validators: []validator.String{expiresAtRule()},
			},
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance created the binding (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"timeouts": operationTimeouts(ctx, "a new binding"),
		},
	}
}

// expiresAtRule checks expires_at with the appliance's own rule for it.
func expiresAtRule() validator.String {
	return checkRule("an RFC 3339 time", func(s string) error {
		for _, p := range (&model.IdentityBindingSpec{ExpiresAt: s}).Validate(nil) {
			if p.Field == "spec.expires_at" {
				return errors.New(p.Message)
			}
		}
		return nil
	})
}

// Configure receives the provider's client.
func (r *identityBindingResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, diags := clientFromProviderData(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.client = c
}

// spec builds the binding spec from a model; ok is false when a value it
// needs is unknown. An unknown connection_id is replaced by a placeholder.
func (m *identityBindingModel) spec(ctx context.Context) (model.IdentityBindingSpec, bool) {
	s := model.IdentityBindingSpec{
		ConnectionID:     refID(m.ConnectionID),
		Issuer:           m.Issuer.ValueString(),
		Subject:          m.Subject.ValueString(),
		ClientCertURISAN: m.ClientCertURISAN.ValueString(),
		ExpiresAt:        m.ExpiresAt.ValueString(),
	}
	ok := known(m.Issuer, m.Subject, m.ClientCertURISAN, m.ExpiresAt)
	var ok1, ok2, ok3, ok4 bool
	s.Claims, ok1 = mapStrings(ctx, m.Claims)
	s.AllowedMethods, ok2 = setStrings(ctx, m.AllowedMethods)
	s.AllowedPaths, ok3 = setStrings(ctx, m.AllowedPaths)
	s.AllowedGRPCMethods, ok4 = setStrings(ctx, m.AllowedGRPCMethods)
	var ok5 bool
	s.Guardrails, ok5 = m.Guardrails.spec(ctx)
	return s, ok && ok1 && ok2 && ok3 && ok4 && ok5
}

// ValidateConfig checks the configuration with the appliance's own rules
// (model.IdentityBindingSpec.Validate), reporting each problem on its
// attribute.
func (r *identityBindingResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m identityBindingModel
	if req.Config.Get(ctx, &m).HasError() {
		return
	}
	checkEmptyGuardrails(m.Guardrails, &resp.Diagnostics)
	spec, ok := m.spec(ctx)
	if !ok {
		return
	}
	addProblems(&resp.Diagnostics, identityBindingProblemPaths(&spec), spec.Validate(nil))
}

// Create creates the binding and waits until the appliance enforces it.
func (r *identityBindingResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan identityBindingModel
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
	col := r.client.IdentityBindings()
	o, err := col.Create(ctx, plan.Name.ValueString(), spec)
	ready := awaitLive(ctx, col, o, err, timeout, "create identity binding", identityBindingProblemPaths(&spec), "timeouts.create", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, identityBindingFromAPI(ready, plan.Timeouts))...)
}

// Read refreshes the state from the appliance; a deleted binding is removed
// from state so that the next plan creates it again.
func (r *identityBindingResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state identityBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	o := readObject(ctx, r.client.IdentityBindings(), state.ID.ValueString(), resp)
	if o == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, identityBindingFromAPI(o, state.Timeouts))...)
}

// Update replaces the binding in place and waits until the appliance
// enforces the change.
func (r *identityBindingResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan, state identityBindingModel
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
	col := r.client.IdentityBindings()
	o, err := col.Replace(ctx, state.ID.ValueString(), plan.Name.ValueString(), spec, client.WriteOptions{})
	ready := awaitLive(ctx, col, o, err, timeout, "update identity binding", identityBindingProblemPaths(&spec), "timeouts.update", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, identityBindingFromAPI(ready, plan.Timeouts))...)
}

// Delete deletes the binding; already gone is fine.
func (r *identityBindingResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state identityBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	deleteObject(ctx, r.client.IdentityBindings(), state.ID.ValueString(), state.Timeouts, &resp.Diagnostics)
}

// ImportState imports a binding by id, or by name as
// "gateway_name/connection_name/binding_name".
func (r *identityBindingResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	id, err := r.importID(ctx, req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import identity binding", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
}

func (r *identityBindingResource) importID(ctx context.Context, s string) (string, error) {
	if parts, ok := importParts(s, 3); ok {
		gw, err := r.client.Gateways().GetByName(ctx, "", parts[0])
		if err != nil {
			return "", fmt.Errorf("gateway %q: %w", parts[0], err)
		}
		c, err := r.client.Connections().GetByName(ctx, gw.ID, parts[1])
		if err != nil {
			return "", fmt.Errorf("connection %q of gateway %q: %w", parts[1], parts[0], err)
		}
		b, err := r.client.IdentityBindings().GetByName(ctx, c.ID, parts[2])
		if err != nil {
			return "", fmt.Errorf("identity binding %q of connection %q: %w", parts[2], parts[1], err)
		}
		return b.ID, nil
	}
	if !looksLikeID(model.KindIdentityBinding, s) {
		return "", fmt.Errorf("%q is neither an identity binding id (bind_...) nor GATEWAY_NAME/CONNECTION_NAME/BINDING_NAME", s)
	}
	b, err := r.client.IdentityBindings().Get(ctx, s)
	if err != nil {
		return "", fmt.Errorf("identity binding %q: %w", s, err)
	}
	return b.ID, nil
}

// identityBindingFromAPI builds the state from a binding read from the
// appliance.
func identityBindingFromAPI(o *model.IdentityBinding, to timeouts.Value) *identityBindingModel {
	s := o.Spec
	m := &identityBindingModel{
		ID:                 types.StringValue(o.ID),
		Name:               types.StringValue(o.Name),
		ConnectionID:       types.StringValue(s.ConnectionID),
		Issuer:             optString(s.Issuer),
		Subject:            optString(s.Subject),
		Claims:             stringMap(s.Claims),
		ClientCertURISAN:   optString(s.ClientCertURISAN),
		AllowedMethods:     stringSet(s.AllowedMethods),
		AllowedPaths:       stringSet(s.AllowedPaths),
		AllowedGRPCMethods: stringSet(s.AllowedGRPCMethods),
		Guardrails:         guardrailsFromAPI(s.Guardrails),
		ExpiresAt:          instantNull(),
		CreatedAt:          rfc3339(o.CreatedAt),
		Timeouts:           to,
	}
	if s.ExpiresAt != "" {
		// The appliance stores it in UTC; semantic equality keeps the
		// configured spelling of the same instant.
		m.ExpiresAt = instantOf(s.ExpiresAt)
	}
	return m
}
