package model

import (
	"fmt"
	"strings"
)

// Problem is one invalid field: its path in the object ("spec.upstream_url",
// "spec.hostnames[2]") and what is wrong with it, in words a person can act
// on.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// Problems is the result of a validation; empty means valid. It is an error
// so a validation result can be returned as one.
type Problems []Problem

// Add records a problem with the field at path.
func (ps *Problems) Add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Field: path, Message: fmt.Sprintf(format, args...)})
}

// Check records err, if any, as a problem with the field at path.
func (ps *Problems) Check(path string, err error) {
	if err != nil {
		*ps = append(*ps, Problem{Field: path, Message: err.Error()})
	}
}

// Err returns ps as an error, or nil when there are no problems.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Error lists every problem, one "field: message" after the other.
func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}
