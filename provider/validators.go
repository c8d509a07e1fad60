package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// The validators below run at plan time on configured values. Configure
// applies the same check functions to values taken from the environment, so
// each rule exists once.

// stringRule is a validator.String built from a check function. Null and
// unknown values are skipped: they are checked once known, or in Configure
// when they come from the environment.
type stringRule struct {
	summary     string
	description string
	check       func(string) error
}

var _ validator.String = stringRule{}

// Description describes the rule in plain text.
func (r stringRule) Description(context.Context) string { return r.description }

// MarkdownDescription describes the rule in Markdown.
func (r stringRule) MarkdownDescription(context.Context) string { return r.description }

// ValidateString reports a failed check on the attribute's path.
func (r stringRule) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := r.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, r.summary, err.Error())
	}
}

func httpsURLRule() validator.String {
	return stringRule{summaryEndpoint, "value must be an https URL", checkHTTPSURL}
}

func certPEMRule() validator.String {
	return stringRule{summaryCACert, "value must be a PEM certificate", checkCertPEM}
}

func fingerprintRule() validator.String {
	return stringRule{summaryFingerprint, "value must be 64 hex characters, colons allowed",
		func(s string) error { _, err := normalizeFingerprint(s); return err }}
}

func durationRule() validator.String {
	return stringRule{summaryTimeout, "value must be a positive duration such as 30s",
		func(s string) error { _, err := parseTimeout(s); return err }}
}
