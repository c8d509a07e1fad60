output "token_command" {
  description = "Gets a fresh token for the demo's planner identity from the local OpenID provider."
  value = format(
    "export TOKEN=$(curl -s --cacert %s -u planner:planner-secret -d grant_type=client_credentials %s/oauth/token | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')",
    local.ca_file, local.idp.issuer_url,
  )
}

output "curl_command" {
  description = "Goes through the quickstart gateway as the planner."
  value = format(
    "curl --cacert %s --resolve %s:%s:127.0.0.1 -H \"Authorization: Bearer $TOKEN\" https://%s:%s/jobs/hello",
    local.ca_file, local.hostname, local.port, local.hostname, local.port,
  )
}

output "gateway_certificate_sha256" {
  description = "The fingerprint of the certificate the quickstart gateway serves."
  value       = sallyport_gateway.quickstart.certificate.sha256_fingerprint
}

output "issuer_url" {
  description = "The demo OpenID provider the quickstart gateway trusts."
  value       = local.idp.issuer_url
}
