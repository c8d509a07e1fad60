#!/bin/bash
# 40-unattended-upgrades.sh: install Debian security updates every day,
# unattended. sallyportd itself is not a Debian package: it is upgraded by
# rolling out a new image (see docs/guides/appliance.md).
set -euo pipefail

cat >/etc/apt/apt.conf.d/20auto-upgrades <<'APT'
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
APT

# Only the security archive; no reboots (kernel updates apply at the next
# planned reboot or image roll-out).
cat >/etc/apt/apt.conf.d/52sallyport-unattended-upgrades <<'APT'
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
	"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
	"origin=Debian,codename=${distro_codename},label=Debian-Security";
};
Unattended-Upgrade::Automatic-Reboot "false";
Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";
Unattended-Upgrade::Remove-Unused-Dependencies "true";
Unattended-Upgrade::SyslogEnable "true";
APT
chmod 0644 /etc/apt/apt.conf.d/20auto-upgrades /etc/apt/apt.conf.d/52sallyport-unattended-upgrades

# Fail the build if apt no longer parses its configuration.
apt-config dump >/dev/null
systemctl enable apt-daily.timer apt-daily-upgrade.timer unattended-upgrades.service
