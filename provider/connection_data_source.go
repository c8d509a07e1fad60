package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Ensure the implementation satisfies the framework interfaces it means to.
var _ datasource.DataSourceWithConfigure = (*connectionDataSource)(nil)

// NewConnectionDataSource returns the sallyport_connection data source.
func NewConnectionDataSource() datasource.DataSource { return &connectionDataSource{} }

// connectionDataSource looks a connection up by gateway and name.
type connectionDataSource struct {
	client *client.Client
}

// connectionDataModel maps the data source's schema.
type connectionDataModel struct {
	ID                    types.String       `tfsdk:"id"`
	GatewayID             types.String       `tfsdk:"gateway_id"`
	Name                  types.String       `tfsdk:"name"`
	Protocol              types.String       `tfsdk:"protocol"`
	Hostname              types.String       `tfsdk:"hostname"`
	PathPrefix            types.String       `tfsdk:"path_prefix"`
	UpstreamURL           types.String       `tfsdk:"upstream_url"`
	UpstreamTLSSettingsID types.String       `tfsdk:"upstream_tls_settings_id"`
	InjectHeaderNames     types.Set          `tfsdk:"inject_header_names"`
	Timeouts              types.Object       `tfsdk:"timeouts"`
	Recording             *recordingModel    `tfsdk:"recording"`
	Masking               []maskingRuleModel `tfsdk:"masking"`
	Guardrails            *guardrailsModel   `tfsdk:"guardrails"`
	Ready                 types.Bool         `tfsdk:"ready"`
	StatusMessage         types.String       `tfsdk:"status_message"`
	CreatedAt             timetypes.RFC3339  `tfsdk:"created_at"`
}

// Metadata names the data source type.
func (d *connectionDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_connection"
}

// Schema describes the data source.
func (d *connectionDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	computedList := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A connection, looked up by its gateway and name, with whether it is live. Injected " +
			"header values are never returned; `inject_header_names` lists which headers are injected.",
		Attributes: map[string]schema.Attribute{
			"gateway_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The id of the connection's gateway (e.g. `data.sallyport_gateway.edge.id`).",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The connection's name within the gateway.",
				Validators:          []validator.String{nameRule()},
			},
			"id":                       computed("The connection's id (`conn_...`)."),
			"protocol":                 computed("`http`, `grpc` or `tcp`."),
			"hostname":                 computed("The hostname the connection routes (null if none)."),
			"path_prefix":              computed("The path prefix the connection routes (null if none)."),
			"upstream_url":             computed("The executor's URL."),
			"upstream_tls_settings_id": computed("The id of the TLS settings towards the executor (null: system roots)."),
			"inject_header_names": schema.SetAttribute{
				Computed:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "The names of the headers injected towards the executor.",
			},
			"timeouts": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The upstream timeouts set on the connection (null: the defaults).",
				Attributes: map[string]schema.Attribute{
					"connect":         computed("Dial and TLS handshake timeout."),
					"response_header": computed("Timeout waiting for response headers."),
					"idle":            computed("Idle pooled connection timeout."),
				},
			},
			"recording": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The connection's session recording (null: none).",
				Attributes: map[string]schema.Attribute{
					"enabled":        schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether sessions are recorded."},
					"max_body_bytes": schema.Int64Attribute{Computed: true, MarkdownDescription: "Recorded bytes per body (`-1`: none; null: 64 KiB)."},
					"on_disk_full":   computed("`refuse` or `continue` (null: `refuse`)."),
				},
			},
			"masking": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The connection's masking rules, in the order they apply (null: none).",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"json_path":   computed("The JSONPath the rule masks (null if another selector is used)."),
						"regex":       computed("The regular expression the rule masks (null if another selector is used)."),
						"detector":    computed("The built-in detector the rule uses (null if another selector is used)."),
						"replacement": computed("`redact`, `partial` or `hash` (null: `redact`)."),
					},
				},
			},
			"guardrails": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The connection's guardrails (null: none).",
				Attributes: map[string]schema.Attribute{
					"deny_path_patterns":      computedList("Regular expressions over the path that deny a request."),
					"deny_query_patterns":     computedList("Regular expressions over the query that deny a request."),
					"deny_body_patterns":      computedList("Regular expressions over the body that deny a request."),
					"max_request_body_bytes":  schema.Int64Attribute{Computed: true, MarkdownDescription: "The largest request body allowed (null: no cap)."},
					"allowed_content_types":   computedList("The media types a request body may have (null: any)."),
					"allowed_jsonrpc_methods": computedList("The JSON-RPC methods a request may call (null: any)."),
					"allowed_mcp_tools":       computedList("The MCP tools a `tools/call` may name (null: any)."),
				},
			},
			"ready": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the appliance routes the connection's current configuration.",
			},
			"status_message": computed("What the appliance reports as pending or failed (null when ready)."),
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance created the connection (RFC 3339).",
			},
		},
	}
}

// Configure receives the provider's client.
func (d *connectionDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, diags := clientFromProviderData(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	d.client = c
}

// Read looks the connection up.
func (d *connectionDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	var m connectionDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	o, err := d.client.Connections().GetByName(ctx, m.GatewayID.ValueString(), m.Name.ValueString())
	if err != nil {
		if client.IsNotFound(err) {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Connection not found",
				fmt.Sprintf("Gateway %s has no connection named %q.", m.GatewayID.ValueString(), m.Name.ValueString()))
			return
		}
		resp.Diagnostics.AddError("Failed to read connection", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, connectionDataFromAPI(o))...)
}

// connectionDataFromAPI builds the data source's state from a connection.
func connectionDataFromAPI(o *model.Connection) *connectionDataModel {
	s := o.Spec
	t := types.ObjectNull(upstreamTimeoutsAttrTypes)
	if ut := upstreamTimeoutsFromAPI(s.Timeouts); ut != nil {
		t = types.ObjectValueMust(upstreamTimeoutsAttrTypes, map[string]attr.Value{
			"connect":         ut.Connect,
			"response_header": ut.ResponseHeader,
			"idle":            ut.Idle,
		})
	}
	return &connectionDataModel{
		ID:                    types.StringValue(o.ID),
		GatewayID:             types.StringValue(s.GatewayID),
		Name:                  types.StringValue(o.Name),
		Protocol:              types.StringValue(s.Protocol),
		Hostname:              optString(s.Hostname),
		PathPrefix:            optString(s.PathPrefix),
		UpstreamURL:           types.StringValue(s.UpstreamURL),
		UpstreamTLSSettingsID: optString(s.UpstreamTLSSettingsID),
		InjectHeaderNames:     injectHeaderNames(s.InjectHeaders),
		Timeouts:              t,
		Recording:             recordingFromAPI(s.Recording),
		Masking:               maskingFromAPI(s.Masking),
		Guardrails:            guardrailsFromAPI(s.Guardrails),
		Ready:                 types.BoolValue(o.Status.Ready && o.Status.ObservedGeneration >= o.Generation),
		StatusMessage:         optString(o.Status.Message),
		CreatedAt:             rfc3339(o.CreatedAt),
	}
}
