#!/usr/bin/env bash
# Lab scenario 2: the ISP resolver answers NXDOMAIN for the target; the second resolver does not.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_isp_dns --address=/target.lab/
lab_probe
lab_show
lab_assert lab-target verdict=dns_blocking verdict_phase=dns failure=dns_nxdomain_error \
    evidence.dns_consistency=inconsistent blocking_confirmed=false
lab_assert lab-target-http verdict=dns_blocking verdict_phase=dns failure=dns_nxdomain_error
lab_assert lab-other verdict=ok
lab_assert lab-canary verdict=ok
