package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

func newAnchorStore(t *testing.T) *store.Store {
	t.Helper()
	be, err := boltstore.Open(filepath.Join(t.TempDir(), "sallyport.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	sealer := newTestSealer(t)
	return store.New(be, sealer)
}

func testAnchor(id string) store.Anchor {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return store.Anchor{SessionID: id, File: "2026-01-02/" + id + ".rec", Records: 5, Bytes: 2048, FinalHash: "ab12",
		KeyFingerprint: "sha256:00", StartedAt: t0, EndedAt: t0.Add(time.Second), ConnectionID: "conn_a"}
}

func TestAnchors(t *testing.T) {
	ctx := context.Background()
	st := newAnchorStore(t)
	if _, err := st.GetAnchor(ctx, "ses_a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing anchor: %v", err)
	}
	if list, err := st.ListAnchors(ctx, "", 0); err != nil || len(list) != 0 {
		t.Fatalf("empty list: %v, %v", list, err)
	}
	for _, id := range []string{"ses_b", "ses_a", "ses_c"} {
		if err := st.PutAnchor(ctx, id, testAnchor(id)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.GetAnchor(ctx, "ses_a")
	if err != nil || *got != testAnchor("ses_a") {
		t.Fatalf("GetAnchor: %+v, %v", got, err)
	}
	rev, _ := st.Backend().Revision(ctx)
	// Write-once: the same anchor again changes nothing, another fails.
	if err := st.PutAnchor(ctx, "ses_a", testAnchor("ses_a")); err != nil {
		t.Fatal(err)
	}
	if rev2, _ := st.Backend().Revision(ctx); rev2 != rev {
		t.Fatalf("an identical anchor made a revision (%d → %d)", rev, rev2)
	}
	forged := testAnchor("ses_a")
	forged.FinalHash = "cd34"
	if err := st.PutAnchor(ctx, "ses_a", forged); !errors.Is(err, store.ErrAnchorExists) {
		t.Fatalf("overwriting an anchor: %v", err)
	}
	if err := st.PutAnchor(ctx, "ses_x", testAnchor("ses_y")); err == nil {
		t.Fatal("an anchor filed under another session's id")
	}

	list, err := st.ListAnchors(ctx, "", 0)
	if err != nil || len(list) != 3 || list[0].SessionID != "ses_a" || list[2].SessionID != "ses_c" {
		t.Fatalf("ListAnchors: %+v, %v", list, err)
	}
	if list, _ := st.ListAnchors(ctx, "ses_b", 1); len(list) != 1 || list[0].SessionID != "ses_b" {
		t.Fatalf("from ses_b, limit 1: %+v", list)
	}

	// Pruning deletes anchors and audits in one transaction.
	spec, _ := json.Marshal(map[string]any{"sessions": []string{"ses_a", "ses_gone"}})
	if err := st.PruneAnchors(ctx, []string{"ses_a", "ses_gone"}, model.AuditEntry{Actor: "retention", Action: "prune_recordings", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetAnchor(ctx, "ses_a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned anchor: %v", err)
	}
	audit, err := st.Audit(ctx, model.AuditQuery{})
	if err != nil || len(audit) != 1 || audit[0].Action != "prune_recordings" || audit[0].Time.IsZero() || audit[0].Seq == 0 {
		t.Fatalf("audit: %+v, %v", audit, err)
	}
	if err := st.PruneAnchors(ctx, []string{"ses_b"}, model.AuditEntry{}); err == nil {
		t.Fatal("pruning without an audit action")
	}
	if _, err := st.GetAnchor(ctx, "ses_b"); err != nil {
		t.Fatalf("a failed pruning deleted an anchor: %v", err)
	}
}
