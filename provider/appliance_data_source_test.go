package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/version"
)

func TestAccApplianceDataSource(t *testing.T) {
	e := newAccEnv(t)
	const addr = "data.sallyport_appliance.this"
	e.test([]resource.TestStep{
		{
			// Pinned by fingerprint (the provider block of e.config).
			Config: e.config(gatewayTLS + `
data "sallyport_appliance" "this" {
  depends_on = [sallyport_tls_settings.serving]
}
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("endpoint"), knownvalue.StringExact(e.app.Endpoint)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("version"), knownvalue.StringExact(version.Version)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("admin_ca_fingerprint_sha256"), knownvalue.StringExact(e.app.CAFingerprint)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("store_backend"), knownvalue.NotNull()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("object_counts").AtMapKey("tls_settings"), knownvalue.Int64Exact(1)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("object_counts").AtMapKey("gateway"), knownvalue.Int64Exact(0)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("started_at"), knownvalue.NotNull()),
			},
		},
		{
			// Verified against the CA certificate: the fingerprint is that
			// of the root the admin certificate chains to.
			Config: fmt.Sprintf(`
provider "sallyport" {
  endpoint    = %q
  token       = %q
  ca_cert_pem = %q
}

data "sallyport_appliance" "this" {}
`, e.app.Endpoint, e.app.Token, e.app.CACertPEM),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("admin_ca_fingerprint_sha256"), knownvalue.StringExact(e.app.CAFingerprint)),
			},
		},
	})
}
