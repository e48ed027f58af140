#!/usr/bin/env python3
"""A run whose check-in fails (the collector down for a while) measures as ZZ/AS0 and waits in
the spool. When the check-ins before and after it named the same country and network, the
upload sends it with them ("x_check_in": "inferred"); when they disagree, it stays ZZ/AS0
("x_check_in": "failed"). A real collector with GeoIP files that place 127.0.0.1, stopped and
started again on the same port; nothing leaves 127.0.0.1."""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
if not (os.access(PROBE, os.X_OK) and os.access(COLLECTOR, os.X_OK)):
    print("skip: binaries not built")
    sys.exit(77)

failures = []
tmp = tempfile.mkdtemp(prefix="vt-checkin-failed-")


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


port = free_port()
url = "http://127.0.0.1:%d" % port
db = os.path.join(tmp, "c.db")
cc_csv = os.path.join(tmp, "country.csv")
with open(cc_csv, "w") as f:
    f.write("127.0.0.0,127.255.255.255,PK\n")


def start_collector(asn):
    asn_csv = os.path.join(tmp, "asn-%d.csv" % asn)
    with open(asn_csv, "w") as f:
        f.write('127.0.0.0,127.255.255.255,%d,"Lab Net %d"\n' % (asn, asn))
    c = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:%d" % port, "--db",
                          "sqlite:" + db, "--rate", "0", "--geoip-asn", asn_csv,
                          "--geoip-country", cc_csv],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = c.stderr.readline()
    if "listening on port" not in line:
        c.kill()
        raise SystemExit("FAIL: the collector did not start: %r" % line)
    return c


def stop_collector(c):
    c.terminate()
    try:
        c.wait(timeout=20)
    except subprocess.TimeoutExpired:
        c.kill()
        c.wait()


closed = free_port()
targets = os.path.join(tmp, "t.json")
with open(targets, "w") as f:
    json.dump({"version": 1, "list": "t", "targets": [{
        "id": "t-closed", "name": "t", "platform": "test", "category": "social",
        "kind": "endpoint", "endpoints": ["127.0.0.1:%d" % closed]}]}, f)
env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
env.update(HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "cfg"),
           VANTAGE_SYSTEM_CONFIG=os.path.join(tmp, "none.conf"), VANTAGE_ACCEPT_RISKS="yes")
state = os.path.join(tmp, "state")
out = os.path.join(tmp, "out.jsonl")


def run():
    """One run; returns (process, the measurement it wrote). Times have whole seconds: a second
    apart, each run's check-in and measurement are in order (the probe counts check-ins in a
    failed run's own second on both sides)."""
    time.sleep(1.1)
    if os.path.exists(out):
        os.unlink(out)
    p = subprocess.run([PROBE, "run", "--targets", targets, "--timeout", "2", "--state-dir",
                        state, "--collector", url, "--output", out, "--upload-attempts", "2",
                        "--upload-backoff-ms", "20", "--no-canaries"],
                       env=env, capture_output=True, text=True, timeout=120)
    lines = open(out).read().splitlines() if os.path.exists(out) else []
    return p, json.loads(lines[0]) if len(lines) == 1 else {}


def stored(uid):
    c = sqlite3.connect(db)
    try:
        r = c.execute("SELECT probe_cc, probe_asn, body FROM measurements WHERE uid = ?",
                      (uid,)).fetchone()
        return (r[0], r[1], json.loads(r[2])) if r else None
    finally:
        c.close()


