package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

func openTemp(t *testing.T) (*boltstore.Backend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltstore.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, path
}

func mustUpdate(t *testing.T, b *boltstore.Backend, fn func(store.Tx) error) uint64 {
	t.Helper()
	rev, err := b.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

func revision(t *testing.T, b *boltstore.Backend) uint64 {
	t.Helper()
	rev, err := b.Revision(context.Background())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func get(t *testing.T, b *boltstore.Backend, bucket, key string) ([]byte, error) {
	t.Helper()
	var v []byte
	err := b.View(context.Background(), func(tx store.Tx) error {
		var err error
		v, err = tx.Get(bucket, key)
		return err
	})
	return v, err
}

func scanKeys(t *testing.T, b *boltstore.Backend, bucket, from string) []string {
	t.Helper()
	var keys []string
	err := b.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(bucket, from, func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return keys
}

func TestName(t *testing.T) {
	b, _ := openTemp(t)
	if got := b.Name(); got != "bolt" {
		t.Fatalf("Name() = %q, want bolt", got)
	}
}

func TestOpenCreatesFile0600(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		t.Fatalf("db file mode = %04o, want at most 0600", perm)
	}
}

func TestPutGetDelete(t *testing.T) {
	b, _ := openTemp(t)
	bucket := store.ObjectBucket("gateway") // contains '/'
	mustUpdate(t, b, func(tx store.Tx) error {
		if err := tx.Put(bucket, "gw-1", []byte("one")); err != nil {
			return err
		}
		return tx.Put(bucket, "empty", nil)
	})

	v, err := get(t, b, bucket, "gw-1")
	if err != nil || string(v) != "one" {
		t.Fatalf("Get gw-1 = %q, %v; want one", v, err)
	}
	v, err = get(t, b, bucket, "empty")
	if err != nil || len(v) != 0 {
		t.Fatalf("Get empty = %q, %v; want empty value, nil", v, err)
	}

	mustUpdate(t, b, func(tx store.Tx) error {
		if err := tx.Delete(bucket, "gw-1"); err != nil {
			return err
		}
		// Missing keys and missing buckets are not errors.
		if err := tx.Delete(bucket, "never-existed"); err != nil {
			return err
		}
		return tx.Delete("no-such-bucket", "x")
	})
	if _, err := get(t, b, bucket, "gw-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after delete: err = %v, want ErrNotFound", err)
	}
}

func TestGetNotFound(t *testing.T) {
	b, _ := openTemp(t)
	if _, err := get(t, b, "no-such-bucket", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing bucket: err = %v, want ErrNotFound", err)
	}
	mustUpdate(t, b, func(tx store.Tx) error { return tx.Put("b", "k", []byte("v")) })
	if _, err := get(t, b, "b", "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: err = %v, want ErrNotFound", err)
	}
}

