package provider

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
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
	_ resource.ResourceWithConfigure      = (*connectionResource)(nil)
	_ resource.ResourceWithImportState    = (*connectionResource)(nil)
	_ resource.ResourceWithValidateConfig = (*connectionResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*connectionResource)(nil)
)

// NewConnectionResource returns the sallyport_connection resource.
func NewConnectionResource() resource.Resource { return &connectionResource{} }

// connectionResource manages a connection: one executor behind one gateway.
type connectionResource struct {
	client *client.Client
}

// connectionModel maps the resource's schema.
type connectionModel struct {
	ID                     types.String           `tfsdk:"id"`
	Name                   types.String           `tfsdk:"name"`
	GatewayID              types.String           `tfsdk:"gateway_id"`
	Protocol               types.String           `tfsdk:"protocol"`
	Hostname               types.String           `tfsdk:"hostname"`
	PathPrefix             types.String           `tfsdk:"path_prefix"`
	UpstreamURL            types.String           `tfsdk:"upstream_url"`
	UpstreamTLSSettingsID  types.String           `tfsdk:"upstream_tls_settings_id"`
	InjectHeadersWO        types.Map              `tfsdk:"inject_headers_wo"`
	InjectHeadersWOVersion types.Int64            `tfsdk:"inject_headers_wo_version"`
	InjectHeaderNames      types.Set              `tfsdk:"inject_header_names"`
	Timeouts               *upstreamTimeoutsModel `tfsdk:"timeouts"`
	Recording              *recordingModel        `tfsdk:"recording"`
	Masking                []maskingRuleModel     `tfsdk:"masking"`
	Guardrails             *guardrailsModel       `tfsdk:"guardrails"`
	Ready                  types.Bool             `tfsdk:"ready"`
	CreatedAt              timetypes.RFC3339      `tfsdk:"created_at"`
	OperationTimeouts      timeouts.Value         `tfsdk:"operation_timeouts"`
}

// upstreamTimeoutsModel maps a connection's timeouts (the upstream's).
type upstreamTimeoutsModel struct {
	Connect        types.String `tfsdk:"connect"`
	ResponseHeader types.String `tfsdk:"response_header"`
	Idle           types.String `tfsdk:"idle"`
}

// recordingModel maps a connection's recording (model.RecordingSpec).
type recordingModel struct {
	Enabled      types.Bool   `tfsdk:"enabled"`
	MaxBodyBytes types.Int64  `tfsdk:"max_body_bytes"`
	OnDiskFull   types.String `tfsdk:"on_disk_full"`
}

// maskingRuleModel maps one of a connection's masking rules
// (model.MaskingRule).
type maskingRuleModel struct {
	JSONPath    types.String `tfsdk:"json_path"`
	Regex       types.String `tfsdk:"regex"`
	Detector    types.String `tfsdk:"detector"`
	Replacement types.String `tfsdk:"replacement"`
}

// Attribute paths of the connection's write-only headers.
var (
	pathInjectHeaders        = path.Root("inject_headers_wo")
	pathInjectHeadersVersion = path.Root("inject_headers_wo_version")
	pathInjectHeaderNames    = path.Root("inject_header_names")
)

// connectionProblems maps the appliance's problem fields to attributes.
var connectionProblems = problemPaths{
	renames: map[string]string{"inject_headers": "inject_headers_wo"},
	maps:    map[string]bool{"inject_headers": true},
}

// Metadata names the resource type.
func (r *connectionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_connection"
}

