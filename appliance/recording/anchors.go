package recording

import (
	"context"

	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// The store is the anchor store the daemon passes.
var _ AnchorStore = (*store.Store)(nil)

// anchorBatcher writes the anchors of a commit's sessions in one store
// transaction (see committer).
type anchorBatcher struct {
	store AnchorStore
}

type anchorReq struct {
	a    Anchor
	err  error
	done chan struct{}
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
