package provider

// This file holds what the resources and data sources share: reaching the
// client, turning the appliance's errors and validation problems into
// diagnostics on the right attribute, write-only secrets, waiting for the
// reconciler, and conversions between framework values and the model.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Default operation timeouts of the resources: how long Create and Update
// wait for the appliance to report the change live, and how long Delete
// may take.
const (
	defaultCreateTimeout = 10 * time.Minute
	defaultUpdateTimeout = 10 * time.Minute
	defaultDeleteTimeout = 5 * time.Minute
)

// summaryInvalid is the summary of every diagnostic raised by one of the
// appliance's own validation rules. Attribute validators and the spec-level
// check in ValidateConfig use the same summary and the same message, so the
// framework reports a problem found by both only once.
const summaryInvalid = "Invalid Attribute Value"

// clientFromProviderData returns the client the provider configured, or nil
// when the provider is not configured yet (Terraform configures resources
// before the provider in some RPCs, and leaves the provider unconfigured
// while its configuration is unknown).
func clientFromProviderData(data any) (*client.Client, diag.Diagnostics) {
	var diags diag.Diagnostics
	if data == nil {
		return nil, diags
	}
	cfg, ok := data.(*Config)
	if !ok || cfg.Client == nil {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected a *provider.Config with a client, got %T. This is a bug in the provider; please report it.", data))
		return nil, diags
	}
	return cfg.Client, diags
}

// requireClient adds an error when c is nil: the provider could not be
// configured because its configuration depends on values unknown until
// apply.
func requireClient(c *client.Client, diags *diag.Diagnostics) bool {
	if c == nil {
		diags.AddError("Sallyport provider not configured",
			"The provider's endpoint, token or CA is not known yet (it depends on a value known only after apply), "+
				"so the appliance cannot be reached. Apply the resources it depends on first, e.g. with -target.")
		return false
	}
	return true
}

// checkRule is a validator.String that runs one of the model's check
// functions, reporting its message under summaryInvalid.
func checkRule(description string, check func(string) error) validator.String {
	return stringRule{summary: summaryInvalid, description: description, check: check}
}

// Validators built from the model's checks, shared by the schemas.
func nameRule() validator.String {
	return checkRule("a name of 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", model.CheckName)
}

func hostnameRule() validator.String {
	return checkRule("a lower-case DNS name, optionally with a leading \"*.\" wildcard label", model.CheckHostname)
}

func listenAddrRule() validator.String {
	return checkRule("HOST:PORT where HOST is an IP address, \"localhost\" or empty", model.CheckListenAddr)
}

func pemCertificatesRule() validator.String {
	return checkRule("one or more PEM CERTIFICATE blocks", func(s string) error {
		_, err := model.ParseCertificatesPEM(s)
		return err
	})
}

func globRule() validator.String {
	return checkRule("a glob pattern ('*', '?', '[...]')", model.CheckGlob)
}

func pathPrefixRule() validator.String {
	return checkRule("a plain path starting with '/'", model.CheckPathPrefix)
}

func grpcMethodRule() validator.String {
	return checkRule("a full gRPC method name such as /pkg.Service/Method, globs allowed", model.CheckGRPCMethod)
}

func emailRule() validator.String {
	return checkRule("an e-mail address", model.CheckEmail)
}

func headerNameRule() validator.String {
	return checkRule("an HTTP header name", model.CheckHeaderName)
}

func headerValueRule() validator.String {
	return checkRule("an HTTP header value without control characters", model.CheckHeaderValue)
}

// upstreamTimeoutRule checks a connection's upstream timeout with the same
// bounds the appliance applies.
func upstreamTimeoutRule() validator.String {
	return checkRule("a duration from 1ms to 1h such as 10s", func(s string) error {
		return model.CheckDuration(s, time.Millisecond, time.Hour)
	})
}

// oneOfRule checks a value against a fixed list with the model's wording.
func oneOfRule(allowed ...string) validator.String {
	return checkRule("one of "+strings.Join(allowed, ", "), func(s string) error { return model.CheckOneOf(s, allowed...) })
}