// Schema describes the resource.
func (r *connectionResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A connection: one executor behind one gateway. Requests to the gateway that match its " +
			"route (`hostname` and/or `path_prefix`) and that an identity binding allows are forwarded over a " +
			"separate, verified TLS (or mutual TLS) session to `upstream_url`, with the credentials of " +
			"`inject_headers_wo` added on the way. The planner never sees those credentials, and neither does the " +
			"Terraform state: `inject_headers_wo` is write-only (Terraform 1.11 or later).\n\n" +
			"Create and update return once the appliance routes the change.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The appliance's id of the connection (`conn_...`).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Name, unique within the gateway: 1 to 63 letters, digits, `.`, `_` or `-`, starting " +
					"with a letter or digit. Can be changed in place.",
				Validators: []validator.String{nameRule()},
			},
			"gateway_id": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The id of the `sallyport_gateway` planners reach the executor through. Can be changed " +
					"in place: the connection moves to the other gateway.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"protocol": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "`http` (HTTP/1.1 and HTTP/2, WebSocket upgrades), `grpc` (HTTP/2 end to end, " +
					"streaming and trailers) or `tcp` (a TLS-terminated byte stream, routed by SNI).",
				Validators: []validator.String{oneOfRule(model.ProtocolHTTP, model.ProtocolGRPC, model.ProtocolTCP)},
			},
			"hostname": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Route requests for this name: one of the gateway's hostnames or a name under one of " +
					"its wildcards. Required for `tcp`; for `http` and `grpc`, set `hostname`, `path_prefix` or both.",
				Validators: []validator.String{hostnameRule()},
			},
			"path_prefix": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Route requests whose normalized path starts with this prefix, e.g. `/jobs/` " +
					"(`http` and `grpc` only).",
				Validators: []validator.String{pathPrefixRule()},
			},
			"upstream_url": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The executor: `https://host[:port][/base]` for `http` and `grpc`, `tls://host:port` " +
					"for `tcp`. Its certificate is always verified.",
			},
			"upstream_tls_settings_id": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The id of the `sallyport_tls_settings` that verify the executor (`peer_ca_pem`, " +
					"`server_name`) and, with a certificate, authenticate the gateway to it (mutual TLS). The system " +
					"roots verify the executor when unset.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"inject_headers_wo": schema.MapAttribute{
				Optional:    true,
				WriteOnly:   true,
				Sensitive:   true,
				ElementType: types.StringType,
				MarkdownDescription: "Headers added to every request to the executor, header name to secret value, e.g. " +
					"`{ Authorization = \"Bearer ...\" }`. Write-only: never stored in state; sent on create and whenever " +
					"`inject_headers_wo_version` changes. Not for `tcp`.",
				Validators: []validator.Map{
					mapvalidator.SizeAtLeast(1),
					mapvalidator.KeysAre(headerNameRule()),
					mapvalidator.ValueStringsAre(headerValueRule()),
				},
			},
			"inject_headers_wo_version": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Change this number to send new `inject_headers_wo` (for example after rotating a " +
					"credential). While it stays the same the appliance keeps the headers it has.",
			},
			"inject_header_names": schema.SetAttribute{
				Computed:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "The names of the headers the appliance injects (their values are never returned).",
			},
			"timeouts": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Timeouts of the upstream side, as Go durations from `1ms` to `1h`.",
				Attributes: map[string]schema.Attribute{
					"connect": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Bounds dialing the executor and the TLS handshake (default `10s`).",
						Validators:          []validator.String{upstreamTimeoutRule()},
					},
					"response_header": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Bounds the wait for the executor's response headers (default `60s`).",
						Validators:          []validator.String{upstreamTimeoutRule()},
					},
					"idle": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Closes pooled upstream connections idle this long (default `90s`).",
						Validators:          []validator.String{upstreamTimeoutRule()},
					},
				},
			},
			"recording": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Session recording: every request and response of the connection, after " +
					"`masking`, is written to the appliance's tamper-evident recording log, to be listed, exported and " +
					"verified later. Leave it out (or set `enabled = false`) to record nothing.",
				Attributes: map[string]schema.Attribute{
					"enabled": schema.BoolAttribute{
						Required:            true,
						MarkdownDescription: "Whether the connection's sessions are recorded.",
					},
					"max_body_bytes": schema.Int64Attribute{
						Optional: true,
						MarkdownDescription: "How much of each request and response body is recorded, in bytes (the rest " +
							"is cut and marked as such); `-1` records no bodies, only metadata and headers. Leave it out " +
							"for the default of 64 KiB.",
						Validators: []validator.Int64{notZeroRule("the default of 64 KiB")},
					},
					"on_disk_full": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "What happens while the recording disk is full: `refuse` (the default when " +
							"unset) refuses new sessions, so nothing goes unrecorded; `continue` lets sessions go on " +
							"unrecorded, with an alert and a metric.",
						Validators: []validator.String{oneOfRule(model.OnDiskFullRefuse, model.OnDiskFullContinue)},
					},
				},
			},
			"masking": schema.ListNestedAttribute{
				Optional: true,
				MarkdownDescription: "Masking rules, applied in order to every response body before it reaches the " +
					"planner and before it is recorded. Each rule sets exactly one of `json_path`, `regex` and " +
					"`detector`. `http` connections only.",
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"json_path": schema.StringAttribute{
							Optional: true,
							MarkdownDescription: "Masks the JSON values this path selects: `$` followed by `.name`, " +
								"`..name` (any depth), `.*`, `[*]`, `[N]` or `['name']` steps, e.g. `$.data[*].password` " +
								"or `$..token`.",
							Validators: []validator.String{checkRule("a JSONPath such as $.data[*].password", model.CheckJSONPath)},
						},
						"regex": schema.StringAttribute{
							Optional:            true,
							MarkdownDescription: "Masks every match of this RE2 regular expression anywhere in the body, e.g. `sk_live_[0-9a-zA-Z]{24}`.",
							Validators:          []validator.String{regexRule()},
						},
						"detector": schema.StringAttribute{
							Optional: true,
							MarkdownDescription: "Masks what a built-in detector finds: " + codeList(model.MaskingDetectors) +
								" (payment cards are checked with Luhn, IBANs with their checksum).",
							Validators: []validator.String{oneOfRule(model.MaskingDetectors...)},
						},
						"replacement": schema.StringAttribute{
							Optional: true,
							MarkdownDescription: "What replaces a masked value: `redact` (`***`, the default when unset), " +
								"`partial` (keeps the last 4 characters) or `hash` (a keyed hash, the same for the same " +
								"value, so values can still be correlated).",
							Validators: []validator.String{oneOfRule(model.ReplaceRedact, model.ReplacePartial, model.ReplaceHash)},
						},
					},
				},
			},
			"guardrails": guardrailsAttribute("Guardrails: requests that match one of these rules are denied before " +
				"they reach the executor (HTTP 403 naming the rule, e.g. `connection.guardrails.deny_path_patterns[0]`), " +
				"whoever the caller. Identity bindings can add guardrails of their own; both apply. Not for `tcp` " +
				"connections; on `grpc` connections only `deny_path_patterns`, `deny_query_patterns` and " +
				"`allowed_content_types` apply."),
			"ready": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the appliance routes the connection's current configuration.",
			},
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance created the connection (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			// `timeouts` is the upstream's (the resource contract), so the
			// operation timeouts have their own name.
			"operation_timeouts": operationTimeouts(ctx, "a new connection"),
		},
	}
}

