# Identity bindings can be imported by id:
terraform import sallyport_identity_binding.deploy bind_k3jq7v2mxa4tbn5e

# or by gateway name, connection name and binding name:
terraform import sallyport_identity_binding.deploy edge/jobs/deploy
