variable "region" {
  description = "AWS region to run the appliance in (the AMI must be there)."
  type        = string
  default     = "eu-west-1"
}

variable "ami_name" {
  description = "Name filter of the appliance AMI that `make image PACKER_ONLY=sallyport.amazon-ebs.sallyport` built in this account."
  type        = string
  default     = "sallyport-*"
}

variable "instance_type" {
  description = "EC2 instance type of the appliance."
  type        = string
  default     = "t3.small"
}

variable "subnet_id" {
  description = "Subnet of the appliance: one that reaches both the planners and the executors."
  type        = string
}

variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the admin API on port 8443: where terraform runs."
  type        = list(string)
}

variable "gateway_cidrs" {
  description = "CIDR blocks allowed to reach the gateway port 443: the planners."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "ssh_key_name" {
  description = "Optional EC2 key pair for SSH (user admin); SSH stays closed in the security group when empty."
  type        = string
  default     = ""
}

variable "admin_ca_fingerprint" {
  description = "SHA-256 fingerprint of the appliance's admin CA. Empty on the first apply; then copy it from the serial console (see the admin_ca_fingerprint_command output) and apply again before adding sallyport resources."
  type        = string
  default     = ""

  validation {
    condition     = var.admin_ca_fingerprint == "" || can(regex("^[0-9a-fA-F]{64}$", replace(var.admin_ca_fingerprint, ":", "")))
    error_message = "The admin_ca_fingerprint must be the 64 hex digits of a SHA-256 (colons allowed)."
  }
}

variable "gateway_hostname" {
  description = "DNS name planners use for the gateway (point it at the gateway_address output)."
  type        = string
  default     = "gateway.example.com"
}

variable "oidc_issuer_url" {
  description = "OIDC issuer whose tokens the gateway accepts from planners."
  type        = string
  default     = "https://token.actions.githubusercontent.com"
}

variable "oidc_audience" {
  description = "Audience planners' tokens must carry."
  type        = string
  default     = "sallyport"
}
