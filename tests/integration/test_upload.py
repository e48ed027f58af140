#!/usr/bin/env python3
"""`vantage-probe upload` against a fake collector on 127.0.0.1 (tests/servers/fake_collector.py):
accepting, failing with 503 first, cutting the connection mid-answer, acknowledging only some uids,
answering duplicate, rejecting, refusing whole batches, refusing the token, and over HTTPS with a
private CA. After each scenario the spool's contents are asserted: nothing acknowledged stays,
nothing unacknowledged goes, and the collector stored every measurement exactly once."""
import calendar
import gzip
import json
import os
import secrets
import shutil
import subprocess
import signal
import sys
import socket
import tempfile
import threading
import time

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.environ.get("VT_PROBE", os.path.join(BUILD, "probe", "vantage-probe"))
sys.path.insert(0, os.path.join(SRC, "tests", "servers"))
from fake_collector import FakeCollector  # noqa: E402

if not os.access(PROBE, os.X_OK):
    print("skip: %s not built" % PROBE)
    sys.exit(77)

FAST = ["--upload-backoff-ms", "20", "--upload-attempts", "5", "--upload-max-time", "20"]
failures = []
tmp = tempfile.mkdtemp(prefix="vt-upload-")


def clean_env():
    """No proxies, no token, and no probe.conf of this machine or user."""
    e = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    e.pop("VANTAGE_UPLOAD_TOKEN", None)
    e["HOME"] = tmp
    e["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
    e["XDG_STATE_HOME"] = os.path.join(tmp, "default-state")
    e["VANTAGE_SYSTEM_CONFIG"] = os.path.join(tmp, "no-such-probe.conf")
    return e


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def new_state(name):
    d = os.path.join(tmp, name)
    os.makedirs(os.path.join(d, "spool", "tmp"))
    os.makedirs(os.path.join(d, "spool", "rejected"))
    return d


def measurement(uid, **extra):
    # the shape of lib/measurement.c's vt_measurement_new
    m = {"data_format_version": "0.2.0", "input": "https://example.org/",
         "measurement_start_time": "2026-11-28 12:00:00", "test_start_time": "2026-11-28 12:00:00",
         "test_runtime": 0.5, "probe_asn": "AS0", "probe_cc": "ZZ", "probe_ip": "127.0.0.1",
         "probe_network_name": None, "resolver_asn": "AS0", "resolver_ip": "127.0.0.1",
         "report_id": "20261128T120000Z_vantage_ZZ_0_n1_abcdef", "software_name": "vantage-probe",
         "software_version": "0.1.0", "test_name": "web_connectivity", "test_version": "0.1.0",
         "measurement_uid": uid, "annotations": {}, "test_helpers": {}, "test_keys": {"x": 1}}
    m.update(extra)
    return m


def fill(state, n, **extra):
    uids = []
    for _ in range(n):
        uid = secrets.token_hex(16)
        with open(os.path.join(state, "spool", uid + ".json"), "w") as f:
            json.dump(measurement(uid, **extra), f)
        uids.append(uid)
    return uids


def spooled(state, sub=""):
    d = os.path.join(state, "spool", sub)
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json"))


def upload(state, url, *args, env=None):
    e = clean_env()
    if env:
        e.update(env)
    p = subprocess.run([PROBE, "upload", "--state-dir", state, "--collector", url] + FAST +
                       list(args), capture_output=True, text=True, timeout=60, env=e)
    return p.returncode, p.stderr


def last_upload(state):
    with open(os.path.join(state, "last-upload.json")) as f:
        return json.load(f)


def uploaded_uids(fc):
    return [m["measurement_uid"] for (path, h, ms) in fc.requests if path.endswith("measurements")
            for m in ms]


def once_each(fc, uids, what):
    check(sorted(fc.stored) == sorted(uids), what + ": collector stored exactly these uids")
    check(all(c == 1 for c in fc.store_counts.values()), what + ": each stored once")


def scenario(name, fn):
    fc = FakeCollector()
    t0 = time.time()
    try:
        fn(fc, new_state(name))
        print("%-20s %.2fs" % (name, time.time() - t0))
    except Exception as ex:  # a crash in a scenario is a failure, the others still run
        failures.append("%s: %r" % (name, ex))
        print("FAIL:", name, repr(ex))
    finally:
        fc.close()


def accepts_everything(fc, st):
    uids = fill(st, 250, probe_ip="10.9.8.7")  # a leaked address in a damaged file
    rc, err = upload(st, fc.url(), "--upload-token", "tok-123")
    check(rc == 0, "accept: exit 0 (got %d: %s)" % (rc, err))
    check(spooled(st) == [], "accept: spool empty")
    once_each(fc, uids, "accept")
    check(len(fc.requests) == 3, "accept: 250 in batches of 100 = 3 requests (%d)" %
          len(fc.requests))
    h = fc.requests[0][1]
    check(h.get("content-encoding") == "gzip", "accept: gzip body")
    check(h.get("authorization") == "Bearer tok-123", "accept: bearer token sent")
    check(all(m["probe_ip"] == "127.0.0.1" for m in fc.stored.values()),
          "accept: the probe never sends an address of its own")
    check("tok-123" not in err, "accept: token not logged")
    lu = last_upload(st)
    check(lu["ok"] is True and lu["accepted"] == 250 and lu["left"] == 0 and lu["error"] is None,
          "accept: last-upload.json says 250 accepted, none left: %r" % lu)
    # Nothing left: a second upload sends nothing.
    rc, err = upload(st, fc.url())
    check(rc == 0 and len(fc.requests) == 3, "accept: empty spool sends nothing")


def token_from_environment(fc, st):
    fill(st, 3)
    rc, _ = upload(st, fc.url(), env={"VANTAGE_UPLOAD_TOKEN": "env-tok"})
    check(rc == 0 and fc.requests[0][1].get("authorization") == "Bearer env-tok",
          "token: VANTAGE_UPLOAD_TOKEN used")


def unavailable_first(fc, st):
    uids = fill(st, 30)

    def b(h, ms, k):
        if k <= 2:
            return fc.send_json(h, 503, {"error": "store busy"}, [("Retry-After", "0")])
        fc.accept_all(h, ms, k)
    fc.behaviour = b
    t0 = time.time()
    rc, err = upload(st, fc.url())
    check(rc == 0, "503: exit 0 after retries (got %d: %s)" % (rc, err))
    check(spooled(st) == [], "503: spool empty")
    once_each(fc, uids, "503")
    check(len(fc.requests) == 3, "503: 2 failures + 1 success (%d)" % len(fc.requests))
    check("retrying" in err, "503: retries are reported")
    check(time.time() - t0 < 10, "503: small backoff honoured")
    check(last_upload(st)["requests"] == 3, "503: last-upload counts requests")


def unavailable_always(fc, st):
    uids = fill(st, 12)
    fc.behaviour = lambda h, ms, k: fc.send_json(h, 503, {"error": "down"})
    rc, err = upload(st, fc.url(), "--upload-attempts", "3")
    check(rc == 4, "503 forever: exit 4 upload pending (got %d)" % rc)
    check(spooled(st) == sorted(uids), "503 forever: everything stays spooled")
    check(len(fc.requests) == 3, "503 forever: bounded attempts (%d)" % len(fc.requests))
    lu = last_upload(st)
    check(lu["ok"] is False and lu["left"] == 12 and "503" in (lu["error"] or ""),
          "503 forever: last-upload.json has the error: %r" % lu)


def cut_mid_answer(fc, st):
    uids = fill(st, 40)

    def b(h, ms, k):
        if k == 1:
            fc.store(ms)  # committed, but the answer never arrives whole
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 5000\r\n\r\n{\"results\":[{\"uid\"")
            h.wfile.flush()
            h.close_connection = True
            return
        fc.accept_all(h, ms, k)
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 0, "cut: exit 0 after retry (got %d: %s)" % (rc, err))
    check(spooled(st) == [], "cut: spool empty")
    once_each(fc, uids, "cut")
    check(len(fc.requests) == 2, "cut: one retry (%d)" % len(fc.requests))


