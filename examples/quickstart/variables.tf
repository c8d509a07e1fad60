variable "executor_credential" {
  description = "The credential the gateway injects towards the executor, as the Authorization header value (see README.md). Set it with TF_VAR_executor_credential."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "listen_addr" {
  description = "Where the quickstart gateway listens (the demo gateway has 127.0.0.1:8444)."
  type        = string
  default     = "127.0.0.1:8445"
}

variable "planner_subject" {
  description = "The token subject the binding admits: the demo OpenID provider's planner client."
  type        = string
  default     = "planner@demo"
}

variable "dev_data_dir" {
  description = "The `make dev` data directory, for the internal CA certificate that curl trusts."
  type        = string
  default     = "../../.sallyport-dev"
}
