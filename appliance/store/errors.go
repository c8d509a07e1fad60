package store

import (
	"fmt"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// NotFoundError says an object does not exist. It matches ErrNotFound.
type NotFoundError struct {
	Kind model.Kind
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no %s with id %q", e.Kind.Title(), e.ID) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError says a write clashes with other objects: a name already
// taken in its scope, or objects that still reference the one being deleted.
type ConflictError struct {
	Message    string
	Dependents []model.ObjectRef
}

func (e *ConflictError) Error() string {
	if len(e.Dependents) == 0 {
		return e.Message
	}
	names := make([]string, len(e.Dependents))
	for i, d := range e.Dependents {
		names[i] = d.String()
	}
	return e.Message + ": " + strings.Join(names, ", ")
}

// PreconditionFailedError says If-Match named another generation.
type PreconditionFailedError struct {
	Expected, Current int64
}

func (e *PreconditionFailedError) Error() string {
	return fmt.Sprintf("the object is at generation %d, not %d: read it again and retry", e.Current, e.Expected)
}
