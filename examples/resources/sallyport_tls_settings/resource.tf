# A certificate issued by the appliance's internal CA for the gateway's
# hostnames: the quickest start, for planners that pin that CA.
resource "sallyport_tls_settings" "internal" {
  name        = "internal"
  certificate = { source = "self_signed" }
}

# Certificates from an ACME CA, obtained and renewed by the appliance. The
# External Account Binding HMAC is write-only: it comes from an ephemeral
# variable and never reaches the state or the plan.
variable "eab_hmac" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "sallyport_tls_settings" "public" {
  name        = "public"
  min_version = "1.3"
  certificate = {
    source = "acme"
    acme = {
      directory_url       = "https://acme.zerossl.com/v2/DV90"
      email               = "ops@example.com"
      eab_key_id          = "kid-123"
      eab_hmac_wo         = var.eab_hmac
      eab_hmac_wo_version = 1 # bump to send a new HMAC
    }
  }
}

# An operator's certificate and key, with planners that must present a
# client certificate issued by the planners' CA.
variable "gateway_key_pem" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "sallyport_tls_settings" "mtls" {
  name = "planners-mtls"
  certificate = {
    source = "static"
    static = {
      cert_pem           = file("${path.module}/gateway-chain.pem")
      key_pem_wo         = var.gateway_key_pem
      key_pem_wo_version = 1 # bump together with a renewed cert_pem
    }
  }
  peer_ca_pem = file("${path.module}/planners-ca.pem")
  client_auth = "require"
}

# The side towards an executor: verify it against its private CA under a
# fixed name, and present a client certificate from the appliance's CA.
resource "sallyport_tls_settings" "executor" {
  name        = "executor-mtls"
  certificate = { source = "self_signed" }
  peer_ca_pem = file("${path.module}/executor-ca.pem")
  server_name = "executor.internal"
}
