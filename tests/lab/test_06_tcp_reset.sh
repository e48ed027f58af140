#!/usr/bin/env bash
# Lab scenario 6: TCP reset on connect: the censor answers SYNs to the target's address with RST.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$LAB_TARGET_IP" -p tcp --syn \
    -j REJECT --reject-with tcp-reset
lab_probe
lab_show
lab_assert lab-target verdict=tcp_blocking verdict_phase=tcp failure=connection_refused \
    evidence.control.failure=null
lab_assert lab-target-http verdict=tcp_blocking verdict_phase=tcp failure=connection_refused
# OONI's tcp_connect blocked: the failed connects to the target's address are blocked.
lab_assert lab-target tcp_connect.0.status.blocked=true tcp_connect.0.status.success=false
lab_assert lab-canary verdict=ok
