// Package daemon assembles the appliance: it provisions the data dir (store,
// seal key, admin token, admin TLS), then starts and stops the admin API.
// The lifecycle follows Caddy's: New provisions and validates, Start
// serves, Stop drains.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/api"
	"github.com/sallyport/terraform-provider-sallyport/appliance/certificates"
	"github.com/sallyport/terraform-provider-sallyport/appliance/gateway"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
	"github.com/sallyport/terraform-provider-sallyport/appliance/reconcile"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
	"github.com/sallyport/terraform-provider-sallyport/appliance/version"
)

// Files in the data dir, beside those of admintoken and pki.
const (
	// StoreFile is the embedded store.
	StoreFile = "sallyport.db"
	// SealKeyFile is the key that encrypts secrets at rest.
	SealKeyFile = "secrets.key"
	// InternalCAName names the CA that issues self-signed gateway
	// certificates and upstream client certificates (internal-ca.pem).
	InternalCAName = "internal-ca"
)

// WriteLiveTimeout bounds how long an admin write waits for the data path
// to run it before answering; the object's status then tells the rest.
const WriteLiveTimeout = 60 * time.Second

// Config is how an appliance is started.
type Config struct {
	// DataDir holds all state; created 0700 when missing.
	DataDir string
	// AdminAddr is HOST:PORT of the admin API ("127.0.0.1:0" picks a port).
	AdminAddr string
	// AdminToken says where the admin token comes from (see admintoken).
	AdminToken admintoken.Source
	// AdminCertFile and AdminKeyFile replace the generated admin server
	// certificate with the operator's.
	AdminCertFile, AdminKeyFile string
	// AdminSANs are extra names and IPs for the generated admin
	// certificate (the listen host, localhost and loopback are always in).
	AdminSANs []string
	// RecordingMaxAge and RecordingMaxBytes bound how long and how much
	// session recording is kept (0: no bound); older sessions are pruned.
	RecordingMaxAge   time.Duration
	RecordingMaxBytes int64
	// Logger receives structured logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Appliance is a provisioned sallyportd.
type Appliance struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	bolt   *boltstore.Backend
	tls    *tls.Config
	caPath string
	caFP   string
	token  bool // the admin token was generated on this start

	tokens     *admintoken.Set
	internalCA *pki.CA
	certs      *certificates.Manager
	registry   *prometheus.Registry
	recorder   *recording.Recorder
	sealer     *seal.Sealer

	mu            sync.Mutex
	listener      net.Listener
	server        *http.Server
	done          chan error
	gateway       *gateway.Server
	challenges    *certificates.ChallengeServer
	reconciler    *reconcile.Reconciler
	cancel        context.CancelFunc
	reconcileDone chan struct{}
}

// New provisions an appliance in cfg.DataDir: it opens (or creates) the
// store, the seal key, the admin token hash and the admin TLS material.
func New(cfg Config) (*Appliance, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("a data dir is required (--data-dir or SALLYPORT_DATA_DIR)")
	}
	if cfg.AdminAddr == "" {
		return nil, errors.New("an admin address is required (--admin-addr or SALLYPORT_ADMIN_ADDR)")
	}
	if _, _, err := net.SplitHostPort(cfg.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin address %q must be HOST:PORT: %w", cfg.AdminAddr, err)
	}
	if (cfg.AdminCertFile == "") != (cfg.AdminKeyFile == "") {
		return nil, errors.New("give both an admin certificate file and its key file, or neither")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cfg.DataDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data dir: %w", err)
	}
	a := &Appliance{cfg: cfg, log: cfg.Logger}
	if err := a.provision(); err != nil {
		_ = a.Stop(context.Background()) // the provisioning error is the one to report
		return nil, err
	}
	return a, nil
}

