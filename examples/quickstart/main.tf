# Quickstart: put a Terraform-managed path through a `make dev` appliance.
#
# `make dev` seeds a demo: a local OpenID provider, an example executor that
# only accepts the gateway over mutual TLS, and a gateway "demo" in front of
# it. This configuration reads those pieces with the data sources and builds
# a second path of its own next to the demo: TLS settings, a gateway on
# 127.0.0.1, a connection to the example executor with an injected
# credential, and a binding that lets the demo's planner identity through.
# See README.md.

terraform {
  required_version = ">= 1.11" # write-only arguments

  required_providers {
    sallyport = {
      source = "sallyport/sallyport"
    }
  }
}

# The endpoint, token and admin CA come from the SALLYPORT_* variables that
# `make dev` prints.
provider "sallyport" {}

# What `make dev` seeded: the demo gateway (with the OpenID provider it
# trusts) and its connection to the example executor.
data "sallyport_gateway" "demo" {
  name = "demo"
}

data "sallyport_connection" "demo" {
  gateway_id = data.sallyport_gateway.demo.id
  name       = "executor"
}

locals {
  # The local OpenID provider: its issuer URL, the audience of its tokens and
  # the CA of its TLS certificate (the appliance's internal CA).
  idp = data.sallyport_gateway.demo.oidc_providers[0]
  # A name under .localhost: curl resolves it to the loopback address (and the
  # printed command pins it with --resolve anyway).
  hostname = "quickstart.sallyport.localhost"
  port     = split(":", var.listen_addr)[1]
  ca_file  = abspath("${var.dev_data_dir}/internal-ca.pem")
}

# The certificate planners see: issued by the appliance's internal CA for
# the gateway's hostnames.
resource "sallyport_tls_settings" "gateway" {
  name        = "quickstart-gateway"
  certificate = { source = "self_signed" }
}

# The side towards the executor: verify it against the internal CA (which
# issued its certificate) and present a client certificate from the internal
# CA, which is what the example executor requires.
resource "sallyport_tls_settings" "executor" {
  name        = "quickstart-executor-mtls"
  certificate = { source = "self_signed" }
  peer_ca_pem = local.idp.ca_pem
}

resource "sallyport_gateway" "quickstart" {
  name            = "quickstart"
  listen_addr     = var.listen_addr
  hostnames       = [local.hostname]
  tls_settings_id = sallyport_tls_settings.gateway.id

  oidc_providers = [{
    issuer_url = local.idp.issuer_url
    audiences  = local.idp.audiences
    ca_pem     = local.idp.ca_pem
  }]
}

resource "sallyport_connection" "executor" {
  name       = "executor"
  gateway_id = sallyport_gateway.quickstart.id
  protocol   = "http"
  hostname   = local.hostname

  upstream_url             = data.sallyport_connection.demo.upstream_url
  upstream_tls_settings_id = sallyport_tls_settings.executor.id

  # Write-only: sent to the appliance, never stored in the state or plan.
  inject_headers_wo = {
    Authorization = var.executor_credential
  }
  inject_headers_wo_version = 1
}

resource "sallyport_identity_binding" "planner" {
  name          = "planner"
  connection_id = sallyport_connection.executor.id

  issuer          = local.idp.issuer_url
  subject         = var.planner_subject
  allowed_methods = ["GET", "POST"]
  allowed_paths   = ["/jobs/*"]
}
