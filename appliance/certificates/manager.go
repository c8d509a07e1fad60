package certificates

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// Config configures a Manager.
type Config struct {
	// DataDir is the appliance's data directory. ACME state lives in
	// DataDir/certmagic, self-signed certificates in DataDir/selfsigned.
	DataDir string
	// Logger receives the Manager's and certmagic's logs (slog.Default()
	// when nil).
	Logger *slog.Logger
	// InternalCA issues self_signed serving certificates and upstream client
	// certificates. The caller creates it with
	// pki.LoadOrCreateCA(dataDir, "internal-ca"). Without it, source
	// "self_signed" is refused.
	InternalCA *pki.CA
	// HTTPClientTimeout bounds each HTTP request to an ACME CA (certmagic's
	// default, 30s, when zero).
	HTTPClientTimeout time.Duration
	// RenewalWindowRatio is the fraction of a certificate's lifetime, at its
	// end, in which certmagic renews it (certmagic's default, 1/3, when
	// zero). ACME Renewal Information from the CA can make it earlier.
	RenewalWindowRatio float64
	// RenewCheckInterval is how often certificates are checked for renewal
	// (certmagic's default, 10 minutes, when zero).
	RenewCheckInterval time.Duration
}

// closeTimeout bounds how long Close waits for certmagic operations already
// under way to let go of the storage.
const closeTimeout = 30 * time.Second

// Manager provides serving certificates and upstream TLS configurations.
// It is safe for concurrent use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	storage *guardedStorage
	selfDir string

	// challengeAddr is a loopback listener the Manager holds open only so
	// that certmagic's challenge solvers, pointed at it, find the port in
	// use and leave answering to the gateway instead of binding a listener
	// of their own (see acmeUnit).
	challengeAddr *net.TCPAddr
	challengeLn   net.Listener
	acceptDone    chan struct{}

	mu     sync.Mutex
	units  map[string]*acmeUnit
	closed bool

	// selfMu serializes issuing and persisting self-signed certificates so
	// two reconciliations never write different certificates to one path.
	selfMu sync.Mutex
}

// New creates a Manager over cfg.DataDir.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("certificates: data directory is empty")
	}
	if cfg.RenewalWindowRatio < 0 || cfg.RenewalWindowRatio >= 1 {
		return nil, fmt.Errorf("certificates: renewal window ratio %v is outside [0, 1)", cfg.RenewalWindowRatio)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cmDir := filepath.Join(cfg.DataDir, "certmagic")
	selfDir := filepath.Join(cfg.DataDir, "selfsigned")
	for _, dir := range []string{cmDir, selfDir} {
		// Both hold private keys: only the appliance may read them.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("certificates: create %s: %w", dir, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("certificates: open the placeholder challenge listener: %w", err)
	}
	m := &Manager{
		cfg:           cfg,
		log:           logger,
		storage:       newGuardedStorage(&certmagic.FileStorage{Path: cmDir}),
		selfDir:       selfDir,
		challengeAddr: ln.Addr().(*net.TCPAddr),
		challengeLn:   ln,
		acceptDone:    make(chan struct{}),
		units:         make(map[string]*acmeUnit),
	}
	go m.refuseChallengeConns()
	return m, nil
}

// refuseChallengeConns closes every connection to the placeholder listener:
// certmagic only dials it to see that something listens there.
func (m *Manager) refuseChallengeConns() {
	defer close(m.acceptDone)
	for {
		c, err := m.challengeLn.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
	}
}

// Close stops all certificate management: certmagic's maintenance and any
// pending issuance or renewal. It waits (up to 30s) for storage operations
// already under way, so that nothing writes to the data directory after it
// returns. Servings already handed out keep answering with the certificates
// they hold. Close is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	units := make([]*acmeUnit, 0, len(m.units))
	for _, u := range m.units {
		units = append(units, u)
	}
	m.units = nil
	m.mu.Unlock()

	for _, u := range units {
		u.stop()
	}
	err := m.storage.close(closeTimeout)
	_ = m.challengeLn.Close()
	<-m.acceptDone
	if err != nil {
		return fmt.Errorf("certificates: close: %w", err)
	}
	return nil
}
