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

  # Record every session (bodies up to 16 KiB, after masking); while the
  # recording disk is full, refuse new sessions rather than lose records.
  recording = {
    enabled        = true
    max_body_bytes = 16384
    on_disk_full   = "refuse"
  }

  # Mask secrets and personal data in responses before the planner (and
  # the recording) sees them. Rules apply in order.
  masking = [
    { json_path = "$..password" },
    { json_path = "$.data[*].api_token", replacement = "partial" },
    { regex = "sk_live_[0-9a-zA-Z]{24}" },
    { detector = "payment_card" },
    { detector = "email", replacement = "hash" },
  ]

  # Deny dangerous requests from every caller before they reach the
  # executor.
  guardrails = {
    deny_path_patterns     = ["^/v1/admin/", "/purge$"]
    deny_query_patterns    = ["(^|&)force=true(&|$)"]
    deny_body_patterns     = ["(?i)drop\\s+table"]
    max_request_body_bytes = 1048576
    allowed_content_types  = ["application/json"]
  }
}

# An MCP server: agents may list tools and call only the read-only ones.
resource "sallyport_connection" "mcp" {
  name         = "mcp"
  gateway_id   = sallyport_gateway.edge.id
  protocol     = "http"
  hostname     = "mcp.example.com"
  upstream_url = "https://mcp.internal:8443/mcp"

  recording = { enabled = true }

  guardrails = {
    allowed_jsonrpc_methods = ["initialize", "notifications/*", "tools/list", "tools/call"]
    allowed_mcp_tools       = ["search_*", "get_*"]
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
