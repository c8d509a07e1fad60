package reconcile

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/certificates"
	"github.com/sallyport/terraform-provider-sallyport/appliance/gateway"
	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// Upstream timeouts when a connection sets none.
const (
	DefaultConnectTimeout        = 10 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 90 * time.Second
)

// builder turns a snapshot into a runtime. It caches what is expensive or
// must keep its identity across versions (certificate management, token
// verifiers with their key caches, upstream TLS configs that key the
// gateway's connection pools), keyed by everything they depend on.
type builder struct {
	store *store.Store
	certs *certificates.Manager
	log   *slog.Logger

	serving   map[string]*certificates.Serving
	upstreams map[string]*tls.Config
	verifiers map[string]*identity.OIDCVerifier
	// conns are built connections by id, reused while nothing they were
	// built from changed (builtConn.key), so a rebuild after one write
	// compiles that write's objects only; usedConns are the ids the last
	// build used.
	conns     map[string]*builtConn
	usedConns map[string]bool
	// maskKey keys masking's "hash" replacement.
	maskKey []byte
	// used are the cache keys the last build used; prune drops the rest
	// once that build is live.
	usedServing, usedUpstream, usedVerifier map[string]bool
	// challenges are the HTTP-01 routes of the last build by listen
	// address, and challengeGateways the gateways behind each address.
	challenges        map[string][]certificates.ChallengeRoute
	challengeGateways map[string][]string
}

func newBuilder(st *store.Store, certs *certificates.Manager, log *slog.Logger, maskKey []byte) *builder {
	return &builder{
		store: st, certs: certs, log: log,
		serving:   map[string]*certificates.Serving{},
		upstreams: map[string]*tls.Config{},
		verifiers: map[string]*identity.OIDCVerifier{},
		conns:     map[string]*builtConn{},
		maskKey:   maskKey,
	}
}

// builtConn is a connection as last built, with the statuses its bindings
// got and the upstream TLS cache key it uses.
type builtConn struct {
	key         string
	conn        *gateway.Connection
	upstreamKey string
	bindings    map[string]model.Status
}

// connKey says everything a built connection depends on: its generation
// (which changes with its spec, secrets included, and name), the upstream
// TLS settings' generation, and its bindings' ids and generations.
func connKey(o *model.Resource, ix *index) string {
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, o.Generation, 10)
	ref := func(r *model.Resource) {
		b = append(b, '|')
		b = append(b, r.ID...)
		b = append(b, '/')
		b = strconv.AppendInt(b, r.Generation, 10)
	}
	if id := o.Spec.(*model.ConnectionSpec).UpstreamTLSSettingsID; id != "" {
		if t := ix.tls[id]; t != nil {
			ref(t)
		} else {
			b = append(b, "|missing"...)
		}
	}
	for _, bnd := range ix.bindings[o.ID] {
		ref(bnd)
	}
	return string(b)
}

// index is a snapshot by id.
type index struct {
	tls      map[string]*model.Resource
	conns    map[string][]*model.Resource // by gateway id
	bindings map[string][]*model.Resource // by connection id
}

func newIndex(snap *store.Snapshot) *index {
	ix := &index{tls: map[string]*model.Resource{}, conns: map[string][]*model.Resource{}, bindings: map[string][]*model.Resource{}}
	for _, o := range snap.Objects[model.KindTLSSettings] {
		ix.tls[o.ID] = o
	}
	for _, o := range snap.Objects[model.KindConnection] {
		gw := o.Spec.(*model.ConnectionSpec).GatewayID
		ix.conns[gw] = append(ix.conns[gw], o)
	}
	for _, o := range snap.Objects[model.KindIdentityBinding] {
		c := o.Spec.(*model.IdentityBindingSpec).ConnectionID
		ix.bindings[c] = append(ix.bindings[c], o)
	}
	return ix
}

