package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/apitest"
	"github.com/sallyport/terraform-provider-sallyport/appliance/client"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// The tests in this file run the real admin API over real TLS on loopback
// (apitest.Start) and reach it only through the client.

const injectedSecret = "Bearer s3cret"

// newClient connects to a, pinning its admin CA by fingerprint, after
// mutate has adjusted the configuration.
func newClient(t *testing.T, a *apitest.Appliance, mutate func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{Endpoint: a.Endpoint, Token: a.Token, CAFingerprint: a.CAFingerprint, UserAgent: "client-integration-test"}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ids returns the ids of objects, for comparisons.
func ids[S any](objs []*model.Object[S]) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	slices.Sort(out)
	return out
}

func TestIntegrationCRUD(t *testing.T) {
	a := apitest.Start(t)
	c := newClient(t, a, nil)
	ctx := ctxFor(t)

	// Create one object of each kind, dependencies first.
	tlsObj, err := c.TLSSettings().Create(ctx, "self-signed", model.TLSSettingsSpec{
		Certificate: model.CertificateSpec{Source: model.SourceSelfSigned},
	})
	if err != nil {
		t.Fatalf("create TLS settings: %v", err)
	}
	if !strings.HasPrefix(tlsObj.ID, model.KindTLSSettings.IDPrefix()) || tlsObj.Generation != 1 || tlsObj.Name != "self-signed" ||
		tlsObj.Spec.Certificate.Source != model.SourceSelfSigned || tlsObj.CreatedAt.IsZero() {
		t.Fatalf("created TLS settings = %+v", tlsObj)
	}
	gwSpec := model.GatewaySpec{ListenAddr: "127.0.0.1:18443", Hostnames: []string{"gw.example.test"}, TLSSettingsID: tlsObj.ID}
	gw, err := c.Gateways().Create(ctx, "edge", gwSpec)
	if err != nil {
		t.Fatalf("create gateway: %v", err)
	}
	gw2, err := c.Gateways().Create(ctx, "edge-2", model.GatewaySpec{ListenAddr: "127.0.0.1:18444", Hostnames: []string{"gw2.example.test"}, TLSSettingsID: tlsObj.ID})
	if err != nil {
		t.Fatalf("create second gateway: %v", err)
	}
	connSpec := model.ConnectionSpec{
		GatewayID:     gw.ID,
		Protocol:      model.ProtocolHTTP,
		Hostname:      "gw.example.test",
		UpstreamURL:   "https://executor.internal:8443",
		InjectHeaders: map[string]*model.Secret{"Authorization": model.NewSecret(injectedSecret)},
	}
	conn, err := c.Connections().Create(ctx, "executor", connSpec)
	if err != nil {
		t.Fatalf("create connection: %v", err)
	}
	if conn.Spec.GatewayID != gw.ID || conn.Spec.UpstreamURL != "https://executor.internal:8443" {
		t.Fatalf("created connection = %+v", conn)
	}
	bind, err := c.IdentityBindings().Create(ctx, "planner", model.IdentityBindingSpec{
		ConnectionID:     conn.ID,
		ClientCertURISAN: "spiffe://example.test/planner",
		AllowedMethods:   []string{"GET", "POST"},
		AllowedPaths:     []string{"/jobs/*"},
	})
	if err != nil {
		t.Fatalf("create identity binding: %v", err)
	}

	t.Run("get", func(t *testing.T) {
		got, err := c.Gateways().Get(ctx, gw.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != gw.ID || got.Name != "edge" || got.Generation != gw.Generation || !slices.Equal(got.Spec.Hostnames, gwSpec.Hostnames) {
			t.Fatalf("Get = %+v, want %+v", got, gw)
		}
		b, err := c.IdentityBindings().Get(ctx, bind.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b.Spec.ConnectionID != conn.ID || !slices.Equal(b.Spec.AllowedMethods, []string{"GET", "POST"}) {
			t.Fatalf("binding = %+v", b.Spec)
		}
	})

	t.Run("list with filters", func(t *testing.T) {
		all, err := c.Gateways().List(ctx, client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(all), ids([]*model.Gateway{gw, gw2}); !slices.Equal(got, want) {
			t.Errorf("gateways = %v, want %v", got, want)
		}
		byName, err := c.Gateways().List(ctx, client.ListOptions{Name: "edge-2"})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(byName); !slices.Equal(got, []string{gw2.ID}) {
			t.Errorf("gateways named edge-2 = %v", got)
		}
		under, err := c.Connections().List(ctx, client.ListOptions{Parent: gw.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(under); !slices.Equal(got, []string{conn.ID}) {
			t.Errorf("connections of %s = %v", gw.ID, got)
		}
		under2, err := c.Connections().List(ctx, client.ListOptions{Parent: gw2.ID})
		if err != nil || len(under2) != 0 {
			t.Errorf("connections of the second gateway = %v, %v; want none", ids(under2), err)
		}
		none, err := c.Connections().List(ctx, client.ListOptions{Parent: gw.ID, Name: "nope"})
		if err != nil || len(none) != 0 {
			t.Errorf("connections named nope = %v, %v", ids(none), err)
		}
		bindings, err := c.IdentityBindings().List(ctx, client.ListOptions{Parent: conn.ID, Name: "planner"})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(bindings); !slices.Equal(got, []string{bind.ID}) {
			t.Errorf("bindings of %s = %v", conn.ID, got)
		}
		byName1, err := c.Connections().GetByName(ctx, gw.ID, "executor")
		if err != nil || byName1.ID != conn.ID {
			t.Errorf("GetByName(%s, executor) = %v, %v", gw.ID, byName1, err)
		}
		if _, err := c.Connections().GetByName(ctx, gw2.ID, "executor"); !client.IsNotFound(err) {
			t.Errorf("GetByName under the other gateway = %v, want not found", err)
		}
	})

	t.Run("replace with If-Match", func(t *testing.T) {
		spec := gw.Spec
		spec.Hostnames = []string{"gw.example.test", "alt.example.test"}
		updated, err := c.Gateways().Replace(ctx, gw.ID, "edge", spec, client.WriteOptions{IfMatch: gw.Generation})
		if err != nil {
			t.Fatalf("replace at the current generation: %v", err)
		}
		if updated.Generation != gw.Generation+1 || len(updated.Spec.Hostnames) != 2 {
			t.Fatalf("replaced = generation %d, hostnames %v", updated.Generation, updated.Spec.Hostnames)
		}
		_, err = c.Gateways().Replace(ctx, gw.ID, "edge", gw.Spec, client.WriteOptions{IfMatch: gw.Generation})
		if !client.IsPreconditionFailed(err) {
			t.Fatalf("replace with a stale If-Match = %v, want 412", err)
		}
		if err := c.Gateways().Delete(ctx, gw.ID, client.WriteOptions{IfMatch: gw.Generation}); !client.IsPreconditionFailed(err) {
			t.Fatalf("delete with a stale If-Match = %v, want 412", err)
		}
		gw = updated
	})

	t.Run("validation errors carry field paths", func(t *testing.T) {
		bad := connSpec
		bad.UpstreamURL = "http://executor.internal"
		bad.Hostname = "not a hostname"
		_, err := c.Connections().Create(ctx, "bad", bad)
		if !client.IsValidation(err) {
			t.Fatalf("invalid connection = %v, want 400", err)
		}
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%T is not an *APIError", err)
		}
		fields := map[string]bool{}
		for _, p := range apiErr.Problems {
			fields[p.Field] = true
		}
		if !fields["spec.upstream_url"] || !fields["spec.hostname"] {
			t.Errorf("problems = %+v, want spec.upstream_url and spec.hostname", apiErr.Problems)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "sallyport: 400 ") || !strings.Contains(msg, "spec.upstream_url: ") ||
			!strings.Contains(msg, "(request id "+apiErr.RequestID+")") || apiErr.RequestID == "" {
			t.Errorf("error reads %q", msg)
		}
		if strings.Count(msg, "spec.upstream_url") != 1 {
			t.Errorf("error repeats the problems: %q", msg)
		}
		if strings.Contains(msg, injectedSecret) || strings.Contains(msg, a.Token) {
			t.Errorf("error reveals a secret: %q", msg)
		}
		if got, _ := c.Connections().List(ctx, client.ListOptions{Name: "bad"}); len(got) != 0 {
			t.Errorf("a rejected connection was stored: %v", ids(got))
		}

		_, err = c.Connections().Create(ctx, "dangling", model.ConnectionSpec{
			GatewayID: "gw_doesnotexist", Protocol: model.ProtocolHTTP, Hostname: "x.example.test", UpstreamURL: "https://executor.internal",
		})
		if !errors.As(err, &apiErr) || !slices.ContainsFunc(apiErr.Problems, func(p model.Problem) bool { return p.Field == "spec.gateway_id" }) {
			t.Errorf("connection to a missing gateway = %v, want a problem at spec.gateway_id", err)
		}
	})

	t.Run("name clash is a conflict", func(t *testing.T) {
		_, err := c.Gateways().Create(ctx, "edge", gwSpec)
		if !client.IsConflict(err) {
			t.Fatalf("second gateway named edge = %v, want 409", err)
		}
	})

	t.Run("deleting a referenced object is a conflict naming its dependents", func(t *testing.T) {
		err := c.Gateways().Delete(ctx, gw.ID, client.WriteOptions{})
		if !client.IsConflict(err) {
			t.Fatalf("delete of a referenced gateway = %v, want 409", err)
		}
		var apiErr *client.APIError
		errors.As(err, &apiErr)
		want := model.ObjectRef{Kind: model.KindConnection, ID: conn.ID, Name: "executor"}
		if !slices.Contains(apiErr.Dependents, want) {
			t.Errorf("dependents = %+v, want %+v", apiErr.Dependents, want)
		}
		if !strings.Contains(err.Error(), conn.ID) || strings.Count(err.Error(), conn.ID) != 1 {
			t.Errorf("error reads %q", err)
		}
		if _, err := c.Gateways().Get(ctx, gw.ID); err != nil {
			t.Errorf("the gateway is gone after a refused delete: %v", err)
		}
	})

	t.Run("unknown ids are not found", func(t *testing.T) {
		if _, err := c.Gateways().Get(ctx, "gw_doesnotexist"); !client.IsNotFound(err) {
			t.Errorf("Get = %v, want 404", err)
		}
		if _, err := c.Connections().Replace(ctx, "conn_doesnotexist", "x", connSpec, client.WriteOptions{}); !client.IsNotFound(err) {
			t.Errorf("Replace = %v, want 404", err)
		}
		if err := c.IdentityBindings().Delete(ctx, "bind_doesnotexist", client.WriteOptions{}); !client.IsNotFound(err) {
			t.Errorf("Delete = %v, want 404", err)
		}
		// An id that would address another path never leaves the client.
		if _, err := c.TLSSettings().Get(ctx, "tls/../../v1/status"); err == nil || client.HasStatus(err, 301) {
			t.Errorf("Get of an id with slashes = %v, want a client-side error", err)
		}
	})

	t.Run("secrets are never returned", func(t *testing.T) {
		assertHidden := func(t *testing.T, o *model.Connection) *model.Secret {
			t.Helper()
			s := o.Spec.InjectHeaders["Authorization"]
			if s == nil || s.Value != "" || !s.Set || s.Version == "" {
				t.Fatalf("Authorization header read back as %#v, want set with a version and no value", s)
			}
			raw, _ := json.Marshal(o)
			if strings.Contains(string(raw), "s3cret") {
				t.Fatalf("the secret value came back: %s", raw)
			}
			return s
		}
		created := assertHidden(t, conn)
		read, err := c.Connections().Get(ctx, conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v := assertHidden(t, read).Version; v != created.Version {
			t.Errorf("version changed between create and read: %s, %s", created.Version, v)
		}

		// Written back as read: the stored value and its version stay.
		same, err := c.Connections().Replace(ctx, read.ID, read.Name, read.Spec, client.WriteOptions{IfMatch: read.Generation})
		if err != nil {
			t.Fatalf("writing the connection back as read: %v", err)
		}
		if v := assertHidden(t, same).Version; v != created.Version {
			t.Errorf("writing back as read changed the version: %s -> %s", created.Version, v)
		}
		if same.Generation != read.Generation {
			t.Errorf("writing back as read bumped the generation: %d -> %d", read.Generation, same.Generation)
		}

		// A new value: a new version, a new generation.
		spec := same.Spec
		spec.InjectHeaders = map[string]*model.Secret{"Authorization": model.NewSecret("Bearer s3cret-2")}
		changed, err := c.Connections().Replace(ctx, same.ID, same.Name, spec, client.WriteOptions{IfMatch: same.Generation})
		if err != nil {
			t.Fatalf("writing a new secret: %v", err)
		}
		if v := assertHidden(t, changed).Version; v == created.Version {
			t.Errorf("a new value kept the version %s", v)
		}
		if changed.Generation != same.Generation+1 {
			t.Errorf("a new value gave generation %d, want %d", changed.Generation, same.Generation+1)
		}
		conn = changed

		entries, err := c.Audit(ctx, model.AuditQuery{ObjectID: conn.ID})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(entries)
		if strings.Contains(string(raw), "s3cret") {
			t.Errorf("the audit log holds the secret: %s", raw)
		}
	})

	t.Run("audit", func(t *testing.T) {
		entries, err := c.Audit(ctx, model.AuditQuery{Kind: model.KindConnection, ObjectID: conn.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) < 2 {
			t.Fatalf("audit of %s = %+v, want its create and replace", conn.ID, entries)
		}
		first, last := entries[0], entries[len(entries)-1]
		if first.Action == "" || first.ObjectID != conn.ID || first.Kind != model.KindConnection || first.GenerationBefore != 0 ||
			first.GenerationAfter != 1 || first.Seq == 0 || first.Time.IsZero() || first.Name != "executor" {
			t.Errorf("first entry = %+v", first)
		}
		if last.GenerationAfter != conn.Generation || last.Seq <= first.Seq {
			t.Errorf("last entry = %+v, want generation after %d", last, conn.Generation)
		}
		page, err := c.Audit(ctx, model.AuditQuery{After: first.Seq, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 1 || page[0].Seq <= first.Seq {
			t.Errorf("audit after %d limit 1 = %+v", first.Seq, page)
		}
	})

	t.Run("status", func(t *testing.T) {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Store.Backend == "" || st.Store.Revision == 0 || st.StartedAt.IsZero() || st.Version == "" {
			t.Errorf("status = %+v", st)
		}
		if st.Counts[string(model.KindGateway)] != 2 || st.Counts[string(model.KindConnection)] != 1 {
			t.Errorf("counts = %v, want 2 gateways and 1 connection", st.Counts)
		}
	})

	t.Run("wait ready", func(t *testing.T) {
		// Whether the object becomes ready depends on the data path the
		// appliance runs; either way WaitReady must end in time with ready
		// at the generation, a reconcile failure, or the deadline.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		got, err := c.Gateways().WaitReady(wctx, gw.ID, gw.Generation)
		var re *client.ReconcileError
		switch {
		case err == nil:
			if !got.Status.Ready || got.Status.ObservedGeneration < gw.Generation {
				t.Errorf("WaitReady returned a status not ready: %+v", got.Status)
			}
		case errors.As(err, &re), errors.Is(err, context.DeadlineExceeded):
			t.Logf("WaitReady: %v", err)
		default:
			t.Errorf("WaitReady = %v", err)
		}
	})

	t.Run("delete in dependency order", func(t *testing.T) {
		steps := []struct {
			name string
			del  func() error
			get  func() error
		}{
			{"binding", func() error { return c.IdentityBindings().Delete(ctx, bind.ID, client.WriteOptions{}) },
				func() error { _, err := c.IdentityBindings().Get(ctx, bind.ID); return err }},
			{"connection", func() error {
				return c.Connections().Delete(ctx, conn.ID, client.WriteOptions{IfMatch: conn.Generation})
			},
				func() error { _, err := c.Connections().Get(ctx, conn.ID); return err }},
			{"gateway", func() error { return c.Gateways().Delete(ctx, gw.ID, client.WriteOptions{IfMatch: gw.Generation}) },
				func() error { _, err := c.Gateways().Get(ctx, gw.ID); return err }},
			{"second gateway", func() error { return c.Gateways().Delete(ctx, gw2.ID, client.WriteOptions{}) },
				func() error { _, err := c.Gateways().Get(ctx, gw2.ID); return err }},
			{"TLS settings", func() error { return c.TLSSettings().Delete(ctx, tlsObj.ID, client.WriteOptions{}) },
				func() error { _, err := c.TLSSettings().Get(ctx, tlsObj.ID); return err }},
		}
		for _, s := range steps {
			if err := s.del(); err != nil {
				t.Fatalf("delete %s: %v", s.name, err)
			}
			if err := s.get(); !client.IsNotFound(err) {
				t.Fatalf("get of the deleted %s = %v, want 404", s.name, err)
			}
		}
	})
}

func TestIntegrationAuthAndTrust(t *testing.T) {
	a := apitest.Start(t)
	ctx := ctxFor(t)

	t.Run("wrong token", func(t *testing.T) {
		const wrong = "sp_wrong_token_value"
		c := newClient(t, a, func(cfg *client.Config) { cfg.Token = wrong })
		_, err := c.Status(ctx)
		if !client.IsUnauthorized(err) {
			t.Fatalf("Status with a wrong token = %v, want 401", err)
		}
		if _, err := c.Gateways().Get(ctx, "gw_doesnotexist"); !client.IsUnauthorized(err) {
			t.Fatalf("Get with a wrong token = %v, want 401 (not 404)", err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), a.Token) {
			t.Fatalf("error reveals a token: %v", err)
		}
	})

	trusted := map[string]func(*client.Config){
		"fingerprint":                nil,
		"fingerprint with colons":    func(cfg *client.Config) { cfg.CAFingerprint = colons(strings.ToUpper(a.CAFingerprint)) },
		"CA PEM":                     func(cfg *client.Config) { cfg.CAFingerprint = ""; cfg.CACertPEM = a.CACertPEM },
		"CA PEM and its fingerprint": func(cfg *client.Config) { cfg.CACertPEM = a.CACertPEM },
	}
	for name, mutate := range trusted {
		t.Run("trusted by "+name, func(t *testing.T) {
			c := newClient(t, a, mutate)
			if _, err := c.Status(ctx); err != nil {
				t.Fatalf("Status: %v", err)
			}
		})
	}

	t.Run("wrong fingerprint", func(t *testing.T) {
		wrong := strings.Repeat("ab", 32)
		c := newClient(t, a, func(cfg *client.Config) { cfg.CAFingerprint = wrong })
		_, err := c.Status(ctx)
		var pe *client.PinError
		if !errors.As(err, &pe) {
			t.Fatalf("Status with a wrong fingerprint = %v, want a *client.PinError", err)
		}
	})

	t.Run("system roots do not trust the admin CA", func(t *testing.T) {
		c := newClient(t, a, func(cfg *client.Config) { cfg.CAFingerprint = "" })
		if _, err := c.Status(ctx); err == nil || client.IsUnauthorized(err) {
			t.Fatalf("Status without the admin CA = %v, want a certificate error", err)
		}
	})
}

func colons(h string) string {
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