coll = start_collector(64500)
try:
    p, m1 = run()
    check(p.returncode == 0 and m1.get("probe_cc") == "PK" and m1.get("probe_asn") == "AS64500"
          and "x_check_in" not in m1,
          "run 1 checks in: PK/AS64500, no x_check_in (%d %r)" % (p.returncode, p.stderr[-300:]))
    hist = json.load(open(os.path.join(state, "check-ins.json")))["check_ins"]
    check(len(hist) == 1 and hist[0]["probe_asn"] == "AS64500" and
          hist[0]["probe_network_name"] == "Lab Net 64500" and
          hist[0]["time"] <= m1.get("measurement_start_time", ""),
          "the check-in is kept in check-ins.json (%r)" % hist)

    stop_collector(coll)  # down for a while: run 2's check-in and upload fail
    p, m2 = run()
    check(p.returncode == 4 and m2.get("probe_cc") == "ZZ" and m2.get("probe_asn") == "AS0" and
          m2.get("x_check_in") == "failed" and "_ZZ_0_n1_" in m2.get("report_id", ""),
          "run 2, collector down: measured as ZZ/AS0, x_check_in failed, spooled (%d, %s)"
          % (p.returncode, {k: m2.get(k) for k in ("probe_cc", "probe_asn", "x_check_in")}))
    check("measuring as ZZ/AS0" in p.stderr, "run 2 says so (%r)" % p.stderr[-300:])

    coll = start_collector(64500)  # back, the probe on the same network
    p, m3 = run()
    got = stored(m2.get("measurement_uid", "-"))
    body = got[2] if got else {}
    check(p.returncode == 0 and got is not None and got[0] == "PK" and got[1] == "AS64500",
          "run 3 uploads run 2's measurement as PK/AS64500 (%d, %r)" % (p.returncode, got and got[:2]))
    around = body.get("x_check_ins_around") or ["", ""]
    check(body.get("x_check_in") == "inferred" and around[0] == hist[0]["time"] and
          m2["measurement_start_time"] < around[1] <= m3.get("measurement_start_time", "") and
          body.get("probe_network_name") == "Lab Net 64500" and
          body.get("report_id") == m2["report_id"].replace("_ZZ_0_n1_", "_PK_64500_n1_"),
          "stored with x_check_in inferred, the two check-ins' times, the network name and the "
          "report_id (%s)" % {k: body.get(k) for k in ("x_check_in", "x_check_ins_around",
                                                         "report_id")})
    check("check-ins before and after" in p.stderr, "the upload says so (%r)" % p.stderr[-300:])
    check(stored(m1["measurement_uid"])[2].get("x_check_in") is None,
          "run 1's measurement is stored as it was")

    # The network changed while the collector was down: the check-ins around run 4 disagree.
    stop_collector(coll)
    p, m4 = run()
    check(p.returncode == 4 and m4.get("x_check_in") == "failed", "run 4, collector down again")
    coll = start_collector(64501)
    p, m5 = run()
    got = stored(m4.get("measurement_uid", "-"))
    check(p.returncode == 0 and got is not None and got[0] == "ZZ" and got[1] == "AS0" and
          got[2].get("x_check_in") == "failed" and "check-ins before" not in p.stderr,
          "run 5 on another network: run 4's measurement is stored as ZZ/AS0, x_check_in failed "
          "(%d, %r)" % (p.returncode, got and got[:2]))
    check(stored(m5.get("measurement_uid", "-"))[1] == "AS64501", "run 5's own: AS64501")

    # The device's hourly token: the same in every run of this state directory within a clock
    # hour, 16 hex digits, a key file only its owner reads; the collector counts the device once
    # per hour however many runs it made.
    runs = [m1, m2, m3, m4, m5]
    toks = [m.get("x_device_hour", "") for m in runs]
    check(all(len(t) == 16 and all(c in "0123456789abcdef" for c in t) for t in toks),
          "every measurement carries x_device_hour (%r)" % toks)
    same_hour = [t for m, t in zip(runs, toks)
                 if m["measurement_start_time"][:13] == m1["measurement_start_time"][:13]]
    check(len(set(same_hour)) == 1, "one token for the runs in one hour (%r)" % same_hour)
    key = os.path.join(state, "device-key")
    check(os.stat(key).st_mode & 0o777 == 0o600, "device-key is 0600")
    agg = json.loads(subprocess.run(
        ["curl", "-s", url + "/api/v1/aggregation?grain=hour&by=probe_asn&probe_cc=PK"],
        capture_output=True, text=True, timeout=20).stdout or "{}")
    rows = {r["probe_asn"]: r for r in agg.get("results", [])}
    a = rows.get("AS64500", {})
    n_hours = len({m["measurement_start_time"][:13] for m in (m1, m2, m3)})
    check(a.get("measurement_count") == 3 and a.get("probes") == n_hours,
          "3 runs of one device on AS64500: counted as %d probe(s), one per hour (%r)"
          % (n_hours, a))
    other_state = os.path.join(tmp, "state-other")
    p = subprocess.run([PROBE, "run", "--targets", targets, "--timeout", "2", "--state-dir",
                        other_state, "--no-upload", "--output", out, "--no-canaries"],
                       env=env, capture_output=True, text=True, timeout=120)
    mo = json.loads(open(out).read().splitlines()[0])
    tok5 = m5["x_device_hour"] if m5["measurement_start_time"][:13] == \
        mo["measurement_start_time"][:13] else None
    check(mo.get("x_device_hour") and mo["x_device_hour"] != tok5 and
          open(key).read() != open(os.path.join(other_state, "device-key")).read(),
          "another state directory is another device: another key and token")
    c = sqlite3.connect(db)
    dump = "\n".join(str(r) for r in c.execute("SELECT * FROM measurements"))
    c.close()
    check(open(key).read().strip() not in dump, "the key itself is nowhere in the database")

    # A broken history: the run goes on, the next check-in starts it again.
    with open(os.path.join(state, "check-ins.json"), "w") as f:
        f.write('{"check_ins": [{"time": ')
    p, m6 = run()
    hist = json.load(open(os.path.join(state, "check-ins.json")))["check_ins"]
    check(p.returncode == 0 and len(hist) == 1 and hist[0]["probe_asn"] == "AS64501",
          "a broken check-ins.json: the run goes on, the history starts again (%d, %r)"
          % (p.returncode, hist))
finally:
    stop_collector(coll)
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all failed-check-in checks passed")
