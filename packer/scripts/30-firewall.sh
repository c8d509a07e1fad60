#!/bin/bash
# 30-firewall.sh: an nftables policy that drops every inbound connection but
# the gateway ports ($SALLYPORT_GATEWAY_PORTS, comma-separated), the admin
# port ($SALLYPORT_ADMIN_PORT) and, when $SALLYPORT_ALLOW_SSH is true, SSH.
# Outbound traffic (executors, IdPs, ACME, updates) is not restricted.
set -euo pipefail

admin_port=${SALLYPORT_ADMIN_PORT:-8443}
gateway_ports=${SALLYPORT_GATEWAY_PORTS:-443}
allow_ssh=${SALLYPORT_ALLOW_SSH:-true}

is_port() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

ports=()
IFS=, read -r -a requested <<<"$gateway_ports,$admin_port"
for p in "${requested[@]}"; do
	is_port "$p" || {
		echo "30-firewall: $p is not a TCP port" >&2
		exit 1
	}
	case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
if [ "$allow_ssh" = true ]; then
	ssh_rule='tcp dport 22 ct state new limit rate 30/minute burst 20 packets accept comment "ssh"'
else
	ssh_rule='# SSH closed (allow_ssh = false)'
fi
port_list=$(
	IFS=,
	echo "${ports[*]}"
)
port_list=${port_list//,/, }

cat >/etc/nftables.conf <<NFT
#!/usr/sbin/nft -f
# Sallyport appliance firewall, written by the image build (packer/scripts/30-firewall.sh).
# Inbound: gateway and admin ports, SSH when enabled, ICMP, DHCPv6 replies.
flush ruleset

table inet sallyport {
	set service_ports {
		type inet_service
		elements = { $port_list }
	}

	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lo" accept
		meta l4proto icmp accept
		meta l4proto ipv6-icmp accept
		ip6 saddr fe80::/10 udp dport 546 accept comment "DHCPv6"
		tcp dport @service_ports accept comment "gateways and admin API"
		$ssh_rule
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
	}

	chain output {
		type filter hook output priority filter; policy accept;
	}
}
NFT
chmod 0644 /etc/nftables.conf

nft -c -f /etc/nftables.conf
systemctl enable nftables.service
echo "30-firewall: inbound TCP ${port_list}$([ "$allow_ssh" = true ] && echo ", 22")"
