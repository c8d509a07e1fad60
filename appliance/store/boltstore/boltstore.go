// Package boltstore is the embedded store.Backend: a single bbolt file in
// the appliance's data dir.
//
// Every bucket of the store (including names with a '/', such as
// "objects/gateway") is a flat top-level bolt bucket, created on first
// write. The revision counter lives in store.BucketMeta under store.RevisionKey
// and is advanced inside the same bolt transaction as the writes it counts,
// so a crash can never separate the two.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
)

// DefaultLockTimeout is how long Open waits for the file lock held by
// another process before giving up.
const DefaultLockTimeout = 2 * time.Second

// ErrReadOnly is returned by Tx.Put, Tx.Delete and Tx.NextSequence inside
// a View transaction.
var ErrReadOnly = errors.New("boltstore: write in a read-only transaction")

// ErrInUse is wrapped by Open's error when another process (normally
// another sallyportd) holds the database file's lock.
var ErrInUse = errors.New("data dir is in use by another sallyportd")

// Compile-time checks that the bolt types satisfy the store interfaces.
var (
	_ store.Backend            = (*Backend)(nil)
	_ store.UnversionedUpdater = (*Backend)(nil)
	_ store.Tx                 = (*tx)(nil)
)

// Option configures Open.
type Option func(*config)

type config struct {
	lockTimeout time.Duration
}

// WithLockTimeout sets how long Open waits for the database file's lock
// (DefaultLockTimeout when unset). A value <= 0 means the default, never
// "wait forever": a daemon hanging silently on a stale lock is worse than
// one that exits with a clear error.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.lockTimeout = d
		}
	}
}

// Backend is a store.Backend on a bbolt file. It is safe for concurrent
// use.
type Backend struct {
	db   *bolt.DB
	path string

	mu           sync.Mutex // guards the fields below
	subs         map[*subscription]struct{}
	lastNotified uint64
	closed       bool
}

type subscription struct {
	ch chan uint64
}

// Open opens the bolt database at path, creating the file (mode 0600) if it
// does not exist. The file's directory must exist. If another process holds
// the file's lock for longer than the lock timeout, Open fails with an
// error wrapping ErrInUse.
func Open(path string, opts ...Option) (*Backend, error) {
	cfg := config{lockTimeout: DefaultLockTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: cfg.lockTimeout,
		// Durability is the Backend contract: every committed Update is
		// fsynced before it returns.
		NoSync: false,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (its lock was not released within %s): %w",
				path, ErrInUse, cfg.lockTimeout, err)
		}
		return nil, fmt.Errorf("open bolt database %s: %w", path, err)
	}
	return &Backend{
		db:   db,
		path: path,
		subs: make(map[*subscription]struct{}),
	}, nil
}

// Name returns "bolt".
func (b *Backend) Name() string { return "bolt" }

// Path returns the database file's path.
func (b *Backend) Path() string { return b.path }

// View runs fn in a read-only transaction.
func (b *Backend) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(btx *bolt.Tx) error {
		return fn(&tx{btx: btx})
	})
}

// Update runs fn in a read-write transaction, advances the revision in the
// same transaction, commits (fsync) and then notifies subscribers. If fn
// returns an error nothing is written and the revision is unchanged.
func (b *Backend) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := b.db.Update(func(btx *bolt.Tx) error {
		// Waiting for bolt's single writer lock can take a while; don't
		// start work for a caller that has already gone.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(&tx{btx: btx, writable: true}); err != nil {
			return err
		}
		meta, err := btx.CreateBucketIfNotExists([]byte(store.BucketMeta))
		if err != nil {
			return fmt.Errorf("create bucket %q: %w", store.BucketMeta, err)
		}
		rev = decodeRevision(meta.Get([]byte(store.RevisionKey))) + 1
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], rev)
		if err := meta.Put([]byte(store.RevisionKey), buf[:]); err != nil {
			return fmt.Errorf("store revision: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	b.notify(rev)
	return rev, nil
}

// UpdateUnversioned runs fn in a read-write transaction and commits it
// (fsync) like Update, but leaves the revision alone and notifies nobody:
// it is for writes that are not configuration (store.UnversionedUpdater).
func (b *Backend) UpdateUnversioned(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(btx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(&tx{btx: btx, writable: true})
	})
}

