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
