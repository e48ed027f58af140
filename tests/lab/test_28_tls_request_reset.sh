#!/usr/bin/env bash
# Lab scenario 28: a reset after the TLS handshake (as the GFW and Iran's filter have done): a
# ClientHello naming target.lab marks the connection, the handshake is let through, and the
# client's first application-data record (TLS type 0x17 at the start of the payload: the HTTP
# request; TLS 1.3's Finished travels behind a ChangeCipherSpec, type 0x14) is answered with a
# TCP reset. The handshake succeeds and the request fails: HTTP blocking, with the control
# loading the page and a repeat failing again. curl (HTTP/2) reads the reset's ECONNRESET and
# then writes: its failure is broken_pipe, a reset all the same. other.lab on the same address
# passes.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -t mangle -A PREROUTING -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string target.lab --algo bm -j CONNMARK --set-mark 7
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 -m connmark --mark 7 \
    -m u32 --u32 "0>>22&0x3C@12>>26&0x3C@0>>24=0x17" -j REJECT --reject-with tcp-reset
lab_probe
lab_show
n=$(lab_rule_packets u32)
[ "$n" -ge 1 ] || lab_die "the rule reset no request"
lab_assert lab-target verdict=http_blocking verdict_phase=http \
    "failure~=^(connection_reset|broken_pipe)$" evidence.control.failure=null \
    "evidence.repeat.failure~=^(connection_reset|broken_pipe)$"
lab_assert lab-other verdict=ok verdict_phase=null failure=null
lab_assert lab-target-http verdict=ok
lab_assert lab-canary verdict=ok
