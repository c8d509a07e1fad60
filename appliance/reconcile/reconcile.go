// Package reconcile drives the data path to the desired state: on every
// store revision it builds a complete gateway.Runtime from a consistent
// snapshot, hands it to the gateway, and writes each object's status. A
// write through the admin API waits (WaitFor) until its revision is live.
package reconcile

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/certificates"
	"github.com/sallyport/terraform-provider-sallyport/appliance/gateway"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// Config is what a Reconciler drives and reads.
type Config struct {
	Store        *store.Store
	Gateway      *gateway.Server
	Certificates *certificates.Manager
	// MaskingHashKey keys masking's "hash" replacement; a random key per
	// process when nil (hashes then change across restarts).
	MaskingHashKey []byte
	// Challenges answers ACME HTTP-01 challenges (none when nil).
	Challenges *certificates.ChallengeServer
	Logger     *slog.Logger
	// Resync re-runs the reconcile this often even without a change, to
	// pick up certificates obtained in the background (default 2s while
	// something is pending, 30s otherwise).
	Resync time.Duration
}

// Reconciler keeps the data path at the store's latest revision.
type Reconciler struct {
	cfg   Config
	log   *slog.Logger
	build *builder

	mu        sync.Mutex
	applied   uint64 // the revision the data path runs
	lastErr   string
	lastRun   time.Time
	pending   bool // some object waits for something outside (a certificate)
	changed   chan struct{}
	runtime   *gateway.Runtime
	statusMem map[string]model.Status // last written, to skip no-op writes
}

// New returns a Reconciler; Run starts it.
func New(cfg Config) *Reconciler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resync == 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.MaskingHashKey == nil {
		cfg.MaskingHashKey = make([]byte, 32)
		_, _ = rand.Read(cfg.MaskingHashKey) // crypto/rand.Read never fails
	}
	return &Reconciler{
		cfg:       cfg,
		log:       cfg.Logger,
		build:     newBuilder(cfg.Store, cfg.Certificates, cfg.Logger, cfg.MaskingHashKey),
		changed:   make(chan struct{}),
		statusMem: map[string]model.Status{},
	}
}

// Run reconciles until ctx ends: once at start, then after every store
// revision and periodically.
func (r *Reconciler) Run(ctx context.Context) error {
	revs, cancel := r.cfg.Store.Backend().Subscribe()
	defer cancel()
	for {
		r.reconcileOnce(ctx)
		if err := r.waitForChange(ctx, revs); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitForChange returns when there is something to reconcile: a revision
// newer than the one the data path runs, or the resync period elapsed.
// Writes that land while a rebuild runs are coalesced: the change feed
// keeps only the newest revision, and a notification for a revision the
// last rebuild's snapshot already covered (it was read after the commit)
// is skipped rather than rebuilt again. It returns an error only when the
// feed closes, and nil when ctx ends.
func (r *Reconciler) waitForChange(ctx context.Context, revs <-chan uint64) error {
	wait := r.cfg.Resync
	r.mu.Lock()
	if r.pending && wait > 2*time.Second {
		wait = 2 * time.Second
	}
	r.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rev, ok := <-revs:
			if !ok {
				return errors.New("the store closed its change feed")
			}
			r.mu.Lock()
			covered := rev <= r.applied && r.lastErr == ""
			r.mu.Unlock()
			if covered {
				continue
			}
			return nil
		case <-t.C:
			return nil
		}
	}
}

// ReconcileNow runs one reconcile synchronously (tests, startup).
func (r *Reconciler) ReconcileNow(ctx context.Context) { r.reconcileOnce(ctx) }

func (r *Reconciler) reconcileOnce(ctx context.Context) {
	snap, err := r.cfg.Store.Snapshot(ctx)
	if err != nil {
		r.fail(fmt.Errorf("reading the store: %w", err))
		return
	}
	r.mu.Lock()
	prev := r.runtime
	r.mu.Unlock()

	rt, statuses, pending := r.build.runtime(ctx, snap, prev)
	applyErr := r.apply(ctx, rt, prev, statuses)
	if applyErr == nil && r.cfg.Challenges != nil {
		for addr, err := range r.cfg.Challenges.Apply(r.build.challenges) {
			for _, id := range r.build.challengeGateways[addr] {
				markFailed(statuses, id, err)
			}
		}
	}
	r.writeStatuses(ctx, snap, statuses)

	r.mu.Lock()
	if applyErr == nil {
		r.runtime = rt
		r.lastErr = ""
	} else {
		r.lastErr = applyErr.Error()
	}
	r.applied = snap.Revision
	r.lastRun = time.Now()
	r.pending = pending
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if applyErr == nil {
		r.build.prune()
	}
}

