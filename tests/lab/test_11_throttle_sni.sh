#!/usr/bin/env bash
# Lab scenario 11: SNI-triggered throttling (as in Russia, 2021): a ClientHello naming
# target.lab marks the connection, and every later packet of it towards the client goes through
# a 128 kbit/s htb class. Other names run at full speed. The probe must say throttled, and its
# measured rate must be within 25% of the configured one.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
RATE_KBIT=128
lab_setup
lab_sni_throttle target.lab "$RATE_KBIT"
lab_probe
lab_show
lo=$((RATE_KBIT * 1000 * 75 / 100)) hi=$((RATE_KBIT * 1000 * 125 / 100))
# evidence.throughput_bps is the rate the verdict used (from the byte samples of the download).
lab_assert lab-target verdict=throttled verdict_phase=http failure=null \
    "evidence.throughput_bps>=$lo" "evidence.throughput_bps<=$hi"
# The measurement's own throughput_bps (what the collector's rollups aggregate) agrees: the
# bytes that arrive with the first chunk are not counted against the time after it.
lab_assert lab-target "throughput_bps>=$lo" "throughput_bps<=$hi"
# The SNI test (the collector's server naming target.lab and example.com at once) sees the same
# policer, twice, at the same rate.
if [ -n "${LAB_SNI_TEST:-}" ]; then
    lab_assert lab-target evidence.sni_test.slowed_twice=true \
        "evidence.sni_test.named_bps>=$lo" "evidence.sni_test.named_bps<=$hi"
    lab_assert lab-other evidence.sni_test.slowed_twice=false
fi
lab_assert lab-canary verdict=ok "x_large_resource.throughput_bps>=5000000"
lab_assert lab-other verdict=ok
lab_assert lab-target-http verdict=ok
