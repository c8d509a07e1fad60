// Package devdemo seeds `sallyportd dev` with a working demonstration of
// the data path: a local OpenID provider (devidp), an example executor that
// only accepts the gateway over mutual TLS, and the objects that join them
// (TLS settings, a gateway, a connection with an injected credential and a
// binding), so a newcomer can curl through the gateway at once.
package devdemo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// Names of the demo's objects and identities.
const (
	Hostname        = "demo.sallyport.localhost"
	Audience        = "sallyport-demo"
	PlannerClient   = "planner"
	PlannerSubject  = "planner@demo"
	IntruderClient  = "intruder"
	IntruderSubject = "intruder@demo"
	// ExecutorCredential is the credential the gateway injects; the
	// planner never holds it.
	ExecutorCredential = "Bearer demo-executor-credential"
)

// Options configure the demo.
type Options struct {
	// Store receives the demo objects.
	Store *store.Store
	// InternalCA issues the IdP's and the executor's certificates; it is the
	// appliance's internal CA, which also signs the gateway's self-signed
	// certificate, so one CA file serves every curl.
	InternalCA *pki.CA
	// WaitLive returns once the data path runs a store revision.
	WaitLive func(ctx context.Context, revision uint64) error
	// GatewayAddr is where the demo gateway listens (127.0.0.1:8444).
	GatewayAddr string
	// Logger receives the IdP's and executor's logs.
	Logger *slog.Logger
}

// Demo is a running demonstration.
type Demo struct {
	// GatewayURL is the demo gateway's base URL.
	GatewayURL string
	// GatewayAddr is the IP:port the gateway listens on.
	GatewayAddr string
	// Issuer is the local OpenID provider.
	Issuer string
	// PlannerToken is a fresh token of an identity the binding allows;
	// IntruderToken one of an identity it does not.
	PlannerToken, IntruderToken string

	idp      *devidp.IDP
	executor *http.Server
}

// secrets of the demo's OAuth clients: local, throw-away.
const plannerSecret, intruderSecret = "planner-secret", "intruder-secret"

// Start runs the IdP and the executor, seeds the objects, waits until the
// data path serves them and issues tokens.
func Start(ctx context.Context, opts Options) (*Demo, error) {
	if opts.GatewayAddr == "" {
		opts.GatewayAddr = "127.0.0.1:8444"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Demo{GatewayAddr: opts.GatewayAddr}
	if err := d.start(ctx, opts); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Demo) start(ctx context.Context, opts Options) error {
	ca := opts.InternalCA
	_, _, idpCert, err := ca.Issue(pki.IssueRequest{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.UsageServer})
	if err != nil {
		return fmt.Errorf("demo IdP certificate: %w", err)
	}
	d.idp, err = devidp.Start(ctx, devidp.Options{
		Certificate: idpCert,
		CACertPEM:   ca.CertPEM(),
		Audience:    []string{Audience},
		Logger:      opts.Logger,
		Clients: []devidp.Client{
			{ID: PlannerClient, Secret: plannerSecret, Subject: PlannerSubject, Claims: map[string]any{"groups": []string{"planners"}}},
			{ID: IntruderClient, Secret: intruderSecret, Subject: IntruderSubject},
		},
		TokenLifetime: 8 * time.Hour,
	})
	if err != nil {
		return fmt.Errorf("demo IdP: %w", err)
	}
	d.Issuer = d.idp.Issuer()

	executorURL, err := d.startExecutor(ca)
	if err != nil {
		return err
	}
	rev, err := seed(ctx, opts.Store, seedInput{
		gatewayAddr: opts.GatewayAddr, issuer: d.Issuer, caPEM: string(ca.CertPEM()), executorURL: executorURL,
	})
	if err != nil {
		return fmt.Errorf("seeding the demo objects: %w", err)
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := opts.WaitLive(wait, rev); err != nil {
		return fmt.Errorf("waiting for the demo gateway: %w", err)
	}
	if err := checkReady(ctx, opts.Store); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(opts.GatewayAddr)
	d.GatewayURL = "https://" + net.JoinHostPort(Hostname, port)
	if d.PlannerToken, err = d.idp.IssueToken(ctx, PlannerClient, plannerSecret); err != nil {
		return fmt.Errorf("issuing the planner's token: %w", err)
	}
	if d.IntruderToken, err = d.idp.IssueToken(ctx, IntruderClient, intruderSecret); err != nil {
		return fmt.Errorf("issuing the intruder's token: %w", err)
	}
	return nil
}

// startExecutor serves the example executor on a loopback port: it
// requires a client certificate from the internal CA (the gateway's mTLS
// identity) and answers with what it received, so the demo shows the
// injected credential arriving and the planner's token not.
func (d *Demo) startExecutor(ca *pki.CA) (string, error) {
	_, _, cert, err := ca.Issue(pki.IssueRequest{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.UsageServer})
	if err != nil {
		return "", fmt.Errorf("demo executor certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo executor: %w", err)
	}
	d.executor = &http.Server{
		Handler:           http.HandlerFunc(echo),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    ca.Pool(),
		},
	}
	go func() { _ = d.executor.ServeTLS(ln, "", "") }()
	return "https://" + ln.Addr().String(), nil
}

// echo is the example executor's only endpoint.
func echo(w http.ResponseWriter, r *http.Request) {
	headers := map[string]string{}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		headers[k] = strings.Join(r.Header[k], ", ")
	}
	var peer []string
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		for _, u := range r.TLS.PeerCertificates[0].URIs {
			peer = append(peer, u.String())
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{
		"executor":            "sallyport demo executor",
		"method":              r.Method,
		"path":                r.URL.Path,
		"headers_received":    headers,
		"gateway_client_cert": peer,
		"credential_injected": headers["Authorization"] == ExecutorCredential,
	})
}