// Configure receives the provider's client.
func (r *connectionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, diags := clientFromProviderData(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.client = c
}

// spec builds the connection spec from a model without secrets; ok is false
// when a value it needs is unknown. Unknown references are replaced by a
// placeholder.
func (m *connectionModel) spec(ctx context.Context) (model.ConnectionSpec, bool) {
	s := model.ConnectionSpec{
		GatewayID:   refID(m.GatewayID),
		Protocol:    m.Protocol.ValueString(),
		Hostname:    m.Hostname.ValueString(),
		PathPrefix:  m.PathPrefix.ValueString(),
		UpstreamURL: m.UpstreamURL.ValueString(),
	}
	if !m.UpstreamTLSSettingsID.IsNull() {
		s.UpstreamTLSSettingsID = refID(m.UpstreamTLSSettingsID)
	}
	ok := known(m.Protocol, m.Hostname, m.PathPrefix, m.UpstreamURL)
	if t := m.Timeouts; t != nil {
		s.Timeouts = &model.ConnectionTimeouts{
			Connect:        t.Connect.ValueString(),
			ResponseHeader: t.ResponseHeader.ValueString(),
			Idle:           t.Idle.ValueString(),
		}
		ok = ok && known(t.Connect, t.ResponseHeader, t.Idle)
	}
	if r := m.Recording; r != nil {
		s.Recording = &model.RecordingSpec{
			Enabled:      r.Enabled.ValueBool(),
			MaxBodyBytes: r.MaxBodyBytes.ValueInt64(),
			OnDiskFull:   r.OnDiskFull.ValueString(),
		}
		ok = ok && known(r.Enabled, r.MaxBodyBytes, r.OnDiskFull)
	}
	for _, r := range m.Masking {
		s.Masking = append(s.Masking, model.MaskingRule{
			JSONPath:    r.JSONPath.ValueString(),
			Regex:       r.Regex.ValueString(),
			Detector:    r.Detector.ValueString(),
			Replacement: r.Replacement.ValueString(),
		})
		ok = ok && known(r.JSONPath, r.Regex, r.Detector, r.Replacement)
	}
	g, gok := m.Guardrails.spec(ctx)
	s.Guardrails = g
	return s, ok && gok
}

// codeList renders values as a Markdown list of code spans.
func codeList(vals []string) string {
	out := ""
	for i, v := range vals {
		switch {
		case i == 0:
		case i == len(vals)-1:
			out += " or "
		default:
			out += ", "
		}
		out += "`" + v + "`"
	}
	return out
}

// checkProtocol reports, at plan time, the enforcement settings the
// appliance refuses for the connection's protocol (it would store them,
// then fail to make the connection live).
func (m *connectionModel) checkProtocol(diags *diag.Diagnostics) {
	if m.Protocol.IsNull() || m.Protocol.IsUnknown() {
		return
	}
	protocol := m.Protocol.ValueString()
	if len(m.Masking) > 0 && protocol != model.ProtocolHTTP {
		diags.AddAttributeError(path.Root("masking"), summaryInvalid, fmt.Sprintf(
			"masking applies to http connections only (gRPC messages are protobuf, tcp is a byte stream): remove it from this %s connection", protocol))
	}
	g := m.Guardrails
	switch {
	case g == nil:
	case protocol == model.ProtocolTCP:
		diags.AddAttributeError(path.Root("guardrails"), summaryInvalid,
			"guardrails do not apply to a tcp connection (a byte stream has no requests): remove them")
	case protocol == model.ProtocolGRPC:
		for name, v := range map[string]attr.Value{
			"deny_body_patterns": g.DenyBodyPatterns, "max_request_body_bytes": g.MaxRequestBodyBytes,
			"allowed_jsonrpc_methods": g.AllowedJSONRPCMethods, "allowed_mcp_tools": g.AllowedMCPTools,
		} {
			if !v.IsNull() {
				diags.AddAttributeError(path.Root("guardrails").AtName(name), summaryInvalid,
					"a grpc connection streams request bodies: only deny_path_patterns, deny_query_patterns and allowed_content_types apply")
			}
		}
	}
}

// ValidateConfig checks the configuration with the appliance's own rules
// (model.ConnectionSpec.Validate), reporting each problem on its attribute.
func (r *connectionResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m connectionModel
	if req.Config.Get(ctx, &m).HasError() {
		return // an unknown nested object: checked once known
	}
	if t := m.Timeouts; t != nil && t.Connect.IsNull() && t.ResponseHeader.IsNull() && t.Idle.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("timeouts"), summaryInvalid,
			"set at least one of connect, response_header or idle, or leave timeouts out for the defaults")
	}
	checkEmptyGuardrails(m.Guardrails, &resp.Diagnostics)
	m.checkProtocol(&resp.Diagnostics)
	spec, ok := m.spec(ctx)
	headers, hok := mapStrings(ctx, m.InjectHeadersWO)
	if !ok || !hok {
		return
	}
	for name, v := range headers {
		if spec.InjectHeaders == nil {
			spec.InjectHeaders = map[string]*model.Secret{}
		}
		spec.InjectHeaders[name] = model.NewSecret(v)
	}
	addProblems(&resp.Diagnostics, connectionProblems, spec.Validate(model.NewSecretsLookup(spec.Secrets())))
}

