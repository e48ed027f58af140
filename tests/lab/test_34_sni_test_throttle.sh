#!/usr/bin/env bash
# Lab scenario 34: SNI throttling of a target that has no large download, told by the SNI test.
# A ClientHello naming other.lab marks the connection, and its packets towards the client go
# through a 128 kbit/s htb class (as in scenario 11, but for other.lab, whose target has no
# large_resource: without the SNI test it reads ok). The collector in vt-control runs its SNI
# test server on 10.99.3.2:443; the probe learns of it, and of its key, from the check-in.
# The download naming other.lab must come out near 128 kbit/s and the one naming example.com at
# full speed, twice; target.lab's pair is not slowed. Then a probe given a wrong key for the
# server must refuse it: no SNI test result, no throttled verdict. Last, with the server out of
# reach, the run's later targets must skip the test after the first pair got nothing. A run
# within --sni-test-every hours of the last test does no downloads at all.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
RATE_KBIT=128
lab_setup
[ -n "${LAB_SNI_TEST:-}" ] || lab_die "the collector's SNI test server did not start"
lab_sni_throttle other.lab "$RATE_KBIT"

# 1. Through the check-in: no --sni-test flag, the collector's offer and pin are used.
lab_probe_upload vt-client "$LAB_DIR/state-34" "$LAB_OUT" --only lab-other,lab-target
lab_show
lo=$((RATE_KBIT * 1000 * 75 / 100)) hi=$((RATE_KBIT * 1000 * 125 / 100))
lab_assert lab-other verdict=throttled verdict_phase=tls failure=null \
    "x_sni_test.endpoint=$LAB_SNI_TEST" x_sni_test.target.sni=other.lab \
    x_sni_test.control.sni=example.com x_sni_test.repeat.target.sni=other.lab \
    evidence.sni_test.slowed_twice=true \
    "evidence.sni_test.named_bps>=$lo" "evidence.sni_test.named_bps<=$hi" \
    "evidence.sni_test.neutral_bps>=20000000" verdict_reason~=other.lab
lab_assert lab-target verdict=ok evidence.sni_test.slowed_twice=false x_sni_test.repeat=null \
    "x_sni_test.target.bytes_received=131072" "x_sni_test.control.bytes_received=131072"
# what the collector stored is the same verdict
python3 - "$LAB_DIR/collector/vantage.db" <<'PY' || lab_die "the collector did not store lab-other's throttled verdict"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select verdict from measurements where target_id = 'lab-other'").fetchall()
print("stored:", rows, file=sys.stderr)
sys.exit(0 if rows and all(r[0] == "throttled" for r in rows) else 1)
PY

# The throttle goes now: its htb class still drains what part 1's cut downloads had in flight,
# which would hold up other.lab's own handshake in the next runs.
lab_censor tc qdisc del dev "$LAB_IF_CLI" root
lab_censor iptables -t mangle -F

# 1b. sni_test_every: the next run within 24 hours of that one does no SNI test downloads (a
# metered connection's setting), says so per target, and still checks for DNS injection.
[ -s "$LAB_DIR/state-34/sni-test.last" ] || lab_die "the run did not record its SNI test"
lab_probe_upload vt-client "$LAB_DIR/state-34" "$LAB_OUT" --only lab-other,lab-target \
    --sni-test-every 24
lab_show
lab_assert lab-other verdict=ok x_sni_test.skipped=not_due "x_sni_test.endpoint=$LAB_SNI_TEST" \
    evidence.sni_test=null x_dns_injection.query.hostname=other.lab
lab_assert lab-target verdict=ok x_sni_test.skipped=not_due

# 2. A wrong key: the server is not the one the volunteer was told of (the throttle is gone).
lab_probe --sni-test "$LAB_SNI_TEST" \
    --sni-test-pin "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" --only lab-other
lab_show
lab_assert lab-other verdict=ok x_sni_test.target.bytes_received=0 \
    x_sni_test.control.bytes_received=0 "x_sni_test.target.failure~=pinned public key" \
    evidence.sni_test=null

# 3. The test server out of reach (the network drops its port): the first pair gets nothing in
# its 6 s, and the run's other target skips the test rather than wait as long again.
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$LAB_CONTROL_IP" -p tcp \
    --dport "$LAB_SNI_TEST_PORT" -j DROP
lab_probe --only lab-target,lab-other
lab_show
python3 - "$LAB_OUT" <<'PY' || lab_die "an unreachable SNI test server was not skipped after one pair"
import json, sys
sides = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    x = m["test_keys"].get("x_sni_test") or {}
    tid = m["annotations"]["target_id"]
    if tid in ("lab-target", "lab-other"):
        assert m["test_keys"]["verdict"] == "ok", (tid, m["test_keys"]["verdict"])
        sides[tid] = "skipped" if x.get("skipped") == "server_unreachable" else \
            "tried" if (x.get("target") or {}).get("bytes_received") == 0 else "other"
print("lab: SNI test per target:", sides, file=sys.stderr)
sys.exit(sorted(sides.values()) != ["skipped", "tried"])
PY
