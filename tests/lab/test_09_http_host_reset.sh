#!/usr/bin/env bash
# Lab scenario 9: Host-header reset: a plain HTTP request carrying "Host: target.lab" is reset.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 80 \
    -m string --string "Host: target.lab" --algo bm -j REJECT --reject-with tcp-reset
lab_probe
lab_show
lab_assert lab-target-http verdict=http_blocking verdict_phase=http failure=connection_reset \
    evidence.control.failure=null
lab_assert lab-target verdict=ok
lab_assert lab-canary verdict=ok
