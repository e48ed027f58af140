#!/usr/bin/env bash
# The probe's spool uploaded to the real vantage-collector (SQLite) over loopback HTTP:
#  1. a spool of real-format measurements is uploaded; each is stored exactly once, spool empty;
#  2. crash safety: `vantage-probe upload` is SIGKILLed at random moments (10 rounds, each with a
#     fresh batch added), then one upload finishes the job: every measurement the probe had is
#     stored exactly once, nothing remains in the spool, no tmp leftovers.
set -euo pipefail
SRC=${VT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VT_BUILD_DIR:-$SRC/build}
PROBE=${VT_PROBE:-$BUILD/probe/vantage-probe}
COLLECTOR=${VT_COLLECTOR:-$BUILD/collector/vantage-collector}
for b in "$PROBE" "$COLLECTOR"; do
    [ -x "$b" ] || { echo "skip: $b not built"; exit 77; }
done
python3 -c 'import sqlite3' || { echo "skip: python3 without sqlite3"; exit 77; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy VANTAGE_UPLOAD_TOKEN

T=$(mktemp -d /tmp/vt-p2c-XXXXXX)
CPID=
cleanup() {
    [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
    [ -n "${VT_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
STATE=$T/state
DB=$T/collector.db
mkdir -p "$STATE"

# Measurements in the shape of lib/measurement.c's vt_measurement_new, written as the spool
# writes them (spool/<uid>.json); all uids ever made go to $T/made.
fill() { # fill N
    python3 - "$STATE/spool" "$1" >>"$T/made" <<'EOF'
import json, os, secrets, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
for i in range(n):
    uid = secrets.token_hex(16)
    m = {"data_format_version": "0.2.0", "input": "https://example.org/%d" % i,
         "measurement_start_time": now, "test_start_time": now, "test_runtime": 0.25,
         "probe_asn": "AS0", "probe_cc": "ZZ", "probe_ip": "127.0.0.1",
         "probe_network_name": None, "resolver_asn": "AS0", "resolver_ip": "127.0.0.1",
         "report_id": "20261128T120000Z_vantage_ZZ_0_n1_0123456789abcdef",
         "software_name": "vantage-probe", "software_version": "0.1.0",
         "test_name": "web_connectivity", "test_version": "0.1.0", "measurement_uid": uid,
         "annotations": {"target_id": "t%d" % i, "platform": "test", "category": "social"},
         "test_helpers": {}, "test_keys": {"accessible": True, "blocking": False,
                                           "queries": [], "tcp_connect": [], "requests": []}}
    tmp = os.path.join(d, "tmp")
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, uid + ".json.tmp"), "w") as f:
        json.dump(m, f, separators=(",", ":"))
    os.rename(os.path.join(tmp, uid + ".json.tmp"), os.path.join(d, uid + ".json"))
    print(uid)
EOF
}

start_collector() { # start_collector [EXTRA ARGS]: serves $DB on a free loopback port, sets URL
    "$COLLECTOR" serve --listen 127.0.0.1:0 --db "sqlite:$DB" --rate 0 "$@" >"$T/collector.out" \
        2>"$T/collector.err" &
    CPID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on port [0-9]\+' "$T/collector.err" 2>/dev/null |
            head -1 | sed 's/.* //' || true)
        [ -n "$PORT" ] && [ "$PORT" != 0 ] && break
        sleep 0.05
    done
    [ -n "$PORT" ] || { echo "FAIL: collector did not start"; cat "$T/collector.err"; exit 1; }
    URL=http://127.0.0.1:$PORT
}

# With BG=1 (`BG=1 upload &`) the background subshell becomes the probe, so $! is its pid.
upload() {
    ${BG:+exec} "$PROBE" upload --state-dir "$STATE" --collector "$URL" --upload-backoff-ms 20 \
        --upload-attempts 5 --upload-max-time 60 "$@"
}

spooled() { find "$STATE/spool" -maxdepth 1 -name '*.json' | wc -l; }

# Every uid made is in the database once, and nothing else is; every stored body has the probe's
# address as 127.0.0.1 (python3's sqlite3 module reads the collector's WAL database).
check_db() { # check_db WHAT
    python3 - "$DB" "$T/made" "$1" <<'EOF'
import collections, json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = db.execute("SELECT uid, body FROM measurements").fetchall()
made = [l.strip() for l in open(sys.argv[2]) if l.strip()]
stored = collections.Counter(u for u, _ in rows)
dupes = [u for u, c in stored.items() if c > 1]
missing = set(made) - set(stored)
extra = set(stored) - set(made)
bad_ip = [u for u, b in rows if json.loads(b).get("probe_ip") != "127.0.0.1"]
if len(rows) != len(set(made)) or dupes or missing or extra or bad_ip:
    print("FAIL: %s: made %d, stored %d, duplicated %d, missing %d, extra %d, bad probe_ip %d"
          % (sys.argv[3], len(set(made)), len(rows), len(dupes), len(missing), len(extra),
             len(bad_ip)))
    sys.exit(1)
print("ok: %s: %d measurements stored exactly once" % (sys.argv[3], len(rows)))
EOF
}

start_collector

# 1. plain upload
fill 250 >/dev/null
upload --upload-batch 100 2>"$T/upload.err" || { echo "FAIL: upload exit $?"; cat "$T/upload.err"; exit 1; }
[ "$(spooled)" -eq 0 ] || { echo "FAIL: spool not empty after upload"; exit 1; }
check_db "upload"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["accepted"] == 250 and d["ok"] and d["left"] == 0 else 1)' "$STATE/last-upload.json" ||
    { echo "FAIL: last-upload.json"; cat "$STATE/last-upload.json"; exit 1; }

