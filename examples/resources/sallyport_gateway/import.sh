# Gateways can be imported by id:
terraform import sallyport_gateway.edge gw_k3jq7v2mxa4tbn5e

# or by name:
terraform import sallyport_gateway.edge edge
