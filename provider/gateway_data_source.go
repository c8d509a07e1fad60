package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Ensure the implementation satisfies the framework interfaces it means to.
var _ datasource.DataSourceWithConfigure = (*gatewayDataSource)(nil)

// NewGatewayDataSource returns the sallyport_gateway data source.
func NewGatewayDataSource() datasource.DataSource { return &gatewayDataSource{} }

// gatewayDataSource looks a gateway up by name.
type gatewayDataSource struct {
	client *client.Client
}

// gatewayDataModel maps the data source's schema.
type gatewayDataModel struct {
	ID            types.String        `tfsdk:"id"`
	Name          types.String        `tfsdk:"name"`
	ListenAddr    types.String        `tfsdk:"listen_addr"`
	Hostnames     types.Set           `tfsdk:"hostnames"`
	TLSSettingsID types.String        `tfsdk:"tls_settings_id"`
	OIDCProviders []oidcProviderModel `tfsdk:"oidc_providers"`
	Certificate   types.Object        `tfsdk:"certificate"`
	Ready         types.Bool          `tfsdk:"ready"`
	StatusMessage types.String        `tfsdk:"status_message"`
	CreatedAt     timetypes.RFC3339   `tfsdk:"created_at"`
}

// Metadata names the data source type.
func (d *gatewayDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_gateway"
}

// Schema describes the data source.
func (d *gatewayDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A gateway, looked up by name, with the certificate it serves and whether it is live: " +
			"for example to read the certificate fingerprint planners should pin, or to attach connections to a " +
			"gateway managed elsewhere.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The gateway's name.",
				Validators:          []validator.String{nameRule()},
			},
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The gateway's id (`gw_...`).",
			},
			"listen_addr": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`HOST:PORT` the gateway listens on.",
			},
			"hostnames": schema.SetAttribute{
				Computed:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "The DNS names the gateway serves.",
			},
			"tls_settings_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The id of the gateway's TLS settings.",
			},
			"oidc_providers": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The OIDC token issuers the gateway trusts.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"issuer_url":         schema.StringAttribute{Computed: true, MarkdownDescription: "The issuer URL."},
						"audiences":          schema.SetAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "The accepted audiences."},
						"allowed_algorithms": schema.SetAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "The accepted signing algorithms (null: `RS256`)."},
						"ca_pem":             schema.StringAttribute{Computed: true, MarkdownDescription: "The CA that verifies the IdP's TLS (null: the system roots)."},
						"token_type":         schema.StringAttribute{Computed: true, MarkdownDescription: "The required token type, `access` or `id` (null: any)."},
					},
				},
			},
			"certificate": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The certificate the gateway serves now (null while it serves none).",
				Attributes: map[string]schema.Attribute{
					"subject":            schema.StringAttribute{Computed: true, MarkdownDescription: "The certificate's subject."},
					"issuer":             schema.StringAttribute{Computed: true, MarkdownDescription: "The certificate's issuer."},
					"not_after":          schema.StringAttribute{Computed: true, CustomType: timetypes.RFC3339Type{}, MarkdownDescription: "When the certificate expires (RFC 3339)."},
					"sha256_fingerprint": schema.StringAttribute{Computed: true, MarkdownDescription: "The SHA-256 fingerprint of the certificate (lower-case hex)."},
				},
			},
			"ready": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the appliance serves the gateway's current configuration.",
			},
			"status_message": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "What the appliance reports as pending or failed (null when ready).",
			},
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance created the gateway (RFC 3339).",
			},
		},
	}
}

// Configure receives the provider's client.
func (d *gatewayDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, diags := clientFromProviderData(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	d.client = c
}

// Read looks the gateway up.
func (d *gatewayDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	var m gatewayDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	o, err := d.client.Gateways().GetByName(ctx, "", m.Name.ValueString())
	if err != nil {
		if client.IsNotFound(err) {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Gateway not found",
				fmt.Sprintf("The appliance has no gateway named %q.", m.Name.ValueString()))
			return
		}
		resp.Diagnostics.AddError("Failed to read gateway", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, gatewayDataFromAPI(o))...)
}

// gatewayDataFromAPI builds the data source's state from a gateway.
func gatewayDataFromAPI(o *model.Gateway) *gatewayDataModel {
	r := gatewayFromAPI(o, timeouts.Value{}) // timeouts: not part of the data source
	return &gatewayDataModel{
		ID:            r.ID,
		Name:          r.Name,
		ListenAddr:    r.ListenAddr,
		Hostnames:     r.Hostnames,
		TLSSettingsID: r.TLSSettingsID,
		OIDCProviders: r.OIDCProviders,
		Certificate:   r.Certificate,
		Ready:         r.Ready,
		StatusMessage: optString(o.Status.Message),
		CreatedAt:     r.CreatedAt,
	}
}