def cut_before_answer(fc, st):
    uids = fill(st, 5)

    def b(h, ms, k):
        if k == 1:
            h.close_connection = True  # drop without a byte
            return
        fc.accept_all(h, ms, k)
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 0 and spooled(st) == [], "cut before answer: retried and emptied (%d)" % rc)
    once_each(fc, uids, "cut before answer")


def acks_some(fc, st):
    uids = fill(st, 20)
    keep = set(uids[::2])

    def b(h, ms, k):
        fc.send_json(h, 200, {"results": fc.store(ms, only=set(uids) - keep)})
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 4, "partial: exit 4 (got %d)" % rc)
    check(spooled(st) == sorted(keep), "partial: exactly the unacknowledged stay spooled")
    check(last_upload(st)["left"] == 10, "partial: last-upload left 10")
    fc.behaviour = fc.accept_all
    rc, err = upload(st, fc.url())
    check(rc == 0 and spooled(st) == [], "partial: next upload sends the rest")
    once_each(fc, uids, "partial")
    check(sorted(uploaded_uids(fc)[20:]) == sorted(keep), "partial: only the rest re-sent")


def duplicates(fc, st):
    uids = fill(st, 10)
    for u in uids:
        fc.stored[u] = {}
        fc.store_counts[u] = 1
    rc, err = upload(st, fc.url())
    check(rc == 0 and spooled(st) == [], "duplicate: acknowledged and deleted (%d %s)" % (rc, err))
    once_each(fc, uids, "duplicate")
    check(last_upload(st)["duplicate"] == 10, "duplicate: counted as duplicate")


def garbage_answer(fc, st):
    uids = fill(st, 4)

    def b(h, ms, k):
        if k == 1:
            data = b"<html>proxy error</html>"
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        fc.accept_all(h, ms, k)
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 0 and spooled(st) == [] and len(fc.requests) == 2,
          "garbage 200: retried, nothing deleted on it (%d)" % rc)
    once_each(fc, uids, "garbage")


def rejects_some(fc, st):
    uids = fill(st, 6)
    bad = uids[2]

    def b(h, ms, k):
        res = fc.store([m for m in ms if m["measurement_uid"] != bad])
        res.append({"uid": bad, "status": "rejected",
                    "reason": "probe_cc must match ^[A-Z]{2}$\x1b]0;pwned\x07\x1b[2J"})
        fc.send_json(h, 200, {"results": res})
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 0, "reject: exit 0 (got %d: %s)" % (rc, err))
    check(spooled(st) == [], "reject: spool empty")
    check(spooled(st, "rejected") == [bad], "reject: moved to spool/rejected/")
    with open(os.path.join(st, "spool", "rejected", bad + ".reason")) as f:
        check("probe_cc must match" in f.read(), "reject: reason kept")
    check(bad in err, "reject: reported")
    check("\x1b" not in err and "\x07" not in err and "pwned" in err,
          "reject: the collector's control characters are not printed")
    rc, err = upload(st, fc.url())
    check(len(fc.requests) == 1, "reject: never retried")


def rejected_is_capped(fc, st):
    # A collector that refuses everything (a version the probe does not fit, for months): each
    # refusal was kept in spool/rejected/ for good, and nothing bounded it. It keeps the first
    # 1,000 (probe/spool.h) for a person to read, deletes the ones after, and says so.
    uids = fill(st, 1003)
    fc.behaviour = lambda h, ms, k: fc.send_json(h, 200, {"results": [
        {"uid": m["measurement_uid"], "status": "rejected", "reason": "not wanted"} for m in ms]})
    rc, err = upload(st, fc.url(), "--upload-batch", "1000")
    rej = spooled(st, "rejected")
    check(spooled(st) == [] and len(rej) == 1000 and set(rej) <= set(uids),
          "rejected cap: 1000 kept, none left to retry (%d kept, %d spooled)"
          % (len(rej), len(spooled(st))))
    check(err.count("deleted, not kept") == 3 and "rejected is full" in err,
          "rejected cap: the deleted ones are named (%s)" % err[-300:])
    check(rc == 0 and last_upload(st)["rejected"] == 1003, "rejected cap: all counted as rejected")
    n = len(fc.requests)
    rc, err = upload(st, fc.url())
    check(len(fc.requests) == n, "rejected cap: nothing retried")


