package recording

import (
	"context"
	"sync"

	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// The store is the anchor store the daemon passes.
var _ AnchorStore = (*store.Store)(nil)

// anchorBatcher commits the anchors of sessions that end together in one
// store transaction: whoever finds no commit running commits everything
// queued, and sessions ending meanwhile queue for the next round, so
// concurrent sessions share a commit and its fsync instead of lining up
// behind the store's single writer.
type anchorBatcher struct {
	store AnchorStore

	mu      sync.Mutex
	queue   []*anchorReq
	running bool
}

type anchorReq struct {
	a    Anchor
	err  error
	done chan struct{}
}

// put anchors a and returns once it is committed (or failed).
func (b *anchorBatcher) put(ctx context.Context, a Anchor) error {
	req := &anchorReq{a: a, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	if !b.running {
		b.running = true
		batch := b.takeLocked()
		b.mu.Unlock()
		b.commit(batch) // includes req
		b.next()
	} else {
		b.mu.Unlock()
	}
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *anchorBatcher) takeLocked() []*anchorReq {
	batch := b.queue
	b.queue = nil
	return batch
}

// next hands what queued during a commit to a new round, in the
// background so that the caller that ran the last one is not held up.
func (b *anchorBatcher) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running = false
		return
	}
	batch := b.takeLocked()
	go func() {
		b.commit(batch)
		b.next()
	}()
}

func (b *anchorBatcher) commit(batch []*anchorReq) {
	ctx, cancel := context.WithTimeout(context.Background(), anchorTimeout)
	defer cancel()
	anchors := make([]Anchor, len(batch))
	for i, r := range batch {
		anchors[i] = r.a
	}
	err := b.store.PutAnchors(ctx, anchors)
	for _, r := range batch {
		r.err = err
		if err != nil && len(batch) > 1 {
			// All or nothing failed: one bad anchor must not sink the
			// others.
			r.err = b.store.PutAnchor(ctx, r.a.SessionID, r.a)
		}
		close(r.done)
	}
}