# Uploading the same measurements again (a lost acknowledgement) is harmless: duplicates.
fill 20 >"$T/again"
cp -r "$STATE/spool" "$T/spool.copy"
upload 2>/dev/null
cp "$T"/spool.copy/*.json "$STATE/spool/"
upload 2>"$T/upload.err" || { echo "FAIL: re-upload exit $?"; cat "$T/upload.err"; exit 1; }
grep -q "20 already there" "$T/upload.err" || { echo "FAIL: duplicates not reported"; cat "$T/upload.err"; exit 1; }
[ "$(spooled)" -eq 0 ] || { echo "FAIL: duplicates left in the spool"; exit 1; }
check_db "re-upload"

# 2. SIGKILL the probe at random moments during its upload. How long one upload of a round's
# size takes here is measured first, so the kills land inside uploads on fast and slow machines.
fill 200 >/dev/null
t0=$(date +%s%N)
upload --upload-batch 10 2>/dev/null
dur_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$dur_ms" -ge 5 ] || dur_ms=5
echo "one upload of 200 in batches of 10: ${dur_ms} ms"
killed=0
for round in $(seq 10); do
    fill 200 >/dev/null
    BG=1 upload --upload-batch 10 2>/dev/null &
    P=$!
    delay_ms=$((RANDOM % dur_ms))
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill -KILL "$P" 2>/dev/null || true
    st=0
    wait "$P" 2>/dev/null || st=$?
    [ "$st" -eq 137 ] && killed=$((killed + 1))
done
left=$(spooled)
echo "killed $killed of 10 uploads mid-way; $left measurements still spooled"
upload 2>"$T/upload.err" || { echo "FAIL: final upload exit $?"; cat "$T/upload.err"; exit 1; }
[ "$(spooled)" -eq 0 ] || { echo "FAIL: spool not empty after the final upload"; exit 1; }
[ -z "$(ls -A "$STATE/spool/tmp")" ] || { echo "FAIL: tmp leftovers"; exit 1; }
[ -z "$(ls -A "$STATE/spool/rejected")" ] || { echo "FAIL: something was rejected"; ls "$STATE/spool/rejected"; exit 1; }
check_db "after SIGKILLs"
[ "$killed" -gt 0 ] || echo "note: no upload was still running when killed"

# 3. A collector that requires upload tokens: without or with a wrong token nothing leaves the
# spool; with the token from `vantage-collector token create` (flag or environment) all is stored.
kill "$CPID" && wait "$CPID" 2>/dev/null || true
CPID=
DB=$T/collector-token.db
: >"$T/made"
TOKEN=$("$COLLECTOR" token create --db "sqlite:$DB" 2>/dev/null)
[ -n "$TOKEN" ] || { echo "FAIL: token create printed nothing"; exit 1; }
start_collector --require-token
fill 30 >/dev/null
st=0
upload 2>"$T/upload.err" || st=$?
[ "$st" -eq 4 ] && [ "$(spooled)" -eq 30 ] || { echo "FAIL: no token: exit $st, $(spooled) spooled"; cat "$T/upload.err"; exit 1; }
st=0
upload --upload-token wrong-token 2>"$T/upload.err" || st=$?
[ "$st" -eq 4 ] && [ "$(spooled)" -eq 30 ] || { echo "FAIL: wrong token: exit $st"; exit 1; }
grep -q "HTTP 401" "$T/upload.err" || { echo "FAIL: 401 not reported"; cat "$T/upload.err"; exit 1; }
if grep -q "$TOKEN" "$T/upload.err" "$T/collector.err"; then echo "FAIL: token logged"; exit 1; fi
VANTAGE_UPLOAD_TOKEN=$TOKEN upload 2>"$T/upload.err" || { echo "FAIL: with token"; cat "$T/upload.err"; exit 1; }
[ "$(spooled)" -eq 0 ] || { echo "FAIL: spool not empty with the token"; exit 1; }
check_db "with an upload token"

# 4. `run` checks in with the real collector (its geoip CSVs map loopback to DE / AS64500), spools
# and uploads; SIGKILLed at random moments during run and upload (10 rounds), then one upload
# finishes: every measurement the probe wrote out is stored exactly once, with the check-in's
# country and network, and the spool is empty.
kill "$CPID" && wait "$CPID" 2>/dev/null || true
CPID=
DB=$T/collector-run.db
printf '127.0.0.0,127.255.255.255,64500,Loopback Test Net\n' >"$T/asn.csv"
printf '127.0.0.0,127.255.255.255,DE\n' >"$T/country.csv"
start_collector --geoip-asn "$T/asn.csv" --geoip-country "$T/country.csv"
STATE=$T/state-run
python3 - "$T/targets.json" "$PORT" <<'EOF'
import json, sys
json.dump({"version": 1, "targets": [
    {"id": "loop-%d" % i, "name": "loopback %d" % i, "platform": "test", "category": "test",
     "kind": "endpoint", "endpoints": ["127.0.0.1:%s" % sys.argv[2]]} for i in range(40)]},
    open(sys.argv[1], "w"))
EOF
runprobe() { # runprobe OUTPUT
    ${BG:+exec} "$PROBE" run --quiet --accept-risks --targets "$T/targets.json" --state-dir "$STATE" \
        --collector "$URL" --output "$1" --timeout 5 --upload-backoff-ms 20 --upload-batch 5 \
        --upload-attempts 5 --upload-max-time 60
}
export HOME=$T XDG_CONFIG_HOME=$T/config VANTAGE_SYSTEM_CONFIG=$T/no-such-probe.conf
t0=$(date +%s%N)
runprobe "$T/run-0.jsonl" 2>"$T/run.err" || { echo "FAIL: run exit $?"; cat "$T/run.err"; exit 1; }
dur_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$dur_ms" -ge 5 ] || dur_ms=5
[ "$(spooled)" -eq 0 ] || { echo "FAIL: run left measurements spooled"; cat "$T/run.err"; exit 1; }
echo "one run of 40 targets with upload: ${dur_ms} ms"
killed=0
for round in $(seq 10); do
    BG=1 runprobe "$T/run-$round.jsonl" 2>"$T/run-$round.err" &
    P=$!
    delay_ms=$((RANDOM % dur_ms))
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill -KILL "$P" 2>/dev/null || true
    st=0
    wait "$P" 2>/dev/null || st=$?
    [ "$st" -eq 137 ] && killed=$((killed + 1))
done
echo "killed $killed of 10 runs mid-way; $(spooled) measurements still spooled"
upload 2>"$T/upload.err" || { echo "FAIL: upload after killed runs: exit $?"; cat "$T/upload.err"; exit 1; }
[ "$(spooled)" -eq 0 ] || { echo "FAIL: spool not empty"; exit 1; }
[ -z "$(ls -A "$STATE/spool/tmp")" ] || { echo "FAIL: tmp leftovers"; exit 1; }
[ -z "$(ls -A "$STATE/spool/rejected")" ] || { echo "FAIL: something was rejected"; exit 1; }
python3 - "$DB" "$T" <<'EOF'
import collections, glob, json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = db.execute("SELECT uid, probe_cc, probe_asn, body FROM measurements").fetchall()
stored = collections.Counter(r[0] for r in rows)
written = set()
for f in glob.glob(sys.argv[2] + "/run-*.jsonl"):
    for line in open(f):
        try:
            written.add(json.loads(line)["measurement_uid"])
        except ValueError:
            pass  # the last line of a killed run's output may be cut
bad = [r[0] for r in rows if r[1] != "DE" or r[2] != "AS64500" or
       json.loads(r[3]).get("probe_network_name") != "Loopback Test Net"]
missing = written - set(stored)
dupes = [u for u, c in stored.items() if c > 1]
if missing or dupes or bad or len(written) < 40:
    print("FAIL: run: written %d, stored %d, missing %d, duplicated %d, without check-in %d"
          % (len(written), len(rows), len(missing), len(dupes), len(bad)))
    sys.exit(1)
print("ok: runs: %d measurements written out, %d stored, each once, all with DE/AS64500"
      % (len(written), len(rows)))
EOF

echo "ok"
