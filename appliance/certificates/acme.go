package certificates

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// issuerMu serializes building certmagic configs and issuers: certmagic
// reads the HTTP client timeout from a package variable
// (certmagic.HTTPTimeout) when it builds an ACME issuer.
var issuerMu sync.Mutex

// acmeUnit manages the ACME certificates of one set of hostnames under one
// ACME configuration: a certmagic cache (whose maintenance goroutine renews
// them) and config. Identical Serving requests share a unit.
type acmeUnit struct {
	key   string
	dir   string
	hosts hostSet

	cache  *certmagic.Cache
	cfg    atomic.Pointer[certmagic.Config]
	issuer *certmagic.ACMEIssuer
	// ctx bounds the unit's management; cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc

	refs int // guarded by Manager.mu

	mu      sync.Mutex
	lastErr map[string]attemptError // hostname -> last failed attempt

	stopOnce sync.Once
}

// acmeServing returns a Serving backed by a (possibly shared) acmeUnit.
func (m *Manager) acmeServing(ctx context.Context, req ServingRequest, hosts hostSet) (*Serving, error) {
	a := req.Spec.Certificate.ACME
	if a == nil {
		return nil, errors.New(`source "acme" without acme settings`)
	}
	if hosts.hasWildcard() {
		return nil, fmt.Errorf("ACME: wildcard hostnames (%s) need the DNS-01 challenge, which the appliance does not answer; list the names explicitly or use a static certificate",
			strings.Join(wildcards(hosts), ", "))
	}
	if a.DirectoryURL == "" {
		return nil, errors.New("ACME: directory_url is empty")
	}
	var hmac string
	if a.EABKeyID != "" {
		v, err := secretValue(req.Secret, model.PathEABHMAC)
		if err != nil {
			return nil, fmt.Errorf("ACME: external account binding: %w", err)
		}
		// acmez wants unpadded base64url; operators paste either form.
		hmac = strings.TrimRight(strings.TrimSpace(v), "=")
	}
	key := unitKey(req.TLSSettingsID, a, hmac, hosts)

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("the certificate manager is closed")
	}
	u := m.units[key]
	if u != nil {
		u.refs++
		m.mu.Unlock()
		return m.servingFor(u), nil
	}
	m.mu.Unlock()

	// Build outside the lock (it reads storage); a concurrent identical
	// request may build one too, and the loser is discarded below.
	u, err := m.newACMEUnit(ctx, key, a, hmac, hosts)
	if err != nil {
		return nil, fmt.Errorf("ACME: %w", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		u.stop()
		return nil, errors.New("the certificate manager is closed")
	}
	if other := m.units[key]; other != nil {
		other.refs++
		m.mu.Unlock()
		u.stop()
		return m.servingFor(other), nil
	}
	u.refs = 1
	m.units[key] = u
	m.mu.Unlock()
	if err := u.start(); err != nil {
		m.release(u)
		return nil, fmt.Errorf("ACME: %w", err)
	}
	return m.servingFor(u), nil
}

func wildcards(hs hostSet) []string {
	var out []string
	for _, n := range hs.names {
		if strings.HasPrefix(n, "*.") {
			out = append(out, n)
		}
	}
	return out
}

