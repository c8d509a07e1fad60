package certificates

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// dnsAddr is the loopback TCP address of the challtestsrv DNS server that
// Pebble's VA resolves test hostnames with (every name: 127.0.0.1).
var dnsAddr string

func TestMain(m *testing.M) {
	// Read by pebble's va.New and wfe.New: validate at once, and never
	// reject a good nonce (certmagic would retry, slowly).
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	stop, err := startDNS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start DNS:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startDNS runs challtestsrv's DNS handler on a loopback listener bound
// here, so its port is known without a pick-then-bind race. challtestsrv
// registers its handler on miekg/dns's default mux when constructed; the
// server below serves that mux (Pebble's VA queries over TCP).
func startDNS() (func(), error) {
	srv, err := challtestsrv.New(challtestsrv.Config{
		DNSAddrs: []string{"127.0.0.1:0"}, // required by New; never bound (Run is not called)
		Log:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, err
	}
	srv.SetDefaultDNSIPv4("127.0.0.1")
	srv.SetDefaultDNSIPv6("") // the VA dials the first address: keep it IPv4
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ds := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.DefaultServeMux}
	go func() { _ = ds.ActivateAndServe() }()
	dnsAddr = ln.Addr().String()

	// Ready when it answers.
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	q := new(dns.Msg)
	q.SetQuestion("probe.sallyport.test.", dns.TypeA)
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, _, err := c.Exchange(q, dnsAddr)
		if err == nil && len(in.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("DNS server at %s did not answer: %w", dnsAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() { _ = ds.Shutdown() }, nil
}

// testLog writes to t.Log until the test ends (goroutines of Pebble and
// certmagic may outlive it).
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestLog(t *testing.T) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Helper()
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(newTestLog(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// pebble is an in-process Pebble ACME server.
type pebble struct {
	dirURL   string
	tlsRoots string         // PEM: verifies the directory's HTTPS
	roots    *x509.CertPool // verifies the certificates it issues
	srv      *httptest.Server
}

type pebbleOptions struct {
	// tlsPort and httpPort are where the VA connects for TLS-ALPN-01 and
	// HTTP-01 (on 127.0.0.1, through DNS).
	tlsPort, httpPort int
	// validity of issued certificates (Pebble's default, 90 days, when 0).
	validity time.Duration
	// eab, when set, makes External Account Binding required: key id ->
	// base64url HMAC key.
	eab map[string]string
}

func startPebble(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	logger := log.New(newTestLog(t), "pebble ", 0)
	db := pebbledb.NewMemoryStore()
	ca := pebbleca.New(logger, db, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{
		"default": {Description: "test", ValidityPeriod: uint64(o.validity / time.Second)},
	})
	va := pebbleva.New(logger, o.httpPort, o.tlsPort, false, dnsAddr, db)
	for id, key := range o.eab {
		if err := db.AddExternalAccountKeyByID(id, key); err != nil {
			t.Fatal(err)
		}
	}
	wfe := pebblewfe.New(logger, db, va, ca, []string{"pebble.letsencrypt.org"}, false, len(o.eab) > 0, 0, 0)
	srv := httptest.NewUnstartedServer(wfe.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ca.GetRootCert(0).Cert)
	return &pebble{
		dirURL:   srv.URL + pebblewfe.DirectoryPath,
		tlsRoots: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})),
		roots:    roots,
		srv:      srv,
	}
}

func (p *pebble) spec() *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{
		MinVersion: model.TLS12,
		Certificate: model.CertificateSpec{
			Source: model.SourceACME,
			ACME: &model.ACMESpec{
				DirectoryURL:    p.dirURL,
				Email:           "ops@sallyport.test",
				TrustedRootsPEM: p.tlsRoots,
			},
		},
	}
}

// gateway is a TLS listener on 127.0.0.1 that serves with whatever Serving
// is set, configured the way the data path does it.
type gateway struct {
	ln      net.Listener
	serving atomic.Pointer[Serving]
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{ln: ln}
	cfg := &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := g.serving.Load()
			if s == nil {
				return nil, errors.New("no serving configured")
			}
			c := &tls.Config{
				GetCertificate: s.GetCertificate,
				NextProtos:     append(slices.Clone(s.NextProtos), "http/1.1"),
			}
			ConfigureServer(c, tls.VersionTLS12)
			return c, nil
		},
	}
	var wg sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				tc := tls.Server(conn, cfg)
				if tc.HandshakeContext(ctx) != nil {
					return
				}
				// Wait for the client to hang up (it reads nothing).
				_, _ = io.Copy(io.Discard, tc)
			})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return g
}

func (g *gateway) port() int { return g.ln.Addr().(*net.TCPAddr).Port }

// handshake dials addr as a verifying client and returns the leaf served.
func handshake(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"http/1.1"}}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// refusingListener accepts connections and closes them at once: a port
// that answers no challenge.
func refusingListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it returns true or timeout passes, then fails
// with cond's last explanation.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newManager(t *testing.T, dataDir string, cfg Config) *Manager {
	t.Helper()
	cfg.DataDir = dataDir
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func internalCA(t *testing.T, dir string) *pki.CA {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(dir, "internal-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// secrets is a ServingRequest.Secret over a map.
func secrets(m map[string]string) func(string) (string, error) {
	return func(path string) (string, error) {
		v, ok := m[path]
		if !ok {
			return "", fmt.Errorf("no secret at %s", path)
		}
		return v, nil
	}
}

func fingerprint(c *x509.Certificate) string { return pki.Fingerprint(c) }

var hostSeq atomic.Int64

// uniqueHost returns a hostname no other test in this process uses:
// certmagic keeps some state per hostname process-wide (active challenges,
// renewal job names and their failure backoff), which would otherwise carry
// over between tests or -count runs.
func uniqueHost(prefix string) string {
	return fmt.Sprintf("%s-%d.sallyport.test", prefix, hostSeq.Add(1))
}
