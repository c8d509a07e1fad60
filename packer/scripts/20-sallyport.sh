#!/bin/bash
# 20-sallyport.sh: install sallyportd, its system user, directories, systemd
# units and the first-boot script from $SALLYPORT_STAGING (uploaded by the
# file provisioners).
set -euo pipefail

staging=${SALLYPORT_STAGING:-/tmp/sallyport}

# A system user with no login and no home of its own.
if ! getent passwd sallyport >/dev/null; then
	useradd --system --user-group --home-dir /var/lib/sallyport --no-create-home \
		--shell /usr/sbin/nologin --comment "Sallyport gateway" sallyport
fi

install -d -m 0755 -o root -g root /etc/sallyport
install -d -m 0700 -o sallyport -g sallyport /var/lib/sallyport
install -d -m 0755 /usr/libexec/sallyport

install -m 0755 -o root -g root "$staging/sallyportd" /usr/local/bin/sallyportd
install -m 0755 -o root -g root "$staging/firstboot" /usr/libexec/sallyport/firstboot

# The binary must run here (right architecture, not truncated).
installed_version=$(/usr/local/bin/sallyportd version)
echo "20-sallyport: installed sallyportd $installed_version"

for unit in sallyportd.service sallyport-firstboot.service sallyport-firstboot-finish.service; do
	install -m 0644 -o root -g root "$staging/$unit" "/etc/systemd/system/$unit"
done

# Baked-in first-boot settings: where instance metadata holds bootstrap.env.
{
	echo "# Read by /usr/libexec/sallyport/firstboot when /etc/sallyport/bootstrap.env is missing."
	if [ -n "${SALLYPORT_BOOTSTRAP_URL:-}" ]; then
		printf 'SALLYPORT_BOOTSTRAP_URL=%s\n' "$SALLYPORT_BOOTSTRAP_URL"
	fi
	if [ -n "${SALLYPORT_BOOTSTRAP_URL_HEADER:-}" ]; then
		printf "SALLYPORT_BOOTSTRAP_URL_HEADER='%s'\n" "$SALLYPORT_BOOTSTRAP_URL_HEADER"
	fi
} >/etc/sallyport/firstboot.conf
chmod 0644 /etc/sallyport/firstboot.conf

cat >/etc/sallyport/image-release <<RELEASE
SALLYPORT_IMAGE_VERSION=${SALLYPORT_VERSION:-unknown}
SALLYPORTD_VERSION=$installed_version
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
RELEASE
chmod 0644 /etc/sallyport/image-release

# Fail on any complaint about our units (other units' warnings are not ours).
verify=$(systemd-analyze verify /etc/systemd/system/sallyportd.service \
	/etc/systemd/system/sallyport-firstboot.service \
	/etc/systemd/system/sallyport-firstboot-finish.service 2>&1) || true
if grep -i sallyport <<<"$verify"; then
	echo "20-sallyport: systemd-analyze verify found problems in the units" >&2
	exit 1
fi
systemctl daemon-reload
systemctl enable sallyportd.service sallyport-firstboot.service sallyport-firstboot-finish.service
