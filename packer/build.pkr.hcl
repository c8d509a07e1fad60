# One build for every source: upload sallyportd, its units and the first-boot
# script, then provision with packer/scripts/*.sh (in order) as root.

build {
  name = "sallyport"

  sources = [
    "source.amazon-ebs.sallyport",
    "source.googlecompute.sallyport",
    "source.azure-arm.sallyport",
    "source.qemu.sallyport",
  ]

  # Let the build instance's own cloud-init finish (it may still run apt).
  provisioner "shell" {
    inline = [
      "cloud-init status --wait >/dev/null 2>&1 || true",
      "rm -rf /tmp/sallyport && mkdir -p /tmp/sallyport",
    ]
  }

  provisioner "file" {
    source      = local.sallyportd_binary
    destination = "/tmp/sallyport/sallyportd"
  }

  # The trailing slash uploads the directory's content into /tmp/sallyport.
  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "/tmp/sallyport"
  }

  provisioner "file" {
    source      = "${path.root}/scripts/sallyport-firstboot.sh"
    destination = "/tmp/sallyport/firstboot"
  }

  provisioner "shell" {
    environment_vars = [
      "DEBIAN_FRONTEND=noninteractive",
      "SALLYPORT_STAGING=/tmp/sallyport",
      "SALLYPORT_VERSION=${var.version}",
      "SALLYPORT_ADMIN_PORT=${var.admin_port}",
      "SALLYPORT_GATEWAY_PORTS=${join(",", var.gateway_ports)}",
      "SALLYPORT_ALLOW_SSH=${var.allow_ssh}",
      "SALLYPORT_BOOTSTRAP_URL=${var.bootstrap_metadata_url}",
      "SALLYPORT_BOOTSTRAP_URL_HEADER=${var.bootstrap_metadata_header}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo -E env {{ .Vars }} bash {{ .Path }}"
    scripts = [
      "${path.root}/scripts/10-packages.sh",
      "${path.root}/scripts/20-sallyport.sh",
      "${path.root}/scripts/30-firewall.sh",
      "${path.root}/scripts/40-unattended-upgrades.sh",
      "${path.root}/scripts/50-ssh.sh",
      "${path.root}/scripts/90-cleanup.sh",
    ]
  }

  # Azure generalizes images with its agent; it must run last.
  provisioner "shell" {
    only            = ["azure-arm.sallyport"]
    execute_command = "chmod +x {{ .Path }}; sudo -E sh {{ .Path }}"
    inline          = ["/usr/sbin/waagent -force -deprovision+user && export HISTSIZE=0 && sync"]
  }

  post-processor "manifest" {
    output     = "${path.root}/.build/manifest.json"
    strip_path = true
    custom_data = {
      version = var.version
    }
  }
}
