package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ackedObject is what an acknowledged write promised about an object.
type ackedObject struct {
	name       string
	generation int64 // the last acknowledged generation
	// pending is set while a replace of the object is in flight: it may
	// have been committed without its acknowledgement reaching us.
	pending bool
}

// crashLedger records every acknowledged write of a crash test.
type crashLedger struct {
	mu      sync.Mutex
	objects map[string]*ackedObject
}

func tlsWrite(name, minVersion string) map[string]any {
	return map[string]any{"name": name, "spec": map[string]any{
		"min_version": minVersion,
		"certificate": map[string]any{"source": "self_signed"},
	}}
}

type writtenObject struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
}

// TestCrashKeepsAcknowledgedWrites kills a real sallyportd with SIGKILL in
// the middle of a burst of concurrent writes, three times over, and checks
// after each restart that every write the API acknowledged is there, that
// the audit log agrees with the objects, and that the bolt file is sound.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	const (
		cycles    = 3
		writers   = 4
		killAfter = 150 // acknowledged writes per cycle before the kill
	)
	dir := filepath.Join(t.TempDir(), "data")
	ledger := &crashLedger{objects: map[string]*ackedObject{}}

	for cycle := range cycles {
		p := startServe(t, dir)
		c := clientFor(t, p)
		verifyCrashState(t, c, ledger)

		crashBurst(t, p, c, ledger, cycle, writers, killAfter)
		checkBoltFile(t, filepath.Join(dir, "sallyport.db"))
	}

	p := startServe(t, dir)
	c := clientFor(t, p)
	verifyCrashState(t, c, ledger)
	c.must(t, 200, "GET", "/readyz", nil)
	p.stop()
	checkBoltFile(t, filepath.Join(dir, "sallyport.db"))
}

// crashBurst runs writers that create TLS settings objects and then bump
// each one to generation 2, until the process is killed once killAfter
// writes have been acknowledged.
func crashBurst(t *testing.T, p *proc, c *adminClient, ledger *crashLedger, cycle, writers, killAfter int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		acked    atomic.Int64
		inFlight atomic.Int64
		killed   atomic.Bool
		killOnce sync.Once
		killNow  = make(chan struct{})
		wg       sync.WaitGroup
	)
	ack := func() {
		if acked.Add(1) >= int64(killAfter) {
			killOnce.Do(func() { close(killNow) })
		}
	}
	// failed reports a write that did not get through. After the kill that
	// is expected and ends the writer; before it, it is a bug.
	failed := func(w int, what string, code int, body []byte, err error) {
		if !killed.Load() {
			t.Errorf("writer %d: %s failed before the kill: status %d, %v: %s", w, what, code, err, body)
		}
	}

	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("crash-c%d-w%d-%d", cycle, w, i)
				inFlight.Add(1)
				code, body, _, err := c.do(ctx, "POST", "/v1/tls-settings", tlsWrite(name, "1.2"))
				inFlight.Add(-1)
				if err != nil || code != 201 {
					failed(w, "create "+name, code, body, err)
					return
				}
				var o writtenObject
				if err := json.Unmarshal(body, &o); err != nil || o.ID == "" || o.Name != name || o.Generation != 1 {
					t.Errorf("writer %d: create %s answered %s (%v)", w, name, body, err)
					return
				}
				ledger.mu.Lock()
				obj := &ackedObject{name: name, generation: 1, pending: true}
				ledger.objects[o.ID] = obj
				ledger.mu.Unlock()
				ack()

				inFlight.Add(1)
				code, body, _, err = c.do(ctx, "PUT", "/v1/tls-settings/"+o.ID, tlsWrite(name, "1.3"), "If-Match", `"1"`)
				inFlight.Add(-1)
				if err != nil || code != 200 {
					failed(w, "replace "+name, code, body, err)
					return
				}
				if err := json.Unmarshal(body, &o); err != nil || o.Generation != 2 {
					t.Errorf("writer %d: replace %s answered %s (%v)", w, name, body, err)
					return
				}
				ledger.mu.Lock()
				obj.generation, obj.pending = 2, false
				ledger.mu.Unlock()
				ack()
			}
		}()
	}

	select {
	case <-killNow:
	case <-ctx.Done():
		t.Fatalf("only %d writes acknowledged before the deadline", acked.Load())
	}
	killed.Store(true)
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup, no flush
		t.Fatalf("kill -9: %v", err)
	}
	t.Logf("cycle %d: killed after %d acknowledged writes, with %d in flight", cycle, acked.Load(), inFlight.Load())
	if code := p.waitExit(20 * time.Second); code != -9 {
		t.Errorf("sallyportd exited with %d, want death by SIGKILL", code)
	}
	wg.Wait()
}

