package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// AuditActionPrune is the audit action of a pruning run.
const AuditActionPrune = "prune_recordings"

// AuditActor is the actor of the recorder's audit entries.
const AuditActor = "sallyportd:recording-retention"

// PrunedSession is one session a pruning run deleted.
type PrunedSession struct {
	ID        string    `json:"id"`
	File      string    `json:"file"`
	Bytes     int64     `json:"bytes"`
	StartedAt time.Time `json:"started_at"`
	// Reason is "max_age" or "max_bytes".
	Reason string `json:"reason"`
}

// PruneResult is what a pruning run did; it is also the audit entry's
// spec.
type PruneResult struct {
	Sessions []PrunedSession `json:"sessions"`
	// Bytes is what the deleted files took.
	Bytes int64 `json:"bytes"`
	// Remaining is what the recordings take afterwards.
	Remaining int64  `json:"remaining_bytes"`
	MaxAge    string `json:"max_age,omitempty"`
	MaxBytes  int64  `json:"max_bytes,omitempty"`
}

// Prune applies the retention now: sessions older than MaxAge go, then
// the oldest while the recordings take more than MaxBytes. Sessions being
// recorded are never pruned.
//
// A run that deletes anything is audited: one store transaction appends
// the audit entry (action "prune_recordings", listing every session) and
// deletes the pruned sessions' anchors; only then are the files removed.
// A pruned session therefore leaves no anchor, and the audit log is the
// record that it existed and why it is gone, while a recording deleted any
// other way still has its anchor and shows up as missing. If the
// transaction fails nothing is deleted; if the process dies after it, the
// files left behind are pruned again by the next run. A run that deletes
// nothing writes no audit entry.
func (r *Recorder) Prune(ctx context.Context) (*PruneResult, error) {
	r.pruneMu.Lock()
	defer r.pruneMu.Unlock()
	var all []entry
	var total int64
	if err := r.archive.scan(time.Time{}, func(e entry) (bool, error) {
		all = append(all, e)
		total += e.size
		return false, ctx.Err()
	}); err != nil {
		return nil, err
	}
	sortEntries(all)
	now := r.now()
	res := &PruneResult{Sessions: []PrunedSession{}, MaxBytes: r.opts.MaxBytes}
	if r.opts.MaxAge > 0 {
		res.MaxAge = r.opts.MaxAge.String()
	}
	var victims []entry
	remaining := total
	for _, e := range all {
		if r.isActive(e.id) {
			continue
		}
		reason := ""
		switch {
		case r.opts.MaxAge > 0 && now.Sub(e.started) > r.opts.MaxAge:
			reason = "max_age"
		case r.opts.MaxBytes > 0 && remaining > r.opts.MaxBytes:
			reason = "max_bytes"
		default:
			continue
		}
		victims = append(victims, e)
		remaining -= e.size
		res.Bytes += e.size
		res.Sessions = append(res.Sessions, PrunedSession{ID: e.id, File: e.rel, Bytes: e.size, StartedAt: e.started, Reason: reason})
	}
	res.Remaining = remaining
	r.total.Store(remaining)
	if len(victims) == 0 {
		return res, nil
	}
	spec, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding the pruning audit entry: %w", err)
	}
	ids := make([]string, len(victims))
	for i, e := range victims {
		ids[i] = e.id
	}
	entry := model.AuditEntry{
		Time: now, Actor: AuditActor, Action: AuditActionPrune,
		Name: fmt.Sprintf("%d recordings, %d bytes", len(victims), res.Bytes), Spec: spec,
	}
	if err := r.opts.Anchors.PruneAnchors(ctx, ids, entry); err != nil {
		return nil, fmt.Errorf("auditing the pruning of %d recordings (nothing deleted): %w", len(victims), err)
	}
	var errs []error
	days := map[string]bool{}
	for _, e := range victims {
		if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", e.path, err))
		}
		days[filepath.Dir(e.path)] = true
	}
	for d := range days {
		_ = os.Remove(d) // only succeeds when the day is now empty
	}
	r.metrics.pruned.Add(float64(len(victims)))
	r.log.Info("recordings pruned", "sessions", len(victims), "bytes", res.Bytes, "remaining_bytes", remaining)
	return res, errors.Join(errs...)
}

// pruneLoop runs retention at start, every PruneInterval, and when a
// finished session takes the total over MaxBytes.
func (r *Recorder) pruneLoop() {
	defer close(r.loopDone)
	t := time.NewTicker(r.opts.PruneInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	for {
		res, err := r.Prune(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("pruning recordings failed", "error", err)
		}
		if r.opts.afterPrune != nil {
			r.opts.afterPrune(res, err)
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}
