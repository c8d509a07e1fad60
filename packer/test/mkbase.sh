#!/bin/sh
# mkbase.sh OUTDIR: make a Debian 12 base disk for the qemu source of the
# appliance template, from Debian's packages only (no cloud image download).
#
# It stands in for the Debian cloud images the cloud sources start from: a
# debootstrapped root file system with a kernel, systemd, cloud-init and
# OpenSSH, written straight into an ext4 file system image (mkfs.ext4 -d, so no
# loop device or mount is needed) and converted to qcow2. The disk has no
# partition table and no boot loader: qemu boots it with -kernel/-initrd, using
# the kernel and initrd copied out next to it.
#
# Outputs in OUTDIR: base.qcow2, vmlinuz, initrd.img. An existing base.qcow2 is
# kept (delete OUTDIR to rebuild).
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
# DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
# BASE_DISK_SIZE (default 4G). Needs root, debootstrap, e2fsprogs, qemu-utils.
set -eu

outdir=${1:?usage: mkbase.sh OUTDIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
size=${BASE_DISK_SIZE:-4G}

if [ -s "$outdir/base.qcow2" ] && [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/initrd.img" ]; then
	echo "mkbase: $outdir/base.qcow2 exists, keeping it"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "mkbase: must run as root (debootstrap)" >&2
	exit 1
fi

mkdir -p "$outdir"
root="$outdir/rootfs"
rm -rf "$root"
mkdir -p "$root"

cleanup() {
	for m in dev/pts dev proc sys; do
		if mountpoint -q "$root/$m" 2>/dev/null; then
			umount -l "$root/$m" || true
		fi
	done
}
trap cleanup EXIT INT TERM

echo "mkbase: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF

# What a Debian cloud image has that matters here: a cloud kernel, systemd,
# cloud-init, ifupdown with a DHCP client, OpenSSH and sudo. apt (unlike
# debootstrap's own resolver) handles virtual packages such as the ones
# cloud-init's Python dependencies need.
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get update
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -y dist-upgrade
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	linux-image-cloud-amd64 initramfs-tools systemd-sysv systemd-timesyncd udev dbus \
	cloud-init cloud-guest-utils openssh-server sudo curl ifupdown isc-dhcp-client \
	netbase iproute2 e2fsprogs less procps apt-utils
rm -f "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get clean

cat >"$root/etc/fstab" <<'EOF'
LABEL=sallyport-root / ext4 errors=remount-ro 0 1
EOF

echo debian >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
EOF

cat >"$root/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

source /etc/network/interfaces.d/*
EOF

# Under qemu the only datasource is a NoCloud seed (a cidata disk or a
# ds=nocloud-net URL on the kernel command line); do not probe cloud APIs.
cat >"$root/etc/cloud/cloud.cfg.d/90-sallyport-qemu.cfg" <<'EOF'
datasource_list: [NoCloud, None]
manage_etc_hosts: true
locale: C.UTF-8
EOF

# A debootstrapped system has a machine-id; a base image must not.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
chroot "$root" passwd -l root >/dev/null

cp -L "$root/vmlinuz" "$outdir/vmlinuz"
cp -L "$root/initrd.img" "$outdir/initrd.img"
chmod 0644 "$outdir/vmlinuz" "$outdir/initrd.img"

cleanup
rm -f "$root/etc/resolv.conf"
rm -rf "$root/var/lib/apt/lists/"*_Packages

echo "mkbase: writing $outdir/base.qcow2 ($size)"
rm -f "$outdir/base.raw"
mkfs.ext4 -q -F -L sallyport-root -d "$root" "$outdir/base.raw" "$size"
qemu-img convert -O qcow2 "$outdir/base.raw" "$outdir/base.qcow2.tmp"
mv "$outdir/base.qcow2.tmp" "$outdir/base.qcow2"
rm -f "$outdir/base.raw"
rm -rf "$root"
echo "mkbase: done"