// Revision returns the revision of the last committed Update (0 for a new
// database).
func (b *Backend) Revision(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := b.db.View(func(btx *bolt.Tx) error {
		if meta := btx.Bucket([]byte(store.BucketMeta)); meta != nil {
			rev = decodeRevision(meta.Get([]byte(store.RevisionKey)))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// decodeRevision reads the stored counter; a missing value is revision 0.
func decodeRevision(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Subscribe returns a channel receiving the newest revision after each
// committed Update. The channel holds at most one value: a newer revision
// replaces an unread older one. cancel unregisters and closes the channel;
// it is safe to call more than once and after Close. After Close the
// channel is closed.
func (b *Backend) Subscribe() (<-chan uint64, func()) {
	s := &subscription{ch: make(chan uint64, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	return s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		// Close only if still registered: Close may have closed it already.
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// notify delivers rev to every subscriber without blocking. Concurrent
// Updates may reach here out of commit order, so an older revision than
// one already sent is dropped rather than overwriting the newer one.
func (b *Backend) notify(rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || rev <= b.lastNotified {
		return
	}
	b.lastNotified = rev
	for s := range b.subs {
		// Drain then send: both non-blocking, and we are the only sender
		// (b.mu), so the send always finds room.
		select {
		case <-s.ch:
		default:
		}
		select {
		case s.ch <- rev:
		default:
		}
	}
}

// Close waits for running transactions, closes the database and closes
// every subscriber channel. Calling Close again is a no-op.
func (b *Backend) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for s := range b.subs {
			close(s.ch)
		}
		b.subs = nil
	}
	b.mu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close bolt database %s: %w", b.path, err)
	}
	return nil
}

// tx adapts a bolt transaction to store.Tx.
type tx struct {
	btx      *bolt.Tx
	writable bool
	// writes counts mutations so Scan can tell that its callback changed
	// the tree and its cursor must be repositioned.
	writes uint64
}

// Get returns a copy of the value under key, or store.ErrNotFound. The
// copy stays valid after the transaction ends.
func (t *tx) Get(bucket, key string) ([]byte, error) {
	bk := t.btx.Bucket([]byte(bucket))
	if bk == nil {
		return nil, store.ErrNotFound
	}
	v := bk.Get([]byte(key))
	if v == nil {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

// Put stores a copy of value under key, creating the bucket if needed.
func (t *tx) Put(bucket, key string, value []byte) error {
	if err := t.checkWrite(bucket, key); err != nil {
		return fmt.Errorf("put %s/%q: %w", bucket, key, err)
	}
	bk, err := t.btx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	// bolt keeps a reference to value until commit; copy so the caller may
	// reuse its buffer. A nil value is stored as an empty one, so Get finds it.
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	if err := bk.Put([]byte(key), v); err != nil {
		return fmt.Errorf("put %s/%q: %w", bucket, key, err)
	}
	t.writes++
	return nil
}

// Delete removes key; a missing bucket or key is not an error.
func (t *tx) Delete(bucket, key string) error {
	if err := t.checkWrite(bucket, key); err != nil {
		return fmt.Errorf("delete %s/%q: %w", bucket, key, err)
	}
	bk := t.btx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	if err := bk.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %s/%q: %w", bucket, key, err)
	}
	t.writes++
	return nil
}

// Scan calls fn for each key >= from in byte-wise order. fn may Put or
// Delete, including in the bucket being scanned: the cursor is
// repositioned after any write so no key is skipped or repeated (keys
// written past the current one may or may not be visited).
func (t *tx) Scan(bucket, from string, fn func(key string, value []byte) error) error {
	bk := t.btx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	for k, v := c.Seek([]byte(from)); k != nil; {
		if v == nil {
			// A nested bucket; the store never makes one, skip it.
			k, v = c.Next()
			continue
		}
		key := string(k) // copies: k may be invalidated by writes in fn
		before := t.writes
		if err := fn(key, v); err != nil {
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
		if t.writes != before {
			k, v = c.Seek([]byte(key))
			if k != nil && string(k) == key {
				k, v = c.Next()
			}
			continue
		}
		k, v = c.Next()
	}
	return nil
}

// NextSequence returns the bucket's next sequence number, creating the
// bucket if needed. bolt rolls the sequence back with the transaction, so
// it is strictly increasing across committed transactions.
func (t *tx) NextSequence(bucket string) (uint64, error) {
	if !t.writable {
		return 0, fmt.Errorf("next sequence of %s: %w", bucket, ErrReadOnly)
	}
	bk, err := t.btx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return 0, fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	seq, err := bk.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("next sequence of %s: %w", bucket, err)
	}
	return seq, nil
}

// checkWrite refuses writes in View transactions and to the revision
// counter, which only Update may advance.
func (t *tx) checkWrite(bucket, key string) error {
	if !t.writable {
		return ErrReadOnly
	}
	if bucket == store.BucketMeta && key == store.RevisionKey {
		return errors.New("the revision counter is owned by the backend")
	}
	return nil
}
