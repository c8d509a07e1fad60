#!/bin/bash
# 90-cleanup.sh: leave nothing instance-specific or secret in the image: no
# SSH host keys or authorized keys, no machine-id, no cloud-init state, no
# logs, no shell history, no DHCP leases, no random seed, no package caches,
# no sallyport state. Runs last; every instance made from the image starts
# from a clean first boot.
set -euo pipefail

staging=${SALLYPORT_STAGING:-/tmp/sallyport}

apt-get -y -q autoremove --purge
apt-get -q clean
rm -rf /var/lib/apt/lists/*

# Sallyport: no configuration or state from the build.
rm -f /etc/sallyport/bootstrap.env /etc/sallyport/sallyportd.env /etc/sallyport/admin-ca.sha256 \
	/etc/sallyport/initial-objects.json
find /var/lib/sallyport -mindepth 1 -delete
rm -rf "$staging"

# Identity of this build machine.
rm -f /etc/ssh/ssh_host_*
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
rm -f /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
rm -f /var/lib/dhcp/*.leases /var/lib/dhcp/*.lease

# cloud-init runs again, as on a first boot, in every instance.
cloud-init clean --logs --seed

# Keys and history of every account (cloud-init adds the instance's keys).
for home in /root /home/*; do
	[ -d "$home" ] || continue
	rm -f "$home/.ssh/authorized_keys" "$home/.bash_history" "$home/.lesshst" "$home/.viminfo" \
		"$home/.wget-hsts" "$home/.sudo_as_admin_successful"
done

# Logs: the journal and every file under /var/log.
# --relinquish-var: journald logs to /run until the shutdown, so nothing
# new lands in /var/log/journal after this.
journalctl --relinquish-var >/dev/null 2>&1 || true
rm -rf /var/log/journal/*
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +

rm -rf /tmp/* /var/tmp/*
unset HISTFILE
sync
echo "90-cleanup: done"
