# The plugins the template needs, for Packer 1.7 and later: `packer init
# packer/` installs them. Packer 1.6.6 (Debian 12's `packer` package, the only
# Packer these machines can install) has all four builders built in and does
# not know `required_plugins`, so `make packer-check` validates the other
# files without this one (see packer/packer.mk); everything else in this
# directory stays valid for both.
packer {
  required_version = ">= 1.6.6"

  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
    googlecompute = {
      version = ">= 1.1.4"
      source  = "github.com/hashicorp/googlecompute"
    }
    azure = {
      version = ">= 2.1.0"
      source  = "github.com/hashicorp/azure"
    }
    qemu = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/qemu"
    }
  }
}