// problemPaths maps the field paths of the appliance's validation problems
// ("spec.hostnames[2]", "spec.certificate.static.key_pem") to attribute
// paths.
type problemPaths struct {
	// renames maps a problem field (spec-relative, without indexes, e.g.
	// "certificate.static.key_pem") to the attribute name it has in HCL
	// (e.g. "key_pem_wo").
	renames map[string]string
	// sets lists the attributes (spec-relative, without indexes) that are
	// sets in HCL: an index into them is resolved to the element's value.
	sets map[string]bool
	// maps lists the attributes whose next path segment is a map key (which
	// may itself contain dots).
	maps map[string]bool
	// setValues holds, for each set attribute of the spec that was checked
	// (keyed by its problem field with indexes, e.g.
	// "spec.oidc_providers[0].audiences"), its elements in the order the
	// spec listed them.
	setValues map[string][]string
}

// path returns the attribute a problem field names: path.Empty() for a
// field outside the spec, the closest enclosing attribute when the field
// cannot be followed further.
func (pp problemPaths) path(field string) path.Path {
	if field == "name" {
		return path.Root("name")
	}
	rest, ok := strings.CutPrefix(field, "spec.")
	if !ok {
		return path.Empty()
	}
	var p path.Path
	schemaKey := ""      // the field without indexes, for renames/sets/maps
	problemKey := "spec" // the field with indexes, for setValues
	for rest != "" {
		seg := rest
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		name, index := seg, -1
		if i := strings.IndexByte(seg, '['); i > 0 && strings.HasSuffix(seg, "]") {
			n, err := strconv.Atoi(seg[i+1 : len(seg)-1])
			if err != nil {
				return orRoot(p)
			}
			name, index = seg[:i], n
		}
		if schemaKey != "" {
			schemaKey += "."
		}
		schemaKey += name
		problemKey += "." + name
		attrName := name
		if r, ok := pp.renames[schemaKey]; ok {
			attrName = r
		}
		if len(p.Steps()) == 0 {
			p = path.Root(attrName)
		} else {
			p = p.AtName(attrName)
		}
		switch {
		case pp.maps[schemaKey]:
			if rest != "" {
				return p.AtMapKey(rest)
			}
			return p
		case pp.sets[schemaKey]:
			vals := pp.setValues[problemKey]
			if index >= 0 && index < len(vals) {
				return p.AtSetValue(types.StringValue(vals[index]))
			}
			return p
		case index >= 0:
			p = p.AtListIndex(index)
			problemKey = fmt.Sprintf("%s[%d]", problemKey, index)
		}
	}
	return p
}

func orRoot(p path.Path) path.Path {
	if len(p.Steps()) == 0 {
		return path.Empty()
	}
	return p
}

// addProblems reports validation problems on their attributes.
func addProblems(diags *diag.Diagnostics, pp problemPaths, ps model.Problems) {
	for _, pr := range ps {
		p := pp.path(pr.Field)
		if len(p.Steps()) == 0 {
			diags.AddError(summaryInvalid, pr.String())
			continue
		}
		diags.AddAttributeError(p, summaryInvalid, pr.Message)
	}
}

// addAPIError reports an error of the admin API: validation problems on
// their attributes, anything else as a general error saying what was being
// done.
func addAPIError(diags *diag.Diagnostics, pp problemPaths, action string, err error) {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && len(apiErr.Problems) > 0 {
		addProblems(diags, pp, apiErr.Problems)
		return
	}
	diags.AddError("Failed to "+action, err.Error())
}

// addWaitError reports a wait for the reconciler that failed or timed out.
// The object exists either way; what failed is making it live.
func addWaitError(diags *diag.Diagnostics, kind model.Kind, id string, timeoutAttr string, err error) {
	var rerr *client.ReconcileError
	switch {
	case errors.As(err, &rerr):
		diags.AddError(fmt.Sprintf("The appliance could not apply the %s", kind.Title()),
			fmt.Sprintf("The appliance stored %s %s but failed to make generation %d live: %s",
				kind.Title(), id, rerr.Generation, rerr.Status.Message))
	case errors.Is(err, context.DeadlineExceeded):
		diags.AddError(fmt.Sprintf("Timed out waiting for the %s to be ready", kind.Title()),
			fmt.Sprintf("The appliance stored %s %s but did not report it live in time (%s). "+
				"Raise %s if the appliance needs longer.", kind.Title(), id, err, timeoutAttr))
	default:
		diags.AddError(fmt.Sprintf("Failed waiting for the %s to be ready", kind.Title()), err.Error())
	}
}

