#!/usr/bin/env bash
# Lab scenario 5: TCP blackhole: every packet from the client to the target's address is dropped.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$LAB_TARGET_IP" -j DROP
lab_probe
lab_show
lab_assert lab-target verdict=tcp_blocking verdict_phase=tcp failure=generic_timeout_error \
    evidence.control.failure=null evidence.dns_consistency=consistent
lab_assert lab-target-http verdict=tcp_blocking verdict_phase=tcp failure=generic_timeout_error
lab_assert lab-canary verdict=ok
