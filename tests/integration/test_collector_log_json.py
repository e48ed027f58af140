#!/usr/bin/env python3
"""vantage-collector --log-json: every line it writes to standard error is one JSON object,
not only the request lines: the start, the one-time X-Forwarded-For warning, SIGTERM, the stop,
and a start that fails (a log shipper that reads JSON lines must never meet plain text). And a
start that rebuilds the rollups from the stored measurements (emptied tables, as after an
operator deleted measurements, docs/operator.md) says so, with the count."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.environ.get("VT_BUILD_DIR", "build")
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def all_json(text, what):
    lines = text.splitlines()
    bad = []
    for line in lines:
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    check(lines and not bad, f"{what}: {len(lines)} lines, each a JSON object {bad[:3]}")
    return [json.loads(line) for line in lines if line not in bad]


def measurement(i):
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return {"data_format_version": "0.2.0", "input": "https://example.org/", "report_id": "r1",
            "measurement_start_time": now, "probe_asn": "AS64500", "probe_cc": "PK",
            "probe_ip": "127.0.0.1", "software_name": "vantage-probe", "software_version": "0.1.0",
            "test_name": "web_connectivity", "measurement_uid": "%032x" % (i + 1),
            "annotations": {"target_id": "t", "platform": "p", "category": "social"},
            "test_keys": {"verdict": "ok"}}


def start(db, log):
    with open(log, "w") as err:
        proc = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db",
                                 "sqlite:" + db, "--log-json"], stderr=err)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.05)
        with open(log) as f:
            m = re.search(r"listening on port (\d+)", f.read())
        if m:
            return proc, "http://127.0.0.1:" + m.group(1)
    proc.kill()
    sys.exit("FAIL collector did not start")


def stop(proc, log):
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=60) == 0, "the collector stops on SIGTERM")
    with open(log) as f:
        return f.read()


tmp = tempfile.mkdtemp(prefix="vt-logjson-")
try:
    log, db = os.path.join(tmp, "err"), os.path.join(tmp, "c.db")
    proc, base = start(db, log)
    urllib.request.urlopen(base + "/api/v1/health", timeout=30).read()
    req = urllib.request.Request(base + "/api/v1/check-in", data=b"{}",
                                 headers={"X-Forwarded-For": "192.0.2.7"})
    urllib.request.urlopen(req, timeout=30).read()
    body = "".join(json.dumps(measurement(i)) + "\n" for i in range(3)).encode()
    up = json.loads(urllib.request.urlopen(base + "/api/v1/measurements", data=body,
                                           timeout=60).read())
    check(up.get("accepted") == 3, f"three measurements stored ({up})")
    text = stop(proc, log)
    objs = all_json(text, "serve")
    msgs = " | ".join(o.get("msg", "") for o in objs)
    check("listening on port" in msgs and "X-Forwarded-For" in msgs and "SIGTERM" in msgs and
          "stopped" in msgs, "the start, the warning, SIGTERM and the stop are messages")
    check(any(o.get("path") == "/api/v1/health" for o in objs), "request lines as before")
    check("192.0.2.7" not in text, "no address in the log")
    check("rebuil" not in text, "a new database's empty rollups are not a rebuild")

    with sqlite3.connect(db) as c:
        for t in ("rollup_hourly", "rollup_daily", "rollup_cc_hourly", "rollup_cc_daily",
                  "rollup_cc_all_daily", "episodes", "episodes_dirty"):
            c.execute("DELETE FROM " + t)
    c.close()
    proc, base = start(db, log)
    agg = json.loads(urllib.request.urlopen(base + "/api/v1/aggregation?by=probe_cc",
                                            timeout=60).read())
    text = stop(proc, log)
    objs = all_json(text, "rebuild")
    msgs = [o.get("msg", "") for o in objs]
    check(any("rebuilding" in m for m in msgs) and
          any("rebuilt from 3 measurements" in m for m in msgs),
          f"the rebuild at the start is in the log ({msgs[:3]})")
    check([r.get("measurement_count") for r in agg.get("results", [])] == [3],
          f"and the rollups count the stored measurements again ({agg})")

    r = subprocess.run([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db",
                        "sqlite:" + os.path.join(tmp, "no", "such", "dir", "c.db"),
                        "--log-json"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 1, f"a database that cannot be opened stops the start ({r.returncode})")
    objs = all_json(r.stderr, "failed start")
    check(objs and "cannot open" in objs[-1].get("msg", ""), "the reason is the message")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failures else 0)
