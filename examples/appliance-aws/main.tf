# Launch the Sallyport appliance image on EC2, hand it its first-boot inputs
# through cloud-init, and point the sallyport provider at its admin API.

provider "aws" {
  region = var.region
}

data "aws_ami" "sallyport" {
  most_recent = true
  owners      = ["self"]

  filter {
    name   = "name"
    values = [var.ami_name]
  }
}

data "aws_subnet" "appliance" {
  id = var.subnet_id
}

# The admin token never reaches the instance: cloud-init gets its SHA-256,
# Terraform keeps the token (in its state, which must be protected anyway).
resource "random_password" "admin_token" {
  length  = 48
  special = false
}

# A fixed public address, so it can be in the admin certificate from the
# first boot on.
resource "aws_eip" "appliance" {
  domain = "vpc"
  tags = {
    Name = "sallyport"
  }
}

resource "aws_security_group" "appliance" {
  name_prefix = "sallyport-"
  description = "Sallyport appliance: gateway 443, admin API 8443"
  vpc_id      = data.aws_subnet.appliance.vpc_id

  ingress {
    description = "gateway"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.gateway_cidrs
  }

  ingress {
    description = "admin API"
    from_port   = 8443
    to_port     = 8443
    protocol    = "tcp"
    cidr_blocks = var.admin_cidrs
  }

  dynamic "ingress" {
    for_each = var.ssh_key_name == "" ? [] : [1]
    content {
      description = "SSH"
      from_port   = 22
      to_port     = 22
      protocol    = "tcp"
      cidr_blocks = var.admin_cidrs
    }
  }

  egress {
    description = "executors, identity providers, ACME, Debian security updates"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "appliance" {
  ami                    = data.aws_ami.sallyport.id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.appliance.id]
  key_name               = var.ssh_key_name == "" ? null : var.ssh_key_name

  # First-boot inputs: /etc/sallyport/bootstrap.env (see the appliance guide).
  user_data = <<-EOT
    #cloud-config
    write_files:
      - path: /etc/sallyport/bootstrap.env
        owner: root:root
        permissions: "0600"
        content: |
          SALLYPORT_ADMIN_TOKEN_HASH=sha256:${sha256(random_password.admin_token.result)}
          SALLYPORT_ADMIN_ADDR=0.0.0.0:8443
          SALLYPORT_ADMIN_SANS=${aws_eip.appliance.public_ip}
  EOT

  # A new token or address means a new appliance.
  user_data_replace_on_change = true

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = {
    Name = "sallyport"
  }
}

resource "aws_eip_association" "appliance" {
  instance_id   = aws_instance.appliance.id
  allocation_id = aws_eip.appliance.id
}

# The provider reaches the appliance through its admin API, pinning the admin
# CA by the fingerprint the appliance printed on its serial console.
provider "sallyport" {
  endpoint              = "https://${aws_eip.appliance.public_ip}:8443"
  token                 = random_password.admin_token.result
  ca_fingerprint_sha256 = var.admin_ca_fingerprint == "" ? null : var.admin_ca_fingerprint
}

# What the appliance serves. These wait for the second apply (with the
# fingerprint): until then the provider has nothing to manage and is not
# contacted. Connections and identity bindings follow the same pattern.
locals {
  configure = var.admin_ca_fingerprint != ""
}

resource "sallyport_tls_settings" "edge" {
  count       = local.configure ? 1 : 0
  name        = "edge"
  certificate = { source = "self_signed" }
}

resource "sallyport_gateway" "edge" {
  count           = local.configure ? 1 : 0
  name            = "edge"
  listen_addr     = "0.0.0.0:443"
  hostnames       = [var.gateway_hostname]
  tls_settings_id = sallyport_tls_settings.edge[0].id

  oidc_providers = [
    {
      issuer_url = var.oidc_issuer_url
      audiences  = [var.oidc_audience]
    },
  ]
}
