#!/usr/bin/env bash
# Installs what `make bench` needs beside Go: nginx, wrk and h2load from
# Debian's packages (only when missing), and Caddy built from the Go module
# proxy at a pinned version into the bench bin directory. Caddy is built
# with `go install pkg@version`, outside this repository's module, so it
# never becomes a dependency of the provider or the appliance.
#
# Usage: appliance/bench/install.sh BIN_DIR
set -euo pipefail

# CADDY_VERSION is the Caddy release the benchmarks compare against.
CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"

bin_dir="${1:?usage: install.sh BIN_DIR}"
mkdir -p "$bin_dir"
bin_dir="$(cd "$bin_dir" && pwd)"

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
if ((${#missing[@]} > 0)); then
	echo "install.sh: installing ${missing[*]} from the Debian archive" >&2
	sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
	# Debian starts the packaged nginx as a service; the harness runs its
	# own instances and needs none listening on port 80.
	if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1; then
		"${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
	fi
	if [[ -f /run/nginx.pid ]]; then
		"${sudo[@]}" nginx -s stop >/dev/null 2>&1 || true
	fi
fi

# caddy_version prints the Caddy module version a binary was built from
# (`caddy version` says "unknown" for a `go install` build).
caddy_version() {
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/caddyserver/caddy/v2" { print $3 }'
}

caddy="$bin_dir/caddy"
if [[ ! -x "$caddy" ]] || [[ "$(caddy_version "$caddy")" != "$CADDY_VERSION" ]]; then
	echo "install.sh: building Caddy ${CADDY_VERSION} from the Go module proxy" >&2
	# Build outside any module (an empty directory), so that neither this
	# repository's go.mod nor the caller's GOFLAGS take part.
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && GOBIN="$bin_dir" GOFLAGS=-mod=mod go install "github.com/caddyserver/caddy/v2/cmd/caddy@${CADDY_VERSION}")
fi
"$caddy" version >/dev/null
