// Package logging provides the appliance's log output: JSON lines (log/slog)
// written through a buffer, so that the data path's line per request does
// not cost a write(2) per request.
//
// Lines below WARN wait in the buffer for at most FlushInterval (or until
// it holds BufferSize bytes); a WARN or ERROR line is written at once,
// together with everything before it, so an alert is never held back.
// Close (or Flush) writes what is left: a process that exits without it
// can lose the last FlushInterval of INFO and DEBUG lines, never a warning.
package logging

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the buffered writer.
const (
	// FlushInterval bounds how long a line waits in the buffer.
	FlushInterval = 50 * time.Millisecond
	// BufferSize is the size at which the buffer is written at once.
	BufferSize = 64 << 10
)

// Writer buffers whole lines for an underlying writer (stderr, a file). It
// is safe for concurrent use; each Write must be one or more whole lines,
// as slog handlers write them.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	timer  *time.Timer
	armed  bool
	closed bool
	err    error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	bw := &Writer{w: w, buf: make([]byte, 0, BufferSize)}
	bw.timer = time.AfterFunc(time.Hour, func() { _ = bw.Flush() })
	bw.timer.Stop()
	return bw
}

// Write appends p to the buffer, writing the buffer out when it is full.
// After Close, p is written through at once.
func (bw *Writer) Write(p []byte) (int, error) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if bw.closed {
		return bw.w.Write(p)
	}
	if len(bw.buf)+len(p) > BufferSize {
		if err := bw.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > BufferSize {
			return bw.w.Write(p)
		}
	}
	bw.buf = append(bw.buf, p...)
	if !bw.armed {
		bw.armed = true
		bw.timer.Reset(FlushInterval)
	}
	return len(p), nil
}

// Flush writes the buffered lines out.
func (bw *Writer) Flush() error {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	return bw.flushLocked()
}

func (bw *Writer) flushLocked() error {
	if bw.armed {
		bw.armed = false
		bw.timer.Stop()
	}
	if len(bw.buf) == 0 {
		return bw.err
	}
	_, err := bw.w.Write(bw.buf)
	bw.buf = bw.buf[:0]
	if err != nil && bw.err == nil {
		// Kept for Close; a log line has no caller to report to.
		bw.err = err
	}
	return err
}

// Close writes the buffered lines out; later writes go straight through.
// It does not close the underlying writer.
func (bw *Writer) Close() error {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	err := bw.flushLocked()
	bw.closed = true
	return err
}

// New returns a JSON logger at level that writes through a Writer on w,
// and that Writer, which the caller closes when the process ends.
func New(w io.Writer, level slog.Leveler) (*slog.Logger, *Writer) {
	bw := NewWriter(w)
	h := slog.NewJSONHandler(bw, &slog.HandlerOptions{Level: level})
	return slog.New(&flushHandler{Handler: h, w: bw}), bw
}

// flushHandler writes the buffer out after every WARN or ERROR record.
type flushHandler struct {
	slog.Handler
	w *Writer
}

// Handle implements slog.Handler.
func (h *flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// WithAttrs implements slog.Handler.
func (h *flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w}
}

// WithGroup implements slog.Handler.
func (h *flushHandler) WithGroup(name string) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}
