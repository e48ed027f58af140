#!/usr/bin/env bash
# Lab scenario 4: the ISP resolver points the target at the blockpage server, whose address is a
# known DNS fingerprint (tests/lab/fingerprints-lab.csv): DNS blocking, confirmed.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs fingerprints
lab_setup
lab_isp_dns "--address=/target.lab/$LAB_BLOCKPAGE_IP"
lab_probe
lab_show
lab_assert lab-target verdict=dns_blocking verdict_phase=dns failure=ssl_invalid_hostname \
    blocking_confirmed=true evidence.fingerprint=vantage.lab_dns_blockpage
lab_assert lab-target-http verdict=dns_blocking verdict_phase=dns failure=null \
    blocking_confirmed=true evidence.fingerprint=vantage.lab_dns_blockpage
lab_assert lab-other verdict=ok
