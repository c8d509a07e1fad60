package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Group commit: a closed session is queued, and one background goroutine
// makes the queued sessions durable together, every commitInterval or
// every commitBatch sessions, whichever comes first: it fsyncs their files
// (having started the writeback of all of them first, so the filesystem
// journals them in one commit), then each directory they are in once,
// then writes all their anchors in one store transaction. Nothing on a
// request's path waits for a disk sync; Session.Close waits for the commit
// that includes its session.
const (
	// commitInterval is the longest a closed session waits for its
	// commit once the committer is busy (an idle committer starts at
	// once). It is the window a crash can lose: see the package doc.
	commitInterval = 50 * time.Millisecond
	// commitBatch sessions queued start a commit without waiting for the
	// interval.
	commitBatch = 256
	// maxPending bounds the sessions closed but not yet committed (each
	// holds its file open). At the bound, StartSession waits for room.
	maxPending = 1024
	// backpressureWait is the longest StartSession waits for room before
	// it applies the connection's policy (refuse: 503; continue: the
	// session runs unrecorded and is counted under reason "backlog").
	backpressureWait = 2 * time.Second
)

// errBacklog says the committer is too far behind to take a new session.
var errBacklog = errors.New("recording commits are behind: too many sessions waiting for their fsync")

// commitReq is one closed session waiting for its commit.
type commitReq struct {
	f      *os.File
	path   string
	anchor Anchor

	syncErr   error // the file or its directory could not be synced
	anchorErr error // synced but not anchored
	done      chan struct{}
}

type committer struct {
	r    *Recorder
	wake chan struct{} // something is queued
	full chan struct{} // commitBatch sessions are queued
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	queue   []*commitReq
	pending int           // queued or being committed
	room    chan struct{} // closed (and replaced) when pending drops
	stopped bool
	dirs    map[string]bool // directories created since the last commit
}

func newCommitter(r *Recorder) *committer {
	c := &committer{
		r: r, wake: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), room: make(chan struct{}), dirs: map[string]bool{},
	}
	go c.run()
	return c
}

// admit waits (boundedly) until the queue has room for one more session.
func (c *committer) admit(ctx context.Context) error {
	var timer *time.Timer
	for {
		c.mu.Lock()
		if c.pending < maxPending || c.stopped {
			c.mu.Unlock()
			return nil
		}
		room := c.room
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(backpressureWait)
			defer timer.Stop()
		}
		select {
		case <-room:
		case <-timer.C:
			return fmt.Errorf("%w (%d)", errBacklog, maxPending)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dirCreated notes a directory created under the recordings dir: the
// next commit syncs its parent, so that the directory entry is durable.
func (c *committer) dirCreated(dir string) {
	c.mu.Lock()
	c.dirs[filepath.Dir(dir)] = true
	c.mu.Unlock()
}

// enqueue queues a closed session; its done channel is closed once it is
// committed or failed. Once the committer has stopped (Recorder.Close),
// the caller commits it itself.
func (c *committer) enqueue(req *commitReq) {
	c.mu.Lock()
	if c.stopped {
		c.pending++
		c.mu.Unlock()
		c.commit([]*commitReq{req})
		return
	}
	c.queue = append(c.queue, req)
	c.pending++
	n := len(c.queue)
	c.mu.Unlock()
	signal(c.wake)
	if n >= commitBatch {
		signal(c.full)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *committer) run() {
	defer close(c.done)
	var last time.Time
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.drain()
			return
		}
		if wait := commitInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.full:
			case <-c.stop:
			}
			t.Stop()
		}
		last = time.Now()
		c.commitQueued()
	}
}

// drain stops the committer after committing everything queued.
func (c *committer) drain() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.commitQueued()
}

func (c *committer) commitQueued() {
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	if len(batch) > 0 {
		c.commit(batch)
	}
}

// close stops the committer once what is queued is committed.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}

// commit makes a batch durable: files, then directories, then anchors.
func (c *committer) commit(batch []*commitReq) {
	for _, req := range batch {
		startWriteback(req.f)
	}
	for _, req := range batch {
		if err := req.f.Sync(); err != nil {
			req.syncErr = fmt.Errorf("syncing %s: %w", req.path, err)
		}
		req.f.Close()
	}
	// A directory entry must be durable before the store says the session
	// exists: an anchor without its file reads as a deletion.
	c.mu.Lock()
	dirs := c.dirs
	c.dirs = map[string]bool{}
	c.mu.Unlock()
	for _, req := range batch {
		if req.syncErr == nil {
			dirs[filepath.Dir(req.path)] = true
		}
	}
	dirErr := map[string]error{}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			dirErr[dir] = err
		}
	}
	var anchors []*anchorReq
	var anchored []*commitReq
	for _, req := range batch {
		if req.syncErr == nil {
			req.syncErr = dirErr[filepath.Dir(req.path)]
		}
		if req.syncErr == nil {
			anchors = append(anchors, &anchorReq{a: req.anchor, done: make(chan struct{})})
			anchored = append(anchored, req)
		}
	}
	if len(anchors) > 0 {
		c.r.anchors.commit(anchors)
		for i, req := range anchored {
			req.anchorErr = anchors[i].err
		}
	}
	c.mu.Lock()
	c.pending -= len(batch)
	close(c.room)
	c.room = make(chan struct{})
	c.mu.Unlock()
	for _, req := range batch {
		close(req.done)
	}
}
