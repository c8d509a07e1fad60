package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
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
