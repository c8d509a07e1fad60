package provider

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// bindingBase is a configuration's gateway and connections for its
// bindings.
func bindingBase(t *testing.T) string {
	return fmt.Sprintf(gatewayTLS+`
resource "sallyport_gateway" "edge" {
  name            = "edge"
  listen_addr     = %q
  hostnames       = ["jobs.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
  oidc_providers = [{
    issuer_url = "https://token.actions.githubusercontent.com"
    audiences  = ["sallyport"]
  }]
}

resource "sallyport_connection" "jobs" {
  name         = "jobs"
  gateway_id   = sallyport_gateway.edge.id
  protocol     = "http"
  path_prefix  = "/jobs/"
  upstream_url = "https://executor.internal"
}

resource "sallyport_connection" "rpc" {
  name         = "rpc"
  gateway_id   = sallyport_gateway.edge.id
  protocol     = "grpc"
  path_prefix  = "/jobs.v1.Jobs/"
  upstream_url = "https://executor.internal:9443"
}
`, freeAddr(t))
}

func TestAccIdentityBinding_basic(t *testing.T) {
	e := newAccEnv(t)
	base := bindingBase(t)
	const addr = "sallyport_identity_binding.deploy"
	binding := func(body string) string {
		return e.config("%s", base+"resource \"sallyport_identity_binding\" \"deploy\" {\n"+body+"\n}\n")
	}
	e.test([]resource.TestStep{
		{
			// The expiry is written with an offset; the appliance keeps it
			// in UTC, and the plan after apply is still empty.
			Config: binding(`
  name            = "deploy"
  connection_id   = sallyport_connection.jobs.id
  issuer          = "https://token.actions.githubusercontent.com"
  subject         = "repo:acme/deploy:ref:refs/heads/*"
  claims          = { repository_owner = "acme", job_workflow_ref = "acme/*" }
  allowed_methods = ["POST", "GET"]
  allowed_paths   = ["/jobs/*", "/jobs"]
  expires_at      = "2030-06-01T12:00:00+02:00"
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^bind_`))),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("expires_at"), knownvalue.StringExact("2030-06-01T12:00:00+02:00")),
			},
			Check: func(s *terraform.State) error {
				bid, err := id(s, addr)
				if err != nil {
					return err
				}
				o, err := e.client.IdentityBindings().Get(context.Background(), bid)
				if err != nil {
					return err
				}
				if o.Spec.ExpiresAt != "2030-06-01T10:00:00Z" || !slices.Equal(o.Spec.AllowedMethods, []string{"GET", "POST"}) ||
					o.Spec.Claims["repository_owner"] != "acme" {
					return fmt.Errorf("the appliance holds %+v", o.Spec)
				}
				return nil
			},
		},
		{
			// A client-certificate binding instead, on the other
			// connection, without expiry: all in place.
			Config: binding(`
  name                 = "planner-cert"
  connection_id        = sallyport_connection.rpc.id
  client_cert_uri_san  = "spiffe://example.test/planner/*"
  allowed_grpc_methods = ["/jobs.v1.Jobs/*"]
`),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("issuer"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("claims"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("expires_at"), knownvalue.Null()),
			},
		},
		{
			Config: binding(`
  name          = "deploy"
  connection_id = sallyport_connection.jobs.id
  issuer        = "https://token.actions.githubusercontent.com"
  claims        = { groups = "deployers" }
  expires_at    = "2030-06-01T10:00:00Z"
`),
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true,
			ImportStateIdFunc: func(*terraform.State) (string, error) { return "edge/jobs/deploy", nil },
		},
		{
			// Replace (forced by taint).
			Config: binding(`
  name          = "deploy"
  connection_id = sallyport_connection.jobs.id
  issuer        = "https://token.actions.githubusercontent.com"
  claims        = { groups = "deployers" }
  expires_at    = "2030-06-01T10:00:00Z"
`),
			Taint: []string{addr},
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
			},
		},
	})
}

func TestAccIdentityBinding_disappears(t *testing.T) {
	e := newAccEnv(t)
	const addr = "sallyport_identity_binding.deploy"
	config := e.config("%s", bindingBase(t)+`
resource "sallyport_identity_binding" "deploy" {
  name          = "deploy"
  connection_id = sallyport_connection.jobs.id
  issuer        = "https://token.actions.githubusercontent.com"
  subject       = "repo:acme/deploy:*"
}
`)
	e.test([]resource.TestStep{
		{Config: config, Check: e.deleteOutOfBand(addr), ExpectNonEmptyPlan: true},
		{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
			},
			Check: e.objectExists(model.KindIdentityBinding, addr),
		},
	})
}

