package recording

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"
)

// BenchmarkHTTPSession records one session per iteration: session_start,
// a request and a 4 KiB response, the signed manifest, fsync and anchor.
func BenchmarkHTTPSession(b *testing.B) {
	f := newBenchFixture(b)
	body := bytes.Repeat([]byte(`{"k":"v","n":12345}`), 4096/20)
	hdr := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer x"}}
	info := testInfo()
	info.Secrets = []string{"planner-token-value-0123456789"}
	b.ReportAllocs()
	for b.Loop() {
		s, err := f.StartSession(context.Background(), info, testPolicy)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.HTTPRequest(HTTPRequest{Method: "GET", Path: "/v1/items", Header: hdr})
		_ = s.HTTPResponse(HTTPResponse{Status: 200, Header: hdr, Body: body, BodySize: int64(len(body))})
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func newBenchFixture(b *testing.B) *Recorder {
	b.Helper()
	dir := b.TempDir()
	st, _ := openStore(b, filepath.Join(dir, "sallyport.db"))
	rec, err := New(Options{Dir: dir, Anchors: st, FreeSpace: func(string) (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Close() })
	return rec
}

// BenchmarkHTTPSessionParallel is BenchmarkHTTPSession from concurrent
// goroutines: anchors of sessions ending together share a commit.
func BenchmarkHTTPSessionParallel(b *testing.B) {
	rec := newBenchFixture(b)
	body := bytes.Repeat([]byte(`{"k":"v","n":12345}`), 4096/20)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := rec.StartSession(context.Background(), testInfo(), testPolicy)
			if err != nil {
				b.Error(err)
				return
			}
			_ = s.HTTPResponse(HTTPResponse{Status: 200, Body: body, BodySize: int64(len(body))})
			if err := s.Close(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
