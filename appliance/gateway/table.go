package gateway

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Connection protocols.
const (
	protoHTTP = "http"
	protoGRPC = "grpc"
	protoTCP  = "tcp"
)

// table is one immutable version of the routing state, built from a
// Runtime. Handlers load the current table once per request (or per
// accepted connection) and use only that version.
type table struct {
	rev   uint64
	sites map[string]*site // by listen address, as configured
	// conns are every connection by ID (tcp sessions are re-checked
	// against them after a swap).
	conns map[string]*route
}

// site is everything served on one listen address.
type site struct {
	addr  string
	names nameMap[*vhost]
}

// vhost is what a server name (SNI, then Host) leads to on a site.
type vhost struct {
	gw *gwRoute
	// tcp is set when the name belongs to a tcp connection.
	tcp *route
	// tlsConfig is the config for handshakes with this name.
	tlsConfig *tls.Config
}

// gwRoute is one gateway of one table version.
type gwRoute struct {
	g     *Gateway
	label string // metrics label
	// acmeConfig answers TLS-ALPN-01 handshakes (nil without acme-tls/1).
	acmeConfig *tls.Config
	// routes are the http and grpc connections by Hostname ("" for any),
	// longest path prefix first.
	routes nameMap[[]*route]
	any    []*route
}

// route is one connection of one table version.
type route struct {
	srv   *Server
	gw    *gwRoute
	c     *Connection
	label string
	// http and grpc:
	up       *upstream
	proxy    *httputil.ReverseProxy
	basePath string // the upstream URL's path, without a trailing slash
	baseRaw  string
	inject   []headerValue
	// metrics bound once per version: the allowed path never hashes labels.
	allowed  prometheus.Counter
	duration prometheus.Observer
	// masker is the connection's Masker when it masks anything.
	masker *masking.Masker
	// guards are the guardrail sets that apply, by binding ID (the
	// connection's, then the binding's); nil when there are none.
	guards map[string][]*guardrails.Set
	// recording is the connection's recording policy when enabled.
	recording *model.RecordingSpec
	// redactHeaders are the injected header names, never recorded.
	redactHeaders []string
}

// needsExchange reports whether the proxy's hooks need the exchange in
// the request context (masking or recording).
func (r *route) needsExchange() bool { return r.masker != nil || r.recording != nil }

// headerValue is one injected header, canonical and ready to assign.
type headerValue struct {
	key   string
	value []string
}

// nameMap maps hostnames, exact and "*.parent" wildcards, to values.
type nameMap[T any] struct {
	exact map[string]T
	wild  map[string]T // by parent domain
}

func (m *nameMap[T]) put(name string, v T) {
	if m.exact == nil {
		m.exact, m.wild = map[string]T{}, map[string]T{}
	}
	if p, ok := strings.CutPrefix(name, "*."); ok {
		m.wild[p] = v
	} else {
		m.exact[name] = v
	}
}

func (m *nameMap[T]) get(name string) (T, bool) {
	if p, ok := strings.CutPrefix(name, "*."); ok {
		v, ok := m.wild[p]
		return v, ok
	}
	v, ok := m.exact[name]
	return v, ok
}

// lookup finds the value for a concrete name: exact first, then the
// wildcard one label up.
func (m *nameMap[T]) lookup(name string) (T, bool) {
	if v, ok := m.exact[name]; ok {
		return v, true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if v, ok := m.wild[name[i+1:]]; ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// canonicalHost lower-cases a hostname and drops a trailing dot; it does
// not allocate for names that are already canonical.
func canonicalHost(h string) string {
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}

// hostOnly strips the port from a Host header value.
func hostOnly(hostport string) string {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		hostport = hostport[:i]
	}
	return canonicalHost(hostport)
}

// matchesName reports whether the concrete or wildcard name is covered by
// one of names.
func matchesName(name string, names []string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
		if p, ok := strings.CutPrefix(n, "*."); ok && !strings.HasPrefix(name, "*.") {
			if i := strings.IndexByte(name, '.'); i > 0 && name[i+1:] == p {
				return true
			}
		}
	}
	return false
}

// problems collects validation errors per object.
type problems struct{ e *ApplyError }

