#!/usr/bin/env bash
# Lab scenario 27 (the evidence chain): probes in a censored network and in a clean one check in
# with the lab's collector, which places them by its GeoIP CSVs (10.99.1.0/24: XA, AS64501;
# 10.99.4.0/24: XB, AS64502), and upload. The censor answers NXDOMAIN for target.lab (platform
# lab-target: lab-target, lab-target-http) and resets TLS naming slow.lab (platform lab-sni), in
# the censored network only; other.lab, on target.lab's address, passes; delay.lab (lab-down) is
# down for everyone. Detection needs, per network and target, at least 2 devices in an hour
# with >= 50% anomalous and >= 5 anomalous measurements (docs/methodology.md): three volunteers
# (state directories: devices) per network run twice each, which the collector counts as 3
# devices, not 6 runs (their hourly x_device_hour tokens). The collector's episodes, aggregation, CSV and report must show the
# blocks, with their verdict (phase), in XA/AS64501 for those platforms only, nothing in XB,
# nothing for the target that is down; and no probe address in its database or log.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control fingerprints
lab_setup
[ -n "${LAB_COLLECTOR_URL:-}" ] || lab_die "the collector did not come up"
lab_add_clean_client

# The lab's targets, plus one the censor resets by SNI and one that is down everywhere.
python3 - "$LAB_TARGETS" "$LAB_DIR/targets.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["targets"] += [
    {"id": "lab-sni", "name": "Lab site reset by SNI", "platform": "lab-sni",
     "category": "social", "kind": "web", "endpoints": ["https://slow.lab/"]},
    {"id": "lab-down", "name": "Lab site down everywhere", "platform": "lab-down",
     "category": "social", "kind": "web", "endpoints": ["https://delay.lab/"]},
]
json.dump(t, open(sys.argv[2], "w"), indent=1)
PY
LAB_TARGETS=$LAB_DIR/targets.json

lab_isp_dns --address=/target.lab/
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string slow.lab --algo bm -j REJECT --reject-with tcp-reset

# Detection counts per hour: keep every run in one hour (the runs take seconds; this waits at
# most 40 s, only when started in an hour's last 40 s).
left=$((3600 - $(date -u +%s) % 3600))
if [ "$left" -lt 40 ]; then
    lab_log "waiting ${left} s for the next hour"
    sleep $((left + 1))
fi
t0=$SECONDS
for round in 1 2; do
    for v in 1 2 3; do
        lab_probe_upload vt-client "$LAB_DIR/xa-v$v" "$LAB_DIR/xa-v$v-$round.jsonl"
        lab_probe_upload vt-clean "$LAB_DIR/xb-v$v" "$LAB_DIR/xb-v$v-$round.jsonl"
    done
done
lab_log "12 probe runs uploaded in $((SECONDS - t0)) s"

# What the probes said (the verdicts are scenario 2's and 7's; here they anchor the rest).
LAB_OUT=$LAB_DIR/xa-v1-1.jsonl lab_show
LAB_OUT=$LAB_DIR/xa-v1-1.jsonl lab_assert lab-target verdict=dns_blocking verdict_phase=dns \
    /probe_cc=XA /probe_asn=AS64501
LAB_OUT=$LAB_DIR/xa-v1-1.jsonl lab_assert lab-sni verdict=tls_blocking verdict_phase=tls
LAB_OUT=$LAB_DIR/xa-v1-1.jsonl lab_assert lab-other verdict=ok
LAB_OUT=$LAB_DIR/xa-v1-1.jsonl lab_assert lab-down verdict=down
LAB_OUT=$LAB_DIR/xb-v1-1.jsonl lab_assert --all verdict~='^(ok|down)$' /probe_cc=XB \
    /probe_asn=AS64502

