package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error      string            `json:"error"`
	RequestID  string            `json:"request_id"`
	Problems   []model.Problem   `json:"problems,omitempty"`
	Dependents []model.ObjectRef `json:"dependents,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		slog.Debug("writing a response failed", "error", err)
	}
}

func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg, RequestID: info(r).id})
}

func writeProblems(w http.ResponseWriter, r *http.Request, ps model.Problems) {
	writeJSON(w, http.StatusBadRequest, ErrorBody{Error: "invalid request: " + ps.Error(), RequestID: info(r).id, Problems: ps})
}

// writeStoreError maps the store's typed errors to status codes. Anything
// else is an internal error whose details go to the log, not the client.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ps       model.Problems
		conflict *store.ConflictError
		pre      *store.PreconditionFailedError
		nf       *store.NotFoundError
	)
	switch {
	case errors.As(err, &ps):
		writeProblems(w, r, ps)
	case errors.As(err, &nf):
		writeError(w, r, http.StatusNotFound, nf.Error())
	case errors.As(err, &conflict):
		writeJSON(w, http.StatusConflict, ErrorBody{Error: conflict.Error(), RequestID: info(r).id, Dependents: conflict.Dependents})
	case errors.As(err, &pre):
		writeError(w, r, http.StatusPreconditionFailed, pre.Error())
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		writeError(w, r, http.StatusServiceUnavailable, "the request was cancelled")
	default:
		s.cfg.Logger.Error("admin API store error", "request_id", info(r).id, "error", err)
		writeError(w, r, http.StatusInternalServerError, "internal error; the appliance log has details under this request id")
	}
}