func (p *problems) gateway(id string, format string, args ...any) {
	if p.e == nil {
		p.e = &ApplyError{}
	}
	if p.e.Gateways == nil {
		p.e.Gateways = map[string]error{}
	}
	p.e.Gateways[id] = errors.Join(p.e.Gateways[id], fmt.Errorf(format, args...))
}

func (p *problems) connection(id string, format string, args ...any) {
	if p.e == nil {
		p.e = &ApplyError{}
	}
	if p.e.Connections == nil {
		p.e.Connections = map[string]error{}
	}
	p.e.Connections[id] = errors.Join(p.e.Connections[id], fmt.Errorf(format, args...))
}

// buildTable validates rt and compiles it. Upstream transports come from
// pool (reused when their key is unchanged, created otherwise).
func (s *Server) buildTable(rt *Runtime, pool *upstreamPool) (*table, error) {
	var ps problems
	t := &table{rev: rt.Revision, sites: map[string]*site{}, conns: map[string]*route{}}
	gwIDs := map[string]bool{}
	// owner remembers which gateway claimed each name on each address.
	owner := map[string]map[string]*Gateway{}
	for _, g := range rt.Gateways {
		if g == nil {
			return nil, errors.New("runtime has a nil gateway")
		}
		if gwIDs[g.ID] {
			ps.gateway(g.ID, "gateway id %q appears twice in the runtime", g.ID)
			continue
		}
		gwIDs[g.ID] = true
		if !s.validGateway(g, &ps) {
			continue
		}
		gr := &gwRoute{g: g, label: cmp.Or(g.Name, g.ID)}
		st := t.sites[g.ListenAddr]
		if st == nil {
			st = &site{addr: g.ListenAddr}
			t.sites[g.ListenAddr] = st
			owner[g.ListenAddr] = map[string]*Gateway{}
		}
		names := owner[g.ListenAddr]
		httpConfig := s.gatewayTLS(gr, true)
		tcpConfig := s.gatewayTLS(gr, false)
		if slices.Contains(g.TLS.NextProtos, acmeTLS1) {
			gr.acmeConfig = s.acmeTLS(g)
		}
		clash := false
		for _, h := range g.Hostnames {
			h = canonicalHost(h)
			if o := names[h]; o != nil {
				ps.gateway(g.ID, "hostname %q is also served by gateway %q on %s", h, cmp.Or(o.Name, o.ID), g.ListenAddr)
				ps.gateway(o.ID, "hostname %q is also served by gateway %q on %s", h, cmp.Or(g.Name, g.ID), g.ListenAddr)
				clash = true
				continue
			}
			names[h] = g
			st.names.put(h, &vhost{gw: gr, tlsConfig: httpConfig})
		}
		if clash {
			continue
		}
		// tcp connections own their hostname: find them first.
		tcpHosts := map[string]*Connection{}
		for _, c := range g.Connections {
			if c == nil {
				return nil, fmt.Errorf("gateway %q has a nil connection", g.ID)
			}
			if c.Protocol != protoTCP || c.Hostname == "" {
				continue
			}
			h := canonicalHost(c.Hostname)
			if prev := tcpHosts[h]; prev != nil {
				ps.connection(c.ID, "hostname %q is also used by tcp connection %q", h, cmp.Or(prev.Name, prev.ID))
				continue
			}
			tcpHosts[h] = c
		}
		seenRoute := map[[2]string]*Connection{}
		var tcpAll *route
		for _, c := range g.Connections {
			if _, dup := t.conns[c.ID]; dup {
				ps.connection(c.ID, "connection id %q appears twice in the runtime", c.ID)
				continue
			}
			host := canonicalHost(c.Hostname)
			if prev := tcpHosts[host]; prev != nil && prev != c {
				ps.connection(c.ID, "hostname %q belongs to tcp connection %q", host, cmp.Or(prev.Name, prev.ID))
				continue
			}
			r, ok := s.buildRoute(gr, c, pool, &ps)
			if !ok {
				continue
			}
			t.conns[c.ID] = r
			if c.Protocol == protoTCP {
				if host == "" {
					tcpAll = r
					continue
				}
				if o := names[host]; o != nil && o != g {
					ps.connection(c.ID, "hostname %q is served by gateway %q on %s", host, cmp.Or(o.Name, o.ID), g.ListenAddr)
					continue
				}
				names[host] = g
				st.names.put(host, &vhost{gw: gr, tcp: r, tlsConfig: tcpConfig})
				continue
			}
			key := [2]string{host, c.PathPrefix}
			if prev, ok := seenRoute[key]; ok {
				ps.connection(c.ID, "hostname %q and path prefix %q are also used by connection %q", host, c.PathPrefix, cmp.Or(prev.Name, prev.ID))
				continue
			}
			seenRoute[key] = c
			if host == "" {
				gr.any = append(gr.any, r)
			} else {
				rs, _ := gr.routes.get(host)
				gr.routes.put(host, append(rs, r))
			}
		}
		if tcpAll != nil {
			if len(g.Connections) > 1 {
				ps.connection(tcpAll.c.ID, "a tcp connection without hostname takes every hostname of gateway %q; it must be the gateway's only connection", gr.label)
				continue
			}
			for _, h := range g.Hostnames {
				st.names.put(canonicalHost(h), &vhost{gw: gr, tcp: tcpAll, tlsConfig: tcpConfig})
			}
		}
		sortRoutes(gr.any)
		for _, rs := range gr.routes.exact {
			sortRoutes(rs)
		}
		for _, rs := range gr.routes.wild {
			sortRoutes(rs)
		}
	}
	if ps.e != nil {
		return nil, ps.e
	}
	return t, nil
}

