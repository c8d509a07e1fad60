// Package devidp is a real, local OpenID provider for `make dev` and for
// tests: the OpenID provider of github.com/zitadel/oidc/v3 (its op
// package) served over HTTPS on a loopback address, with clients
// configured in code. It issues JWT access tokens through its token
// endpoint (the OAuth 2.0 client_credentials grant), publishes discovery
// and a JWKS, and can rotate its signing key. No token is signed by hand
// here: the op package signs them.
//
// To get a token for a given subject and audience, register a client with
// that Subject and Audience (in Options.Clients or with AddClient) and call
// IssueToken with its id and secret:
//
//	idp, _ := devidp.Start(ctx, devidp.Options{Clients: []devidp.Client{{
//		ID: "planner", Secret: "s3cret", Subject: "ci-runner-7",
//		Audience: []string{"sallyport"},
//		Claims:   map[string]any{"groups": []string{"ops"}},
//	}}})
//	token, _ := idp.IssueToken(ctx, "planner", "s3cret")
//
// The same token is what any OAuth client gets with
//
//	curl --cacert ca.pem -u planner:s3cret -d grant_type=client_credentials <issuer>/oauth/token
//
// It is not meant to face a network: it has no users, no login, no
// persistence, and keys live in memory.
package devidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// Options configure a development IdP. Zero values select the defaults.
type Options struct {
	// Addr is the listen address (default "127.0.0.1:0", a free port).
	Addr string
	// Host is the host name in the issuer URL (default: the listener's
	// IP). It must be covered by the serving certificate.
	Host string
	// Certificate is the serving certificate, and CACertPEM the CA that
	// issued it (what verifiers need as ca_pem). When Certificate is nil, a
	// fresh CA and a certificate for the listener's host, "localhost",
	// 127.0.0.1 and ::1 are generated (see GenerateTLS).
	Certificate *tls.Certificate
	CACertPEM   []byte
	// Audience is the "aud" of tokens for clients that set none (default:
	// the client id).
	Audience []string
	// Clients may obtain tokens.
	Clients []Client
	// TokenLifetime is how long access tokens are valid (default 10m).
	TokenLifetime time.Duration
	// Algorithm is the signing algorithm: "RS256" (default) or "ES256".
	Algorithm string
	// Logger receives the server's errors (default: discarded).
	Logger *slog.Logger
	// Wrap, when set, wraps the provider's HTTP handler (tests count or
	// fail requests with it).
	Wrap func(http.Handler) http.Handler
}

// Client is a confidential OAuth client that obtains access tokens with
// the client_credentials grant.
type Client struct {
	// ID and Secret authenticate the client at the token endpoint.
	ID, Secret string
	// Subject is the tokens' "sub" (default: ID).
	Subject string
	// Audience is the tokens' "aud" (default: Options.Audience, else ID).
	Audience []string
	// Claims are added to every token, for example "groups" or nested
	// objects such as {"kubernetes.io": {"namespace": "ci"}}. Registered
	// claims (iss, sub, aud, exp, nbf, iat, jti, client_id) are refused.
	Claims map[string]any
}

// IDP is a running development OpenID provider.
type IDP struct {
	issuer   string
	addr     string
	caPEM    []byte
	alg      jose.SignatureAlgorithm
	audience []string
	store    *storage
	tokenURL string
	client   *http.Client
	srv      *http.Server
	served   chan struct{}
	stop     func() bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts an IdP and returns once it accepts connections. It stops
// when ctx is done or Close is called.
func Start(ctx context.Context, opts Options) (*IDP, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	alg := jose.SignatureAlgorithm(opts.Algorithm)
	switch alg {
	case "":
		alg = jose.RS256
	case jose.RS256, jose.ES256:
	default:
		return nil, fmt.Errorf("devidp: algorithm %q is not supported (RS256 or ES256)", opts.Algorithm)
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen: %w", err)
	}
	fail := func(err error) (*IDP, error) {
		ln.Close()
		return nil, err
	}
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return fail(fmt.Errorf("devidp: listener address: %w", err))
	}
	if opts.Host != "" {
		host = opts.Host
	}
	issuer := "https://" + net.JoinHostPort(host, port)

	cert, caPEM := opts.Certificate, opts.CACertPEM
	if cert == nil {
		cert, caPEM, err = GenerateTLS(host, "localhost", "127.0.0.1", "::1")
		if err != nil {
			return fail(err)
		}
	}

	key, err := newSigningKey(alg)
	if err != nil {
		return fail(err)
	}
	idp := &IDP{
		issuer:   issuer,
		addr:     ln.Addr().String(),
		caPEM:    caPEM,
		alg:      alg,
		audience: slices.Clone(opts.Audience),
		store: &storage{
			lifetime:  opts.TokenLifetime,
			clients:   map[string]Client{},
			signing:   key,
			published: []*signingKey{key},
		},
		served: make(chan struct{}),
	}
	for _, c := range opts.Clients {
		if err := idp.AddClient(c); err != nil {
			return fail(err)
		}
	}

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return fail(fmt.Errorf("devidp: crypto key: %w", err))
	}
	provider, err := op.NewProvider(&op.Config{CryptoKey: cryptoKey}, idp.store, op.StaticIssuer(issuer))
	if err != nil {
		return fail(fmt.Errorf("devidp: op provider: %w", err))
	}
	idp.tokenURL = provider.TokenEndpoint().Absolute(issuer)

	var handler http.Handler = provider
	if opts.Wrap != nil {
		handler = opts.Wrap(handler)
	}
	idp.srv = &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}

	roots, err := certPool(caPEM)
	if err != nil {
		return fail(err)
	}
	idp.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: true,
		},
	}

	go func() {
		defer close(idp.served)
		if err := idp.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("devidp stopped serving", "error", err)
		}
	}()
	idp.stop = context.AfterFunc(ctx, func() { _ = idp.Close() })
	opts.Logger.Info("devidp started", "issuer", issuer)
	return idp, nil
}

