package model_test

import (
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

func TestChecks(t *testing.T) {
	cases := []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{"name", model.CheckName, []string{"a", "edge-1", "ci_runner.v2"}, []string{"", "-a", "a b", "a/b", string(make([]byte, 64))}},
		{"hostname", model.CheckHostname, []string{"a.test", "*.example.com", "x-1.y"}, []string{"", "A.test", "10.0.0.1", "a..b", "-a.b", "a_b.c", "*.*.c"}},
		{"listen addr", model.CheckListenAddr, []string{":443", "0.0.0.0:443", "[::1]:8443", "localhost:1"}, []string{"443", "host:443", "1.2.3.4:0", "1.2.3.4:70000"}},
		{"path prefix", model.CheckPathPrefix, []string{"/", "/jobs", "/jobs/v1/"}, []string{"jobs", "/a/../b", "/a//b", "/%2e", "/a\\b", "/a?b", "/a*"}},
		{"grpc method", model.CheckGRPCMethod, []string{"/pkg.Svc/Method", "/pkg.Svc/*"}, []string{"pkg.Svc/M", "/pkg.Svc", "//M", "/a/b/c"}},
		{"json path", model.CheckJSONPath, []string{"$.a", "$..token", "$.data[*].password", "$['x y']", "$.a[0].*"}, []string{"", "a.b", "$", "$.a[", "$.a b"}},
		{"regex", model.CheckRegex, []string{"a+", `(?i)drop\s+table`}, []string{"", "(", "a{2,1}"}},
		{"header name", model.CheckHeaderName, []string{"Authorization", "X-Api-Key"}, []string{"", "X Key", "X:Key"}},
		{"header value", model.CheckHeaderValue, []string{"Bearer x", "a\tb"}, []string{"", "a\r\nb", "a\x00"}},
		{"email", model.CheckEmail, []string{"ops@example.com"}, []string{"ops", "Ops <ops@example.com>"}},
		{"duration", func(s string) error { return model.CheckDuration(s, time.Millisecond, time.Hour) }, []string{"1s", "59m"}, []string{"", "1", "-1s", "2h"}},
	}
	for _, c := range cases {
		for _, g := range c.good {
			if err := c.check(g); err != nil {
				t.Errorf("%s %q: unexpected error %v", c.name, g, err)
			}
		}
		for _, b := range c.bad {
			if err := c.check(b); err == nil {
				t.Errorf("%s %q: accepted", c.name, b)
			}
		}
	}
}

func TestServiceURL(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"https://idp.test", true},
		{"https://127.0.0.1:8443/realm", true},
		{"http://127.0.0.1:8080", false},
		{"https://user:pw@idp.test", false},
		{"https://idp.test/#frag", false},
		{"https:///path", false},
		{"https://idp.test:99999", false},
	} {
		_, err := model.CheckServiceURL(c.url, "https")
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%t", c.url, err, c.ok)
		}
	}
}

func TestEnforcementValidation(t *testing.T) {
	spec := &model.ConnectionSpec{
		GatewayID: "gw_1", Protocol: model.ProtocolHTTP, Hostname: "a.test", UpstreamURL: "https://e.test",
		Recording: &model.RecordingSpec{Enabled: true, MaxBodyBytes: -2, OnDiskFull: "panic"},
		Masking: []model.MaskingRule{
			{JSONPath: "$.password"},
			{JSONPath: "$.a", Regex: "x"},
			{Detector: "credit_card"},
			{Regex: "(", Replacement: "shred"},
		},
		Guardrails: &model.Guardrails{DenyBodyPatterns: []string{"("}, AllowedContentTypes: []string{"json"}, AllowedMCPTools: []string{""}},
	}
	got := map[string]bool{}
	for _, p := range spec.Validate(func(string) (string, bool) { return "", false }) {
		got[p.Field] = true
	}
	for _, f := range []string{
		"spec.recording.max_body_bytes", "spec.recording.on_disk_full", "spec.masking[1]", "spec.masking[2].detector",
		"spec.masking[3].regex", "spec.masking[3].replacement", "spec.guardrails.deny_body_patterns[0]",
		"spec.guardrails.allowed_content_types[0]", "spec.guardrails.allowed_mcp_tools[0]",
	} {
		if !got[f] {
			t.Errorf("no problem at %s; got %v", f, got)
		}
	}
	if got["spec.masking[0]"] || got["spec.masking[0].json_path"] {
		t.Errorf("a valid masking rule was refused: %v", got)
	}
}
