# A gateway managed elsewhere (another team's configuration).
data "sallyport_gateway" "edge" {
  name = "edge"
}

# Attach a connection to it.
resource "sallyport_connection" "reports" {
  name         = "reports"
  gateway_id   = data.sallyport_gateway.edge.id
  protocol     = "http"
  path_prefix  = "/reports/"
  upstream_url = "https://reports.internal"
}

output "edge_certificate_expires" {
  value = data.sallyport_gateway.edge.certificate.not_after
}
