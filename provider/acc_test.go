package provider

// Shared helpers of the acceptance tests (TestAcc*). They run the real
// terraform binary (terraform-plugin-testing) against a real appliance that
// each test starts in-process on loopback (apitest.Start); the provider is
// served in-process too (ProtoV6ProviderFactories). They run when TF_ACC is
// set: `make testacc`, and `make test`, which sets it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/sallyport/terraform-provider-sallyport/appliance/apitest"
	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// TestMain gives the acceptance tests' Terraform working directories a root
// of their own (unless TF_ACC_TEMP_DIR names one), so that checks can look
// at every state file Terraform wrote.
func TestMain(m *testing.M) {
	cleanup := func() {}
	if os.Getenv("TF_ACC") != "" && os.Getenv("TF_ACC_TEMP_DIR") == "" {
		dir, err := os.MkdirTemp("", "sallyport-acc-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv("TF_ACC_TEMP_DIR", dir)
		cleanup = func() { os.RemoveAll(dir) }
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// testAccProviders serves the provider in-process to the terraform binary.
var testAccProviders = map[string]func() (tfprotov6.ProviderServer, error){
	"sallyport": providerserver.NewProtocol6WithError(New("test")()),
}

// accEnv is one acceptance test's appliance and a client of it.
type accEnv struct {
	t      *testing.T
	app    *apitest.Appliance
	client *client.Client
}

// newAccEnv starts an appliance for an acceptance test, or skips the test
// when TF_ACC is not set (before starting anything).
func newAccEnv(t *testing.T) *accEnv {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc) to run it with the terraform binary")
	}
	app := apitest.Start(t)
	c, err := client.New(client.Config{Endpoint: app.Endpoint, Token: app.Token, CAFingerprint: app.CAFingerprint})
	if err != nil {
		t.Fatal(err)
	}
	return &accEnv{t: t, app: app, client: c}
}

// config prepends the provider block that reaches the test's appliance.
func (e *accEnv) config(hcl string, args ...any) string {
	return fmt.Sprintf(`
provider "sallyport" {
  endpoint              = %q
  token                 = %q
  ca_fingerprint_sha256 = %q
}
`, e.app.Endpoint, e.app.Token, e.app.CAFingerprint) + fmt.Sprintf(hcl, args...)
}

// test runs the steps in parallel with the other acceptance tests (each has
// its own appliance), with Terraform 1.11 or later (write-only attributes),
// and checks that every object the test created is gone after destroy.
func (e *accEnv) test(steps []resource.TestStep) {
	e.t.Helper()
	resource.ParallelTest(e.t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		CheckDestroy:             e.checkDestroyed,
		Steps:                    steps,
	})
}

// checkDestroyed checks that no object of the state still exists on the
// appliance.
func (e *accEnv) checkDestroyed(s *terraform.State) error {
	ctx := context.Background()
	for _, rs := range s.RootModule().Resources {
		var err error
		switch rs.Type {
		case "sallyport_tls_settings":
			_, err = e.client.TLSSettings().Get(ctx, rs.Primary.ID)
		case "sallyport_gateway":
			_, err = e.client.Gateways().Get(ctx, rs.Primary.ID)
		case "sallyport_connection":
			_, err = e.client.Connections().Get(ctx, rs.Primary.ID)
		case "sallyport_identity_binding":
			_, err = e.client.IdentityBindings().Get(ctx, rs.Primary.ID)
		default:
			continue
		}
		if err == nil {
			return fmt.Errorf("%s %s still exists on the appliance after destroy", rs.Type, rs.Primary.ID)
		}
		if !client.IsNotFound(err) {
			return fmt.Errorf("checking %s %s: %w", rs.Type, rs.Primary.ID, err)
		}
	}
	return nil
}

// id returns the id a resource has in state.
func id(s *terraform.State, address string) (string, error) {
	rs, ok := s.RootModule().Resources[address]
	if !ok {
		return "", fmt.Errorf("%s is not in state", address)
	}
	return rs.Primary.ID, nil
}

