#!/usr/bin/env python3
"""The repeats of a failed request (lib/verdict.c, methodology.md: a request cut by a reset, a
timeout or EOF is asked again, up to 4 times while each works, before it can count as
http_blocking) must be the same request:
- a server that cuts every response after 16 KiB (as a censor freezing or resetting connections
  after their first kilobytes does) cuts the repeat too: the repeat must read as far as the
  measurement did, not stop after a few kilobytes and call that "worked";
- after a redirect, the request that failed is repeated (not the 3xx before it), and when only
  the first attempt was reset the repeats work: 4 of them, a passing failure;
- a server that resets every second request (an intermittent block) fails the second repeat,
  which ends the repeats and makes the measurement intermittent.
Loopback only: each server here is the test's own."""
import atexit
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
if not os.access(PROBE, os.X_OK):
    print("skip: %s not built" % PROBE)
    sys.exit(77)

failures = []
tmp = tempfile.mkdtemp(prefix="vt-repeat-")
atexit.register(shutil.rmtree, tmp, ignore_errors=True)


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def reset(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


class Server:
    """Answers each connection's first request with handler(path, n) (n: requests so far)."""

    def __init__(self, handler):
        self.handler, self.paths = handler, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            c.settimeout(5)
            try:
                req = c.recv(65536)
                if not req:
                    c.close()
                    continue
                path = req.split(b" ", 2)[1].decode()
                self.paths.append(path)
                self.handler(c, path, len(self.paths))
            except OSError:
                c.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def measure(name, port, path="/"):
    top = os.path.join(tmp, name)
    os.makedirs(top)
    t = os.path.join(top, "targets.json")
    with open(t, "w") as f:
        json.dump({"version": 1, "targets": [
            {"id": name, "name": name, "platform": "test", "category": "test", "kind": "web",
             "endpoints": ["http://127.0.0.1:%d%s" % (port, path)]}]}, f)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=top, XDG_CONFIG_HOME=top + "/c", XDG_STATE_HOME=top + "/s",
               VANTAGE_SYSTEM_CONFIG=top + "/none", VANTAGE_ACCEPT_RISKS="yes")
    out = os.path.join(top, "out.jsonl")
    p = subprocess.run([PROBE, "run", "--quiet", "--no-canaries", "--targets", t, "--state-dir",
                        top + "/st", "--output", out, "--timeout", "5", "--no-upload"],
                       capture_output=True, text=True, timeout=120, env=env)
    lines = open(out).read().splitlines() if os.path.exists(out) else []
    if len(lines) != 1:
        check(False, "%s: one measurement (rc %d, %s)" % (name, p.returncode, p.stderr[-300:]))
        return {}
    return json.loads(lines[0])["test_keys"]


# 1. Every response cut after 16 KiB of its body (a reset).
def cut_every_time(c, path, n):
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 200000\r\n\r\n"
              b"<html><title>t</title>" + b"x" * 16384)
    threading.Timer(0.2, reset, (c,)).start()


srv = Server(cut_every_time)
try:
    tk = measure("cut", srv.port)
    rep = (tk.get("evidence") or {}).get("repeat")
    check(tk.get("failure_phase") == "http" and tk.get("failure") == "connection_reset",
          "cut: the request was cut (%s, %s)" % (tk.get("failure_phase"), tk.get("failure")))
    check(isinstance(rep, dict) and rep.get("failure") == "connection_reset" and
          rep.get("bytes_received", 0) >= 16384,
          "cut: the repeat read as far and was cut too (%s)" % json.dumps(rep))
    check("worked when tried again" not in tk.get("verdict_reason", ""),
          "cut: not called a passing failure (%s: %s)" % (tk.get("verdict"),
                                                         tk.get("verdict_reason")))
    check(srv.paths.count("/") == 2, "cut: a repeat that fails ends the repeats (%s)" % srv.paths)
finally:
    srv.close()


def small_page(c):
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 22\r\n"
              b"Connection: close\r\n\r\n<html><title>t</title>")
    c.close()


# 2. "/" redirects to "/page"; only the first request for /page is reset.
def redirect_then_reset_once(c, path, n):
    if path == "/":
        c.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /page\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
        c.close()
    elif sum(1 for p in srv.paths if p == "/page") == 1:
        reset(c)
    else:
        small_page(c)


srv = Server(redirect_then_reset_once)
try:
    tk = measure("redirect", srv.port)
    rep = (tk.get("evidence") or {}).get("repeat")
    check(tk.get("failure_phase") == "http", "redirect: the request for /page failed (%s, %s)"
          % (tk.get("failure_phase"), tk.get("failure")))
    check(isinstance(rep, dict) and rep.get("failure") is None and rep.get("status") == 200,
          "redirect: the failed request was repeated, and worked (%s)" % json.dumps(rep))
    check(srv.paths.count("/page") == 5 and srv.paths.count("/") == 1,
          "redirect: /page asked 5 times, / once (%s)" % srv.paths)
    check(rep.get("failures") == [None] * 4 and not tk["evidence"].get("intermittent"),
          "redirect: 4 repeats, all working (%s)" % json.dumps(rep))
    check(tk.get("verdict") != "http_blocking", "redirect: not http_blocking (%s)"
          % tk.get("verdict"))
finally:
    srv.close()


# 3. Every second request reset (the 1st, 3rd, ...): the measurement's, then the second repeat.
def reset_every_second(c, path, n):
    if n % 2:
        reset(c)
    else:
        small_page(c)


srv = Server(reset_every_second)
try:
    tk = measure("intermittent", srv.port)
    ev = tk.get("evidence") or {}
    rep = ev.get("repeat") or {}
    check(tk.get("failure") == "connection_reset" and len(srv.paths) == 3,
          "intermittent: the request, then 2 repeats (%s, %s)" % (tk.get("failure"), srv.paths))
    check(rep.get("failure") is None and rep.get("failures") == [None, "connection_reset"],
          "intermittent: the first repeat worked, the second was reset (%s)" % json.dumps(rep))
    check(ev.get("intermittent") is True and
          "2 of 3 attempts failed" in tk.get("verdict_reason", ""),
          "intermittent: said so (%s: %s)" % (tk.get("verdict"), tk.get("verdict_reason")))
    # no control here: blocked cannot be told from down
    check(tk.get("verdict") == "inconclusive", "intermittent: inconclusive without a control (%s)"
          % tk.get("verdict"))
finally:
    srv.close()

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all ok")
