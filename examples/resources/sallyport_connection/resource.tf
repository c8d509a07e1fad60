# The executor's credentials: an ephemeral, sensitive variable (or an
# ephemeral resource, e.g. from a secrets manager). Write-only, they reach
# the appliance but never the Terraform state or plan.
variable "executor_credentials" {
  type      = map(string)
  sensitive = true
  ephemeral = true
}

resource "sallyport_connection" "jobs" {
  name        = "jobs"
  gateway_id  = sallyport_gateway.edge.id
  protocol    = "http"
  hostname    = "jobs.example.com"
  path_prefix = "/v1/"

  upstream_url             = "https://executor.internal:8443/api"
  upstream_tls_settings_id = sallyport_tls_settings.executor.id

  # e.g. { Authorization = "Bearer ...", "X-Api-Key" = "..." }
  inject_headers_wo         = var.executor_credentials
  inject_headers_wo_version = 1 # bump after rotating a credential

  timeouts = {
    connect         = "5s"
    response_header = "2m"
  }
}

# A gRPC executor behind the same gateway, routed by service.
resource "sallyport_connection" "scheduler" {
  name         = "scheduler"
  gateway_id   = sallyport_gateway.edge.id
  protocol     = "grpc"
  path_prefix  = "/scheduler.v1.Scheduler/"
  upstream_url = "https://scheduler.internal:9443"
}

# A TCP executor, routed by SNI (planners authenticate with client
# certificates).
resource "sallyport_connection" "db" {
  name         = "db"
  gateway_id   = sallyport_gateway.edge.id
  protocol     = "tcp"
  hostname     = "db.agents.example.com"
  upstream_url = "tls://db.internal:5432"
}
