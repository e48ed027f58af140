#!/usr/bin/env bash
# Lab scenario 1: no interference: every target is ok.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_probe
lab_show
lab_assert lab-canary verdict=ok verdict_phase=null failure=null evidence.canaries_ok=true
lab_assert lab-target verdict=ok verdict_phase=null failure=null blocking_confirmed=false \
    evidence.dns_consistency=consistent evidence.dns_bogon=false
lab_assert lab-target-http verdict=ok verdict_phase=null failure=null
lab_assert lab-other verdict=ok verdict_phase=null failure=null
# OONI's shape: a connect that worked is not blocked; byte samples name the server's address.
lab_assert lab-target tcp_connect.0.status.blocked=false network_events.0.proto=tcp \
    "network_events.0.address=$LAB_TARGET_IP:443" requests.0.tags=null
# Privacy: the probe's own address appears nowhere in its measurements.
if grep -q -F "$LAB_CLIENT_IP" "$LAB_OUT"; then lab_die "the probe's address $LAB_CLIENT_IP is in $LAB_OUT"; fi
