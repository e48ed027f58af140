#!/usr/bin/env python3
"""The collector's connection limits against slow-drip clients (collector/conns.c), on 127.0.0.1.

A collector with --max-connections 40 --request-timeout 2 (and evhttp's inactivity timeout at its
default 30 s, so only the new limits can explain what happens):
  1. 30 clients drip one header byte every 0.3 s and never finish a request: each is shut down
     within the 2 s deadline (+ margin), long before evhttp's own timeout would act;
  2. meanwhile a keep-alive client that completes a request every 0.5 s for 4 s (twice the
     deadline) keeps its connection: the deadline counts from its last response;
  3. 200 more drip clients (five times the cap): normal requests still succeed, and the
     collector's open descriptors stay within twice the cap instead of growing with the flood.
Every loop here is bounded in count and time.
"""
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
BIN = os.path.join(BUILD, "collector", "vantage-collector")
CAP, DEADLINE = 40, 2


def fail(msg):
    print("test_collector_conns: FAIL: " + msg)
    sys.exit(1)


def drip_open(port, n):
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.setblocking(False)
        out.append(s)
    return out


def alive(s):
    """False once the collector closed or reset the connection."""
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def drip(socks, byte=b"G"):
    for s in socks:
        try:
            s.send(byte)
        except OSError:
            pass


def health(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/api/v1/health")
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None
    finally:
        c.close()


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def main():
    if not os.path.exists(BIN):
        print("skip: %s not built" % BIN)
        return 77
    tmp = tempfile.mkdtemp()
    log = open(os.path.join(tmp, "c.log"), "wb+")
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--db",
                          "sqlite:" + os.path.join(tmp, "c.db"), "--rate", "0",
                          "--max-connections", str(CAP), "--request-timeout", str(DEADLINE)],
                         stdout=log, stderr=log)
    try:
        port = None
        for _ in range(200):
            log.seek(0)
            t = log.read().decode(errors="replace")
            if "listening on port " in t:
                port = int(t.split("listening on port ")[1].split()[0])
                break
            if p.poll() is not None:
                break
            time.sleep(0.05)
        if not port:
            fail("collector did not start: " + t)
        base_fds = fds(p.pid)

        # 1 and 2: drip clients are shut down by the deadline; a busy keep-alive client is not.
        drips = drip_open(port, 30)
        keep = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        t0, closed_at, served = time.time(), {}, 0
        while time.time() - t0 < DEADLINE * 2 + 2 and (len(closed_at) < len(drips) or
                                                       time.time() - t0 < DEADLINE * 2):
            drip(drips)
            keep.request("GET", "/api/v1/health")
            r = keep.getresponse()
            r.read()
            if r.status != 200:
                fail("keep-alive request answered %d" % r.status)
            served += 1
            for i, s in enumerate(drips):
                if i not in closed_at and not alive(s):
                    closed_at[i] = time.time() - t0
            time.sleep(0.3)
        if len(closed_at) != len(drips):
            fail("%d of %d drip clients still open after %.1f s (deadline %d s)"
                 % (len(drips) - len(closed_at), len(drips), time.time() - t0, DEADLINE))
        late = max(closed_at.values())
        if late > DEADLINE + 1.5:
            fail("a drip client was closed only after %.1f s (deadline %d s)" % (late, DEADLINE))
        keep.request("GET", "/api/v1/health")
        r = keep.getresponse()
        r.read()
        if r.status != 200:
            fail("the keep-alive connection did not survive (%d)" % r.status)
        keep.close()
        print("drip clients closed after %.1f-%.1f s; a keep-alive client made %d requests "
              "over %.1f s on one connection" % (min(closed_at.values()), late, served + 1,
                                                 time.time() - t0))
        for s in drips:
            s.close()

        # 3: a flood of five times the cap: normal requests still answered, descriptors bounded.
        flood, ok, peak = [], 0, 0
        for _ in range(20):
            flood += drip_open(port, 10)
            drip(flood)
            st = health(port)
            ok += st == 200
            peak = max(peak, fds(p.pid))
        if ok != 20:
            fail("only %d of 20 health requests answered during the flood" % ok)
        # Shut-down connections hold their descriptor until the next sweep (100 ms): allow one
        # cap's worth of those on top.
        if peak > base_fds + 2 * CAP:
            fail("collector descriptors peaked at %d (base %d, cap %d)" % (peak, base_fds, CAP))
        open_now = sum(alive(s) for s in flood)
        if open_now > CAP:
            fail("%d flood connections open, cap %d" % (open_now, CAP))
        for s in flood:
            s.close()
        print("flood of %d drip clients: 20 of 20 health requests answered, %d still open "
              "(cap %d), collector descriptors %d -> peak %d" % (len(flood), open_now, CAP,
                                                                base_fds, peak))
        if health(port) != 200:
            fail("collector not serving after the flood")
        print("test_collector_conns: ok")
        return 0
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
