// Package store keeps the appliance's desired state: the objects of the
// model, their sealed secrets, their reconcile status and the audit log.
//
// It is two layers. A Backend is a small transactional key-value engine
// (bbolt on local disk by default, PostgreSQL when several appliances share
// state); the Store on top of it holds every rule (ids, generations,
// referential integrity, name scopes, secret sealing, audit) so that a new
// backend needs none of them.
package store

import (
	"context"
	"errors"
)

// Buckets a Backend must provide. Keys within a bucket are ordered
// byte-wise.
const (
	// BucketMeta holds small appliance-wide values.
	BucketMeta = "meta"
	// BucketSecrets holds sealed secret values, keyed "<object id>\x00<field path>".
	BucketSecrets = "secrets"
	// BucketStatus holds each object's reconcile status, keyed by object id.
	BucketStatus = "status"
	// BucketAudit holds the audit log, keyed by AuditKey(sequence).
	BucketAudit = "audit"
)

// RevisionKey is where a Backend keeps its revision in BucketMeta: an
// 8-byte big-endian counter that Update advances in the same transaction,
// so a reader sees the revision that matches its snapshot.
const RevisionKey = "revision"

// ObjectBucket is the bucket holding the objects of a kind, keyed by id.
func ObjectBucket(kind string) string { return "objects/" + kind }

// ErrNotFound is returned by Tx.Get for a missing key, and wrapped by the
// Store's errors for missing objects.
var ErrNotFound = errors.New("not found")

// ErrStop ends a scan without error when a Scan callback returns it.
var ErrStop = errors.New("stop scan")

// Backend is a transactional key-value engine.
//
// Update must be atomic and durable: when it returns nil every write fn made
// is on stable storage (it survives kill -9 and power loss); when it returns
// an error, none is. Implementations must be safe for concurrent use.
type Backend interface {
	// Name identifies the engine in /v1/status ("bolt", "postgres").
	Name() string
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it if fn
	// returns nil. Each committed Update advances the store's revision by
	// one and returns the new revision.
	Update(ctx context.Context, fn func(Tx) error) (revision uint64, err error)
	// Revision is the revision of the last committed Update (0 for a new
	// store).
	Revision(ctx context.Context) (uint64, error)
	// Subscribe returns a channel that receives the newest revision after
	// each committed Update (by this process or, for shared backends,
	// another appliance). Notifications coalesce: a slow reader sees the
	// latest revision, not every one. cancel releases the subscription.
	Subscribe() (revisions <-chan uint64, cancel func())
	// Close releases the engine; it waits for running transactions.
	Close() error
}

// Tx is a transaction. It must not be used after its callback returns.
type Tx interface {
	// Get returns the value under key, or ErrNotFound. The returned slice
	// is only valid within the transaction.
	Get(bucket, key string) ([]byte, error)
	// Put stores value under key. It fails in a View transaction.
	Put(bucket, key string, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(bucket, key string) error
	// Scan calls fn for each key >= from in key order, until fn returns an
	// error (ErrStop ends the scan quietly). Values are only valid within
	// the callback.
	Scan(bucket, from string, fn func(key string, value []byte) error) error
	// NextSequence returns a bucket-wide sequence number, strictly
	// increasing across committed transactions.
	NextSequence(bucket string) (uint64, error)
}

// UnversionedUpdater is implemented by a Backend that can commit a write
// that is not configuration (an object's reconcile status, a recording's
// anchor, the audit entry of a pruning) without advancing the revision and
// without notifying subscribers: such writes must not wake the reconciler,
// which rebuilds the data path on every revision. The same atomicity and
// durability rules as Update apply. The Store falls back to Update for a
// Backend without it.
type UnversionedUpdater interface {
	UpdateUnversioned(ctx context.Context, fn func(Tx) error) error
}