// awaitLive finishes a Create or an Update, given the write's answer o (or
// its error): it waits up to timeout until the appliance reports the
// written generation live, and returns the object to record in state: the
// live one, or the written one when waiting failed (the object exists: it
// stays in state, tainted, so that it is not lost). It returns nil when the
// write itself failed. Failures become diagnostics: the appliance's
// validation problems on their attributes (pp), a failed or timed-out wait
// naming the timeout attribute.
func awaitLive[S any](ctx context.Context, col *client.Collection[S], o *model.Object[S], err error, timeout time.Duration,
	action string, pp problemPaths, timeoutAttr string, diags *diag.Diagnostics) *model.Object[S] {
	if err != nil {
		addAPIError(diags, pp, action, err)
		return nil
	}
	ready, err := waitReady(ctx, col, o, timeout)
	if err != nil {
		addWaitError(diags, col.Kind(), o.ID, timeoutAttr, err)
		return o
	}
	return ready
}

// waitReady waits, within timeout, until the object reports ready at its
// generation and returns it as last read. The appliance answers a write
// once it is live, with the status of that reconcile, so the object a
// write returned is normally ready already: it is then returned without
// another request.
func waitReady[S any](ctx context.Context, col *client.Collection[S], o *model.Object[S], timeout time.Duration) (*model.Object[S], error) {
	if o.Status.Ready && o.Status.ObservedGeneration >= o.Generation {
		return o, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return col.WaitReady(ctx, o.ID, o.Generation)
}

// secretWrite decides what to send for one write-only secret: a new value,
// a keep marker (a Secret with an empty Value), or nil to remove it.
//
//   - On create, a configured value is sent.
//   - On update, a changed *_wo_version sends the configured value, or
//     removes the secret when the version was removed too.
//   - An unchanged version keeps the stored value; when nothing is stored
//     yet, a configured value is sent.
//   - A version without a value, where a value must be sent, is an error on
//     the version attribute: it would otherwise silently send nothing.
type secretWrite struct {
	// Value is the configured write-only value (null when not set).
	Value types.String
	// Version is the configured *_wo_version.
	Version types.Int64
	// PriorVersion is the *_wo_version in state (null on create).
	PriorVersion types.Int64
	// Stored says whether the appliance holds a value now.
	Stored bool
	// Create is set on create.
	Create bool
	// ValuePath and VersionPath are the attributes, for diagnostics.
	ValuePath, VersionPath path.Path
}

// secret returns the Secret to send, adding a diagnostic when a version
// asks for a value that is not configured.
func (w secretWrite) secret(diags *diag.Diagnostics) *model.Secret {
	hasValue := !w.Value.IsNull() && !w.Value.IsUnknown() && w.Value.ValueString() != ""
	missing := func() *model.Secret {
		diags.AddAttributeError(w.VersionPath, "Missing write-only value",
			fmt.Sprintf("%s is set to %s, but %s has no value. A version asks for the value to be sent; set %s (for example from an ephemeral resource or variable), or remove the version.",
				w.VersionPath, w.Version, w.ValuePath, w.ValuePath))
		return nil
	}
	if w.Create {
		switch {
		case hasValue:
			return model.NewSecret(w.Value.ValueString())
		case !w.Version.IsNull():
			return missing()
		}
		return nil
	}
	if !w.Version.Equal(w.PriorVersion) {
		switch {
		case hasValue:
			return model.NewSecret(w.Value.ValueString())
		case w.Version.IsNull():
			return nil
		}
		return missing()
	}
	switch {
	case w.Version.IsNull() && !hasValue:
		return nil
	case w.Stored:
		return &model.Secret{}
	case hasValue:
		return model.NewSecret(w.Value.ValueString())
	}
	return missing()
}

// stored reports whether a secret read from the appliance holds a value.
func stored(s *model.Secret) bool { return s != nil && s.Set }

// Conversions between framework values and the model. Empty strings and
// empty collections are absent in the API (omitempty), so they map to null;
// the schemas refuse empty values in configuration so that null is the only
// way to say "none" and the state always matches the configuration.

// optString returns a null string for "".
func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// stringSet returns a set of strings, null when empty.
func stringSet(ss []string) types.Set {
	if len(ss) == 0 {
		return types.SetNull(types.StringType)
	}
	vals := make([]attr.Value, len(ss))
	for i, s := range ss {
		vals[i] = types.StringValue(s)
	}
	return types.SetValueMust(types.StringType, vals)
}

// stringMap returns a map of strings, null when empty.
func stringMap(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	vals := make(map[string]attr.Value, len(m))
	for k, v := range m {
		vals[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, vals)
}

// rfc3339 returns a timestamp as an RFC 3339 value in UTC, null when zero.
func rfc3339(t time.Time) timetypes.RFC3339 {
	if t.IsZero() {
		return timetypes.NewRFC3339Null()
	}
	return timetypes.NewRFC3339TimeValue(t.UTC().Truncate(time.Second))
}

// known reports whether every value is known (null counts as known).
func known(vals ...attr.Value) bool {
	for _, v := range vals {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// setStrings returns the elements of a known set or list of strings; ok is
// false when it, or one of its elements, is unknown.
func setStrings(ctx context.Context, v interface {
	attr.Value
	ElementsAs(context.Context, any, bool) diag.Diagnostics
}) ([]string, bool) {
	if v.IsUnknown() {
		return nil, false
	}
	if v.IsNull() {
		return nil, true
	}
	var ss []types.String
	if v.ElementsAs(ctx, &ss, false).HasError() {
		return nil, false
	}
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s.IsUnknown() {
			return nil, false
		}
		out = append(out, s.ValueString())
	}
	return out, true
}

// mapStrings returns the entries of a known map of strings; ok is false when
// it, or one of its values, is unknown.
func mapStrings(ctx context.Context, v types.Map) (map[string]string, bool) {
	if v.IsUnknown() {
		return nil, false
	}
	if v.IsNull() {
		return nil, true
	}
	var m map[string]types.String
	if v.ElementsAs(ctx, &m, false).HasError() {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, s := range m {
		if s.IsUnknown() {
			return nil, false
		}
		out[k] = s.ValueString()
	}
	return out, true
}

// placeholderID stands in for the id of a referenced object that is not
// known yet (it is being created in the same apply) when a spec is checked
// at plan time: the model only checks that references are set, the
// appliance checks that they exist.
const placeholderID = "unknown-until-apply"

// refID returns the id a reference attribute holds, or placeholderID when it
// is unknown.
func refID(v types.String) string {
	if v.IsUnknown() {
		return placeholderID
	}
	return v.ValueString()
}

// importParts splits an import id of the form "a/b/c" into exactly n
// non-empty parts.
func importParts(id string, n int) ([]string, bool) {
	parts := strings.Split(id, "/")
	if len(parts) != n {
		return nil, false
	}
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
	}
	return parts, true
}

// looksLikeID reports whether s has the id prefix of kind, so an import id
// is tried as an id before as a name.
func looksLikeID(kind model.Kind, s string) bool {
	return strings.HasPrefix(s, kind.IDPrefix()) && !strings.Contains(s, "/")
}

// lookup finds an object for import: by id when s looks like one (falling
// back to a name, since names may look like ids), otherwise by name within
// parent.
func lookup[S any](ctx context.Context, col *client.Collection[S], parent, s string) (*model.Object[S], error) {
	if looksLikeID(col.Kind(), s) {
		o, err := col.Get(ctx, s)
		if err == nil || !client.IsNotFound(err) {
			return o, err
		}
	}
	return col.GetByName(ctx, parent, s)
}

// checkVersionChange reports, at plan time, a write-only secret whose
// *_wo_version is set on create or changed on update while the secret
// itself has no value: the version asks for a value to be sent, and
// sending nothing would silently keep or drop the stored one.
func checkVersionChange(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse, valuePath, versionPath path.Path) {
	var value types.String
	var version, prior types.Int64
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, valuePath, &value)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, versionPath, &version)...)
	create := req.State.Raw.IsNull()
	if create {
		prior = types.Int64Null()
	} else {
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, versionPath, &prior)...)
	}
	if resp.Diagnostics.HasError() || version.IsNull() || version.IsUnknown() || value.IsUnknown() {
		return
	}
	if !create && version.Equal(prior) {
		return
	}
	if value.IsNull() {
		resp.Diagnostics.AddAttributeError(versionPath, "Missing write-only value",
			fmt.Sprintf("%s is %s, which asks for a new value to be sent, but %s is not set. "+
				"Set %s (for example from an ephemeral resource or a sensitive variable), or leave %s unchanged.",
				versionPath, version, valuePath, valuePath, versionPath))
	}
}

