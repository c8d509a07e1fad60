#!/bin/bash
# image-test.sh BUILD_DIR: boot the qemu image that `make image` built and
# check it from the host, as an operator would.
#
#  1. Inspects the image without booting it: no SSH host keys, authorized
#     keys, machine-id, cloud-init state, logs or sallyport state inside.
#  2. Boots a copy-on-write overlay of it under qemu (software emulation
#     unless QEMU_ACCELERATOR=kvm) with a cloud-init NoCloud seed (a "cidata"
#     ISO) whose write_files puts /etc/sallyport/bootstrap.env (admin token)
#     and initial-objects.json (TLS settings and a gateway) in place, and
#     forwards the admin port (8443), a gateway port (443) and SSH to
#     127.0.0.1 on the host.
#  3. Reads the admin CA fingerprint from the serial console, fetches the CA
#     the admin API presents, checks that it matches, and calls GET /v1/status
#     over verified TLS with the first-boot token (and checks that a request
#     without it is refused); checks that the initial objects exist.
#  4. Once the appliance reports the gateway ready, sends a request to it
#     through the forwarded gateway port (no planner token, so the gateway
#     answers 401: it serves).
#  5. Over SSH: sallyportd active, Type=notify and watchdog in effect, its
#     real `systemd-analyze security` exposure, the firewall loaded; then
#     reboots and proves the second boot changed nothing (checksums of
#     /etc/sallyport and the marker, same CA, same token).
#
# Everything it starts listens on 127.0.0.1 only. Needs qemu-system-x86_64,
# qemu-img, genisoimage, debugfs, openssl, curl, jq, ssh (install-tools.sh
# --image). Environment: QEMU_ACCELERATOR (tcg), BOOT_TIMEOUT seconds (1800).
set -euo pipefail

build=${1:?usage: image-test.sh BUILD_DIR}
accel=${QEMU_ACCELERATOR:-tcg}
boot_timeout=${BOOT_TIMEOUT:-1800}
started=$(date +%s)

log() { printf '[image-test %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() {
	log "FAIL: $*"
	if [ -f "${work:-}/console.log" ]; then
		echo "---- last 60 lines of the serial console ($work/console.log) ----"
		tail -n 60 "$work/console.log"
	fi
	exit 1
}

