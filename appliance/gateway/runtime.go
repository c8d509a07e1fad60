package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/guardrails"
	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/masking"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Runtime is a complete, immutable description of the data path, built by
// the reconciler from the store and handed to Server.Apply. Nothing in it
// changes after Apply; a new configuration is a new Runtime.
type Runtime struct {
	// Revision is the store revision the runtime was built from.
	Revision uint64
	// Gateways are the listeners' virtual hosts.
	Gateways []*Gateway
}

// Gateway is one declared gateway: a listen address (possibly shared with
// other gateways, told apart by SNI) serving some hostnames.
type Gateway struct {
	ID, Name   string
	Generation int64
	// ListenAddr is HOST:PORT.
	ListenAddr string
	// Hostnames are the names this gateway serves (exact, or "*.example.com").
	Hostnames []string
	// TLS is the serving side's TLS.
	TLS *ServerTLS
	// Tokens verifies bearer tokens against the gateway's OIDC providers
	// (nil when it trusts none: only client-certificate bindings can match).
	Tokens identity.TokenVerifier
	// Connections are the executors behind this gateway.
	Connections []*Connection
}

// ServerTLS is the TLS a gateway serves with.
type ServerTLS struct {
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13.
	MinVersion uint16
	// GetCertificate returns the certificate for a handshake (certmagic,
	// static or self-signed).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientAuth is tls.NoClientCert, tls.VerifyClientCertIfGiven or
	// tls.RequireAndVerifyClientCert.
	ClientAuth tls.ClientAuthType
	// ClientCAs verifies planners' client certificates.
	ClientCAs *x509.CertPool
	// NextProtos are extra ALPN protocols to accept before h2 and
	// http/1.1 (certmagic's "acme-tls/1" for TLS-ALPN-01).
	NextProtos []string
}

// Connection is one executor reachable through a gateway.
type Connection struct {
	ID, Name   string
	Generation int64
	// Protocol is "http", "grpc" or "tcp".
	Protocol string
	// Hostname and PathPrefix route requests here ("" matches any).
	Hostname, PathPrefix string
	// Upstream is the executor's URL (https://... or tls://host:port).
	Upstream *url.URL
	// UpstreamTLS verifies the executor and may present a client
	// certificate; never InsecureSkipVerify.
	UpstreamTLS *tls.Config
	// UpstreamTLSKey optionally names the content of UpstreamTLS (for
	// example the TLS settings' id and generation). Connections with the
	// same upstream, timeouts and key share one pooled transport, and keep
	// it across runtime versions, even when the *tls.Config pointers
	// differ. When empty, the pointer itself is the identity.
	UpstreamTLSKey string
	// InjectHeaders are added to every upstream request; values are
	// secrets.
	InjectHeaders http.Header
	// Timeouts bound the upstream side.
	Timeouts Timeouts
	// Bindings decide who may use the connection; none means nobody.
	Bindings []*identity.Binding
	// Masker masks response bodies before they reach the planner (and
	// before they are recorded); nil masks nothing. Only http
	// connections can mask: gRPC messages are protobuf and tcp is a byte
	// stream, so Apply refuses a masker on them.
	Masker *masking.Masker
	// Guardrails apply to every request of the connection, after the
	// bindings admitted it and before it is forwarded (nil: none). Not
	// for tcp connections; on grpc ones, only rules that do not read the
	// body (gRPC bodies are streams).
	Guardrails *guardrails.Set
	// BindingGuardrails are bindings' own guardrails, by binding ID: they
	// apply, after the connection's, to the requests that binding
	// admits.
	BindingGuardrails map[string]*guardrails.Set
	// Recording records the connection's sessions when enabled (nil: not
	// recorded). It needs Options.Recorder.
	Recording *model.RecordingSpec
}

// Timeouts bound a connection's upstream side.
type Timeouts struct {
	Connect, ResponseHeader, Idle time.Duration
}
