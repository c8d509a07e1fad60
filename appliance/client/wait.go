package client

import (
	"context"
	"fmt"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Poll intervals of WaitReady: the first wait and the cap it doubles to.
const (
	waitMinInterval = 100 * time.Millisecond
	waitMaxInterval = 2 * time.Second
)

// ReconcileError is a reconcile that failed: the appliance acted on the
// awaited generation (or a later one) and reports it not ready, with a
// message.
type ReconcileError struct {
	// Generation is the generation waited for.
	Generation int64
	// Status is the object's status as last read.
	Status model.Status
}

// Error implements error.
func (e *ReconcileError) Error() string {
	return fmt.Sprintf("sallyport: generation %d failed to reconcile: %s", e.Status.ObservedGeneration, e.Status.Message)
}

// StatusFunc reads the current status of one object.
type StatusFunc func(ctx context.Context) (model.Status, error)

// WaitReady polls get until the object reports ready at generation (or a
// later one). It returns a *ReconcileError when the appliance reports a
// failure for that generation, the first error of get, or, when ctx ends
// first, ctx's error together with the last status message. Polls back off
// from 100ms to 2s.
func (c *Client) WaitReady(ctx context.Context, get StatusFunc, generation int64) error {
	return waitReady(ctx, generation, get)
}

// WaitReady polls the object with the given id until it reports ready at
// generation (or a later one) and returns it as last read; see
// Client.WaitReady for the errors.
func (col *Collection[S]) WaitReady(ctx context.Context, id string, generation int64) (*model.Object[S], error) {
	var last *model.Object[S]
	err := waitReady(ctx, generation, func(ctx context.Context) (model.Status, error) {
		o, err := col.Get(ctx, id)
		if err != nil {
			return model.Status{}, err
		}
		last = o
		return o.Status, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %s %s to be ready: %w", col.kind.Title(), id, err)
	}
	return last, nil
}

// waitReady is the polling loop shared by both WaitReady methods.
func waitReady(ctx context.Context, generation int64, get StatusFunc) error {
	interval := waitMinInterval
	var last *model.Status
	for {
		st, err := get(ctx)
		if err != nil {
			if ctx.Err() != nil && last != nil {
				// A poll cut short by the deadline says less than the last
				// status did about why the object is not ready.
				return notReady(ctx, generation, *last)
			}
			return err
		}
		last = &st
		if st.ObservedGeneration >= generation {
			if st.Ready {
				return nil
			}
			if st.Message != "" {
				return &ReconcileError{Generation: generation, Status: st}
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return notReady(ctx, generation, st)
		case <-t.C:
		}
		interval = min(interval*2, waitMaxInterval)
	}
}

// notReady is the error of a wait that ctx ended, with the last status.
func notReady(ctx context.Context, generation int64, st model.Status) error {
	if st.Message != "" {
		return fmt.Errorf("sallyport: generation %d not ready (observed generation %d: %s): %w", generation, st.ObservedGeneration, st.Message, ctx.Err())
	}
	return fmt.Errorf("sallyport: generation %d not ready (observed generation %d): %w", generation, st.ObservedGeneration, ctx.Err())
}
