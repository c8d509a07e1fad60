# Connections can be imported by id:
terraform import sallyport_connection.jobs conn_k3jq7v2mxa4tbn5e

# or by gateway name and connection name:
terraform import sallyport_connection.jobs edge/jobs

# inject_headers_wo and its version are not imported: set the version in the
# configuration and the next apply sends the headers again.