// unitKey identifies an ACME configuration and hostname set; the HMAC is
// hashed in, never kept.
func unitKey(id string, a *model.ACMESpec, hmac string, hosts hostSet) string {
	h := sha256.New()
	for _, s := range []string{id, a.DirectoryURL, a.Email, a.TrustedRootsPEM, a.EABKeyID, hmac, a.HTTPChallengeAddr} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	for _, n := range hosts.names {
		fmt.Fprintf(h, "%d:%s;", len(n), n)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newACMEUnit builds the certmagic cache, config and issuer for a, and
// loads the certificates already in storage so that a restart serves them
// at once, without contacting the CA.
func (m *Manager) newACMEUnit(ctx context.Context, key string, a *model.ACMESpec, hmac string, hosts hostSet) (*acmeUnit, error) {
	u := &acmeUnit{key: key, dir: a.DirectoryURL, hosts: hosts, lastErr: make(map[string]attemptError)}
	logger := newZapLogger(m.log.With("component", "certmagic", "directory", a.DirectoryURL).Handler())

	issuerTemplate := certmagic.ACMEIssuer{
		CA: a.DirectoryURL,
		// Retries go to the declared CA only, never to a staging CA the
		// operator did not declare.
		TestCA: a.DirectoryURL,
		Email:  a.Email,
		Agreed: true,
		// TLS-ALPN-01 is always on: the gateway answers it on its own
		// listener. HTTP-01 only where the gateway listens for it.
		DisableHTTPChallenge: a.HTTPChallengeAddr == "",
		// certmagic binds a challenge listener at ListenHost:port unless
		// something already listens there. Pointing it at the Manager's
		// placeholder listener keeps it from ever binding a port (a race
		// with the gateway's own listeners); the challenges reach certmagic
		// through Serving.GetCertificate and Serving.HTTPChallenge.
		ListenHost:     m.challengeAddr.IP.String(),
		AltHTTPPort:    m.challengeAddr.Port,
		AltTLSALPNPort: m.challengeAddr.Port,
		Logger:         logger,
		// certmagic may fill an empty email from another issuer in the
		// process; the contact the CA sees is exactly the declared one.
		NewAccountFunc: func(_ context.Context, _ *certmagic.ACMEIssuer, acct acme.Account) (acme.Account, error) {
			acct.Contact = nil
			if a.Email != "" {
				acct.Contact = []string{"mailto:" + a.Email}
			}
			return acct, nil
		},
	}
	if a.TrustedRootsPEM != "" {
		pool, err := certPool(a.TrustedRootsPEM)
		if err != nil {
			return nil, fmt.Errorf("trusted_roots_pem: %w", err)
		}
		issuerTemplate.TrustedRoots = pool
	}
	if a.EABKeyID != "" {
		issuerTemplate.ExternalAccount = &acme.EAB{KeyID: a.EABKeyID, MACKey: hmac}
	}

	// Management outlives the request that started it.
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			cfg := u.cfg.Load()
			if cfg == nil {
				return nil, errors.New("certificate config not ready")
			}
			return cfg, nil
		},
		RenewCheckInterval: m.cfg.RenewCheckInterval,
		Logger:             logger,
	})

	issuerMu.Lock()
	defaultTimeout := certmagic.HTTPTimeout
	if m.cfg.HTTPClientTimeout > 0 {
		certmagic.HTTPTimeout = m.cfg.HTTPClientTimeout
	}
	cfg := certmagic.New(u.cache, certmagic.Config{
		RenewalWindowRatio: m.cfg.RenewalWindowRatio,
		OnEvent:            u.onEvent,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		Storage:            m.storage,
		Logger:             logger,
	})
	u.issuer = certmagic.NewACMEIssuer(cfg, issuerTemplate)
	certmagic.HTTPTimeout = defaultTimeout
	issuerMu.Unlock()
	cfg.Issuers = []certmagic.Issuer{u.issuer}
	u.cfg.Store(cfg)

	for _, name := range hosts.names {
		cert, err := cfg.CacheManagedCertificate(ctx, name)
		if err != nil {
			continue // not in storage yet (or unreadable): start() obtains it
		}
		// A stored certificate due for renewal is dropped again so that
		// start() renews it now rather than at the next maintenance tick.
		if cert.NeedsRenewal(cfg) {
			u.cache.Remove([]string{cert.Hash()})
		}
	}
	return u, nil
}

// start begins managing the unit's hostnames: obtaining what is missing,
// renewing what is due, with certmagic's retries and backoff.
func (u *acmeUnit) start() error {
	return u.cfg.Load().ManageAsync(u.ctx, u.hosts.names)
}