def rejected_by_line_number(fc, st):
    uids = fill(st, 3)
    odd = "short-uid"  # a valid spool name the collector cannot read as a uid
    with open(os.path.join(st, "spool", odd + ".json"), "w") as f:
        json.dump(measurement(odd), f)

    def b(h, ms, k):
        res = []
        for i, m in enumerate(ms):
            if len(m["measurement_uid"]) != 32:
                res.append({"line": i + 1, "uid": None, "status": "rejected",
                            "reason": "measurement_uid must be 32 lowercase hex characters"})
            else:
                r = fc.store([m])[0]
                r["line"] = i + 1
                res.append(r)
        fc.send_json(h, 200, {"results": res})
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 0 and spooled(st) == [] and spooled(st, "rejected") == [odd],
          "reject by line: an unreadable uid is set aside, not retried forever (%d %s)" % (rc, err))
    once_each(fc, uids, "reject by line")


def whole_batch_refused(fc, st):
    uids = fill(st, 16)
    poison = uids[5]

    def b(h, ms, k):
        if any(m["measurement_uid"] == poison for m in ms):
            return fc.send_json(h, 400, {"error": "batch refused"})
        fc.accept_all(h, ms, k)
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 0, "bisect: exit 0 (got %d: %s)" % (rc, err))
    check(spooled(st) == [] and spooled(st, "rejected") == [poison],
          "bisect: the one refused measurement set aside, the others stored")
    once_each(fc, [u for u in uids if u != poison], "bisect")
    check(len(fc.requests) <= 2 * 16, "bisect: bounded requests (%d)" % len(fc.requests))


def proxy_refuses_everything(fc, st):
    # A proxy in front of the collector answers every upload with its own HTML 400 (a header
    # too large, say): nothing is set aside as the measurement's fault; all of it waits.
    uids = fill(st, 5)

    def b(h, ms, k):
        body = b"<html><body><h1>400 Bad Request</h1></body></html>"
        h.send_response(400)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    fc.behaviour = b
    rc, err = upload(st, fc.url())
    check(rc == 4 and spooled(st) == sorted(uids) and spooled(st, "rejected") == [],
          "proxy 400: nothing rejected, all still spooled, exit 4 (%d %s)" % (rc, err[-300:]))
    check("not the collector's answer" in err, "proxy 400: the message says whose answer it was")


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def concurrent_uploads(fc, st):
    # A manual `upload` while another one (a run's) writes last-upload.json: each writes its
    # own temporary file, so neither fails to record its result.
    fill(st, 1)
    port = fc.port
    errors = []

    def loop():
        for _ in range(60):
            rc, err = upload(st, "http://127.0.0.1:%d" % closed_port(), "--upload-attempts", "1")
            errors.extend(l for l in err.splitlines() if "cannot write" in l)
    ts = [threading.Thread(target=loop) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "concurrent uploads: last-upload.json written every time (%s)" % errors[:2])
    check(json.load(open(os.path.join(st, "last-upload.json"))) is not None and port,
          "concurrent uploads: last-upload.json is whole JSON")
    check(not [n for n in os.listdir(st) if n.startswith("last-upload.json.")],
          "concurrent uploads: no temporary file left")


def token_refused(fc, st):
    uids = fill(st, 5)
    fc.behaviour = lambda h, ms, k: fc.send_json(h, 401, {"error": "unknown upload token"})
    rc, err = upload(st, fc.url(), "--upload-token", "wrong")
    check(rc == 4, "401: exit 4 (got %d)" % rc)
    check(len(fc.requests) == 1, "401: not retried")
    check(spooled(st) == sorted(uids), "401: spool intact")
    check("unknown upload token" in err, "401: collector's words shown")


def damaged_file_set_aside(fc, st):
    uids = fill(st, 3)
    with open(os.path.join(st, "spool", "0" * 32 + ".json"), "w") as f:
        f.write('{"measurement_uid": "00000')  # partial
    with open(os.path.join(st, "spool", "tmp", "1" * 32 + ".json.tmp"), "w") as f:
        f.write('{"measur')  # a crashed write
    rc, err = upload(st, fc.url())
    check(rc == 1, "damaged: exit 1 (a measurement cannot be sent) got %d" % rc)
    once_each(fc, uids, "damaged")
    check(spooled(st) == [], "damaged: out of the spool")
    dmg = os.path.join(st, "spool", "damaged")
    check(sorted(os.listdir(dmg)) == ["0" * 32 + ".json", "0" * 32 + ".json.reason"],
          "damaged: set aside with its reason (%r)" % os.listdir(dmg))
    with open(os.path.join(dmg, "0" * 32 + ".json")) as f:
        check(f.read() == '{"measurement_uid": "00000', "damaged: kept as it was")
    check("0" * 32 in err and "spool/damaged" in err, "damaged: reported and where")
    check(os.listdir(os.path.join(st, "spool", "tmp")) == [], "damaged: stale tmp cleaned")
    # The next run is not held back by it: nothing left to send, nothing to report.
    rc, err = upload(st, fc.url())
    check(rc == 0, "damaged: the next upload exits 0 (got %d: %s)" % (rc, err.strip()[-200:]))
    check("0" * 32 not in err, "damaged: not reported again")


