package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// APIError is an error the appliance answered with.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the appliance's "error" text (or the HTTP status text when
	// the body was not the API's JSON).
	Message string
	// RequestID identifies the request in the appliance's logs.
	RequestID string
	// Problems lists the invalid fields of a 400, each with its path
	// ("spec.upstream_url").
	Problems []model.Problem
	// Dependents lists the objects that block a delete (409).
	Dependents []model.ObjectRef
}

// Error reads like "sallyport: 400 validation failed: spec.upstream_url:
// must use https; spec.hostname: required (request id r-1)".
func (e *APIError) Error() string {
	var b strings.Builder
	msg := e.message()
	fmt.Fprintf(&b, "sallyport: %d %s", e.StatusCode, msg)
	// The appliance's message may already spell out the problems or
	// dependents; only add what it leaves out, so nothing reads twice.
	var missing []string
	for _, p := range e.Problems {
		if s := p.String(); !strings.Contains(msg, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(missing, "; "))
	}
	missing = missing[:0]
	for _, d := range e.Dependents {
		if s := d.String(); !strings.Contains(msg, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		b.WriteString(": referenced by ")
		b.WriteString(strings.Join(missing, ", "))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

func (e *APIError) message() string {
	if e.Message != "" {
		return e.Message
	}
	if t := http.StatusText(e.StatusCode); t != "" {
		return strings.ToLower(t)
	}
	return "unexpected response"
}

// errorBody is the JSON body of every API error.
type errorBody struct {
	Error      string            `json:"error"`
	RequestID  string            `json:"request_id"`
	Problems   []model.Problem   `json:"problems"`
	Dependents []model.ObjectRef `json:"dependents"`
}

// newAPIError builds an APIError from a non-2xx response whose body has
// been read.
func newAPIError(resp *http.Response, body []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.Error != "" || len(eb.Problems) > 0 || len(eb.Dependents) > 0) {
		e.Message = eb.Error
		e.Problems = eb.Problems
		e.Dependents = eb.Dependents
		if eb.RequestID != "" {
			e.RequestID = eb.RequestID
		}
		return e
	}
	// Not the API's JSON (a proxy in between, say): keep a short excerpt.
	e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
	if excerpt := textExcerpt(body, 200); excerpt != "" {
		if e.Message == "" {
			e.Message = excerpt
		} else {
			e.Message += ": " + excerpt
		}
	}
	return e
}

// textExcerpt returns the first limit bytes of body as one trimmed line,
// or "" when it is not text.
func textExcerpt(body []byte, limit int) string {
	if !utf8.Valid(body) {
		return ""
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > limit {
		s = s[:limit]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

// HasStatus reports whether err is, or wraps, an *APIError with the given
// HTTP status.
func HasStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == status
}

// IsNotFound reports whether err is a 404: the object (or path) does not
// exist.
func IsNotFound(err error) bool { return HasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409: a name clash, a missing
// reference, or dependents blocking a delete.
func IsConflict(err error) bool { return HasStatus(err, http.StatusConflict) }

// IsPreconditionFailed reports whether err is a 412: If-Match named a
// generation the object no longer has.
func IsPreconditionFailed(err error) bool { return HasStatus(err, http.StatusPreconditionFailed) }

// IsValidation reports whether err is a 400: invalid input, with the field
// paths in APIError.Problems.
func IsValidation(err error) bool { return HasStatus(err, http.StatusBadRequest) }

// IsUnauthorized reports whether err is a 401: no or a wrong admin token.
func IsUnauthorized(err error) bool { return HasStatus(err, http.StatusUnauthorized) }