// ModifyPlan refuses a version change without headers to send, and plans
// inject_header_names as the apply will leave them.
func (r *connectionResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var headers types.Map
	var version, priorVersion types.Int64
	priorNames := types.SetNull(types.StringType)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, pathInjectHeaders, &headers)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, pathInjectHeadersVersion, &version)...)
	create := req.State.Raw.IsNull()
	if create {
		priorVersion = types.Int64Null()
	} else {
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, pathInjectHeadersVersion, &priorVersion)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, pathInjectHeaderNames, &priorNames)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if !version.IsNull() && !version.IsUnknown() && (create || !version.Equal(priorVersion)) && headers.IsNull() {
		resp.Diagnostics.AddAttributeError(pathInjectHeadersVersion, "Missing write-only value",
			fmt.Sprintf("inject_headers_wo_version is %s, which asks for new headers to be sent, but inject_headers_wo is not set. "+
				"Set inject_headers_wo, or leave inject_headers_wo_version unchanged.", version))
		return
	}
	// The same decisions as headersToSend makes on apply, with the refreshed
	// header names standing in for what the appliance stores.
	names := types.SetUnknown(types.StringType)
	storedNow := !priorNames.IsNull() && !priorNames.IsUnknown() && len(priorNames.Elements()) > 0
	switch {
	case headers.IsUnknown() || version.IsUnknown():
	case create || !version.Equal(priorVersion) || (version.IsNull() && headers.IsNull()):
		// What the configuration says is what will be sent.
		names = stringSet(mapKeys(headers))
	case storedNow:
		// The version is unchanged: the appliance keeps its headers.
		names = priorNames
	default:
		// Nothing stored yet: the configured headers are sent.
		names = stringSet(mapKeys(headers))
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, pathInjectHeaderNames, names)...)
}

