package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
)

// Store is the desired-state store: every rule about objects lives here,
// over any Backend.
type Store struct {
	backend Backend
	sealer  *seal.Sealer
	now     func() time.Time

	// namesChecked is set once a write transaction of this process has
	// verified (and, where needed, rebuilt) the name index against the
	// objects, so a data dir written by an earlier version, or an index
	// left stale by one, is repaired before the index is trusted.
	namesChecked atomic.Bool
	// decoded caches decoded records and statuses by id, keyed on the
	// stored bytes: a read decodes only what changed since the last one.
	decoded decodeCache
}

// New returns a Store over backend that seals secrets with sealer.
func New(backend Backend, sealer *seal.Sealer) *Store {
	return &Store{
		backend: backend, sealer: sealer, now: func() time.Time { return time.Now().UTC() },
		decoded: decodeCache{objects: map[string]cachedObject{}, statuses: map[string]cachedStatus{}},
	}
}

// Backend returns the engine under the store.
func (s *Store) Backend() Backend { return s.backend }

// Writer says who makes a write, for the audit log.
type Writer struct {
	// Actor identifies the credential used ("token:3f2a9c1e").
	Actor string
	// RequestID ties the audit entry to the API request and its logs.
	RequestID string
}

// ListOptions filters a List.
type ListOptions struct {
	// Parent keeps objects whose Spec.Parent() is this id.
	Parent string
	// Name keeps objects with this name.
	Name string
}

