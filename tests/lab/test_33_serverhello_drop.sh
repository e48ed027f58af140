#!/usr/bin/env bash
# Lab scenario 33: the ClientHello naming target.lab passes, but the server's answer never comes
# back: the ClientHello marks the connection (CONNMARK), and every later packet of it towards the
# client is dropped, so the connection stays open on both ends and the handshake stalls until the
# probe's timeout (unlike scenario 8, the server does get the ClientHello). other.lab on the same
# address passes, and so does the SNI swap: TLS blocking by name.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_censor iptables -t mangle -A PREROUTING -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string target.lab --algo bm -j CONNMARK --set-mark 9
lab_censor iptables -A FORWARD -o "$LAB_IF_CLI" -p tcp --sport 443 -m connmark --mark 9 -j DROP
lab_probe
lab_show
n=$(lab_rule_packets connmark)
[ "$n" -ge 1 ] || lab_die "the rule dropped no server packet"
lab_assert lab-target verdict=tls_blocking verdict_phase=tls failure=generic_timeout_error \
    evidence.sni_swap.failure=null evidence.sni_swap.server_name=canary.lab
lab_assert lab-other verdict=ok verdict_phase=null failure=null
lab_assert lab-target-http verdict=ok
lab_assert lab-canary verdict=ok
