// Package apitest starts a real appliance (store, admin API, TLS) in the
// test process on a loopback port, for tests of the API, its Go client and
// the Terraform provider.
package apitest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/daemon"
)

// Appliance is a running appliance and how to reach it.
type Appliance struct {
	// Endpoint is the admin API's base URL (https://127.0.0.1:PORT).
	Endpoint string
	// Token is a valid admin token.
	Token string
	// CACertPEM is the admin CA certificate.
	CACertPEM string
	// CAFingerprint is the admin CA's SHA-256 fingerprint (hex).
	CAFingerprint string
	// DataDir is the appliance's data dir (removed after the test).
	DataDir string
	// Daemon is the appliance itself.
	Daemon *daemon.Appliance

	logs *syncBuffer
}

// Start provisions and starts an appliance on a fresh data dir and stops it
// when the test ends.
func Start(t testing.TB) *Appliance {
	t.Helper()
	token, err := admintoken.Generate()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	dir := t.TempDir()
	d, err := daemon.New(daemon.Config{
		DataDir:    dir,
		AdminAddr:  "127.0.0.1:0",
		AdminToken: admintoken.Source{Token: token},
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("provisioning the appliance: %v", err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("starting the appliance: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stopping the appliance: %v", err)
		}
	})
	ca, err := os.ReadFile(d.AdminCAFile())
	if err != nil {
		t.Fatal(err)
	}
	return &Appliance{
		Endpoint:      d.AdminEndpoint(),
		Token:         token,
		CACertPEM:     string(ca),
		CAFingerprint: d.AdminCAFingerprint(),
		DataDir:       d.DataDir(),
		Daemon:        d,
		logs:          logs,
	}
}

// Logs returns everything the appliance has logged so far (JSON lines).
func (a *Appliance) Logs() string { return a.logs.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
