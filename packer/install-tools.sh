#!/bin/bash
# install-tools.sh [--image]: install the Debian packages the appliance image
# checks need, only those missing; safe to run again (it then does nothing).
#
#   packer-check (make test): packer (Debian 12 ships 1.6.6), shellcheck,
#   systemd (systemd-analyze), jq and curl (the first-boot script's test),
#   openssh-client (ssh-keygen).
#   --image adds what `make image-test` needs: debootstrap, qemu, qemu-img,
#   genisoimage (cloud-init seed ISOs), e2fsprogs, openssl.
#
# Run as root (CI) or with sudo; it uses apt-get only.
set -euo pipefail

# command:package pairs.
tools=(packer:packer shellcheck:shellcheck systemd-analyze:systemd jq:jq curl:curl ssh-keygen:openssh-client)
if [ "${1:-}" = --image ]; then
	tools+=(debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils
		genisoimage:genisoimage mkfs.ext4:e2fsprogs openssl:openssl)
elif [ $# -gt 0 ]; then
	echo "usage: $0 [--image]" >&2
	exit 2
fi

missing=()
for pair in "${tools[@]}"; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ] && ! [ -x "/sbin/$cmd" ]; then
		case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
	fi
done

# systemd-analyze --offline needs systemd 250 or later (Debian 12 has 252).
if command -v systemd-analyze >/dev/null 2>&1; then
	sd_version=$(systemd-analyze --version | sed -n 's/^systemd \([0-9]*\).*/\1/p')
	if [ "${sd_version:-0}" -lt 250 ]; then
		echo "install-tools: systemd $sd_version is too old for systemd-analyze security --offline (need 250+)" >&2
		exit 1
	fi
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-tools: all tools present"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	sudo=(sudo)
fi
echo "install-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