// buildGuards works out the guardrail sets of each binding of c, or says
// why c's guardrails cannot apply to its protocol.
func buildGuards(c *Connection) (map[string][]*guardrails.Set, string) {
	all := []*guardrails.Set{c.Guardrails}
	for _, b := range c.Bindings {
		all = append(all, c.BindingGuardrails[b.ID])
	}
	for _, g := range all {
		switch {
		case g == nil:
		case c.Protocol == protoTCP:
			return nil, g.Scope() + " guardrails do not apply to a tcp connection (there are no requests to check)"
		case c.Protocol == protoGRPC && (g.InspectsBody() || g.LimitsBody()):
			return nil, g.Scope() + " guardrails read or bound request bodies, which a grpc connection streams: only path, query and content type rules apply to it"
		}
	}
	var guards map[string][]*guardrails.Set
	for _, b := range c.Bindings {
		var sets []*guardrails.Set
		for _, g := range []*guardrails.Set{c.Guardrails, c.BindingGuardrails[b.ID]} {
			if g != nil {
				sets = append(sets, g)
			}
		}
		if len(sets) == 0 {
			continue
		}
		if guards == nil {
			guards = map[string][]*guardrails.Set{}
		}
		guards[b.ID] = sets
	}
	return guards, ""
}

// sortRoutes puts the longest path prefix first.
func sortRoutes(rs []*route) {
	slices.SortStableFunc(rs, func(a, b *route) int { return len(b.c.PathPrefix) - len(a.c.PathPrefix) })
}

func (s *Server) validGateway(g *Gateway, ps *problems) bool {
	ok := true
	if _, _, err := net.SplitHostPort(g.ListenAddr); err != nil {
		ps.gateway(g.ID, "listen address %q: %v", g.ListenAddr, err)
		ok = false
	}
	if len(g.Hostnames) == 0 {
		ps.gateway(g.ID, "no hostnames: without SNI nothing can reach the gateway")
		ok = false
	}
	for _, h := range g.Hostnames {
		if h == "" || strings.ContainsAny(h, " /:") || strings.Count(h, "*") > 1 || strings.Contains(h, "*") && !strings.HasPrefix(h, "*.") {
			ps.gateway(g.ID, "hostname %q is not a DNS name or a \"*.\" wildcard", h)
			ok = false
		}
	}
	switch {
	case g.TLS == nil:
		ps.gateway(g.ID, "no serving TLS")
		ok = false
	case g.TLS.GetCertificate == nil:
		ps.gateway(g.ID, "no certificate source (GetCertificate)")
		ok = false
	case g.TLS.MinVersion != 0 && g.TLS.MinVersion < tls.VersionTLS12:
		ps.gateway(g.ID, "minimum TLS version below 1.2")
		ok = false
	case g.TLS.ClientAuth != tls.NoClientCert && g.TLS.ClientAuth != tls.VerifyClientCertIfGiven && g.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
		ps.gateway(g.ID, "client auth %v: only no client certificate, verify if given, or require and verify", g.TLS.ClientAuth)
		ok = false
	case g.TLS.ClientAuth != tls.NoClientCert && g.TLS.ClientCAs == nil:
		ps.gateway(g.ID, "client certificates are verified but no client CAs are set")
		ok = false
	}
	return ok
}