def files_of_another_user(fc, st):
    # `sudo vantage-probe run` once in a volunteer's state directory leaves root's files there;
    # the volunteer's cron run (here uid 65534) cannot read them. They stay (nothing lost), the
    # others go, and the message says whose they are and what to do, not just "Permission denied".
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print("skip: files of another user need root and setpriv")
        return
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run(as_nobody + ["test", "-x", PROBE]).returncode != 0:
        print("skip: %s is not executable by uid 65534" % PROBE)
        return
    top = tempfile.mkdtemp(prefix="vt-owner-")
    os.chmod(top, 0o755)
    try:
        state = os.path.join(top, "state")
        os.makedirs(os.path.join(state, "spool"))
        mine = fill(state, 3)
        roots = fill(state, 1)[0]  # written by root, mode 0600
        os.chmod(os.path.join(state, "spool", roots + ".json"), 0o600)
        for d, _, files in os.walk(state):
            os.chown(d, 65534, 65534)
            for n in files:
                if roots not in n:
                    os.chown(os.path.join(d, n), 65534, 65534)
        e = clean_env()
        e.update(HOME=top, XDG_CONFIG_HOME=os.path.join(top, "config"),
                 XDG_STATE_HOME=os.path.join(top, "default-state"),
                 VANTAGE_SYSTEM_CONFIG=os.path.join(top, "no-such-probe.conf"))
        p = subprocess.run(as_nobody + [PROBE, "upload", "--state-dir", state, "--collector",
                                        fc.url()] + FAST, capture_output=True, text=True,
                           timeout=60, env=e)
        once_each(fc, mine, "another user's file")
        check(spooled(state) == [roots], "another user's file: left in place, nothing lost")
        check(p.returncode == 1 and "belongs to uid 0" in p.stderr and "chown" in p.stderr,
              "another user's file: named with its owner (%d %s)" % (p.returncode, p.stderr))
        # A state directory root made: the run says whose it is before measuring anything.
        rootstate = os.path.join(top, "rootstate")
        os.makedirs(rootstate)
        os.chmod(rootstate, 0o755)
        targets = os.path.join(top, "targets.json")
        shutil.copy(targets_file(st, fc.port, 1), targets)
        os.chmod(targets, 0o644)
        p = subprocess.run(as_nobody + [PROBE, "run", "--quiet", "--accept-risks", "--targets",
                                        targets, "--state-dir", rootstate,
                                        "--no-upload", "--output", "/dev/null"],
                           capture_output=True, text=True, timeout=60, env=e)
        check(p.returncode == 1 and "run.lock" in p.stderr and "belongs to uid 0" in p.stderr,
              "another user's state directory: named with its owner (%d %s)"
              % (p.returncode, p.stderr))
        # A run with sudo and this user's HOME made ~/.local/state as well (root's, 0700): the
        # directory to give back is named, not just "cannot create .../state" (chown of the
        # state directory alone would not do).
        home = os.path.join(top, "home")
        local = os.path.join(home, ".local")
        os.makedirs(os.path.join(local, "state", "vantage"))
        os.chmod(local, 0o700)
        os.chown(home, 65534, 65534)
        p = subprocess.run(as_nobody + [PROBE, "run", "--quiet", "--accept-risks", "--targets",
                                        targets, "--state-dir",
                                        os.path.join(local, "state", "vantage"), "--no-upload",
                                        "--output", "/dev/null"],
                           capture_output=True, text=True, timeout=60, env=e)
        check(p.returncode == 1 and local + " belongs to uid 0" in p.stderr
              and "chown" in p.stderr,
              "a directory above the state directory made by root: named with its owner (%d %s)"
              % (p.returncode, p.stderr))
        p = subprocess.run(as_nobody + [PROBE, "upload", "--state-dir",
                                        os.path.join(local, "state", "vantage"), "--collector",
                                        fc.url()] + FAST, capture_output=True, text=True,
                           timeout=60, env=e)
        check(p.returncode == 1 and local + " belongs to uid 0" in p.stderr,
              "upload: a directory above the state directory made by root: named (%d %s)"
              % (p.returncode, p.stderr))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def collector_down(fc, st):
    uids = fill(st, 3)
    port = fc.port
    fc.close()
    rc, err = upload(st, "http://127.0.0.1:%d" % port, "--upload-attempts", "2")
    check(rc == 4 and spooled(st) == sorted(uids), "down: exit 4, spool intact (%d)" % rc)
    fc.server = type("x", (), {"shutdown": lambda s: None, "server_close": lambda s: None})()


def plain_http_only_on_loopback(fc, st):
    fill(st, 1)
    # A usage error (exit 2), before anything is sent; the spool is untouched.
    rc, err = upload(st, "http://collector.invalid")
    check(rc == 2 and "--collector URL must be https" in err and len(spooled(st)) == 1,
          "http: refused for a non-loopback collector (%d %s)" % (rc, err[-200:]))
    rc, err = upload(st, "http://127.0.0.1.collector.invalid")
    check(rc == 2 and "https" in err and len(spooled(st)) == 1,
          "http: refused for a name that only starts like a loopback address")
    # The control's answer decides blocked or down, and a DoH resolver's answers are what the
    # system resolver's are judged by: a plain http URL for either is refused up front (a usage
    # error), before anything is measured. The one target is an open loopback port (the fake
    # collector's), an address with no name to resolve: a probe that took the URL would measure
    # it successfully and ask neither, so nothing could leave this machine.
    tfile = targets_file(st, fc.port, 1)
    for opt, path in (("--control", "/api/v1/control"), ("--doh", "/dns-query")):
        for host in ("192.0.2.1", "127.example.invalid"):
            url = "http://" + host + path
            p = subprocess.run([PROBE, "run", "--state-dir", st, "--no-upload", "--accept-risks",
                                "--targets", tfile, "--timeout", "1", opt, url],
                               capture_output=True, text=True, timeout=60, env=clean_env())
            check(p.returncode == 2 and opt + " URL must be https://" in p.stderr,
                  "run: plain http %s %s refused (%d %s)"
                  % (opt, url, p.returncode, p.stderr[-200:]))


def targets_file(st, port, n):
    path = os.path.join(st, "..", os.path.basename(st) + "-targets.json")
    with open(path, "w") as f:
        json.dump({"version": 1, "targets": [
            {"id": "loop-%d" % i, "name": "loopback %d" % i, "platform": "test",
             "category": "test", "kind": "endpoint", "endpoints": ["127.0.0.1:%d" % port]}
            for i in range(n)]}, f)
    return path


