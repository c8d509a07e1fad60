# TLS settings can be imported by id:
terraform import sallyport_tls_settings.internal tls_k3jq7v2mxa4tbn5e

# or by name:
terraform import sallyport_tls_settings.internal internal

# Write-only secrets and their *_wo_version are not imported: set the version
# in the configuration and the next apply sends the value again.