# Episodes are re-detected by a timer (about every 2 s) for the series the uploads marked
# dirty: wait, bounded, until none is left, so that "none in XB" is not read before XB's turn.
db=$LAB_DIR/collector/vantage.db
python3 - "$db" <<'PY' || lab_die "the collector did not finish detecting"
import sqlite3, sys, time
end = time.monotonic() + 40
while True:
    try:
        c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=2)
        n = c.execute("SELECT count(*) FROM episodes_dirty").fetchone()[0]
        c.close()
    except sqlite3.Error as e:
        n = "?(%s)" % e
    if n == 0:
        sys.exit(0)
    if time.monotonic() > end:
        sys.exit("%s series still waiting for detection" % n)
    time.sleep(0.5)
PY

# Through the collector's API (in vt-control, on its loopback) and its report.
since=$(date -u -d '2 days ago' +%F)
report() { lab_ns vt-control "$LAB_COLLECTOR" report --db "sqlite:$db" --since "$since" "$@"; }
report --cc XA --format json >"$LAB_DIR/report-xa.json" || lab_die "report XA failed"
report --cc XB --format json >"$LAB_DIR/report-xb.json" || lab_die "report XB failed"
report --cc XA --asn 64501 --format csv >"$LAB_DIR/report-xa.csv" || lab_die "report XA (csv) failed"
report --cc XA --format md >&2 || lab_die "report XA (md) failed"
# The reports read the database beside the serving collector: they must leave its episodes as
# they were (no episode dropped, nothing to redo).
python3 - "$db" <<'PY' || lab_die "running the report changed the collector's episodes"
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
ep = c.execute("SELECT count(*) FROM episodes").fetchone()[0]
dirty = c.execute("SELECT count(*) FROM episodes_dirty").fetchone()[0]
if (ep, dirty) != (3, 0):
    sys.exit("lab: %d episodes stored, %d series to redo, after the reports" % (ep, dirty))
PY
lab_ns vt-control python3 - "http://127.0.0.1:$LAB_CONTROL_PORT" "$since" "$LAB_DIR" <<'PY' ||
import csv, io, json, sys, urllib.request
base, since, d = sys.argv[1], sys.argv[2], sys.argv[3]

def get(path, raw=False):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        body = r.read().decode()
    return body if raw else json.loads(body)

bad = []
def want(ok, what):
    if not ok:
        bad.append(what)

# (cc, asn, target) -> (platform, the dominant verdict, i.e. the phase)
expected = {
    ("XA", "AS64501", "lab-target"): ("lab-target", "dns_blocking"),
    ("XA", "AS64501", "lab-target-http"): ("lab-target", "dns_blocking"),
    ("XA", "AS64501", "lab-sni"): ("lab-sni", "tls_blocking"),
}
ep = get("/api/v1/episodes?since=" + since)["results"]
print(json.dumps(ep, indent=1), file=sys.stderr)
got = {(e["probe_cc"], e["probe_asn"], e["target"]): e for e in ep}
want(len(ep) == len(got) == len(expected),
     "episodes: %s, want one each of %s" % (sorted(got), sorted(expected)))
for k, (platform, verdict) in expected.items():
    e = got.get(k)
    if not e:
        bad.append("no episode for %s" % (k,))
        continue
    ev = e["evidence"]
    want(e["kind"] == "blocking" and e["scope"] == "targeted", "%s: kind %s scope %s" % (k, e["kind"], e["scope"]))
    want(e["platform"] == platform, "%s: platform %s" % (k, e["platform"]))
    want(e["test_name"] == "web_connectivity", "%s: test %s" % (k, e["test_name"]))
    want(ev["top_verdict"] == verdict, "%s: top_verdict %s, want %s" % (k, ev["top_verdict"], verdict))
    want(e["ongoing"] is True and e["confirmed"] is False, "%s: ongoing %s confirmed %s" % (k, e["ongoing"], e["confirmed"]))
    want(ev["anomalies"] == ev["measurements"] == 6 and ev["anomaly_share"] == 1,
         "%s: %s anomalies of %s, share %s" % (k, ev["anomalies"], ev["measurements"], ev["anomaly_share"]))
    want(ev["max_probes"] == 3 and ev["failures"] == 0, "%s: max_probes %s failures %s" % (k, ev["max_probes"], ev["failures"]))
    want(e["start"] < e["end"], "%s: %s..%s" % (k, e["start"], e["end"]))