// runtime builds the data path of snap. An object that fails to build is
// reported in its status and, where a previous version of it runs in prev,
// that version keeps serving. pending says some object waits for something
// outside the appliance (a certificate being obtained).
func (b *builder) runtime(ctx context.Context, snap *store.Snapshot, prev *gateway.Runtime) (*gateway.Runtime, map[string]model.Status, bool) {
	ix := newIndex(snap)
	statuses := map[string]model.Status{}
	ok := func(o *model.Resource) { statuses[o.ID] = model.Status{Ready: true, ObservedGeneration: o.Generation} }
	bad := func(o *model.Resource, err error) {
		statuses[o.ID] = model.Status{ObservedGeneration: o.Generation, Message: err.Error()}
	}
	for _, o := range snap.Objects[model.KindTLSSettings] {
		ok(o) // refined below when a user of it fails because of it
	}
	rt := &gateway.Runtime{Revision: snap.Revision}
	b.challenges, b.challengeGateways = map[string][]certificates.ChallengeRoute{}, map[string][]string{}
	pending := false
	usedServing, usedUpstream, usedVerifier := map[string]bool{}, map[string]bool{}, map[string]bool{}
	usedConns := map[string]bool{}

	for _, gwObj := range snap.Objects[model.KindGateway] {
		spec := gwObj.Spec.(*model.GatewaySpec)
		gw, err := b.gateway(ctx, gwObj, ix, prev, usedServing, usedVerifier)
		if err != nil {
			bad(gwObj, err)
			if old := prevGateway(prev, gwObj.ID); old != nil {
				rt.Gateways = append(rt.Gateways, old)
			}
			if errorOfTLS(err) {
				bad(ix.tls[spec.TLSSettingsID], err)
			}
			continue
		}
		st := model.Status{Ready: true, ObservedGeneration: gwObj.Generation, Certificate: gw.status()}
		if ready, msg := gw.serving.Ready(); !ready {
			st.Ready, st.Message = false, msg
			pending = true
		}
		statuses[gwObj.ID] = st
		if gw.serving.HTTPChallenge != nil {
			addr := ix.tls[spec.TLSSettingsID].Spec.(*model.TLSSettingsSpec).Certificate.ACME.HTTPChallengeAddr
			b.challenges[addr] = append(b.challenges[addr], certificates.ChallengeRoute{Hostnames: spec.Hostnames, Handler: gw.serving.HTTPChallenge})
			b.challengeGateways[addr] = append(b.challengeGateways[addr], gwObj.ID)
		}

		for _, cObj := range ix.conns[gwObj.ID] {
			conn, err := b.cachedConnection(ctx, cObj, ix, usedUpstream, usedConns, statuses)
			if err != nil {
				bad(cObj, err)
				if old := prevConnection(prev, cObj.ID); old != nil {
					gw.rt.Connections = append(gw.rt.Connections, old)
				}
				continue
			}
			ok(cObj)
			gw.rt.Connections = append(gw.rt.Connections, conn)
		}
		rt.Gateways = append(rt.Gateways, gw.rt)
	}
	b.usedServing, b.usedUpstream, b.usedVerifier = usedServing, usedUpstream, usedVerifier
	b.usedConns = usedConns
	return rt, statuses, pending
}

// cachedConnection returns the connection built for o by an earlier build
// when nothing it depends on changed since, and builds it otherwise. A
// connection that fails to build is not kept: it is retried every time.
func (b *builder) cachedConnection(ctx context.Context, o *model.Resource, ix *index, usedUpstream, usedConns map[string]bool, statuses map[string]model.Status) (*gateway.Connection, error) {
	key := connKey(o, ix)
	if bc := b.conns[o.ID]; bc != nil && bc.key == key {
		usedConns[o.ID] = true
		usedUpstream[bc.upstreamKey] = true
		for id, st := range bc.bindings {
			statuses[id] = st
		}
		return bc.conn, nil
	}
	bindings := map[string]model.Status{}
	conn, err := b.connection(ctx, o, ix, usedUpstream, bindings)
	for id, st := range bindings {
		statuses[id] = st
	}
	if err != nil {
		delete(b.conns, o.ID)
		return nil, err
	}
	// The bindings' statuses are all connection() writes on success.
	b.conns[o.ID] = &builtConn{key: key, conn: conn, upstreamKey: conn.UpstreamTLSKey, bindings: bindings}
	usedConns[o.ID] = true
	return conn, nil
}