// mapKeys returns the sorted keys of a known map, nil for null.
func mapKeys(m types.Map) []string {
	var keys []string
	for k := range m.Elements() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// headersToSend decides the inject_headers of a write, following the same
// rules as the other write-only secrets (see secretWrite) for the map as a
// whole: new values from config, keep markers for every stored header, or
// none. current is nil on create.
func headersToSend(config, state *connectionModel, current *model.Connection, diags *diag.Diagnostics) map[string]*model.Secret {
	var storedNames []string
	if current != nil {
		for name, s := range current.Spec.InjectHeaders {
			if stored(s) {
				storedNames = append(storedNames, name)
			}
		}
	}
	w := secretWrite{
		Version:      config.InjectHeadersWOVersion,
		PriorVersion: types.Int64Null(),
		Stored:       len(storedNames) > 0,
		Create:       current == nil,
		ValuePath:    pathInjectHeaders,
		VersionPath:  pathInjectHeadersVersion,
		Value:        types.StringNull(),
	}
	if state != nil {
		w.PriorVersion = state.InjectHeadersWOVersion
	}
	if !config.InjectHeadersWO.IsNull() && !config.InjectHeadersWO.IsUnknown() {
		// secretWrite only needs to know that a value is configured.
		w.Value = types.StringValue("configured")
	}
	s := w.secret(diags)
	switch {
	case s == nil:
		return nil
	case s.Value == "":
		out := map[string]*model.Secret{}
		for _, name := range storedNames {
			out[name] = &model.Secret{}
		}
		return out
	}
	values, _ := mapStrings(context.Background(), config.InjectHeadersWO)
	out := make(map[string]*model.Secret, len(values))
	for name, v := range values {
		out[name] = model.NewSecret(v)
	}
	return out
}

// Create creates the connection and waits until the appliance routes it.
func (r *connectionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan, config connectionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.OperationTimeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	spec, _ := plan.spec(ctx)
	spec.InjectHeaders = headersToSend(&config, nil, nil, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	col := r.client.Connections()
	o, err := col.Create(ctx, plan.Name.ValueString(), spec)
	ready := awaitLive(ctx, col, o, err, timeout, "create connection", connectionProblems, "operation_timeouts.create", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, connectionFromAPI(ready, &plan))...)
}

// Read refreshes the state from the appliance; a deleted connection is
// removed from state so that the next plan creates it again.
func (r *connectionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	o := readObject(ctx, r.client.Connections(), state.ID.ValueString(), resp)
	if o == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, connectionFromAPI(o, &state))...)
}

// Update replaces the connection in place and waits until the appliance
// routes the change.
func (r *connectionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var plan, config, state connectionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.OperationTimeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	col := r.client.Connections()
	current, err := col.Get(ctx, state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Failed to read connection", err.Error())
		return
	}
	spec, _ := plan.spec(ctx)
	spec.InjectHeaders = headersToSend(&config, &state, current, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	o, err := col.Replace(ctx, current.ID, plan.Name.ValueString(), spec, client.WriteOptions{IfMatch: current.Generation})
	ready := awaitLive(ctx, col, o, err, timeout, "update connection", connectionProblems, "operation_timeouts.update", &resp.Diagnostics)
	if ready == nil {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, connectionFromAPI(ready, &plan))...)
}

// Delete deletes the connection; already gone is fine. A connection that
// identity bindings still use cannot be deleted: the appliance names them.
func (r *connectionResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var state connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	deleteObject(ctx, r.client.Connections(), state.ID.ValueString(), state.OperationTimeouts, &resp.Diagnostics)
}

