#!/bin/bash
# run-packer.sh COMMAND [ARGS...]: run `packer COMMAND ARGS... DIR` on the
# appliance template, with whichever Packer is installed.
#
# Packer 1.7 and later: DIR is packer/ itself, after `packer init` installs
# the plugins of plugins.pkr.hcl (that needs the plugin download site).
#
# Packer 1.6.6 (Debian 12's package, the only one these machines can install)
# has the amazon-ebs, googlecompute, azure-arm and qemu builders built in but
# rejects the `required_plugins` block of plugins.pkr.hcl, and a directory
# is read whole. So DIR is a temporary directory of symbolic links to every
# other file of packer/ (the *.pkr.hcl files, files/, scripts/, .build/):
# the same template minus its plugin requirements, with path.root working as
# in packer/.
#
# Environment: PACKER (default packer).
set -euo pipefail

packer=${PACKER:-packer}
# No version check against HashiCorp's servers (unreachable from CI anyway).
export CHECKPOINT_DISABLE=1
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || {
	echo "usage: $0 COMMAND [ARGS...]" >&2
	exit 2
}

version=$("$packer" version | sed -n 's/^Packer v\([0-9][0-9.]*\).*/\1/p' | head -n 1)
case $version in
'')
	echo "run-packer: cannot tell the version of $packer" >&2
	exit 1
	;;
1.[0-6] | 1.[0-6].*)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/sallyport-packer.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
	for f in "$here"/*.pkr.hcl "$here/files" "$here/scripts" "$here/.build"; do
		case $(basename "$f") in plugins.pkr.hcl) continue ;; esac
		if [ -e "$f" ]; then
			ln -s "$f" "$dir/"
		fi
	done
	;;
*)
	dir=$here
	if [ "$1" != fmt ]; then
		"$packer" init "$dir"
	fi
	;;
esac

"$packer" "$@" "$dir"
