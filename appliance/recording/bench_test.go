package recording

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"
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

// BenchmarkExchange records one small exchange per iteration in a session
// kept open (as the gateway does for a keep-alive connection): a
// decision, the request, a 64-byte response, one write.
func BenchmarkExchange(b *testing.B) {
	f := newBenchFixture(b)
	body := []byte(`{"id":12345,"name":"sallyport","ok":true,"tags":["a","b","c"]}` + "\n")
	reqHdr := http.Header{
		"User-Agent": {"sallyport-bench"}, "Accept": {"*/*"}, "X-Request-Id": {"5f2b9c4e0a1d-1abc"},
		"Forwarded": {`for="127.0.0.1";host="api.bench.test";proto=https`}, "Authorization": {"Bearer executor-credential-1"},
	}
	respHdr := http.Header{"Content-Type": {"application/json"}, "Content-Length": {"64"}, "Date": {"Wed, 25 Nov 2026 22:00:00 GMT"}}
	info := testInfo()
	info.Secrets = []string{"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGFubmVyIn0.c2lnbmF0dXJl", "Bearer executor-credential-1"}
	s, err := f.StartSession(context.Background(), info, testPolicy)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		ex := s.Exchange("5f2b9c4e0a1d-1abc")
		_ = ex.Decision(Decision{Kind: "binding", Outcome: "allow", Rule: "binding-1"})
		_ = ex.HTTPRequest(HTTPRequest{Method: "GET", Scheme: "https", Host: "api.bench.test", Path: "/recorded/json64", Proto: "HTTP/1.1", Header: reqHdr})
		_ = ex.HTTPResponse(HTTPResponse{Status: 200, Proto: "HTTP/1.1", Header: respHdr, Body: body, BodySize: int64(len(body)), Latency: time.Millisecond, Duration: time.Millisecond})
		if err := ex.End(); err != nil {
			b.Fatal(err)
		}
	}
}
