#!/bin/bash
# sallyport-firstboot: turn first-boot inputs into the appliance configuration.
#
# Installed in the image as /usr/libexec/sallyport/firstboot and run by two
# oneshot units:
#
#   firstboot configure   sallyport-firstboot.service, after cloud-init wrote
#                         its files and before sallyportd.service: reads the
#                         inputs and writes /etc/sallyport/sallyportd.env.
#   firstboot finish      sallyport-firstboot-finish.service, once
#                         sallyportd.service is ready: publishes the admin CA
#                         fingerprint (serial console and
#                         /etc/sallyport/admin-ca.sha256), applies the optional
#                         initial objects, and marks the appliance
#                         bootstrapped.
#
# Inputs: /etc/sallyport/bootstrap.env, KEY=VALUE lines (usually written by
# cloud-init write_files). When it does not exist and SALLYPORT_BOOTSTRAP_URL
# is set (in the environment or in /etc/sallyport/firstboot.conf, baked into
# the image), its content is fetched from that URL (instance metadata) once,
# with the optional header SALLYPORT_BOOTSTRAP_URL_HEADER, and stored as
# bootstrap.env. Keys:
#
#   SALLYPORT_ADMIN_TOKEN       plaintext admin token; only its SHA-256 is
#                               handed to sallyportd
#   SALLYPORT_ADMIN_TOKEN_HASH  or the token's hash, sha256:<64 hex digits>
#                               (neither: sallyportd generates a token into
#                               /var/lib/sallyport/admin-token)
#   SALLYPORT_ADMIN_ADDR        admin API listen address (0.0.0.0:8443)
#   SALLYPORT_ADMIN_SANS        extra names/IPs for the admin certificate,
#                               separated by commas or spaces
#   SALLYPORT_STORE_DSN         PostgreSQL DSN, reserved for the shared-state
#                               backend (passed on as is)
#   SALLYPORT_INITIAL_OBJECTS   initial objects file
#                               (/etc/sallyport/initial-objects.json)
#   any other SALLYPORT_*       passed on to sallyportd as is
#
# Idempotent: outputs are rewritten only when their content would change, and
# existing objects (same kind and name) are left alone, so running it again
# with the same inputs changes nothing.
#
# Every path is relative to $SALLYPORT_ROOT (empty in the image), so tests
# run it against a temporary directory. SALLYPORT_CONSOLE (/dev/console),
# SALLYPORT_USER (sallyport) and SALLYPORT_WAIT_SECONDS (120) are for tests
# too.
set -euo pipefail
umask 077

readonly prog=sallyport-firstboot
readonly root=${SALLYPORT_ROOT:-}
readonly etc_dir=$root/etc/sallyport
# The data directory as sallyportd sees it, and where it is on this disk.
readonly data_dir_image=/var/lib/sallyport
readonly data_dir=$root$data_dir_image
readonly bootstrap_env=$etc_dir/bootstrap.env
readonly firstboot_conf=$etc_dir/firstboot.conf
readonly env_file=$etc_dir/sallyportd.env
readonly fingerprint_file=$etc_dir/admin-ca.sha256
readonly marker=$data_dir/.bootstrapped
readonly service_user=${SALLYPORT_USER:-sallyport}
readonly wait_seconds=${SALLYPORT_WAIT_SECONDS:-120}
readonly default_admin_addr=0.0.0.0:8443

log() { printf '%s: %s\n' "$prog" "$*" >&2; }

# console MESSAGE: to the serial console, when one is writable. Operators read
# it through their cloud's console output, without logging in.
console() {
	local dev
	for dev in ${SALLYPORT_CONSOLE:-/dev/console /dev/ttyS0}; do
		if [ -w "$dev" ] && { [ -c "$dev" ] || [ -f "$dev" ]; }; then
			if printf '%s: %s\n' "$prog" "$1" >>"$dev" 2>/dev/null; then
				return 0
			fi
		fi
	done
}

# announce MESSAGE: to the journal and the console.
announce() {
	log "$1"
	console "$1"
}

