// Package api serves the appliance's admin API over TLS with gorilla/mux.
//
// # Authentication
//
// Every path, including unknown ones (404) and wrong methods (405), needs
// "Authorization: Bearer <admin token>"; without a valid one the answer is
// 401 with "WWW-Authenticate: Bearer". The appliance keeps only SHA-256
// hashes of admin tokens. Requests carrying an Origin header that is not the
// API's own origin are refused with 403, and no CORS headers are ever sent.
//
// # Objects
//
// Four collections, one per kind: /v1/tls-settings, /v1/gateways,
// /v1/connections, /v1/identity-bindings.
//
//	GET    /v1/{collection}            list: {"items": [object, ...]}
//	                                   filters: ?name=N, and ?gateway_id=ID
//	                                   (connections) or ?connection_id=ID
//	                                   (identity bindings)
//	POST   /v1/{collection}            create from {"name": ..., "spec": {...}}: 201 + object
//	GET    /v1/{collection}/{id}       read: object
//	PUT    /v1/{collection}/{id}       replace from {"name": ..., "spec": {...}}: 200 + object
//	DELETE /v1/{collection}/{id}       delete: 204
//
// An object is {"id", "name", "generation", "created_at", "updated_at",
// "spec", "status"} (see model.Object). Every read of one object, and every
// write, sends ETag: "<generation>" (a quoted decimal); PUT and DELETE honour
// If-Match and answer 412 when it names another generation.
//
// Secrets (model.Secret) are written as {"value": "..."} and read back as
// {"set": true, "version": "hmac-sha256:..."}; writing back what was read
// keeps the stored value.
//
// # Errors
//
// Every error is JSON: {"error": "what happened", "request_id": "..."}
// plus, for 400, "problems": [{"field": "spec.upstream_url", "message":
// "..."}] and, for 409 caused by dependents, "dependents": [{"kind",
// "id", "name"}]. Status codes: 400 invalid input, including a reference
// to an object that does not exist (nothing is stored), 401 no or bad token,
// 403 cross-origin, 404 unknown id or path, 405 method, 409 name clash or
// dependents, 412 stale If-Match, 413 body over 1 MiB, 415 non-JSON body.
//
// # Appliance
//
//	GET /v1/status    {"version", "started_at", "uptime_seconds", "store": {"backend", "revision"},
//	                   "counts": {"tls_settings": n, ...}, "reconcile": {...}}
//	GET /v1/audit     {"items": [entry, ...]}; ?after=SEQ&limit=N&kind=K&object_id=ID
//	GET /healthz      200 "ok" while the process runs
//	GET /readyz       200 "ready" when the store answers, else 503
//	GET /metrics      Prometheus text format
//
// Every response carries X-Request-Id; a well-formed X-Request-Id from the
// client is kept, otherwise one is generated.
package api
