package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// issue returns a server certificate chain and its key, in PEM.
func issue(t *testing.T, ca *pki.CA, name string) (certPEM, keyPEM string) {
	t.Helper()
	c, k, _, err := ca.Issue(pki.IssueRequest{DNSNames: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	return string(c), string(k)
}

// keyMarker returns a line of a PEM key's body: distinctive, and free of
// characters JSON would escape, so it can be searched for in JSON.
func keyMarker(keyPEM string) string {
	lines := strings.Split(strings.TrimSpace(keyPEM), "\n")
	return lines[1]
}

func TestAccTLSSettings_basic(t *testing.T) {
	e := newAccEnv(t)
	ca := testCA(t)
	const addr = "sallyport_tls_settings.test"
	e.test([]resource.TestStep{
		{
			Config: e.config(`
resource "sallyport_tls_settings" "test" {
  name        = "edge-tls"
  certificate = { source = "self_signed" }
}
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^tls_`))),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("min_version"), knownvalue.StringExact("1.2")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("client_auth"), knownvalue.StringExact("none")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("peer_ca_pem"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("created_at"), knownvalue.NotNull()),
			},
		},
		{
			// Every attribute changes in place: the id stays.
			Config: e.config(`
resource "sallyport_tls_settings" "test" {
  name        = "edge-tls-renamed"
  min_version = "1.3"
  certificate = { source = "self_signed" }
  peer_ca_pem = %q
  client_auth = "require"
  server_name = "executor.internal"
}
`, ca.CertPEM()),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("name"), knownvalue.StringExact("edge-tls-renamed")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("min_version"), knownvalue.StringExact("1.3")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("client_auth"), knownvalue.StringExact("require")),
			},
			Check: func(s *terraform.State) error {
				oid, err := id(s, addr)
				if err != nil {
					return err
				}
				o, err := e.client.TLSSettings().Get(context.Background(), oid)
				if err != nil {
					return err
				}
				if o.Name != "edge-tls-renamed" || o.Spec.MinVersion != "1.3" || o.Spec.ServerName != "executor.internal" ||
					o.Spec.ClientAuth != "require" || o.Spec.PeerCAPEM != string(ca.CertPEM()) {
					return fmt.Errorf("the appliance holds %+v", o.Spec)
				}
				return nil
			},
		},
		{
			// Back to the defaults: min_version and client_auth are
			// optional with defaults, so leaving them out resets them.
			Config: e.config(`
resource "sallyport_tls_settings" "test" {
  name        = "edge-tls-renamed"
  certificate = { source = "none" }
}
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("min_version"), knownvalue.StringExact("1.2")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("client_auth"), knownvalue.StringExact("none")),
			},
		},
		{ResourceName: addr, ImportState: true, ImportStateVerify: true},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true,
			ImportStateIdFunc: importByName(addr, func(a map[string]string) string { return a["name"] }),
		},
		{
			// Replace (here forced by taint): a new object, then the old one
			// deleted.
			Config: e.config(`
resource "sallyport_tls_settings" "test" {
  name        = "edge-tls-renamed"
  certificate = { source = "none" }
}
`),
			Taint: []string{addr},
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
			},
		},
	})
}

func TestAccTLSSettings_staticKey(t *testing.T) {
	e := newAccEnv(t)
	ca := testCA(t)
	cert1, key1 := issue(t, ca, "gw.example.test")
	cert2, key2 := issue(t, ca, "gw.example.test")
	secrets := noSecrets{keyMarker(key1), keyMarker(key2)}
	const addr = "sallyport_tls_settings.static"
	// Secrets come from an ephemeral variable, as they should in real
	// configurations: a literal would be part of the configuration that
	// `terraform show -json PLAN` prints.
	cfg := func(cert, key string, version int) (string, config.Variables) {
		if key == "" {
			return e.config(`
resource "sallyport_tls_settings" "static" {
  name = "static"
  certificate = {
    source = "static"
    static = {
      cert_pem           = %q
      key_pem_wo_version = %d
    }
  }
}
`, cert, version), nil
		}
		return e.config(`
variable "key_pem" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "sallyport_tls_settings" "static" {
  name = "static"
  certificate = {
    source = "static"
    static = {
      cert_pem           = %q
      key_pem_wo         = var.key_pem
      key_pem_wo_version = %d
    }
  }
}
`, cert, version), config.Variables{"key_pem": config.StringVariable(key)}
	}
	step := func(wantKey string) func(string, config.Variables) resource.TestStep {
		return func(hcl string, vars config.Variables) resource.TestStep {
			return resource.TestStep{
				Config:            hcl,
				ConfigVariables:   vars,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{secrets}, PostApplyPostRefresh: []plancheck.PlanCheck{secrets}},
				ConfigStateChecks: []statecheck.StateCheck{secrets, statecheck.ExpectKnownValue(addr, tfjsonpath.New("certificate").AtMapKey("static").AtMapKey("key_pem_wo"), knownvalue.Null())},
				Check:             resource.ComposeAggregateTestCheckFunc(e.storedSecret(addr, model.PathKeyPEM, wantKey), secrets.stateFiles),
			}
		}
	}
	noKey, _ := cfg(cert2, "", 3)
	e.test([]resource.TestStep{
		// Create: the key is sent.
		step(key1)(cfg(cert1, key1, 1)),
		// The version is unchanged and the key left out of the
		// configuration: the appliance keeps the key it has.
		step(key1)(cfg(cert1, "", 1)),
		// Rotation: a new certificate and key, with a new version.
		step(key2)(cfg(cert2, key2, 2)),
		// A new version without a key is refused at plan time.
		{
			Config:      noKey,
			ExpectError: regexp.MustCompile(`(?s)Missing write-only value.*key_pem_wo_version`),
		},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true,
			ConfigVariables: config.Variables{"key_pem": config.StringVariable(key2)},
			// The version is Terraform's alone: the appliance has no such field.
			ImportStateVerifyIgnore: []string{"certificate.static.key_pem_wo_version"},
		},
	})
}

func TestAccTLSSettings_acmeEAB(t *testing.T) {
	e := newAccEnv(t)
	hmac := secretValue(t, "c2FsbHlwb3J0LWVhYi1")
	secrets := noSecrets{hmac}
	const addr = "sallyport_tls_settings.acme"
	vars := config.Variables{"eab_hmac": config.StringVariable(hmac)}
	cfg := func(keyID string, version int) string {
		return e.config(`
variable "eab_hmac" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "sallyport_tls_settings" "acme" {
  name = "acme"
  certificate = {
    source = "acme"
    acme = {
      directory_url       = "https://acme.example.test/directory"
      email               = "ops@example.test"
      eab_key_id          = %q
      eab_hmac_wo         = var.eab_hmac
      eab_hmac_wo_version = %d
      http_challenge_addr = ":80"
    }
  }
}
`, keyID, version)
	}
	e.test([]resource.TestStep{
		{
			Config:            cfg("kid-1", 1),
			ConfigVariables:   vars,
			ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{secrets}},
			ConfigStateChecks: []statecheck.StateCheck{secrets},
			Check:             resource.ComposeAggregateTestCheckFunc(e.storedSecret(addr, model.PathEABHMAC, hmac), secrets.stateFiles),
		},
		{
			// A new key id with the same HMAC version keeps the HMAC.
			Config:            cfg("kid-2", 1),
			ConfigVariables:   vars,
			ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate), secrets}},
			ConfigStateChecks: []statecheck.StateCheck{secrets, statecheck.ExpectKnownValue(addr, tfjsonpath.New("certificate").AtMapKey("acme").AtMapKey("eab_key_id"), knownvalue.StringExact("kid-2"))},
			Check:             resource.ComposeAggregateTestCheckFunc(e.storedSecret(addr, model.PathEABHMAC, hmac), secrets.stateFiles),
		},
		{
			ResourceName: addr, ImportState: true, ImportStateVerify: true, ConfigVariables: vars,
			ImportStateVerifyIgnore: []string{"certificate.acme.eab_hmac_wo_version"},
		},
	})
}

func TestAccTLSSettings_disappears(t *testing.T) {
	e := newAccEnv(t)
	const addr = "sallyport_tls_settings.test"
	config := e.config(`
resource "sallyport_tls_settings" "test" {
  name        = "gone"
  certificate = { source = "self_signed" }
}
`)
	e.test([]resource.TestStep{
		{
			Config:             config,
			Check:              e.deleteOutOfBand(addr),
			ExpectNonEmptyPlan: true,
		},
		{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
			},
			Check: e.objectExists(model.KindTLSSettings, addr),
		},
	})
}

func TestAccTLSSettings_invalid(t *testing.T) {
	e := newAccEnv(t)
	ca := testCA(t)
	cert, _ := issue(t, ca, "a.example.test")
	_, otherKey := issue(t, ca, "b.example.test")
	plan := func(body string, want string) resource.TestStep {
		return resource.TestStep{
			Config:      e.config("resource \"sallyport_tls_settings\" \"bad\" {\n%s\n}\n", body),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(want),
		}
	}
	e.test([]resource.TestStep{
		plan(`name = "bad"
min_version = "1.1"
certificate = { source = "none" }`, `(?s)min_version = "1.1".*must be one of "1.2", "1.3"`),
		plan(`name = "bad name"
certificate = { source = "none" }`, `(?s)name = "bad name".*must be 1 to 63 letters`),
		plan(`name = "bad"
client_auth = "require"
certificate = { source = "self_signed" }`, `required when client_auth is "require"`),
		plan(`name = "bad"
certificate = { source = "static" }`, `required when source is "static"`),
		plan(fmt.Sprintf(`name = "bad"
certificate = {
  source = "static"
  static = {
    cert_pem   = %q
    key_pem_wo = %q
  }
}`, cert, otherKey), `the private key does not match the first certificate`),
	})
}

func TestTLSSettingsValidateConfig(t *testing.T) {
	ca := testCA(t)
	cert, key := issue(t, ca, "a.example.test")
	_, otherKey := issue(t, ca, "b.example.test")
	caPEM := string(ca.CertPEM())
	selfSigned := map[string]any{"source": "self_signed"}
	static := func(st map[string]any) map[string]any { return map[string]any{"source": "static", "static": st} }
	acme := func(a map[string]any) map[string]any {
		if a["directory_url"] == nil {
			a["directory_url"] = "https://acme.example.test/directory"
		}
		return map[string]any{"source": "acme", "acme": a}
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want map[string]string
	}{
		{name: "self-signed", cfg: map[string]any{"name": "ok", "certificate": selfSigned}},
		{name: "everything", cfg: map[string]any{"name": "ok", "min_version": "1.3", "client_auth": "require", "peer_ca_pem": caPEM,
			"server_name": "exec.example.test", "certificate": static(map[string]any{"cert_pem": cert, "key_pem_wo": key, "key_pem_wo_version": 1})}},
		{name: "bad name", cfg: map[string]any{"name": "-x", "certificate": selfSigned},
			want: map[string]string{"name": "must be 1 to 63 letters"}},
		{name: "bad min_version", cfg: map[string]any{"name": "x", "min_version": "1.1", "certificate": selfSigned},
			want: map[string]string{"min_version": `must be one of "1.2", "1.3"`}},
		{name: "client_auth without CA", cfg: map[string]any{"name": "x", "client_auth": "require", "certificate": selfSigned},
			want: map[string]string{"peer_ca_pem": `required when client_auth is "require"`}},
		{name: "bad peer CA", cfg: map[string]any{"name": "x", "peer_ca_pem": "nope", "certificate": selfSigned},
			want: map[string]string{"peer_ca_pem": "no PEM CERTIFICATE block"}},
		{name: "bad server_name", cfg: map[string]any{"name": "x", "server_name": "Exec.example", "certificate": selfSigned},
			want: map[string]string{"server_name": "must be lower case"}},
		{name: "bad source", cfg: map[string]any{"name": "x", "certificate": map[string]any{"source": "magic"}},
			want: map[string]string{"certificate.source": "must be one of"}},
		{name: "static without static", cfg: map[string]any{"name": "x", "certificate": map[string]any{"source": "static"}},
			want: map[string]string{"certificate.static": `required when source is "static"`}},
		{name: "acme beside another source", cfg: map[string]any{"name": "x", "certificate": map[string]any{"source": "self_signed",
			"acme": map[string]any{"directory_url": "https://acme.example.test/dir"}}},
			want: map[string]string{"certificate.acme": `only allowed when source is "acme"`}},
		{name: "key does not match", cfg: map[string]any{"name": "x", "certificate": static(map[string]any{"cert_pem": cert, "key_pem_wo": otherKey})},
			want: map[string]string{"certificate.static.key_pem_wo": "does not match"}},
		{name: "no key", cfg: map[string]any{"name": "x", "certificate": static(map[string]any{"cert_pem": cert})},
			want: map[string]string{"certificate.static.key_pem_wo": "required: the private key"}},
		{name: "key kept by its version", cfg: map[string]any{"name": "x", "certificate": static(map[string]any{"cert_pem": cert, "key_pem_wo_version": 2})}},
		{name: "EAB key id without HMAC", cfg: map[string]any{"name": "x", "certificate": acme(map[string]any{"eab_key_id": "kid"})},
			want: map[string]string{"certificate.acme.eab_hmac_wo": "required when eab_key_id is set"}},
		{name: "EAB HMAC not base64url", cfg: map[string]any{"name": "x", "certificate": acme(map[string]any{"eab_key_id": "kid", "eab_hmac_wo": "not base64!"})},
			want: map[string]string{"certificate.acme.eab_hmac_wo": "base64url"}},
		{name: "bad e-mail, reported once", cfg: map[string]any{"name": "x", "certificate": acme(map[string]any{"email": "ops"})},
			want: map[string]string{"certificate.acme.email": "not a valid e-mail address"}},
		{name: "http directory", cfg: map[string]any{"name": "x", "certificate": acme(map[string]any{"directory_url": "http://acme.example.test/dir"})},
			want: map[string]string{"certificate.acme.directory_url": "scheme must be https"}},
		{name: "bad challenge address", cfg: map[string]any{"name": "x", "certificate": acme(map[string]any{"http_challenge_addr": "80"})},
			want: map[string]string{"certificate.acme.http_challenge_addr": "must be HOST:PORT"}},
		// Values known only after apply are checked by the appliance then.
		{name: "unknown CA", cfg: map[string]any{"name": "x", "client_auth": "require", "peer_ca_pem": unknown{}, "certificate": selfSigned}},
		{name: "unknown certificate", cfg: map[string]any{"name": "x", "certificate": unknown{}}},
		{name: "unknown key", cfg: map[string]any{"name": "x", "certificate": static(map[string]any{"cert_pem": cert, "key_pem_wo": unknown{}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, validateResource(t, "sallyport_tls_settings", tc.cfg), tc.want)
		})
	}
}
