package devdemo_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/apitest"
	"github.com/sallyport/terraform-provider-sallyport/appliance/devdemo"
)

// TestDemoThroughTheGateway is what `make dev` promises a newcomer: the
// planner's request goes through with the executor's credential injected
// and the planner's token withheld; an unbound identity gets 403; no token
// gets 401.
func TestDemoThroughTheGateway(t *testing.T) {
	app := apitest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the gateway listens here next

	d, err := devdemo.Start(t.Context(), devdemo.Options{
		Store: app.Daemon.Store(), InternalCA: app.Daemon.InternalCA(), GatewayAddr: addr,
		WaitLive: app.Daemon.Reconciler().WaitFor,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	ca, err := os.ReadFile(app.Daemon.InternalCAFile())
	if err != nil {
		t.Fatal(err)
	}
	c := d.Client(ca)
	get := func(token string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", d.GatewayURL+"/jobs/hello", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Cookie", "session=planner-cookie")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}

	code, _, body := get(d.PlannerToken)
	if code != 200 {
		t.Fatalf("planner: %d %s", code, body)
	}
	var echo struct {
		Path               string            `json:"path"`
		Headers            map[string]string `json:"headers_received"`
		ClientCert         []string          `json:"gateway_client_cert"`
		CredentialInjected bool              `json:"credential_injected"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		t.Fatal(err)
	}
	if !echo.CredentialInjected || echo.Headers["Authorization"] != devdemo.ExecutorCredential {
		t.Errorf("executor did not get the injected credential: %v", echo.Headers)
	}
	if strings.Contains(string(body), d.PlannerToken) || echo.Headers["Cookie"] != "" {
		t.Errorf("the planner's token or cookie reached the executor: %s", body)
	}
	if echo.Path != "/jobs/hello" || len(echo.ClientCert) != 1 || !strings.HasPrefix(echo.ClientCert[0], "spiffe://sallyport/") {
		t.Errorf("path %q, gateway client cert %v", echo.Path, echo.ClientCert)
	}
	if code, _, body := get(d.IntruderToken); code != 403 {
		t.Errorf("unbound identity: %d %s", code, body)
	}
	if code, hdr, _ := get(""); code != 401 || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", code)
	}
	if code, _, _ := get(d.PlannerToken + "x"); code != 401 {
		t.Errorf("tampered token: %d", code)
	}
	for _, cmd := range []string{d.CurlAllowed("ca.pem"), d.CurlDenied("ca.pem"), d.CurlNoToken("ca.pem")} {
		if !strings.Contains(cmd, "--resolve "+devdemo.Hostname+":") || !strings.Contains(cmd, d.GatewayURL+"/jobs/hello") {
			t.Errorf("curl command %q does not reach the demo gateway", cmd)
		}
	}
}
