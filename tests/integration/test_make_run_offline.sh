#!/usr/bin/env bash
# `make run`'s job (scripts/run.sh) in a network namespace with no network at all, as a
# volunteer whose connection is down would run it: every default target is probe_offline (never
# blocked), every measurement reaches the embedded local collector, and the summary says the
# connection was offline. The namespace's loopback starts down; run.sh brings it up for the
# collector. Nothing can leave the namespace. The dashboard command it prints serves that run.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "skip: needs root for a network namespace"; exit 77; }
command -v unshare >/dev/null && command -v sqlite3 >/dev/null ||
    { echo "skip: unshare or sqlite3 missing"; exit 77; }
SRC=${VT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VT_BUILD_DIR:-$SRC/build}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "test_make_run_offline: FAIL: $*"; tail -n 30 "$out/log"; exit 1; }

rc=0
VT_RUN_OUT="$out" timeout 120 unshare -n "$SRC/scripts/run.sh" "$BUILD" </dev/null >"$out/log" 2>&1 ||
    rc=$?
[ "$rc" = 0 ] || fail "run.sh exited $rc"
n=$(wc -l <"$out/measurements.jsonl")
targets=$(python3 - "$SRC" <<'PY'
import json, sys, glob, os
n = 0
for f in ("social.json", "canaries.json", "vpn.json"):
    n += len(json.load(open(os.path.join(sys.argv[1], "targets", f)))["targets"])
print(n)
PY
)
[ "$n" = "$targets" ] || fail "$n measurements for $targets default targets"
python3 - "$out/measurements.jsonl" <<'PY' || fail "verdicts"
import json, sys
from collections import Counter
v = Counter(json.loads(l)["test_keys"].get("verdict") for l in open(sys.argv[1]))
assert set(v) == {"probe_offline"}, v
print("verdicts:", dict(v))
PY
stored=$(sqlite3 "$out/collector.db" 'select count(*) from measurements')
[ "$stored" = "$n" ] || fail "the local collector holds $stored of $n measurements"
grep -q "upload: $n accepted" "$out/log" || fail "no upload line saying $n accepted"
grep -q "your connection was offline" "$out/log" || fail "the summary does not say offline"
! grep -q -i "blocked" "$out/log" || fail "something was called blocked"
ls "$out/state/spool/"*.json >/dev/null 2>&1 && fail "measurements left in the spool"
# The command run.sh prints for the dashboard, as given, in a namespace of its own: the page,
# its charts' script and the measurements it shows.
dash=$(sed -n 's/^vantage: to see them on its dashboard: \(.*\), then open http:\/\/127.0.0.1:8080\/$/\1/p' \
    "$out/log")
[ -n "$dash" ] || fail "no dashboard command printed"
timeout 60 unshare -n bash -c "ip link set lo up; $dash 2>'$out/dash.log' & pid=\$!
    for i in \$(seq 100); do curl -fsS http://127.0.0.1:8080/api/v1/health >/dev/null 2>&1 && break
        sleep 0.1; done
    curl -fsS http://127.0.0.1:8080/ >'$out/index.html' &&
        curl -fsS -o /dev/null http://127.0.0.1:8080/static/vendor/chart.js &&
        curl -fsS 'http://127.0.0.1:8080/api/v1/measurements?limit=1000' >'$out/api.json'
    rc=\$?; kill \$pid; wait \$pid; exit \$rc" >>"$out/log" 2>&1 ||
    fail "the printed dashboard command does not serve the page, Chart.js and the measurements"
grep -q "<!DOCTYPE html>" "$out/index.html" || fail "the dashboard page"
python3 - "$out/api.json" "$n" <<'PY' || fail "the dashboard's API does not hold the run"
import json, sys
assert json.load(open(sys.argv[1]))["count"] == int(sys.argv[2])
PY
echo "test_make_run_offline: ok ($n targets, all probe_offline, $stored stored by the local collector)"