// record is an object as the store keeps it: status lives apart, so the
// reconciler's writes never touch the operator's.
type record struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Generation int64           `json:"generation"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Spec       json.RawMessage `json:"spec"`
}

// initialStatus is an object's status until the reconciler reports.
var initialStatus = model.Status{Message: "waiting for the reconciler"}

// Get returns one object.
func (s *Store) Get(ctx context.Context, kind model.Kind, id string) (*model.Resource, error) {
	var r *model.Resource
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		r, err = s.getObjectCopy(tx, kind, id)
		return err
	})
	return r, err
}

// List returns the objects of a kind, in id order.
func (s *Store) List(ctx context.Context, kind model.Kind, opts ListOptions) ([]*model.Resource, error) {
	var out []*model.Resource
	err := s.backend.View(ctx, func(tx Tx) error {
		all, err := s.listObjectsCopy(tx, kind)
		if err != nil {
			return err
		}
		for _, r := range all {
			if (opts.Name == "" || r.Name == opts.Name) && (opts.Parent == "" || r.Spec.Parent() == opts.Parent) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// Counts returns how many objects of each kind there are.
func (s *Store) Counts(ctx context.Context) (map[model.Kind]int, error) {
	counts := map[model.Kind]int{}
	err := s.backend.View(ctx, func(tx Tx) error {
		for _, k := range model.Kinds {
			n := 0
			if err := tx.Scan(ObjectBucket(string(k)), "", func(string, []byte) error { n++; return nil }); err != nil {
				return err
			}
			counts[k] = n
		}
		return nil
	})
	return counts, err
}

// Create stores a new object and returns it with its id and generation 1.
// A spec that fails validation returns model.Problems and stores nothing.
func (s *Store) Create(ctx context.Context, w Writer, name string, spec model.Spec) (*model.Resource, error) {
	var out *model.Resource
	_, err := s.updateObjects(ctx, func(tx Tx) error {
		now := s.now()
		r := &model.Resource{Name: name, Generation: 1, CreatedAt: now, UpdatedAt: now, Spec: spec}
		var err error
		if r.ID, err = newID(spec.Kind()); err != nil {
			return err
		}
		if err := s.admit(tx, r, nil); err != nil {
			return err
		}
		if err := putStatus(tx, r.ID, initialStatus); err != nil {
			return err
		}
		r.Status = initialStatus
		out = r
		return appendAudit(tx, s.auditEntry(w, "create", r, 0))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Replace replaces an object's name and spec. ifMatch, when not zero, is
// the generation the caller last read. The generation is bumped only when
// the name or spec change (a new secret value is a change).
func (s *Store) Replace(ctx context.Context, w Writer, kind model.Kind, id string, ifMatch int64, name string, spec model.Spec) (*model.Resource, error) {
	if spec.Kind() != kind {
		return nil, fmt.Errorf("spec of kind %s given for a %s", spec.Kind(), kind)
	}
	var out *model.Resource
	_, err := s.updateObjects(ctx, func(tx Tx) error {
		old, err := s.getObject(tx, kind, id)
		if err != nil {
			return err
		}
		if ifMatch != 0 && ifMatch != old.Generation {
			return &PreconditionFailedError{Expected: ifMatch, Current: old.Generation}
		}
		r := &model.Resource{ID: id, Name: name, Generation: old.Generation, CreatedAt: old.CreatedAt, UpdatedAt: old.UpdatedAt, Spec: spec, Status: old.Status}
		if err := s.admit(tx, r, old); err != nil {
			return err
		}
		out = r
		if r.Generation == old.Generation {
			// Nothing changed: roll back (a re-sent secret was re-sealed),
			// so there is no new revision, generation or audit entry.
			return errUnchanged
		}
		return appendAudit(tx, s.auditEntry(w, "replace", r, old.Generation))
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return nil, err
	}
	return out, nil
}

// errUnchanged rolls back a replace that changes nothing.
var errUnchanged = errors.New("unchanged")

// Delete removes an object, its secrets and its status. It fails with a
// ConflictError listing the objects that still reference it.
func (s *Store) Delete(ctx context.Context, w Writer, kind model.Kind, id string, ifMatch int64) error {
	_, err := s.updateObjects(ctx, func(tx Tx) error {
		old, err := s.getObject(tx, kind, id)
		if err != nil {
			return err
		}
		if ifMatch != 0 && ifMatch != old.Generation {
			return &PreconditionFailedError{Expected: ifMatch, Current: old.Generation}
		}
		deps, err := s.dependents(tx, kind, id)
		if err != nil {
			return err
		}
		if len(deps) > 0 {
			return &ConflictError{Message: fmt.Sprintf("%s %q is still referenced; delete or change these first", kind.Title(), old.Name), Dependents: deps}
		}
		if err := tx.Delete(ObjectBucket(string(kind)), id); err != nil {
			return fmt.Errorf("deleting %s: %w", id, err)
		}
		if err := tx.Delete(BucketStatus, id); err != nil {
			return fmt.Errorf("deleting status of %s: %w", id, err)
		}
		if err := unindexName(tx, old); err != nil {
			return err
		}
		if err := deleteSecrets(tx, id, nil); err != nil {
			return err
		}
		e := s.auditEntry(w, "delete", old, old.Generation)
		e.GenerationAfter, e.Spec = 0, nil
		return appendAudit(tx, e)
	})
	if err == nil {
		s.decoded.forget(id)
	}
	return err
}

// SetStatus records the reconciler's report on an object. It does not
// change the object's generation. A missing object is not an error: it may
// have been deleted while the reconciler worked.
func (s *Store) SetStatus(ctx context.Context, kind model.Kind, id string, st model.Status) error {
	return s.SetStatuses(ctx, []StatusUpdate{{Kind: kind, ID: id, Status: st}})
}

// StatusUpdate is one object's new status, for SetStatuses.
type StatusUpdate struct {
	Kind   model.Kind
	ID     string
	Status model.Status
}

// SetStatuses records several statuses in one transaction (one commit).
// Missing objects are skipped, as in SetStatus. A status is not
// configuration: where the backend allows it (UnversionedUpdater), the
// write does not advance the revision, so it does not wake the reconciler
// that wrote it.
func (s *Store) SetStatuses(ctx context.Context, updates []StatusUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	return s.updateUnversioned(ctx, func(tx Tx) error {
		for _, u := range updates {
			if _, err := tx.Get(ObjectBucket(string(u.Kind)), u.ID); errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if err := putStatus(tx, u.ID, u.Status); err != nil {
				return err
			}
		}
		return nil
	})
}

// updateUnversioned runs fn in a write transaction that does not advance
// the revision when the backend supports it, and in an ordinary Update
// otherwise.
func (s *Store) updateUnversioned(ctx context.Context, fn func(Tx) error) error {
	if u, ok := s.backend.(UnversionedUpdater); ok {
		return u.UpdateUnversioned(ctx, fn)
	}
	_, err := s.backend.Update(ctx, fn)
	return err
}

// updateObjects runs a write of objects. The first one of the process
// verifies the name index in the same transaction (rebuilding what is
// missing or stale), so the index is trusted only once checked.
func (s *Store) updateObjects(ctx context.Context, fn func(Tx) error) (uint64, error) {
	checked := false
	rev, err := s.backend.Update(ctx, func(tx Tx) error {
		checked = false
		if !s.namesChecked.Load() {
			if err := s.rebuildNameIndex(tx); err != nil {
				return err
			}
			checked = true
		}
		return fn(tx)
	})
	if err == nil && checked {
		s.namesChecked.Store(true)
	}
	return rev, err
}

// SecretValue returns the plaintext of the secret at a field path of an
// object, for the data path. It is never served by the admin API.
func (s *Store) SecretValue(ctx context.Context, id, path string) (string, error) {
	var v string
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		v, err = s.openSecret(tx, id, path)
		return err
	})
	return v, err
}

// admit validates r against the stored state and writes it: checks the
// name, the spec (with effective secret values), references and the name's
// scope, then seals new secret values and stores the record. For a
// replace, old is the stored object; r.Generation is bumped when something
// changed.
func (s *Store) admit(tx Tx, r *model.Resource, old *model.Resource) error {
	var ps model.Problems
	ps.Check("name", model.CheckName(r.Name))
	fields := r.Spec.Secrets()
	ps = append(ps, r.Spec.Validate(func(path string) (string, bool) {
		for _, f := range fields {
			if f.Path != path || f.Secret == nil {
				continue
			}
			if f.Secret.Value != "" {
				return f.Secret.Value, true
			}
			if old == nil {
				return "", false
			}
			v, err := s.openSecret(tx, r.ID, path)
			return v, err == nil
		}
		return "", false
	})...)
	for _, ref := range r.Spec.References() {
		if ref.ID == "" {
			continue // a required reference left empty is already a problem
		}
		if _, err := tx.Get(ObjectBucket(string(ref.Kind)), ref.ID); errors.Is(err, ErrNotFound) {
			ps.Add(ref.Field, "no %s with id %q", ref.Kind.Title(), ref.ID)
		} else if err != nil {
			return err
		}
	}
	if len(ps) > 0 {
		return ps
	}
	// Normalize only once valid, so problems name the fields as sent (a
	// sorted list would shift the indexes).
	r.Spec.Normalize()
	if err := s.checkNameFree(tx, r); err != nil {
		return err
	}

	// Seal new values; keep stored ones; the spec keeps only set+version.
	keep := map[string]bool{}
	for _, f := range fields {
		if f.Secret == nil {
			continue
		}
		keep[f.Path] = true
		if f.Secret.Value == "" {
			v, err := s.openSecret(tx, r.ID, f.Path)
			if err != nil {
				return err
			}
			*f.Secret = model.Secret{Set: true, Version: s.sealer.Fingerprint(v)}
			continue
		}
		sealed, err := s.sealer.Seal([]byte(f.Secret.Value), secretKey(r.ID, f.Path))
		if err != nil {
			return fmt.Errorf("sealing %s: %w", f.Path, err)
		}
		if err := tx.Put(BucketSecrets, secretKey(r.ID, f.Path), sealed); err != nil {
			return fmt.Errorf("storing %s: %w", f.Path, err)
		}
		*f.Secret = model.Secret{Set: true, Version: s.sealer.Fingerprint(f.Secret.Value)}
	}
	if err := deleteSecrets(tx, r.ID, keep); err != nil {
		return err
	}

	spec, err := json.Marshal(r.Spec)
	if err != nil {
		return fmt.Errorf("encoding spec: %w", err)
	}
	if old != nil {
		oldSpec, err := json.Marshal(old.Spec)
		if err != nil {
			return fmt.Errorf("encoding spec: %w", err)
		}
		if old.Name == r.Name && bytes.Equal(oldSpec, spec) {
			return nil
		}
		r.Generation = old.Generation + 1
		r.UpdatedAt = s.now()
	}
	data, err := json.Marshal(record{ID: r.ID, Name: r.Name, Generation: r.Generation, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Spec: spec})
	if err != nil {
		return fmt.Errorf("encoding object: %w", err)
	}
	if old != nil {
		if err := unindexName(tx, old); err != nil {
			return err
		}
	}
	if err := tx.Put(BucketNames, nameKey(r.Spec.Kind(), r.Spec.Parent(), r.Name), []byte(r.ID)); err != nil {
		return fmt.Errorf("indexing the name of %s: %w", r.ID, err)
	}
	if err := tx.Put(ObjectBucket(string(r.Spec.Kind())), r.ID, data); err != nil {
		return fmt.Errorf("storing %s: %w", r.ID, err)
	}
	return nil
}

// checkNameFree fails when another object of the kind has r's name in r's
// scope. It reads the name index; an entry naming an object that no longer
// exists does not count.
func (s *Store) checkNameFree(tx Tx, r *model.Resource) error {
	kind := r.Spec.Kind()
	v, err := tx.Get(BucketNames, nameKey(kind, r.Spec.Parent(), r.Name))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the name index: %w", err)
	}
	other := string(v)
	if other == r.ID {
		return nil
	}
	if _, err := tx.Get(ObjectBucket(string(kind)), other); errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading %s: %w", other, err)
	}
	scope := ""
	if p := kind.ParentField(); p != "" {
		scope = " under the same " + strings.TrimSuffix(p, "_id")
	}
	return &ConflictError{Message: fmt.Sprintf("a %s named %q already exists%s (id %s)", kind.Title(), r.Name, scope, other)}
}

// dependents lists the objects whose references point at (kind, id).
func (s *Store) dependents(tx Tx, kind model.Kind, id string) ([]model.ObjectRef, error) {
	var deps []model.ObjectRef
	for _, k := range model.Kinds {
		all, err := s.listRecords(tx, k)
		if err != nil {
			return nil, err
		}
		for _, o := range all {
			for _, ref := range o.Spec.References() {
				if ref.Kind == kind && ref.ID == id {
					deps = append(deps, model.ObjectRef{Kind: k, ID: o.ID, Name: o.Name})
					break
				}
			}
		}
	}
	return deps, nil
}

func (s *Store) openSecret(tx Tx, id, path string) (string, error) {
	sealed, err := tx.Get(BucketSecrets, secretKey(id, path))
	if err != nil {
		return "", fmt.Errorf("secret %s of %s: %w", path, id, err)
	}
	v, err := s.sealer.Open(sealed, secretKey(id, path))
	if err != nil {
		return "", fmt.Errorf("unsealing %s of %s: %w", path, id, err)
	}
	return string(v), nil
}

// secretKey is where an object's secret lives; also the sealing AAD, so a
// sealed value cannot be moved to another object or field.
func secretKey(id, path string) string { return id + "\x00" + path }

// deleteSecrets removes the object's stored secrets whose paths are not in
// keep (all of them when keep is nil).
func deleteSecrets(tx Tx, id string, keep map[string]bool) error {
	prefix := id + "\x00"
	var drop []string
	err := tx.Scan(BucketSecrets, prefix, func(k string, _ []byte) error {
		if !strings.HasPrefix(k, prefix) {
			return ErrStop
		}
		if !keep[strings.TrimPrefix(k, prefix)] {
			drop = append(drop, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing secrets of %s: %w", id, err)
	}
	for _, k := range drop {
		if err := tx.Delete(BucketSecrets, k); err != nil {
			return fmt.Errorf("deleting a secret of %s: %w", id, err)
		}
	}
	return nil
}

// getObject reads one object with its status. Its Spec may be shared with
// other readers (decodeCache).
func (s *Store) getObject(tx Tx, kind model.Kind, id string) (*model.Resource, error) {
	return s.readObject(tx, kind, id, false)
}

// getObjectCopy is getObject with a Spec of the caller's own, for readers
// outside the store, which may modify what they read.
func (s *Store) getObjectCopy(tx Tx, kind model.Kind, id string) (*model.Resource, error) {
	return s.readObject(tx, kind, id, true)
}

// readObject decodes one object, into a Spec of its own when fresh, else
// through the decode cache, and adds its status.
func (s *Store) readObject(tx Tx, kind model.Kind, id string, fresh bool) (*model.Resource, error) {
	data, err := tx.Get(ObjectBucket(string(kind)), id)
	if errors.Is(err, ErrNotFound) {
		return nil, &NotFoundError{Kind: kind, ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", id, err)
	}
	r, err := s.decode(kind, id, data, fresh)
	if err != nil {
		return nil, err
	}
	r.Status, err = s.getStatus(tx, id)
	return r, err
}

// decode decodes a stored object: into a Spec of its own when fresh, else
// through the decode cache.
func (s *Store) decode(kind model.Kind, id string, data []byte, fresh bool) (*model.Resource, error) {
	if fresh {
		return decodeRecord(kind, data)
	}
	return s.decoded.record(kind, id, data)
}

// listObjectsCopy is listObjects with Specs of the caller's own.
func (s *Store) listObjectsCopy(tx Tx, kind model.Kind) ([]*model.Resource, error) {
	return s.scanObjects(tx, kind, true, true)
}

// listObjects returns the objects of a kind with their statuses, in id
// order. Their Specs may be shared with other readers (decodeCache).
func (s *Store) listObjects(tx Tx, kind model.Kind) ([]*model.Resource, error) {
	return s.scanObjects(tx, kind, false, true)
}

// listRecords returns the objects of a kind without their statuses, with
// shared Specs.
func (s *Store) listRecords(tx Tx, kind model.Kind) ([]*model.Resource, error) {
	return s.scanObjects(tx, kind, false, false)
}

// scanObjects decodes the objects of a kind in id order: into Specs of
// their own when fresh (for callers that modify them), else through the
// decode cache; with their statuses when withStatus.
func (s *Store) scanObjects(tx Tx, kind model.Kind, fresh, withStatus bool) ([]*model.Resource, error) {
	var out []*model.Resource
	err := tx.Scan(ObjectBucket(string(kind)), "", func(id string, data []byte) error {
		r, err := s.decode(kind, id, data, fresh)
		if err != nil {
			return err
		}
		if withStatus {
			if r.Status, err = s.getStatus(tx, id); err != nil {
				return err
			}
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func decodeRecord(kind model.Kind, data []byte) (*model.Resource, error) {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decoding a stored %s: %w", kind.Title(), err)
	}
	spec, err := model.DecodeSpec(kind, rec.Spec, false)
	if err != nil {
		return nil, fmt.Errorf("decoding the spec of %s: %w", rec.ID, err)
	}
	return &model.Resource{ID: rec.ID, Name: rec.Name, Generation: rec.Generation, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Spec: spec}, nil
}

func (s *Store) getStatus(tx Tx, id string) (model.Status, error) {
	data, err := tx.Get(BucketStatus, id)
	if errors.Is(err, ErrNotFound) {
		return initialStatus, nil
	}
	if err != nil {
		return model.Status{}, fmt.Errorf("reading status of %s: %w", id, err)
	}
	return s.decoded.status(id, data)
}

func decodeStatus(id string, data []byte) (model.Status, error) {
	var st model.Status
	if err := json.Unmarshal(data, &st); err != nil {
		return model.Status{}, fmt.Errorf("decoding status of %s: %w", id, err)
	}
	return st, nil
}

// decodeCache keeps the last decoded form of each stored record and
// status with the bytes it was decoded from. A lookup whose bytes match
// returns the cached value without decoding; any other bytes (a write by
// this process or, on a shared backend, another) are decoded afresh. So
// the cache is never stale, only sometimes cold.
//
// A cached Resource's Spec is shared by every reader: readers must treat
// specs they read from the store as immutable (they always have: the
// store decodes, never patches, a stored spec).
type decodeCache struct {
	mu       sync.Mutex
	objects  map[string]cachedObject
	statuses map[string]cachedStatus
}

type cachedObject struct {
	kind model.Kind
	data []byte
	r    *model.Resource
}

type cachedStatus struct {
	data []byte
	st   model.Status
}

// record returns the decoded record stored as data: a fresh Resource
// (the caller may set its Status) over a possibly shared Spec.
func (c *decodeCache) record(kind model.Kind, id string, data []byte) (*model.Resource, error) {
	c.mu.Lock()
	e, ok := c.objects[id]
	c.mu.Unlock()
	if !ok || e.kind != kind || !bytes.Equal(e.data, data) {
		r, err := decodeRecord(kind, data)
		if err != nil {
			return nil, err
		}
		e = cachedObject{kind: kind, data: bytes.Clone(data), r: r}
		c.mu.Lock()
		c.objects[id] = e
		c.mu.Unlock()
	}
	cp := *e.r
	return &cp, nil
}

func (c *decodeCache) status(id string, data []byte) (model.Status, error) {
	c.mu.Lock()
	e, ok := c.statuses[id]
	c.mu.Unlock()
	if ok && bytes.Equal(e.data, data) {
		return e.st, nil
	}
	st, err := decodeStatus(id, data)
	if err != nil {
		return model.Status{}, err
	}
	c.mu.Lock()
	c.statuses[id] = cachedStatus{data: bytes.Clone(data), st: st}
	c.mu.Unlock()
	return st, nil
}

// forget drops an object's entries (it was deleted).
func (c *decodeCache) forget(id string) {
	c.mu.Lock()
	delete(c.objects, id)
	delete(c.statuses, id)
	c.mu.Unlock()
}

func putStatus(tx Tx, id string, st model.Status) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding status: %w", err)
	}
	return tx.Put(BucketStatus, id, data)
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random id with the kind's prefix ("gw_k3j...").
func newID(kind model.Kind) (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating an id: %w", err)
	}
	return kind.IDPrefix() + idEncoding.EncodeToString(b), nil
}

// Snapshot is every object, read in one transaction, and the revision it
// reflects. The objects' Specs are shared with the store's decode cache
// and later snapshots: a reader must not modify them.
type Snapshot struct {
	Revision uint64
	Objects  map[model.Kind][]*model.Resource
}

// Snapshot reads every object of every kind consistently.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	snap := &Snapshot{Objects: map[model.Kind][]*model.Resource{}}
	err := s.backend.View(ctx, func(tx Tx) error {
		rev, err := tx.Get(BucketMeta, RevisionKey)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("reading the revision: %w", err)
		case len(rev) == 8:
			snap.Revision = binary.BigEndian.Uint64(rev)
		default:
			return fmt.Errorf("the stored revision is %d bytes, want 8", len(rev))
		}
		for _, k := range model.Kinds {
			if snap.Objects[k], err = s.listObjects(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}
