#!/usr/bin/env bash
# Lab scenario 10: blockpage injection for plain HTTP: the censor redirects the target's port 80
# to the blockpage server (DNAT), whose page is a known fingerprint: HTTP blocking, confirmed.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs fingerprints
lab_setup
lab_censor iptables -t nat -A PREROUTING -i "$LAB_IF_CLI" -p tcp -d "$LAB_TARGET_IP" --dport 80 \
    -j DNAT --to-destination "$LAB_BLOCKPAGE_IP:80"
lab_probe
lab_show
lab_assert lab-target-http verdict=http_blocking verdict_phase=http failure=null \
    blocking_confirmed=true evidence.fingerprint=vantage.lab_body_blockpage
lab_assert lab-target verdict=ok blocking_confirmed=false