// tlsError marks a failure caused by a TLS settings object, so that object's
// status shows it too.
type tlsError struct{ err error }

func (e tlsError) Error() string { return e.err.Error() }
func (e tlsError) Unwrap() error { return e.err }

func errorOfTLS(err error) bool {
	var te tlsError
	return errors.As(err, &te)
}

type builtGateway struct {
	rt      *gateway.Gateway
	serving *certificates.Serving
}

func (g *builtGateway) status() *model.CertificateStatus {
	if g.serving.Status == nil {
		return nil
	}
	return g.serving.Status()
}

func (b *builder) gateway(ctx context.Context, o *model.Resource, ix *index, prev *gateway.Runtime, usedServing, usedVerifier map[string]bool) (*builtGateway, error) {
	spec := o.Spec.(*model.GatewaySpec)
	tlsObj := ix.tls[spec.TLSSettingsID]
	if tlsObj == nil {
		return nil, fmt.Errorf("TLS settings %s do not exist", spec.TLSSettingsID)
	}
	tlsSpec := tlsObj.Spec.(*model.TLSSettingsSpec)
	key := fmt.Sprintf("%s/%d/%s", tlsObj.ID, tlsObj.Generation, strings.Join(spec.Hostnames, ","))
	serving := b.serving[key]
	if serving == nil {
		var err error
		serving, err = b.certs.Serving(ctx, certificates.ServingRequest{
			TLSSettingsID: tlsObj.ID,
			Spec:          tlsSpec,
			Secret:        b.secrets(ctx, tlsObj.ID),
			Hostnames:     spec.Hostnames,
		})
		if err != nil {
			return nil, tlsError{fmt.Errorf("TLS settings %q: %w", tlsObj.Name, err)}
		}
		b.serving[key] = serving
	}
	usedServing[key] = true

	minVersion, err := certificates.ParseMinVersion(tlsSpec.MinVersion)
	if err != nil {
		return nil, tlsError{fmt.Errorf("TLS settings %q: %w", tlsObj.Name, err)}
	}
	clientAuth, clientCAs, err := certificates.ClientAuth(tlsSpec)
	if err != nil {
		return nil, tlsError{fmt.Errorf("TLS settings %q: %w", tlsObj.Name, err)}
	}
	stls := &gateway.ServerTLS{
		MinVersion:     minVersion,
		GetCertificate: serving.GetCertificate,
		NextProtos:     serving.NextProtos,
		ClientAuth:     clientAuth,
		ClientCAs:      clientCAs,
	}
	gw := &gateway.Gateway{
		ID: o.ID, Name: o.Name, Generation: o.Generation,
		ListenAddr: spec.ListenAddr, Hostnames: spec.Hostnames, TLS: stls,
	}
	if len(spec.OIDCProviders) > 0 {
		vkey, err := json.Marshal(spec.OIDCProviders)
		if err != nil {
			return nil, fmt.Errorf("encoding OIDC providers: %w", err)
		}
		v := b.verifiers[string(vkey)]
		if v == nil {
			// A changed provider list keeps what it can of the gateway's
			// previous verifier (discovery, keys, cached tokens).
			prevV, _ := prevTokens(prev, o.ID).(*identity.OIDCVerifier)
			v, err = identity.NewOIDCVerifier(spec.OIDCProviders, identity.OIDCOptions{Logger: b.log, Previous: prevV})
			if err != nil {
				return nil, fmt.Errorf("OIDC providers: %w", err)
			}
			b.verifiers[string(vkey)] = v
		}
		usedVerifier[string(vkey)] = true
		gw.Tokens = v
	}
	return &builtGateway{rt: gw, serving: serving}, nil
}