die() {
	announce "error: $*"
	exit 1
}

admin_url=""
tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

# Inputs, filled by load_inputs.
declare -A input=()
declare -a input_order=()

# parse_env FILE: read KEY=VALUE lines into input[]. Blank lines and comments
# are skipped, "export " is allowed, and one pair of matching quotes around a
# value is removed. The file is parsed, never sourced.
parse_env() {
	local file=$1 line key value n=0
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%$'\r'}
		line=${line#"${line%%[![:space:]]*}"}
		case $line in '' | '#'*) continue ;; esac
		line=${line#export }
		if [[ ! $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
			die "$file:$n: not a KEY=VALUE line"
		fi
		key=${line%%=*}
		value=${line#*=}
		if [[ $value =~ ^\"(.*)\"$ ]] || [[ $value =~ ^\'(.*)\'$ ]]; then
			value=${BASH_REMATCH[1]}
		fi
		case $key in
		SALLYPORT_*) ;;
		*)
			log "$file:$n: ignoring $key (not a SALLYPORT_ key)"
			continue
			;;
		esac
		if [ -z "${input[$key]+set}" ]; then
			input_order+=("$key")
		fi
		input[$key]=$value
	done <"$file"
}

# fetch_bootstrap: store the bootstrap inputs from SALLYPORT_BOOTSTRAP_URL as
# bootstrap.env, when that file does not exist yet.
fetch_bootstrap() {
	local url=${SALLYPORT_BOOTSTRAP_URL:-} header=${SALLYPORT_BOOTSTRAP_URL_HEADER:-}
	if [ -f "$firstboot_conf" ]; then
		parse_env "$firstboot_conf"
		url=${input[SALLYPORT_BOOTSTRAP_URL]:-$url}
		header=${input[SALLYPORT_BOOTSTRAP_URL_HEADER]:-$header}
		input=()
		input_order=()
	fi
	if [ -e "$bootstrap_env" ] || [ -z "$url" ]; then
		return 0
	fi
	log "fetching bootstrap inputs from $url"
	local args=(--silent --show-error --fail --location --max-time 10 --retry 5 --retry-delay 2 --retry-connrefused)
	if [ -n "$header" ]; then
		args+=(--header "$header")
	fi
	curl "${args[@]}" --output "$tmpdir/bootstrap.env" "$url" ||
		die "could not fetch bootstrap inputs from $url"
	install -D -m 0600 "$tmpdir/bootstrap.env" "$bootstrap_env"
}

load_inputs() {
	fetch_bootstrap
	if [ -f "$bootstrap_env" ]; then
		# The file may hold a plaintext token and a DSN with a password.
		chmod 0600 "$bootstrap_env"
		parse_env "$bootstrap_env"
	else
		log "no $bootstrap_env: using defaults (sallyportd generates the admin token)"
	fi
}

# put_file PATH MODE: install $tmpdir/new as PATH with MODE unless PATH
# already has exactly that content and mode. Prints "changed" or "unchanged".
put_file() {
	local path=$1 mode=$2
	if [ -f "$path" ] && cmp -s "$tmpdir/new" "$path" &&
		[ "$(stat -c %a "$path")" = "${mode#0}" ]; then
		echo unchanged
		return 0
	fi
	install -D -m "$mode" "$tmpdir/new" "$path.tmp"
	mv -f "$path.tmp" "$path"
	echo changed
}

# env_quote VALUE: VALUE as a double-quoted systemd EnvironmentFile value.
env_quote() {
	local v=$1
	v=${v//\\/\\\\}
	v=${v//\"/\\\"}
	printf '"%s"' "$v"
}

normalize_hash() {
	local h=${1,,}
	h=${h#sha256:}
	[[ $h =~ ^[0-9a-f]{64}$ ]] ||
		die "SALLYPORT_ADMIN_TOKEN_HASH must be sha256: followed by the 64 hex digits of the token's SHA-256"
	printf 'sha256:%s' "$h"
}

trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	printf '%s' "$s"
}

check_addr() {
	local addr=$1 port=${1##*:}
	if [[ $addr != *:* ]] || [[ ! $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
		die "SALLYPORT_ADMIN_ADDR=$addr is not HOST:PORT"
	fi
}

# admin_host ADDR: the host part of HOST:PORT, without IPv6 brackets.
admin_host() {
	local host=${1%:*}
	host=${host#[}
	host=${host%]}
	printf '%s' "$host"
}

admin_addr() {
	local addr=${input[SALLYPORT_ADMIN_ADDR]:-$default_admin_addr}
	check_addr "$addr"
	printf '%s' "$addr"
}

cmd_configure() {
	load_inputs
	local token hash="" addr host key sans=() serve_args=""
	token=$(trim "${input[SALLYPORT_ADMIN_TOKEN]:-}")
	if [ -n "$token" ] && [ -n "${input[SALLYPORT_ADMIN_TOKEN_HASH]:-}" ]; then
		die "give SALLYPORT_ADMIN_TOKEN or SALLYPORT_ADMIN_TOKEN_HASH, not both"
	fi
	if [ -n "$token" ]; then
		hash=sha256:$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
	elif [ -n "${input[SALLYPORT_ADMIN_TOKEN_HASH]:-}" ]; then
		hash=$(normalize_hash "${input[SALLYPORT_ADMIN_TOKEN_HASH]}")
	fi
	addr=$(admin_addr)

	# The admin certificate always names localhost and the loopback
	# addresses; a specific listen address is added so clients can verify it.
	host=$(admin_host "$addr")
	case $host in '' | 0.0.0.0 | :: | localhost | 127.0.0.1 | ::1) ;; *) sans+=("$host") ;; esac
	local list=${input[SALLYPORT_ADMIN_SANS]:-}
	list=${list//,/ }
	local san
	for san in $list; do
		[[ $san =~ ^[A-Za-z0-9.:_-]+$ ]] || die "SALLYPORT_ADMIN_SANS: $san is not a host name or IP address"
		case " ${sans[*]} " in *" $san "*) ;; *) sans+=("$san") ;; esac
	done
	for san in "${sans[@]}"; do
		serve_args+="${serve_args:+ }--admin-san $san"
	done

	{
		echo "# Written by $prog from $bootstrap_env; edits are kept until it runs again."
		echo "SALLYPORT_DATA_DIR=$data_dir_image"
		echo "SALLYPORT_ADMIN_ADDR=$addr"
		if [ -n "$hash" ]; then
			echo "SALLYPORT_ADMIN_TOKEN_HASH=$hash"
		fi
		if [ -n "$serve_args" ]; then
			echo "SALLYPORT_SERVE_ARGS=$(env_quote "$serve_args")"
		fi
		for key in "${input_order[@]}"; do
			case $key in
			SALLYPORT_ADMIN_TOKEN | SALLYPORT_ADMIN_TOKEN_HASH | SALLYPORT_ADMIN_ADDR | SALLYPORT_ADMIN_SANS | \
				SALLYPORT_INITIAL_OBJECTS | SALLYPORT_BOOTSTRAP_URL | SALLYPORT_BOOTSTRAP_URL_HEADER | SALLYPORT_SERVE_ARGS)
				;;
			SALLYPORT_DATA_DIR)
				log "ignoring SALLYPORT_DATA_DIR: the appliance keeps its state in $data_dir_image"
				;;
			*)
				echo "$key=$(env_quote "${input[$key]}")"
				;;
			esac
		done
	} >"$tmpdir/new"

	if [ ! -d "$data_dir" ]; then
		install -d -m 0700 "$data_dir"
	fi
	if id -u "$service_user" >/dev/null 2>&1; then
		if [ "$(stat -c %U "$data_dir")" != "$service_user" ]; then
			chown "$service_user:" "$data_dir"
		fi
	else
		log "warning: no user $service_user; $data_dir left owned by $(stat -c %U "$data_dir")"
	fi

	local result token_note="generated by sallyportd into $data_dir_image/admin-token"
	if [ -n "$hash" ]; then
		token_note="given ($hash)"
	fi
	result=$(put_file "$env_file" 0600)
	log "$env_file $result (admin API on $addr; admin token $token_note)"
}

# fingerprint_pem FILE: SHA-256 of the DER of the first certificate in FILE,
# as 64 lower-case hex digits.
fingerprint_pem() {
	sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{p;/-----END CERTIFICATE-----/q}' "$1" |
		sed '/-----/d' | base64 -d | sha256sum | cut -d' ' -f1
}

# api METHOD PATH [BODY_FILE]: call the admin API; the response body is left
# in $tmpdir/response and the HTTP status is printed.
api() {
	local method=$1 path=$2 body=${3:-}
	local args=(--silent --show-error --max-time 30 --cacert "$data_dir/admin-ca.pem"
		--request "$method" --output "$tmpdir/response" --write-out '%{http_code}')
	if [ -s "$tmpdir/auth" ]; then
		args+=(--header "@$tmpdir/auth")
	fi
	if [ -n "$body" ]; then
		args+=(--header 'Content-Type: application/json' --data-binary "@$body")
	fi
	# On a connection failure curl exits non-zero and writes 000.
	curl "${args[@]}" "$admin_url$path" || true
}

api_error() {
	jq -r '.error + ([.problems[]? | " " + .field + ": " + .message] | join(";"))' \
		"$tmpdir/response" 2>/dev/null || cat "$tmpdir/response"
}

# wait_for_api: wait until the admin API answers: 200 with the token, or,
# without one, 401 (it is up and refuses anonymous calls).
wait_for_api() {
	local status="" i
	for ((i = 0; i < wait_seconds; i++)); do
		status=$(api GET /v1/status 2>/dev/null)
		case $status in
		200) return 0 ;;
		401)
			if [ -s "$tmpdir/auth" ]; then
				die "the admin API refused the admin token (401)"
			fi
			return 0
			;;
		esac
		sleep 1
	done
	die "the admin API at $admin_url did not answer within ${wait_seconds}s (last HTTP status ${status:-none}); see journalctl -u sallyportd"
}

