package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	b := s.cfg.Store.Backend()
	rev, err := b.Revision(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	counts, err := s.cfg.Store.Counts(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	resp := model.ApplianceStatus{
		Version:       s.cfg.Version,
		StartedAt:     s.started.UTC(),
		UptimeSeconds: int64(time.Since(s.started).Seconds()),
		Store:         model.StoreStatus{Backend: b.Name(), Revision: rev},
		Counts:        map[string]int{},
		Reconcile:     json.RawMessage(`{"state":"not running"}`),
	}
	for k, n := range counts {
		resp.Counts[string(k)] = n
	}
	if s.cfg.ReconcileState != nil {
		if state, err := json.Marshal(s.cfg.ReconcileState()); err == nil {
			resp.Reconcile = state
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// auditResponse is the body of GET /v1/audit.
type auditResponse struct {
	Items []model.AuditEntry `json:"items"`
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ps model.Problems
	var query model.AuditQuery
	for key, vals := range q {
		v := vals[0]
		var err error
		switch key {
		case "after":
			query.After, err = strconv.ParseUint(v, 10, 64)
		case "limit":
			query.Limit, err = strconv.Atoi(v)
			if err == nil && (query.Limit < 1 || query.Limit > 1000) {
				ps.Add("query.limit", "must be from 1 to 1000")
			}
		case "kind":
			query.Kind = model.Kind(v)
			if _, kerr := query.Kind.NewSpec(); kerr != nil {
				ps.Add("query.kind", "must be one of tls_settings, gateway, connection, identity_binding")
			}
		case "object_id":
			query.ObjectID = v
		default:
			ps.Add("query."+key, "unknown parameter; use after, limit, kind or object_id")
		}
		if err != nil {
			ps.Add("query."+key, "must be a whole number")
		}
	}
	if len(ps) > 0 {
		writeProblems(w, r, ps)
		return
	}
	entries, err := s.cfg.Store.Audit(r.Context(), query)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, auditResponse{Items: entries})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := s.cfg.Store.Backend().Revision(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("store unavailable\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// afterWrite waits, when the appliance runs a data path, until the write
// just committed is live. A failed wait is logged, not fatal: the write is
// stored, and the object's status says how the reconcile went.
func (s *Server) afterWrite(r *http.Request) {
	if s.cfg.AfterWrite == nil {
		return
	}
	rev, err := s.cfg.Store.Backend().Revision(r.Context())
	if err == nil {
		err = s.cfg.AfterWrite(r.Context(), rev)
	}
	if err != nil {
		s.cfg.Logger.Warn("waiting for the data path after a write", "request_id", info(r).id, "error", err)
	}
}