// operationTimeouts is the schema of a resource's create, update and
// delete timeouts; what names the resource for the descriptions ("a new
// gateway").
func operationTimeouts(ctx context.Context, what string) schema.Attribute {
	a := timeouts.Attributes(ctx, timeouts.Opts{
		Create: true, Update: true, Delete: true,
		CreateDescription: "How long to wait for the appliance to make " + what + " live (default `10m`).",
		UpdateDescription: "How long to wait for the appliance to make a change live (default `10m`).",
		DeleteDescription: "How long a delete may take (default `5m`).",
	}).(schema.SingleNestedAttribute)
	a.MarkdownDescription = "How long Terraform waits for the appliance: create and update return once the change is " +
		"live (status ready at the new generation). Durations such as `30s` or `15m`."
	return a
}

// stringList returns a list of strings, null when empty.
func stringList(ss []string) types.List {
	if len(ss) == 0 {
		return types.ListNull(types.StringType)
	}
	vals := make([]attr.Value, len(ss))
	for i, s := range ss {
		vals[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, vals)
}

// optInt64 returns a null number for 0 (absent in the API).
func optInt64(n int64) types.Int64 {
	if n == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(n)
}

// int64Rule is a validator.Int64 built from a check function, reporting
// under summaryInvalid. Null and unknown values are skipped.
type int64Rule struct {
	description string
	check       func(int64) error
}

var _ validator.Int64 = int64Rule{}

// Description describes the rule in plain text.
func (r int64Rule) Description(context.Context) string { return r.description }

// MarkdownDescription describes the rule in Markdown.
func (r int64Rule) MarkdownDescription(context.Context) string { return r.description }

// ValidateInt64 reports a failed check on the attribute's path.
func (r int64Rule) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := r.check(req.ConfigValue.ValueInt64()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, summaryInvalid, err.Error())
	}
}

