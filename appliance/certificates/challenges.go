package certificates

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ChallengeRoute sends the HTTP-01 challenges for some hostnames to the
// handler of the ACME serving that manages them (Serving.HTTPChallenge).
type ChallengeRoute struct {
	Hostnames []string
	Handler   http.Handler
}

// ChallengeServer answers ACME HTTP-01 challenges on the plain-HTTP
// addresses TLS settings name in http_challenge_addr. It serves nothing but
// /.well-known/acme-challenge/ for declared hostnames: any other request
// gets 404, so the listener exposes no data path over plain HTTP.
type ChallengeServer struct {
	log *slog.Logger

	mu        sync.Mutex
	listeners map[string]*challengeListener
}

type challengeListener struct {
	srv    *http.Server
	routes atomic.Pointer[[]ChallengeRoute]
}

// NewChallengeServer returns a ChallengeServer with no listeners.
func NewChallengeServer(log *slog.Logger) *ChallengeServer {
	if log == nil {
		log = slog.Default()
	}
	return &ChallengeServer{log: log, listeners: map[string]*challengeListener{}}
}

// Apply makes routes (by listen address) the live set: it opens listeners
// for new addresses, swaps the routes of existing ones, and closes those no
// longer used. A listen error is returned per address; the other addresses
// are applied anyway.
func (c *ChallengeServer) Apply(routes map[string][]ChallengeRoute) map[string]error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := map[string]error{}
	for addr, rs := range routes {
		l := c.listeners[addr]
		if l == nil {
			var err error
			if l, err = c.listen(addr); err != nil {
				errs[addr] = err
				continue
			}
			c.listeners[addr] = l
		}
		l.routes.Store(&rs)
	}
	for addr, l := range c.listeners {
		if _, ok := routes[addr]; !ok {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = l.srv.Shutdown(ctx) // challenge requests are tiny; a cut one is retried by the CA
			cancel()
			delete(c.listeners, addr)
		}
	}
	return errs
}

func (c *ChallengeServer) listen(addr string) (*challengeListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP-01 listener: %w", err)
	}
	l := &challengeListener{}
	l.routes.Store(&[]ChallengeRoute{})
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(l.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	go func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("HTTP-01 listener stopped", "addr", addr, "error", err)
		}
	}()
	c.log.Info("answering ACME HTTP-01 challenges", "addr", ln.Addr().String())
	return l, nil
}

func (l *challengeListener) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		http.NotFound(w, r)
		return
	}
	host := hostOnly(r.Host)
	for _, rt := range *l.routes.Load() {
		for _, h := range rt.Hostnames {
			if hostMatches(h, host) {
				rt.Handler.ServeHTTP(w, r)
				return
			}
		}
	}
	http.NotFound(w, r)
}

// hostMatches reports whether name (exact or "*.domain") covers host.
func hostMatches(name, host string) bool {
	if strings.HasPrefix(name, "*.") {
		rest, ok := strings.CutSuffix(host, name[1:])
		return ok && rest != "" && !strings.Contains(rest, ".")
	}
	return strings.EqualFold(name, host)
}

// Close stops every listener.
func (c *ChallengeServer) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for addr, l := range c.listeners {
		errs = append(errs, l.srv.Shutdown(ctx))
		delete(c.listeners, addr)
	}
	return errors.Join(errs...)
}
