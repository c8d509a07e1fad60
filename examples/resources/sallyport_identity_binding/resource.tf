# GitHub Actions deploy jobs of one repository's main branch may start jobs.
resource "sallyport_identity_binding" "deploy" {
  name          = "deploy"
  connection_id = sallyport_connection.jobs.id

  issuer  = "https://token.actions.githubusercontent.com"
  subject = "repo:acme/deploy:ref:refs/heads/main"
  claims = {
    repository_owner = "acme"
  }

  allowed_methods = ["GET", "POST"]
  allowed_paths   = ["/v1/jobs", "/v1/jobs/*"]

  # On top of the connection's own guardrails: small JSON requests only, and
  # never a job that runs as root.
  guardrails = {
    deny_body_patterns     = ["\"run_as\"\\s*:\\s*\"root\""]
    max_request_body_bytes = 65536
    allowed_content_types  = ["application/json"]
  }
}

# Just-in-time access: an on-call group, for the next few hours only.
resource "sallyport_identity_binding" "oncall" {
  name          = "oncall"
  connection_id = sallyport_connection.jobs.id

  issuer = "https://login.example.com/realms/agents"
  claims = { groups = "oncall" }

  expires_at = "2026-12-31T23:59:59Z"
}

# A planner identified by its client certificate's SPIFFE ID, limited to
# some gRPC methods.
resource "sallyport_identity_binding" "scheduler" {
  name          = "planner"
  connection_id = sallyport_connection.scheduler.id

  client_cert_uri_san  = "spiffe://example.com/planner/*"
  allowed_grpc_methods = ["/scheduler.v1.Scheduler/Submit", "/scheduler.v1.Scheduler/Get*"]
}

# An AI agent on the MCP connection may only call the job-reading tools.
resource "sallyport_identity_binding" "agent" {
  name          = "agent"
  connection_id = sallyport_connection.mcp.id

  issuer  = "https://login.example.com/realms/agents"
  subject = "agent-*"

  guardrails = {
    allowed_mcp_tools = ["get_job", "search_jobs"]
  }
}
