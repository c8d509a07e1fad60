package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Identity of the load generator at the benchmark's OpenID provider.
const (
	Audience       = "sallyport-bench"
	PlannerClient  = "planner"
	PlannerSecret  = "planner-secret"
	PlannerSubject = "planner@bench"
)

// Path prefixes of Sallyport's connections: the plain one routes "/", the
// others their prefix (the executor ignores it).
const (
	PrefixMasking   = "/masked"
	PrefixRecording = "/recorded"
)

// StartIDP starts the OpenID provider the Sallyport peer trusts and issues
// the load generator's token (valid for lifetime).
func StartIDP(ctx context.Context, lifetime time.Duration) (*devidp.IDP, string, error) {
	idp, err := devidp.Start(ctx, devidp.Options{
		Audience:      []string{Audience},
		Clients:       []devidp.Client{{ID: PlannerClient, Secret: PlannerSecret, Subject: PlannerSubject}},
		TokenLifetime: lifetime,
	})
	if err != nil {
		return nil, "", fmt.Errorf("OpenID provider: %w", err)
	}
	tok, err := idp.IssueToken(ctx, PlannerClient, PlannerSecret)
	if err != nil {
		_ = idp.Close()
		return nil, "", err
	}
	return idp, tok, nil
}

// SallyportSetup is what the benchmark configures on an appliance.
type SallyportSetup struct {
	// GatewayAddr is where the gateway listens.
	GatewayAddr string
	// ExecutorAddr is the executor (127.0.0.1:PORT).
	ExecutorAddr string
	// Material is the shared TLS material.
	Material *Material
	// Issuer and IssuerCAPEM are the OpenID provider.
	Issuer      string
	IssuerCAPEM []byte
	// Variants adds the masking and recording connections.
	Variants bool
}

// SallyportObjects are the objects SetupSallyport created.
type SallyportObjects struct {
	// Plain is the plain connection (routes "/"); Masking and Recording
	// route PrefixMasking and PrefixRecording (errors say why they could
	// not be created).
	Plain                  *model.Object[model.ConnectionSpec]
	Masking, Recording     *model.Object[model.ConnectionSpec]
	MaskingErr, RecordErr  error
	GatewayID, UpstreamTLS string
}

