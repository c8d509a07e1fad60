package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestGuardCheck(t *testing.T) {
	g, err := newGuard([]string{"127.0.0.1:9443", ":9555", "[::1]:9666"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, denied := range map[string]bool{
		"127.0.0.1:443":                 false,
		"[::1]:443":                     false,
		"10.1.2.3:443":                  false,
		"93.184.216.34:443":             false,
		"169.254.169.254:80":            true,
		"169.254.1.1:443":               true,
		"[fe80::1]:443":                 true,
		"[fd00:ec2::254]:80":            true,
		"100.100.100.200:80":            true,
		"0.0.0.0:443":                   true,
		"0.1.2.3:443":                   true,
		"[::]:443":                      true,
		"224.0.0.1:443":                 true,
		"[ff02::1]:443":                 true,
		"255.255.255.255:443":           true,
		"[::ffff:169.254.169.254]:80":   true,
		"[64:ff9b::a9fe:a9fe]:80":       true,
		"127.0.0.1:9443":                true,
		"127.0.0.2:9443":                false,
		"127.0.0.1:9555":                true,
		"127.9.9.9:9555":                true,
		"[::1]:9555":                    true,
		"[::1]:9666":                    true,
		"[::ffff:127.0.0.1]:9443":       true,
		"10.1.2.3:9555":                 false,
		"[2001:db8::1]:443":             false,
		"[::ffff:100.100.100.200]:8080": true,
	} {
		err := g.check(netip.MustParseAddrPort(addr))
		if (err != nil) != denied {
			t.Errorf("%s: %v, want denied=%v", addr, err, denied)
		}
		if err != nil && !errors.Is(err, ErrDestinationDenied) {
			t.Errorf("%s: %v does not wrap ErrDestinationDenied", addr, err)
		}
	}
	for _, bad := range []string{"nonsense", "example.com:443", "127.0.0.1:http"} {
		if _, err := newGuard([]string{bad}); err == nil {
			t.Errorf("newGuard(%q) accepted", bad)
		}
	}
}

func TestGuardRefusesTheAdminListenerBeforeConnecting(t *testing.T) {
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	e := newEnv(t, func(o *Options) { o.DeniedAddrs = []string{admin.Addr().String()} })
	c := e.connection("admin", "https://"+admin.Addr().String())
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	resp, _ := get(t, e.client(e.planner, true), "https://api.test/v1/secrets")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	mustContain(t, e.logs.String(), `"reason":"destination_denied"`)
	// Nothing connected to the admin listener: the first connection it
	// accepts is this sentinel (the accept queue is first in, first out).
	sentinel, err := net.Dial("tcp", admin.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sentinel.Close()
	first, err := admin.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.RemoteAddr().String() != sentinel.LocalAddr().String() {
		t.Fatalf("the admin listener was reached from %s", first.RemoteAddr())
	}
}

// dnsServer answers every A query with addr, on loopback UDP, and counts
// queries.
func dnsServer(t *testing.T, addr [4]byte) (string, *atomic.Int32) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var n atomic.Int32
	go func() {
		buf := make([]byte, 512)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:k])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			n.Add(1)
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: addr})
			}
			msg, _ := b.Finish()
			_, _ = pc.WriteTo(msg, from)
		}
	}()
	return pc.LocalAddr().String(), &n
}

func TestGuardRefusesANameResolvingToMetadata(t *testing.T) {
	dns, queries := dnsServer(t, [4]byte{169, 254, 169, 254})
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}
	e := newEnv(t, func(o *Options) { o.Resolver = resolver })
	c := e.connection("meta", "https://metadata.internal.test")
	tcp := e.connection("meta-tcp", "tls://metadata.internal.test:443")
	tcp.Protocol, tcp.Hostname, tcp.InjectHeaders = "tcp", dbHost, nil
	g := e.gateway("g1", apiHost, dbHost)
	g.Connections = []*Connection{c, tcp}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	resp, _ := get(t, e.client(e.planner, true), "https://api.test/latest/meta-data/")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if queries.Load() == 0 {
		t.Fatal("the name was never resolved: the refusal must come after resolution")
	}
	mustContain(t, e.logs.String(), `169.254.169.254:443 is link-local address (cloud metadata)`)

	// tcp connections dial through the same guard.
	tc := e.rawTLS(dbHost, e.planner)
	if b, _ := readAll(tc); len(b) != 0 {
		t.Fatalf("tcp to metadata got %q", b)
	}
	if err := e.srv.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, e, "g1", "meta-tcp", decisionAllow, reasonDestination); got != 1 {
		t.Fatalf("tcp destination_denied counter = %v", got)
	}
}
