#!/usr/bin/env python3
"""A collector blocked by the volunteer's network: the probe checks in and uploads at another
address the collector announced (`serve --alternate-url`), kept in the state directory from the
last check-in that reached it.

The real collector listens on a loopback port; the probe's collector_url is a TCP relay in this
test that forwards to it. Run 1 goes through the relay and keeps the announced address. The relay
is then closed (connection refused, as a blocked address behaves): run 2 must check in and upload
at the announced address, say so even with --quiet, and lose nothing. A run with another
collector_url must not use the alternates kept for this one. Nothing leaves 127.0.0.1."""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
if not (os.access(PROBE, os.X_OK) and os.access(COLLECTOR, os.X_OK)):
    print("skip: binaries not built")
    sys.exit(77)

failures = []
tmp = tempfile.mkdtemp(prefix="vt-alternates-")


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


class Relay:
    """Forwards each connection to 127.0.0.1:dst until closed (bounded: 30 s per connection)."""

    def __init__(self, dst):
        self.dst = dst
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.open = True
        threading.Thread(target=self.serve, daemon=True).start()

    def pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(self):
        while self.open:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.dst), timeout=5)
            for s in (c, up):
                s.settimeout(30)
            threading.Thread(target=self.pipe, args=(c, up), daemon=True).start()
            threading.Thread(target=self.pipe, args=(up, c), daemon=True).start()

    def close(self):
        self.open = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept(); the port stops listening
        except OSError:
            pass
        self.sock.close()


port = free_port()
db = os.path.join(tmp, "c.db")
direct = "http://127.0.0.1:%d" % port
coll = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:%d" % port, "--db",
                         "sqlite:" + db, "--rate", "0", "--alternate-url", direct],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
line = coll.stderr.readline()
if "listening on port" not in line:
    print("FAIL: the collector did not start: %r" % line)
    coll.kill()
    sys.exit(1)
relay = Relay(port)
primary = "http://127.0.0.1:%d" % relay.port

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


def run(url, *extra):
    return subprocess.run([PROBE, "run", "--targets", targets, "--timeout", "2", "--state-dir",
                           state, "--collector", url, "--output", "/dev/null",
                           "--upload-attempts", "2", "--upload-backoff-ms", "20"] + list(extra),
                          env=env, capture_output=True, text=True, timeout=120)


def stored():
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    finally:
        c.close()


bad = subprocess.run([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db", "sqlite:" + db,
                      "--alternate-url", "ftp://x"], capture_output=True, text=True, timeout=10)
check(bad.returncode == 2 and "--alternate-url" in bad.stderr,
      "the collector refuses an --alternate-url that is not http(s) (%d)" % bad.returncode)
try:
    check_ans = subprocess.run(["curl", "-s", "-X", "POST", "-d", "{}", direct + "/api/v1/check-in"],
                               capture_output=True, text=True, timeout=10)
    ans = json.loads(check_ans.stdout or "{}")
    check(ans.get("alternate_urls") == [direct],
          "the check-in announces --alternate-url (%r)" % ans.get("alternate_urls"))

    p = run(primary)
    kept_path = os.path.join(state, "collector-alternates.json")
    kept = json.load(open(kept_path)) if os.path.exists(kept_path) else {}
    check(p.returncode == 0 and stored() == 1, "run 1 through the relay: uploaded (%d, %d stored: %s)"
          % (p.returncode, stored(), p.stderr.strip()[-300:]))
    check(kept == {"collector": primary, "alternate_urls": [direct]},
          "the announced address is kept for that collector_url (%r)" % kept)

    relay.close()  # the collector's address is now "blocked": connection refused
    t0 = time.monotonic()
    p = run(primary, "--quiet")
    lu = json.load(open(os.path.join(state, "last-upload.json")))
    check(p.returncode == 0 and stored() == 2,
          "run 2, its address blocked: checked in and uploaded at the alternate (%d, %d stored, "
          "%.1f s: %r)" % (p.returncode, stored(), time.monotonic() - t0, p.stderr))
    check(("checked in at %s instead" % direct) in p.stderr and len(p.stderr.splitlines()) == 1,
          "one line says so, even with --quiet (%r)" % p.stderr)
    check(lu.get("collector") == direct and lu.get("ok") is True,
          "last-upload.json names where it went (%r)" % lu.get("collector"))
    kept2 = json.load(open(kept_path))
    check(kept2 == kept, "a check-in at an alternate leaves what was kept alone")

    # `vantage-probe upload` alone (no check-in): the same fallback once the upload gets no answer.
    p = run(primary, "--quiet", "--no-upload")
    n0 = stored()
    p = subprocess.run([PROBE, "upload", "--state-dir", state, "--collector", primary, "--quiet",
                        "--upload-attempts", "2", "--upload-backoff-ms", "20"],
                       env=env, capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and stored() == n0 + 1 and ("trying %s" % direct) in p.stderr,
          "`upload` with the address blocked: sent to the alternate (%d, %d -> %d: %r)"
          % (p.returncode, n0, stored(), p.stderr))

    other = "http://127.0.0.1:%d" % free_port()
    n0 = stored()
    p = run(other, "--quiet")
    check(p.returncode == 4 and "instead" not in p.stderr and stored() == n0,
          "another collector_url does not use this one's alternates (%d %r)"
          % (p.returncode, p.stderr))

    # A kept file that is not what the probe writes (edited, cut short, hostile): ignored.
    for bad in ('{"collector": "%s", "alternate_urls": ["ftp://x", "http://192.0.2.1/"]}' % primary,
                '{"collector": "%s", "alternate_urls": "%s"}' % (primary, direct),
                '{"collector": "%s", "alter' % primary, "\x00" * 100, "[" * 20000):
        with open(kept_path, "w") as f:
            f.write(bad)
        p = run(primary, "--quiet")
        check(p.returncode == 4 and "instead" not in p.stderr,
              "a kept file %r...: ignored, the run goes on (%d)" % (bad[:40], p.returncode))
finally:
    relay.close()
    coll.terminate()
    try:
        coll.wait(timeout=20)
    except subprocess.TimeoutExpired:
        coll.kill()
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all alternate-address checks passed")