// Close stops the IdP and the executor. The demo objects stay in the store
// (the next `sallyportd dev` replaces them).
func (d *Demo) Close() {
	if d.executor != nil {
		_ = d.executor.Close()
	}
	if d.idp != nil {
		_ = d.idp.Close()
	}
}

type seedInput struct {
	gatewayAddr, issuer, caPEM, executorURL string
}

// seed creates or replaces the demo objects and returns the store revision
// that holds them.
func seed(ctx context.Context, st *store.Store, in seedInput) (uint64, error) {
	w := store.Writer{Actor: "sallyportd-dev"}
	gwTLS, err := put(ctx, st, w, "demo-gateway", "", &model.TLSSettingsSpec{
		Certificate: model.CertificateSpec{Source: model.SourceSelfSigned},
	})
	if err != nil {
		return 0, err
	}
	upTLS, err := put(ctx, st, w, "demo-executor-mtls", "", &model.TLSSettingsSpec{
		Certificate: model.CertificateSpec{Source: model.SourceSelfSigned},
		PeerCAPEM:   in.caPEM,
	})
	if err != nil {
		return 0, err
	}
	gw, err := put(ctx, st, w, "demo", "", &model.GatewaySpec{
		ListenAddr: in.gatewayAddr, Hostnames: []string{Hostname}, TLSSettingsID: gwTLS,
		OIDCProviders: []model.OIDCProvider{{IssuerURL: in.issuer, Audiences: []string{Audience}, CAPEM: in.caPEM}},
	})
	if err != nil {
		return 0, err
	}
	conn, err := put(ctx, st, w, "executor", gw, &model.ConnectionSpec{
		GatewayID: gw, Protocol: model.ProtocolHTTP, Hostname: Hostname,
		UpstreamURL: in.executorURL, UpstreamTLSSettingsID: upTLS,
		InjectHeaders: map[string]*model.Secret{"Authorization": model.NewSecret(ExecutorCredential)},
		// Every demo session is recorded: `sallyportd recordings list`
		// shows them once the dev appliance stops (or over the admin API).
		Recording: &model.RecordingSpec{Enabled: true},
	})
	if err != nil {
		return 0, err
	}
	if _, err := put(ctx, st, w, "planner", conn, &model.IdentityBindingSpec{
		ConnectionID: conn, Issuer: in.issuer, Subject: PlannerSubject,
		AllowedMethods: []string{"GET", "POST"}, AllowedPaths: []string{"/**"},
	}); err != nil {
		return 0, err
	}
	return st.Backend().Revision(ctx)
}

// put creates the object, or replaces the one of that name in that scope.
func put(ctx context.Context, st *store.Store, w store.Writer, name, parent string, spec model.Spec) (string, error) {
	existing, err := st.List(ctx, spec.Kind(), store.ListOptions{Name: name, Parent: parent})
	if err != nil {
		return "", err
	}
	if len(existing) == 0 {
		o, err := st.Create(ctx, w, name, spec)
		if err != nil {
			return "", fmt.Errorf("%s %q: %w", spec.Kind().Title(), name, err)
		}
		return o.ID, nil
	}
	o, err := st.Replace(ctx, w, spec.Kind(), existing[0].ID, 0, name, spec)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", spec.Kind().Title(), name, err)
	}
	return o.ID, nil
}

// checkReady fails with the reconciler's message when a demo object did
// not go live (a port in use, say).
func checkReady(ctx context.Context, st *store.Store) error {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, kind := range model.Kinds {
		for _, o := range snap.Objects[kind] {
			if !o.Status.Ready {
				problems = append(problems, fmt.Sprintf("%s %q: %s", kind.Title(), o.Name, o.Status.Message))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New("demo objects are not live: " + strings.Join(problems, "; "))
	}
	return nil
}

// CurlAllowed is a command that goes through the gateway as the planner.
func (d *Demo) CurlAllowed(caFile string) string {
	return d.curl(caFile, d.PlannerToken, "/jobs/hello")
}

// CurlDenied is a command the gateway refuses (403): a valid token of an
// identity no binding allows.
func (d *Demo) CurlDenied(caFile string) string {
	return d.curl(caFile, d.IntruderToken, "/jobs/hello")
}

// CurlNoToken is a command the gateway refuses (401): no token at all.
func (d *Demo) CurlNoToken(caFile string) string { return d.curl(caFile, "", "/jobs/hello") }

// TokenCommand is how to get a fresh planner token from the local IdP.
func (d *Demo) TokenCommand(caFile string) string {
	return fmt.Sprintf("curl -s --cacert %s -u %s:%s -d grant_type=client_credentials %s/oauth/token",
		caFile, PlannerClient, plannerSecret, d.Issuer)
}

func (d *Demo) curl(caFile, token, path string) string {
	host, port, _ := net.SplitHostPort(d.GatewayAddr)
	auth := ""
	if token != "" {
		auth = fmt.Sprintf(" -H \"Authorization: Bearer %s\"", token)
	}
	return fmt.Sprintf("curl --cacert %s --resolve %s:%s:%s%s %s%s", caFile, Hostname, port, host, auth, d.GatewayURL, path)
}

// Client returns an HTTP client that trusts caPEM and resolves the demo
// hostname to the gateway, for tests and checks.
func (d *Demo) Client(caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, d.GatewayAddr)
		},
		ForceAttemptHTTP2: true,
	}}
}
