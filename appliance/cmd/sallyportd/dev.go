package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/daemon"
	"github.com/sallyport/terraform-provider-sallyport/appliance/devdemo"
)

// DefaultDevDataDir is where `sallyportd dev` keeps its state between runs.
const DefaultDevDataDir = ".sallyport-dev"

func devCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "dev [--data-dir DIR | --ephemeral] [flags]", `
Run a development appliance on this machine and print, ready to paste, how
to reach it: the admin endpoint, the admin token, the admin CA certificate
and its fingerprint, and the export lines the Terraform provider reads.
State is kept in ./.sallyport-dev between runs (the token too, in plain text:
never use dev for anything real); --ephemeral uses a throw-away directory
removed on exit.`, stderr)
	var f serveFlags
	f.register(fs, DefaultDevDataDir)
	ephemeral := fs.Bool("ephemeral", false, "use a throw-away data dir, removed on exit")
	noDemo := fs.Bool("no-demo", false, "start empty: no demo gateway, IdP or executor")
	demoAddr := fs.String("demo-gateway-addr", "127.0.0.1:8444", "where the demo gateway listens")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ephemeral {
		dir, err := os.MkdirTemp("", "sallyport-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f.dataDir = dir
	}
	if f.tokenFile != "" || f.tokenHash != "" || os.Getenv("SALLYPORT_ADMIN_TOKEN") != "" {
		return errors.New("dev manages its own admin token: use serve to bring your own")
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("creating the data dir: %w", err)
	}
	// dev must print the token, so it keeps it in the data dir and hands it
	// to the daemon as a given token; serve would keep only its hash.
	tokenPath := filepath.Join(f.dataDir, admintoken.TokenFile)
	token, err := devToken(tokenPath)
	if err != nil {
		return err
	}
	logger, logBuf, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	defer logBuf.Close()
	cfg := f.config(logger)
	cfg.AdminToken = admintoken.Source{Token: token}
	a, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	var demo *devdemo.Demo
	defer func() {
		if demo != nil {
			demo.Close()
		}
	}()
	return runUntilSignal(a, logger, func() error {
		if !*noDemo {
			var err error
			demo, err = devdemo.Start(context.Background(), devdemo.Options{
				Store: a.Store(), InternalCA: a.InternalCA(), GatewayAddr: *demoAddr, Logger: logger,
				WaitLive: a.Reconciler().WaitFor,
			})
			if err != nil {
				return fmt.Errorf("starting the demo (use --no-demo to skip it): %w", err)
			}
		}
		printDevBanner(stdout, a, token)
		if demo != nil {
			printDemoBanner(stdout, a, demo)
		}
		return nil
	})
}

// devToken reads the dev token kept in path, or creates one.
func devToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the dev admin token: %w", err)
	}
	token, err := admintoken.Generate()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the dev admin token: %w", err)
	}
	return token, nil
}

func printDevBanner(w io.Writer, a *daemon.Appliance, token string) {
	ep, ca, fp := a.AdminEndpoint(), a.AdminCAFile(), a.AdminCAFingerprint()
	fmt.Fprintf(w, `
Sallyport dev appliance is running (data dir %s). Stop it with Ctrl-C.

  Admin endpoint:       %s
  Admin token:          %s
  Admin CA certificate: %s
  CA SHA-256:           %s

Paste into your shell (the Terraform provider and curl read these):

export SALLYPORT_ENDPOINT=%s
export SALLYPORT_TOKEN=%s
export SALLYPORT_CA_CERT_PEM="$(cat %s)"
export SALLYPORT_CA_FINGERPRINT=%s

Then try:

curl --cacert %s -H "Authorization: Bearer $SALLYPORT_TOKEN" $SALLYPORT_ENDPOINT/v1/status

`, a.DataDir(), ep, token, ca, fp, ep, token, ca, fp, ca)
}

func printDemoBanner(w io.Writer, a *daemon.Appliance, d *devdemo.Demo) {
	ca := a.InternalCAFile()
	fmt.Fprintf(w, `Demo data path: gateway "demo" at %s, an example executor behind it over
mutual TLS, a local OpenID provider at %s, and a binding that admits
the subject %q. The gateway injects the executor's credential; the
planner never holds it.

Through the gateway as the planner (the executor echoes what it received):

%s

Refused with 403 (a valid token, but no binding admits its subject):

%s

Refused with 401 (no token):

%s

A fresh planner token (tokens last 8 hours):

%s

`, d.GatewayURL, d.Issuer, devdemo.PlannerSubject, d.CurlAllowed(ca), d.CurlDenied(ca), d.CurlNoToken(ca), d.TokenCommand(ca))
}
