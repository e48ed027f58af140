#!/usr/bin/env bash
# Lab scenario 19: a burst of packet loss (a Wi-Fi hiccup), no censorship. The first four
# connection attempts (SYNs) to the target's address on 443 are lost (iptables quota: 4 SYNs of
# 60 bytes), every later packet passes. With a 2 s connect timeout the first SYN and its
# retransmission 1 s later are what each of lab-target's and lab-other's connects sends, so both
# time out while the control connects: until now that read as tcp_blocking. The probe tries the
# failed connect again once the measurement is over; it works, so the verdict must be
# inconclusive (a passing failure), never blocking.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$LAB_TARGET_IP" -p tcp --dport 443 --syn \
    -m length --length 60 -m quota --quota 240 -j DROP
LAB_TIMEOUT=2 lab_probe
lab_show
lab_censor iptables -L FORWARD -v -x -n >&2
dropped=$(lab_rule_packets quota)
[ "$dropped" = 4 ] || lab_die "the burst dropped $dropped SYNs, not 4"
for id in lab-target lab-other; do
    lab_assert "$id" verdict=inconclusive verdict_phase=tcp failure=generic_timeout_error \
        evidence.control.failure=null evidence.repeat.failure=null "verdict_reason~=tried again"
done
lab_assert lab-target-http verdict=ok
lab_assert lab-canary verdict=ok
