package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// ErrDestinationDenied is wrapped by every dial the destination guard
// refuses.
var ErrDestinationDenied = errors.New("destination denied")

// metadataAddrs are cloud instance-metadata endpoints outside the
// link-local ranges (AWS IPv6, Alibaba Cloud).
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

var (
	nat64Prefix   = netip.MustParsePrefix("64:ff9b::/96")
	thisNetwork   = netip.MustParsePrefix("0.0.0.0/8")
	broadcastAddr = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// guard refuses upstream dials to addresses a planner must never reach
// through the gateway. It runs as a net.Dialer Control hook, that is after
// DNS resolution and before connect(2), so a name that resolves somewhere
// forbidden is caught whatever it resolved to.
type guard struct {
	// denied are exact admin listener addresses.
	denied map[netip.AddrPort]bool
	// deniedPorts are admin ports listening on every address: any
	// loopback or local interface address on them is refused.
	deniedPorts map[uint16]bool
	local       map[netip.Addr]bool
}

// newGuard parses the appliance's admin listener addresses ("IP:PORT",
// ":PORT", "0.0.0.0:PORT", "[::]:PORT" or "localhost:PORT").
func newGuard(deniedAddrs []string) (*guard, error) {
	g := &guard{denied: map[netip.AddrPort]bool{}, deniedPorts: map[uint16]bool{}, local: map[netip.Addr]bool{}}
	for _, a := range deniedAddrs {
		host, portStr, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("denied address %q: %w", a, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("denied address %q: bad port: %w", a, err)
		}
		if host == "" {
			g.deniedPorts[uint16(port)] = true
			continue
		}
		if host == "localhost" {
			for _, ip := range []string{"127.0.0.1", "::1"} {
				g.denied[netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))] = true
			}
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("denied address %q: host must be an IP address: %w", a, err)
		}
		ip = ip.Unmap()
		if ip.IsUnspecified() {
			g.deniedPorts[uint16(port)] = true
			continue
		}
		g.denied[netip.AddrPortFrom(ip, uint16(port))] = true
	}
	if len(g.deniedPorts) > 0 {
		// An admin listener on every address is reachable through every
		// local address.
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("list local addresses: %w", err)
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				g.local[p.Addr().Unmap()] = true
			}
		}
	}
	return g, nil
}

// check returns nil when ap may be dialed.
func (g *guard) check(ap netip.AddrPort) error {
	ip := ap.Addr().Unmap()
	if nat64Prefix.Contains(ip) {
		// A NAT64 address reaches the IPv4 address it embeds.
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	var reason string
	switch {
	case !ip.IsValid():
		reason = "invalid address"
	case ip.IsUnspecified() || ip.Is4() && thisNetwork.Contains(ip):
		reason = "unspecified address"
	case ip.IsLinkLocalUnicast():
		reason = "link-local address (cloud metadata)"
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast():
		reason = "multicast address"
	case ip == broadcastAddr:
		reason = "broadcast address"
	}
	for _, m := range metadataAddrs {
		if ip == m {
			reason = "cloud metadata address"
		}
	}
	port := ap.Port()
	if g.denied[netip.AddrPortFrom(ip, port)] ||
		g.deniedPorts[port] && (ip.IsLoopback() || g.local[ip]) {
		reason = "the appliance's admin listener"
	}
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is %s", ErrDestinationDenied, ap, reason)
}

// control is the net.Dialer Control hook.
func (g *guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrDestinationDenied, address)
	}
	return g.check(ap)
}

// dialer returns a guarded dialer with the given connect timeout.
func (g *guard) dialer(connect time.Duration, resolver *net.Resolver) *net.Dialer {
	return &net.Dialer{
		Timeout:   connect,
		KeepAlive: 30 * time.Second,
		Resolver:  resolver,
		Control:   g.control,
	}
}