def run(st, url, targets, *args):
    e = clean_env()
    out = os.path.join(st, "..", os.path.basename(st) + "-out.jsonl")
    cmd = [PROBE, "run", "--quiet", "--accept-risks", "--targets", targets, "--state-dir", st, "--output", out,
           "--timeout", "5"] + (["--collector", url] if url else []) + FAST + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=e)
    lines = [json.loads(l) for l in open(out)] if os.path.exists(out) else []
    return p.returncode, p.stderr, lines


def run_checks_in_spools_and_uploads(fc, st):
    targets = targets_file(st, fc.port, 4)
    rc, err, out = run(st, fc.url(), targets)
    check(rc == 0, "run: exit 0 (got %d: %s)" % (rc, err))
    check(len(out) == 4, "run: 4 measurements in --output (%d)" % len(out))
    check(fc.requests and fc.requests[0][0] == "/api/v1/check-in", "run: checks in first")
    once_each(fc, [m["measurement_uid"] for m in out], "run")
    check(all(m["probe_cc"] == "DE" and m["probe_asn"] == "AS3320" and
              m["probe_network_name"] == "Deutsche Telekom AG" for m in fc.stored.values()),
          "run: check-in's country and network are in every measurement")
    check(all("_DE_3320_" in m["report_id"] for m in out), "run: report id from the check-in")
    check(spooled(st) == [], "run: spool empty after the upload")
    check(last_upload(st)["accepted"] == 4, "run: last-upload.json written")
    check(err.strip() == "", "run --quiet: nothing printed when all was acknowledged (%r)" % err)


def start_time(m):
    return calendar.timegm(time.strptime(m["measurement_start_time"], "%Y-%m-%d %H:%M:%S"))


def dates_like_a_collector(fc):
    """A behaviour that refuses what vantage-collector refuses: a start time before 2012 or more
    than a day after the collector's clock (collector/ingest.c)."""
    def b(h, ms, k):
        now = time.time() + fc.clock_offset
        ok = [m for m in ms if 1325376000 <= start_time(m) <= now + 86400]
        res = fc.store(ok) + [{"uid": m["measurement_uid"], "status": "rejected",
                               "reason": "measurement_start_time out of bounds"}
                              for m in ms if m not in ok]
        fc.send_json(h, 200, {"results": res})
    return b


def run_with_wrong_clock(fc, st):
    # A board without a battery-backed clock, run before NTP: the probe's clock is three years
    # behind the collector's (here: the collector's Date is three years ahead of this machine).
    # The measurements are dated by the collector's clock, say so, and are all accepted; before,
    # they were stored three years in the past (or, with a clock ahead, refused for good).
    years = 3 * 365 * 86400
    fc.clock_offset = years
    fc.behaviour = dates_like_a_collector(fc)
    targets = targets_file(st, fc.port, 3)
    rc, err, out = run(st, fc.url(), targets)
    check(rc == 0, "clock: exit 0 (got %d: %s)" % (rc, err))
    check(len(out) == 3 and all(m.get("x_clock_offset") and abs(m["x_clock_offset"] - years) < 5
                                for m in out),
          "clock: x_clock_offset says how far off the clock was (%r)"
          % [m.get("x_clock_offset") for m in out])
    check(all(abs(start_time(m) - (time.time() + years)) < 120 for m in out),
          "clock: dated by the collector's clock (%r)" % [m["measurement_start_time"] for m in out])
    check(all(m["report_id"].startswith(time.strftime("%Y", time.gmtime(time.time() + years)))
              for m in out), "clock: the report id too")
    check("set the clock" in err, "clock: the volunteer is told, even with --quiet (%r)" % err)
    # status dates the run and the upload like the measurements: by the system clock they were
    # "3 years ago" (or days) once NTP had set it.
    with open(os.path.join(st, "last-run.json")) as f:
        lr = json.load(f)
    check(abs(lr["time_epoch"] - (time.time() + years)) < 120 and lr["duration_s"] < 60,
          "clock: last-run.json dated by the collector's clock (%r)" % lr)
    check(abs(last_upload(st)["time_epoch"] - (time.time() + years)) < 120,
          "clock: last-upload.json dated by the collector's clock (%r)" % last_upload(st))
    once_each(fc, [m["measurement_uid"] for m in out], "clock")
    check(spooled(st) == [] and spooled(st, "rejected") == [], "clock: nothing refused")
    # A clock ahead of the collector's: corrected the same way, never refused.
    st2 = new_state("clock-ahead")
    fc.clock_offset = -2 * 86400
    rc, err, out = run(st2, fc.url(), targets)
    check(rc == 0 and len(out) == 3 and spooled(st2, "rejected") == [] and
          all(abs(m.get("x_clock_offset", 0) + 2 * 86400) < 5 for m in out),
          "clock ahead: corrected, nothing refused (%d %s)" % (rc, err))
    # A right clock: no correction, no word about it.
    st3 = new_state("clock-right")
    fc.clock_offset = 0
    rc, err, out = run(st3, fc.url(), targets)
    check(rc == 0 and len(out) == 3 and all("x_clock_offset" not in m for m in out) and
          "clock" not in err, "clock right: no x_clock_offset (%d %s)" % (rc, err))


