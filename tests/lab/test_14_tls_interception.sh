#!/usr/bin/env bash
# Lab scenario 14: TLS interception: HTTPS to the target's address is redirected (DNAT) to a
# server whose certificate comes from a CA the probe does not trust.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -t nat -A PREROUTING -i "$LAB_IF_CLI" -p tcp -d "$LAB_TARGET_IP" --dport 443 \
    -j DNAT --to-destination "$LAB_INTERCEPT_IP:443"
lab_probe
lab_show
lab_assert lab-target verdict=tls_blocking verdict_phase=tls failure=ssl_unknown_authority \
    evidence.control.failure=null
lab_assert lab-target-http verdict=ok
lab_assert lab-canary verdict=ok
