#!/usr/bin/env bash
# Lab scenario 12: the target is really down (its server stopped, no interference): the control
# fails too, so the verdict is down, not blocked.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_stop_main_server
lab_probe
lab_show
lab_assert lab-target verdict=down verdict_phase=tcp failure=connection_refused \
    evidence.control.failure=connection_refused
lab_assert lab-target-http verdict=down verdict_phase=tcp failure=connection_refused
# Down, not blocked: no tcp_connect entry says blocked.
lab_assert lab-target tcp_connect.0.status.blocked=false tcp_connect.0.status.success=false
lab_assert lab-canary verdict=ok
