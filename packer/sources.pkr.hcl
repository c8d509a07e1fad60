# Where the appliance image is built: one source per cloud, all starting from
# Debian 12, plus qemu for a local qcow2 (see `make image` / `make
# image-test`). Every source runs the same provisioning (build.pkr.hcl).

locals {
  # Image names: lower-case letters, digits and hyphens suit every cloud.
  image_version = regex_replace(lower(var.version), "[^a-z0-9]+", "-")
  image_name    = "sallyport-${local.image_version}-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  description   = "Sallyport appliance ${var.version} (Debian 12, sallyportd, hardened)"

  # Paths of this template's own files are relative to it; the others are
  # relative to the directory Packer runs in (the repository root for make).
  sallyportd_binary = var.sallyportd_binary != "" ? var.sallyportd_binary : "${path.root}/../bin/sallyportd"
}

source "amazon-ebs" "sallyport" {
  region          = var.aws_region
  instance_type   = var.aws_instance_type
  ami_name        = local.image_name
  ami_description = local.description
  ami_regions     = var.aws_ami_regions
  ena_support     = true
  sriov_support   = true

  source_ami_filter {
    filters = {
      name                = var.aws_source_ami_name
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = [var.aws_source_ami_owner]
    most_recent = true
  }

  launch_block_device_mappings {
    device_name = "/dev/xvda"
    volume_size = var.disk_size_gb
    volume_type = "gp3"
    # gp3 baseline; Packer 1.6.6 requires both to be set for gp3.
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  ssh_username = var.aws_ssh_username
  ssh_timeout  = "10m"

  tags = {
    Name                = local.image_name
    "sallyport:version" = var.version
    "sallyport:base"    = "{{ .SourceAMIName }}"
  }
  run_tags = {
    Name = "packer-${local.image_name}"
  }
}

source "googlecompute" "sallyport" {
  project_id              = var.gcp_project_id
  zone                    = var.gcp_zone
  machine_type            = var.gcp_machine_type
  source_image_family     = var.gcp_source_image_family
  source_image_project_id = ["debian-cloud"]
  disk_size               = var.disk_size_gb
  image_name              = local.image_name
  image_family            = "sallyport"
  image_description       = local.description
  image_labels = {
    sallyport-version = local.image_version
  }
  ssh_username = "packer"
  ssh_timeout  = "10m"
}

source "azure-arm" "sallyport" {
  # Credentials come from `az login`; set ARM_* variables and client_id /
  # client_secret here instead for a service principal.
  use_azure_cli_auth = true
  subscription_id    = var.azure_subscription_id

  location        = var.azure_location
  vm_size         = var.azure_vm_size
  os_type         = "Linux"
  image_publisher = "Debian"
  image_offer     = "debian-12"
  image_sku       = var.azure_image_sku
  os_disk_size_gb = var.disk_size_gb

  managed_image_name                = local.image_name
  managed_image_resource_group_name = var.azure_resource_group

  azure_tags = {
    "sallyport-version" = var.version
  }
}

# The qemu source starts from a local Debian base disk made by
# packer/test/mkbase.sh (debootstrap, no cloud image download). The disk has
# no boot loader, so qemu boots the base's kernel directly; cloud-init in the
# build VM reads its NoCloud seed (user-data with the build SSH key) from the
# "cidata" CD that cd_files makes.
source "qemu" "sallyport" {
  iso_url          = var.qemu_base_image
  iso_checksum     = "none"
  disk_image       = true
  use_backing_file = false
  format           = "qcow2"
  disk_size        = "${var.disk_size_gb}G"
  disk_interface   = "virtio"
  disk_discard     = "unmap"
  disk_compression = true
  net_device       = "virtio-net"
  accelerator      = var.qemu_accelerator
  cpus             = 2
  memory           = var.qemu_memory_mb
  headless         = true
  output_directory = var.qemu_output_directory
  vm_name          = "sallyport-${local.image_version}.qcow2"

  cd_files = ["${var.qemu_seed_directory}/user-data", "${var.qemu_seed_directory}/meta-data"]
  cd_label = "cidata"

  qemuargs = [
    ["-kernel", var.qemu_kernel],
    ["-initrd", var.qemu_initrd],
    ["-append", "root=LABEL=sallyport-root ro console=ttyS0 net.ifnames=0"],
    ["-serial", "file:${var.qemu_output_directory}-console.log"],
    # Packer's default, but with the SSH port forwarded on loopback only.
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
  ]

  # The guest user cloud-init creates from the seed (Debian's default user).
  ssh_username         = "debian"
  ssh_private_key_file = var.qemu_ssh_private_key_file
  # Software emulation (tcg) boots slowly.
  ssh_timeout      = "30m"
  shutdown_command = "sudo systemctl poweroff"
  shutdown_timeout = "15m"
}
