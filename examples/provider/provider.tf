terraform {
  # Write-only attributes (the *_wo secrets) need Terraform 1.11 or later.
  required_version = ">= 1.11"

  required_providers {
    sallyport = {
      source = "sallyport/sallyport"
    }
  }
}

# Every argument can come from the environment instead: SALLYPORT_ENDPOINT,
# SALLYPORT_TOKEN, SALLYPORT_CA_CERT_PEM or SALLYPORT_CA_FINGERPRINT, and
# SALLYPORT_REQUEST_TIMEOUT. `sallyportd dev` prints the export lines.
provider "sallyport" {
  endpoint = "https://appliance.example.com:8443"

  # Pin the appliance's admin CA: its SHA-256 fingerprint (as
  # `sallyportd dev` or `openssl x509 -noout -fingerprint -sha256` prints it),
  # or its certificate in ca_cert_pem.
  ca_fingerprint_sha256 = var.admin_ca_fingerprint

  # The admin token is best left to SALLYPORT_TOKEN, out of the configuration.
  # token = var.sallyport_token

  request_timeout = "30s"
}

variable "admin_ca_fingerprint" {
  type        = string
  description = "SHA-256 fingerprint of the appliance's admin CA certificate."
}
