#!/usr/bin/env bash
# Lab scenario 26: a captive portal (a hotel's or a café's Wi-Fi before login), no censorship:
# every connection to port 80 or 443, the canary's included, is redirected to the portal's
# server (the interception server: its own page, a certificate from a CA the probe does not
# trust). Nothing can be said about any site: every measurement must be probe_offline, none
# blocked.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_censor iptables -t nat -A PREROUTING -i "$LAB_IF_CLI" -p tcp -m multiport --dports 80,443 \
    -j DNAT --to-destination "$LAB_INTERCEPT_IP"
lab_probe
lab_show
lab_assert --all verdict=probe_offline verdict_phase=null blocking_confirmed=false \
    evidence.canaries_ok=false
lab_assert lab-canary failure=ssl_unknown_authority
