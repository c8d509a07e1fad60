package recording

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotHTTP says a session has no HTTP exchanges to export.
var ErrNotHTTP = errors.New("the session has no HTTP exchanges (HAR export needs an http or grpc session)")

// HAR is an HTTP Archive 1.2 document (the subset the recorder fills).
type HAR struct {
	Log HARLog `json:"log"`
}

// HARLog is the archive's log.
type HARLog struct {
	Version string      `json:"version"`
	Creator HARCreator  `json:"creator"`
	Entries []*HAREntry `json:"entries"`
	Comment string      `json:"comment,omitempty"`
}

// HARCreator names the exporting tool.
type HARCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// HAREntry is one exchange.
type HAREntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         HARRequest  `json:"request"`
	Response        HARResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         HARTimings  `json:"timings"`
	Comment         string      `json:"comment,omitempty"`
	// Sallyport carries what HAR has no field for.
	Sallyport HARExtra `json:"_sallyport"`
}

// HARExtra is the recorder's own facts about an entry.
type HARExtra struct {
	SessionID       string     `json:"session_id"`
	RequestID       string     `json:"request_id,omitempty"`
	RequestRedacted []string   `json:"request_redacted_headers,omitempty"`
	RespRedacted    []string   `json:"response_redacted_headers,omitempty"`
	RequestTrunc    bool       `json:"request_body_truncated,omitempty"`
	ResponseTrunc   bool       `json:"response_body_truncated,omitempty"`
	Decisions       []Decision `json:"decisions,omitempty"`
	Error           string     `json:"error,omitempty"`
}

// HARRequest is a request.
type HARRequest struct {
	Method      string         `json:"method"`
	URL         string         `json:"url"`
	HTTPVersion string         `json:"httpVersion"`
	Cookies     []HARNameValue `json:"cookies"`
	Headers     []HARNameValue `json:"headers"`
	QueryString []HARNameValue `json:"queryString"`
	PostData    *HARPostData   `json:"postData,omitempty"`
	HeadersSize int            `json:"headersSize"`
	BodySize    int64          `json:"bodySize"`
}

// HARResponse is a response.
type HARResponse struct {
	Status      int            `json:"status"`
	StatusText  string         `json:"statusText"`
	HTTPVersion string         `json:"httpVersion"`
	Cookies     []HARNameValue `json:"cookies"`
	Headers     []HARNameValue `json:"headers"`
	Content     HARContent     `json:"content"`
	RedirectURL string         `json:"redirectURL"`
	HeadersSize int            `json:"headersSize"`
	BodySize    int64          `json:"bodySize"`
}

// HARNameValue is a header, cookie or query parameter.
type HARNameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HARPostData is a request body.
type HARPostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
	Comment  string `json:"comment,omitempty"`
}

// HARContent is a response body.
type HARContent struct {
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// HARTimings are an entry's phases in milliseconds (-1: not applicable).
type HARTimings struct {
	Blocked float64 `json:"blocked"`
	DNS     float64 `json:"dns"`
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
	SSL     float64 `json:"ssl"`
}

// ExportHAR builds a HAR 1.2 document of a recording's HTTP exchanges.
// Headers that were not recorded are absent; bodies are what was recorded
// (capped and masked), with truncation noted in comments.
func ExportHAR(path, creatorVersion string) (*HAR, error) {
	r, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := r.Header()
	har := &HAR{Log: HARLog{Version: "1.2", Creator: HARCreator{Name: "sallyportd", Version: creatorVersion}, Entries: []*HAREntry{},
		Comment: "Sallyport session " + h.SessionID}}
	// Records of version 2 name their exchange (request id): HTTP/2
	// streams of one connection interleave, and an exchange's decisions
	// come before its request. Records without one (version 1) pair in
	// order.
	var open []*HAREntry // requests waiting for their response
	var last *HAREntry
	var decisions []Decision
	byRID := map[string]*HAREntry{}
	pending := map[string][]Decision{} // decisions of exchanges whose request is not recorded yet
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rid := rec.RequestID
		switch rec.Type {
		case TypeHTTPRequest:
			var p HTTPRequest
			if err := json.Unmarshal(rec.Payload, &p); err != nil {
				return nil, fmt.Errorf("record %d: %w", rec.Index, err)
			}
			e := harRequest(h.SessionID, p, rec.Time)
			har.Log.Entries = append(har.Log.Entries, e)
			open = append(open, e)
			if rid != "" {
				e.Sallyport.RequestID = rid
				e.Sallyport.Decisions = append(e.Sallyport.Decisions, pending[rid]...)
				delete(pending, rid)
				byRID[rid] = e
				continue
			}
			e.Sallyport.Decisions, decisions = decisions, nil
			last = e
		case TypeHTTPResponse:
			var p HTTPResponse
			if err := json.Unmarshal(rec.Payload, &p); err != nil {
				return nil, fmt.Errorf("record %d: %w", rec.Index, err)
			}
			e := open0(open)
			if rid != "" {
				e = byRID[rid]
			}
			if e == nil {
				continue // a response without its request: nothing to pair it with
			}
			harResponse(e, p)
			open = slices.DeleteFunc(open, func(o *HAREntry) bool { return o == e })
		case TypeDecision:
			var d Decision
			if err := json.Unmarshal(rec.Payload, &d); err != nil {
				return nil, fmt.Errorf("record %d: %w", rec.Index, err)
			}
			switch {
			case rid != "" && byRID[rid] != nil:
				byRID[rid].Sallyport.Decisions = append(byRID[rid].Sallyport.Decisions, d)
			case rid != "":
				pending[rid] = append(pending[rid], d)
			case last != nil:
				last.Sallyport.Decisions = append(last.Sallyport.Decisions, d)
			default:
				decisions = append(decisions, d) // decided before the request was recorded
			}
		}
	}
	if len(har.Log.Entries) == 0 {
		return nil, fmt.Errorf("session %s: %w", h.SessionID, ErrNotHTTP)
	}
	for _, e := range open {
		e.Comment = "no response was recorded"
	}
	return har, nil
}

