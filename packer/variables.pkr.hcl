# Variables of the Sallyport appliance image.
#
# Validation rules use only functions Packer 1.6.6 knows: it has regex_replace
# but neither regex nor can(regex(...)) works there, so "matches PATTERN" is
# written as regex_replace(value, "^PATTERN$", "") == "".

# ---------------------------------------------------------------------------
# What goes into the image
# ---------------------------------------------------------------------------

variable "version" {
  type        = string
  description = "Version of sallyportd in the image; part of the image name."
  default     = "0.0.0-dev"

  validation {
    condition     = regex_replace(var.version, "^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$", "") == ""
    error_message = "The version must be a semantic version such as 1.2.3 or 1.2.3-rc.1."
  }
}

variable "sallyportd_binary" {
  type        = string
  description = "Path of the linux/amd64 sallyportd binary to install (built by `make build`); empty means bin/sallyportd of this repository."
  default     = ""
}

variable "admin_port" {
  type        = number
  description = "TCP port of the admin API; the firewall opens it. Must match SALLYPORT_ADMIN_ADDR at first boot (0.0.0.0:8443 by default)."
  default     = 8443

  validation {
    condition     = var.admin_port >= 1 && var.admin_port <= 65535 && floor(var.admin_port) == var.admin_port
    error_message = "The admin_port must be a TCP port number (1-65535)."
  }
}

variable "gateway_ports" {
  type        = list(number)
  description = "TCP ports the firewall opens for gateways (their listen_addr ports)."
  default     = [443]

  validation {
    condition     = length(var.gateway_ports) > 0 && length([for p in var.gateway_ports : p if p < 1 || p > 65535 || floor(p) != p]) == 0
    error_message = "The gateway_ports must be a non-empty list of TCP port numbers (1-65535)."
  }
}

variable "allow_ssh" {
  type        = bool
  description = "Keep SSH (port 22, keys only) reachable. When false, sshd is disabled and the firewall closes port 22 in the image."
  default     = true
}

variable "bootstrap_metadata_url" {
  type        = string
  description = "Optional URL (instance metadata) the first-boot script reads bootstrap.env from when cloud-init wrote none, e.g. http://metadata.google.internal/computeMetadata/v1/instance/attributes/sallyport-bootstrap."
  default     = ""

  validation {
    condition     = var.bootstrap_metadata_url == "" || regex_replace(var.bootstrap_metadata_url, "^https?://[^[:space:]]+$", "") == ""
    error_message = "The bootstrap_metadata_url must be empty or an http:// or https:// URL."
  }
}

variable "bootstrap_metadata_header" {
  type        = string
  description = "Optional header sent with bootstrap_metadata_url, e.g. \"Metadata-Flavor: Google\" or \"Metadata: true\" (Azure)."
  default     = ""

  validation {
    condition     = var.bootstrap_metadata_header == "" || regex_replace(var.bootstrap_metadata_header, "^[A-Za-z0-9-]+: [^\\n]+$", "") == ""
    error_message = "The bootstrap_metadata_header must be empty or \"Name: value\"."
  }
}

variable "disk_size_gb" {
  type        = number
  description = "Size of the image's disk in GiB."
  default     = 10

  validation {
    condition     = var.disk_size_gb >= 4 && var.disk_size_gb <= 2048 && floor(var.disk_size_gb) == var.disk_size_gb
    error_message = "The disk_size_gb must be a whole number of GiB between 4 and 2048."
  }
}

# ---------------------------------------------------------------------------
# Amazon EC2 (amazon-ebs)
# ---------------------------------------------------------------------------

variable "aws_region" {
  type        = string
  description = "AWS region the AMI is built in."
  default     = "us-east-1"

  validation {
    condition     = regex_replace(var.aws_region, "^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$", "") == ""
    error_message = "The aws_region must be a region name such as eu-west-1."
  }
}

variable "aws_instance_type" {
  type        = string
  description = "EC2 instance type of the build instance (x86_64)."
  default     = "t3.small"

  validation {
    condition     = regex_replace(var.aws_instance_type, "^[a-z][a-z0-9-]*\\.[a-z0-9]+$", "") == ""
    error_message = "The aws_instance_type must be an instance type such as t3.small."
  }
}

variable "aws_source_ami_name" {
  type        = string
  description = "Name filter of the base AMI (Debian's official Debian 12 AMIs by default)."
  default     = "debian-12-amd64-*"

  validation {
    condition     = length(var.aws_source_ami_name) >= 3
    error_message = "The aws_source_ami_name must be an AMI name filter."
  }
}

variable "aws_source_ami_owner" {
  type        = string
  description = "Owner account of the base AMI (136693071363 is Debian)."
  default     = "136693071363"

  validation {
    condition     = regex_replace(var.aws_source_ami_owner, "^([0-9]{12}|amazon|aws-marketplace|self)$", "") == ""
    error_message = "The aws_source_ami_owner must be a 12-digit account id, amazon, aws-marketplace or self."
  }
}

variable "aws_ssh_username" {
  type        = string
  description = "Login user of the base AMI (Debian's AMIs use admin)."
  default     = "admin"
}

variable "aws_ami_regions" {
  type        = list(string)
  description = "Further regions to copy the AMI to."
  default     = []
}

