#!/usr/bin/env bash
# Lab scenario 23 (VPN, port blocked): the censor answers TCP 1194 with a reset (REJECT
# tcp-reset) and drops UDP 1194, 51820 and 500, for every address. Other ports stay open: SSTP
# and OpenConnect on 443 work, each VPN server's address answers on TCP 9030 ("address_check"),
# and the UDP echo in vt-control answers on 5353 but not on 1194, 51820, 500. The verdicts
# (docs/methodology.md): each blocked VPN handshake is port blocking ("blocking": "port", verdict
# tcp_blocking). Over UDP the evidence is in the run: the server's address answers on another
# port, and the same port fails at another address that is up (the echo, whose silence counts
# because it answered the same datagram on 5353). Over TCP the refused port is the only one on
# that address; the control (the collector, uncensored) connects to it: blocked here, not
# closed. A UDP port probe alone that gets no answer stays inconclusive (udp_no_reply).
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
lab_needs control
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
    lab_assert "$id" verdict=tcp_blocking blocking=port verdict_phase=tcp reachable=false \
        failure_phase=tcp failure=connection_refused evidence.canaries_ok=true \
        evidence.vpn.control_input=10.99.2.30:1194 evidence.control.failure=null \
        'evidence.vpn.address_up~=10.99.2.30:9030/tcp'
done
lab_assert vpn-sstp verdict=ok blocking=null reachable=true 'rtt_ms>=0.001'
[ "$VPN_OC" = 1 ] && lab_assert vpn-ocserv verdict=ok reachable=true
shape() { case $1 in vpn-ovpn-*) echo 1194 ;; vpn-wg) echo 51820 ;; vpn-ike) echo 500 ;; esac; }
for id in vpn-ovpn-udp vpn-ovpn-ta vpn-wg vpn-ike; do
    p=$(shape "$id")
    lab_assert "$id" verdict=tcp_blocking blocking=port verdict_phase=handshake reachable=false \
        failure_phase=handshake failure=generic_timeout_error evidence.canaries_ok=true \
        'evidence.vpn.address_up~=:9030/tcp' "evidence.vpn.port_failed_up~=vpn-port-$p 10.99.3.2:$p/udp" \
        evidence.vpn.control_input=null evidence.control=null
done
# The UDP ports are dropped for every address: the echo elsewhere gets no answer either
# (a UDP port answering nothing is inconclusive by itself, never blocked).
for p in 1194 51820 500; do
    lab_assert "vpn-port-$p" verdict=inconclusive reachable=false inconclusive_reason=udp_no_reply
done
lab_assert vpn-port-5353 verdict=ok reachable=true
lab_assert vpn-port-tcp-9030 verdict=ok reachable=true 'rtt_ms>=0.001'
# The refusals came from the censor's rule (the servers listen on TCP 1194).
n=$(lab_censor iptables -nvxL FORWARD | awk '/tcp dpt:1194 reject-with tcp-reset/ {print $1}')
[ "${n:-0}" -ge 2 ] || lab_die "the censor's TCP 1194 reset rule matched ${n:-0} packets"
