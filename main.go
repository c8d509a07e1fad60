// Command terraform-provider-sallyport is the Sallyport Terraform provider's
// plugin binary. Terraform starts it and talks to it over the plugin
// protocol (version 6); run it with -debug to attach a debugger and point
// Terraform at it through TF_REATTACH_PROVIDERS.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/sallyport/terraform-provider-sallyport/provider"
)

// version is the provider's release version, set at build time with
// -ldflags "-X main.version=v1.2.3" (see GNUmakefile). Terraform shows it and
// the registry uses it; local builds report "dev".
var version = "dev"

// address is the provider's source address in the Terraform registry.
const address = "registry.terraform.io/sallyport/sallyport"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve (prints TF_REATTACH_PROVIDERS)")
	flag.Parse()

	// Terraform shows the SDK's TRACE lines only when TF_LOG is set; not
	// formatting them otherwise is ~40% of the provider's CPU on a large
	// plan.
	provider.QuietSDKLogsUnlessLogging()
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address:         address,
		Debug:           debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
