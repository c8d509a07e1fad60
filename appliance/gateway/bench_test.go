package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// BenchmarkProxy measures one allowed GET through the gateway (client
// certificate identity, binding check, injected credential, request log
// discarded) to a keep-alive HTTP/2 executor. Allocations include the
// client's and the executor's.
func BenchmarkProxy(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		b.Run(map[bool]string{false: "client=HTTP1", true: "client=HTTP2"}[h2], func(b *testing.B) {
			e := newEnv(b, func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) })
			x := e.executor(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
			c := e.connection("c1", x.URL)
			g := e.gateway("g1", apiHost)
			g.Connections = []*Connection{c}
			e.apply(&Runtime{Gateways: []*Gateway{g}})
			cl := e.client(e.planner, h2)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := cl.Get("https://api.test/bench")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkProxyMasking4KiBJSON measures one allowed GET of a 4 KiB JSON
// response through the gateway (HTTP/2 client), against the same
// connection with masking rules (two json_paths, one of them hashed, and
// the email detector): the ratio of the two is masking's cost end to end.
func BenchmarkProxyMasking4KiBJSON(b *testing.B) {
	doc := jsonDoc4KiB()
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "masking=off", true: "masking=on"}[on], func(b *testing.B) {
			e := newEnv(b, func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) })
			x := e.executor(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(doc)
			})
			c := e.connection("c1", x.URL)
			if on {
				c.Masker = masker(b, model.MaskingRule{JSONPath: "$.data[*].password"},
					model.MaskingRule{JSONPath: "$..token", Replacement: model.ReplaceHash}, model.MaskingRule{Detector: "email"})
			}
			g := e.gateway("g1", apiHost)
			g.Connections = []*Connection{c}
			e.apply(&Runtime{Gateways: []*Gateway{g}})
			cl := e.client(e.planner, true)
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := cl.Get("https://api.test/bench")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// jsonDoc4KiB is a page of user records, 4 KiB.
func jsonDoc4KiB() []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"page":1,"data":[`)
	for i := 0; buf.Len() < 4096-200; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":%d,"name":"User Number %d","email":"user%d@example.com","password":"$2a$10$abcdefghijklmnopqrstuv","token":"tok_%08d","active":true}`, i, i, i, i)
	}
	buf.WriteString(`],"next":null}`)
	for buf.Len() < 4096 {
		buf.WriteByte(' ')
	}
	return buf.Bytes()
}
