resource "sallyport_tls_settings" "internal" {
  name        = "internal"
  certificate = { source = "self_signed" }
}

resource "sallyport_gateway" "edge" {
  name            = "edge"
  listen_addr     = "0.0.0.0:443"
  hostnames       = ["jobs.example.com", "*.agents.example.com"]
  tls_settings_id = sallyport_tls_settings.internal.id

  # Planners authenticate with workload tokens from these issuers.
  oidc_providers = [
    {
      # GitHub Actions OIDC tokens.
      issuer_url = "https://token.actions.githubusercontent.com"
      audiences  = ["sallyport"]
    },
    {
      # The company IdP: access tokens only, ES256-signed.
      issuer_url         = "https://login.example.com/realms/agents"
      audiences          = ["sallyport-gateway"]
      allowed_algorithms = ["ES256"]
      token_type         = "access"
    },
  ]

  timeouts = {
    create = "5m"
  }
}

# Planners may pin the certificate the gateway serves.
output "edge_certificate_sha256" {
  value = sallyport_gateway.edge.certificate.sha256_fingerprint
}
