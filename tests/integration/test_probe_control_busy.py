#!/usr/bin/env python3
"""A busy control: the probe asks again after Retry-After, a bounded number of times.

Where much is blocked, many probes ask a collector's control at once and it answers 429 (its
--control-max runs in flight, Retry-After 2) or 503 with a short Retry-After. The probe asks
again after that delay, at most 3 times in all, and not when the wait would be long (an outage,
a control turned off). A real vantage-collector (--allow-private-control) does the control runs
behind a relay on 127.0.0.1 that answers busy first as told. The probe measures one endpoint
target, a closed loopback port, so that it wants the control's view. Nothing leaves 127.0.0.1."""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
for b in (PROBE, COLLECTOR):
    if not os.access(b, os.X_OK):
        print("skip: %s not built" % b)
        sys.exit(77)

failures = []
tmp = tempfile.mkdtemp(prefix="vt-control-busy-")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Relay(http.server.BaseHTTPRequestHandler):
    busy = []  # the answers to give first: (status, Retry-After or None), one per request
    seen = []  # the status answered to each request
    backend = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if Relay.busy:
            code, after = Relay.busy.pop(0)
            data = json.dumps({"error": "busy"}).encode()
            self.send_response(code)
            if after is not None:
                self.send_header("Retry-After", after)
        else:
            req = urllib.request.Request(Relay.backend, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                code, data = r.status, r.read()
            self.send_response(code)
        Relay.seen.append(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return port


def measure(name, busy):
    Relay.busy, Relay.seen = list(busy), []
    st = os.path.join(tmp, name)
    targets = os.path.join(tmp, name + "-targets.json")
    with open(targets, "w") as f:
        json.dump({"version": 1, "targets": [
            {"id": "closed", "name": "closed port", "platform": "test", "category": "test",
             "kind": "endpoint", "endpoints": ["127.0.0.1:%d" % closed_port()]}]}, f)
    out = os.path.join(tmp, name + ".jsonl")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "config"),
               VANTAGE_SYSTEM_CONFIG=os.path.join(tmp, "none.conf"))
    p = subprocess.run([PROBE, "run", "--accept-risks", "--no-upload", "--quiet", "--targets",
                        targets, "--state-dir", st, "--output", out, "--timeout", "5",
                        "--control", "http://127.0.0.1:%d/api/v1/control" % relay.server_port],
                       capture_output=True, text=True, timeout=120, env=env)
    ms = [json.loads(line) for line in open(out)] if os.path.exists(out) else []
    ev = ms[0]["test_keys"].get("evidence", {}) if len(ms) == 1 else {}
    return p, ev


log = os.path.join(tmp, "collector.log")
with open(log, "w") as lf:
    col = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db",
                            "sqlite:" + os.path.join(tmp, "c.db"), "--allow-private-control",
                            "--control-timeout", "10"], stderr=lf)
relay = None
try:
    port = None
    for _ in range(200):  # 10 s at most
        m = re.search(r"listening on port (\d+)", open(log).read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.05)
    if port is None:
        raise SystemExit("FAIL the collector did not start")
    Relay.backend = "http://127.0.0.1:%d/api/v1/control" % port
    relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()

    p, ev = measure("once", [(429, "1")])
    check(Relay.seen == [429, 200] and isinstance(ev.get("control"), dict) and
          "control_error" not in ev,
          "a 429 (Retry-After 1) is asked again, and the control's view is used (%s, %s, %s)"
          % (Relay.seen, ev.get("control"), ev.get("control_error")))
    p, ev = measure("busy503", [(503, "1"), (429, None)])
    check(Relay.seen == [503, 429, 200] and isinstance(ev.get("control"), dict),
          "a 503 with a short Retry-After, then a 429 without one: the third answer is used "
          "(%s, %s)" % (Relay.seen, ev.get("control_error")))
    p, ev = measure("always", [(429, "1")] * 5)
    check(Relay.seen == [429, 429, 429] and ev.get("control") is None and
          ev.get("control_error") == "control answered HTTP 429",
          "a control that stays busy is asked 3 times in all, then the measurement says so "
          "(%s, %s)" % (Relay.seen, ev.get("control_error")))
    p, ev = measure("later", [(503, "30")])
    check(Relay.seen == [503] and ev.get("control_error") == "control answered HTTP 503",
          "a 503 whose Retry-After is long (an outage, control off) is not waited for (%s, %s)"
          % (Relay.seen, ev.get("control_error")))
    check(p.returncode == 0, "the run exits 0 (%d %s)" % (p.returncode, p.stderr[-200:]))
finally:
    if relay:
        relay.shutdown()
    col.terminate()
    try:
        col.wait(10)
    except subprocess.TimeoutExpired:
        col.kill()
    if not failures:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("kept", tmp)
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