def run_with_clock_in_1970(fc, st):
    # The same board without a collector to ask: a clock before the probe's release cannot date
    # anything, so nothing is measured (exit 1, said plainly) rather than spooled and refused by
    # the collector for good. With the collector, the run is dated by its clock.
    if not shutil.which("faketime"):
        print("skip: faketime not installed (apt-get install faketime)")
        return
    targets = targets_file(st, fc.port, 2)
    e = clean_env()
    # A sanitized build wants its runtime first among the preloaded libraries: faketime's
    # (it only replaces the clock functions) may come before it.
    asan = os.environ.get("ASAN_OPTIONS", "")
    e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    out = os.path.join(st, "..", "clock-1970-out.jsonl")
    base = ["faketime", "-f", "@1970-01-01 00:05:00", PROBE, "run", "--quiet", "--accept-risks",
            "--targets", targets, "--state-dir", st, "--output", out, "--timeout", "5"] + FAST
    p = subprocess.run(base + ["--no-upload"], capture_output=True, text=True, timeout=120, env=e)
    check(p.returncode == 1 and "1970-01-01" in p.stderr and "not measuring" in p.stderr,
          "1970, no collector: exit 1, the clock named (%d %s)" % (p.returncode, p.stderr))
    check(spooled(st) == [] and fc.requests == [], "1970, no collector: nothing measured")
    check("give a --collector" in p.stderr, "1970, no collector: a collector is suggested")
    # A collector is set, but --no-upload keeps the run from asking it: that is what to change,
    # not "give a --collector".
    p = subprocess.run(base + ["--no-upload", "--collector", fc.url()], capture_output=True,
                       text=True, timeout=120, env=e)
    check(p.returncode == 1 and "give a --collector" not in p.stderr
          and "without --no-upload" in p.stderr,
          "1970, a collector and --no-upload: the hint is to let it check in (%r)" % p.stderr)
    fc.behaviour = dates_like_a_collector(fc)
    p = subprocess.run(base + ["--collector", fc.url()], capture_output=True, text=True,
                       timeout=120, env=e)
    ms = [json.loads(l) for l in open(out)]
    check(p.returncode == 0 and len(ms) == 2 and spooled(st, "rejected") == [] and
          all(abs(start_time(m) - time.time()) < 120 for m in ms),
          "1970, with the collector: dated by its clock, accepted (%d %s)"
          % (p.returncode, p.stderr))
    once_each(fc, [m["measurement_uid"] for m in ms], "1970")


def run_with_absurd_collector_date(fc, st):
    # A Date no collector's clock can say (curl_getdate takes any year): the year 99999 overflowed
    # the probe's time strings (ASan: stack-buffer-overflow), and a merely wrong one (a proxy's
    # clock in 2100) would date every measurement where the collector refuses them all. The probe
    # ignores it: dated by the system clock, no x_clock_offset, all accepted.
    fc.behaviour = dates_like_a_collector(fc)
    targets = targets_file(st, fc.port, 3)
    uids = []
    for i, date in enumerate(["Mon, 01 Jan 99999 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"]):
        sti = new_state("clock-absurd-%d" % i) if i else st
        fc.date = date
        rc, err, out = run(sti, fc.url(), targets)
        what = "Date %r" % date
        check(rc == 0 and len(out) == 3, "%s: exit 0, 3 measurements (%d %s)" % (what, rc, err))
        check(all("x_clock_offset" not in m and abs(start_time(m) - time.time()) < 120
                  for m in out),
              "%s: dated by the system clock (%r)" % (what, [(m["measurement_start_time"],
                                                             m.get("x_clock_offset")) for m in out]))
        check(all(m["report_id"].startswith(time.strftime("%Y", time.gmtime())) for m in out),
              "%s: the report id too" % what)
        check(spooled(sti) == [] and spooled(sti, "rejected") == [], "%s: nothing refused" % what)
        check("not a plausible time" in err, "%s: said once (%r)" % (what, err))
        uids += [m["measurement_uid"] for m in out]
        once_each(fc, uids, what)
    fc.date = None


def fill_spool(st, n=50000):
    m = measurement("0" * 32)
    uids = []
    for _ in range(n):
        uid = secrets.token_hex(16)
        m["measurement_uid"] = uid
        with open(os.path.join(st, "spool", uid + ".json"), "w") as f:
            json.dump(m, f)
        uids.append(uid)
    return uids


def run_with_full_spool(fc, st):
    # Weeks without the collector filled the spool to its cap (50,000 measurements, probe/spool.h).
    # The collector answers again: the run empties the spool before measuring, so that its own
    # measurements are not lost to the cap (before, they were: exit 1, then the upload emptied it).
    uids = fill_spool(st)
    targets = targets_file(st, fc.port, 2)
    rc, err, out = run(st, fc.url(), targets, "--upload-batch", "1000")
    check(rc == 0, "full spool: exit 0, nothing lost (got %d: %s)" % (rc, err[-400:]))
    check("uploading before measuring" in err, "full spool: says what it does (%s)" % err[-300:])
    check(len(out) == 2 and spooled(st) == [], "full spool: measured, everything sent")
    once_each(fc, uids + [x["measurement_uid"] for x in out], "full spool")


def run_with_full_spool_collector_down(fc, st):
    # The spool at its cap and the collector still away (or --no-upload): what the run measures
    # cannot be stored. With its output discarded too (the cron line's --output /dev/null) the
    # run measures nothing: no connection to the targets, exit 1, the spool as it was. With an
    # output file it measures into that file, and exits 1 all the same (nothing spooled).
    uids = fill_spool(st)
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(16)
    lsn.settimeout(0.2)

    def connects():
        n = 0
        for _ in range(5):  # bounded: connections made by the run wait in the backlog
            try:
                lsn.accept()[0].close()
                n += 1
            except socket.timeout:
                break
        return n
    try:
        targets = targets_file(st, lsn.getsockname()[1], 2)
        for how, args in (("--no-upload", ["--no-upload"]),
                          ("collector down", ["--upload-attempts", "1"])):
            url = fc.url() if how == "--no-upload" else "http://127.0.0.1:%d" % closed_port()
            rc, err, out = run(st, url, targets, *args, "--output", "/dev/null")
            n = connects()
            check(rc == 1 and "not measuring: the spool is full" in err,
                  "full spool, %s: exit 1, says it does not measure (%d %s)" % (how, rc, err[-300:]))
            check(n == 0 and spooled(st) == sorted(uids),
                  "full spool, %s: nothing measured, the spool untouched (%d connects)" % (how, n))
        rc, err, out = run(st, None, targets, "--no-upload")
        n = connects()
        check(rc == 1 and len(out) == 2 and n >= 2 and "not measuring" not in err and
              spooled(st) == sorted(uids),
              "full spool, --output FILE: measured into the file, exit 1 (%d, %d out, %d connects)"
              % (rc, len(out), n))
    finally:
        lsn.close()