shopt -s nullglob
images=("$build"/image/*.qcow2)
[ ${#images[@]} -eq 1 ] || fail "want exactly one image in $build/image (run make image)"
image=${images[0]}
log "image: $image ($(du -h "$image" | cut -f1))"

work=$build/image-test
rm -rf "$work"
mkdir -p "$work"
qemu_pid=""
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	rm -f "$work/raw.img"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# 1. The image at rest
# ---------------------------------------------------------------------------
qemu-img convert -O raw "$image" "$work/raw.img"
fsls() { debugfs -R "ls -p $1" "$work/raw.img" 2>/dev/null | awk -F/ 'NF > 5 && $6 != "." && $6 != ".." { print $6 }'; }
fsdump() { debugfs -R "dump $1 $2" "$work/raw.img" >/dev/null 2>&1; }
fsexists() { debugfs -R "stat $1" "$work/raw.img" 2>&1 | grep -q '^Inode:'; }
fssize() { debugfs -R "stat $1" "$work/raw.img" 2>/dev/null | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -n 1; }

if fsls /etc/ssh | grep -q '^ssh_host_'; then fail "SSH host keys in the image"; fi
for home in /root $(fsls /home | sed 's|^|/home/|'); do
	if fsexists "$home/.ssh/authorized_keys"; then fail "authorized keys in the image: $home"; fi
done
[ "$(fssize /etc/machine-id)" = 0 ] || fail "/etc/machine-id is not empty"
[ -z "$(fsls /var/lib/cloud)" ] || fail "cloud-init state in the image: $(fsls /var/lib/cloud | tr '\n' ' ')"
[ -z "$(fsls /var/lib/sallyport)" ] || fail "sallyport state in the image"
[ -z "$(fsls /var/log/journal)" ] || fail "journal files in the image"
for f in /usr/local/bin/sallyportd /usr/libexec/sallyport/firstboot /etc/systemd/system/sallyportd.service \
	/etc/nftables.conf /etc/ssh/sshd_config.d/10-sallyport-hardening.conf /etc/apt/apt.conf.d/52sallyport-unattended-upgrades; do
	fsexists "$f" || fail "$f missing from the image"
done
# The image boots its own (possibly upgraded) kernel.
kernel=$(fsls /boot | grep '^vmlinuz-' | sort -V | tail -n 1)
[ -n "$kernel" ] || fail "no kernel in /boot"
fsdump "/boot/$kernel" "$work/vmlinuz"
fsdump "/boot/initrd.img-${kernel#vmlinuz-}" "$work/initrd.img"
if [ ! -s "$work/vmlinuz" ] || [ ! -s "$work/initrd.img" ]; then fail "cannot read the kernel $kernel from the image"; fi
# sallyportd.service is Type=notify: a sallyportd that never sends READY=1
# would time out at every start, so say so now rather than after a boot.
fsdump /usr/local/bin/sallyportd "$work/sallyportd"
if ! grep -aq NOTIFY_SOCKET "$work/sallyportd"; then
	fail "the image's sallyportd does not implement sd_notify (no NOTIFY_SOCKET in the binary): sallyportd.service is Type=notify and would never become active"
fi
rm -f "$work/raw.img" "$work/sallyportd"
log "image at rest: clean (no host keys, authorized keys, machine-id, cloud-init state, logs); kernel ${kernel#vmlinuz-}"

# ---------------------------------------------------------------------------
# 2. First boot with a NoCloud seed
# ---------------------------------------------------------------------------
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}
admin_port=$(free_port)
gateway_port=$(free_port)
ssh_port=$(free_port)
token=spt_image-test-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
ssh-keygen -q -t ed25519 -N '' -C sallyport-image-test -f "$work/ssh-key"

mkdir -p "$work/seed"
cat >"$work/seed/meta-data" <<EOF
instance-id: sallyport-image-test-$(date +%s)
local-hostname: sallyport-test
EOF
cat >"$work/seed/user-data" <<EOF
#cloud-config
ssh_authorized_keys:
  - $(cat "$work/ssh-key.pub")
write_files:
  - path: /etc/sallyport/bootstrap.env
    owner: root:root
    permissions: "0600"
    content: |
      SALLYPORT_ADMIN_TOKEN=$token
      SALLYPORT_ADMIN_ADDR=0.0.0.0:8443
      SALLYPORT_ADMIN_SANS=sallyport-test.local
  - path: /etc/sallyport/initial-objects.json
    owner: root:root
    permissions: "0600"
    content: |
      [
        {"kind": "tls-settings", "name": "edge",
         "spec": {"certificate": {"source": "self_signed"}}},
        {"kind": "gateways", "name": "edge",
         "spec": {"listen_addr": "0.0.0.0:443", "hostnames": ["gw.sallyport.test"],
                  "tls_settings_id": {"\$ref": "tls-settings/edge"}}}
      ]
EOF
genisoimage -quiet -output "$work/seed.iso" -volid cidata -joliet -rock "$work/seed/user-data" "$work/seed/meta-data"
qemu-img create -q -f qcow2 -F qcow2 -b "$(realpath "$image")" "$work/overlay.qcow2"

boot() {
	: >"$work/console.log"
	qemu-system-x86_64 -machine "q35,accel=$accel" -cpu max -smp 2 -m 1536 \
		-display none -monitor none -serial "file:$work/console.log" \
		-kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
		-append "root=LABEL=sallyport-root ro console=ttyS0 net.ifnames=0" \
		-drive "file=$work/overlay.qcow2,if=virtio,format=qcow2,discard=unmap" \
		-drive "file=$work/seed.iso,if=virtio,format=raw,readonly=on" \
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$admin_port-:8443,hostfwd=tcp:127.0.0.1:$gateway_port-:443,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
		-device virtio-net-pci,netdev=n0 &
	qemu_pid=$!
}

ssh_vm() {
	ssh -q -i "$work/ssh-key" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=10 \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null debian@127.0.0.1 "$@"
}

# wait_console PATTERN: wait for PATTERN (extended regexp) on the console.
wait_console() {
	local deadline=$(($(date +%s) + boot_timeout))
	while ! grep -Eq "$1" "$work/console.log"; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited"
		[ "$(date +%s)" -lt "$deadline" ] || fail "no \"$1\" on the console within ${boot_timeout}s"
		sleep 5
	done
}

wait_ssh() {
	local deadline=$(($(date +%s) + boot_timeout))
	until ssh_vm true 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "no SSH within ${boot_timeout}s"
		sleep 5
	done
}

boot_start=$(date +%s)
log "first boot ($accel): admin -> 127.0.0.1:$admin_port, gateway -> 127.0.0.1:$gateway_port, ssh -> 127.0.0.1:$ssh_port"
boot
wait_console 'sallyport-firstboot: (bootstrap complete|error: )'
if grep -q 'sallyport-firstboot: error: ' "$work/console.log"; then
	fail "first boot failed: $(grep -a 'sallyport-firstboot: error: ' "$work/console.log")"
fi
fingerprint=$(grep -Eo 'admin API CA SHA-256 fingerprint: [0-9a-f]{64}' "$work/console.log" | tail -n 1 | awk '{print $NF}')
log "first boot done in $(($(date +%s) - boot_start))s; console fingerprint $fingerprint"

# ---------------------------------------------------------------------------
# 3. The admin API, from the host
# ---------------------------------------------------------------------------
# fetch_ca FILE: the certificate the admin API presents whose SHA-256 is the
# console fingerprint (the CA, sent in the chain), as PEM.
fetch_ca() {
	local chain=$work/chain.pem n fp
	openssl s_client -connect "127.0.0.1:$admin_port" -servername localhost -showcerts </dev/null 2>/dev/null |
		sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' >"$chain"
	rm -f "$work"/cert-*.pem
	awk -v dir="$work" '/-----BEGIN CERTIFICATE-----/ { n++ } { print > (dir "/cert-" n ".pem") }' "$chain"
	for n in "$work"/cert-*.pem; do
		fp=$(openssl x509 -in "$n" -outform DER | sha256sum | cut -d' ' -f1)
		if [ "$fp" = "$fingerprint" ]; then
			cp "$n" "$1"
			return 0
		fi
	done
	return 1
}
fetch_ca "$work/admin-ca.pem" || fail "the admin API does not present the CA whose fingerprint the console shows"

api() {
	curl -sS --max-time 30 --cacert "$work/admin-ca.pem" -H "Authorization: Bearer $token" "$@"
}
status=$(api -o "$work/status.json" -w '%{http_code}' "https://127.0.0.1:$admin_port/v1/status")
[ "$status" = 200 ] || fail "GET /v1/status: HTTP $status: $(cat "$work/status.json")"
version=$(jq -r .version "$work/status.json")
log "admin API: GET /v1/status over verified TLS with the first-boot token: 200, version $version"
status=$(curl -sS --max-time 30 --cacert "$work/admin-ca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$admin_port/v1/status")
[ "$status" = 401 ] || fail "GET /v1/status without a token: HTTP $status, want 401"
log "admin API: without the token: 401"
status=$(api -o "$work/metrics.txt" -w '%{http_code}' "https://127.0.0.1:$admin_port/metrics")
if [ "$status" = 200 ]; then
	log "admin API: /metrics: 200 ($(grep -vc '^#' "$work/metrics.txt") samples)"
else
	log "admin API: /metrics: HTTP $status (not checked further)"
fi

for kind in tls-settings gateways; do
	api -o "$work/$kind.json" "https://127.0.0.1:$admin_port/v1/$kind?name=edge"
	n=$(jq '.items | length' "$work/$kind.json")
	[ "$n" = 1 ] || fail "initial objects: $n $kind named edge, want 1"
done
gateway_id=$(jq -r '.items[0].id' "$work/gateways.json")
log "initial objects: tls-settings/edge and gateways/edge ($gateway_id) exist"

# ---------------------------------------------------------------------------
# 4. A request through the gateway
# ---------------------------------------------------------------------------
ready=false
for _ in $(seq 1 12); do
	api -o "$work/gateway.json" "https://127.0.0.1:$admin_port/v1/gateways/$gateway_id"
	ready=$(jq -r '.status.ready' "$work/gateway.json")
	[ "$ready" = true ] && break
	sleep 5
done
[ "$ready" = true ] ||
	fail "gateways/edge did not become ready: $(jq -r '.status.message // "no status message"' "$work/gateway.json")"
# -k: the self_signed certificate comes from the appliance's internal CA
# (not the admin CA); what is checked here is that the gateway serves.
status=$(curl -sS --max-time 30 -k --resolve "gw.sallyport.test:$gateway_port:127.0.0.1" \
	-o "$work/gateway-response.txt" -w '%{http_code}' "https://gw.sallyport.test:$gateway_port/" || true)
case $status in
000 | "") fail "the gateway is ready but did not answer over TLS on port 443" ;;
*) log "gateway: served a request on 443 through the forwarded port (TLS, SNI gw.sallyport.test): HTTP $status" ;;
esac

# ---------------------------------------------------------------------------
# 5. Inside the appliance, and a second boot
# ---------------------------------------------------------------------------
wait_ssh
checks() {
	ssh_vm sudo bash -s <<'EOF'
set -e
systemctl is-active sallyportd.service
systemctl show -p Type -p WatchdogUSec -p NotifyAccess -p User sallyportd.service | tr "\n" " "
echo
systemctl is-active nftables.service
sha256sum /etc/sallyport/sallyportd.env /etc/sallyport/admin-ca.sha256 /etc/sallyport/bootstrap.env \
	/var/lib/sallyport/.bootstrapped /var/lib/sallyport/admin-ca.pem
stat -c "%a %U %n" /etc/sallyport/sallyportd.env /etc/sallyport/bootstrap.env /var/lib/sallyport
EOF
}
checks >"$work/inside-1.txt" || fail "checks inside the VM failed: $(cat "$work/inside-1.txt")"
grep -q '^active' "$work/inside-1.txt" || fail "sallyportd is not active: $(cat "$work/inside-1.txt")"
grep -q 'Type=notify' "$work/inside-1.txt" || fail "sallyportd is not Type=notify"
grep -q 'WatchdogUSec=30s' "$work/inside-1.txt" || fail "sallyportd has no 30s watchdog"
grep -q '^600 root .*/sallyportd.env' "$work/inside-1.txt" || fail "sallyportd.env is not 0600 root"
grep -q '^700 sallyport /var/lib/sallyport' "$work/inside-1.txt" || fail "/var/lib/sallyport is not 0700 sallyport"
exposure=$(ssh_vm sudo systemd-analyze security --no-pager sallyportd.service | grep 'Overall exposure' | sed 's/^→ //')
log "inside: sallyportd active (Type=notify, WatchdogUSec=30s), nftables active; $exposure"
ssh_vm sudo nft list ruleset >"$work/nft.txt"
grep -q 'policy drop' "$work/nft.txt" || fail "the firewall does not drop by default"
ssh_vm sudo journalctl -b -u sallyport-firstboot -u sallyport-firstboot-finish -u sallyportd --no-pager >"$work/journal-1.txt" || true

log "rebooting"
reboot_start=$(date +%s)
ssh_vm sudo systemctl reboot || true
# qemu keeps running across a guest reboot: wait for SSH to go away and back.
for _ in $(seq 1 60); do
	ssh_vm true 2>/dev/null || break
	sleep 2
done
wait_ssh
# sallyportd must come back up by itself.
for _ in $(seq 1 60); do
	ssh_vm systemctl is-active sallyportd.service >/dev/null 2>&1 && break
	sleep 5
done
checks >"$work/inside-2.txt" || fail "checks after the reboot failed: $(cat "$work/inside-2.txt")"
log "second boot up in $(($(date +%s) - reboot_start))s"
if ! diff -u "$work/inside-1.txt" "$work/inside-2.txt"; then
	fail "the second boot changed the appliance configuration"
fi
ssh_vm sudo journalctl -b -u sallyport-firstboot -u sallyport-firstboot-finish --no-pager >"$work/journal-2.txt" || true
if grep -q 'skipped because' "$work/journal-2.txt"; then
	log "second boot: the first-boot units were skipped (already bootstrapped)"
else
	log "note: the first-boot units ran again on the second boot (see $work/journal-2.txt)"
fi
fetch_ca "$work/admin-ca-2.pem" || fail "after the reboot the admin API presents another CA"
status=$(api -o /dev/null -w '%{http_code}' "https://127.0.0.1:$admin_port/v1/status")
[ "$status" = 200 ] || fail "after the reboot GET /v1/status: HTTP $status"
log "second boot: same configuration checksums, same CA, same token: unchanged"

log "PASS in $(($(date +%s) - started))s"
