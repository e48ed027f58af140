#!/usr/bin/env bash
# Lab scenario 13: the probe's own network is down (its link is down): every target, canaries
# included, is probe_offline, never blocked.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
ip -n vt-client link set cli0 down
lab_probe
lab_show
lab_assert --all verdict=probe_offline verdict_phase=null blocking_confirmed=false \
    evidence.canaries_ok=false "failure~=."
# With no route to the resolver, DNS says so (c-ares alone would say connection_refused).
lab_assert --all queries.0.failure=network_unreachable