// ImportState imports a connection by id, or by name as
// "gateway_name/connection_name".
func (r *connectionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	id, err := r.importID(ctx, req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import connection", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
}

func (r *connectionResource) importID(ctx context.Context, s string) (string, error) {
	if parts, ok := importParts(s, 2); ok {
		gw, err := r.client.Gateways().GetByName(ctx, "", parts[0])
		if err != nil {
			return "", fmt.Errorf("gateway %q: %w", parts[0], err)
		}
		c, err := r.client.Connections().GetByName(ctx, gw.ID, parts[1])
		if err != nil {
			return "", fmt.Errorf("connection %q of gateway %q: %w", parts[1], parts[0], err)
		}
		return c.ID, nil
	}
	if !looksLikeID(model.KindConnection, s) {
		return "", fmt.Errorf("%q is neither a connection id (conn_...) nor GATEWAY_NAME/CONNECTION_NAME", s)
	}
	c, err := r.client.Connections().Get(ctx, s)
	if err != nil {
		return "", fmt.Errorf("connection %q: %w", s, err)
	}
	return c.ID, nil
}

// connectionFromAPI builds the state from a connection read from the
// appliance. prior supplies what the appliance does not return: the
// write-only version and the operation timeouts.
func connectionFromAPI(o *model.Connection, prior *connectionModel) *connectionModel {
	s := o.Spec
	m := &connectionModel{
		ID:                     types.StringValue(o.ID),
		Name:                   types.StringValue(o.Name),
		GatewayID:              types.StringValue(s.GatewayID),
		Protocol:               types.StringValue(s.Protocol),
		Hostname:               optString(s.Hostname),
		PathPrefix:             optString(s.PathPrefix),
		UpstreamURL:            types.StringValue(s.UpstreamURL),
		UpstreamTLSSettingsID:  optString(s.UpstreamTLSSettingsID),
		InjectHeadersWO:        types.MapNull(types.StringType),
		InjectHeadersWOVersion: prior.InjectHeadersWOVersion,
		InjectHeaderNames:      injectHeaderNames(s.InjectHeaders),
		Timeouts:               upstreamTimeoutsFromAPI(s.Timeouts),
		Recording:              recordingFromAPI(s.Recording),
		Masking:                maskingFromAPI(s.Masking),
		Guardrails:             guardrailsFromAPI(s.Guardrails),
		Ready:                  types.BoolValue(o.Status.Ready && o.Status.ObservedGeneration >= o.Generation),
		CreatedAt:              rfc3339(o.CreatedAt),
		OperationTimeouts:      prior.OperationTimeouts,
	}
	return m
}

// injectHeaderNames returns the names of the injected headers, null for
// none.
func injectHeaderNames(h map[string]*model.Secret) types.Set {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	return stringSet(names)
}

// upstreamTimeoutsFromAPI converts a connection's upstream timeouts.
func upstreamTimeoutsFromAPI(t *model.ConnectionTimeouts) *upstreamTimeoutsModel {
	if t == nil {
		return nil
	}
	return &upstreamTimeoutsModel{
		Connect:        optString(t.Connect),
		ResponseHeader: optString(t.ResponseHeader),
		Idle:           optString(t.Idle),
	}
}

// recordingFromAPI converts a connection's recording.
func recordingFromAPI(r *model.RecordingSpec) *recordingModel {
	if r == nil {
		return nil
	}
	return &recordingModel{
		Enabled:      types.BoolValue(r.Enabled),
		MaxBodyBytes: optInt64(r.MaxBodyBytes),
		OnDiskFull:   optString(r.OnDiskFull),
	}
}

// maskingFromAPI converts a connection's masking rules, in order.
func maskingFromAPI(rules []model.MaskingRule) []maskingRuleModel {
	if len(rules) == 0 {
		return nil
	}
	out := make([]maskingRuleModel, len(rules))
	for i, r := range rules {
		out[i] = maskingRuleModel{
			JSONPath:    optString(r.JSONPath),
			Regex:       optString(r.Regex),
			Detector:    optString(r.Detector),
			Replacement: optString(r.Replacement),
		}
	}
	return out
}

// upstreamTimeoutsAttrTypes is the object type of a connection's timeouts,
// for the data source.
var upstreamTimeoutsAttrTypes = map[string]attr.Type{
	"connect":         types.StringType,
	"response_header": types.StringType,
	"idle":            types.StringType,
}