func open0(open []*HAREntry) *HAREntry {
	if len(open) == 0 {
		return nil
	}
	return open[0]
}

func harRequest(sessionID string, p HTTPRequest, recTime time.Time) *HAREntry {
	started := p.Time
	if started.IsZero() {
		started = recTime
	}
	scheme, host := p.Scheme, p.Host
	if scheme == "" {
		scheme = "https"
	}
	if host == "" {
		host = "unknown.invalid"
	}
	u := scheme + "://" + host + p.Path
	if p.Query != "" {
		u += "?" + p.Query
	}
	e := &HAREntry{
		StartedDateTime: started.UTC().Format(time.RFC3339Nano),
		Request: HARRequest{
			Method: p.Method, URL: u, HTTPVersion: orDefault(p.Proto, "HTTP/1.1"),
			Cookies: []HARNameValue{}, Headers: harHeaders(p.Header), QueryString: harQuery(p.Query),
			HeadersSize: -1, BodySize: p.BodySize,
		},
		Response: HARResponse{Cookies: []HARNameValue{}, Headers: []HARNameValue{}, HeadersSize: -1, BodySize: -1,
			Content: HARContent{Size: 0, MimeType: "x-unknown"}},
		Timings:   HARTimings{Blocked: -1, DNS: -1, Connect: -1, SSL: -1},
		Sallyport: HARExtra{SessionID: sessionID, RequestRedacted: p.RedactedHeaders, RequestTrunc: p.BodyTruncated},
	}
	if len(p.Body) > 0 || p.BodySize > 0 {
		pd := &HARPostData{MimeType: orDefault(p.Header.Get("Content-Type"), "application/octet-stream")}
		switch {
		case utf8.Valid(p.Body):
			pd.Text = string(p.Body)
		default:
			pd.Text = base64.StdEncoding.EncodeToString(p.Body)
			pd.Comment = "binary body, base64-encoded"
		}
		if p.BodyTruncated {
			pd.Comment = strings.TrimPrefix(pd.Comment+"; truncated to the first "+fmt.Sprint(len(p.Body))+" bytes", "; ")
		}
		e.Request.PostData = pd
	}
	return e
}

func harResponse(e *HAREntry, p HTTPResponse) {
	e.Response.Status = p.Status
	e.Response.StatusText = http.StatusText(p.Status)
	e.Response.HTTPVersion = orDefault(p.Proto, e.Request.HTTPVersion)
	e.Response.Headers = harHeaders(p.Header)
	e.Response.BodySize = p.BodySize
	e.Response.RedirectURL = p.Header.Get("Location")
	c := HARContent{Size: p.BodySize, MimeType: orDefault(p.Header.Get("Content-Type"), "x-unknown")}
	if len(p.Body) > 0 {
		if utf8.Valid(p.Body) {
			c.Text = string(p.Body)
		} else {
			c.Text, c.Encoding = base64.StdEncoding.EncodeToString(p.Body), "base64"
		}
	}
	if p.BodyTruncated {
		c.Comment = fmt.Sprintf("truncated to the first %d bytes", len(p.Body))
	}
	e.Response.Content = c
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	e.Time = ms(p.Duration)
	e.Timings.Send = 0
	e.Timings.Wait = ms(p.Latency)
	e.Timings.Receive = max(0, ms(p.Duration-p.Latency))
	e.Sallyport.RespRedacted = p.RedactedHeaders
	e.Sallyport.ResponseTrunc = p.BodyTruncated
	e.Sallyport.Error = p.Error
}

func harHeaders(h http.Header) []HARNameValue {
	out := []HARNameValue{}
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, v := range h[n] {
			out = append(out, HARNameValue{Name: n, Value: v})
		}
	}
	return out
}

func harQuery(q string) []HARNameValue {
	out := []HARNameValue{}
	if q == "" {
		return out
	}
	for _, part := range strings.Split(q, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		out = append(out, HARNameValue{Name: k, Value: v})
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