// buildRoute validates and compiles one connection.
func (s *Server) buildRoute(gr *gwRoute, c *Connection, pool *upstreamPool, ps *problems) (*route, bool) {
	ok := true
	fail := func(format string, args ...any) {
		ps.connection(c.ID, format, args...)
		ok = false
	}
	switch c.Protocol {
	case protoHTTP, protoGRPC:
		if c.Upstream == nil || c.Upstream.Scheme != "https" || c.Upstream.Host == "" {
			fail("upstream must be an https:// URL")
		} else if c.Upstream.RawQuery != "" || c.Upstream.Fragment != "" || c.Upstream.User != nil {
			fail("upstream URL must not carry a query, fragment or user info")
		}
		if c.PathPrefix != "" {
			if n, err := normalizePath(c.PathPrefix); err != nil || n != c.PathPrefix {
				fail("path prefix %q is not a normalized path", c.PathPrefix)
			}
		}
	case protoTCP:
		if c.Upstream == nil || (c.Upstream.Scheme != "tls" && c.Upstream.Scheme != "https") || c.Upstream.Host == "" || c.Upstream.Port() == "" {
			fail("upstream must be tls://host:port")
		}
		if c.PathPrefix != "" {
			fail("a tcp connection is routed by hostname only; path prefix %q does not apply", c.PathPrefix)
		}
		if len(c.InjectHeaders) > 0 {
			fail("a tcp connection cannot inject headers")
		}
	default:
		fail("protocol %q is not http, grpc or tcp", c.Protocol)
	}
	if c.Hostname != "" && !matchesName(canonicalHost(c.Hostname), gr.g.Hostnames) {
		fail("hostname %q is not served by gateway %q", c.Hostname, gr.label)
	}
	if c.UpstreamTLS != nil && c.UpstreamTLS.InsecureSkipVerify {
		fail("upstream TLS must verify the executor (InsecureSkipVerify is not allowed)")
	}
	if c.UpstreamTLS != nil && c.UpstreamTLS.MinVersion != 0 && c.UpstreamTLS.MinVersion < tls.VersionTLS12 {
		fail("upstream TLS minimum version below 1.2")
	}
	if c.Masker.Active() && c.Protocol != protoHTTP {
		fail("masking applies to http connections only (gRPC messages are protobuf, tcp is a byte stream): remove the masking rules")
	}
	guards, why := buildGuards(c)
	if why != "" {
		fail("%s", why)
	}
	if c.Recording != nil && c.Recording.Enabled && s.opts.Recorder == nil {
		fail("recording is enabled but the appliance has no recorder")
	}
	var inject []headerValue
	for k, vs := range c.InjectHeaders {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			fail("inject header %q: invalid header name", k)
		case reservedInject[ck]:
			fail("inject header %q: reserved for the transport or the gateway", k)
		case len(vs) == 0:
			fail("inject header %q: no value", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				// The value is a secret: never echo it.
				fail("inject header %q: invalid header value", k)
			}
		}
		inject = append(inject, headerValue{key: ck, value: slices.Clip(slices.Clone(vs))})
	}
	if !ok {
		return nil, false
	}
	r := &route{srv: s, gw: gr, c: c, label: cmp.Or(c.Name, c.ID), inject: inject, guards: guards}
	if c.Masker.Active() {
		r.masker = c.Masker
	}
	if c.Recording != nil && c.Recording.Enabled {
		r.recording = c.Recording
		for _, iv := range inject {
			r.redactHeaders = append(r.redactHeaders, iv.key)
		}
	}
	r.allowed = s.metrics.requests.WithLabelValues(gr.label, r.label, decisionAllow, reasonOK)
	r.duration = s.metrics.duration.WithLabelValues(gr.label, r.label)
	if c.Protocol == protoTCP {
		return r, true
	}
	r.basePath = strings.TrimSuffix(c.Upstream.Path, "/")
	r.baseRaw = strings.TrimSuffix(c.Upstream.EscapedPath(), "/")
	r.up = pool.get(s, c)
	r.proxy = s.newProxy(r)
	return r, true
}
