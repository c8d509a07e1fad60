package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 1 << 20

// Config is what the admin API needs.
type Config struct {
	// Store holds the desired state.
	Store *store.Store
	// Tokens are the accepted admin tokens.
	Tokens *admintoken.Set
	// Logger receives one structured line per request; defaults to
	// slog.Default().
	Logger *slog.Logger
	// Version is reported by /v1/status.
	Version string
	// Registry receives the API's metrics and is served at /metrics; a new
	// registry with Go and process collectors when nil.
	Registry *prometheus.Registry
	// AfterWrite, when set, is called after every committed write with the
	// store revision it produced; it returns when the data path runs that
	// revision (or the context ends), so a write's response means "live".
	AfterWrite func(ctx context.Context, revision uint64) error
	// ReconcileState, when set, reports the reconciler for /v1/status.
	ReconcileState func() any
	// Recordings, when set, serves recorded sessions under /v1/sessions
	// and the recording public key.
	Recordings SessionSource
}

// Server is the admin API's HTTP handler.
type Server struct {
	cfg     Config
	started time.Time
	handler http.Handler
	metrics *metrics
}

// New returns the admin API handler. Every path it answers is
// authenticated.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{cfg: cfg, started: time.Now()}
	s.metrics = newMetrics(cfg.Registry, cfg.Store)

	// Match on the path as sent: mux would otherwise clean a decoded path
	// and redirect ("/v1/gateways/a%2F..%2Fb"), where a 404 is the answer.
	r := mux.NewRouter().UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no such path: see the admin API reference")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on this path")
	})
	r.Use(recordRoute)
	for _, k := range model.Kinds {
		c := &collection{s: s, kind: k}
		base := "/v1/" + k.Collection()
		r.HandleFunc(base, c.list).Methods(http.MethodGet)
		r.HandleFunc(base, c.create).Methods(http.MethodPost)
		r.HandleFunc(base+"/{id}", c.get).Methods(http.MethodGet)
		r.HandleFunc(base+"/{id}", c.replace).Methods(http.MethodPut)
		r.HandleFunc(base+"/{id}", c.delete).Methods(http.MethodDelete)
	}
	r.HandleFunc("/v1/status", s.status).Methods(http.MethodGet)
	r.HandleFunc("/v1/audit", s.audit).Methods(http.MethodGet)
	if cfg.Recordings != nil {
		s.registerSessionRoutes(r)
	}
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)

	// Outermost first: ids and logs for everything, then panics, then
	// authentication around the whole router (404 and 405 included), then
	// the cross-origin guard.
	s.handler = s.withRequestLog(recoverPanics(s.authenticate(refuseCrossOrigin(r))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// NewHTTPServer returns an http.Server for the handler with timeouts and
// header limits always set.
func NewHTTPServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute, // writes may wait for the data path
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