func (b *builder) connection(ctx context.Context, o *model.Resource, ix *index, usedUpstream map[string]bool, statuses map[string]model.Status) (*gateway.Connection, error) {
	spec := o.Spec.(*model.ConnectionSpec)
	u, err := url.Parse(spec.UpstreamURL)
	if err != nil {
		return nil, fmt.Errorf("upstream_url: %w", err)
	}
	var (
		tlsSpec *model.TLSSettingsSpec
		tlsKey  = "system"
		tlsID   string
	)
	if id := spec.UpstreamTLSSettingsID; id != "" {
		t := ix.tls[id]
		if t == nil {
			return nil, fmt.Errorf("upstream TLS settings %s do not exist", id)
		}
		tlsSpec, tlsID = t.Spec.(*model.TLSSettingsSpec), t.ID
		tlsKey = fmt.Sprintf("%s/%d", t.ID, t.Generation)
	}
	key := tlsKey + "/" + u.Hostname()
	upTLS := b.upstreams[key]
	if upTLS == nil {
		upTLS, err = b.certs.Upstream(ctx, certificates.UpstreamRequest{
			TLSSettingsID: tlsID, Spec: tlsSpec, Secret: b.secrets(ctx, tlsID), ServerName: u.Hostname(),
		})
		if err != nil {
			if tlsID != "" {
				t := ix.tls[tlsID]
				statuses[tlsID] = model.Status{ObservedGeneration: t.Generation, Message: err.Error()}
			}
			return nil, fmt.Errorf("upstream TLS: %w", err)
		}
		b.upstreams[key] = upTLS
	}
	usedUpstream[key] = true

	c := &gateway.Connection{
		ID: o.ID, Name: o.Name, Generation: o.Generation,
		Protocol: spec.Protocol, Hostname: spec.Hostname, PathPrefix: spec.PathPrefix,
		Upstream: u, UpstreamTLS: upTLS, UpstreamTLSKey: key,
		Timeouts: gateway.Timeouts{Connect: DefaultConnectTimeout, ResponseHeader: DefaultResponseHeaderTimeout, Idle: DefaultIdleTimeout},
	}
	if t := spec.Timeouts; t != nil {
		setDuration(&c.Timeouts.Connect, t.Connect)
		setDuration(&c.Timeouts.ResponseHeader, t.ResponseHeader)
		setDuration(&c.Timeouts.Idle, t.Idle)
	}
	if len(spec.InjectHeaders) > 0 {
		c.InjectHeaders = http.Header{}
		for _, f := range spec.Secrets() {
			v, err := b.store.SecretValue(ctx, o.ID, f.Path)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", f.Path, err)
			}
			c.InjectHeaders.Set(strings.TrimPrefix(f.Path, "spec.inject_headers."), v)
		}
	}
	if err := b.enforcement(c, spec); err != nil {
		return nil, err
	}
	for _, bObj := range ix.bindings[o.ID] {
		bspec := bObj.Spec.(*model.IdentityBindingSpec)
		bnd, err := identity.CompileBinding(bObj.ID, bObj.Name, bspec)
		var g *guardrails.Set
		if err == nil {
			g, err = compileGuardrails(guardrails.ScopeBinding, bspec.Guardrails, spec.Protocol)
		}
		if err != nil {
			// The binding fails closed: it admits nobody until fixed.
			statuses[bObj.ID] = model.Status{ObservedGeneration: bObj.Generation, Message: err.Error()}
			continue
		}
		statuses[bObj.ID] = model.Status{Ready: true, ObservedGeneration: bObj.Generation}
		c.Bindings = append(c.Bindings, bnd)
		if g != nil {
			if c.BindingGuardrails == nil {
				c.BindingGuardrails = map[string]*guardrails.Set{}
			}
			c.BindingGuardrails[bObj.ID] = g
		}
	}
	return c, nil
}