# The filters a group would use.
for q, n in (("probe_cc=XB", 0), ("probe_asn=AS64502", 0), ("platform=lab-other", 0),
             ("platform=lab-down", 0), ("kind=slowdown", 0), ("kind=outage", 0),
             ("platform=lab-target", 2), ("probe_cc=XA&platform=lab-sni", 1),
             ("probe_asn=AS64501&kind=blocking", 3)):
    c = get("/api/v1/episodes?since=%s&%s" % (since, q))["count"]
    want(c == n, "episodes?%s: %d, want %d" % (q, c, n))
rows = list(csv.DictReader(io.StringIO(get("/api/v1/episodes?since=%s&format=csv" % since, raw=True))))
want(sorted((r["probe_cc"], r["probe_asn"], r["target"]) for r in rows) == sorted(expected),
     "episodes CSV: %s" % rows)

# Aggregation per network and platform: 6 runs of 3 devices each, anomalies only where censored.
agg = get("/api/v1/aggregation?since=%s&by=probe_asn,platform" % since)["results"]
a = {(r["probe_asn"], r["platform"]): r for r in agg}
want(len(a) == 10, "aggregation groups: %s" % sorted(a))
for (asn, platform), r in sorted(a.items()):
    n = 12 if platform == "lab-target" else 6
    blocked = asn == "AS64501" and platform in ("lab-target", "lab-sni")
    want(r["measurement_count"] == n and r["probes"] == 3,
         "%s %s: %s measurements from %s devices" % (asn, platform, r["measurement_count"], r["probes"]))
    want(r["anomaly_count"] == (n if blocked else 0), "%s %s: %s anomalous" % (asn, platform, r["anomaly_count"]))
    want(r["failure_count"] == (6 if platform == "lab-down" else 0), "%s %s: %s failed" % (asn, platform, r["failure_count"]))
csvagg = get("/api/v1/aggregation?since=%s&by=probe_cc,platform&format=csv" % since, raw=True)
want(len(list(csv.DictReader(io.StringIO(csvagg)))) == 10, "aggregation CSV: %s" % csvagg)

# The report detects over its own range, independently of the episodes table.
rx = json.load(open(d + "/report-xa.json"))
rb = json.load(open(d + "/report-xb.json"))
want(sorted((e.get("probe_asn"), e.get("target")) for e in rx["episodes"]) ==
     sorted((k[1], k[2]) for k in expected), "report XA episodes: %s" % rx["episodes"])
want(rb["episodes"] == [], "report XB episodes: %s" % rb["episodes"])
rc = list(csv.DictReader(open(d + "/report-xa.csv")))
want(sorted((r["probe_asn"], r["platform"], r["target"], r["kind"]) for r in rc) ==
     sorted((k[1], v[0], k[2], "blocking") for k, v in expected.items()), "report XA CSV: %s" % rc)
want(all(r["how_detected"].startswith(expected[(r["probe_cc"], r["probe_asn"], r["target"])][1])
         for r in rc), "report XA CSV, how detected: %s" % rc)
if bad:
    print("\n".join("lab: FAIL: " + b for b in bad), file=sys.stderr)
    sys.exit(1)
print("lab: the collector reports the blocks in XA/AS64501 for lab-target (dns) and lab-sni (tls) only", file=sys.stderr)
PY
    lab_die "the collector's evidence is not what the censor did"

# Privacy: neither probe's address in the collector's database (with its WAL) or log.
for f in "$db" "$db-wal" "$LAB_DIR/collector/collector.log"; do
    [ -e "$f" ] || continue
    if grep -a -q -E "(^|[^0-9])10\.99\.(1\.2|4\.2)([^0-9]|$)" "$f"; then
        lab_die "a probe's address is in $f"
    fi
done
