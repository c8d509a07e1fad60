package recording

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// Session statuses in listings (SessionSummary.Status).
const (
	// SessionRecording: the session is still being recorded.
	SessionRecording = "recording"
	// SessionComplete: the session ended and is anchored.
	SessionComplete = "complete"
	// SessionIncomplete: no anchor (the appliance stopped mid-session, or
	// recording failed); Verify says more.
	SessionIncomplete = "incomplete"
	// SessionUnreadable: the file's beginning does not parse.
	SessionUnreadable = "unreadable"
)

// SessionSummary describes a recorded session for listings.
type SessionSummary struct {
	ID string `json:"id"`
	// File is the recording's path under the recordings dir.
	File           string     `json:"file"`
	StartedAt      time.Time  `json:"started_at"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	Protocol       string     `json:"protocol,omitempty"`
	Identity       Identity   `json:"identity"`
	ConnectionID   string     `json:"connection_id,omitempty"`
	ConnectionName string     `json:"connection_name,omitempty"`
	GatewayID      string     `json:"gateway_id,omitempty"`
	GatewayName    string     `json:"gateway_name,omitempty"`
	RemoteAddr     string     `json:"remote_addr,omitempty"`
	RequestID      string     `json:"request_id,omitempty"`
	// Bytes is the file's size; Records the anchored record count.
	Bytes   int64 `json:"bytes"`
	Records int64 `json:"records,omitempty"`
	// Status is SessionRecording, SessionComplete, SessionIncomplete or
	// SessionUnreadable ("" when the archive alone cannot tell).
	Status string `json:"status,omitempty"`
	// Anchor is the session's anchor, when it has one.
	Anchor *Anchor `json:"anchor,omitempty"`
}

// ListOptions filter a listing; zero fields do not filter.
type ListOptions struct {
	ConnectionID string
	// Since keeps sessions started at or after it.
	Since time.Time
	// Limit caps the number of sessions (newest first); <= 0 is no cap.
	Limit int
}

// Archive reads the recordings under a data dir. It needs no key and no
// store, so it also works on a copy of a data dir.
type Archive struct {
	root string
}

// OpenArchive returns the archive of a data dir's recordings.
func OpenArchive(dataDir string) *Archive {
	return &Archive{root: filepath.Join(dataDir, Dir)}
}

// Root is the recordings directory.
func (a *Archive) Root() string { return a.root }

// Path returns the file of a session, or an error wrapping
// ErrSessionNotFound.
func (a *Archive) Path(id string) (string, error) {
	t, ok := SessionTime(id)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a session id", ErrSessionNotFound, id)
	}
	p := filepath.Join(a.root, t.Format(time.DateOnly), id+".rec")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	// A file moved across a date boundary (a copied archive): look in
	// every day.
	matches, _ := filepath.Glob(filepath.Join(a.root, "*", id+".rec"))
	if len(matches) > 0 {
		return matches[0], nil
	}
	return "", fmt.Errorf("%w: %s", ErrSessionNotFound, id)
}

// entry is a recording file found on disk.
type entry struct {
	id      string
	rel     string
	path    string
	started time.Time
	size    int64
}

// scan lists the recording files, newest first; stop ends it early.
func (a *Archive) scan(since time.Time, fn func(entry) (stop bool, err error)) error {
	days, err := os.ReadDir(a.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing recordings: %w", err)
	}
	slices.Reverse(days) // ReadDir sorts by name: newest day first now
	for _, d := range days {
		day, err := time.Parse(time.DateOnly, d.Name())
		if !d.IsDir() || err != nil {
			continue
		}
		if !since.IsZero() && day.Add(24*time.Hour).Before(since) {
			break
		}
		files, err := os.ReadDir(filepath.Join(a.root, d.Name()))
		if err != nil {
			return fmt.Errorf("listing recordings: %w", err)
		}
		slices.Reverse(files)
		for _, f := range files {
			id, ok := strings.CutSuffix(f.Name(), ".rec")
			if !ok || f.IsDir() {
				continue
			}
			started, ok := SessionTime(id)
			if !ok {
				continue
			}
			if !since.IsZero() && started.Before(since) {
				continue
			}
			info, err := f.Info()
			if err != nil {
				continue // pruned meanwhile
			}
			e := entry{id: id, rel: d.Name() + "/" + f.Name(), path: filepath.Join(a.root, d.Name(), f.Name()), started: started, size: info.Size()}
			if stop, err := fn(e); err != nil || stop {
				return err
			}
		}
	}
	return nil
}

// List returns the sessions on disk, newest first, from each file's
// header and session_start record. Status is set only for unreadable
// files: the archive alone cannot tell complete from incomplete without
// verifying (see Verify), nor know what is still being recorded.
func (a *Archive) List(opts ListOptions) ([]SessionSummary, error) {
	out := []SessionSummary{}
	err := a.scan(opts.Since, func(e entry) (bool, error) {
		s := summarize(e)
		if opts.ConnectionID != "" && s.ConnectionID != opts.ConnectionID {
			return false, nil
		}
		out = append(out, s)
		return opts.Limit > 0 && len(out) >= opts.Limit, nil
	})
	return out, err
}

// Summary describes one session.
func (a *Archive) Summary(id string) (*SessionSummary, error) {
	p, err := a.Path(id)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrSessionNotFound, id)
	}
	rel, _ := filepath.Rel(a.root, p)
	started, _ := SessionTime(id)
	s := summarize(entry{id: id, rel: filepath.ToSlash(rel), path: p, started: started, size: fi.Size()})
	return &s, nil
}

func summarize(e entry) SessionSummary {
	s := SessionSummary{ID: e.id, File: e.rel, StartedAt: e.started, Bytes: e.size}
	r, err := OpenReader(e.path)
	if err != nil {
		s.Status = SessionUnreadable
		return s
	}
	defer r.Close()
	s.StartedAt = r.Header().StartedAt
	rec, err := r.Next()
	var st SessionStart
	if err != nil || rec.Type != TypeSessionStart || json.Unmarshal(rec.Payload, &st) != nil {
		s.Status = SessionUnreadable
		return s
	}
	s.Protocol, s.Identity, s.RemoteAddr, s.RequestID = st.Protocol, st.Identity, st.RemoteAddr, st.RequestID
	s.ConnectionID, s.ConnectionName, s.GatewayID, s.GatewayName = st.ConnectionID, st.ConnectionName, st.GatewayID, st.GatewayName
	return s
}

// withAnchor completes a summary with the anchor's facts.
func (s *SessionSummary) withAnchor(a *Anchor) {
	s.Anchor = a
	s.Status = SessionComplete
	s.Records = a.Records
	ended := a.EndedAt
	s.EndedAt = &ended
}

// ReadRecords returns up to limit records of a file from index from on
// (all of them when limit <= 0), and whether more follow.
func ReadRecords(path string, from int64, limit int) ([]Record, bool, error) {
	r, err := OpenReader(path)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	out := []Record{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, false, nil
		}
		if err != nil {
			return out, false, err
		}
		if rec.Index < from {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, true, nil
		}
		out = append(out, *rec)
	}
}

// SessionDetail is a session's summary and its verification.
type SessionDetail struct {
	SessionSummary
	// Verification is absent while the session is being recorded.
	Verification *VerifyResult `json:"verification,omitempty"`
}

// ListSessions lists recorded sessions, newest first, with their status
// from the anchors and the sessions in progress.
func (r *Recorder) ListSessions(ctx context.Context, opts ListOptions) ([]SessionSummary, error) {
	list, err := r.archive.List(opts)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if err := r.complete(ctx, &list[i]); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// Session describes one session and verifies it (unless it is still
// being recorded). An unknown id is an error wrapping ErrSessionNotFound.
func (r *Recorder) Session(ctx context.Context, id string) (*SessionDetail, error) {
	s, err := r.archive.Summary(id)
	if err != nil {
		return nil, err
	}
	if err := r.complete(ctx, s); err != nil {
		return nil, err
	}
	d := &SessionDetail{SessionSummary: *s}
	if s.Status == SessionRecording {
		return d, nil
	}
	p, err := r.archive.Path(id)
	if err != nil {
		return nil, err
	}
	if d.Verification, err = Verify(p, r.pub, s.Anchor); err != nil {
		return nil, err
	}
	return d, nil
}

// Records returns a session's records from index from on (see
// ReadRecords).
func (r *Recorder) Records(ctx context.Context, id string, from int64, limit int) ([]Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	p, err := r.archive.Path(id)
	if err != nil {
		return nil, false, err
	}
	return ReadRecords(p, from, limit)
}

func (r *Recorder) complete(ctx context.Context, s *SessionSummary) error {
	if s.Status == SessionUnreadable {
		return nil
	}
	if r.isActive(s.ID) {
		s.Status = SessionRecording
		return nil
	}
	a, err := r.opts.Anchors.GetAnchor(ctx, s.ID)
	switch {
	case err == nil:
		s.withAnchor(a)
	case errors.Is(err, store.ErrNotFound):
		s.Status = SessionIncomplete
	default:
		return fmt.Errorf("reading the anchor of %s: %w", s.ID, err)
	}
	return nil
}

// sortEntries orders entries oldest first.
func sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int { return cmp.Or(a.started.Compare(b.started), strings.Compare(a.id, b.id)) })
}