func TestAccIdentityBinding_invalid(t *testing.T) {
	e := newAccEnv(t)
	base := bindingBase(t)
	plan := func(body, want string) resource.TestStep {
		return resource.TestStep{
			Config:      e.config("%s", base+"resource \"sallyport_identity_binding\" \"bad\" {\n  name = \"bad\"\n  connection_id = sallyport_connection.jobs.id\n"+body+"\n}\n"),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(want),
		}
	}
	e.test([]resource.TestStep{
		plan(`issuer = "https://idp.example.test"`, `an issuer alone would admit`),
		plan(`issuer = "https://idp.example.test"
subject = "x"
client_cert_uri_san = "spiffe://example.test/*"`, `(?s)client_cert_uri_san = .*either a token.*not both`),
		plan(`client_cert_uri_san = "spiffe://example.test/*"
allowed_methods = ["FETCH"]`, `(?s)allowed_methods = .*must be one of`),
		plan(`client_cert_uri_san = "spiffe://example.test/*"
expires_at = "tomorrow"`, `(?s)expires_at = "tomorrow".*is not an RFC 3339 time`),
	})
}

func TestIdentityBindingValidateConfig(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "deploy", "connection_id": "conn_1", "issuer": "https://idp.example.test", "subject": "repo:*"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want map[string]string
	}{
		{name: "token", cfg: base(nil)},
		{name: "connection created in the same apply", cfg: base(map[string]any{"connection_id": unknown{}})},
		{name: "client certificate", cfg: map[string]any{"name": "x", "connection_id": "conn_1", "client_cert_uri_san": "spiffe://e.test/*"}},
		{name: "nobody", cfg: map[string]any{"name": "x", "connection_id": "conn_1"},
			want: map[string]string{"issuer": "a binding must say whom it admits"}},
		{name: "issuer alone", cfg: base(map[string]any{"subject": nil}),
			want: map[string]string{"subject": "an issuer alone"}},
		{name: "subject without issuer", cfg: base(map[string]any{"issuer": nil}),
			want: map[string]string{"issuer": "required with subject or claims"}},
		{name: "token and certificate", cfg: base(map[string]any{"client_cert_uri_san": "spiffe://e.test/*"}),
			want: map[string]string{"client_cert_uri_san": "not both"}},
		{name: "bad subject glob, reported once", cfg: base(map[string]any{"subject": "repo:[*"}),
			want: map[string]string{"subject": "not a valid glob pattern"}},
		{name: "reserved claim", cfg: base(map[string]any{"claims": map[string]any{"aud": "x"}}),
			want: map[string]string{`claims["aud"]`: "checked by the gateway itself"}},
		{name: "empty claim value", cfg: base(map[string]any{"claims": map[string]any{"https://example.test/groups": ""}}),
			want: map[string]string{`claims["https://example.test/groups"]`: "must not be empty"}},
		{name: "bad method", cfg: base(map[string]any{"allowed_methods": []any{"GET", "FETCH"}}),
			want: map[string]string{`allowed_methods["FETCH"]`: "must be one of"}},
		{name: "relative path", cfg: base(map[string]any{"allowed_paths": []any{"/ok", "jobs/*"}}),
			want: map[string]string{`allowed_paths["jobs/*"]`: "must start with '/'"}},
		{name: "bad gRPC method", cfg: base(map[string]any{"allowed_grpc_methods": []any{"jobs.v1.Jobs/Run"}}),
			want: map[string]string{`allowed_grpc_methods["jobs.v1.Jobs/Run"]`: "full method name"}},
		{name: "bad expiry, reported once", cfg: base(map[string]any{"expires_at": "2030-01-01"}),
			want: map[string]string{"expires_at": "is not an RFC 3339 time"}},
		{name: "empty allow-list", cfg: base(map[string]any{"allowed_methods": []any{}}),
			want: map[string]string{"allowed_methods": "at least 1"}},
		{name: "guardrails", cfg: base(map[string]any{"guardrails": map[string]any{"deny_path_patterns": []any{"^/admin/"},
			"allowed_jsonrpc_methods": []any{"tools/*"}, "allowed_mcp_tools": []any{"get_*"}}})},
		{name: "empty guardrails", cfg: base(map[string]any{"guardrails": map[string]any{}}),
			want: map[string]string{"guardrails": "set at least one guardrail"}},
		{name: "bad body pattern, reported once", cfg: base(map[string]any{"guardrails": map[string]any{"deny_body_patterns": []any{"[a-"}}}),
			want: map[string]string{"guardrails.deny_body_patterns[0]": "not a valid regular expression"}},
		{name: "empty tool glob", cfg: base(map[string]any{"guardrails": map[string]any{"allowed_mcp_tools": []any{"ok", ""}}}),
			want: map[string]string{"guardrails.allowed_mcp_tools[1]": "must not be empty"}},
		{name: "body cap 0", cfg: base(map[string]any{"guardrails": map[string]any{"max_request_body_bytes": 0}}),
			want: map[string]string{"guardrails.max_request_body_bytes": "leave it out for no cap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, validateResource(t, "sallyport_identity_binding", tc.cfg), tc.want)
		})
	}
}