func TestGetReturnsCopy(t *testing.T) {
	b, _ := openTemp(t)
	buf := []byte("original")
	mustUpdate(t, b, func(tx store.Tx) error {
		err := tx.Put("b", "k", buf)
		// Reusing the caller's buffer after Put must not change what is stored.
		copy(buf, "XXXXXXXX")
		return err
	})
	var held []byte
	if err := b.View(context.Background(), func(tx store.Tx) error {
		var err error
		held, err = tx.Get("b", "k")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Write more after the View so bolt reuses/remaps pages; held must be
	// untouched because Get copied it.
	mustUpdate(t, b, func(tx store.Tx) error {
		for i := range 1000 {
			if err := tx.Put("b", fmt.Sprintf("k%04d", i), make([]byte, 512)); err != nil {
				return err
			}
		}
		return tx.Put("b", "k", []byte("changed!"))
	})
	if string(held) != "original" {
		t.Fatalf("value held after tx = %q, want original", held)
	}
}

func TestScanOrderAndFrom(t *testing.T) {
	b, _ := openTemp(t)
	keys := []string{"c", "a", "b\x00z", "b", "ab", "d"}
	mustUpdate(t, b, func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.Put("s", k, []byte("v-"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := scanKeys(t, b, "s", ""); !slices.Equal(got, want) {
		t.Fatalf("scan all = %q, want %q", got, want)
	}
	if got, want := scanKeys(t, b, "s", "b"), []string{"b", "b\x00z", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("scan from b = %q, want %q", got, want)
	}
	if got, want := scanKeys(t, b, "s", "bb"), []string{"c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("scan from bb = %q, want %q", got, want)
	}
	if got := scanKeys(t, b, "s", "e"); len(got) != 0 {
		t.Fatalf("scan past end = %q, want none", got)
	}
	if got := scanKeys(t, b, "missing", ""); len(got) != 0 {
		t.Fatalf("scan missing bucket = %q, want none", got)
	}

	// Values are delivered with their keys.
	err := b.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan("s", "", func(k string, v []byte) error {
			if string(v) != "v-"+k {
				return fmt.Errorf("key %q has value %q", k, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestScanStopAndError(t *testing.T) {
	b, _ := openTemp(t)
	mustUpdate(t, b, func(tx store.Tx) error {
		for _, k := range []string{"a", "b", "c"} {
			if err := tx.Put("s", k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})

	var seen []string
	err := b.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan("s", "", func(k string, _ []byte) error {
			seen = append(seen, k)
			if k == "b" {
				return store.ErrStop
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("ErrStop surfaced as %v", err)
	}
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("seen = %q, want [a b]", seen)
	}

	boom := errors.New("boom")
	err = b.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan("s", "", func(string, []byte) error { return boom })
	})
	if !errors.Is(err, boom) {
		t.Fatalf("scan error = %v, want boom", err)
	}
}

func TestScanWithDeletes(t *testing.T) {
	b, _ := openTemp(t)
	var all []string
	mustUpdate(t, b, func(tx store.Tx) error {
		for i := range 300 {
			k := fmt.Sprintf("k%03d", i)
			all = append(all, k)
			if err := tx.Put("s", k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	// Delete every visited key while scanning: each key must be seen once.
	var seen []string
	mustUpdate(t, b, func(tx store.Tx) error {
		return tx.Scan("s", "", func(k string, _ []byte) error {
			seen = append(seen, k)
			return tx.Delete("s", k)
		})
	})
	if !slices.Equal(seen, all) {
		t.Fatalf("scan-with-delete saw %d keys, want %d (first diff somewhere in %q)", len(seen), len(all), seen)
	}
	if got := scanKeys(t, b, "s", ""); len(got) != 0 {
		t.Fatalf("%d keys left after deleting all", len(got))
	}
}

func TestRollbackOnError(t *testing.T) {
	b, _ := openTemp(t)
	mustUpdate(t, b, func(tx store.Tx) error { return tx.Put("b", "keep", []byte("1")) })
	before := revision(t, b)

	boom := errors.New("boom")
	rev, err := b.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put("b", "new", []byte("x")); err != nil {
			return err
		}
		if err := tx.Put("fresh-bucket", "k", []byte("x")); err != nil {
			return err
		}
		if err := tx.Delete("b", "keep"); err != nil {
			return err
		}
		if _, err := tx.NextSequence("b"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || rev != 0 {
		t.Fatalf("Update = %d, %v; want 0, boom", rev, err)
	}
	if got := revision(t, b); got != before {
		t.Fatalf("revision after rollback = %d, want %d", got, before)
	}
	if _, err := get(t, b, "b", "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back Put visible: %v", err)
	}
	if _, err := get(t, b, "fresh-bucket", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back bucket visible: %v", err)
	}
	if v, err := get(t, b, "b", "keep"); err != nil || string(v) != "1" {
		t.Fatalf("rolled-back Delete took effect: %q, %v", v, err)
	}
	// The sequence drawn in the rolled-back tx is not consumed.
	var seq uint64
	mustUpdate(t, b, func(tx store.Tx) error {
		var err error
		seq, err = tx.NextSequence("b")
		return err
	})
	if seq != 1 {
		t.Fatalf("sequence after rollback = %d, want 1", seq)
	}
}

func TestRevisionIncrementsPerUpdate(t *testing.T) {
	b, _ := openTemp(t)
	if got := revision(t, b); got != 0 {
		t.Fatalf("new store revision = %d, want 0", got)
	}
	for i := uint64(1); i <= 5; i++ {
		rev := mustUpdate(t, b, func(tx store.Tx) error {
			return tx.Put("b", fmt.Sprint(i), []byte("x"))
		})
		if rev != i {
			t.Fatalf("Update %d returned revision %d", i, rev)
		}
		if got := revision(t, b); got != i {
			t.Fatalf("Revision after update %d = %d", i, got)
		}
	}
	// An Update that writes nothing still commits and counts.
	if rev := mustUpdate(t, b, func(store.Tx) error { return nil }); rev != 6 {
		t.Fatalf("empty Update revision = %d, want 6", rev)
	}
	// The counter is visible to readers but owned by the backend.
	err := b.View(context.Background(), func(tx store.Tx) error {
		v, err := tx.Get(store.BucketMeta, store.RevisionKey)
		if err != nil {
			return err
		}
		if len(v) != 8 || v[7] != 6 {
			return fmt.Errorf("stored revision = %x, want 8-byte big-endian 6", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(store.BucketMeta, store.RevisionKey, []byte("12345678"))
	})
	if err == nil {
		t.Fatal("Put of the revision key succeeded")
	}
}

func TestNextSequence(t *testing.T) {
	b, _ := openTemp(t)
	var got []uint64
	for range 3 {
		mustUpdate(t, b, func(tx store.Tx) error {
			for range 2 {
				s, err := tx.NextSequence(store.BucketAudit)
				if err != nil {
					return err
				}
				got = append(got, s)
			}
			return nil
		})
	}
	if want := []uint64{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("sequences = %v, want %v", got, want)
	}
}

func TestSubscribeCoalesces(t *testing.T) {
	b, _ := openTemp(t)
	ch, cancel := b.Subscribe()
	defer cancel()

	put := func(tx store.Tx) error { return tx.Put("b", "k", []byte("v")) }
	mustUpdate(t, b, put)
	if got := <-ch; got != 1 {
		t.Fatalf("first notification = %d, want 1", got)
	}

	// Three updates nobody reads: the channel holds only the newest.
	for range 3 {
		mustUpdate(t, b, put)
	}
	select {
	case got := <-ch:
		if got != 4 {
			t.Fatalf("coalesced notification = %d, want 4", got)
		}
	default:
		t.Fatal("no notification pending after updates")
	}
	select {
	case got := <-ch:
		t.Fatalf("unexpected extra notification %d", got)
	default:
	}

	// A failed Update notifies nobody.
	_, _ = b.Update(context.Background(), func(store.Tx) error { return errors.New("no") })
	select {
	case got := <-ch:
		t.Fatalf("notification %d after failed update", got)
	default:
	}
}

func TestSubscribeCancelAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ch1, cancel1 := b.Subscribe()
	ch2, cancel2 := b.Subscribe()

	cancel1()
	cancel1() // idempotent
	if _, ok := <-ch1; ok {
		t.Fatal("cancelled channel still open")
	}
	mustUpdate(t, b, func(tx store.Tx) error { return tx.Put("b", "k", nil) })
	if got := <-ch2; got != 1 {
		t.Fatalf("remaining subscriber got %d, want 1", got)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch2; ok {
		t.Fatal("subscriber channel open after Close")
	}
	cancel2() // after Close: must not panic on double close
	ch3, cancel3 := b.Subscribe()
	if _, ok := <-ch3; ok {
		t.Fatal("Subscribe after Close returned an open channel")
	}
	cancel3()
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Update(context.Background(), func(store.Tx) error { return nil }); err == nil {
		t.Fatal("Update after Close succeeded")
	}
}

func TestViewRejectsWrites(t *testing.T) {
	b, _ := openTemp(t)
	err := b.View(context.Background(), func(tx store.Tx) error {
		if err := tx.Put("b", "k", []byte("v")); !errors.Is(err, boltstore.ErrReadOnly) {
			return fmt.Errorf("Put in View: err = %w, want ErrReadOnly", err)
		}
		if err := tx.Delete("b", "k"); !errors.Is(err, boltstore.ErrReadOnly) {
			return fmt.Errorf("Delete in View: err = %w, want ErrReadOnly", err)
		}
		if _, err := tx.NextSequence("b"); !errors.Is(err, boltstore.ErrReadOnly) {
			return fmt.Errorf("NextSequence in View: err = %w, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := revision(t, b); got != 0 {
		t.Fatalf("revision after View = %d, want 0", got)
	}
}

func TestContextCancelled(t *testing.T) {
	b, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	fn := func(store.Tx) error { called = true; return nil }
	if _, err := b.Update(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update: err = %v, want context.Canceled", err)
	}
	if err := b.View(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("View: err = %v, want context.Canceled", err)
	}
	if _, err := b.Revision(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Revision: err = %v, want context.Canceled", err)
	}
	if called {
		t.Fatal("fn ran with a cancelled context")
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, b, func(tx store.Tx) error {
		if _, err := tx.NextSequence(store.BucketAudit); err != nil {
			return err
		}
		return tx.Put(store.ObjectBucket("connection"), "c-1", []byte("conn"))
	})
	mustUpdate(t, b, func(tx store.Tx) error { return tx.Put(store.BucketSecrets, "c-1\x00token", []byte("sealed")) })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = boltstore.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer b.Close()
	if got := revision(t, b); got != 2 {
		t.Fatalf("revision after reopen = %d, want 2", got)
	}
	if v, err := get(t, b, store.ObjectBucket("connection"), "c-1"); err != nil || string(v) != "conn" {
		t.Fatalf("object after reopen = %q, %v", v, err)
	}
	if v, err := get(t, b, store.BucketSecrets, "c-1\x00token"); err != nil || string(v) != "sealed" {
		t.Fatalf("secret after reopen = %q, %v", v, err)
	}
	var seq uint64
	mustUpdate(t, b, func(tx store.Tx) error {
		var err error
		seq, err = tx.NextSequence(store.BucketAudit)
		return err
	})
	if seq != 2 {
		t.Fatalf("sequence after reopen = %d, want 2", seq)
	}
}

func TestSecondOpenFails(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	b2, err := boltstore.Open(path, boltstore.WithLockTimeout(100*time.Millisecond))
	if err == nil {
		_ = b2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, boltstore.ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "data dir is in use by another sallyportd") || !strings.Contains(msg, path) {
		t.Fatalf("error %q lacks the clear message or the path", msg)
	}
	t.Logf("second Open: %v", err)
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("second Open took %s; lock timeout not honoured", el)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	b, _ := openTemp(t)
	ch, cancel := b.Subscribe()
	defer cancel()

	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				_, err := b.Update(context.Background(), func(tx store.Tx) error {
					if _, err := tx.NextSequence(store.BucketAudit); err != nil {
						return err
					}
					return tx.Put("b", fmt.Sprintf("w%d-%03d", w, i), []byte("x"))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
		// Readers run alongside the writers.
		wg.Go(func() {
			for range perWorker {
				if err := b.View(context.Background(), func(tx store.Tx) error {
					return tx.Scan("b", "", func(string, []byte) error { return nil })
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := revision(t, b); got != workers*perWorker {
		t.Fatalf("revision = %d, want %d", got, workers*perWorker)
	}
	if got := len(scanKeys(t, b, "b", "")); got != workers*perWorker {
		t.Fatalf("%d keys, want %d", got, workers*perWorker)
	}
	// Notifications never go backwards: the last one is the final revision.
	select {
	case got := <-ch:
		if got != workers*perWorker {
			t.Fatalf("pending notification = %d, want %d", got, workers*perWorker)
		}
	default:
		t.Fatal("no notification pending")
	}
}