// SetupSallyport configures the benchmark's objects through the admin API,
// as a user would: TLS settings with the shared certificate (TLS 1.3), TLS
// settings that verify the executor, a gateway trusting the OpenID
// provider, a connection that injects a credential, and a binding for the
// load generator's subject. Writes return once the data path runs them.
func SetupSallyport(ctx context.Context, c *client.Client, s SallyportSetup) (*SallyportObjects, error) {
	m := s.Material
	gwTLS, err := c.TLSSettings().Create(ctx, "bench-gateway", model.TLSSettingsSpec{
		MinVersion: model.TLS13,
		Certificate: model.CertificateSpec{Source: model.SourceStatic, Static: &model.StaticCertificateSpec{
			CertPEM: string(m.ServerCertPEM), KeyPEM: model.NewSecret(string(m.ServerKeyPEM)),
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway TLS settings: %w", err)
	}
	upTLS, err := c.TLSSettings().Create(ctx, "bench-executor", model.TLSSettingsSpec{
		MinVersion:  model.TLS13,
		Certificate: model.CertificateSpec{Source: model.SourceNone},
		PeerCAPEM:   string(m.CAPEM),
	})
	if err != nil {
		return nil, fmt.Errorf("executor TLS settings: %w", err)
	}
	gw, err := c.Gateways().Create(ctx, "bench", model.GatewaySpec{
		ListenAddr: s.GatewayAddr, Hostnames: []string{Hostname}, TLSSettingsID: gwTLS.ID,
		OIDCProviders: []model.OIDCProvider{{IssuerURL: s.Issuer, Audiences: []string{Audience}, CAPEM: string(s.IssuerCAPEM)}},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if _, err := c.Gateways().WaitReady(ctx, gw.ID, gw.Generation); err != nil {
		return nil, err
	}
	objs := &SallyportObjects{GatewayID: gw.ID, UpstreamTLS: upTLS.ID}
	connection := func(name, prefix string, edit func(*model.ConnectionSpec)) (*model.Object[model.ConnectionSpec], error) {
		spec := PlainConnection(s, gw.ID, upTLS.ID, prefix, 0)
		if edit != nil {
			edit(&spec)
		}
		conn, err := c.Connections().Create(ctx, name, spec)
		if err != nil {
			return nil, fmt.Errorf("connection %q: %w", name, err)
		}
		if conn, err = c.Connections().WaitReady(ctx, conn.ID, conn.Generation); err != nil {
			return nil, err
		}
		b, err := c.IdentityBindings().Create(ctx, "planner", model.IdentityBindingSpec{
			ConnectionID: conn.ID, Issuer: s.Issuer, Subject: PlannerSubject,
			AllowedMethods: []string{"GET", "PUT"}, AllowedPaths: []string{"/**"},
		})
		if err != nil {
			return nil, fmt.Errorf("binding of %q: %w", name, err)
		}
		if _, err := c.IdentityBindings().WaitReady(ctx, b.ID, b.Generation); err != nil {
			return nil, err
		}
		return conn, nil
	}
	if objs.Plain, err = connection("plain", "/", nil); err != nil {
		return nil, err
	}
	if s.Variants {
		objs.Masking, objs.MaskingErr = connection("masking", PrefixMasking, func(c *model.ConnectionSpec) {
			c.Masking = []model.MaskingRule{{JSONPath: "$..token", Replacement: model.ReplaceRedact}}
		})
		objs.Recording, objs.RecordErr = connection("recording", PrefixRecording, func(c *model.ConnectionSpec) {
			c.Recording = &model.RecordingSpec{Enabled: true}
		})
	}
	return objs, nil
}

// PlainConnection is the spec of a plain connection with the n-th
// version of its injected credential.
func PlainConnection(s SallyportSetup, gatewayID, upstreamTLS, prefix string, n int) model.ConnectionSpec {
	return model.ConnectionSpec{
		GatewayID: gatewayID, Protocol: model.ProtocolHTTP, Hostname: Hostname, PathPrefix: prefix,
		UpstreamURL: "https://" + s.ExecutorAddr, UpstreamTLSSettingsID: upstreamTLS,
		InjectHeaders: map[string]*model.Secret{"Authorization": model.NewSecret(fmt.Sprintf("Bearer executor-credential-%d", n))},
	}
}

// sallyportRun is a running sallyportd with the benchmark's objects.
type sallyportRun struct {
	proc    *process
	dataDir string
	client  *client.Client
	setup   SallyportSetup
	objs    *SallyportObjects
	// masking and recording say whether the variants work, or why not.
	masking, recording error
}

// startSallyportd starts `sallyportd serve` with a fresh data dir and an
// admin token, and returns a client of its admin API.
func (e *Env) startSallyportd(ctx context.Context, dir string) (*process, *client.Client, error) {
	token, err := admintoken.Generate()
	if err != nil {
		return nil, nil, err
	}
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	adminAddr, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	dataDir := filepath.Join(dir, "data")
	p, err := startProcess("sallyportd", filepath.Join(dir, "output.log"), e.Cfg.ServerCPUs, nil,
		filepath.Join(e.Cfg.BinDir, "sallyportd"), "serve", "--data-dir", dataDir,
		"--admin-addr", adminAddr, "--admin-token-file", tokenFile)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*process, *client.Client, error) {
		_ = p.stop(syscall.SIGKILL)
		return nil, nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if done, err := p.exited(); done {
			return fail(fmt.Errorf("sallyportd exited: %w (see %s)", err, p.log.Name()))
		}
		caPEM, err := os.ReadFile(filepath.Join(dataDir, "admin-ca.pem"))
		if err == nil {
			c, err := client.New(client.Config{Endpoint: "https://" + adminAddr, Token: token, CACertPEM: string(caPEM)})
			if err != nil {
				return fail(err)
			}
			if _, err := c.Status(ctx); err == nil {
				return p, c, nil
			}
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("sallyportd's admin API did not answer within 30s (see %s)", p.log.Name()))
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func (e *Env) startSallyport(ctx context.Context, round int) (*running, error) {
	dir, err := e.peerDir("sallyport", round)
	if err != nil {
		return nil, err
	}
	p, c, err := e.startSallyportd(ctx, dir)
	if err != nil {
		return nil, err
	}
	gwAddr, err := freePort()
	if err != nil {
		_ = p.stop(syscall.SIGKILL)
		return nil, err
	}
	sp := &sallyportRun{proc: p, dataDir: filepath.Join(dir, "data"), client: c, setup: SallyportSetup{
		GatewayAddr: gwAddr, ExecutorAddr: e.ExecAddr, Material: e.M,
		Issuer: e.IDP.Issuer(), IssuerCAPEM: e.IDP.CACertPEM(), Variants: true,
	}}
	if sp.objs, err = SetupSallyport(ctx, c, sp.setup); err != nil {
		_ = p.stop(syscall.SIGKILL)
		return nil, fmt.Errorf("configuring sallyportd: %w (see %s)", err, p.log.Name())
	}
	if err := waitTLS(ctx, p, e.target(gwAddr, "")); err != nil {
		_ = p.stop(syscall.SIGKILL)
		return nil, err
	}
	// The plain path must answer what the executor sends, with the token.
	status, body, err := Get(ctx, e.target(gwAddr, ""), PathJSON64)
	err = requestFailed("a request through Sallyport", status, err)
	if err == nil && string(body) != string(JSON64) {
		err = fmt.Errorf("a request through Sallyport answered %.80q, not the executor's document", body)
	}
	if err != nil {
		_ = p.stop(syscall.SIGKILL)
		return nil, err
	}
	sp.masking = e.checkMasking(ctx, sp)
	sp.recording = e.checkRecording(ctx, sp)
	return &running{addr: gwAddr, pid: p.pid(), sp: sp, stop: func() error { return p.stop(syscall.SIGTERM) }}, nil
}

// requestFailed describes a check request that failed (err) or was not
// answered with 200; nil when it succeeded.
func requestFailed(what string, status int, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s failed: %w", what, err)
	case status != http.StatusOK:
		return fmt.Errorf("%s failed: %w", what, StatusError(status))
	}
	return nil
}

// errNotImplemented marks a variant the data path does not honour yet.
var errNotImplemented = errors.New("not implemented")

// checkMasking reports whether the masking connection redacts the tokens
// of the executor's JSON.
func (e *Env) checkMasking(ctx context.Context, sp *sallyportRun) error {
	if sp.objs.MaskingErr != nil {
		return fmt.Errorf("%w: the masking connection was refused: %w", errNotImplemented, sp.objs.MaskingErr)
	}
	t := e.target(sp.setup.GatewayAddr, PrefixMasking)
	for _, p := range []string{PathJSON64, PathJSON4K} {
		status, body, err := Get(ctx, t, p)
		if err := requestFailed("a request through the masking connection", status, err); err != nil {
			return err
		}
		if strings.Contains(string(body), SecretPrefix) {
			return fmt.Errorf("%w: the masking connection (json_path $..token) returned the tokens unmasked", errNotImplemented)
		}
	}
	return nil
}

// checkRecording reports whether requests through the recording
// connection leave a trace in the data dir that the same requests through
// the plain connection do not.
func (e *Env) checkRecording(ctx context.Context, sp *sallyportRun) error {
	if sp.objs.RecordErr != nil {
		return fmt.Errorf("%w: the recording connection was refused: %w", errNotImplemented, sp.objs.RecordErr)
	}
	requests := func(prefix string) (bool, error) {
		sleep(ctx, 300*time.Millisecond)
		before := dirSizes(sp.dataDir)
		t := e.target(sp.setup.GatewayAddr, prefix)
		for range 50 {
			status, _, err := Get(ctx, t, PathJSON4K)
			if err := requestFailed(fmt.Sprintf("a request through the connection of %q", prefix+"/"), status, err); err != nil {
				return false, err
			}
		}
		sleep(ctx, 1500*time.Millisecond) // recordings may be flushed in batches
		after := dirSizes(sp.dataDir)
		for f, n := range after {
			if before[f] != n {
				return true, nil
			}
		}
		return false, nil
	}
	if changed, err := requests(""); err != nil || changed {
		if err != nil {
			return err
		}
		return errors.New("the data dir changes under plain requests; cannot tell whether recording works")
	}
	changed, err := requests(PrefixRecording)
	if err != nil {
		return err
	}
	if !changed {
		return fmt.Errorf("%w: requests through the recording connection left nothing in the data dir", errNotImplemented)
	}
	return nil
}

// Churn replaces the plain connection's injected credential every
// interval until ctx ends, counting the changes that went live (each
// write returns once the data path runs it) and reporting failures to
// fail.
func (sp *sallyportRun) Churn(ctx context.Context, interval time.Duration, applied *atomic.Int64, fail func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n++
		spec := PlainConnection(sp.setup, sp.objs.GatewayID, sp.objs.UpstreamTLS, "/", n)
		// A change begun must finish even when the window ends meanwhile.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_, err := sp.client.Connections().Replace(wctx, sp.objs.Plain.ID, "plain", spec, client.WriteOptions{})
		cancel()
		if err != nil {
			fail(err)
			continue
		}
		applied.Add(1)
	}
}