// stop ends the unit's management: maintenance, pending obtain and renewal.
func (u *acmeUnit) stop() {
	u.stopOnce.Do(func() {
		u.cancel()
		u.cache.Stop()
	})
}

// release drops one reference to u and stops it with the last.
func (m *Manager) release(u *acmeUnit) {
	m.mu.Lock()
	u.refs--
	last := u.refs == 0
	if last && m.units != nil && m.units[u.key] == u {
		delete(m.units, u.key)
	}
	m.mu.Unlock()
	if last {
		u.stop()
	}
}

// attemptError is a failed obtain or renewal attempt.
type attemptError struct {
	msg     string
	renewal bool
}

// onEvent records the outcome of certmagic's obtain and renewal attempts
// for Ready.
func (u *acmeUnit) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	switch event {
	case "cert_failed":
		e := attemptError{msg: "unknown error"}
		if err, ok := data["error"].(error); ok {
			e.msg = err.Error()
		}
		e.renewal, _ = data["renewal"].(bool)
		u.mu.Lock()
		u.lastErr[name] = e
		u.mu.Unlock()
	case "cert_obtained":
		u.mu.Lock()
		delete(u.lastErr, name)
		u.mu.Unlock()
	}
	return nil
}

// current returns the unexpired certificate cached for name (the newest if
// there are several), or nil.
func (u *acmeUnit) current(name string) *certmagic.Certificate {
	var best *certmagic.Certificate
	for _, c := range u.cache.AllMatchingCertificates(name) {
		if c.Leaf == nil || c.Expired() {
			continue
		}
		if best == nil || c.Leaf.NotAfter.After(best.Leaf.NotAfter) {
			best = &c
		}
	}
	return best
}

func (u *acmeUnit) ready() (bool, string) {
	var missing []string
	for _, n := range u.hosts.names {
		if u.current(n) == nil {
			missing = append(missing, n)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(missing) == 0 {
		for _, n := range u.hosts.names {
			if e, ok := u.lastErr[n]; ok && e.renewal {
				return true, fmt.Sprintf("serving a valid certificate for %s; renewing it from %s failed: %s", n, u.dir, e.msg)
			}
		}
		return true, ""
	}
	for _, n := range missing {
		if e, ok := u.lastErr[n]; ok {
			return false, fmt.Sprintf("obtaining a certificate for %s from %s failed: %s", n, u.dir, e.msg)
		}
	}
	return false, fmt.Sprintf("obtaining a certificate for %s from %s...", strings.Join(missing, ", "), u.dir)
}

func (u *acmeUnit) status() *model.CertificateStatus {
	for _, n := range u.hosts.names {
		if c := u.current(n); c != nil {
			return StatusOf(c.Leaf)
		}
	}
	return nil
}

// servingFor wraps u for one Serving caller.
func (m *Manager) servingFor(u *acmeUnit) *Serving {
	var once sync.Once
	s := &Serving{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			// Only declared names reach certmagic, the TLS-ALPN-01
			// challenge included: there is no on-demand issuance.
			if !u.hosts.match(hello.ServerName) {
				return nil, refuseName(hello.ServerName)
			}
			return u.cfg.Load().GetCertificate(hello)
		},
		NextProtos: []string{acmez.ACMETLS1Protocol},
		Ready:      u.ready,
		Status:     u.status,
		Close:      func() { once.Do(func() { m.release(u) }) },
	}
	if !u.issuer.DisableHTTPChallenge {
		challenges := u.issuer.HTTPChallengeHandler(http.NotFoundHandler())
		s.HTTPChallenge = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !u.hosts.match(hostOnly(r.Host)) {
				http.NotFound(w, r)
				return
			}
			challenges.ServeHTTP(w, r)
		})
	}
	return s
}

// hostOnly strips the port from a Host header.
func hostOnly(hostport string) string {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		return strings.Trim(hostport[:i], "[]")
	}
	return strings.Trim(hostport, "[]")
}
