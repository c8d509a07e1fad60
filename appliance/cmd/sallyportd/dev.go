package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/daemon"
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
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	cfg := f.config(logger)
	cfg.AdminToken = admintoken.Source{Token: token}
	a, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	return runUntilSignal(a, logger, func() { printDevBanner(stdout, a, token) })
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
