#!/usr/bin/env bash
# Lab scenario 20: one request cut by a passing failure (a middlebox's or a NAT's reset, a load
# balancer restarting), no censorship: the first plain-HTTP request naming target.lab is answered
# with a TCP reset (iptables statistic nth: the first matching packet only), every later one
# passes. Scenario 09 resets every such request (http_blocking); here the probe asks again once
# the measurement is over, the request works, and the verdict must be inconclusive, not
# http_blocking.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 80 \
    -m string --string "Host: target.lab" --algo bm \
    -m statistic --mode nth --every 1000000 --packet 0 -j REJECT --reject-with tcp-reset
lab_probe
lab_show
n=$(lab_rule_packets statistic)
[ "$n" = 1 ] || lab_die "the rule reset $n requests, not 1"
lab_assert lab-target-http verdict=inconclusive verdict_phase=http failure=connection_reset \
    evidence.control.failure=null evidence.repeat.failure=null "verdict_reason~=tried again"
lab_assert lab-target verdict=ok
lab_assert lab-canary verdict=ok