// notZeroRule refuses 0, which the appliance stores as "not set": null is
// the only way to ask for the default, so the state matches the
// configuration. Other bounds are the model's (checked in ValidateConfig).
func notZeroRule(unset string) validator.Int64 {
	return int64Rule{description: "not 0", check: func(n int64) error {
		if n == 0 {
			return fmt.Errorf("must not be 0: leave it out for %s", unset)
		}
		return nil
	}}
}

func regexRule() validator.String {
	return checkRule("an RE2 regular expression", model.CheckRegex)
}

// guardrailsModel maps the guardrails of a connection or an identity
// binding (model.Guardrails).
type guardrailsModel struct {
	DenyPathPatterns      types.List  `tfsdk:"deny_path_patterns"`
	DenyQueryPatterns     types.List  `tfsdk:"deny_query_patterns"`
	DenyBodyPatterns      types.List  `tfsdk:"deny_body_patterns"`
	MaxRequestBodyBytes   types.Int64 `tfsdk:"max_request_body_bytes"`
	AllowedContentTypes   types.List  `tfsdk:"allowed_content_types"`
	AllowedJSONRPCMethods types.List  `tfsdk:"allowed_jsonrpc_methods"`
	AllowedMCPTools       types.List  `tfsdk:"allowed_mcp_tools"`
}

// guardrailsAttribute is the schema of the guardrails of a connection or
// an identity binding; scope says whose requests they apply to.
func guardrailsAttribute(description string) schema.SingleNestedAttribute {
	list := func(desc string, elem ...validator.String) schema.ListAttribute {
		v := []validator.List{listvalidator.SizeAtLeast(1)}
		if len(elem) > 0 {
			v = append(v, listvalidator.ValueStringsAre(elem...))
		}
		return schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: desc, Validators: v}
	}
	return schema.SingleNestedAttribute{
		Optional:            true,
		MarkdownDescription: description,
		Attributes: map[string]schema.Attribute{
			"deny_path_patterns": list("RE2 regular expressions over the request path; a request whose path matches "+
				"one is denied, e.g. `[\"^/admin/\", \"/delete$\"]`.", regexRule()),
			"deny_query_patterns": list("RE2 regular expressions over the raw query string; a match denies the "+
				"request, e.g. `[\"(^|&)force=true\"]`.", regexRule()),
			"deny_body_patterns": list("RE2 regular expressions over the request body; a match denies the request, "+
				"e.g. `[\"DROP\\\\s+TABLE\"]`. Not for `grpc` connections (the body is a stream).", regexRule()),
			"max_request_body_bytes": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "The largest request body allowed, in bytes; larger requests are denied. Leave it " +
					"out for no cap beyond the gateway's own. Not for `grpc` connections.",
				Validators: []validator.Int64{notZeroRule("no cap")},
			},
			"allowed_content_types": list("The media types a request body may have, without parameters, e.g. " +
				"`[\"application/json\"]`; any when unset."),
			"allowed_jsonrpc_methods": list("The JSON-RPC 2.0 methods a request may call (globs, e.g. "+
				"`[\"tools/*\", \"initialize\"]`; batches included); any when unset. Not for `grpc` connections.", globRule()),
			"allowed_mcp_tools": list("The Model Context Protocol tools a `tools/call` may name (globs, e.g. "+
				"`[\"search_*\"]`); any when unset. Not for `grpc` connections.", globRule()),
		},
	}
}

