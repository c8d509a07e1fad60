package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

func TestWebSocket(t *testing.T) {
	e := newEnv(t)
	x := e.executorProto(false, websocket.Handler(func(ws *websocket.Conn) {
		_, _ = io.Copy(ws, ws)
	}).ServeHTTP)
	c := e.connection("ws", x.URL)
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	cfg, err := websocket.NewConfig("wss://api.test/ws", "https://api.test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = http.Header{"Cookie": {"planner=1"}}
	ws, err := websocket.NewClient(cfg, e.rawTLS(apiHost, e.planner))
	if err != nil {
		t.Fatalf("WebSocket handshake through the gateway: %v", err)
	}
	defer ws.Close()
	for _, msg := range []string{"hello", "world"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	h := x.last(t).Header
	if h.Get("X-Api-Key") != secretKey || h.Get("Cookie") != "" || h.Get("Upgrade") != "websocket" {
		t.Fatalf("executor handshake headers: %v", h)
	}
	// Without an identity, no upgrade.
	if _, err := websocket.NewClient(cfg, e.rawTLS(apiHost, nil)); err == nil {
		t.Fatal("anonymous WebSocket upgrade succeeded")
	}
}

// echoService is a real gRPC executor: bidirectional echo with trailers,
// and an RPC that fails with a status.
type echoService struct {
	testgrpc.UnimplementedTestServiceServer
	md chan metadata.MD
}

func (s *echoService) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.md <- md
	_ = stream.SetHeader(metadata.Pairs("x-header", "early"))
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			stream.SetTrailer(metadata.Pairs("x-trailer", "done"))
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.Payload}); err != nil {
			return err
		}
	}
}

func (s *echoService) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{}, nil
}

func (s *echoService) StreamingOutputCall(*testgrpc.StreamingOutputCallRequest, grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	return status.Error(codes.ResourceExhausted, "quota exceeded")
}

func TestGRPCStreamingWithTrailers(t *testing.T) {
	e := newEnv(t)
	_, _, cert, err := e.ca.Issue(pki.IssueRequest{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	svc := &echoService{md: make(chan metadata.MD, 10)}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	testgrpc.RegisterTestServiceServer(gs, svc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	c := e.connection("grpc", "https://"+ln.Addr().String())
	c.Protocol = "grpc"
	c.PathPrefix = "/grpc.testing.TestService/"
	c.Bindings = []*identity.Binding{e.binding("grpc", plannerID, func(s *model.IdentityBindingSpec) {
		s.AllowedGRPCMethods = []string{"/grpc.testing.TestService/FullDuplexCall", "/grpc.testing.TestService/StreamingOutputCall"}
	})}
	g := e.gateway("g1", apiHost)
	g.Connections = []*Connection{c}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	gwAddr := e.addr()
	dial := func(cert *tls.Certificate) testgrpc.TestServiceClient {
		cc, err := grpc.NewClient("passthrough:///api.test",
			grpc.WithTransportCredentials(credentials.NewTLS(e.clientTLS(apiHost, cert))),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", gwAddr)
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return testgrpc.NewTestServiceClient(cc)
	}
	client := dial(e.planner)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Basic planner", "x-api-key", "planner")
	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each reply arrives before the next message is sent: streaming, not
	// buffering.
	for _, msg := range []string{"one", "two", "three"} {
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(msg)}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil || string(resp.GetPayload().GetBody()) != msg {
			t.Fatalf("echo of %q: %v %v", msg, resp, err)
		}
	}
	hdr, err := stream.Header()
	if err != nil || hdr.Get("x-header")[0] != "early" {
		t.Fatalf("header %v %v", hdr, err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
	if tr := stream.Trailer(); len(tr.Get("x-trailer")) != 1 || tr.Get("x-trailer")[0] != "done" {
		t.Fatalf("trailer %v", tr)
	}
	md := <-svc.md
	if md.Get("x-api-key")[0] != secretKey || len(md.Get("x-api-key")) != 1 || len(md.Get("authorization")) != 0 {
		t.Fatalf("executor metadata %v", md)
	}

	// An error status travels in the trailers.
	ss, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err == nil {
		_, err = ss.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != "quota exceeded" {
		t.Fatalf("error status: %v", err)
	}
	// A method the binding does not list.
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("UnaryCall: %v, want PermissionDenied", err)
	}
	// No identity.
	if _, err := dial(nil).UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous: %v, want Unauthenticated", err)
	}
	if got := counter(t, e, "g1", "grpc", decisionDeny, "grpc_method_not_allowed"); got != 1 {
		t.Fatalf("grpc_method_not_allowed counter = %v", got)
	}
}

// tlsEcho is a real TLS executor for tcp connections: it echoes until the
// client half-closes, then half-closes too.
func (e *env) tlsEcho() string {
	e.t.Helper()
	_, _, cert, err := e.ca.Issue(pki.IssueRequest{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*tls.Conn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTCPOverTLS(t *testing.T) {
	e := newEnv(t)
	echo := e.tlsEcho()
	u, _ := url.Parse("tls://" + echo)
	tcp := &Connection{ID: "db", Name: "db", Protocol: "tcp", Hostname: dbHost, Upstream: u, UpstreamTLS: e.upTLS,
		Timeouts: Timeouts{Idle: 500 * time.Millisecond},
		Bindings: []*identity.Binding{e.binding("db", plannerID)}}
	x := e.executor(nil)
	web := e.connection("web", x.URL)
	g := e.gateway("g1", apiHost, dbHost)
	g.Connections = []*Connection{web, tcp}
	e.apply(&Runtime{Gateways: []*Gateway{g}})

	dial := func(cert *tls.Certificate) *tls.Conn {
		c, err := tls.Dial("tcp", e.addr(), e.clientTLS(dbHost, cert))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dial(e.planner)
	if c.ConnectionState().NegotiatedProtocol != "" {
		t.Fatalf("ALPN %q on a tcp name", c.ConnectionState().NegotiatedProtocol)
	}
	buf := make([]byte, 4)
	_, _ = io.WriteString(c, "ping")
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	// Half-close: the executor still answers after our end is closed.
	_, _ = io.WriteString(c, "last words")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "last words" {
		t.Fatalf("after half-close: %q %v", rest, err)
	}

	// No certificate, or one no binding admits: closed before a byte moves.
	for _, cert := range []*tls.Certificate{nil, e.stranger} {
		c := dial(cert)
		_, _ = io.WriteString(c, "ping")
		if b, err := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("unbound tcp client got %q (%v)", b, err)
		}
	}

	// Idle sessions end.
	c = dial(e.planner)
	_, _ = io.WriteString(c, "x")
	_, _ = io.ReadFull(c, buf[:1])
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("idle session: %v", err) // EOF (nil) when the gateway closed it
	}

	// A session whose connection is removed is closed by the reload.
	long := *tcp
	long.Timeouts.Idle = time.Hour
	gA := *g
	gA.Connections = []*Connection{web, &long}
	e.apply(&Runtime{Revision: 2, Gateways: []*Gateway{&gA}})
	c = dial(e.planner)
	_, _ = io.WriteString(c, "y")
	_, _ = io.ReadFull(c, buf[:1])
	gB := *g
	gB.Connections = []*Connection{web}
	e.apply(&Runtime{Revision: 3, Gateways: []*Gateway{&gB}})
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("session of a removed connection: %v", err)
	}
	// Close waits for sessions to end, and so for their log lines.
	if err := e.srv.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.logs.String(), `"detail":"closed by the gateway: connection removed"`)
}
