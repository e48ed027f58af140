#!/usr/bin/env bash
# Lab scenario 22 (VPN, address blocked): the censor drops every packet from the client to the
# VPN servers' addresses, while the canary works. The methodology (docs/methodology.md) gives a
# failed VPN handshake "inconclusive" (no control tells a blocked protocol from a server that is
# down) and a failed TCP connect without a control "inconclusive" in phase tcp: never "ok", never
# a claim of blocking without the evidence for it. Unprovisioned WireGuard stays inconclusive
# for its own reason.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
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
    lab_assert "$id" verdict=inconclusive verdict_phase=null reachable=false \
        failure_phase=handshake failure=generic_timeout_error rtt_ms=null evidence.canaries_ok=true
done
for id in vpn-ovpn-tcp vpn-sstp vpn-port-tcp-1194; do
    lab_assert "$id" verdict=inconclusive verdict_phase=tcp reachable=false failure_phase=tcp \
        failure=generic_timeout_error evidence.canaries_ok=true
done
[ "$VPN_OC" = 1 ] && lab_assert vpn-ocserv verdict=inconclusive verdict_phase=tcp \
    failure_phase=tcp failure=generic_timeout_error
lab_assert vpn-wg-unprovisioned verdict=inconclusive verdict_phase=null failure=null \
    inconclusive_reason=no_provisioned_key
# The same ports elsewhere are untouched: only the addresses are blocked.
lab_assert vpn-port-1194 verdict=ok reachable=true
lab_assert vpn-port-51820 verdict=ok reachable=true
lab_assert vpn-port-500 verdict=ok reachable=true