def run_without_upload_keeps_the_spool(fc, st):
    targets = targets_file(st, fc.port, 3)
    rc, err, out = run(st, fc.url(), targets, "--no-upload")
    check(rc == 0 and fc.requests == [], "run --no-upload: exit 0, no request (%d %s)" % (rc, err))
    check(spooled(st) == sorted(m["measurement_uid"] for m in out) and len(out) == 3,
          "run --no-upload: every measurement spooled")
    check(all(m["probe_cc"] == "ZZ" for m in out), "run --no-upload: no check-in, ZZ")
    rc, err = upload(st, fc.url())
    check(rc == 0 and spooled(st) == [], "run --no-upload: a later upload sends them")
    once_each(fc, [m["measurement_uid"] for m in out], "run then upload")


def run_with_collector_down(fc, st):
    targets = targets_file(st, fc.port, 2)
    port = fc.port
    fc.close()
    fc.server = type("x", (), {"shutdown": lambda s: None, "server_close": lambda s: None})()
    rc, err, out = run(st, "http://127.0.0.1:%d" % port, targets, "--upload-attempts", "2")
    check(rc == 4, "run, collector down: exit 4 upload pending (got %d: %s)" % (rc, err))
    check("2 still spooled" in err, "run --quiet, collector down: the upload's result is printed")
    check(len(out) == 2 and spooled(st) == sorted(m["measurement_uid"] for m in out),
          "run, collector down: measured and spooled")
    check("check-in" in err, "run, collector down: failed check-in reported")


def run_with_disk_full(fc, st):
    # The state directory on a 64 KiB tmpfs (root only): most measurements cannot be spooled.
    # They are lost, so the run must fail (exit 1), even though what was spooled is uploaded.
    if os.geteuid() != 0:
        print("skip: disk-full run needs root (tmpfs)")
        return
    small = os.path.join(st, "..", os.path.basename(st) + "-small")  # --output stays outside
    os.makedirs(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small]).returncode:
        print("skip: cannot mount a tmpfs")
        return
    try:
        targets = targets_file(st, fc.port, 60)
        rc, err, out = run(small, fc.url(), targets)
        check(rc == 1 and "could not be spooled" in err,
              "run, disk full: exit 1, the loss reported (%d %s)" % (rc, err[-300:]))
        # A disk already full before the run (an SD card filled by logs), the output discarded
        # (the cron line): nothing measured could be kept anywhere, so nothing is measured. It
        # used to measure (the traffic on record) and lose everything.
        subprocess.run(["umount", small])
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small]).returncode:
            print("skip: cannot mount a tmpfs")
            return
        try:
            with open(os.path.join(small, "fill"), "wb") as f:
                while True:
                    f.write(b"x" * 4096)
                    f.flush()
        except OSError:
            pass
        targets = targets_file(st, fc.port, 3)
        n_before = len(fc.requests)
        rc, err, out = run(small, fc.url(), targets, "--output", "/dev/null")
        check(rc == 1 and "not measuring" in err and "is full" in err and "df -h" in err
              and all(r[0] != "/api/v1/measurements" for r in fc.requests[n_before:]),
              "run, disk full before it, output discarded: nothing measured (%d %s)"
              % (rc, err[-400:]))
    finally:
        subprocess.run(["umount", small])


def config_with_plain_http_collector(fc, st):
    conf = os.path.join(st, "..", os.path.basename(st) + ".conf")
    with open(conf, "w") as f:
        f.write("collector_url = http://collector.invalid/\n")
    p = subprocess.run([PROBE, "targets", "--config", conf], capture_output=True, text=True,
                       timeout=30, env=clean_env())
    check(p.returncode == 2 and "collector_url" in p.stderr and "https" in p.stderr,
          "config: a plain http collector_url is a config error (%d %s)"
          % (p.returncode, p.stderr[-200:]))


