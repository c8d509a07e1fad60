package gateway

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
)

// Decisions, the "decision" label of sallyport_gateway_requests_total.
const (
	decisionAllow  = "allow"
	decisionDeny   = "deny"   // 401 or 403: identity or binding
	decisionReject = "reject" // malformed, misdirected or unroutable
)

// Reasons, the "reason" label: a fixed set, so that the label's
// cardinality stays bounded whatever clients send or bindings say.
const (
	reasonOK              = "ok"
	reasonNoIdentity      = "no_identity"
	reasonInvalidToken    = "invalid_token"
	reasonInvalidCert     = "invalid_client_cert"
	reasonNoBinding       = "no_binding"
	reasonMisdirected     = "misdirected"
	reasonNoRoute         = "no_route"
	reasonBadPath         = "bad_path"
	reasonBadRequest      = "bad_request"
	reasonUpgrade         = "upgrade_refused"
	reasonUpstreamTimeout = "upstream_timeout"
	reasonUpstreamError   = "upstream_error"
	reasonDestination     = "destination_denied"
	reasonBodyTooLarge    = "body_too_large"
	reasonClientGone      = "client_gone"
	reasonAborted         = "aborted"
	reasonGuardrail       = "guardrail"
	reasonMaskingRefused  = "masking_refused"
	reasonMaskingAborted  = "masking_aborted"
	reasonRecording       = "recording_refused"
)

// Outcomes of masked responses, the "outcome" label of
// sallyport_gateway_masked_responses_total.
const (
	maskOK      = "masked"
	maskRefused = "refused"
	maskAborted = "aborted"
)

// denialReason maps a binding's reason to the metrics label: a few useful
// distinctions, and "no_binding" for everything else.
func denialReason(why string) string {
	switch why {
	case identity.ReasonExpired:
		return "binding_expired"
	case identity.ReasonMethodNotAllowed:
		return "method_not_allowed"
	case identity.ReasonPathNotAllowed:
		return "path_not_allowed"
	case identity.ReasonGRPCMethodNotAllowed:
		return "grpc_method_not_allowed"
	}
	return reasonNoBinding
}

// metrics are the gateway's Prometheus collectors.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	handshakes *prometheus.CounterVec
	tcpActive  *prometheus.GaugeVec
	guardrails *prometheus.CounterVec
	masking    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sallyport", Subsystem: "gateway", Name: "requests_total",
			Help: "Requests and tcp sessions by gateway, connection, decision (allow, deny, reject) and reason.",
		}, []string{"gateway", "connection", "decision", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sallyport", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "Time from request to the end of the response, for allowed requests.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"gateway", "connection"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sallyport", Subsystem: "gateway", Name: "tls_handshakes_total",
			Help: "TLS handshakes by listen address and result (ok, unknown_sni, no_sni, failed, acme).",
		}, []string{"listener", "result"}),
		tcpActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sallyport", Subsystem: "gateway", Name: "tcp_sessions_active",
			Help: "Open tcp sessions by gateway and connection.",
		}, []string{"gateway", "connection"}),
		guardrails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sallyport", Subsystem: "gateway", Name: "guardrail_decisions_total",
			Help: "Guardrail decisions by gateway, connection, decision (allow, deny) and rule (the denying rule's id, \"-\" for allow).",
		}, []string{"gateway", "connection", "decision", "rule"}),
		masking: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sallyport", Subsystem: "gateway", Name: "masked_responses_total",
			Help: "Responses of connections with masking rules by outcome: masked, refused (502 before the response started) or aborted (cut short mid-stream).",
		}, []string{"gateway", "connection", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.handshakes, m.tcpActive, m.guardrails, m.masking} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("gateway metrics already registered (one Server per registry): %w", err)
			}
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}

// forget drops the series of a connection that no longer exists.
func (m *metrics) forget(gateway, connection string) {
	l := prometheus.Labels{"gateway": gateway, "connection": connection}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.tcpActive.DeletePartialMatch(l)
	m.guardrails.DeletePartialMatch(l)
	m.masking.DeletePartialMatch(l)
}