func TestAccIdentityBinding_guardrails(t *testing.T) {
	e := newAccEnv(t)
	base := bindingBase(t)
	const addr = "sallyport_identity_binding.agent"
	binding := func(body string) string {
		if !strings.Contains(body, "connection_id") {
			body = "  connection_id = sallyport_connection.jobs.id\n" + body
		}
		return e.config("%s", base+`
resource "sallyport_identity_binding" "agent" {
  name          = "agent"
  issuer        = "https://token.actions.githubusercontent.com"
  subject       = "repo:acme/agent:*"
`+body+"\n}\n")
	}
	// holds checks, through the client, the guardrails the appliance holds
	// and that it enforces the binding.
	holds := func(want *model.Guardrails) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			bid, err := id(s, addr)
			if err != nil {
				return err
			}
			o, err := e.client.IdentityBindings().Get(context.Background(), bid)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(o.Spec.Guardrails, want) {
				return fmt.Errorf("the appliance holds guardrails %+v, want %+v", o.Spec.Guardrails, want)
			}
			if !o.Status.Ready {
				return fmt.Errorf("the binding is not ready: %s", o.Status.Message)
			}
			return nil
		}
	}
	e.test([]resource.TestStep{
		{
			Config: binding(`
  guardrails = {
    deny_path_patterns      = ["^/jobs/.*/delete$", "^/jobs/admin"]
    deny_body_patterns      = ["\"force\"\\s*:\\s*true"]
    max_request_body_bytes  = 65536
    allowed_content_types   = ["application/json"]
    allowed_jsonrpc_methods = ["tools/list", "tools/call"]
    allowed_mcp_tools       = ["list_*", "get_job"]
  }
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("guardrails").AtMapKey("allowed_mcp_tools"),
					knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("list_*"), knownvalue.StringExact("get_job")})),
			},
			Check: holds(&model.Guardrails{
				DenyPathPatterns: []string{"^/jobs/.*/delete$", "^/jobs/admin"}, DenyBodyPatterns: []string{`"force"\s*:\s*true`},
				MaxRequestBodyBytes: 65536, AllowedContentTypes: []string{"application/json"},
				AllowedJSONRPCMethods: []string{"tools/list", "tools/call"}, AllowedMCPTools: []string{"list_*", "get_job"},
			}),
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true},
		{
			// In place: rules change and reorder, others go.
			Config: binding(`
  guardrails = {
    deny_path_patterns = ["^/jobs/admin", "^/jobs/.*/cancel$"]
    allowed_mcp_tools  = ["get_job"]
  }
`),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
			},
			Check: holds(&model.Guardrails{DenyPathPatterns: []string{"^/jobs/admin", "^/jobs/.*/cancel$"}, AllowedMCPTools: []string{"get_job"}}),
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true},
		{
			// On a grpc connection, path guardrails apply.
			Config: binding(`
  connection_id = sallyport_connection.rpc.id
  guardrails = {
    deny_path_patterns = ["/Delete$"]
  }
`),
			Check: holds(&model.Guardrails{DenyPathPatterns: []string{"/Delete$"}}),
		},
		{
			Config: binding(""),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("guardrails"), knownvalue.Null()),
			},
			Check: holds(nil),
		},
	})
}
