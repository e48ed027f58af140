#!/usr/bin/env bash
# Lab scenario 7: SNI-based reset: a ClientHello naming target.lab is answered with a TCP reset;
# other.lab on the same address passes, and so does the SNI-swap handshake.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string target.lab --algo bm -j REJECT --reject-with tcp-reset
lab_probe
lab_show
lab_assert lab-target verdict=tls_blocking verdict_phase=tls failure=connection_reset \
    evidence.sni_swap.failure=null evidence.sni_swap.server_name=canary.lab
lab_assert lab-other verdict=ok verdict_phase=null failure=null
lab_assert lab-target-http verdict=ok
