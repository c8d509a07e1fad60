package provider

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// connectionBase is a configuration's gateways for its connections, and the
// ephemeral variable its injected headers come from (as they should in real
// configurations: a literal would be part of the configuration that
// `terraform show -json PLAN` prints).
func connectionBase(e *accEnv, t *testing.T) string {
	return fmt.Sprintf(gatewayTLS+`
variable "headers" {
  type      = map(string)
  sensitive = true
  ephemeral = true
  default   = null
}

resource "sallyport_gateway" "a" {
  name            = "gw-a"
  listen_addr     = %q
  hostnames       = ["a.example.test", "*.a.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
}

resource "sallyport_gateway" "b" {
  name            = "gw-b"
  listen_addr     = %q
  hostnames       = ["b.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
}

resource "sallyport_tls_settings" "upstream" {
  name        = "upstream"
  certificate = { source = "self_signed" }
  server_name = "executor.internal"
}
`, freeAddr(t), freeAddr(t))
}

func headers(kv ...string) config.Variables {
	m := map[string]config.Variable{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = config.StringVariable(kv[i+1])
	}
	return config.Variables{"headers": config.MapVariable(m)}
}

func TestAccConnection_basic(t *testing.T) {
	e := newAccEnv(t)
	base := connectionBase(e, t)
	token1, token2, apiKey := secretValue(t, "Bearer acc-token-"), secretValue(t, "Bearer acc-token-"), secretValue(t, "acc-api-key-")
	secrets := noSecrets{token1, token2, apiKey}
	const addr = "sallyport_connection.jobs"
	conn := func(body string) string {
		return e.config("%s", base+"resource \"sallyport_connection\" \"jobs\" {\n"+body+"\n}\n")
	}
	noSecretsAnywhere := func(c resource.TestStep) resource.TestStep {
		c.ConfigPlanChecks.PreApply = append(c.ConfigPlanChecks.PreApply, secrets)
		c.ConfigPlanChecks.PostApplyPostRefresh = append(c.ConfigPlanChecks.PostApplyPostRefresh, secrets)
		c.ConfigStateChecks = append(c.ConfigStateChecks, secrets)
		c.Check = resource.ComposeAggregateTestCheckFunc(c.Check, secrets.stateFiles)
		return c
	}
	headerNames := func(names ...string) statecheck.StateCheck {
		var checks []knownvalue.Check
		for _, n := range names {
			checks = append(checks, knownvalue.StringExact(n))
		}
		return statecheck.ExpectKnownValue(addr, tfjsonpath.New("inject_header_names"), knownvalue.SetExact(checks))
	}
	e.test([]resource.TestStep{
		noSecretsAnywhere(resource.TestStep{
			Config: conn(`
  name                      = "jobs"
  gateway_id                = sallyport_gateway.a.id
  protocol                  = "http"
  hostname                  = "jobs.a.example.test"
  path_prefix               = "/v1/"
  upstream_url              = "https://executor.internal:8443/api"
  upstream_tls_settings_id  = sallyport_tls_settings.upstream.id
  inject_headers_wo         = var.headers
  inject_headers_wo_version = 1
`),
			ConfigVariables: headers("Authorization", token1, "X-Api-Key", apiKey),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				// The names are known at plan time, the values never shown.
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("inject_header_names"),
					knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("Authorization"), knownvalue.StringExact("X-Api-Key")})),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^conn_`))),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("ready"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("inject_headers_wo"), knownvalue.Null()),
				headerNames("Authorization", "X-Api-Key"),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				e.storedSecret(addr, model.InjectHeaderPath("Authorization"), token1),
				e.storedSecret(addr, model.InjectHeaderPath("X-Api-Key"), apiKey),
			),
		}),
		noSecretsAnywhere(resource.TestStep{
			// Routing, upstream, timeouts, name and gateway change in place;
			// the version is unchanged, so the headers are kept.
			Config: conn(`
  name                      = "jobs-v2"
  gateway_id                = sallyport_gateway.b.id
  protocol                  = "grpc"
  hostname                  = "b.example.test"
  upstream_url              = "https://executor.internal:9443"
  inject_headers_wo_version = 1
  timeouts = {
    connect         = "5s"
    response_header = "2m"
  }
`),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				headerNames("Authorization", "X-Api-Key"),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("timeouts").AtMapKey("idle"), knownvalue.Null()),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				e.storedSecret(addr, model.InjectHeaderPath("Authorization"), token1),
				e.storedSecret(addr, model.InjectHeaderPath("X-Api-Key"), apiKey),
				func(s *terraform.State) error {
					cid, err := id(s, addr)
					if err != nil {
						return err
					}
					o, err := e.client.Connections().Get(context.Background(), cid)
					if err != nil {
						return err
					}
					gw := s.RootModule().Resources["sallyport_gateway.b"].Primary.ID
					if o.Name != "jobs-v2" || o.Spec.GatewayID != gw || o.Spec.Protocol != "grpc" || o.Spec.PathPrefix != "" ||
						o.Spec.UpstreamTLSSettingsID != "" || o.Spec.Timeouts == nil || o.Spec.Timeouts.Connect != "5s" {
						return fmt.Errorf("the appliance holds %s %+v", o.Name, o.Spec)
					}
					return nil
				},
			),
		}),
		noSecretsAnywhere(resource.TestStep{
			// Rotation: a new version sends the configured headers, and
			// only those.
			Config: conn(`
  name                      = "jobs-v2"
  gateway_id                = sallyport_gateway.b.id
  protocol                  = "grpc"
  hostname                  = "b.example.test"
  upstream_url              = "https://executor.internal:9443"
  inject_headers_wo         = var.headers
  inject_headers_wo_version = 2
`),
			ConfigVariables:   headers("Authorization", token2),
			ConfigStateChecks: []statecheck.StateCheck{headerNames("Authorization")},
			Check: resource.ComposeAggregateTestCheckFunc(
				e.storedSecret(addr, model.InjectHeaderPath("Authorization"), token2),
				e.storedSecret(addr, model.InjectHeaderPath("X-Api-Key"), ""),
			),
		}),
		{
			// A new version without headers is refused at plan time.
			Config: conn(`
  name                      = "jobs-v2"
  gateway_id                = sallyport_gateway.b.id
  protocol                  = "grpc"
  hostname                  = "b.example.test"
  upstream_url              = "https://executor.internal:9443"
  inject_headers_wo_version = 3
`),
			ExpectError: regexp.MustCompile(`(?s)Missing write-only value.*inject_headers_wo is not set`),
		},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true,
			ConfigVariables:         headers("Authorization", token2),
			ImportStateVerifyIgnore: []string{"inject_headers_wo_version"},
		},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true,
			ConfigVariables:         headers("Authorization", token2),
			ImportStateVerifyIgnore: []string{"inject_headers_wo_version"},
			ImportStateIdFunc:       func(*terraform.State) (string, error) { return "gw-b/jobs-v2", nil },
		},
		noSecretsAnywhere(resource.TestStep{
			// Removing the headers and their version removes them.
			Config: conn(`
  name         = "jobs-v2"
  gateway_id   = sallyport_gateway.b.id
  protocol     = "grpc"
  hostname     = "b.example.test"
  upstream_url = "https://executor.internal:9443"
`) + `
data "sallyport_connection" "jobs" {
  gateway_id = sallyport_gateway.b.id
  name       = sallyport_connection.jobs.name
}
`,
			ConfigVariables: headers(),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("inject_header_names"), knownvalue.Null()),
				statecheck.CompareValuePairs(addr, tfjsonpath.New("id"), "data.sallyport_connection.jobs", tfjsonpath.New("id"), compare.ValuesSame()),
				statecheck.CompareValuePairs(addr, tfjsonpath.New("upstream_url"), "data.sallyport_connection.jobs", tfjsonpath.New("upstream_url"), compare.ValuesSame()),
				statecheck.ExpectKnownValue("data.sallyport_connection.jobs", tfjsonpath.New("protocol"), knownvalue.StringExact("grpc")),
				statecheck.ExpectKnownValue("data.sallyport_connection.jobs", tfjsonpath.New("ready"), knownvalue.Bool(true)),
			},
			Check: e.storedSecret(addr, model.InjectHeaderPath("Authorization"), ""),
		}),
		noSecretsAnywhere(resource.TestStep{
			// Replace (forced by taint): the new connection gets the
			// headers again.
			Config: conn(`
  name                      = "jobs-v2"
  gateway_id                = sallyport_gateway.b.id
  protocol                  = "grpc"
  hostname                  = "b.example.test"
  upstream_url              = "https://executor.internal:9443"
  inject_headers_wo         = var.headers
  inject_headers_wo_version = 4
`),
			ConfigVariables: headers("Authorization", token1),
			Taint:           []string{addr},
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
			},
			Check: e.storedSecret(addr, model.InjectHeaderPath("Authorization"), token1),
		}),
	})
}

func TestAccConnection_disappears(t *testing.T) {
	e := newAccEnv(t)
	const addr = "sallyport_connection.jobs"
	config := e.config("%s", connectionBase(e, t)+`
resource "sallyport_connection" "jobs" {
  name         = "jobs"
  gateway_id   = sallyport_gateway.a.id
  protocol     = "tcp"
  hostname     = "db.a.example.test"
  upstream_url = "tls://db.internal:5432"
}
`)
	vars := headers()
	e.test([]resource.TestStep{
		{Config: config, ConfigVariables: vars, Check: e.deleteOutOfBand(addr), ExpectNonEmptyPlan: true},
		{
			Config: config, ConfigVariables: vars,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
			},
			Check: e.objectExists(model.KindConnection, addr),
		},
	})
}

func TestAccConnection_invalid(t *testing.T) {
	e := newAccEnv(t)
	base := connectionBase(e, t)
	plan := func(body, want string, vars config.Variables) resource.TestStep {
		return resource.TestStep{
			Config:          e.config(base+"resource \"sallyport_connection\" \"bad\" {\n  name = \"bad\"\n  gateway_id = sallyport_gateway.a.id\n%s\n}\n", body),
			ConfigVariables: vars,
			PlanOnly:        true,
			ExpectError:     regexp.MustCompile(want),
		}
	}
	e.test([]resource.TestStep{
		plan(`protocol = "tcp"
upstream_url = "tls://db.internal:5432"`, `required for protocol "tcp"`, headers()),
		plan(`protocol = "http"
hostname = "a.example.test"
upstream_url = "http://executor.internal"`, `(?s)upstream_url = "http://executor.internal".*scheme must be https`, headers()),
		plan(`protocol = "http"
path_prefix = "/a/../b"
upstream_url = "https://executor.internal"`, `(?s)path_prefix = "/a/../b".*must not contain empty`, headers()),
		plan(`protocol = "http"
hostname = "a.example.test"
upstream_url = "https://executor.internal"
inject_headers_wo = var.headers`, `"Host" is managed by the gateway`, headers("Host", "x")),
		plan(`protocol = "http"
hostname = "a.example.test"
upstream_url = "https://executor.internal"
timeouts = {}`, `set at least one of connect`, headers()),
		plan(`protocol = "http"
hostname = "a.example.test"
upstream_url = "https://executor.internal"
masking = [{ json_path = "$.a" }, { regex = "sk_(live" }]`, `(?s)not a valid regular expression.*missing closing \).*sk_\(live`, headers()),
		plan(`protocol = "http"
hostname = "a.example.test"
upstream_url = "https://executor.internal"
masking = [{ detector = "ssn" }]`, `(?s)must be one of "payment_card".*\(got "ssn"\)`, headers()),
		plan(`protocol = "grpc"
hostname = "a.example.test"
upstream_url = "https://executor.internal"
masking = [{ detector = "jwt" }]`, `(?s)masking = \[.*masking applies to http connections only`, headers()),
	})
}

func TestConnectionValidateConfigDuplicateHeader(t *testing.T) {
	diags := validateResource(t, "sallyport_connection", map[string]any{"name": "jobs", "gateway_id": "gw_1", "protocol": "http",
		"hostname": "a.example.test", "upstream_url": "https://executor.internal",
		"inject_headers_wo": map[string]any{"x-api-key": "a", "X-Api-Key": "b"}})
	// Either spelling is reported (map order), once.
	if len(diags) != 1 || !regexp.MustCompile(`^inject_headers_wo\["(x-api-key|X-Api-Key)"\]$`).MatchString(attrPath(diags[0].Attribute)) ||
		!regexp.MustCompile(`case-insensitive`).MatchString(diags[0].Detail) {
		t.Errorf("diagnostics: %s", describe(diags))
	}
}

func TestConnectionValidateConfig(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "jobs", "gateway_id": "gw_1", "protocol": "http", "hostname": "a.example.test", "upstream_url": "https://executor.internal"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	hdrs := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want map[string]string
	}{
		{name: "minimal", cfg: base(nil)},
		{name: "gateway created in the same apply", cfg: base(map[string]any{"gateway_id": unknown{}, "upstream_tls_settings_id": unknown{}})},
		{name: "headers", cfg: base(map[string]any{"inject_headers_wo": hdrs("Authorization", "Bearer x"), "inject_headers_wo_version": 1})},
		{name: "no route", cfg: base(map[string]any{"hostname": nil}),
			want: map[string]string{"hostname": "set hostname, path_prefix or both"}},
		{name: "bad protocol", cfg: base(map[string]any{"protocol": "udp"}),
			want: map[string]string{"protocol": "must be one of"}},
		{name: "tcp with a path", cfg: base(map[string]any{"protocol": "tcp", "path_prefix": "/x", "upstream_url": "tls://db.internal:5432"}),
			want: map[string]string{"path_prefix": `not allowed for protocol "tcp"`}},
		{name: "tcp with headers", cfg: base(map[string]any{"protocol": "tcp", "upstream_url": "tls://db.internal:5432", "inject_headers_wo": hdrs("Authorization", "x")}),
			want: map[string]string{"inject_headers_wo": `not allowed for protocol "tcp"`}},
		{name: "tcp upstream without port", cfg: base(map[string]any{"protocol": "tcp", "upstream_url": "tls://db.internal"}),
			want: map[string]string{"upstream_url": "tls://HOST:PORT"}},
		{name: "reserved header", cfg: base(map[string]any{"inject_headers_wo": hdrs("X-Forwarded-For", "x")}),
			want: map[string]string{`inject_headers_wo["X-Forwarded-For"]`: "managed by the gateway"}},
		{name: "bad header name, reported once", cfg: base(map[string]any{"inject_headers_wo": hdrs("Bad Header", "x")}),
			want: map[string]string{`inject_headers_wo["Bad Header"]`: "not a valid header name"}},
		{name: "header value with a newline, not quoted", cfg: base(map[string]any{"inject_headers_wo": hdrs("Authorization", "a\r\nEvil: 1")}),
			want: map[string]string{`inject_headers_wo["Authorization"]`: "must not contain control characters"}},
		{name: "bad timeout", cfg: base(map[string]any{"timeouts": map[string]any{"connect": "2h"}}),
			want: map[string]string{"timeouts.connect": "must be between 1ms and 1h0m0s"}},
		{name: "empty timeouts", cfg: base(map[string]any{"timeouts": map[string]any{}}),
			want: map[string]string{"timeouts": "set at least one"}},
		{name: "empty headers", cfg: base(map[string]any{"inject_headers_wo": map[string]any{}}),
			want: map[string]string{"inject_headers_wo": "at least 1"}},
		{name: "enforcement", cfg: base(map[string]any{
			"recording": map[string]any{"enabled": true, "max_body_bytes": -1, "on_disk_full": "refuse"},
			"masking": []any{map[string]any{"json_path": "$..token"}, map[string]any{"regex": "sk_[a-z]+", "replacement": "hash"},
				map[string]any{"detector": "iban", "replacement": "partial"}},
			"guardrails": map[string]any{"deny_path_patterns": []any{"^/admin/"}, "max_request_body_bytes": 1024,
				"allowed_content_types": []any{"application/json"}, "allowed_mcp_tools": []any{"search_*"}},
		})},
		{name: "masking rule value known at apply", cfg: base(map[string]any{"masking": []any{map[string]any{"regex": unknown{}}}})},
		{name: "bad masking regex, reported once", cfg: base(map[string]any{"masking": []any{map[string]any{"json_path": "$.a"}, map[string]any{"regex": "a(b"}}}),
			want: map[string]string{"masking[1].regex": "not a valid regular expression"}},
		{name: "unknown detector, reported once", cfg: base(map[string]any{"masking": []any{map[string]any{"detector": "ssn"}}}),
			want: map[string]string{"masking[0].detector": `must be one of "payment_card"`}},
		{name: "bad JSONPath", cfg: base(map[string]any{"masking": []any{map[string]any{"json_path": "data.password"}}}),
			want: map[string]string{"masking[0].json_path": "not a supported JSONPath"}},
		{name: "two selectors", cfg: base(map[string]any{"masking": []any{map[string]any{"json_path": "$.a", "detector": "jwt"}}}),
			want: map[string]string{"masking[0]": "set exactly one of json_path, regex and detector"}},
		{name: "bad replacement", cfg: base(map[string]any{"masking": []any{map[string]any{"detector": "jwt", "replacement": "drop"}}}),
			want: map[string]string{"masking[0].replacement": "must be one of"}},
		{name: "empty masking", cfg: base(map[string]any{"masking": []any{}}),
			want: map[string]string{"masking": "at least 1"}},
		{name: "masking on grpc", cfg: base(map[string]any{"protocol": "grpc", "masking": []any{map[string]any{"detector": "jwt"}}}),
			want: map[string]string{"masking": "http connections only"}},
		{name: "masking on tcp", cfg: base(map[string]any{"protocol": "tcp", "upstream_url": "tls://db.internal:5432", "masking": []any{map[string]any{"detector": "jwt"}}}),
			want: map[string]string{"masking": "http connections only"}},
		{name: "recording body size 0", cfg: base(map[string]any{"recording": map[string]any{"enabled": true, "max_body_bytes": 0}}),
			want: map[string]string{"recording.max_body_bytes": "leave it out for the default"}},
		{name: "recording body size below -1", cfg: base(map[string]any{"recording": map[string]any{"enabled": true, "max_body_bytes": -2}}),
			want: map[string]string{"recording.max_body_bytes": "must be -1 (no bodies)"}},
		{name: "bad disk-full policy", cfg: base(map[string]any{"recording": map[string]any{"enabled": true, "on_disk_full": "drop"}}),
			want: map[string]string{"recording.on_disk_full": `must be one of "refuse", "continue"`}},
		{name: "recording without enabled", cfg: base(map[string]any{"recording": map[string]any{"on_disk_full": "refuse"}}),
			want: map[string]string{"recording.enabled": "Missing"}},
		{name: "empty guardrails", cfg: base(map[string]any{"guardrails": map[string]any{}}),
			want: map[string]string{"guardrails": "set at least one guardrail"}},
		{name: "bad deny pattern, reported once", cfg: base(map[string]any{"guardrails": map[string]any{"deny_query_patterns": []any{"ok", "(("}}}),
			want: map[string]string{"guardrails.deny_query_patterns[1]": "not a valid regular expression"}},
		{name: "bad content type", cfg: base(map[string]any{"guardrails": map[string]any{"allowed_content_types": []any{"application/json; charset=utf-8"}}}),
			want: map[string]string{"guardrails.allowed_content_types[0]": "must be a media type"}},
		{name: "negative body cap", cfg: base(map[string]any{"guardrails": map[string]any{"max_request_body_bytes": -1}}),
			want: map[string]string{"guardrails.max_request_body_bytes": "must not be negative"}},
		{name: "guardrails on tcp", cfg: base(map[string]any{"protocol": "tcp", "upstream_url": "tls://db.internal:5432",
			"guardrails": map[string]any{"deny_path_patterns": []any{"^/admin"}}}),
			want: map[string]string{"guardrails": "do not apply to a tcp connection"}},
		{name: "body guardrails on grpc", cfg: base(map[string]any{"protocol": "grpc",
			"guardrails": map[string]any{"deny_path_patterns": []any{"^/admin"}, "deny_body_patterns": []any{"x"}, "allowed_mcp_tools": []any{"x"}}}),
			want: map[string]string{"guardrails.deny_body_patterns": "streams request bodies", "guardrails.allowed_mcp_tools": "streams request bodies"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags := validateResource(t, "sallyport_connection", tc.cfg)
			wantErrors(t, diags, tc.want)
			for _, d := range diags {
				if regexp.MustCompile(`Evil|Bearer`).MatchString(d.Detail) {
					t.Errorf("a diagnostic quotes a header value: %s", d.Detail)
				}
			}
		})
	}
}

// connectionSpecIs checks, through the client, that the appliance holds the
// recording, masking and guardrails the configuration asked for: proof that
// the provider sent them, and did not drop or reorder anything.
func (e *accEnv) connectionSpecIs(address string, rec *model.RecordingSpec, masking []model.MaskingRule, g *model.Guardrails) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		cid, err := id(s, address)
		if err != nil {
			return err
		}
		o, err := e.client.Connections().Get(context.Background(), cid)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(o.Spec.Recording, rec) {
			return fmt.Errorf("the appliance holds recording %+v, want %+v", o.Spec.Recording, rec)
		}
		if !reflect.DeepEqual(o.Spec.Masking, masking) {
			return fmt.Errorf("the appliance holds masking %+v, want %+v", o.Spec.Masking, masking)
		}
		if !reflect.DeepEqual(o.Spec.Guardrails, g) {
			return fmt.Errorf("the appliance holds guardrails %+v, want %+v", o.Spec.Guardrails, g)
		}
		if !o.Status.Ready {
			return fmt.Errorf("the connection is not ready: %s", o.Status.Message)
		}
		return nil
	}
}

func TestAccConnection_enforcement(t *testing.T) {
	e := newAccEnv(t)
	base := connectionBase(e, t)
	const addr = "sallyport_connection.jobs"
	conn := func(body string) string {
		return e.config("%s", base+`
resource "sallyport_connection" "jobs" {
  name         = "jobs"
  gateway_id   = sallyport_gateway.a.id
  protocol     = "http"
  hostname     = "jobs.a.example.test"
  upstream_url = "https://executor.internal:8443"
`+body+"\n}\n")
	}
	e.test([]resource.TestStep{
		{
			// The rules are deliberately out of any sorted order: the
			// appliance keeps their order, and so must the state.
			Config: conn(`
  recording = {
    enabled        = true
    max_body_bytes = 4096
    on_disk_full   = "continue"
  }
  masking = [
    { json_path = "$..token" },
    { regex = "sk_live_[0-9a-zA-Z]{24}", replacement = "partial" },
    { detector = "payment_card", replacement = "hash" },
  ]
  guardrails = {
    deny_path_patterns      = ["^/admin/", "/delete$"]
    deny_query_patterns     = ["(^|&)force=true"]
    deny_body_patterns      = ["DROP\\s+TABLE"]
    max_request_body_bytes  = 1048576
    allowed_content_types   = ["application/json", "application/x-ndjson"]
    allowed_jsonrpc_methods = ["tools/*", "initialize"]
    allowed_mcp_tools       = ["search_*", "get_job"]
  }
`),
			ConfigVariables: headers(),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("masking").AtSliceIndex(1).AtMapKey("regex"), knownvalue.StringExact("sk_live_[0-9a-zA-Z]{24}")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("masking").AtSliceIndex(0).AtMapKey("replacement"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("guardrails").AtMapKey("deny_path_patterns"),
					knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("^/admin/"), knownvalue.StringExact("/delete$")})),
			},
			Check: e.connectionSpecIs(addr,
				&model.RecordingSpec{Enabled: true, MaxBodyBytes: 4096, OnDiskFull: "continue"},
				[]model.MaskingRule{
					{JSONPath: "$..token"},
					{Regex: "sk_live_[0-9a-zA-Z]{24}", Replacement: "partial"},
					{Detector: "payment_card", Replacement: "hash"},
				},
				&model.Guardrails{
					DenyPathPatterns: []string{"^/admin/", "/delete$"}, DenyQueryPatterns: []string{"(^|&)force=true"},
					DenyBodyPatterns: []string{`DROP\s+TABLE`}, MaxRequestBodyBytes: 1 << 20,
					AllowedContentTypes:   []string{"application/json", "application/x-ndjson"},
					AllowedJSONRPCMethods: []string{"tools/*", "initialize"}, AllowedMCPTools: []string{"search_*", "get_job"},
				}),
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true, ConfigVariables: headers()},
		{
			// In place: a rule changes, another moves, recording goes,
			// guardrails shrink.
			Config: conn(`
  masking = [
    { detector = "payment_card", replacement = "hash" },
    { json_path = "$.data[*].password" },
  ]
  guardrails = {
    deny_path_patterns = ["/delete$", "^/admin/"]
    allowed_mcp_tools  = ["get_job"]
  }
`),
			ConfigVariables: headers(),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("recording"), knownvalue.Null()),
			},
			Check: e.connectionSpecIs(addr, nil,
				[]model.MaskingRule{{Detector: "payment_card", Replacement: "hash"}, {JSONPath: "$.data[*].password"}},
				&model.Guardrails{DenyPathPatterns: []string{"/delete$", "^/admin/"}, AllowedMCPTools: []string{"get_job"}}),
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true, ConfigVariables: headers()},
		{
			// Recording that keeps no bodies, and nothing else.
			Config: conn(`
  recording = {
    enabled        = true
    max_body_bytes = -1
  }
`),
			ConfigVariables: headers(),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("masking"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("guardrails"), knownvalue.Null()),
			},
			Check: e.connectionSpecIs(addr, &model.RecordingSpec{Enabled: true, MaxBodyBytes: -1}, nil, nil),
		},
		{
			// Settings made through the API behind Terraform's back show up
			// as drift, not silently wiped or ignored.
			Config:          conn(""),
			ConfigVariables: headers(),
			Check: func(s *terraform.State) error {
				cid, err := id(s, addr)
				if err != nil {
					return err
				}
				ctx := context.Background()
				o, err := e.client.Connections().Get(ctx, cid)
				if err != nil {
					return err
				}
				o.Spec.Masking = []model.MaskingRule{{Detector: "jwt"}}
				_, err = e.client.Connections().Replace(ctx, o.ID, o.Name, o.Spec, client.WriteOptions{IfMatch: o.Generation})
				return err
			},
			ExpectNonEmptyPlan: true,
		},
		{
			Config:          conn(""),
			ConfigVariables: headers(),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
			},
			Check: e.connectionSpecIs(addr, nil, nil, nil),
		},
	})
}
