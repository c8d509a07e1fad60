package recording

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

func pruneAudits(t *testing.T, st *store.Store) []model.AuditEntry {
	t.Helper()
	all, err := st.Audit(context.Background(), model.AuditQuery{})
	must(t, err)
	var out []model.AuditEntry
	for _, e := range all {
		if e.Action == AuditActionPrune {
			out = append(out, e)
		}
	}
	return out
}

func TestRetentionByAge(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxAge = 48 * time.Hour })
	openOld, err := f.rec.StartSession(context.Background(), testInfo(), testPolicy) // still recording: never pruned
	must(t, err)
	old := f.httpSession(testInfo())
	must(t, old.Close())
	f.clock.Advance(24 * time.Hour)
	mid := f.httpSession(testInfo())
	must(t, mid.Close())
	f.clock.Advance(30 * time.Hour)
	recent := f.httpSession(testInfo())
	must(t, recent.Close())
	oldPath := f.path(old.ID())

	res, err := f.rec.Prune(context.Background())
	must(t, err)
	if len(res.Sessions) != 1 || res.Sessions[0].ID != old.ID() || res.Sessions[0].Reason != "max_age" {
		t.Fatalf("pruned %+v", res.Sessions)
	}
	if _, err := os.Stat(oldPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old file is still there: %v", err)
	}
	if _, err := f.st.GetAnchor(context.Background(), old.ID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the pruned session's anchor: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(oldPath)); err != nil {
		t.Fatalf("the day still holds the open session, yet its directory is gone: %v", err)
	}
	audits := pruneAudits(t, f.st)
	if len(audits) != 1 || audits[0].Actor != AuditActor {
		t.Fatalf("audit entries %+v", audits)
	}
	var spec PruneResult
	must(t, json.Unmarshal(audits[0].Spec, &spec))
	if len(spec.Sessions) != 1 || spec.Sessions[0].ID != old.ID() || spec.MaxAge != "48h0m0s" || !audits[0].Time.Equal(f.clock.Now()) {
		t.Fatalf("audit spec %+v", spec)
	}
	for _, s := range []*Session{mid, recent} {
		if res, _ := Verify(f.path(s.ID()), f.rec.PublicKey(), f.anchor(s.ID())); !res.OK {
			t.Fatalf("a kept session: %s", res.Summary())
		}
	}

	// Nothing to prune: no audit entry.
	_, err = f.rec.Prune(context.Background())
	must(t, err)
	if n := len(pruneAudits(t, f.st)); n != 1 {
		t.Fatalf("%d audit entries after an empty run", n)
	}

	// Once the old open session ends, it goes too, and its day with it.
	must(t, openOld.Close())
	res, err = f.rec.Prune(context.Background())
	must(t, err)
	if len(res.Sessions) != 1 || res.Sessions[0].ID != openOld.ID() {
		t.Fatalf("pruned %+v", res.Sessions)
	}
	if _, err := os.Stat(filepath.Dir(oldPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the emptied day directory: %v", err)
	}
}

func TestRetentionByBytes(t *testing.T) {
	f := newFixture(t)
	var ids []string
	var sizes []int64
	for range 4 {
		s := f.httpSession(testInfo())
		must(t, s.Close())
		ids = append(ids, s.ID())
		sizes = append(sizes, f.anchor(s.ID()).Bytes)
		f.clock.Advance(time.Minute)
	}
	f.rec.opts.MaxBytes = sizes[2] + sizes[3] + sizes[3]/2 // room for two and a half
	res, err := f.rec.Prune(context.Background())
	must(t, err)
	if len(res.Sessions) != 2 || res.Sessions[0].ID != ids[0] || res.Sessions[1].ID != ids[1] || res.Sessions[0].Reason != "max_bytes" || res.Remaining != sizes[2]+sizes[3] {
		t.Fatalf("pruned %+v, remaining %d", res.Sessions, res.Remaining)
	}
	list, err := f.rec.ListSessions(context.Background(), ListOptions{})
	must(t, err)
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[2] {
		t.Fatalf("left %+v", list)
	}
}

// A recording deleted outside retention keeps its anchor: the deletion
// shows.
func TestDeletionOutsideRetentionLeavesTheAnchor(t *testing.T) {
	f := newFixture(t)
	s := f.httpSession(testInfo())
	must(t, s.Close())
	must(t, os.Remove(f.path(s.ID())))
	if _, err := f.st.GetAnchor(context.Background(), s.ID()); err != nil {
		t.Fatalf("anchor: %v", err)
	}
	if len(pruneAudits(t, f.st)) != 0 {
		t.Fatal("an audit entry without a pruning run")
	}
}

func TestBackgroundPruning(t *testing.T) {
	runs := make(chan *PruneResult, 16)
	f := newFixture(t, func(o *Options) {
		o.MaxBytes = 1 // everything over: each finished session triggers a run
		o.PruneInterval = time.Hour
		o.afterPrune = func(r *PruneResult, err error) {
			if err != nil {
				t.Errorf("background prune: %v", err)
			}
			runs <- r
		}
	})
	wait := func() *PruneResult {
		select {
		case r := <-runs:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no pruning run")
			return nil
		}
	}
	if r := wait(); len(r.Sessions) != 0 { // the run at start
		t.Fatalf("first run %+v", r)
	}
	s := f.httpSession(testInfo())
	must(t, s.Close())
	r := wait()
	if len(r.Sessions) != 1 || r.Sessions[0].ID != s.ID() {
		t.Fatalf("triggered run %+v", r)
	}
	if len(pruneAudits(t, f.st)) != 1 {
		t.Fatal("the background run was not audited")
	}
}
