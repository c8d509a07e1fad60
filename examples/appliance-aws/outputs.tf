output "admin_endpoint" {
  description = "Admin API of the appliance (the provider's endpoint)."
  value       = "https://${aws_eip.appliance.public_ip}:8443"
}

output "admin_token" {
  description = "Admin API token (terraform output -raw admin_token)."
  value       = random_password.admin_token.result
  sensitive   = true
}

output "gateway_address" {
  description = "Public address planners connect to (port 443)."
  value       = aws_eip.appliance.public_ip
}

output "admin_ca_fingerprint_command" {
  description = "Prints the admin CA fingerprint the appliance wrote to its serial console at first boot."
  value       = "aws ec2 get-console-output --region ${var.region} --instance-id ${aws_instance.appliance.id} --latest --output text | grep -o 'admin API CA SHA-256 fingerprint: [0-9a-f]*'"
}

output "gateway_ready" {
  description = "Whether the appliance serves the gateway (after the second apply)."
  value       = local.configure ? sallyport_gateway.edge[0].ready : null
}
