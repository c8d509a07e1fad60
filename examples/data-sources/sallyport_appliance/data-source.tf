data "sallyport_appliance" "this" {}

output "appliance_version" {
  value = data.sallyport_appliance.this.version
}

# The fingerprint to pin in other configurations (ca_fingerprint_sha256).
output "admin_ca_fingerprint" {
  value = data.sallyport_appliance.this.admin_ca_fingerprint_sha256
}
