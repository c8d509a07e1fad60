package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is a concurrency-safe destination that counts the writes it gets.
type sink struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *sink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *sink) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func TestInfoLinesAreBatchedAndFlushedWithinTheInterval(t *testing.T) {
	var out sink
	log, w := New(&out, slog.LevelInfo)
	defer w.Close()
	for i := range 100 {
		log.Info("request", "n", i)
	}
	// Nobody flushes: the lines must arrive on their own, in a few writes
	// (one, unless the interval ended while they were being logged).
	deadline := time.Now().Add(20 * FlushInterval)
	for len(out.lines()) < 100 && time.Now().Before(deadline) {
		time.Sleep(FlushInterval / 5)
	}
	lines := out.lines()
	if len(lines) != 100 {
		t.Fatalf("got %d lines %v after the flush interval, want 100", len(lines), 20*FlushInterval)
	}
	if n := out.writeCount(); n > 3 {
		t.Errorf("100 INFO lines took %d writes, want them batched", n)
	}
	for i, l := range lines {
		var rec struct {
			Msg string `json:"msg"`
			N   int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.N != i {
			t.Fatalf("line %d = %q (%v): lines must stay whole and in order", i, l, err)
		}
	}
}

func TestWarningIsWrittenAtOnceWithWhatPrecedesIt(t *testing.T) {
	var out sink
	log, w := New(&out, slog.LevelInfo)
	defer w.Close()
	log.Info("before")
	log.Warn("alert")
	lines := out.lines()
	if len(lines) != 2 || !strings.Contains(lines[0], `"before"`) || !strings.Contains(lines[1], `"alert"`) {
		t.Fatalf("after a WARN the output is %q, want the INFO line then the WARN line", out.String())
	}
	child := log.With("component", "gateway").WithGroup("g")
	child.Error("failed", "k", "v")
	if !strings.Contains(out.String(), `"failed"`) {
		t.Fatalf("an ERROR through a derived logger was held back: %q", out.String())
	}
}

func TestCloseWritesTheRestAndLaterLinesGoThrough(t *testing.T) {
	var out sink
	log, w := New(&out, slog.LevelDebug)
	log.Debug("pending")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"pending"`) {
		t.Fatalf("Close did not write the buffered line: %q", out.String())
	}
	log.Info("after close")
	if !strings.Contains(out.String(), `"after close"`) {
		t.Fatalf("a line after Close was not written through: %q", out.String())
	}
}

func TestFullBufferIsWrittenAndOversizedLinesPassThrough(t *testing.T) {
	var out sink
	w := NewWriter(&out)
	defer w.Close()
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range BufferSize / len(line) {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if out.writeCount() != 0 {
		t.Fatalf("a buffer that is not over BufferSize was written")
	}
	if _, err := w.Write(line); err != nil {
		t.Fatal(err)
	}
	if got := len(out.String()); got != BufferSize {
		t.Fatalf("after overflowing, %d bytes were written, want the full buffer (%d)", got, BufferSize)
	}
	big := []byte(strings.Repeat("y", 2*BufferSize) + "\n")
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), string(big)) {
		t.Fatalf("an oversized line was not written through, after the buffered one")
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	var out sink
	log, w := New(&out, slog.LevelInfo)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				log.Info("line", "g", g, "i", i, "pad", strings.Repeat("p", 200))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range out.lines() {
		var rec struct{ G, I int }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("torn line %q: %v", l, err)
		}
		seen[fmt.Sprint(rec.G, "/", rec.I)] = true
	}
	if len(seen) != 8*500 {
		t.Fatalf("got %d distinct lines, want %d", len(seen), 8*500)
	}
}
