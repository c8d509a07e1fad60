package reconcile_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/apitest"
	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// world is a running appliance, an executor over TLS, and a planner with a
// client certificate (its identity), all on loopback.
type world struct {
	app      *apitest.Appliance
	api      *client.Client
	ca       *pki.CA
	executor string // https URL
	planner  *http.Client
	gwAddr   string
	seen     atomic.Value // last Authorization the executor saw
}

const host = "jobs.sallyport.test"

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{app: apitest.Start(t)}
	var err error
	w.api, err = client.New(client.Config{Endpoint: w.app.Endpoint, Token: w.app.Token, CACertPEM: w.app.CACertPEM})
	if err != nil {
		t.Fatal(err)
	}
	w.ca, err = pki.LoadOrCreateCA(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	// The executor.
	_, _, execCert, err := w.ca.Issue(pki.IssueRequest{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.UsageServer})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*execCert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.seen.Store(r.Header.Get("Authorization"))
		_, _ = io.WriteString(rw, "ok "+r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	w.executor = "https://" + ln.Addr().String()

	// The planner: identified by a client certificate with a SPIFFE ID.
	_, _, plannerCert, err := w.ca.Issue(pki.IssueRequest{CommonName: "planner", URIs: []*url.URL{{Scheme: "spiffe", Host: "test", Path: "/planner"}}, Usage: pki.UsageClient})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	internal, err := pki.LoadOrCreateCA(w.app.DataDir, "internal-ca")
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(internal.Certificate())
	w.gwAddr = freeAddr(t)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*plannerCert}, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, w.gwAddr)
		},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	w.planner = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return w
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// objects creates the chain and returns the gateway and connection.
func (w *world) objects(t *testing.T) (*model.Gateway, *model.Connection) {
	t.Helper()
	ctx := t.Context()
	gwTLS, err := w.api.TLSSettings().Create(ctx, "edge", model.TLSSettingsSpec{
		Certificate: model.CertificateSpec{Source: model.SourceSelfSigned},
		ClientAuth:  model.ClientAuthRequire, PeerCAPEM: string(w.ca.CertPEM()),
	})
	if err != nil {
		t.Fatal(err)
	}
	upTLS, err := w.api.TLSSettings().Create(ctx, "executor", model.TLSSettingsSpec{
		Certificate: model.CertificateSpec{Source: model.SourceNone}, PeerCAPEM: string(w.ca.CertPEM()),
	})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := w.api.Gateways().Create(ctx, "gw", model.GatewaySpec{ListenAddr: w.gwAddr, Hostnames: []string{host}, TLSSettingsID: gwTLS.ID})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := w.api.Connections().Create(ctx, "exec", model.ConnectionSpec{
		GatewayID: gw.ID, Protocol: model.ProtocolHTTP, Hostname: host, UpstreamURL: w.executor,
		UpstreamTLSSettingsID: upTLS.ID,
		InjectHeaders:         map[string]*model.Secret{"Authorization": model.NewSecret("Bearer v0")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.api.IdentityBindings().Create(ctx, "planner", model.IdentityBindingSpec{
		ConnectionID: conn.ID, ClientCertURISAN: "spiffe://test/planner",
	}); err != nil {
		t.Fatal(err)
	}
	return gw, conn
}

func (w *world) get(path string) (int, error) {
	resp, err := w.planner.Get("https://" + host + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// TestWriteReturnsWhenLive: an admin write answers only once the data path
// runs it, so the very next request sees it, and statuses say so.
func TestWriteReturnsWhenLive(t *testing.T) {
	w := newWorld(t)
	gw, conn := w.objects(t)
	// No polling: the create calls returned after the change went live.
	if code, err := w.get("/hello"); err != nil || code != 200 {
		t.Fatalf("first request after the writes: %d %v", code, err)
	}
	if got := w.seen.Load(); got != "Bearer v0" {
		t.Errorf("executor saw Authorization %q, want the injected one", got)
	}
	g, err := w.api.Gateways().Get(t.Context(), gw.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Status.Ready || g.Status.ObservedGeneration != 1 || g.Status.Certificate == nil || len(g.Status.Certificate.SHA256Fingerprint) != 64 {
		t.Errorf("gateway status: %+v", g.Status)
	}
	// A new secret value is live when the replace returns.
	spec := conn.Spec
	spec.InjectHeaders = map[string]*model.Secret{"Authorization": model.NewSecret("Bearer v1")}
	c2, err := w.api.Connections().Replace(t.Context(), conn.ID, conn.Name, spec, client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.get("/hello"); err != nil || w.seen.Load() != "Bearer v1" {
		t.Errorf("after the replace the executor saw %q (%v)", w.seen.Load(), err)
	}
	if !c2.Status.Ready || c2.Status.ObservedGeneration != 2 {
		t.Errorf("connection status after replace: %+v", c2.Status)
	}
}

// TestFailedChangeKeepsOldServing: a gateway change that cannot go live
// (its new address is taken) leaves the old version serving, and the
// status says why; fixing it recovers.
func TestFailedChangeKeepsOldServing(t *testing.T) {
	w := newWorld(t)
	gw, _ := w.objects(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	spec := gw.Spec
	spec.ListenAddr = busy.Addr().String()
	g2, err := w.api.Gateways().Replace(t.Context(), gw.ID, gw.Name, spec, client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g2.Status.Ready || g2.Status.ObservedGeneration != 2 || !strings.Contains(g2.Status.Message, "address already in use") {
		t.Errorf("status of a gateway whose address is taken: %+v", g2.Status)
	}
	if code, err := w.get("/still"); err != nil || code != 200 {
		t.Errorf("the old version stopped serving: %d %v", code, err)
	}
	// Back to a free address: ready again.
	spec.ListenAddr = w.gwAddr
	g3, err := w.api.Gateways().Replace(t.Context(), gw.ID, gw.Name, spec, client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !g3.Status.Ready || g3.Status.ObservedGeneration != 3 {
		t.Errorf("status after the fix: %+v", g3.Status)
	}
}

// TestReloadUnderLoad applies 100 configuration changes through the admin
// API while requests flow, over kept-alive and fresh connections; not one
// request may fail.
func TestReloadUnderLoad(t *testing.T) {
	w := newWorld(t)
	_, conn := w.objects(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if i == 0 && n%5 == 0 {
					w.planner.Transport.(*http.Transport).CloseIdleConnections() // fresh handshakes too
				}
				code, err := w.get(fmt.Sprintf("/load/%d/%d", i, n))
				if err != nil || code != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d err %v", code, err))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	spec := conn.Spec
	for i := range 100 {
		spec.InjectHeaders = map[string]*model.Secret{"Authorization": model.NewSecret(fmt.Sprintf("Bearer v%d", i+1))}
		spec.PathPrefix = ""
		if i%2 == 1 {
			spec.PathPrefix = "/load"
		}
		if _, err := w.api.Connections().Replace(t.Context(), conn.ID, conn.Name, spec, client.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during 100 reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests ran during the reloads", ok.Load())
	}
	t.Logf("%d requests, 0 failed, across 100 reloads", ok.Load())
}

// TestConcurrentWritesAllLive: writes that land together share rebuilds,
// yet each returns only once it is live: a connection's binding created by
// one of 16 concurrent writers admits the planner as soon as the create
// returns, through a connection built by an earlier rebuild (kept) or by
// this one.
func TestConcurrentWritesAllLive(t *testing.T) {
	w := newWorld(t)
	gw, conn := w.objects(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			c, err := w.api.Connections().Create(t.Context(), fmt.Sprintf("c%d", i), model.ConnectionSpec{
				GatewayID: gw.ID, Protocol: model.ProtocolHTTP, Hostname: host, PathPrefix: fmt.Sprintf("/c%d", i),
				UpstreamURL: w.executor, UpstreamTLSSettingsID: conn.Spec.UpstreamTLSSettingsID,
				InjectHeaders: map[string]*model.Secret{"Authorization": model.NewSecret(fmt.Sprintf("Bearer c%d", i))},
			})
			if err != nil {
				errs <- err
				return
			}
			if !c.Status.Ready || c.Status.ObservedGeneration != 1 {
				errs <- fmt.Errorf("connection c%d answered with status %+v", i, c.Status)
			}
			if code, err := w.get(fmt.Sprintf("/c%d/x", i)); err != nil || code != http.StatusForbidden {
				errs <- fmt.Errorf("c%d without a binding: %d %w, want 403", i, code, err)
			}
			if _, err := w.api.IdentityBindings().Create(t.Context(), "planner", model.IdentityBindingSpec{
				ConnectionID: c.ID, ClientCertURISAN: "spiffe://test/planner",
			}); err != nil {
				errs <- err
				return
			}
			if code, err := w.get(fmt.Sprintf("/c%d/x", i)); err != nil || code != http.StatusOK {
				errs <- fmt.Errorf("c%d right after its binding: %d %w, want 200", i, code, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
