#!/usr/bin/env bash
# Lab scenario 39 (VPN, an intermittent block): every third TLS ClientHello to the SSTP server
# (vpn-sstp, its name good.test) is answered with a TCP reset (iptables statistic nth), the
# others pass (an SSTP measurement that works makes two TLS connections: the handshake, then the
# SSTP exchange). The measurement's handshake is reset; measured again once the run is over, the
# first repeat works (two ClientHellos pass) and the second is reset: the probe must call it tls_blocking by protocol
# (the port carries other traffic: the connection was made) and say it is intermittent, with each
# repeat's outcome in the evidence, not a passing failure. Only the first ClientHello to the
# OpenConnect server (ocserv, when installed) is reset: a passing failure, which its 4 repeats
# all get through (inconclusive, not blocked). Every other VPN stays ok and is not
# measured again (no repeat without a failure); a VPN blocked outright (OpenVPN over UDP,
# dropped) is measured again once, fails again, and keeps its verdict.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
vpn_wait_free
lab_setup
vpn_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$VPN_TLS_IP" -p tcp --dport 443 \
    -m string --string good.test --algo bm \
    -m statistic --mode nth --every 3 --packet 0 -j REJECT --reject-with tcp-reset
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$VPN_OVPN_IP" -p udp --dport 1194 -j DROP
if [ "$VPN_OC" = 1 ]; then # the first ClientHello only
    lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$VPN_OC_IP" -p tcp --dport 443 \
        -m string --string good.test --algo bm \
        -m statistic --mode nth --every 100000 --packet 0 -j REJECT --reject-with tcp-reset
fi
lab_probe
lab_show
lab_censor iptables -L FORWARD -v -x -n >&2
# Four ClientHellos name good.test at that address: the measurement's (reset), the first
# repeat's two (pass), the second's (reset); the repeats stop at the first that fails again.
n=$(lab_rule_packets "$VPN_TLS_IP .*dpt:443 .*statistic")
[ "$n" = 2 ] || lab_die "the rule reset $n handshakes, not 2"
lab_assert lab-canary verdict=ok
lab_assert vpn-sstp verdict=tls_blocking blocking=protocol reachable=false \
    failure=connection_reset evidence.intermittent=true evidence.repeat.failure=null \
    evidence.repeat.failures.0=null evidence.repeat.failures.1=connection_reset \
    "evidence.repeat.address=$VPN_TLS_IP:443/tcp" \
    "verdict_reason~=2 of 3 attempts failed" "verdict_reason~=The block is intermittent"
# Blocked outright: one repeat, which fails again; the verdict as without repeats.
lab_assert vpn-ovpn-udp reachable=false failure=generic_timeout_error \
    evidence.intermittent=false evidence.repeat.failure=generic_timeout_error \
    "evidence.repeat.failures.0=generic_timeout_error"
if [ "$VPN_OC" = 1 ]; then
    lab_assert vpn-ocserv verdict=inconclusive reachable=false failure=connection_reset \
        evidence.intermittent=false evidence.repeat.failure=null evidence.repeat.failures.3=null \
        "verdict_reason~=worked when tried again 4 times in a row: a passing failure"
fi
# Working ones are not measured again.
for id in vpn-ovpn-tcp vpn-wg vpn-ike; do
    lab_assert "$id" verdict=ok reachable=true evidence.repeat=null
done
lab_log "scenario 39 passed"