// enforcement compiles a connection's masking rules, guardrails and
// recording policy into c. An error leaves the connection not ready.
func (b *builder) enforcement(c *gateway.Connection, spec *model.ConnectionSpec) error {
	if len(spec.Masking) > 0 {
		if spec.Protocol != model.ProtocolHTTP {
			return fmt.Errorf("spec.masking: masking applies to http connections only (gRPC messages are protobuf, tcp is a byte stream)")
		}
		m, err := masking.Compile(spec.Masking, masking.Options{HashKey: b.maskKey})
		if err != nil {
			return fmt.Errorf("spec.%w", err)
		}
		c.Masker = m
	}
	g, err := compileGuardrails(guardrails.ScopeConnection, spec.Guardrails, spec.Protocol)
	if err != nil {
		return err
	}
	c.Guardrails = g
	if r := spec.Recording; r != nil && r.Enabled {
		rec := *r
		c.Recording = &rec
	}
	return nil
}

// compileGuardrails compiles a guardrails block for a connection of the
// given protocol: none on tcp (there are no requests), and on grpc none
// that read or bound the body (it is a stream).
func compileGuardrails(scope string, spec *model.Guardrails, protocol string) (*guardrails.Set, error) {
	g, err := guardrails.Compile(scope, spec)
	switch {
	case err != nil:
		return nil, fmt.Errorf("guardrails: %w", err)
	case g == nil:
		return nil, nil
	case protocol == model.ProtocolTCP:
		return nil, fmt.Errorf("spec.guardrails: guardrails do not apply to a tcp connection")
	case protocol == model.ProtocolGRPC && (g.InspectsBody() || g.LimitsBody()):
		return nil, fmt.Errorf("spec.guardrails: a grpc connection streams request bodies: only deny_path_patterns, deny_query_patterns and allowed_content_types apply")
	}
	return g, nil
}

// secrets returns a lookup of an object's secret values for the
// certificates manager.
func (b *builder) secrets(ctx context.Context, id string) func(string) (string, error) {
	return func(path string) (string, error) {
		if id == "" {
			return "", fmt.Errorf("no secret %s", path)
		}
		return b.store.SecretValue(ctx, id, path)
	}
}

// prune drops the cache entries the last build did not use, once it is
// live (the running runtime may still use them until then), releasing
// what they hold (an ACME serving stops its certificate maintenance).
func (b *builder) prune() {
	for k, sv := range b.serving {
		if !b.usedServing[k] {
			if sv.Close != nil {
				sv.Close()
			}
			delete(b.serving, k)
		}
	}
	for k := range b.upstreams {
		if !b.usedUpstream[k] {
			delete(b.upstreams, k)
		}
	}
	for k := range b.verifiers {
		if !b.usedVerifier[k] {
			delete(b.verifiers, k)
		}
	}
	for id := range b.conns {
		if !b.usedConns[id] {
			delete(b.conns, id)
		}
	}
}

func setDuration(d *time.Duration, s string) {
	if s == "" {
		return
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = v
	}
}

func prevGateway(rt *gateway.Runtime, id string) *gateway.Gateway {
	if rt == nil {
		return nil
	}
	for _, g := range rt.Gateways {
		if g.ID == id {
			return g
		}
	}
	return nil
}

func prevConnection(rt *gateway.Runtime, id string) *gateway.Connection {
	if rt == nil {
		return nil
	}
	for _, g := range rt.Gateways {
		for _, c := range g.Connections {
			if c.ID == id {
				return c
			}
		}
	}
	return nil
}

func prevTokens(rt *gateway.Runtime, id string) identity.TokenVerifier {
	if g := prevGateway(rt, id); g != nil {
		return g.Tokens
	}
	return nil
}