// empty reports whether no guardrail is set.
func (g *guardrailsModel) empty() bool {
	return g.DenyPathPatterns.IsNull() && g.DenyQueryPatterns.IsNull() && g.DenyBodyPatterns.IsNull() &&
		g.MaxRequestBodyBytes.IsNull() && g.AllowedContentTypes.IsNull() && g.AllowedJSONRPCMethods.IsNull() &&
		g.AllowedMCPTools.IsNull()
}

// spec converts the guardrails to the model (nil for none); ok is false
// when a value is unknown.
func (g *guardrailsModel) spec(ctx context.Context) (*model.Guardrails, bool) {
	if g == nil {
		return nil, true
	}
	s := &model.Guardrails{MaxRequestBodyBytes: g.MaxRequestBodyBytes.ValueInt64()}
	ok := known(g.MaxRequestBodyBytes)
	for _, f := range []struct {
		dst *[]string
		src types.List
	}{
		{&s.DenyPathPatterns, g.DenyPathPatterns}, {&s.DenyQueryPatterns, g.DenyQueryPatterns},
		{&s.DenyBodyPatterns, g.DenyBodyPatterns}, {&s.AllowedContentTypes, g.AllowedContentTypes},
		{&s.AllowedJSONRPCMethods, g.AllowedJSONRPCMethods}, {&s.AllowedMCPTools, g.AllowedMCPTools},
	} {
		var fok bool
		*f.dst, fok = setStrings(ctx, f.src)
		ok = ok && fok
	}
	return s, ok
}

// checkEmptyGuardrails refuses `guardrails = {}`, which would read back
// the same as no guardrails at all.
func checkEmptyGuardrails(g *guardrailsModel, diags *diag.Diagnostics) {
	if g != nil && g.empty() {
		diags.AddAttributeError(path.Root("guardrails"), summaryInvalid,
			"set at least one guardrail, or leave guardrails out for none")
	}
}

// guardrailsFromAPI converts guardrails read from the appliance, keeping
// the order of every list.
func guardrailsFromAPI(g *model.Guardrails) *guardrailsModel {
	if g == nil {
		return nil
	}
	return &guardrailsModel{
		DenyPathPatterns:      stringList(g.DenyPathPatterns),
		DenyQueryPatterns:     stringList(g.DenyQueryPatterns),
		DenyBodyPatterns:      stringList(g.DenyBodyPatterns),
		MaxRequestBodyBytes:   optInt64(g.MaxRequestBodyBytes),
		AllowedContentTypes:   stringList(g.AllowedContentTypes),
		AllowedJSONRPCMethods: stringList(g.AllowedJSONRPCMethods),
		AllowedMCPTools:       stringList(g.AllowedMCPTools),
	}
}

// readObject reads an object for a resource's Read. It returns nil when
// the object is gone, having removed the resource from state so the next
// plan creates it again, or when reading failed (the error is in resp).
func readObject[S any](ctx context.Context, col *client.Collection[S], id string, resp *resource.ReadResponse) *model.Object[S] {
	o, err := col.Get(ctx, id)
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return nil
	}
	if err != nil {
		resp.Diagnostics.AddError("Failed to read "+col.Kind().Title(), err.Error())
		return nil
	}
	return o
}

// deleteObject deletes an object for a resource's Delete within its delete
// timeout; an object already gone is not an error.
func deleteObject[S any](ctx context.Context, col *client.Collection[S], id string, to timeouts.Value, diags *diag.Diagnostics) {
	timeout, d := to.Delete(ctx, defaultDeleteTimeout)
	diags.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := col.Delete(ctx, id, client.WriteOptions{}); err != nil && !client.IsNotFound(err) {
		diags.AddError("Failed to delete "+col.Kind().Title(), err.Error())
	}
}
