#!/usr/bin/env bash
# Lab scenario 8: SNI-based drop: a ClientHello naming target.lab is dropped, the handshake stalls.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string target.lab --algo bm -j DROP
lab_probe
lab_show
lab_assert lab-target verdict=tls_blocking verdict_phase=tls failure=generic_timeout_error \
    evidence.sni_swap.failure=null
lab_assert lab-other verdict=ok verdict_phase=null failure=null
