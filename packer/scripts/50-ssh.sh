#!/bin/bash
# 50-ssh.sh: harden OpenSSH (keys only, no root, no forwarding), or disable
# it when $SALLYPORT_ALLOW_SSH is not true. Takes effect at the next boot, so
# the build's own SSH session is unaffected.
set -euo pipefail

staging=${SALLYPORT_STAGING:-/tmp/sallyport}
allow_ssh=${SALLYPORT_ALLOW_SSH:-true}

# sshd_config includes sshd_config.d/*.conf first, and the first value of a
# keyword wins: 10- sorts before cloud-init's 50-cloud-init.conf.
install -m 0644 -o root -g root "$staging/sshd-hardening.conf" /etc/ssh/sshd_config.d/10-sallyport-hardening.conf

# The image ships without host keys; cloud-init creates them at first boot,
# and this drop-in does so too when cloud-init is disabled.
install -d -m 0755 /etc/systemd/system/ssh.service.d
install -m 0644 -o root -g root "$staging/ssh-hostkeys.conf" /etc/systemd/system/ssh.service.d/10-sallyport-hostkeys.conf

# sshd -t needs host keys: check the configuration with throw-away ones.
keydir=$(mktemp -d)
trap 'rm -rf "$keydir"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$keydir/key"
sshd -t -h "$keydir/key"

if [ "$allow_ssh" = true ]; then
	systemctl enable ssh.service
else
	systemctl disable ssh.service
	systemctl mask ssh.socket
	echo "50-ssh: SSH disabled in the image"
fi
