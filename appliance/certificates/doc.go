// Package certificates turns a TLS settings object into what the data path
// needs: a serving certificate for a gateway's listener (ACME through
// certmagic, an operator's static chain, or a certificate from the
// appliance's internal CA) and a client-side tls.Config for dialing an
// executor.
//
// A Manager owns everything that outlives one reconciliation: the certmagic
// storage under the data directory (so certificates survive restarts
// without re-issuance), the background renewal of ACME certificates, and the
// persisted self-signed certificates (so their fingerprints stay stable).
//
// The reconciler calls Manager.Serving for every gateway when it builds a
// runtime and Serving.Close for the servings of the runtime it replaced (or
// of a build that failed). Identical requests share one ACME manager, so a
// reconciliation that changes nothing neither re-issues nor restarts
// renewal.
//
// The gateway answers the ACME challenges itself: TLS-ALPN-01 through
// Serving.GetCertificate on its listener (with Serving.NextProtos, which
// holds "acme-tls/1"), HTTP-01 through Serving.HTTPChallenge on the TLS
// settings' http_challenge_addr. certmagic never binds a port of its own.
package certificates
