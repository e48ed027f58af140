#!/usr/bin/env bash
# Lab scenario 3: the ISP resolver hijacks the target's name to a loopback address (a bogon).
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_isp_dns --address=/target.lab/127.0.0.1
lab_probe
lab_show
lab_assert lab-target verdict=dns_blocking verdict_phase=dns failure=connection_refused \
    evidence.dns_bogon=true evidence.dns_consistency=inconsistent blocking_confirmed=false
lab_assert lab-other verdict=ok
lab_assert lab-canary verdict=ok
