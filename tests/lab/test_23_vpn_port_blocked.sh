#!/usr/bin/env bash
# Lab scenario 23 (VPN, port blocked): the censor answers TCP 1194 with a reset (REJECT
# tcp-reset) and drops UDP 1194, 51820 and 500, for every address. Other ports stay open: SSTP
# and OpenConnect on 443 work, and a TCP port probe of the OpenVPN server's own address on
# another port (9030) connects: the port is blocked, not the address. Verdicts as the methodology says: a refused
# TCP connect without a control is inconclusive in phase tcp, a UDP handshake with no answer is
# inconclusive (phase null, failure_phase handshake).
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
vpn_wait_free
lab_setup
vpn_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 1194 -j REJECT --reject-with tcp-reset
for p in 1194 51820 500; do
    lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p udp --dport "$p" -j DROP
done
lab_probe
lab_show
lab_assert lab-canary verdict=ok evidence.canaries_ok=true
for id in vpn-ovpn-tcp vpn-port-tcp-1194; do
    lab_assert "$id" verdict=inconclusive verdict_phase=tcp reachable=false failure_phase=tcp \
        failure=connection_refused evidence.canaries_ok=true
done
lab_assert vpn-sstp verdict=ok reachable=true 'rtt_ms>=0.001'
[ "$VPN_OC" = 1 ] && lab_assert vpn-ocserv verdict=ok reachable=true
for id in vpn-ovpn-udp vpn-ovpn-ta vpn-wg vpn-ike; do
    lab_assert "$id" verdict=inconclusive verdict_phase=null reachable=false \
        failure_phase=handshake failure=generic_timeout_error evidence.canaries_ok=true
done
# The UDP ports are dropped for every address: the echo elsewhere gets no answer either
# (a UDP port answering nothing is inconclusive by itself, never blocked).
for p in 1194 51820 500; do
    lab_assert "vpn-port-$p" verdict=inconclusive reachable=false inconclusive_reason=udp_no_reply
done
lab_assert vpn-port-tcp-9030 verdict=ok reachable=true 'rtt_ms>=0.001'
# The refusals came from the censor's rule (the servers listen on TCP 1194).
n=$(lab_censor iptables -nvxL FORWARD | awk '/tcp dpt:1194 reject-with tcp-reset/ {print $1}')
[ "${n:-0}" -ge 2 ] || lab_die "the censor's TCP 1194 reset rule matched ${n:-0} packets"
