#!/bin/bash
# 10-packages.sh: bring the Debian 12 base up to date and install what the
# appliance needs: nftables (firewall), unattended-upgrades, curl and jq (the
# first-boot script), cloud-init (already in every Debian cloud image).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt_get() {
	apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# shellcheck source=/dev/null
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
	echo "10-packages: the base image must be Debian 12, not ${PRETTY_NAME:-unknown}" >&2
	exit 1
fi

apt_get update
apt_get dist-upgrade
apt_get install --no-install-recommends \
	nftables unattended-upgrades \
	curl jq ca-certificates cloud-init openssh-server