# apply_objects FILE: create each object of FILE that does not exist yet.
apply_objects() {
	local file=$1 count i kind coll name query key id status
	jq -e 'if type == "array" then . else .objects end | type == "array"' "$file" >/dev/null ||
		die "$file: want a JSON array of {\"kind\", \"name\", \"spec\"} objects (or {\"objects\": [...]})"
	jq 'if type == "array" then . else .objects end' "$file" >"$tmpdir/objects.json"
	count=$(jq length "$tmpdir/objects.json")
	echo '{}' >"$tmpdir/ids.json"
	for ((i = 0; i < count; i++)); do
		IFS=$'\t' read -r kind name < <(jq -r --argjson i "$i" '.[$i] | [.kind // "", .name // ""] | @tsv' "$tmpdir/objects.json")
		case $kind in
		tls-settings | tls_settings) coll=tls-settings ;;
		gateway | gateways) coll=gateways ;;
		connection | connections) coll=connections ;;
		identity-binding | identity-bindings | identity_binding | identity_bindings) coll=identity-bindings ;;
		*) die "$file: object $i: unknown kind \"$kind\" (tls-settings, gateways, connections, identity-bindings)" ;;
		esac
		[ -n "$name" ] || die "$file: object $i: no name"
		key=$coll/$name
		# {"$ref": "KIND/NAME"} anywhere in the spec becomes that object's id.
		jq --argjson i "$i" --slurpfile ids "$tmpdir/ids.json" --arg key "$key" '
			.[$i] | {name, spec: ((.spec // {}) | walk(
				if type == "object" and has("$ref") then
					($ids[0][.["$ref"]] // error("\($key): unresolved reference \(.["$ref"]) (refer to an earlier object as KIND/NAME)"))
				else . end))}' "$tmpdir/objects.json" >"$tmpdir/body.json" ||
			die "$file: object $i ($key): bad spec or reference"
		# Names are unique per gateway (connections) or per connection
		# (identity bindings), and global for the other kinds.
		query=$(jq -r --arg coll "$coll" '"name=" + (.name | @uri) + (
			if $coll == "connections" then "&gateway_id=" + (.spec.gateway_id // "" | @uri)
			elif $coll == "identity-bindings" then "&connection_id=" + (.spec.connection_id // "" | @uri)
			else "" end)' "$tmpdir/body.json")
		status=$(api GET "/v1/$coll?$query")
		[ "$status" = 200 ] || die "listing $coll: HTTP $status: $(api_error)"
		id=$(jq -r '.items[0].id // ""' "$tmpdir/response")
		if [ -n "$id" ]; then
			log "$key exists ($id), left as is"
		else
			status=$(api POST "/v1/$coll" "$tmpdir/body.json")
			[ "$status" = 201 ] || die "creating $key: HTTP $status: $(api_error)"
			id=$(jq -r '.id' "$tmpdir/response")
			log "$key created ($id)"
		fi
		jq --arg k "$key" --arg id "$id" '. + {($k): $id}' "$tmpdir/ids.json" >"$tmpdir/ids.new"
		mv "$tmpdir/ids.new" "$tmpdir/ids.json"
	done
}

cmd_finish() {
	load_inputs
	local ca=$data_dir/admin-ca.pem fp i result addr host port objects token
	for ((i = 0; i < wait_seconds; i++)); do
		[ -s "$ca" ] && break
		sleep 1
	done
	[ -s "$ca" ] || die "$ca did not appear within ${wait_seconds}s; is sallyportd running?"
	fp=$(fingerprint_pem "$ca")
	[[ $fp =~ ^[0-9a-f]{64}$ ]] || die "cannot read a certificate from $ca"
	printf '%s\n' "$fp" >"$tmpdir/new"
	result=$(put_file "$fingerprint_file" 0644)
	log "$fingerprint_file $result"
	announce "admin API CA SHA-256 fingerprint: $fp"
	if [ -z "${input[SALLYPORT_ADMIN_TOKEN]:-}${input[SALLYPORT_ADMIN_TOKEN_HASH]:-}" ] &&
		[ -s "$data_dir/admin-token" ]; then
		announce "admin token generated: read it with: sudo cat $data_dir_image/admin-token"
	fi

	token=$(trim "${input[SALLYPORT_ADMIN_TOKEN]:-}")
	if [ -z "$token" ] && [ -z "${input[SALLYPORT_ADMIN_TOKEN_HASH]:-}" ] && [ -s "$data_dir/admin-token" ]; then
		token=$(trim "$(cat "$data_dir/admin-token")")
	fi
	: >"$tmpdir/auth"
	if [ -n "$token" ]; then
		printf 'Authorization: Bearer %s\n' "$token" >"$tmpdir/auth"
	fi
	addr=$(admin_addr)
	host=$(admin_host "$addr")
	port=${addr##*:}
	case $host in '' | 0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
	if [[ $host == *:* ]]; then
		host="[$host]"
	fi
	admin_url=https://$host:$port
	wait_for_api

	objects=$root${input[SALLYPORT_INITIAL_OBJECTS]:-/etc/sallyport/initial-objects.json}
	if [ -f "$objects" ]; then
		chmod 0600 "$objects"
		[ -n "$token" ] ||
			die "initial objects need the plaintext admin token: give SALLYPORT_ADMIN_TOKEN, not only its hash"
		apply_objects "$objects"
	fi

	if [ ! -f "$marker" ]; then
		echo "bootstrapped" >"$tmpdir/new"
		put_file "$marker" 0644 >/dev/null
	fi
	announce "bootstrap complete"
}

case ${1:-} in
configure) cmd_configure ;;
finish) cmd_finish ;;
*)
	echo "usage: $0 configure|finish" >&2
	exit 2
	;;
esac