# ---------------------------------------------------------------------------
# Google Compute Engine (googlecompute)
# ---------------------------------------------------------------------------

variable "gcp_project_id" {
  type        = string
  description = "GCP project to build the image in (required for the googlecompute source)."
  default     = "sallyport-images"

  validation {
    condition     = regex_replace(var.gcp_project_id, "^[a-z][a-z0-9-]{4,28}[a-z0-9]$", "") == ""
    error_message = "The gcp_project_id must be a GCP project id (6-30 lower-case letters, digits or hyphens)."
  }
}

variable "gcp_zone" {
  type        = string
  description = "GCP zone of the build instance."
  default     = "us-central1-a"

  validation {
    condition     = regex_replace(var.gcp_zone, "^[a-z]+-[a-z]+[0-9]+-[a-z]$", "") == ""
    error_message = "The gcp_zone must be a zone such as europe-west1-b."
  }
}

variable "gcp_machine_type" {
  type        = string
  description = "GCE machine type of the build instance."
  default     = "e2-small"

  validation {
    condition     = regex_replace(var.gcp_machine_type, "^[a-z0-9]+-[a-z0-9-]+$", "") == ""
    error_message = "The gcp_machine_type must be a machine type such as e2-small."
  }
}

variable "gcp_source_image_family" {
  type        = string
  description = "Image family of the base image, in project debian-cloud."
  default     = "debian-12"

  validation {
    condition     = regex_replace(var.gcp_source_image_family, "^[a-z][a-z0-9-]*$", "") == ""
    error_message = "The gcp_source_image_family must be an image family such as debian-12."
  }
}

# ---------------------------------------------------------------------------
# Microsoft Azure (azure-arm)
# ---------------------------------------------------------------------------

variable "azure_subscription_id" {
  type        = string
  description = "Azure subscription to build in (authentication comes from the Azure CLI login)."
  default     = "00000000-0000-0000-0000-000000000000"

  validation {
    condition     = regex_replace(var.azure_subscription_id, "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", "") == ""
    error_message = "The azure_subscription_id must be a subscription GUID."
  }
}

variable "azure_resource_group" {
  type        = string
  description = "Existing resource group that receives the managed image."
  default     = "sallyport-images"

  validation {
    condition     = length(var.azure_resource_group) >= 1 && length(var.azure_resource_group) <= 90
    error_message = "The azure_resource_group must be a resource group name (1-90 characters)."
  }
}

variable "azure_location" {
  type        = string
  description = "Azure region of the build VM and the image."
  default     = "westeurope"

  validation {
    condition     = regex_replace(var.azure_location, "^[a-z][a-z0-9]+$", "") == ""
    error_message = "The azure_location must be a region name such as westeurope."
  }
}

variable "azure_vm_size" {
  type        = string
  description = "Azure VM size of the build VM."
  default     = "Standard_B2s"

  validation {
    condition     = regex_replace(var.azure_vm_size, "^(Standard|Basic)_[A-Za-z0-9_]+$", "") == ""
    error_message = "The azure_vm_size must be a VM size such as Standard_B2s."
  }
}

variable "azure_image_sku" {
  type        = string
  description = "SKU of the base image, publisher Debian, offer debian-12."
  default     = "12-gen2"

  validation {
    condition     = contains(["12", "12-gen2"], var.azure_image_sku)
    error_message = "The azure_image_sku must be 12 or 12-gen2."
  }
}

# ---------------------------------------------------------------------------
# QEMU (qemu): builds from a local Debian base disk (packer/test/mkbase.sh)
# ---------------------------------------------------------------------------

variable "qemu_base_image" {
  type        = string
  description = "Base qcow2 disk: a Debian 12 root file system without partition table, as made by packer/test/mkbase.sh."
  default     = "packer/.build/base/base.qcow2"
}

variable "qemu_kernel" {
  type        = string
  description = "Kernel the base disk boots with (qemu -kernel)."
  default     = "packer/.build/base/vmlinuz"
}

variable "qemu_initrd" {
  type        = string
  description = "Initrd the base disk boots with (qemu -initrd)."
  default     = "packer/.build/base/initrd.img"
}

variable "qemu_seed_directory" {
  type        = string
  description = "Directory served over HTTP to the build VM as its cloud-init NoCloud seed (user-data with the build SSH key, meta-data)."
  default     = "packer/.build/build-seed"
}

variable "qemu_ssh_private_key_file" {
  type        = string
  description = "Private key matching the public key in the build seed's user-data."
  default     = "packer/.build/build-key"
}

variable "qemu_output_directory" {
  type        = string
  description = "Where the qemu source writes the image; must not exist."
  default     = "packer/.build/image"
}

variable "qemu_accelerator" {
  type        = string
  description = "QEMU accelerator: kvm where /dev/kvm works, tcg (software emulation) elsewhere."
  default     = "kvm"

  validation {
    condition     = contains(["kvm", "tcg", "hvf", "whpx", "xen", "none"], var.qemu_accelerator)
    error_message = "The qemu_accelerator must be kvm, tcg, hvf, whpx, xen or none."
  }
}

variable "qemu_memory_mb" {
  type        = number
  description = "Memory of the build VM in MiB."
  default     = 1536

  validation {
    condition     = var.qemu_memory_mb >= 512
    error_message = "The qemu_memory_mb must be at least 512."
  }
}
