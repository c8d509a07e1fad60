// Package bench is the harness behind `make bench`: it runs Sallyport and
// the proxies a user would otherwise deploy (nginx, Caddy, a bare Go
// httputil.ReverseProxy) side by side on loopback, in front of the same TLS
// executor, drives them with its own load generator and writes the figures,
// with ratios between peers of the same run, to docs/benchmarks.md.
//
// It is not a test: nothing here asserts a target. The peers terminate TLS
// 1.3 with the same ECDSA P-256 certificate (issued by a throw-away CA from
// package pki) and re-encrypt to the executor, whose certificate they
// verify. Sallyport runs as the real sallyportd, configured through its
// admin API with the Go client, with OIDC tokens from a real OpenID
// provider (package devidp) running in the harness.
//
// Where the machine has two CPUs or more, the servers (the proxy under test
// and the executor) are pinned to one CPU and the harness with its load
// generator to another, so that a peer's figures measure the peer and not
// the load generator's share of a CPU.
//
// The load generator speaks HTTP/1.1 over tls.Conn itself (a request is a
// fixed byte string, a response is read with http.ReadResponse) and HTTP/2
// through golang.org/x/net/http2 client connections, one per connection it
// opens, so that the number of connections and streams is exactly the one
// asked for.
package bench
