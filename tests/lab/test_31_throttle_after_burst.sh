#!/usr/bin/env bash
# Lab scenario 31: SNI-triggered throttling that lets the start of a transfer through: as in
# scenario 11, a ClientHello naming target.lab marks the connection and its packets towards the
# client go through a 128 kbit/s htb class, but the class's buckets (burst, cburst) hold 32 KiB:
# the first half of the 64 KiB download arrives at full speed, the rest at the policed rate. A
# page of a few kilobytes loads at full speed; only the large download shows it. The verdict must
# be throttled, with the rate it uses (the slope of the byte samples) no higher than the policed
# rate allows. It can come out lower: htb charges a whole GSO packet at once, so the download's
# last few hundred bytes sometimes wait a further second for the bucket (62 kbit/s over the
# policed part, in about half the runs), which is what the client saw.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
RATE_KBIT=128
lab_setup
lab_sni_throttle target.lab "$RATE_KBIT" burst 32k cburst 32k
lab_probe
lab_show
lo=$((RATE_KBIT * 1000 * 40 / 100)) hi=$((RATE_KBIT * 1000 * 150 / 100))
lab_assert lab-target verdict=throttled verdict_phase=http failure=null \
    "evidence.throughput_bps>=$lo" "evidence.throughput_bps<=$hi"
# The SNI test's 128 KiB downloads pass the 32 KiB burst and are judged on the rest.
if [ -n "${LAB_SNI_TEST:-}" ]; then
    lab_assert lab-target evidence.sni_test.slowed_twice=true "evidence.sni_test.named_bps<=$hi"
fi
lab_assert lab-canary verdict=ok
lab_assert lab-other verdict=ok
lab_assert lab-target-http verdict=ok