func (a *Appliance) provision() error {
	dir := a.cfg.DataDir
	// The store's file lock is the data dir's lock: take it before touching
	// anything else, so a second sallyportd on a busy data dir fails before
	// it rewrites the token hash or the admin certificate under the first.
	var err error
	a.bolt, err = boltstore.Open(filepath.Join(dir, StoreFile))
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	sealer, err := seal.LoadOrCreateKeyFile(filepath.Join(dir, SealKeyFile))
	if err != nil {
		return fmt.Errorf("secrets key: %w", err)
	}
	hash, generated, err := admintoken.Resolve(dir, a.cfg.AdminToken)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	a.token = generated
	tokens, err := admintoken.NewSet(hash)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := a.provisionTLS(); err != nil {
		return err
	}
	a.store = store.New(a.bolt, sealer)
	a.sealer = sealer
	a.tokens = tokens

	internalCA, err := pki.LoadOrCreateCA(dir, InternalCAName)
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	a.internalCA = internalCA
	a.certs, err = certificates.New(certificates.Config{DataDir: dir, Logger: a.log, InternalCA: internalCA})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.recorder, err = recording.New(recording.Options{
		Dir: dir, Anchors: a.store, Logger: a.log, Registry: a.registry,
		MaxAge: a.cfg.RecordingMaxAge, MaxBytes: a.cfg.RecordingMaxBytes,
	})
	if err != nil {
		return fmt.Errorf("session recording: %w", err)
	}
	return nil
}

// provisionTLS loads the operator's admin certificate or creates the admin
// CA and a server certificate issued by it.
func (a *Appliance) provisionTLS() error {
	dir := a.cfg.DataDir
	var cert tls.Certificate
	if a.cfg.AdminCertFile != "" {
		c, err := tls.LoadX509KeyPair(a.cfg.AdminCertFile, a.cfg.AdminKeyFile)
		if err != nil {
			return fmt.Errorf("loading the admin certificate: %w", err)
		}
		cert = c
		a.caPath, a.caFP = "", ""
		a.log.Info("admin API uses the operator's certificate", "cert_file", a.cfg.AdminCertFile)
	} else {
		ca, err := pki.LoadOrCreateCA(dir, pki.AdminCAName)
		if err != nil {
			return fmt.Errorf("admin CA: %w", err)
		}
		names := append([]string{}, a.cfg.AdminSANs...)
		if host, _, _ := net.SplitHostPort(a.cfg.AdminAddr); host != "" && host != "0.0.0.0" && host != "::" {
			names = append(names, host)
		}
		c, err := pki.LoadOrCreateServerCert(dir, ca, names)
		if err != nil {
			return fmt.Errorf("admin server certificate: %w", err)
		}
		cert = *c
		a.caPath = filepath.Join(dir, pki.AdminCAName+".pem")
		a.caFP = ca.Fingerprint()
		a.log.Info("admin CA ready", "ca_file", a.caPath, "ca_sha256_fingerprint", a.caFP)
	}
	a.tls = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	return nil
}

// Start listens on the admin address, brings the data path to the stored
// configuration, and serves in the background.
func (a *Appliance) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener != nil {
		return errors.New("the appliance is already started")
	}
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	// The data path may never dial the admin API, whatever a connection's
	// upstream resolves to.
	a.gateway, err = gateway.New(gateway.Options{
		Logger:      a.log,
		Registry:    a.registry,
		DeniedAddrs: []string{a.cfg.AdminAddr, ln.Addr().String()},
		Recorder:    a.recorder,
	})
	if err != nil {
		ln.Close()
		return err
	}
	a.challenges = certificates.NewChallengeServer(a.log)
	a.reconciler = reconcile.New(reconcile.Config{Store: a.store, Gateway: a.gateway, Certificates: a.certs, Challenges: a.challenges, Logger: a.log, MaskingHashKey: a.sealer.MaskingHashKey()})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	// Serve the stored configuration before declaring the appliance up.
	a.reconciler.ReconcileNow(ctx)
	a.reconcileDone = make(chan struct{})
	go func() {
		defer close(a.reconcileDone)
		if err := a.reconciler.Run(ctx); err != nil {
			a.log.Error("reconciler stopped", "error", err)
		}
	}()

	h := api.New(api.Config{
		Store: a.store, Tokens: a.tokens, Logger: a.log, Version: version.Version, Registry: a.registry,
		AfterWrite: func(ctx context.Context, rev uint64) error {
			ctx, cancel := context.WithTimeout(ctx, WriteLiveTimeout)
			defer cancel()
			return a.reconciler.WaitFor(ctx, rev)
		},
		ReconcileState: a.reconciler.State,
		Recordings:     a.recorder,
	})
	a.server = api.NewHTTPServer(a.cfg.AdminAddr, h, a.log)
	a.server.TLSConfig = a.tls
	a.listener = ln
	a.done = make(chan error, 1)
	go func() {
		err := a.server.Serve(tls.NewListener(ln, a.tls))
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.done <- err
	}()
	a.log.Info("admin API listening", "addr", ln.Addr().String(), "store", a.bolt.Name(), "data_dir", a.cfg.DataDir, "version", version.Version)
	return nil
}

