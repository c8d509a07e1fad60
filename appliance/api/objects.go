package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// collection serves the objects of one kind.
type collection struct {
	s    *Server
	kind model.Kind
}

// writeRequest is the body of POST and PUT.
type writeRequest struct {
	Name string          `json:"name"`
	Spec json.RawMessage `json:"spec"`
}

// listResponse is the body of a list.
type listResponse struct {
	Items []*model.Resource `json:"items"`
}

func (c *collection) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := store.ListOptions{Name: q.Get("name")}
	for key := range q {
		if key != "name" && key != c.kind.ParentField() {
			writeProblems(w, r, model.Problems{{Field: "query." + key, Message: "unknown filter" + c.filters()}})
			return
		}
	}
	if p := c.kind.ParentField(); p != "" {
		opts.Parent = q.Get(p)
	}
	items, err := c.s.cfg.Store.List(r.Context(), c.kind, opts)
	if err != nil {
		c.s.writeStoreError(w, r, err)
		return
	}
	if items == nil {
		items = []*model.Resource{}
	}
	writeJSON(w, http.StatusOK, listResponse{Items: items})
}

func (c *collection) filters() string {
	if p := c.kind.ParentField(); p != "" {
		return "; filter by name or " + p
	}
	return "; filter by name"
}

func (c *collection) get(w http.ResponseWriter, r *http.Request) {
	obj, err := c.s.cfg.Store.Get(r.Context(), c.kind, mux.Vars(r)["id"])
	if err != nil {
		c.s.writeStoreError(w, r, err)
		return
	}
	writeObject(w, http.StatusOK, obj)
}

func (c *collection) create(w http.ResponseWriter, r *http.Request) {
	name, spec, ok := c.decode(w, r)
	if !ok {
		return
	}
	obj, err := c.s.cfg.Store.Create(r.Context(), c.writer(r), name, spec)
	if err != nil {
		c.s.writeStoreError(w, r, err)
		return
	}
	c.s.afterWrite(r)
	w.Header().Set("Location", "/v1/"+c.kind.Collection()+"/"+obj.ID)
	c.respondFresh(w, r, http.StatusCreated, obj)
}

func (c *collection) replace(w http.ResponseWriter, r *http.Request) {
	ifMatch, ok := parseIfMatch(w, r)
	if !ok {
		return
	}
	name, spec, ok := c.decode(w, r)
	if !ok {
		return
	}
	obj, err := c.s.cfg.Store.Replace(r.Context(), c.writer(r), c.kind, mux.Vars(r)["id"], ifMatch, name, spec)
	if err != nil {
		c.s.writeStoreError(w, r, err)
		return
	}
	c.s.afterWrite(r)
	c.respondFresh(w, r, http.StatusOK, obj)
}

func (c *collection) delete(w http.ResponseWriter, r *http.Request) {
	ifMatch, ok := parseIfMatch(w, r)
	if !ok {
		return
	}
	if err := c.s.cfg.Store.Delete(r.Context(), c.writer(r), c.kind, mux.Vars(r)["id"], ifMatch); err != nil {
		c.s.writeStoreError(w, r, err)
		return
	}
	c.s.afterWrite(r)
	w.WriteHeader(http.StatusNoContent)
}

// respondFresh answers a write with the object as stored now, so the status
// reflects the reconcile the write waited for.
func (c *collection) respondFresh(w http.ResponseWriter, r *http.Request, code int, obj *model.Resource) {
	if fresh, err := c.s.cfg.Store.Get(r.Context(), c.kind, obj.ID); err == nil {
		obj = fresh
	}
	writeObject(w, code, obj)
}

func (c *collection) writer(r *http.Request) store.Writer {
	ri := info(r)
	return store.Writer{Actor: ri.actor, RequestID: ri.id}
}

// decode reads a write body strictly: JSON only, at most MaxBodyBytes, no
// unknown fields anywhere. Problems are answered with field paths.
func (c *collection) decode(w http.ResponseWriter, r *http.Request) (string, model.Spec, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, r, http.StatusUnsupportedMediaType, "send the body as JSON with \"Content-Type: application/json\"")
		return "", nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes))
		return "", nil, false
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "reading the body failed")
		return "", nil, false
	}
	var req writeRequest
	if err := model.DecodeJSON(body, &req, true); err != nil {
		writeProblems(w, r, model.Problems{jsonProblem("", err)})
		return "", nil, false
	}
	if len(req.Spec) == 0 || string(req.Spec) == "null" {
		writeProblems(w, r, model.Problems{{Field: "spec", Message: "required"}})
		return "", nil, false
	}
	spec, err := model.DecodeSpec(c.kind, req.Spec, true)
	if err != nil {
		writeProblems(w, r, model.Problems{jsonProblem("spec", err)})
		return "", nil, false
	}
	return req.Name, spec, true
}

// jsonProblem turns a decoding error into a problem at the field it names.
func jsonProblem(prefix string, err error) model.Problem {
	join := func(field string) string {
		switch {
		case prefix == "":
			return field
		case field == "":
			return prefix
		}
		return prefix + "." + field
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		// Value may hold the literal sent ("number 12345"): keep only its
		// type, since the field may be a secret.
		got, _, _ := strings.Cut(typeErr.Value, " ")
		return model.Problem{Field: join(typeErr.Field), Message: fmt.Sprintf("must be a JSON %s, not %s", jsonType(typeErr.Type.Kind().String()), got)}
	case errors.As(err, &syntaxErr):
		return model.Problem{Field: "body", Message: fmt.Sprintf("not valid JSON at byte %d", syntaxErr.Offset)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return model.Problem{Field: join(field), Message: "unknown field"}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return model.Problem{Field: "body", Message: "the JSON body is empty or cut short"}
	}
	return model.Problem{Field: join(""), Message: strings.TrimPrefix(err.Error(), "json: ")}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	case "bool":
		return "boolean"
	}
	return "number"
}

// parseIfMatch reads If-Match: a quoted generation, or "*" (any). A
// malformed value cannot match any ETag, so it is a failed precondition.
func parseIfMatch(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, true
	}
	v = strings.TrimPrefix(v, "W/")
	gen, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || gen <= 0 || !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) {
		writeError(w, r, http.StatusPreconditionFailed, `If-Match must be the ETag of a read, such as "3"`)
		return 0, false
	}
	return gen, true
}

// ETag is the entity tag of an object at a generation.
func ETag(generation int64) string { return strconv.Quote(strconv.FormatInt(generation, 10)) }

func writeObject(w http.ResponseWriter, code int, obj *model.Resource) {
	w.Header().Set("ETag", ETag(obj.Generation))
	writeJSON(w, code, obj)
}
