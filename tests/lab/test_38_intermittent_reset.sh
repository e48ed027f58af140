#!/usr/bin/env bash
# Lab scenario 38: an intermittent SNI block, a censor that resets only a share of the
# connections naming a site (a firewall under load, a block being rolled out, a deliberate "make
# it flaky" policy). Every second ClientHello naming target.lab is answered with a TCP reset
# (iptables statistic nth), the others pass. Scenario 7 resets every one (tls_blocking at once);
# scenario 20's single reset is a passing failure. Here the measurement's handshake is reset, the
# first repeat works, the next is reset again: the probe must not call that a passing failure
# (it did when it tried again only once), but tls_blocking, said to be intermittent, with each
# repeat's outcome in the evidence. The same for plain HTTP at once: every second request naming
# target.lab (Host header) is reset; the page's request is, its first repeat passes, the second
# is reset: http_blocking, intermittent (scenario 20 resets only the first).
# The run's spool, uploaded to the lab's collector, shows the two in its intermittent counts.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string target.lab --algo bm \
    -m statistic --mode nth --every 2 --packet 0 -j REJECT --reject-with tcp-reset
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 80 \
    -m string --string "Host: target.lab" --algo bm \
    -m statistic --mode nth --every 2 --packet 0 -j REJECT --reject-with tcp-reset
lab_probe
lab_show
lab_censor iptables -L FORWARD -v -x -n >&2
# Five ClientHellos name target.lab, one after the other: the page's handshake (reset), the large
# resource's (passes), the SNI test's named download (reset), the first repeat (passes), the
# second repeat (reset); the repeats stop at the first that fails again.
n=$(lab_rule_packets 'dpt:443 .*statistic')
[ "$n" = 3 ] || lab_die "the rule reset $n handshakes, not 3"
# Three plain-HTTP requests name target.lab: the page's (reset), the repeats' (passes, reset).
n=$(lab_rule_packets 'dpt:80 .*statistic')
[ "$n" = 2 ] || lab_die "the rule reset $n requests, not 2"
lab_assert lab-target verdict=tls_blocking verdict_phase=tls failure=connection_reset \
    evidence.intermittent=true evidence.repeat.failure=null \
    evidence.repeat.failures.1=connection_reset evidence.sni_swap.failure=null \
    "verdict_reason~=2 of 3 attempts failed" "verdict_reason~=intermittent" \
    x_sni_test.target.failure=connection_reset x_sni_test.control.failure=null
lab_assert lab-other verdict=ok
lab_assert lab-target-http verdict=http_blocking verdict_phase=http failure=connection_reset \
    evidence.intermittent=true evidence.repeat.failure=null \
    evidence.repeat.failures.1=connection_reset evidence.control.failure=null \
    "verdict_reason~=2 of 3 attempts failed" "verdict_reason~=intermittent"
lab_assert lab-canary verdict=ok
# The same measurements uploaded to the lab's collector (the volunteer's `vantage-probe upload`
# of the run's spool): the collector counts the two intermittent ones in its buckets.
[ -n "${LAB_COLLECTOR_URL:-}" ] || lab_die "no collector to upload to"
lab_client "$LAB_PROBE" upload --state-dir "$LAB_DIR/state" \
    --collector "$LAB_COLLECTOR_URL" --collector-cacert "$LAB_CACERT" \
    --upload-attempts 3 --upload-backoff-ms 200 --upload-max-time 30 2>"$LAB_DIR/upload.err" ||
    { cat "$LAB_DIR/upload.err" >&2; lab_die "the upload failed"; }
lab_ns vt-control python3 - "http://127.0.0.1:$LAB_CONTROL_PORT" <<'PY' ||
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/api/v1/aggregation?by=target",
                            timeout=10) as r:
    got = {x["target"]: (x["measurement_count"], x["intermittent_count"])
           for x in json.loads(r.read())["results"]}
want = {"lab-target": (1, 1), "lab-target-http": (1, 1), "lab-other": (1, 0),
        "lab-canary": (1, 0)}
bad = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
if bad:
    sys.exit("lab: the collector's (measurements, intermittent) per target: %r, want %r"
             % (got, want))
PY
    lab_die "the collector did not count the intermittent measurements"
lab_log "scenario 38 passed"
