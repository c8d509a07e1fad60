package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// reopenable is a Store over a bolt file that can be closed and opened
// again with the same sealing key, as a restarted sallyportd would.
type reopenable struct {
	t      *testing.T
	path   string
	sealer *seal.Sealer
	be     *boltstore.Backend
	st     *store.Store
	w      store.Writer
}

func newReopenable(t *testing.T) *reopenable {
	t.Helper()
	sealer := newTestSealer(t)
	r := &reopenable{t: t, path: filepath.Join(t.TempDir(), "sallyport.db"), sealer: sealer, w: store.Writer{Actor: "test"}}
	r.open()
	t.Cleanup(func() {
		if r.be != nil {
			_ = r.be.Close()
		}
	})
	return r
}

func (r *reopenable) open() {
	r.t.Helper()
	be, err := boltstore.Open(r.path)
	if err != nil {
		r.t.Fatalf("opening the bolt store: %v", err)
	}
	r.be, r.st = be, store.New(be, r.sealer)
}

func (r *reopenable) reopen() {
	r.t.Helper()
	if err := r.be.Close(); err != nil {
		r.t.Fatalf("closing: %v", err)
	}
	r.open()
}

func (r *reopenable) create(name string, spec model.Spec) *model.Resource {
	r.t.Helper()
	o, err := r.st.Create(context.Background(), r.w, name, spec)
	if err != nil {
		r.t.Fatalf("creating %s %q: %v", spec.Kind(), name, err)
	}
	return o
}

func (r *reopenable) rename(o *model.Resource, name string) error {
	r.t.Helper()
	cur, err := r.st.Get(context.Background(), o.Spec.Kind(), o.ID)
	if err != nil {
		r.t.Fatalf("reading %s: %v", o.ID, err)
	}
	_, err = r.st.Replace(context.Background(), r.w, o.Spec.Kind(), o.ID, 0, name, cur.Spec)
	return err
}

// index reads the name index, raw: key (NULs shown as '|') -> id.
func (r *reopenable) index() map[string]string {
	r.t.Helper()
	out := map[string]string{}
	err := r.be.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(store.BucketNames, "", func(k string, v []byte) error {
			out[strings.ReplaceAll(k, "\x00", "|")] = string(v)
			return nil
		})
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// rawUpdate writes below the Store, as an older sallyportd (one without
// the name index) would have.
func (r *reopenable) rawUpdate(fn func(tx store.Tx) error) {
	r.t.Helper()
	if _, err := r.be.Update(context.Background(), fn); err != nil {
		r.t.Fatal(err)
	}
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Errorf("%s: %v, want *ConflictError", what, err)
	}
}

func wantOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func TestNameIndexCreateRenameDelete(t *testing.T) {
	r := newReopenable(t)
	ctx := context.Background()
	a := r.create("a", selfSigned())
	b := r.create("b", selfSigned())

	_, err := r.st.Create(ctx, r.w, "a", selfSigned())
	wantConflict(t, "create with a taken name", err)
	wantConflict(t, "rename into a taken name", r.rename(b, "a"))
	wantOK(t, "rename to its own name", r.rename(b, "b"))

	// A rename frees the old name and takes the new one.
	wantOK(t, "rename a to a2", r.rename(a, "a2"))
	if _, err := r.st.Create(ctx, r.w, "a2", selfSigned()); err == nil {
		t.Error("create with a name just taken by a rename succeeded")
	}
	c := r.create("a", selfSigned())

	// A delete frees the name.
	if err := r.st.Delete(ctx, r.w, model.KindTLSSettings, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	wantOK(t, "rename into a deleted object's name", r.rename(b, "a"))
	r.create("b", selfSigned())

	// Scoped names: connections per gateway, moved between gateways.
	gw1 := r.create("gw1", gateway(a.ID, "one.example.com"))
	gw2 := r.create("gw2", gateway(a.ID, "two.example.com"))
	c1 := r.create("api", connection(gw1.ID, nil))
	c2 := r.create("api", connection(gw2.ID, nil))
	move := func(c *model.Resource, gwID string) error {
		cur, err := r.st.Get(ctx, model.KindConnection, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.(*model.ConnectionSpec).GatewayID = gwID
		_, err = r.st.Replace(ctx, r.w, model.KindConnection, c.ID, 0, cur.Name, cur.Spec)
		return err
	}
	wantConflict(t, "move a connection into a gateway with the same name", move(c2, gw1.ID))
	wantOK(t, "rename c1", r.rename(c1, "api-old"))
	wantOK(t, "move c2 to gw1 once the name is free there", move(c2, gw1.ID))
	wantOK(t, "create api under gw2 once c2 left", func() error {
		_, err := r.st.Create(ctx, r.w, "api", connection(gw2.ID, nil))
		return err
	}())

	want := map[string]string{}
	for _, k := range model.Kinds {
		objs, err := r.st.List(ctx, k, store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			want[string(k)+"|"+o.Spec.Parent()+"|"+o.Name] = o.ID
		}
	}
	if got := r.index(); !equalMaps(got, want) {
		t.Errorf("name index = %v, want %v", got, want)
	}
}

func TestNameIndexSurvivesReopen(t *testing.T) {
	r := newReopenable(t)
	ctx := context.Background()
	a := r.create("a", selfSigned())
	b := r.create("b", selfSigned())
	before := r.index()
	r.reopen()
	if got := r.index(); !equalMaps(got, before) {
		t.Fatalf("index after reopen = %v, want %v", got, before)
	}
	_, err := r.st.Create(ctx, r.w, "a", selfSigned())
	wantConflict(t, "create with a taken name after reopen", err)
	if got := r.index(); !equalMaps(got, before) {
		t.Errorf("the check on open changed a consistent index: %v, want %v", got, before)
	}
	wantConflict(t, "rename into a taken name after reopen", r.rename(b, "a"))
	if err := r.st.Delete(ctx, r.w, model.KindTLSSettings, a.ID, 0); err != nil {
		t.Fatal(err)
	}
	r.reopen()
	wantOK(t, "rename into a deleted object's name after reopen", r.rename(b, "a"))
}

// TestNameIndexLegacyDataDir opens a data dir written by a version without
// the name index (no names bucket), and one that an older version wrote to
// after a newer one (index entries missing, stale, wrong), and expects the
// store to work as if the index had always been kept.
func TestNameIndexLegacyDataDir(t *testing.T) {
	r := newReopenable(t)
	ctx := context.Background()
	a := r.create("a", selfSigned())
	b := r.create("b", selfSigned())
	gw := r.create("gw", gateway(a.ID, "one.example.com"))
	conn := r.create("api", connection(gw.ID, map[string]string{"Authorization": "Bearer x"}))
	r.create("ci", binding(conn.ID, "ci"))
	want := r.index()
	if len(want) != 5 {
		t.Fatalf("index of 5 objects has %d entries: %v", len(want), want)
	}

	// A data dir from before the index: no names bucket at all.
	r.rawUpdate(func(tx store.Tx) error {
		var keys []string
		if err := tx.Scan(store.BucketNames, "", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(store.BucketNames, k); err != nil {
				return err
			}
		}
		return nil
	})
	r.reopen()
	if got := r.index(); len(got) != 0 {
		t.Fatalf("legacy setup left the index: %v", got)
	}
	// Reads work without the index.
	if _, err := r.st.Get(ctx, model.KindTLSSettings, a.ID); err != nil {
		t.Fatal(err)
	}
	// The first write checks the index and rebuilds it.
	_, err := r.st.Create(ctx, r.w, "a", selfSigned())
	wantConflict(t, "create with a taken name in a legacy data dir", err)
	_, err = r.st.Create(ctx, r.w, "api", connection(gw.ID, nil))
	wantConflict(t, "create a connection with a taken name in a legacy data dir", err)
	c := r.create("c", selfSigned())
	want["tls_settings||c"] = c.ID
	if got := r.index(); !equalMaps(got, want) {
		t.Errorf("rebuilt index = %v, want %v", got, want)
	}

	// An older version wrote after this one: b renamed to "b2" without
	// touching the index (so "b" looks taken, "b2" free), and a stale entry
	// for an object that no longer exists.
	r.rawUpdate(func(tx store.Tx) error {
		data, err := tx.Get(store.ObjectBucket(string(model.KindTLSSettings)), b.ID)
		if err != nil {
			return err
		}
		data = []byte(strings.Replace(string(data), `"name":"b"`, `"name":"b2"`, 1))
		if err := tx.Put(store.ObjectBucket(string(model.KindTLSSettings)), b.ID, data); err != nil {
			return err
		}
		return tx.Put(store.BucketNames, string(model.KindTLSSettings)+"\x00\x00gone", []byte("tls_gone"))
	})
	r.reopen()
	if got, err := r.st.Get(ctx, model.KindTLSSettings, b.ID); err != nil || got.Name != "b2" {
		t.Fatalf("raw rename: %v, %v", got, err)
	}
	_, err = r.st.Create(ctx, r.w, "b2", selfSigned())
	wantConflict(t, "create with a name an older version took", err)
	r.create("b", selfSigned())
	r.create("gone", selfSigned())
	idx := r.index()
	if idx["tls_settings||b2"] != b.ID || idx["tls_settings||gone"] == "tls_gone" {
		t.Errorf("index after repair = %v", idx)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestNonConfigurationWritesKeepTheRevision checks that statuses and
// recording anchors, which are not configuration, neither advance the
// revision nor wake a subscriber (the reconciler), while object writes do.
func TestNonConfigurationWritesKeepTheRevision(t *testing.T) {
	r := newReopenable(t)
	ctx := context.Background()
	revs, cancel := r.be.Subscribe()
	defer cancel()
	a := r.create("a", selfSigned())
	rev, err := r.be.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-revs; got != rev {
		t.Fatalf("notified of %d after a create, want %d", got, rev)
	}

	if err := r.st.SetStatuses(ctx, []store.StatusUpdate{
		{Kind: model.KindTLSSettings, ID: a.ID, Status: model.Status{Ready: true, ObservedGeneration: 1}},
		{Kind: model.KindTLSSettings, ID: "tls_gone", Status: model.Status{Ready: true}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.st.PutAnchor(ctx, "ses_1", store.Anchor{SessionID: "ses_1", File: "x.rec", Records: 2}); err != nil {
		t.Fatal(err)
	}
	if err := r.st.PruneAnchors(ctx, []string{"ses_1"}, model.AuditEntry{Action: "prune"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.be.Revision(ctx); got != rev {
		t.Errorf("revision moved from %d to %d on status and anchor writes", rev, got)
	}
	select {
	case got := <-revs:
		t.Errorf("a subscriber was notified of revision %d by a status or anchor write", got)
	default:
	}
	if got, err := r.st.Get(ctx, model.KindTLSSettings, a.ID); err != nil || !got.Status.Ready {
		t.Errorf("status not stored: %+v, %v", got, err)
	}
	r.reopen()
	if got, err := r.st.Get(ctx, model.KindTLSSettings, a.ID); err != nil || !got.Status.Ready {
		t.Errorf("status not durable: %+v, %v", got, err)
	}
}
