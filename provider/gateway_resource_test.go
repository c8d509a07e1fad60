package provider

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// gatewayTLS is a configuration's TLS settings for its gateways.
const gatewayTLS = `
resource "sallyport_tls_settings" "serving" {
  name        = "serving"
  certificate = { source = "self_signed" }
}
`

func TestAccGateway_basic(t *testing.T) {
	e := newAccEnv(t)
	listen1, listen2 := freeAddr(t), freeAddr(t)
	const addr = "sallyport_gateway.edge"
	e.test([]resource.TestStep{
		{
			// Hostnames are a set: the appliance sorts them, the plan after
			// apply stays empty.
			Config: e.config(gatewayTLS+`
resource "sallyport_gateway" "edge" {
  name            = "edge"
  listen_addr     = %q
  hostnames       = ["b.example.test", "a.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
}
`, listen1),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^gw_`))),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("ready"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("certificate").AtMapKey("sha256_fingerprint"), knownvalue.NotNull()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("oidc_providers"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("hostnames"),
					knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("a.example.test"), knownvalue.StringExact("b.example.test")})),
			},
		},
		{
			// Everything changes in place, including the TLS settings.
			Config: e.config(gatewayTLS+`
resource "sallyport_tls_settings" "other" {
  name        = "other"
  min_version = "1.3"
  certificate = { source = "self_signed" }
}

resource "sallyport_gateway" "edge" {
  name            = "edge-2"
  listen_addr     = %q
  hostnames       = ["a.example.test", "*.jobs.example.test"]
  tls_settings_id = sallyport_tls_settings.other.id
  oidc_providers = [
    {
      issuer_url         = "https://idp.example.test"
      audiences          = ["sallyport", "jobs"]
      allowed_algorithms = ["ES256", "RS256"]
      token_type         = "access"
    },
    {
      issuer_url = "https://login.example.test/realms/agents"
      audiences  = ["sallyport"]
    },
  ]
}
`, listen2),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
			},
			Check: func(s *terraform.State) error {
				gid, err := id(s, addr)
				if err != nil {
					return err
				}
				o, err := e.client.Gateways().Get(context.Background(), gid)
				if err != nil {
					return err
				}
				if o.Name != "edge-2" || o.Spec.ListenAddr != listen2 || len(o.Spec.OIDCProviders) != 2 ||
					!slices.Equal(o.Spec.OIDCProviders[0].Audiences, []string{"jobs", "sallyport"}) ||
					o.Spec.OIDCProviders[0].TokenType != "access" {
					return fmt.Errorf("the appliance holds %s %+v", o.Name, o.Spec)
				}
				return nil
			},
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true,
			ImportStateIdFunc: importByName(addr, func(a map[string]string) string { return a["name"] }),
		},
		{
			// The data source finds it by name and reports the same.
			Config: e.config(gatewayTLS+`
resource "sallyport_tls_settings" "other" {
  name        = "other"
  min_version = "1.3"
  certificate = { source = "self_signed" }
}

resource "sallyport_gateway" "edge" {
  name            = "edge-2"
  listen_addr     = %q
  hostnames       = ["a.example.test"]
  tls_settings_id = sallyport_tls_settings.other.id
}

data "sallyport_gateway" "edge" {
  name = sallyport_gateway.edge.name
}
`, listen2),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.CompareValuePairs(addr, tfjsonpath.New("id"), "data.sallyport_gateway.edge", tfjsonpath.New("id"), compare.ValuesSame()),
				statecheck.CompareValuePairs(addr, tfjsonpath.New("certificate"), "data.sallyport_gateway.edge", tfjsonpath.New("certificate"), compare.ValuesSame()),
				statecheck.CompareValuePairs(addr, tfjsonpath.New("hostnames"), "data.sallyport_gateway.edge", tfjsonpath.New("hostnames"), compare.ValuesSame()),
				statecheck.ExpectKnownValue("data.sallyport_gateway.edge", tfjsonpath.New("ready"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue("data.sallyport_gateway.edge", tfjsonpath.New("listen_addr"), knownvalue.StringExact(listen2)),
			},
		},
		{
			// Replace (forced by taint; nothing in the schema needs one):
			// the old gateway is deleted, then a new one created.
			Config: e.config(gatewayTLS+`
resource "sallyport_gateway" "edge" {
  name            = "edge-2"
  listen_addr     = %q
  hostnames       = ["a.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
}
`, listen1),
			Taint: []string{addr},
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("ready"), knownvalue.Bool(true)),
			},
		},
	})
}

func TestAccGateway_reconcileFails(t *testing.T) {
	e := newAccEnv(t)
	// The gateway's port is taken: the appliance stores the gateway but
	// cannot make it live, and says why.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	const addr = "sallyport_gateway.edge"
	config := e.config(gatewayTLS+`
resource "sallyport_gateway" "edge" {
  name            = "edge"
  listen_addr     = %q
  hostnames       = ["a.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
  timeouts        = { create = "1m" }
}
`, busy.Addr().String())
	e.test([]resource.TestStep{
		{
			Config:      config,
			ExpectError: regexp.MustCompile(`(?s)The appliance could not apply the gateway.*address already in use`),
		},
		{
			// The object exists and is in state, tainted. Once the port
			// is free, the next apply replaces it and it goes live.
			PreConfig: func() { busy.Close() },
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("ready"), knownvalue.Bool(true)),
			},
		},
	})
}

func TestAccGateway_disappears(t *testing.T) {
	e := newAccEnv(t)
	const addr = "sallyport_gateway.edge"
	config := e.config(gatewayTLS+`
resource "sallyport_gateway" "edge" {
  name            = "edge"
  listen_addr     = %q
  hostnames       = ["a.example.test"]
  tls_settings_id = sallyport_tls_settings.serving.id
}
`, freeAddr(t))
	e.test([]resource.TestStep{
		{Config: config, Check: e.deleteOutOfBand(addr), ExpectNonEmptyPlan: true},
		{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
			},
			Check: e.objectExists(model.KindGateway, addr),
		},
	})
}

func TestAccGateway_invalid(t *testing.T) {
	e := newAccEnv(t)
	plan := func(body, want string) resource.TestStep {
		return resource.TestStep{
			Config:      e.config(gatewayTLS+"resource \"sallyport_gateway\" \"bad\" {\n  tls_settings_id = sallyport_tls_settings.serving.id\n%s\n}\n", body),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(want),
		}
	}
	e.test([]resource.TestStep{
		plan(`name = "bad"
listen_addr = "443"
hostnames = ["a.example.test"]`, `(?s)listen_addr = "443".*must be HOST:PORT`),
		plan(`name = "bad"
listen_addr = "127.0.0.1:443"
hostnames = ["A.example.test"]`, `(?s)hostnames = .*"A.example.test" must be lower case`),
		plan(`name = "bad"
listen_addr = "127.0.0.1:443"
hostnames = ["a.example.test"]
oidc_providers = [{ issuer_url = "ftp://idp.example.test", audiences = ["x"] }]`, `scheme must be https`),
		plan(`name = "bad"
listen_addr = "127.0.0.1:443"
hostnames = ["a.example.test"]
oidc_providers = [{ issuer_url = "https://idp.example.test", audiences = ["x"], allowed_algorithms = ["none"] }]`, `must be one of "RS256"`),
		{
			// The data sources say what they did not find, on the name.
			Config: e.config(`
data "sallyport_gateway" "missing" {
  name = "no-such-gateway"
}
`),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Gateway not found.*no gateway named "no-such-gateway"`),
		},
	})
}

func TestGatewayValidateConfig(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "edge", "listen_addr": "0.0.0.0:443", "hostnames": []any{"a.example.test"}, "tls_settings_id": "tls_1"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	oidc := func(p map[string]any) map[string]any {
		return base(map[string]any{"oidc_providers": []any{map[string]any{"issuer_url": "https://ok.example.test", "audiences": []any{"a"}}, p}})
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want map[string]string
	}{
		{name: "minimal", cfg: base(nil)},
		{name: "tls settings created in the same apply", cfg: base(map[string]any{"tls_settings_id": unknown{}})},
		{name: "bad listen address", cfg: base(map[string]any{"listen_addr": "example.test:443"}),
			want: map[string]string{"listen_addr": "must be an IP address"}},
		{name: "bad hostname, reported once on its element", cfg: base(map[string]any{"hostnames": []any{"a.example.test", "1.2.3.4"}}),
			want: map[string]string{`hostnames["1.2.3.4"]`: "is an IP address"}},
		{name: "no hostnames", cfg: base(map[string]any{"hostnames": []any{}}),
			want: map[string]string{"hostnames": "at least one hostname is required"}},
		{name: "bad issuer", cfg: oidc(map[string]any{"issuer_url": "http://idp.example.test", "audiences": []any{"a"}}),
			want: map[string]string{"oidc_providers[1].issuer_url": "scheme must be https"}},
		{name: "issuer listed twice", cfg: oidc(map[string]any{"issuer_url": "https://ok.example.test", "audiences": []any{"a"}}),
			want: map[string]string{"oidc_providers[1].issuer_url": "listed twice"}},
		{name: "blank audience", cfg: oidc(map[string]any{"issuer_url": "https://idp.example.test", "audiences": []any{"a", " "}}),
			want: map[string]string{`oidc_providers[1].audiences[" "]`: "must not be empty"}},
		{name: "bad algorithm", cfg: oidc(map[string]any{"issuer_url": "https://idp.example.test", "audiences": []any{"a"}, "allowed_algorithms": []any{"HS256"}}),
			want: map[string]string{`oidc_providers[1].allowed_algorithms["HS256"]`: "must be one of"}},
		{name: "bad token type", cfg: oidc(map[string]any{"issuer_url": "https://idp.example.test", "audiences": []any{"a"}, "token_type": "refresh"}),
			want: map[string]string{"oidc_providers[1].token_type": `must be one of "access", "id"`}},
		{name: "bad IdP CA", cfg: oidc(map[string]any{"issuer_url": "https://idp.example.test", "audiences": []any{"a"}, "ca_pem": "x"}),
			want: map[string]string{"oidc_providers[1].ca_pem": "no PEM CERTIFICATE block"}},
		{name: "unknown providers", cfg: base(map[string]any{"oidc_providers": unknown{}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, validateResource(t, "sallyport_gateway", tc.cfg), tc.want)
		})
	}
}
