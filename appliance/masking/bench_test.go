package masking

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
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
