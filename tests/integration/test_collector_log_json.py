#!/usr/bin/env python3
"""vantage-collector --log-json: every line it writes to standard error is one JSON object,
not only the request lines: the start, the one-time X-Forwarded-For warning, SIGTERM, the stop,
and a start that fails (a log shipper that reads JSON lines must never meet plain text)."""
import json
import os
import re
import shutil
import signal
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


tmp = tempfile.mkdtemp(prefix="vt-logjson-")
try:
    log = os.path.join(tmp, "err")
    with open(log, "w") as err:
        proc = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db",
                                 "sqlite:" + os.path.join(tmp, "c.db"), "--log-json"],
                                stderr=err)
    port = None
    deadline = time.time() + 30
    while time.time() < deadline and port is None:
        time.sleep(0.05)
        with open(log) as f:
            m = re.search(r"listening on port (\d+)", f.read())
        port = m.group(1) if m else None
    if not port:
        proc.kill()
        sys.exit("FAIL collector did not start")
    base = "http://127.0.0.1:" + port
    urllib.request.urlopen(base + "/api/v1/health", timeout=30).read()
    req = urllib.request.Request(base + "/api/v1/check-in", data=b"{}",
                                 headers={"X-Forwarded-For": "192.0.2.7"})
    urllib.request.urlopen(req, timeout=30).read()
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=60) == 0, "the collector stops on SIGTERM")
    with open(log) as f:
        text = f.read()
    objs = all_json(text, "serve")
    msgs = " | ".join(o.get("msg", "") for o in objs)
    check("listening on port" in msgs and "X-Forwarded-For" in msgs and "SIGTERM" in msgs and
          "stopped" in msgs, "the start, the warning, SIGTERM and the stop are messages")
    check(any(o.get("path") == "/api/v1/health" for o in objs), "request lines as before")
    check("192.0.2.7" not in text, "no address in the log")

    r = subprocess.run([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db",
                        "sqlite:" + os.path.join(tmp, "no", "such", "dir", "c.db"),
                        "--log-json"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 1, f"a database that cannot be opened stops the start ({r.returncode})")
    objs = all_json(r.stderr, "failed start")
    check(objs and "cannot open" in objs[-1].get("msg", ""), "the reason is the message")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failures else 0)