// apply hands rt to the gateway. When the gateway refuses some objects,
// their previous versions (if any) take their place and the rest is applied
// again, so one bad object never holds back the others; the refused
// objects' statuses say why. Only when that fails too does the previous
// runtime keep serving unchanged.
func (r *Reconciler) apply(ctx context.Context, rt, prev *gateway.Runtime, statuses map[string]model.Status) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = r.cfg.Gateway.Apply(ctx, rt)
		var ae *gateway.ApplyError
		if err == nil || !errors.As(err, &ae) {
			break
		}
		for id, gerr := range ae.Gateways {
			markFailed(statuses, id, gerr)
			replaceGateway(rt, prev, id)
		}
		for id, cerr := range ae.Connections {
			markFailed(statuses, id, cerr)
			replaceConnection(rt, prev, id)
		}
	}
	if err != nil {
		r.log.Error("applying the data path failed; the previous configuration keeps serving", "revision", rt.Revision, "error", err)
		for id, st := range statuses {
			if st.Ready && st.ObservedGeneration > liveGeneration(prev, id) {
				st.Ready = false
				st.Message = "not applied: " + err.Error()
				statuses[id] = st
			}
		}
	}
	return err
}

func markFailed(statuses map[string]model.Status, id string, err error) {
	st := statuses[id]
	st.Ready, st.Message = false, err.Error()
	statuses[id] = st
}

// replaceGateway puts the previous version of a gateway in rt, or removes
// it when there is none.
func replaceGateway(rt, prev *gateway.Runtime, id string) {
	old := prevGateway(prev, id)
	out := rt.Gateways[:0]
	for _, g := range rt.Gateways {
		switch {
		case g.ID != id:
			out = append(out, g)
		case old != nil:
			out = append(out, old)
		}
	}
	rt.Gateways = out
}

// replaceConnection does the same for a connection.
func replaceConnection(rt, prev *gateway.Runtime, id string) {
	old := prevConnection(prev, id)
	for _, g := range rt.Gateways {
		out := g.Connections[:0]
		for _, c := range g.Connections {
			switch {
			case c.ID != id:
				out = append(out, c)
			case old != nil:
				out = append(out, old)
			}
		}
		g.Connections = out
	}
}

// liveGeneration is the generation of an object in the running runtime (0
// when it is not there).
func liveGeneration(rt *gateway.Runtime, id string) int64 {
	if rt == nil {
		return 0
	}
	for _, g := range rt.Gateways {
		if g.ID == id {
			return g.Generation
		}
		for _, c := range g.Connections {
			if c.ID == id {
				return c.Generation
			}
		}
	}
	return 0
}

// writeStatuses stores the statuses that changed, in one transaction.
func (r *Reconciler) writeStatuses(ctx context.Context, snap *store.Snapshot, statuses map[string]model.Status) {
	var updates []store.StatusUpdate
	r.mu.Lock()
	for _, kind := range model.Kinds {
		for _, o := range snap.Objects[kind] {
			st, ok := statuses[o.ID]
			if !ok {
				continue
			}
			if statusEqual(r.statusMem[o.ID], st) && statusEqual(o.Status, st) {
				continue
			}
			updates = append(updates, store.StatusUpdate{Kind: kind, ID: o.ID, Status: st})
		}
	}
	r.mu.Unlock()
	if len(updates) == 0 {
		return
	}
	if err := r.cfg.Store.SetStatuses(ctx, updates); err != nil {
		r.log.Error("writing statuses", "objects", len(updates), "error", err)
		return
	}
	r.mu.Lock()
	for _, u := range updates {
		r.statusMem[u.ID] = u.Status
	}
	r.mu.Unlock()
}

func statusEqual(a, b model.Status) bool {
	if a.Ready != b.Ready || a.ObservedGeneration != b.ObservedGeneration || a.Message != b.Message {
		return false
	}
	if (a.Certificate == nil) != (b.Certificate == nil) {
		return false
	}
	return a.Certificate == nil || *a.Certificate == *b.Certificate
}

func (r *Reconciler) fail(err error) {
	r.log.Error("reconcile failed", "error", err)
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
}

// WaitFor returns once the data path runs revision rev (or a later one),
// or when ctx ends.
func (r *Reconciler) WaitFor(ctx context.Context, rev uint64) error {
	for {
		r.mu.Lock()
		applied, ch := r.applied, r.changed
		r.mu.Unlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for revision %d to go live (at %d): %w", rev, applied, ctx.Err())
		case <-ch:
		}
	}
}

// State reports the reconciler for /v1/status.
type State struct {
	AppliedRevision uint64    `json:"applied_revision"`
	LastRun         time.Time `json:"last_run"`
	LastError       string    `json:"last_error,omitempty"`
	Pending         bool      `json:"pending"`
}

// State returns the reconciler's current state.
func (r *Reconciler) State() any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return State{AppliedRevision: r.applied, LastRun: r.lastRun, LastError: r.lastErr, Pending: r.pending}
}
