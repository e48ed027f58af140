#!/usr/bin/env bash
# Lab scenario 22 (VPN, address blocked): the censor drops every packet from the client to the
# VPN servers' addresses, while the canary works. Each VPN target checks a TCP port of its own
# address ("address_check": 9030); nothing at those addresses answers from here, the same ports
# answer at another address (the UDP echo in vt-control), and the control (the collector in
# vt-control, uncensored) connects to each address: the address is blocked ("blocking":
# "address", verdict tcp_blocking, docs/methodology.md). The same run without the control
# cannot tell a blocked address from a server that is down: inconclusive
# (address_unreachable_no_control), never blocked. Unprovisioned WireGuard stays inconclusive
# for its own reason.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
lab_needs control
vpn_wait_free
lab_setup
vpn_setup
for a in "$VPN_OVPN_IP" "$VPN_OVPN_TA_IP" "$VPN_WG_IP" "$VPN_IKE_IP" "$VPN_OC_IP" "$VPN_TLS_IP"; do
    lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$a" -j DROP
done
lab_probe
lab_show
lab_assert lab-canary verdict=ok evidence.canaries_ok=true
for id in vpn-ovpn-udp vpn-ovpn-ta vpn-wg vpn-ike; do
    lab_assert "$id" verdict=tcp_blocking blocking=address verdict_phase=handshake \
        reachable=false failure_phase=handshake failure=generic_timeout_error rtt_ms=null \
        evidence.canaries_ok=true blocking_confirmed=false evidence.vpn.address_silent=true \
        'evidence.vpn.control_input~=:(9030|1194)$' evidence.control.failure=null \
        'evidence.vpn.port_elsewhere~=10.99.3.2:'
done
for id in vpn-ovpn-tcp vpn-sstp vpn-port-tcp-1194; do
    lab_assert "$id" verdict=tcp_blocking blocking=address verdict_phase=tcp reachable=false \
        failure_phase=tcp failure=generic_timeout_error evidence.canaries_ok=true \
        evidence.vpn.address_silent=true 'evidence.vpn.ports_tried_at_address>=2'
done
[ "$VPN_OC" = 1 ] && lab_assert vpn-ocserv verdict=tcp_blocking blocking=address \
    verdict_phase=tcp failure_phase=tcp failure=generic_timeout_error
lab_assert vpn-wg-unprovisioned verdict=inconclusive verdict_phase=null failure=null \
    inconclusive_reason=no_provisioned_key blocking=null
# A server that is down, not behind the censor's rule, is down: never address blocking.
lab_assert vpn-down verdict=down blocking=null evidence.vpn.address_silent=true
# The same ports elsewhere are untouched: only the addresses are blocked.
lab_assert vpn-port-1194 verdict=ok reachable=true blocking=null
lab_assert vpn-port-51820 verdict=ok reachable=true
lab_assert vpn-port-500 verdict=ok reachable=true

# Without the control: the same evidence, but nothing says the servers are up.
LAB_CONTROL_URL="" lab_probe
lab_show
for id in vpn-ovpn-udp vpn-ovpn-ta vpn-wg vpn-ike vpn-ovpn-tcp vpn-sstp; do
    lab_assert "$id" verdict=inconclusive blocking=null verdict_phase=null reachable=false \
        inconclusive_reason=address_unreachable_no_control evidence.control=null
done
# the server that is down answers with an ICMP port unreachable: nothing listens (never blocked)
lab_assert vpn-down verdict=inconclusive blocking=null verdict_phase=null reachable=false \
    inconclusive_reason=udp_port_refused evidence.control=null
