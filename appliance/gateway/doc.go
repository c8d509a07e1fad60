// Package gateway is Sallyport's data path: it terminates planners' TLS,
// identifies the caller, checks the connection's identity bindings, and
// forwards the request over a separate, verified TLS session to the
// executor, with the executor's credentials injected on the way.
//
// The reconciler builds an immutable [Runtime] and hands it to
// [Server.Apply], which validates it, opens the listeners it needs, and
// swaps the routing table atomically. Listeners, keep-alive connections and
// upstream connection pools survive a swap; requests in flight finish on
// the version they started with.
//
// # Routing
//
// A listener serves every gateway that shares its address. The TLS server
// name (SNI) picks the gateway (exact name first, then a "*.example.com"
// wildcard); a handshake without SNI, or for a name no gateway serves, is
// refused: there is no fallback certificate. A name that belongs to a tcp
// connection is spliced to that executor as a byte stream. Otherwise the
// connection speaks HTTP/1.1 or HTTP/2, the Host of each request must be
// served by the same gateway (421 Misdirected Request otherwise), and the
// Host plus the longest matching path prefix pick the connection.
//
// Towards the executor, an http connection's requests keep the planner's
// protocol: HTTP/2 streams share one HTTP/2 connection (when the executor
// offers HTTP/2; HTTP/1.1 otherwise), HTTP/1.1 requests and WebSocket
// upgrades take keep-alive HTTP/1.1 connections from a pool. gRPC is HTTP/2
// end to end.
//
// # Identity and policy
//
// A request's identity is its "Authorization: Bearer" token, verified by
// the gateway's Tokens (a token that fails is a 401 even when a client
// certificate is present), or else the connection's client certificate,
// verified against the client CAs of the gateway the request is routed to.
// The identity is checked before routing (an anonymous caller cannot map
// routes), then the connection's bindings decide; 401 and 403 carry a
// request id and nothing else. The connection's upstream URL path, if
// any, is prepended to the forwarded path.
//
// Metrics: sallyport_gateway_requests_total{gateway, connection,
// decision, reason} (decision allow, deny or reject; reason from a fixed
// set), sallyport_gateway_request_duration_seconds{gateway, connection},
// sallyport_gateway_tls_handshakes_total{listener, result},
// sallyport_gateway_tcp_sessions_active{gateway, connection},
// sallyport_gateway_guardrail_decisions_total{gateway, connection,
// decision, rule} and sallyport_gateway_masked_responses_total{gateway,
// connection, outcome}.
//
// # Guardrails
//
// After a binding admitted a request and before it is forwarded, the
// connection's guardrails, then the admitting binding's, run on it (see
// package guardrails). A denial answers 403 with the request id and the
// rule's id ("connection.guardrails.deny_path_patterns[0]") in the body
// and in X-Sallyport-Guardrail; every decision is logged ("guardrail" in
// the request line), counted and, on a recorded connection, recorded.
// Rules that read the body buffer it, up to the rule's
// max_request_body_bytes or Limits.MaxInspectedBodyBytes, and forward it
// from the buffer. A max_request_body_bytes on a body of unknown length
// cuts the exchange with the executor where the body goes over, and
// answers 403 naming the rule. grpc connections take only rules that do
// not read or bound the body; tcp connections take none (Apply refuses
// the connection otherwise).
//
// # Masking
//
// An http connection's Masker masks every response body (error statuses
// included; not HEAD, 204, 304 or empty bodies) before the planner, and
// the recorder, see it (see package masking). Requests to such a
// connection ask the executor for codings masking decodes and for whole
// bodies (Range and If-Range are dropped); WebSocket upgrades are refused,
// since their messages would bypass the rules. A response that cannot be
// masked is never passed on: when its headers say so (binary type,
// unknown coding, a 206, a switch of protocols) or its body does within
// the first masking.Limits.MaxBufferedBytes (bodies that are not streams
// and have a length, or are JSON, are masked ahead that far), the planner
// gets 502; when a stream fails later, it is cut short (connection or
// stream reset) as when an executor cuts a body short. gRPC and tcp
// connections cannot mask (Apply refuses them with rules).
//
// # Recording
//
// A connection whose Recording is enabled has its traffic recorded by
// Options.Recorder, one session per client connection, route and bearer
// token (like an SSH session recording): the first recorded exchange on a
// client connection opens the session, its later exchanges (HTTP/2
// streams included, interleaved) append to it, each record naming its
// exchange's request id. The session ends when the client connection
// closes (or the listener or the server shuts down), when a new runtime
// is applied (at the connection's next exchange), after 60 s or 10,000
// exchanges, or after 5 s without an exchange (recsession.go). A tcp
// connection and a WebSocket session are each a session of their own.
// Recorded are the binding and guardrail decisions (denials too), the
// request as forwarded (its body as read), the response as sent (after
// masking), gRPC messages each way, tcp and WebSocket bytes each way. The
// planner's bearer token and the injected headers are handed to the
// recorder as secrets and redacted headers. A session that cannot be
// recorded under an on_disk_full "refuse" policy is answered 503 (a tcp
// connection is closed). Sessions are closed (signed, synced, anchored)
// in the background; Server.Close waits for them.
//
// # Request hygiene
//
// Every rule below holds for every request that reaches an executor:
//
//   - The path is normalized once and the same string is routed on,
//     checked against the bindings and forwarded: percent-encoded
//     unreserved characters are decoded, other escapes are kept with
//     upper-case hex. Requests that different servers could read
//     differently are refused with 400: an encoded slash or backslash
//     (%2F, %5C), a raw backslash, NUL or any control character, a raw
//     non-ASCII byte, a malformed escape, an empty segment ("//"), and any
//     dot segment, raw or encoded ("/./", "/../", "%2e%2e", "..;"). Dot
//     segments are refused rather than resolved because clients resolve
//     them before sending; one that arrives was crafted.
//   - The request target cannot steer traffic: an absolute-form target
//     only supplies the Host (which must belong to the SNI's gateway); the
//     executor is fixed by the connection. "*" and CONNECT are refused.
//   - Hop-by-hop headers (Connection and the headers it names, Keep-Alive,
//     Proxy-Connection, TE except "trailers", Trailer, Transfer-Encoding,
//     Upgrade, HTTP2-Settings) are removed; the gateway's own headers are
//     set afterwards, so a client cannot strip them by naming them in
//     Connection.
//   - Upgrades other than WebSocket (h2c in particular) are refused with
//     400: a tunnel would bypass every per-request check.
//   - Forwarded, X-Forwarded-*, X-Real-IP and similar headers from the
//     client are dropped, as is every header whose name contains an
//     underscore (some servers read X_Forwarded_For as X-Forwarded-For;
//     Go's net/http keeps such names, so the gateway drops them itself).
//     The gateway then sets X-Forwarded-For, X-Forwarded-Host,
//     X-Forwarded-Proto, Forwarded and X-Request-Id.
//   - The planner's Authorization, Cookie and Proxy-Authorization never
//     reach the executor; the connection's injected headers overwrite any
//     client value.
//   - Header size, header read time, idle time, TLS handshake time and
//     request body size are always bounded.
//   - Upstream failures map to 502 (refused, reset, denied destination) and
//     504 (timeout); a response body cut short by the executor is cut
//     short for the client too (connection or stream reset), never a
//     clean short response. Redirects are passed back, never followed.
//
// # Destination guard
//
// Upstream dials go through a net.Dialer Control hook that runs after DNS
// resolution and before connect: link-local, cloud metadata, unspecified,
// multicast and broadcast addresses and the appliance's own admin
// listeners are refused. Loopback stays allowed.
package gateway
