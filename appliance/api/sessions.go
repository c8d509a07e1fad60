package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
)

// SessionSource is what the admin API serves recorded sessions from;
// *recording.Recorder implements it.
type SessionSource interface {
	// ListSessions lists sessions, newest first.
	ListSessions(ctx context.Context, opts recording.ListOptions) ([]recording.SessionSummary, error)
	// Session describes and verifies one session; an unknown id wraps
	// recording.ErrSessionNotFound.
	Session(ctx context.Context, id string) (*recording.SessionDetail, error)
	// Records returns up to limit records from index from, and whether
	// more follow.
	Records(ctx context.Context, id string, from int64, limit int) ([]recording.Record, bool, error)
	// PublicKeyPEM is the recording key's public key.
	PublicKeyPEM() []byte
}

// Listing limits.
const (
	defaultSessionLimit = 100
	maxSessionLimit     = 1000
	defaultRecordLimit  = 500
	maxRecordLimit      = 5000
)

// sessionList is the body of GET /v1/sessions.
type sessionList struct {
	Items []recording.SessionSummary `json:"items"`
}

// recordPage is the body of GET /v1/sessions/{id}/records. Next, when
// set, is the "from" of the next page.
type recordPage struct {
	Items []recording.Record `json:"items"`
	Next  *int64             `json:"next,omitempty"`
}

// registerSessionRoutes adds the recorded-session routes.
func (s *Server) registerSessionRoutes(r *mux.Router) {
	r.HandleFunc("/v1/sessions", s.listSessions).Methods(http.MethodGet)
	r.HandleFunc("/v1/sessions/{id}", s.getSession).Methods(http.MethodGet)
	r.HandleFunc("/v1/sessions/{id}/records", s.sessionRecords).Methods(http.MethodGet)
	r.HandleFunc("/v1/recording-public-key", s.recordingPublicKey).Methods(http.MethodGet)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ps model.Problems
	for key := range q {
		if key != "connection_id" && key != "since" && key != "limit" {
			ps.Add("query."+key, "unknown filter; filter by connection_id, since (RFC 3339) or limit")
		}
	}
	opts := recording.ListOptions{ConnectionID: q.Get("connection_id"), Limit: defaultSessionLimit}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			ps.Add("query.since", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		opts.Since = t
	}
	opts.Limit = parseLimit(&ps, q.Get("limit"), "query.limit", defaultSessionLimit, maxSessionLimit)
	if len(ps) > 0 {
		writeProblems(w, r, ps)
		return
	}
	items, err := s.cfg.Recordings.ListSessions(r.Context(), opts)
	if err != nil {
		s.writeSessionError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionList{Items: items})
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Recordings.Session(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.writeSessionError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) sessionRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ps model.Problems
	for key := range q {
		if key != "from" && key != "limit" {
			ps.Add("query."+key, "unknown parameter; use from (a record index) and limit")
		}
	}
	var from int64
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			ps.Add("query.from", "must be a record index (0 or more)")
		}
		from = n
	}
	limit := parseLimit(&ps, q.Get("limit"), "query.limit", defaultRecordLimit, maxRecordLimit)
	if len(ps) > 0 {
		writeProblems(w, r, ps)
		return
	}
	recs, more, err := s.cfg.Recordings.Records(r.Context(), mux.Vars(r)["id"], from, limit)
	if err != nil {
		s.writeSessionError(w, r, err)
		return
	}
	page := recordPage{Items: recs}
	if more && len(recs) > 0 {
		next := recs[len(recs)-1].Index + 1
		page.Next = &next
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) recordingPublicKey(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.cfg.Recordings.PublicKeyPEM())
}

// parseLimit reads a limit parameter: def when empty, at most maxLimit.
func parseLimit(ps *model.Problems, v, field string, def, maxLimit int) int {
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		ps.Add(field, "must be a whole number from 1 to %d", maxLimit)
		return def
	}
	return n
}

func (s *Server) writeSessionError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, recording.ErrSessionNotFound) {
		writeError(w, r, http.StatusNotFound, "no recorded session with id "+strconv.Quote(mux.Vars(r)["id"]))
		return
	}
	s.writeStoreError(w, r, err)
}