def wait_for(cond, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def last_run(st):
    try:
        with open(os.path.join(st, "last-run.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stalls_uploads(fc):
    """Takes each upload and never answers it until `release` is set (at most 30 s)."""
    release = threading.Event()

    def b(h, ms, k):
        release.wait(30)
        try:
            fc.send_json(h, 503, {"error": "busy"})
        except OSError:
            pass  # the probe stopped and left
    fc.behaviour = b
    return release


def stop_probe(p, sig, what):
    p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        check(False, what + ": still running 15 s after the signal")
    return p.returncode, err


def run_stopped_during_upload(fc, st):
    # systemctl stop while the run uploads to a collector that does not answer: the upload ends
    # at once, the run exits 7 with last-run.json written, and every measurement waits in the
    # spool (it used to die of the signal: 143, and status still showed the run before).
    release = stalls_uploads(fc)
    targets = targets_file(st, fc.port, 3)
    out = os.path.join(st, "..", "stop-upload-out.jsonl")
    p = subprocess.Popen([PROBE, "run", "--quiet", "--accept-risks", "--targets", targets,
                          "--state-dir", st, "--output", out, "--timeout", "5", "--collector",
                          fc.url(), "--upload-attempts", "5", "--upload-max-time", "60"],
                         stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        up = wait_for(lambda: any(r[0] == "/api/v1/measurements" for r in fc.requests), 30)
        check(up, "stop during upload: the run reached its upload")
        rc, err = stop_probe(p, signal.SIGTERM, "stop during upload")
    finally:
        release.set()
    check(rc == 7 and "during the upload" in err,
          "stop during upload: exit 7, said so (%d %s)" % (rc, err))
    check(len(spooled(st)) == 3, "stop during upload: the 3 measurements wait in the spool")
    lr = last_run(st)
    check(lr is not None and lr.get("exit_code") == 7,
          "stop during upload: last-run.json written with exit 7 (%r)" % lr)


def run_stopped_during_checkin(fc, st):
    # a stop while the check-in waits for an answer: nothing measured, exit 7, last-run.json
    fc.checkin_hold = threading.Event()
    targets = targets_file(st, fc.port, 2)
    out = os.path.join(st, "..", "stop-checkin-out.jsonl")
    p = subprocess.Popen([PROBE, "run", "--quiet", "--accept-risks", "--targets", targets,
                          "--state-dir", st, "--output", out, "--timeout", "5", "--collector",
                          fc.url()], stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        check(wait_for(lambda: len(fc.requests) > 0, 30), "stop during check-in: checked in")
        rc, err = stop_probe(p, signal.SIGINT, "stop during check-in")
    finally:
        fc.checkin_hold.set()
    check(rc == 7 and "before measuring" in err,
          "stop during check-in: exit 7, said so (%d %s)" % (rc, err))
    check(spooled(st) == [] and (not os.path.exists(out) or os.path.getsize(out) == 0),
          "stop during check-in: nothing measured")
    lr = last_run(st)
    check(lr is not None and lr.get("exit_code") == 7,
          "stop during check-in: last-run.json with exit 7 (%r)" % lr)


def upload_stopped(fc, st):
    # `vantage-probe upload` stopped while the collector holds its batch: exit 7, spool intact;
    # a second signal while the first is being handled is not needed to end it
    uids = fill(st, 5)
    release = stalls_uploads(fc)
    p = subprocess.Popen([PROBE, "upload", "--state-dir", st, "--collector", fc.url(),
                          "--upload-attempts", "5"], stderr=subprocess.PIPE, text=True,
                         env=clean_env())
    try:
        check(wait_for(lambda: len(fc.requests) > 0, 30), "upload stopped: it sent a batch")
        rc, err = stop_probe(p, signal.SIGTERM, "upload stopped")
    finally:
        release.set()
    check(rc == 7, "upload stopped: exit 7 (%d %s)" % (rc, err))
    check(spooled(st) == sorted(uids), "upload stopped: the spool is intact")


for name, fn in [("accept", accepts_everything), ("token-env", token_from_environment),
                 ("unavailable-first", unavailable_first),
                 ("unavailable-always", unavailable_always), ("cut", cut_mid_answer),
                 ("cut-before", cut_before_answer), ("acks-some", acks_some),
                 ("duplicates", duplicates), ("garbage", garbage_answer),
                 ("rejects", rejects_some), ("reject-line", rejected_by_line_number),
                 ("rejected-cap", rejected_is_capped),
                 ("bisect", whole_batch_refused), ("proxy-400", proxy_refuses_everything),
                 ("concurrent", concurrent_uploads),
                 ("token-refused", token_refused), ("damaged", damaged_file_set_aside),
                 ("owner", files_of_another_user), ("down", collector_down),
                 ("http", plain_http_only_on_loopback),
                 ("run", run_checks_in_spools_and_uploads),
                 ("run-no-upload", run_without_upload_keeps_the_spool),
                 ("run-down", run_with_collector_down), ("disk-full", run_with_disk_full),
                 ("full-spool", run_with_full_spool),
                 ("full-spool-down", run_with_full_spool_collector_down),
                 ("clock", run_with_wrong_clock),
                 ("clock-1970", run_with_clock_in_1970),
                 ("clock-absurd", run_with_absurd_collector_date),
                 ("config-http", config_with_plain_http_collector),
                 ("stop-upload", run_stopped_during_upload),
                 ("stop-checkin", run_stopped_during_checkin),
                 ("stop-upload-cmd", upload_stopped)]:
    scenario(name, fn)

def https_clock_in_1970(fc, certs):
    # Over HTTPS a clock in 1970 is before the collector's certificate was issued: the check-in's
    # TLS verification fails, so there is no collector's clock to correct it by and the floor
    # applies: nothing measured, nothing spooled or sent, exit 1 (docs/volunteer.md, section 7).
    if not shutil.which("faketime"):
        print("skip: faketime not installed (apt-get install faketime)")
        return
    st = new_state("https-1970")
    targets = targets_file(st, fc.port, 2)
    e = clean_env()
    asan = os.environ.get("ASAN_OPTIONS", "")
    e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    out = os.path.join(st, "..", "https-1970-out.jsonl")
    n = len(fc.requests)
    p = subprocess.run(["faketime", "-f", "@1970-01-01 00:05:00", PROBE, "run", "--quiet",
                        "--accept-risks", "--targets", targets, "--state-dir", st, "--output", out,
                        "--timeout", "5", "--collector", fc.url("https"), "--collector-cacert",
                        os.path.join(certs, "ca.pem")] + FAST,
                       capture_output=True, text=True, timeout=120, env=e)
    check(p.returncode == 1 and "check-in" in p.stderr and "not measuring" in p.stderr and
          "1970-01-01" in p.stderr,
          "https, 1970: check-in fails, not measuring, exit 1 (%d %s)" % (p.returncode, p.stderr))
    check(spooled(st) == [] and len(fc.requests) == n and
          (not os.path.exists(out) or os.path.getsize(out) == 0),
          "https, 1970: nothing measured, spooled or sent")


# HTTPS with a private CA: refused without --collector-cacert, works with it.
certs = os.path.join(tmp, "certs")
if shutil.which("openssl") and subprocess.run(
        ["sh", os.path.join(SRC, "tests", "servers", "mkcerts.sh"), certs]).returncode == 0:
    fc = FakeCollector(os.path.join(certs, "good.pem"), os.path.join(certs, "good.key"))
    try:
        st = new_state("https")
        uids = fill(st, 7)
        rc, err = upload(st, fc.url("https"))
        check(rc == 4 and spooled(st) == sorted(uids) and fc.requests == [],
              "https: unverifiable certificate refused, nothing sent (%d %s)" % (rc, err))
        check("certificate" in err.lower() or "ssl" in err.lower(), "https: says why: " + err)
        rc, err = upload(st, fc.url("https"), "--collector-cacert", os.path.join(certs, "ca.pem"))
        check(rc == 0 and spooled(st) == [], "https: with the private CA (%d %s)" % (rc, err))
        once_each(fc, uids, "https")
        https_clock_in_1970(fc, certs)
    finally:
        fc.close()
else:
    print("note: openssl not available, HTTPS scenario skipped")

shutil.rmtree(tmp, ignore_errors=True)
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