// Done receives the admin server's error if it stops by itself.
func (a *Appliance) Done() <-chan error { return a.done }

// Stop drains the admin API and the data path until ctx ends, then closes
// the certificate manager and the store.
func (a *Appliance) Stop(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if a.listener != nil {
		errs = append(errs, a.server.Shutdown(ctx))
		a.listener = nil
	}
	if a.cancel != nil {
		a.cancel()
		<-a.reconcileDone
		a.cancel = nil
	}
	if a.gateway != nil {
		errs = append(errs, a.gateway.Close(ctx))
		a.gateway = nil
	}
	if a.challenges != nil {
		errs = append(errs, a.challenges.Close(ctx))
		a.challenges = nil
	}
	// After the gateway drained and before the store closes: open
	// sessions end with a signed manifest and their anchors.
	if a.recorder != nil {
		errs = append(errs, a.recorder.Close())
		a.recorder = nil
	}
	if a.certs != nil {
		errs = append(errs, a.certs.Close())
		a.certs = nil
	}
	errs = append(errs, a.closeStore())
	return errors.Join(errs...)
}

func (a *Appliance) closeStore() error {
	if a.bolt == nil {
		return nil
	}
	err := a.bolt.Close()
	a.bolt = nil
	return err
}

// Healthy reports whether the appliance can do its work: the store
// answers. It feeds the systemd watchdog.
func (a *Appliance) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.store.Backend().Revision(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Store returns the appliance's desired-state store.
func (a *Appliance) Store() *store.Store { return a.store }

// AdminEndpoint is the admin API's base URL, with the port actually bound.
func (a *Appliance) AdminEndpoint() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	addr := a.cfg.AdminAddr
	if a.listener != nil {
		addr = a.listener.Addr().String()
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, port)
}

// AdminCAFile is the path of the admin CA certificate ("" when the
// operator provided the admin certificate).
func (a *Appliance) AdminCAFile() string { return a.caPath }

// AdminCAFingerprint is the SHA-256 fingerprint of the admin CA (hex).
func (a *Appliance) AdminCAFingerprint() string { return a.caFP }

// TokenGenerated reports whether this start generated the admin token and
// wrote it to admintoken.TokenFile in the data dir.
func (a *Appliance) TokenGenerated() bool { return a.token }

// InternalCAFile is the path of the internal CA certificate, which issues
// self-signed gateway certificates: planners trust it to reach such a
// gateway.
func (a *Appliance) InternalCAFile() string {
	return filepath.Join(a.cfg.DataDir, InternalCAName+".pem")
}

// InternalCA returns the appliance's internal CA.
func (a *Appliance) InternalCA() *pki.CA { return a.internalCA }

// Reconciler returns the appliance's reconciler (nil before Start).
func (a *Appliance) Reconciler() *reconcile.Reconciler {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reconciler
}

// DataDir is the absolute data dir.
func (a *Appliance) DataDir() string { return a.cfg.DataDir }
