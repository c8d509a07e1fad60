package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Collection is the API of one kind of object, typed by its spec S (for
// example model.GatewaySpec). Get one from Client.TLSSettings,
// Client.Gateways, Client.Connections or Client.IdentityBindings.
type Collection[S any] struct {
	c    *Client
	kind model.Kind
}

// ListOptions filters a list.
type ListOptions struct {
	// Name, when set, keeps only objects with this name.
	Name string
	// Parent, when set, keeps only objects under this parent: the gateway
	// id of connections, the connection id of identity bindings. Other
	// kinds have no parent.
	Parent string
}

// WriteOptions makes a replace or delete conditional.
type WriteOptions struct {
	// IfMatch, when non-zero, is the generation the object must still have;
	// otherwise the appliance answers 412 (see IsPreconditionFailed).
	IfMatch int64
}

// writeBody is the body of a create or replace.
type writeBody[S any] struct {
	Name string `json:"name"`
	Spec S      `json:"spec"`
}

// Kind returns the kind of the collection's objects.
func (col *Collection[S]) Kind() model.Kind { return col.kind }

func (col *Collection[S]) path() string { return "/v1/" + col.kind.Collection() }

func (col *Collection[S]) objectPath(id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		// An empty id would address the collection itself.
		return "", fmt.Errorf("sallyport: %s id is empty", col.kind.Title())
	}
	if !validID(id) {
		// Ids are server-assigned tokens; anything else (a slash, "..")
		// could make the request address another path.
		return "", fmt.Errorf("sallyport: %q is not a valid %s id", id, col.kind.Title())
	}
	return col.path() + "/" + id, nil
}

// validID reports whether id consists only of URL-unreserved characters and
// is not a dot segment, so it names exactly one path segment as is.
func validID(id string) bool {
	if id == "." || id == ".." || len(id) > 256 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '~':
		default:
			return false
		}
	}
	return true
}

// List returns the objects of the kind that match opts, in the appliance's
// order.
func (col *Collection[S]) List(ctx context.Context, opts ListOptions) ([]*model.Object[S], error) {
	q := url.Values{}
	if opts.Name != "" {
		q.Set("name", opts.Name)
	}
	if opts.Parent != "" {
		field := col.kind.ParentField()
		if field == "" {
			return nil, fmt.Errorf("sallyport: %s objects have no parent to filter by", col.kind.Title())
		}
		q.Set(field, opts.Parent)
	}
	var out struct {
		Items []*model.Object[S] `json:"items"`
	}
	if _, err := col.c.do(ctx, request{method: http.MethodGet, path: col.path(), query: q}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Get returns the object with the given id; a missing one is an error for
// which IsNotFound is true.
func (col *Collection[S]) Get(ctx context.Context, id string) (*model.Object[S], error) {
	p, err := col.objectPath(id)
	if err != nil {
		return nil, err
	}
	return col.object(ctx, request{method: http.MethodGet, path: p})
}

// GetByName returns the object called name. parent is the gateway id of a
// connection or the connection id of an identity binding, within which
// their names are unique, and "" for the kinds whose names are global. When
// there is none the error is an *APIError with status 404, so IsNotFound is
// true.
func (col *Collection[S]) GetByName(ctx context.Context, parent, name string) (*model.Object[S], error) {
	if name == "" {
		return nil, fmt.Errorf("sallyport: %s name is empty", col.kind.Title())
	}
	items, err := col.List(ctx, ListOptions{Name: name, Parent: parent})
	if err != nil {
		return nil, err
	}
	// Filter again in case the appliance ignored a filter.
	var found []*model.Object[S]
	for _, o := range items {
		if o.Name == name {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		msg := fmt.Sprintf("no %s named %q", col.kind.Title(), name)
		if parent != "" {
			msg += fmt.Sprintf(" under %s", parent)
		}
		return nil, &APIError{StatusCode: http.StatusNotFound, Message: msg}
	case 1:
		return found[0], nil
	}
	// Only possible for a scoped kind asked without its parent.
	return nil, fmt.Errorf("sallyport: %d %s objects are named %q; give the parent (%s) to choose one",
		len(found), col.kind.Title(), name, col.kind.ParentField())
}

// Create creates an object and returns it as stored, with its id and
// generation. Create is never retried, since a lost answer could hide a
// successful create.
func (col *Collection[S]) Create(ctx context.Context, name string, spec S) (*model.Object[S], error) {
	return col.object(ctx, request{method: http.MethodPost, path: col.path(), body: writeBody[S]{Name: name, Spec: spec}})
}

// Replace replaces an object's name and spec and returns it as stored.
// Secrets in spec with an empty Value keep the stored value.
func (col *Collection[S]) Replace(ctx context.Context, id, name string, spec S, opts WriteOptions) (*model.Object[S], error) {
	p, err := col.objectPath(id)
	if err != nil {
		return nil, err
	}
	return col.object(ctx, request{method: http.MethodPut, path: p, body: writeBody[S]{Name: name, Spec: spec}, ifMatch: opts.IfMatch})
}

// Delete deletes an object. Deleting one that others reference is a
// conflict whose APIError lists the Dependents. A retried delete whose first
// attempt succeeded unseen reports not found, which callers removing the
// object can treat as done.
func (col *Collection[S]) Delete(ctx context.Context, id string, opts WriteOptions) error {
	p, err := col.objectPath(id)
	if err != nil {
		return err
	}
	_, err = col.c.do(ctx, request{method: http.MethodDelete, path: p, ifMatch: opts.IfMatch}, nil)
	return err
}

// object sends r and decodes the object it answers with.
func (col *Collection[S]) object(ctx context.Context, r request) (*model.Object[S], error) {
	var o model.Object[S]
	resp, err := col.c.do(ctx, r, &o)
	if err != nil {
		return nil, err
	}
	if o.ID == "" {
		return nil, errors.New("sallyport: " + r.method + " " + r.path + ": the response holds no object id")
	}
	// The ETag is authoritative for the generation if the body lacks it.
	if o.Generation == 0 {
		if g, ok := parseETag(resp.header.Get("ETag")); ok {
			o.Generation = g
		}
	}
	return &o, nil
}

// parseETag reads a generation from an ETag such as "3" or W/"3".
func parseETag(etag string) (int64, bool) {
	etag = strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	s, err := strconv.Unquote(etag)
	if err != nil {
		return 0, false
	}
	g, err := strconv.ParseInt(s, 10, 64)
	return g, err == nil && g > 0
}
