package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// BucketNames is the name index: one key per object,
// "<kind>\x00<parent id>\x00<name>" (the parent id empty for kinds without
// one), whose value is the object's id. It answers "is this name taken in
// this scope" with one read instead of a decode of every object of the
// kind. Create, Replace and Delete maintain it in the transaction that
// writes the object; the first object write of a process checks it against
// the objects and repairs it (a data dir from a version without the index,
// or one an older version wrote to after a newer one).
const BucketNames = "names"

// nameKey is the index key of a name in a scope. Names and ids never hold
// a NUL (model.CheckName, newID).
func nameKey(kind model.Kind, parent, name string) string {
	return string(kind) + "\x00" + parent + "\x00" + name
}

// unindexName removes the index entry of an object as stored (old), if it
// still names that object.
func unindexName(tx Tx, old *model.Resource) error {
	key := nameKey(old.Spec.Kind(), old.Spec.Parent(), old.Name)
	v, err := tx.Get(BucketNames, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("reading the name index: %w", err)
	case string(v) != old.ID:
		return nil
	}
	if err := tx.Delete(BucketNames, key); err != nil {
		return fmt.Errorf("unindexing the name of %s: %w", old.ID, err)
	}
	return nil
}

// rebuildNameIndex makes the name index match the stored objects, writing
// only the entries that differ (none, normally). Should two objects share
// a name in a scope (data the index never saw), the first in id order
// keeps the entry; both stay readable, and neither name can be taken by a
// third object.
func (s *Store) rebuildNameIndex(tx Tx) error {
	want := map[string]string{}
	for _, k := range model.Kinds {
		objs, err := s.listRecords(tx, k)
		if err != nil {
			return err
		}
		for _, o := range objs {
			key := nameKey(k, o.Spec.Parent(), o.Name)
			if _, dup := want[key]; !dup {
				want[key] = o.ID
			}
		}
	}
	var stale []string
	have := map[string]bool{}
	err := tx.Scan(BucketNames, "", func(key string, v []byte) error {
		if id, ok := want[key]; ok && bytes.Equal(v, []byte(id)) {
			have[key] = true
			return nil
		}
		stale = append(stale, key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the name index: %w", err)
	}
	for _, key := range stale {
		if err := tx.Delete(BucketNames, key); err != nil {
			return fmt.Errorf("repairing the name index: %w", err)
		}
	}
	for key, id := range want {
		if have[key] {
			continue
		}
		if err := tx.Put(BucketNames, key, []byte(id)); err != nil {
			return fmt.Errorf("repairing the name index at %q: %w", strings.ReplaceAll(key, "\x00", "/"), err)
		}
	}
	return nil
}
