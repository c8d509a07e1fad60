package certificates

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// errStorageClosed is returned by every storage operation after the Manager
// closed, except Unlock.
var errStorageClosed = errors.New("certificate storage is closed")

// guardedStorage wraps certmagic's storage so that Close can wait for the
// operations under way and refuse new ones. certmagic runs renewals in
// process-wide job queues that outlive a cache; without this, one finishing
// after Close could still write to the data directory.
type guardedStorage struct {
	inner interface {
		certmagic.Storage
		certmagic.TryLocker
	}

	mu       sync.Mutex
	idle     *sync.Cond
	closed   bool
	inflight int
	held     map[string]int
}

func newGuardedStorage(inner *certmagic.FileStorage) *guardedStorage {
	s := &guardedStorage{inner: inner, held: make(map[string]int)}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// begin registers an operation, or refuses it after close.
func (s *guardedStorage) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStorageClosed
	}
	s.inflight++
	return nil
}

func (s *guardedStorage) end() {
	s.mu.Lock()
	s.inflight--
	s.idle.Broadcast()
	s.mu.Unlock()
}

// close refuses new operations and waits until none is under way and no
// lock is held, or until timeout.
func (s *guardedStorage) close(timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	deadline := time.Now().Add(timeout)
	// sync.Cond has no timed wait: a timer wakes the waiter at the deadline.
	t := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	for s.inflight > 0 || len(s.held) > 0 {
		if !time.Now().Before(deadline) {
			return fmt.Errorf("certificate storage still busy after %s (%d operations, %d locks)", timeout, s.inflight, len(s.held))
		}
		s.idle.Wait()
	}
	return nil
}

// Lock implements certmagic.Storage.
func (s *guardedStorage) Lock(ctx context.Context, name string) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	if err := s.inner.Lock(ctx, name); err != nil {
		return err
	}
	s.mu.Lock()
	s.held[name]++
	s.mu.Unlock()
	return nil
}

// TryLock implements certmagic.TryLocker.
func (s *guardedStorage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := s.begin(); err != nil {
		return false, err
	}
	defer s.end()
	ok, err := s.inner.TryLock(ctx, name)
	if ok && err == nil {
		s.mu.Lock()
		s.held[name]++
		s.mu.Unlock()
	}
	return ok, err
}

// Unlock implements certmagic.Storage. It works after close too: a lock
// left behind would block the next start until it went stale.
func (s *guardedStorage) Unlock(ctx context.Context, name string) error {
	err := s.inner.Unlock(ctx, name)
	s.mu.Lock()
	if s.held[name] > 0 {
		s.held[name]--
		if s.held[name] == 0 {
			delete(s.held, name)
		}
	}
	s.idle.Broadcast()
	s.mu.Unlock()
	return err
}

// Store implements certmagic.Storage.
func (s *guardedStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return s.inner.Store(ctx, key, value)
}

// Load implements certmagic.Storage.
func (s *guardedStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	return s.inner.Load(ctx, key)
}

// Delete implements certmagic.Storage.
func (s *guardedStorage) Delete(ctx context.Context, key string) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return s.inner.Delete(ctx, key)
}

// Exists implements certmagic.Storage.
func (s *guardedStorage) Exists(ctx context.Context, key string) bool {
	if s.begin() != nil {
		return false
	}
	defer s.end()
	return s.inner.Exists(ctx, key)
}

// List implements certmagic.Storage.
func (s *guardedStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	return s.inner.List(ctx, path, recursive)
}

// Stat implements certmagic.Storage.
func (s *guardedStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := s.begin(); err != nil {
		return certmagic.KeyInfo{}, err
	}
	defer s.end()
	return s.inner.Stat(ctx, key)
}

// String names the underlying storage in certmagic's logs.
func (s *guardedStorage) String() string { return fmt.Sprint(s.inner) }
