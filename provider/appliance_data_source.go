package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Ensure the implementation satisfies the framework interfaces it means to.
var _ datasource.DataSourceWithConfigure = (*applianceDataSource)(nil)

// NewApplianceDataSource returns the sallyport_appliance data source.
func NewApplianceDataSource() datasource.DataSource { return &applianceDataSource{} }

// applianceDataSource reports on the appliance the provider talks to.
type applianceDataSource struct {
	config *Config
}

// applianceModel maps the data source's schema.
type applianceModel struct {
	Endpoint                 types.String      `tfsdk:"endpoint"`
	Version                  types.String      `tfsdk:"version"`
	AdminCAFingerprintSHA256 types.String      `tfsdk:"admin_ca_fingerprint_sha256"`
	StartedAt                timetypes.RFC3339 `tfsdk:"started_at"`
	StoreBackend             types.String      `tfsdk:"store_backend"`
	StoreRevision            types.Int64       `tfsdk:"store_revision"`
	ObjectCounts             types.Map         `tfsdk:"object_counts"`
	ReconcileStatusJSON      types.String      `tfsdk:"reconcile_status_json"`
}

// Metadata names the data source type.
func (d *applianceDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_appliance"
}

// Schema describes the data source.
func (d *applianceDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The appliance the provider manages: its version, the fingerprint of its admin CA, and " +
			"the status of its store and reconciler.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The admin API's base URL the provider uses.",
			},
			"version": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The `sallyportd` version.",
			},
			"admin_ca_fingerprint_sha256": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The SHA-256 fingerprint (lower-case hex) of the CA that verified the admin API's " +
					"certificate: the pinned one, or the root the certificate chained to. Pin it with the provider's " +
					"`ca_fingerprint_sha256`.",
			},
			"started_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the appliance process started (RFC 3339).",
			},
			"store_backend": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The configuration store's engine: `bolt` (embedded) or `postgres` (shared).",
			},
			"store_revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "The number of committed configuration writes.",
			},
			"object_counts": schema.MapAttribute{
				Computed:    true,
				ElementType: types.Int64Type,
				MarkdownDescription: "The number of objects of each kind, keyed `tls_settings`, `gateway`, `connection` " +
					"and `identity_binding`.",
			},
			"reconcile_status_json": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The reconciler's state as JSON (use `jsondecode`); its shape is not yet " +
					"covered by compatibility guarantees.",
			},
		},
	}
}

// Configure receives the provider's configuration.
func (d *applianceDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if req.ProviderData == nil {
		return
	}
	if _, diags := clientFromProviderData(req.ProviderData); diags.HasError() {
		resp.Diagnostics.Append(diags...)
		return
	}
	d.config = req.ProviderData.(*Config)
}

// Read asks the appliance for its status.
func (d *applianceDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.config == nil {
		requireClient(nil, &resp.Diagnostics)
		return
	}
	st, err := d.config.Client.Status(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Failed to read the appliance's status", err.Error())
		return
	}
	fp, err := adminCAFingerprint(ctx, d.config)
	if err != nil {
		resp.Diagnostics.AddError("Failed to determine the appliance's admin CA", err.Error())
		return
	}
	counts := map[string]int64{}
	for _, k := range model.Kinds {
		counts[string(k)] = int64(st.Counts[string(k)])
	}
	for k, n := range st.Counts {
		counts[k] = int64(n)
	}
	countsValue, diags := types.MapValueFrom(ctx, types.Int64Type, counts)
	resp.Diagnostics.Append(diags...)
	reconcile := types.StringNull()
	if len(st.Reconcile) > 0 {
		reconcile = types.StringValue(string(st.Reconcile))
	}
	m := applianceModel{
		Endpoint:                 types.StringValue(d.config.Client.Endpoint()),
		Version:                  types.StringValue(st.Version),
		AdminCAFingerprintSHA256: types.StringValue(fp),
		StartedAt:                rfc3339(st.StartedAt),
		StoreBackend:             types.StringValue(st.Store.Backend),
		StoreRevision:            types.Int64Value(int64(st.Store.Revision)),
		ObjectCounts:             countsValue,
		ReconcileStatusJSON:      reconcile,
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// adminCAFingerprint returns the fingerprint of the CA that verifies the
// admin API: the pinned one, or else the root of the chain the appliance's
// certificate verifies to (against ca_cert_pem or the system roots), read
// from a TLS handshake of its own.
func adminCAFingerprint(ctx context.Context, cfg *Config) (string, error) {
	if cfg.CAFingerprint != "" {
		// Every request of the client has been verified against it.
		return cfg.CAFingerprint, nil
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return "", err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if cfg.CACertPEM != "" {
		certs, err := model.ParseCertificatesPEM(cfg.CACertPEM)
		if err != nil {
			return "", err
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		tlsConfig.RootCAs = pool
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	dialer := &tls.Dialer{Config: tlsConfig, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	defer conn.Close()
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return "", errors.New("not a TLS connection")
	}
	chains := tc.ConnectionState().VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", errors.New("the appliance's certificate did not verify to a CA")
	}
	chain := chains[0]
	return client.Fingerprint(chain[len(chain)-1]), nil
}
