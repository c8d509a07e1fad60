data "sallyport_gateway" "edge" {
  name = "edge"
}

data "sallyport_connection" "jobs" {
  gateway_id = data.sallyport_gateway.edge.id
  name       = "jobs"
}

# Grant another team's planner access to a connection managed elsewhere.
resource "sallyport_identity_binding" "reports" {
  name          = "reports-bot"
  connection_id = data.sallyport_connection.jobs.id
  issuer        = "https://token.actions.githubusercontent.com"
  subject       = "repo:acme/reports:ref:refs/heads/main"
}