// deleteOutOfBand deletes a resource's object behind Terraform's back.
func (e *accEnv) deleteOutOfBand(address string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		oid, err := id(s, address)
		if err != nil {
			return err
		}
		ctx := context.Background()
		switch {
		case strings.HasPrefix(address, "sallyport_tls_settings."):
			return e.client.TLSSettings().Delete(ctx, oid, client.WriteOptions{})
		case strings.HasPrefix(address, "sallyport_gateway."):
			return e.client.Gateways().Delete(ctx, oid, client.WriteOptions{})
		case strings.HasPrefix(address, "sallyport_connection."):
			return e.client.Connections().Delete(ctx, oid, client.WriteOptions{})
		case strings.HasPrefix(address, "sallyport_identity_binding."):
			return e.client.IdentityBindings().Delete(ctx, oid, client.WriteOptions{})
		}
		return fmt.Errorf("cannot delete %s", address)
	}
}

// storedSecret checks the value the appliance holds for a secret of the
// resource at address (want "" checks that none is stored): proof that a
// write-only value was sent, or kept, or removed.
func (e *accEnv) storedSecret(address, secretPath, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		oid, err := id(s, address)
		if err != nil {
			return err
		}
		got, err := e.app.Daemon.Store().SecretValue(context.Background(), oid, secretPath)
		if want == "" {
			if err == nil {
				return fmt.Errorf("%s %s: a value is stored, want none", address, secretPath)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", address, secretPath, err)
		}
		if got != want {
			return fmt.Errorf("%s %s: the appliance holds a different value than configured", address, secretPath)
		}
		return nil
	}
}

// importByName imports the resource at address with an import id made from
// the state by f.
func importByName(address string, f func(attrs map[string]string) string) resource.ImportStateIdFunc {
	return func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[address]
		if !ok {
			return "", fmt.Errorf("%s is not in state", address)
		}
		return f(rs.Primary.Attributes), nil
	}
}

// secretValue returns a distinctive secret for a test to search for.
func secretValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// freeAddr returns a loopback address with a port free right now, for a
// gateway's listen_addr.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// noSecrets checks that none of the secrets appears anywhere: in the state
// as `terraform show -json` prints it (a state check), in the plan as
// `terraform show -json PLAN` prints it (a plan check), or in a state file
// Terraform wrote (a test check, over every file under TF_ACC_TEMP_DIR).
type noSecrets []string

var (
	_ statecheck.StateCheck = noSecrets(nil)
	_ plancheck.PlanCheck   = noSecrets(nil)
)

// CheckState implements statecheck.StateCheck.
func (ns noSecrets) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	b, err := json.Marshal(req.State)
	if err != nil {
		resp.Error = err
		return
	}
	resp.Error = ns.search("terraform show -json", b)
}

// CheckPlan implements plancheck.PlanCheck.
func (ns noSecrets) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	b, err := json.Marshal(req.Plan)
	if err != nil {
		resp.Error = err
		return
	}
	resp.Error = ns.search("terraform show -json PLAN", b)
}

// stateFiles searches every state file under TF_ACC_TEMP_DIR.
func (ns noSecrets) stateFiles(s *terraform.State) error {
	root := os.Getenv("TF_ACC_TEMP_DIR")
	if root == "" {
		return errors.New("TF_ACC_TEMP_DIR is not set")
	}
	searched := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Other tests remove their working directories meanwhile.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), "terraform.tfstate") {
			return nil
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		searched++
		return ns.search(p, b)
	})
	if err == nil && searched == 0 {
		err = fmt.Errorf("no state file found under %s", root)
	}
	return err
}

func (ns noSecrets) search(where string, b []byte) error {
	for _, s := range ns {
		if s != "" && strings.Contains(string(b), s) {
			// Only a prefix: the test log must not spread it further.
			return fmt.Errorf("a secret value (%.6s...) appears in %s", s, where)
		}
	}
	return nil
}

// checkGone checks that an object of the given kind no longer exists.
func (e *accEnv) objectExists(kind model.Kind, address string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		oid, err := id(s, address)
		if err != nil {
			return err
		}
		ctx := context.Background()
		switch kind {
		case model.KindTLSSettings:
			_, err = e.client.TLSSettings().Get(ctx, oid)
		case model.KindGateway:
			_, err = e.client.Gateways().Get(ctx, oid)
		case model.KindConnection:
			_, err = e.client.Connections().Get(ctx, oid)
		case model.KindIdentityBinding:
			_, err = e.client.IdentityBindings().Get(ctx, oid)
		}
		return err
	}
}
