package masking

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// doc4KiB is a typical 4 KiB API response: a page of user records with
// a password hash, a token and an email each.
func doc4KiB() []byte {
	var b bytes.Buffer
	b.WriteString(`{"page":1,"data":[`)
	for i := 0; b.Len() < 4096-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"User Number %d","email":"user%d@example.com","password":"$2a$10$abcdefghijklmnopqrstuv","token":"tok_%08d","active":true,"score":%d.5}`, i, i, i, i, i*7)
	}
	b.WriteString(`],"next":null}`)
	for b.Len() < 4096 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// BenchmarkMask4KiBJSON masks a 4 KiB JSON response, against passing it
// through: the cost masking adds per response.
func BenchmarkMask4KiBJSON(b *testing.B) {
	doc := doc4KiB()
	h := http.Header{"Content-Type": {"application/json"}}
	run := func(b *testing.B, rules []model.MaskingRule) {
		m, err := Compile(rules, Options{HashKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			rd, err := m.Wrap(h.Clone(), io.NopCloser(bytes.NewReader(doc)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rd); err != nil {
				b.Fatal(err)
			}
			_ = rd.Close()
		}
	}
	b.Run("passthrough", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		buf := make([]byte, 32<<10)
		for b.Loop() {
			if _, err := io.CopyBuffer(io.Discard, io.NopCloser(bytes.NewReader(doc)), buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json_paths", func(b *testing.B) {
		run(b, []model.MaskingRule{{JSONPath: "$.data[*].password"}, {JSONPath: "$..token", Replacement: model.ReplaceHash}})
	})
	b.Run("paths+email", func(b *testing.B) {
		run(b, []model.MaskingRule{{JSONPath: "$.data[*].password"}, {JSONPath: "$..token", Replacement: model.ReplaceHash}, {Detector: "email"}})
	})
	b.Run("paths+all_detectors", func(b *testing.B) {
		rules := []model.MaskingRule{{JSONPath: "$.data[*].password"}, {JSONPath: "$..token", Replacement: model.ReplaceHash}}
		for _, d := range model.MaskingDetectors {
			rules = append(rules, model.MaskingRule{Detector: d})
		}
		run(b, rules)
	})
}

// benchJSON64 and benchJSON4K are the executor's responses of the
// end-to-end benchmark (appliance/bench/executor.go: JSON64, JSON4K),
// rebuilt here so that this package does not import the harness.
func benchJSON64() []byte {
	return benchPad(`{"status":"ok","token":"tok_5f2b9c4e","pad":"`, `"}`, 64)
}

func benchJSON4K() []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := range 24 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"job-%03d","owner":"user-%03d@example.com","token":"tok_%08x","state":"done"}`, i, i, i, i*2654435761)
	}
	b.WriteString(`],"pad":"`)
	return benchPad(b.String(), `"}`, 4096)
}

func benchPad(head, tail string, size int) []byte {
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// BenchmarkMaskBenchRows is the end-to-end benchmark's masking connection
// (one rule, json_path $..token) on its 64-byte and 4 KiB responses, used
// as the gateway uses a Reader: Wrap, Prefetch, read, Close.
func BenchmarkMaskBenchRows(b *testing.B) {
	m, err := Compile([]model.MaskingRule{{JSONPath: "$..token"}}, Options{HashKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	for _, row := range []struct {
		name string
		doc  []byte
	}{{"64", benchJSON64()}, {"4k", benchJSON4K()}} {
		b.Run(row.name, func(b *testing.B) {
			h := http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(row.doc))}}
			hdr := make(http.Header, 2)
			body := &nopCloserReader{}
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(row.doc)))
			b.ReportAllocs()
			for b.Loop() {
				clear(hdr)
				for k, v := range h {
					hdr[k] = v
				}
				body.Reset(row.doc)
				rd, err := m.Wrap(hdr, body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rd.Prefetch(); err != nil {
					b.Fatal(err)
				}
				for {
					_, err := rd.Read(buf)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				_ = rd.Close()
			}
		})
	}
}

// nopCloserReader is a reusable body, so that the benchmark counts the
// masking's allocations only.
type nopCloserReader struct{ bytes.Reader }

func (*nopCloserReader) Close() error { return nil }