// Issuer returns the issuer URL ("https://127.0.0.1:PORT"), what a gateway
// lists as issuer_url and bindings name as issuer.
func (i *IDP) Issuer() string { return i.issuer }

// Addr returns the listen address (HOST:PORT), for restarting an IdP at
// the same issuer URL.
func (i *IDP) Addr() string { return i.addr }

// CACertPEM returns the CA certificate that verifies the IdP's TLS (nil
// when the caller supplied a certificate without its CA).
func (i *IDP) CACertPEM() []byte { return i.caPEM }

// HTTPClient returns a client that trusts the IdP's TLS.
func (i *IDP) HTTPClient() *http.Client { return i.client }

// Algorithm returns the signing algorithm ("RS256" or "ES256").
func (i *IDP) Algorithm() string { return string(i.alg) }

// AddClient registers a client, or replaces the one with the same id.
func (i *IDP) AddClient(c Client) error {
	if c.ID == "" || c.Secret == "" {
		return errors.New("devidp: a client needs an id and a secret")
	}
	for k := range c.Claims {
		switch k {
		case "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id":
			return fmt.Errorf("devidp: client %q: claim %q is set by the provider", c.ID, k)
		}
	}
	if c.Subject == "" {
		c.Subject = c.ID
	}
	switch {
	case len(c.Audience) > 0:
		c.Audience = slices.Clone(c.Audience)
	case len(i.audience) > 0:
		c.Audience = slices.Clone(i.audience)
	default:
		c.Audience = []string{c.ID}
	}
	i.store.mu.Lock()
	defer i.store.mu.Unlock()
	i.store.clients[c.ID] = c
	return nil
}

// IssueToken obtains an access token for a client through the token
// endpoint, over HTTPS, exactly as an OAuth client would
// (client_credentials grant, client_secret_basic). Scopes are passed on
// and do not change the claims.
func (i *IDP) IssueToken(ctx context.Context, clientID, clientSecret string, scopes ...string) (string, error) {
	cfg := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		TokenURL:     i.tokenURL,
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, i.client))
	if err != nil {
		return "", fmt.Errorf("devidp: token for client %q: %w", clientID, err)
	}
	return tok.AccessToken, nil
}

// SigningKeyID returns the key id ("kid") new tokens are signed with.
func (i *IDP) SigningKeyID() string {
	i.store.mu.RLock()
	defer i.store.mu.RUnlock()
	return i.store.signing.id
}

// PublishedKeyIDs returns the key ids in the JWKS, signing key first.
func (i *IDP) PublishedKeyIDs() []string {
	i.store.mu.RLock()
	defer i.store.mu.RUnlock()
	ids := make([]string, 0, len(i.store.published))
	for _, k := range i.store.published {
		ids = append(ids, k.id)
	}
	return ids
}

// RotateKeys switches to a new signing key and withdraws the old one from
// the JWKS at once: tokens signed with it stop verifying as soon as a
// verifier refetches the key set (an emergency rotation).
func (i *IDP) RotateKeys() error { return i.rotate(false) }

// RotateKeysGracefully switches to a new signing key and keeps the
// previous one published (until the next rotation), so tokens it signed
// keep verifying (a planned rotation).
func (i *IDP) RotateKeysGracefully() error { return i.rotate(true) }

func (i *IDP) rotate(keepPrevious bool) error {
	k, err := newSigningKey(i.alg)
	if err != nil {
		return err
	}
	i.store.rotate(k, keepPrevious)
	return nil
}

// Close stops the IdP and frees its address; it is idempotent.
func (i *IDP) Close() error {
	i.closeOnce.Do(func() {
		i.stop()
		i.closeErr = i.srv.Close()
		<-i.served
		i.client.CloseIdleConnections()
	})
	return i.closeErr
}

func newSigningKey(alg jose.SignatureAlgorithm) (*signingKey, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, fmt.Errorf("devidp: signing key: %w", err)
	}
	return &signingKey{id: uuid.NewString(), alg: alg, key: key}, nil
}

// GenerateTLS creates an in-memory CA (ECDSA P-256) and a server
// certificate it signs for hosts (IP addresses or DNS names). It returns
// the certificate ready for tls.Config (leaf then CA) and the CA in PEM
// form, what clients need to trust it.
func GenerateTLS(hosts ...string) (*tls.Certificate, []byte, error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("devidp: GenerateTLS needs at least one host")
	}
	ca, err := pki.NewEphemeralCA("devidp")
	if err != nil {
		return nil, nil, fmt.Errorf("devidp: %w", err)
	}
	req := pki.IssueRequest{CommonName: hosts[0], Usage: pki.UsageServer}
	for _, h := range hosts {
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			req.IPs = append(req.IPs, ip)
		} else {
			req.DNSNames = append(req.DNSNames, h)
		}
	}
	_, _, cert, err := ca.Issue(req)
	if err != nil {
		return nil, nil, fmt.Errorf("devidp: server certificate: %w", err)
	}
	return cert, ca.CertPEM(), nil
}

// certPool returns a pool of caPEM's certificates, or nil (the system
// roots) when there are none.
func certPool(caPEM []byte) (*x509.CertPool, error) {
	if len(caPEM) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("devidp: CACertPEM holds no certificate")
	}
	return pool, nil
}
