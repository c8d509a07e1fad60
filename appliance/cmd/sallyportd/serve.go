package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/daemon"
	"github.com/sallyport/terraform-provider-sallyport/appliance/logging"
	"github.com/sallyport/terraform-provider-sallyport/appliance/systemd"
)

// DefaultAdminAddr keeps a new appliance's admin API on loopback until the
// operator chooses otherwise.
const DefaultAdminAddr = "127.0.0.1:8443"

// serveFlags are the flags serve and dev share.
type serveFlags struct {
	dataDir, adminAddr   string
	tokenFile, tokenHash string
	certFile, keyFile    string
	sans                 listFlag
	logLevel             string
	recordingMaxAge      time.Duration
	recordingMaxBytes    int64
}

func (f *serveFlags) register(fs *flag.FlagSet, defaultDataDir string) {
	fs.StringVar(&f.dataDir, "data-dir", envOr("SALLYPORT_DATA_DIR", defaultDataDir), "directory holding all state (env SALLYPORT_DATA_DIR)")
	fs.StringVar(&f.adminAddr, "admin-addr", envOr("SALLYPORT_ADMIN_ADDR", DefaultAdminAddr), "HOST:PORT of the admin API (env SALLYPORT_ADMIN_ADDR)")
	fs.StringVar(&f.tokenFile, "admin-token-file", envOr("SALLYPORT_ADMIN_TOKEN_FILE", ""), "file holding the admin token (env SALLYPORT_ADMIN_TOKEN_FILE; or env SALLYPORT_ADMIN_TOKEN holding the token itself)")
	fs.StringVar(&f.tokenHash, "admin-token-hash", envOr("SALLYPORT_ADMIN_TOKEN_HASH", ""), "sha256:<hex> hash of the admin token (env SALLYPORT_ADMIN_TOKEN_HASH)")
	fs.StringVar(&f.certFile, "admin-cert-file", envOr("SALLYPORT_ADMIN_CERT_FILE", ""), "PEM certificate chain for the admin API instead of the generated one (env SALLYPORT_ADMIN_CERT_FILE)")
	fs.StringVar(&f.keyFile, "admin-key-file", envOr("SALLYPORT_ADMIN_KEY_FILE", ""), "PEM private key of --admin-cert-file (env SALLYPORT_ADMIN_KEY_FILE)")
	fs.Var(&f.sans, "admin-san", "extra DNS name or IP for the generated admin certificate (repeatable)")
	fs.DurationVar(&f.recordingMaxAge, "recording-max-age", 30*24*time.Hour, "prune recorded sessions older than this (0: keep)")
	fs.Int64Var(&f.recordingMaxBytes, "recording-max-bytes", 10<<30, "prune the oldest recorded sessions beyond this many bytes (0: no bound)")
	fs.StringVar(&f.logLevel, "log-level", envOr("SALLYPORT_LOG_LEVEL", "info"), "debug, info, warn or error (env SALLYPORT_LOG_LEVEL)")
}

func (f *serveFlags) config(logger *slog.Logger) daemon.Config {
	return daemon.Config{
		DataDir:       f.dataDir,
		AdminAddr:     f.adminAddr,
		AdminToken:    admintoken.Source{Token: os.Getenv("SALLYPORT_ADMIN_TOKEN"), TokenFile: f.tokenFile, Hash: f.tokenHash},
		AdminCertFile: f.certFile,
		AdminKeyFile:  f.keyFile,
		AdminSANs:     f.sans,
		Logger:        logger,

		RecordingMaxAge:   f.recordingMaxAge,
		RecordingMaxBytes: f.recordingMaxBytes,
	}
}

// newLogger returns the JSON logger every command logs through, buffered
// (see package logging), and the buffer, to Close before the command
// returns.
func newLogger(w io.Writer, level string) (*slog.Logger, *logging.Writer, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	logger, buf := logging.New(w, l)
	return logger, buf, nil
}

func serveCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve --data-dir DIR [--admin-addr HOST:PORT] [flags]", `
Run the appliance. All state (store, keys, admin CA, admin token hash) lives
in the data dir. On first start with an empty data dir and no token given,
an admin token is generated and written to DIR/admin-token (mode 0600); the
admin CA certificate is DIR/admin-ca.pem and its SHA-256 fingerprint is
logged. Logs are JSON lines on stderr.`, stderr)
	var f serveFlags
	f.register(fs, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	logger, logBuf, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	defer logBuf.Close()
	a, err := daemon.New(f.config(logger))
	if err != nil {
		return err
	}
	if a.TokenGenerated() {
		logger.Info("generated an admin token", "file", a.DataDir()+"/"+admintoken.TokenFile)
	}
	return runUntilSignal(a, logger, nil)
}

// runUntilSignal starts a, calls started (if any), and stops a on SIGINT
// or SIGTERM, draining requests for up to 15 seconds.
func runUntilSignal(a *daemon.Appliance, logger *slog.Logger, started func() error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Start(); err != nil {
		_ = a.Stop(context.Background())
		return err
	}
	if started != nil {
		if err := started(); err != nil {
			_ = a.Stop(context.Background())
			return err
		}
	}
	// Under systemd (Type=notify): ready only once the admin API and the
	// data path are up, and a watchdog fed while the store answers.
	if _, err := systemd.Ready(); err != nil {
		logger.Warn("notifying systemd", "error", err)
	}
	go func() {
		if err := systemd.Watchdog(ctx, func() error { return a.Healthy(ctx) }); err != nil {
			logger.Warn("systemd watchdog", "error", err)
		}
	}()
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case serveErr = <-a.Done():
	}
	_, _ = systemd.Stopping()
	drain, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(drain); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}