// verifyCrashState checks, against the running appliance, that every
// acknowledged write is there and that objects and audit log agree.
func verifyCrashState(t *testing.T, c *adminClient, ledger *crashLedger) {
	t.Helper()
	var list struct {
		Items []writtenObject `json:"items"`
	}
	if err := json.Unmarshal(c.must(t, 200, "GET", "/v1/tls-settings", nil), &list); err != nil {
		t.Fatal(err)
	}
	stored := map[string]writtenObject{}
	names := map[string]string{}
	for _, o := range list.Items {
		stored[o.ID] = o
		if other, dup := names[o.Name]; dup {
			t.Errorf("two objects named %s after a crash: %s and %s", o.Name, other, o.ID)
		}
		names[o.Name] = o.ID
	}

	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	missing := 0
	for id, want := range ledger.objects {
		got, ok := stored[id]
		switch {
		case !ok:
			missing++
			if missing <= 10 {
				t.Errorf("acknowledged object %s (%s) is gone after the crash", id, want.name)
			}
		case got.Name != want.name:
			t.Errorf("object %s is named %q, acknowledged as %q", id, got.Name, want.name)
		case got.Generation == want.generation:
		case want.pending && got.Generation == want.generation+1:
			// The unacknowledged replace was committed: allowed.
		default:
			t.Errorf("object %s (%s) is at generation %d, acknowledged at %d", id, want.name, got.Generation, want.generation)
		}
		// The appliance is up again: settle what the crash left open.
		if ok {
			want.generation, want.pending = got.Generation, false
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged objects are missing", missing, len(ledger.objects))
	}

	// The audit log, paged through, has one entry per committed write:
	// sequence numbers without gaps, and for each object exactly the
	// writes its generation says happened.
	type auditEntry struct {
		Seq              uint64 `json:"seq"`
		Action           string `json:"action"`
		Kind             string `json:"kind"`
		ObjectID         string `json:"object_id"`
		Name             string `json:"name"`
		GenerationBefore int64  `json:"generation_before"`
		GenerationAfter  int64  `json:"generation_after"`
	}
	var entries []auditEntry
	for after := uint64(0); ; {
		var page struct {
			Items []auditEntry `json:"items"`
		}
		q := url.Values{"after": {fmt.Sprint(after)}, "limit": {"1000"}, "kind": {"tls_settings"}}
		if err := json.Unmarshal(c.must(t, 200, "GET", "/v1/audit?"+q.Encode(), nil), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Items) == 0 {
			break
		}
		entries = append(entries, page.Items...)
		after = page.Items[len(page.Items)-1].Seq
	}
	latest := map[string]int64{}
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			t.Errorf("audit entry %d has seq %d: a gap or a repeat", i+1, e.Seq)
			break
		}
		if e.GenerationBefore != latest[e.ObjectID] || e.GenerationAfter != e.GenerationBefore+1 {
			t.Errorf("audit entry %d (%s %s) goes from generation %d to %d, but the log had it at %d", e.Seq, e.Action, e.ObjectID, e.GenerationBefore, e.GenerationAfter, latest[e.ObjectID])
		}
		latest[e.ObjectID] = e.GenerationAfter
		if want, ok := ledger.objects[e.ObjectID]; ok && e.Name != want.name {
			t.Errorf("audit entry %d names %s %q, want %q", e.Seq, e.ObjectID, e.Name, want.name)
		}
	}
	for id, o := range stored {
		if latest[id] != o.Generation {
			t.Errorf("object %s is at generation %d but its audit entries end at %d", id, o.Generation, latest[id])
		}
	}
	for id, gen := range latest {
		if _, ok := stored[id]; !ok && gen != 0 {
			t.Errorf("the audit log has writes of %s, which does not exist", id)
		}
	}
}

// checkBoltFile opens the store file directly with bbolt, read-only, and
// runs its consistency check.
func checkBoltFile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("opening %s after the crash: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		n := 0
		for err := range tx.Check() { // drain: the checker walks the tx until done
			if n++; n <= 10 {
				t.Errorf("bbolt check: %v", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
