#!/usr/bin/env python3
"""The collector's integration suite, run against a real store: `collector_suite.py sqlite|pg`.

Starts vantage-collector on 127.0.0.1 (random port) with a fresh database (a temporary SQLite
file, or a PostgreSQL 15 cluster initdb'd into a temporary directory on a unix socket) and checks
good uploads, every kind of bad input, tokens, rate limits, check-in, privacy, store outages,
graceful shutdown, two collectors on one database, a uid stored by another session while a batch
is being stored (PostgreSQL), and crash safety (SIGKILL during uploads).
Exit 0 pass, 1 fail, 77 skipped (no PostgreSQL / not root for pg)."""

import base64
import errno
import gzip
import hashlib
import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zlib

BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
BIN = os.path.join(BUILD, "collector", "vantage-collector")
PRIVATE_ADDR = "127.9.8.7"  # the distinctive "volunteer" address of the privacy checks
FAILURES = []


def check(cond, what):
    if cond:
        print(f"ok   {what}", flush=True)
    else:
        print(f"FAIL {what}", flush=True)
        FAILURES.append(what)
    return cond


def measurement(uid=None, **kw):
    m = {
        "data_format_version": "0.2.0",
        "measurement_start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "test_start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "probe_cc": "IT",
        "probe_asn": "AS12345",
        "probe_ip": "127.0.0.1",
        "test_name": "web_connectivity",
        "test_version": "0.1.0",
        "software_name": "vantage-probe",
        "software_version": "0.1.0",
        "input": "https://x.com/",
        "measurement_uid": uid or os.urandom(16).hex(),
        "annotations": {"target_id": "x", "platform": "x", "category": "social"},
        "test_keys": {"verdict": "accessible", "requests": [{"failure": None}]},
    }
    m.update(kw)
    return m


def jsonl(ms):
    return ("\n".join(json.dumps(m) for m in ms) + "\n").encode()


# ---------------------------------------------------------------- stores


class SqliteDB:
    name = "sqlite"

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "collector.db")
        self.url = "sqlite:" + self.path
        self.lock = None

    def query(self, sql):
        c = sqlite3.connect(self.path, timeout=5)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    def count(self):
        return self.query("SELECT count(*) FROM measurements")[0][0]

    def has(self, uid):
        return bool(self.query(f"SELECT 1 FROM measurements WHERE uid = '{uid}'"))

    def dump_bytes(self):
        out = b""
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(self.path + suffix):
                with open(self.path + suffix, "rb") as f:
                    out += f.read()
        return out

    def make_unavailable(self):
        # Another process holds the write lock longer than the collector's busy timeout.
        self.lock = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        self.lock.execute("BEGIN EXCLUSIVE")

    def restore(self):
        self.lock.execute("ROLLBACK")
        self.lock.close()
        self.lock = None

    def close(self):
        pass


class PgDB:
    name = "pg"
    BINDIR = "/usr/lib/postgresql/15/bin"

    def __init__(self, tmp):
        if not os.path.exists(os.path.join(self.BINDIR, "initdb")):
            print("skip: PostgreSQL 15 is not installed (scripts/deps.sh lab)")
            sys.exit(77)
        if os.geteuid() != 0:
            print("skip: the PostgreSQL suite runs initdb as user postgres (needs root)")
            sys.exit(77)
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(tmp, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.pg("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.psql_admin("CREATE DATABASE vantage")
        self.url = f"postgresql:///vantage?host={self.dir}&user=postgres"

    def pg(self, tool, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(self.BINDIR, tool)] +
                       list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)

    def start(self):
        self.pg("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                f"-k {self.dir} -c listen_addresses='' -c fsync=on", "start")

    def stop(self):
        self.pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def psql_admin(self, sql):
        subprocess.run(["psql", "-h", self.dir, "-U", "postgres", "-d", "postgres", "-qAtc", sql],
                       check=True, stdout=subprocess.DEVNULL, timeout=30)

    def query(self, sql):
        out = subprocess.run(["psql", "-h", self.dir, "-U", "postgres", "-d", "vantage", "-qAtF",
                              "\t", "-c", sql], check=True, capture_output=True, text=True,
                             timeout=30).stdout
        return [tuple(line.split("\t")) for line in out.splitlines()]

    def count(self):
        return int(self.query("SELECT count(*) FROM measurements")[0][0])

    def has(self, uid):
        return bool(self.query(f"SELECT 1 FROM measurements WHERE uid = '{uid}'"))

    def dump_bytes(self):
        return subprocess.run(["pg_dump", "-h", self.dir, "-U", "postgres", "vantage"], check=True,
                              capture_output=True, timeout=60).stdout

    def make_unavailable(self):
        self.stop()

    def restore(self):
        self.start()

    def close(self):
        try:
            self.stop()
        except Exception:
            pass


# ---------------------------------------------------------------- collector processes


def http_request(port, method, path, body=None, headers=None, source=None, timeout=20):
    """One request to 127.0.0.1:port (from the loopback address source when given): status,
    the answer as JSON (None when it is not), headers."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        try:
            js = json.loads(data) if data else None
        except ValueError:
            js = None
        return r.status, js, dict(r.getheaders())
    finally:
        c.close()


class Collector:
    def __init__(self, db, tmp, *extra, name="c", binary=BIN, env=None):
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "ab")
        start = self.log.tell()  # a restarted collector appends: read only its own lines
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--db", db.url] +
                                     list(extra), stdout=self.log, stderr=self.log, env=env)
        self.port = None
        deadline = time.time() + 10
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                break
            with open(self.log_path, "rb") as f:
                f.seek(start)
                for line in f.read().decode(errors="replace").splitlines():
                    if "listening on port" in line:
                        self.port = int(line.split("listening on port ")[1].split()[0])
            time.sleep(0.02)
        if self.port is None:
            with open(self.log_path, "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace"))
            raise RuntimeError("collector did not start")

    def request(self, method, path, body=None, headers=None, source=None, timeout=20):
        return http_request(self.port, method, path, body, headers, source, timeout)

    def upload(self, body, gz=False, headers=None, source=None):
        h = dict(headers or {})
        if gz:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.setdefault("Content-Type", "application/x-ndjson")
        return self.request("POST", "/api/v1/measurements", body, h, source)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def present(db, uids):
    """The subset of uids stored (one query, not one per uid)."""
    uids = list(uids)
    found = set()
    for i in range(0, len(uids), 500):
        inlist = ",".join(f"'{u}'" for u in uids[i:i + 500])
        found.update(r[0] for r in db.query(f"SELECT uid FROM measurements WHERE uid IN ({inlist})"))
    return found


def statuses(js):
    return [r["status"] for r in js["results"]]


# ---------------------------------------------------------------- the checks


def check_uploads(db, c):
    st, js, _ = c.request("GET", "/api/v1/health")
    check(st == 200 and js["status"] == "ok", f"health answers ok ({st} {js})")

    good = [measurement() for _ in range(5)]
    st, js, _ = c.upload(jsonl(good))
    check(st == 200 and js["accepted"] == 5 and statuses(js) == ["accepted"] * 5,
          "plain JSONL batch of 5 is accepted")
    check(len(present(db, [m["measurement_uid"] for m in good])) == 5, "the 5 are in the database")
    row = db.query(f"SELECT probe_cc, probe_asn, test_name, target_id, platform, category, "
                   f"verdict, input FROM measurements WHERE uid = '{good[0]['measurement_uid']}'")
    check(row and tuple(row[0]) == ("IT", "AS12345", "web_connectivity", "x", "x", "social",
                                    "accessible", "https://x.com/"),
          f"columns are filled from the measurement ({row})")

    gz = [measurement() for _ in range(3)]
    st, js, _ = c.upload(jsonl(gz), gz=True)
    check(st == 200 and js["accepted"] == 3, "gzip batch is accepted")

    st, js, _ = c.upload(jsonl(good), gz=True)
    check(st == 200 and js["duplicate"] == 5 and js["accepted"] == 0,
          "re-uploading a batch gives duplicates, not errors")

    d = measurement()
    st, js, _ = c.upload(jsonl([d, d, measurement()]))
    check(st == 200 and statuses(js) == ["accepted", "duplicate", "accepted"],
          f"duplicate uid inside a batch: first accepted, then duplicate ({js and statuses(js)})")

    # One bad line among good ones: the bad one is rejected, the good ones stored.
    n0 = db.count()
    ok1, ok2 = measurement(), measurement()
    body = jsonl([ok1]) + b'{"measurement_uid": "broken\n' + jsonl([ok2])
    st, js, _ = c.upload(body)
    check(st == 200 and statuses(js) == ["accepted", "rejected", "accepted"] and
          "not valid JSON" in js["results"][1]["reason"] and js["results"][1]["line"] == 2,
          "malformed JSON line is rejected with a reason, the rest accepted")
    check(db.count() == n0 + 2, "exactly the two valid measurements were stored")

    bad_cases = {
        "deep nesting": (json.dumps(measurement(test_keys={"a": json.loads("[" * 100 + "]" *
                                                                          100)})), "depth"),
        "invalid UTF-8": (json.dumps(measurement(input="https://x.com/PLACEHOLDER")).replace(
            "PLACEHOLDER", "\udcff").encode("utf-8", "surrogateescape"), "UTF-8"),
        "probe_asn not a string": (json.dumps(measurement(probe_asn=12345)), "probe_asn"),
        "test_keys not an object": (json.dumps(measurement(test_keys="x")), "test_keys"),
        "probe_cc lowercase": (json.dumps(measurement(probe_cc="it")), "probe_cc"),
        "probe_asn without AS": (json.dumps(measurement(probe_asn="12345")), "probe_asn"),
        "uid uppercase": (json.dumps(measurement(uid="A" * 32)), "measurement_uid"),
        "start time before 2012": (json.dumps(measurement(
            measurement_start_time="2011-12-31 23:59:59")), "before 2012"),
        "start time in the future": (json.dumps(measurement(
            measurement_start_time="2099-01-01 00:00:00")), "future"),
        "start time not a date": (json.dumps(measurement(
            measurement_start_time="2026-02-30 00:00:00")), "YYYY"),
        "array instead of object": (json.dumps([measurement()]), "object"),
        "huge string": (json.dumps(measurement(test_keys={"body": "a" * 300000})), "limit"),
        "measurement over 1 MiB": (json.dumps(measurement(test_keys={
            "b": ["a" * 200000] * 6})), "limit"),
    }
    for field in ("data_format_version", "measurement_start_time", "probe_cc", "probe_asn",
                  "test_name", "software_name", "software_version", "test_keys",
                  "measurement_uid"):
        m = measurement()
        del m[field]
        bad_cases[f"missing {field}"] = (json.dumps(m), "missing required field")
    for what, (line, needle) in bad_cases.items():
        n0 = db.count()
        if isinstance(line, str):
            line = line.encode()
        st, js, _ = c.upload(line + b"\n")
        ok = (st == 200 and js["rejected"] == 1 and js["accepted"] == 0 and
              needle in js["results"][0]["reason"])
        check(ok and db.count() == n0,
              f"{what}: rejected, nothing stored ({st} {js and js['results'][0].get('reason')})")

    # Whole-body refusals: a JSON error, nothing stored.
    def refused(what, body, code, gz=False, headers=None, raw_gz=False):
        n0 = db.count()
        h = dict(headers or {})
        if raw_gz:
            h["Content-Encoding"] = "gzip"
        st, js, _ = c.upload(body, gz=gz, headers=h)
        check(st == code and (js is None and code == 413 or isinstance(js, dict) and
                              js.get("error")) and db.count() == n0,
              f"{what}: {code} with a JSON error, nothing stored (got {st} {js})")

    trunc = gzip.compress(jsonl([measurement() for _ in range(20)]))
    refused("truncated gzip", trunc[:len(trunc) // 2], 400, raw_gz=True)
    refused("not gzip at all", b"hello, world", 400, raw_gz=True)
    refused("gzip bomb over the inflated cap", gzip.compress(b" " * (65 << 20)), 413,
            raw_gz=True)
    refused("more than 1000 measurements", jsonl([measurement() for _ in range(1001)]), 400)
    refused("empty body", b"", 400)
    refused("unknown Content-Encoding", jsonl([measurement()]), 415,
            headers={"Content-Encoding": "br"})
    # Over 16 MiB: refused from the Content-Length alone, before the body is read.
    s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    try:
        s.sendall(b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % ((16 << 20) + 10) + b"x" * 65536)
        data = s.recv(4096)
    except OSError as e:
        data = repr(e).encode()
    s.close()
    check(data.startswith(b"HTTP/1.1 413"), f"body over 16 MiB: 413 ({data[:40]!r})")
    # Two Content-Lengths (or one with Transfer-Encoding): which framed the body is ambiguous;
    # 400, and the connection is closed rather than the rest read as a request.
    n0 = db.count()
    for extra in (b"Content-Length: 7\r\n", b"Transfer-Encoding: identity\r\n"):
        s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
        data = b""
        try:
            s.sendall(b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      + extra + b"\r\nabcdefgGET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            data += repr(e).encode()
        s.close()
        check(data.startswith(b"HTTP/1.1 400") and data.count(b"HTTP/1.1") == 1
              and db.count() == n0,
              f"ambiguous body length ({extra.strip().decode()}): 400, connection closed "
              f"({data[:40]!r}, {data.count(b'HTTP/1.1')} answers)")
    # Parsing and printing cost per JSON value: values are capped per measurement and per
    # upload, and a batch just under the cap costs in proportion to its size (ten times the
    # values, at most 30 times the time of 2 such measurements in the same run: no quadratic
    # step; a ratio, not a time limit, so a busy or sanitized build does not fail it).
    def timed_upload(n):
        t0 = time.time()
        r = c.upload(jsonl([measurement(test_keys={"a": [0] * 45000}) for _ in range(n)]),
                     gz=True)
        return r, time.time() - t0
    # The median of three small uploads against the better of two large ones: one busy moment
    # (a sanitized build beside other tests) does not decide it.
    small = [timed_upload(2) for _ in range(3)]
    st2 = max(r[0][0] for r in small)
    took2 = sorted(r[1] for r in small)[1]
    large = [timed_upload(20) for _ in range(2)]
    st = max(r[0][0] for r in large)
    took = min(r[1] for r in large)
    with open(f"/proc/{c.proc.pid}/status") as f:
        hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0] // 1024
    check(st2 == 200 and st == 200 and all(r[0][1]["accepted"] == 20 for r in large) and
          took < max(5.0, 30 * took2),
          f"20 measurements of 45000 values each: stored in {took:.1f}s, 2 in {took2:.2f}s "
          f"(peak memory {hwm} MB)")
    n0 = db.count()
    st, js, _ = c.upload(jsonl([measurement(test_keys={"a": [0] * 50001})]), gz=True)
    check(st == 200 and js["rejected"] == 1 and "JSON values" in js["results"][0]["reason"],
          "a measurement with over 50000 values is rejected")
    st, js, _ = c.upload(jsonl([measurement(test_keys={"a": [0] * 45000}) for _ in range(25)]),
                         gz=True)
    check(st == 413 and "JSON values" in js.get("error", "") and db.count() == n0,
          f"an upload with over 1000000 values is refused whole: 413 ({st})")

    st, js, _ = c.request("GET", "/api/v1/check-in")
    check(st == 405 and js and js.get("error"), f"GET on check-in: 405 JSON error ({st})")
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"):
        st, js, h = c.request(method, "/api/v1/measurements", body=b"{}" if method != "TRACE" else None)
        check(st == 405 and js and js.get("error") and h.get("Allow") == "GET, HEAD, POST",
              f"{method} on measurements: 405 JSON error with Allow: GET, HEAD, POST ({st} "
              f"{h.get('Allow')})")
    st, js, h = c.request("DELETE", "/api/v1/health")
    check(st == 405 and js and h.get("Allow") == "GET, HEAD", f"DELETE on health: 405 ({st})")
    # The query and dashboard paths exist: another method is 405 with Allow, not 404.
    for method, path in (("POST", "/api/v1/aggregation"), ("PATCH", "/api/v1/episodes"),
                         ("PUT", "/api/v1/aggregation?by=day"), ("OPTIONS", "/"),
                         ("POST", "/"), ("DELETE", "/static/app.js"), ("POST", "/index.html"),
                         ("PUT", "/static/vendor/chart.js")):
        st, js, h = c.request(method, path, body=b"{}" if method != "OPTIONS" else None)
        check(st == 405 and js and js.get("error") and h.get("Allow") == "GET, HEAD",
              f"{method} {path}: 405 JSON error with Allow: GET, HEAD ({st} {h.get('Allow')})")
    st, js, h = c.request("DELETE", "/static/nope.js")
    check(st == 404, f"DELETE on a file the dashboard does not have: 404 ({st})")
    st, js, h = c.request("GET", "/nope")
    check(st == 404 and js and js.get("error"), "unknown path: 404 JSON error")
    check(h.get("X-Content-Type-Options") == "nosniff" and
          "default-src 'none'" in h.get("Content-Security-Policy", ""),
          f"JSON answers carry nosniff and a CSP ({h.get('Content-Security-Policy')})")
    st, js, _ = c.request("GET", "/api/v1/health")
    check(st == 200 and c.alive(), "collector keeps serving after every bad input")


def check_slow_clients(c, timeout_s):
    """A client dribbling its headers byte by byte holds no one else up; a stalled one is
    dropped after the connection timeout. Every wait here is bounded."""
    req = (f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n"
           f"X-Pad: {'p' * 300}\r\n\r\n").encode()  # ~4 s of dribbling
    slow = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    result = {}

    def dribble():
        try:
            for b in req:
                slow.send(bytes([b]))
                time.sleep(0.01)
            result["answer"] = slow.recv(4096)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=dribble)
    t.start()
    t0 = time.time()
    st, _, _ = c.request("GET", "/api/v1/health", timeout=5)
    # served long before the dribbler's ~4 s are over (2 s: room for a busy, sanitized build)
    check(st == 200 and time.time() - t0 < 2.0, "a normal request is served while a slow client "
          "dribbles its headers")
    t.join(15)
    slow.close()
    check(result.get("answer", b"").startswith(b"HTTP/1.1 200"),
          "the byte-by-byte client gets its answer too")

    stalled = socket.create_connection(("127.0.0.1", c.port), timeout=timeout_s + 5)
    stalled.send(b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\nContent-Le")
    t0 = time.time()
    try:
        data = stalled.recv(4096)
    except socket.timeout:
        data = None
    took = time.time() - t0
    stalled.close()
    check(data is not None and took < timeout_s + 3,
          f"a client stalled in its headers is dropped after the timeout ({took:.1f}s, {data!r})")

    stalled = socket.create_connection(("127.0.0.1", c.port), timeout=timeout_s + 5)
    stalled.send(b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                 b"{\"a\":")
    t0 = time.time()
    try:
        data = stalled.recv(4096)
    except socket.timeout:
        data = None
    took = time.time() - t0
    stalled.close()
    check(data is not None and took < timeout_s + 3,
          f"a client stalled in its body is dropped after the timeout ({took:.1f}s)")
    big = b"X-Big: " + b"h" * 20000 + b"\r\n"
    s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    try:
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        data = s.recv(4096)
    except OSError:
        data = b""
    s.close()
    check(not data.startswith(b"HTTP/1.1 200"), f"oversized headers are refused ({data[:20]!r})")
    st, _, _ = c.request("GET", "/api/v1/health")
    check(st == 200, "collector still serving after slow clients")


def check_tokens(db, tmp):
    def tok(*args):
        return subprocess.run([BIN, "token"] + list(args) + ["--db", db.url], capture_output=True,
                              text=True, timeout=30)

    # list and revoke read a collector's database: a mistyped --db is refused, not created.
    if db.name == "sqlite":
        missing = os.path.join(tmp, "mistyped", "collector.db")
        os.makedirs(os.path.dirname(missing), exist_ok=True)
        for args in (["list"], ["revoke", "0123456789abcdef"]):
            r = subprocess.run([BIN, "token"] + args + ["--db", "sqlite:" + missing],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 1 and "no such database" in r.stderr and
                  not os.listdir(os.path.dirname(missing)),
                  f"token {args[0]} of a missing database: exit 1, nothing created "
                  f"({r.returncode} {r.stderr.strip()[-80:]})")
        r = subprocess.run([BIN, "token", "create", "--db", "sqlite:" + missing],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and os.path.exists(missing),
              "token create makes a new database (a new collector's first token)")
    else:
        bad = db.url.replace("/vantage?", "/postgres?")  # exists, but no collector's tables
        r = subprocess.run([BIN, "token", "list", "--db", bad], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 1 and "no such database" in r.stderr,
              f"token list of a database without the collector's tables: exit 1 "
              f"({r.stderr.strip()})")
        out = subprocess.run(["psql", "-h", db.dir, "-U", "postgres", "-d", "postgres", "-qAtc",
                              "SELECT to_regclass('measurements') IS NULL"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        check(out == "t", f"... and did not create them there ({out!r})")

    r = tok("create")
    token = r.stdout.strip()
    check(r.returncode == 0 and len(token) == 64, "token create prints a token")
    rows = db.query("SELECT sha256 FROM tokens")
    check(all(token not in str(x) for x in rows) and len(rows) == 1,
          "only the token's hash is stored")
    r = tok("list")
    tid = r.stdout.splitlines()[1].split()[0] if r.returncode == 0 and r.stdout else ""
    check(len(tid) == 16, f"token list shows its id ({r.stdout!r})")

    c = Collector(db, tmp, "--require-token", name="tokens")
    try:
        st, js, _ = c.upload(jsonl([measurement()]))
        check(st == 401 and js.get("error"), "--require-token: upload without a token is 401")
        st, js, _ = c.upload(jsonl([measurement()]),
                             headers={"Authorization": "Bearer " + "0" * 64})
        check(st == 401, "unknown token is 401")
        st, js, _ = c.upload(jsonl([measurement()]), headers={"Authorization": "Bearer " + token})
        check(st == 200 and js["accepted"] == 1, "valid token uploads")
        r = tok("revoke", tid)
        check(r.returncode == 0, "token revoke")
        st, js, _ = c.upload(jsonl([measurement()]), headers={"Authorization": "Bearer " + token})
        check(st == 401 and "revoked" in js.get("error", ""), "revoked token is 401")
        check(tok("revoke", tid).returncode == 1, "revoking twice fails clearly")
        st, js, _ = c.request("POST", "/api/v1/check-in", b"{}")
        check(st == 200, "check-in needs no token")
    finally:
        c.stop()

    # A note says whom a token went to; list shows it. A database made before notes existed
    # gets the column when a command opens it.
    note = "Lahore volunteers, via Bytes for All — 2026-11"
    r = tok("create", "--note", note)
    check(r.returncode == 0 and len(r.stdout.strip()) == 64, f"token create --note ({r.stderr})")
    r = tok("list")
    check(r.returncode == 0 and r.stdout.splitlines()[0].split()[-1] == "NOTE" and
          any(line.endswith("  " + note) for line in r.stdout.splitlines()[1:]),
          f"token list shows the note ({r.stdout!r})")
    for bad, why in (("a\nb", "control characters"), ("x" * 201, "at most 200 bytes")):
        r = tok("create", "--note", bad)
        check(r.returncode == 2 and why in r.stderr, f"a bad note is refused ({r.stderr.strip()})")
    r = tok("list", "--note", "x")
    check(r.returncode == 2 and "--note goes with token create" in r.stderr,
          f"--note with list is refused ({r.stderr.strip()})")
    check(len(db.query("SELECT id FROM tokens")) == 2, "refused notes stored no token")
    db.query("ALTER TABLE tokens DROP COLUMN note")
    r = tok("list")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 3,
          f"token list of a database without notes ({r.returncode} {r.stderr.strip()})")
    r = tok("create", "--note", "after the upgrade")
    check(r.returncode == 0 and any(line.endswith("  after the upgrade")
                                    for line in tok("list").stdout.splitlines()),
          f"token create --note on a database without notes ({r.stderr.strip()})")


def check_rate_limit(db, tmp):
    c = Collector(db, tmp, "--rate", "0.5", "--burst", "2", name="rate")
    try:
        codes = [c.request("POST", "/api/v1/check-in", b"{}")[0] for _ in range(3)]
        st, js, hdrs = c.request("POST", "/api/v1/check-in", b"{}")
        check(codes[:2] == [200, 200] and st == 429 and int(hdrs.get("Retry-After", "0")) >= 1,
              f"rate limit per client: burst 2 then 429 with Retry-After ({codes}, {st})")
        st2, _, _ = c.request("GET", "/api/v1/health")
        check(st2 == 200, "health is not rate limited")
    finally:
        c.stop()
    # IPv6 clients (named by a trusted proxy here): one bucket per /64, which one host holds.
    c = Collector(db, tmp, "--rate", "0.5", "--burst", "2", "--trusted-proxy", "127.0.0.1",
                  name="rate6")
    try:
        def from_(a):
            return c.request("POST", "/api/v1/check-in", b"{}", {"X-Forwarded-For": a})[0]
        codes = [from_("2001:db8::1"), from_("2001:db8::2"), from_("2001:db8::ffff:3"),
                 from_("2001:db8:0:1::1")]
        check(codes == [200, 200, 429, 200],
              f"rate limit per IPv6 /64: three addresses of one /64 share a bucket, another "
              f"/64 has its own ({codes})")
    finally:
        c.stop()


def check_privacy_and_checkin(db, tmp):
    asn = os.path.join(tmp, "asn.csv")
    cc = os.path.join(tmp, "country.csv")
    with open(asn, "w") as f:
        f.write('127.9.0.0,127.9.255.255,64500,"Example Volunteer Net, Inc."\n'
                "2001:db8::,2001:db8::ffff,64501,DocNet\n")
    with open(cc, "w") as f:
        f.write("127.9.0.0,127.9.255.255,NL\n")
    logs = os.path.join(tmp, "privacy.log")
    c = Collector(db, tmp, "--geoip-asn", asn, "--geoip-country", cc, "--log-json",
                  "--targets-version", "7", name="privacy")
    try:
        st, js, _ = c.request("POST", "/api/v1/check-in", b"{}", source=PRIVATE_ADDR)
        check(st == 200 and js == {"probe_cc": "NL", "probe_asn": "AS64500",
                                   "probe_network_name": "Example Volunteer Net, Inc.",
                                   "targets_version": "7"},
              f"check-in finds the caller's network ({js})")
        st, js, _ = c.request("POST", "/api/v1/check-in", b"{}")
        check(st == 200 and js["probe_cc"] == "ZZ" and js["probe_asn"] == "AS0" and
              js["probe_network_name"] is None, f"unknown address: ZZ / AS0 ({js})")
        m = measurement(probe_ip=PRIVATE_ADDR,
                        test_keys={"client_resolver": PRIVATE_ADDR,
                                   "requests": [{"body": f"your ip is {PRIVATE_ADDR}!"}],
                                   f"key-{PRIVATE_ADDR}": 1})
        st, js, _ = c.upload(jsonl([m]), gz=True, source=PRIVATE_ADDR)
        check(st == 200 and js["accepted"] == 1, "upload from the distinctive address accepted")
        body = db.query(f"SELECT body FROM measurements WHERE uid = '{m['measurement_uid']}'")
        stored = json.loads(body[0][0]) if body else {}
        check(stored.get("probe_ip") == "127.0.0.1" and
              "[scrubbed]" in stored["test_keys"]["requests"][0]["body"],
              "probe_ip is forced and the address is scrubbed inside strings")
    finally:
        c.stop()
    with open(c.log_path, "rb") as f:
        log = f.read()
    check(b'"method":"POST"' in log and b'"status":200' in log,
          "structured JSON log lines are written")
    check(PRIVATE_ADDR.encode() not in log, "the caller's address is not in the logs")
    check(PRIVATE_ADDR.encode() not in db.dump_bytes(),
          f"the caller's address is nowhere in the database ({db.name})")


def check_geoip_reload(db, tmp):
    # An operator updates the GeoIP files (ip-location-db publishes them daily) and sends
    # SIGHUP: check-ins answer from the new data without a restart; a file that does not load
    # leaves the data in use as it was, and the collector keeps serving.
    asn = os.path.join(tmp, "reload-asn.csv")
    cc = os.path.join(tmp, "reload-country.csv")

    def write(a, c):
        with open(asn + ".new", "w") as f:
            f.write(a)
        with open(cc + ".new", "w") as f:
            f.write(c)
        os.replace(asn + ".new", asn)
        os.replace(cc + ".new", cc)

    def placed():
        st, js, _ = c.request("POST", "/api/v1/check-in", b"{}", source=PRIVATE_ADDR)
        return (js["probe_cc"], js["probe_asn"]) if st == 200 and js else (st, None)

    def after_hup(want, marker):
        start = os.path.getsize(c.log_path)
        c.proc.send_signal(signal.SIGHUP)
        deadline, got = time.time() + 10, None
        while time.time() < deadline:
            with open(c.log_path, "rb") as f:
                f.seek(start)
                if marker in f.read():
                    break
            time.sleep(0.05)
        got = placed()
        return got == want, got

    write("127.9.0.0,127.9.255.255,64500,Before\n", "127.9.0.0,127.9.255.255,NL\n")
    c = Collector(db, tmp, "--geoip-asn", asn, "--geoip-country", cc, name="reload")
    try:
        check(placed() == ("NL", "AS64500"), f"check-in before the update ({placed()})")
        write("127.9.0.0,127.9.255.255,64511,After\n", "127.9.0.0,127.9.255.255,DE\n")
        ok, got = after_hup(("DE", "AS64511"), b"GeoIP reloaded")
        check(ok, f"after SIGHUP check-in answers from the updated files ({got})")
        write("127.9.0.0,127.9.255.255,64522,Half\n127.9.0.0,127.9.0.0.0,64522,Broken\n",
              "127.9.0.0,127.9.255.255,FR\n")
        ok, got = after_hup(("DE", "AS64511"), b"GeoIP not reloaded")
        check(ok, f"a file that does not load leaves the data in use ({got})")
        check(c.proc.poll() is None, "the collector keeps serving after both signals")
    finally:
        check(c.stop() == 0, "and exits 0 on SIGTERM")
    with open(c.log_path, "rb") as f:
        log = f.read()
    check(b"SIGHUP: GeoIP reloaded (1 ASN and 1 country ranges" in log and
          b"reload-asn.csv:2: not an IP address range" in log,
          "the log says what was reloaded, and which line of which file was refused")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_proxy(db, tmp):
    """Behind a real TLS-less nginx reverse proxy (the deployment the probe's https rule asks
    for, minus the certificate): with --trusted-proxy, check-in, the rate limit and the scrub
    use the client's address from X-Forwarded-For; a client's own X-Forwarded-For is not
    believed, through the proxy or directly."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else None)
    if not nginx:
        print("   proxy: skipped, nginx is not installed (scripts/deps.sh lab)")
        return
    asn = os.path.join(tmp, "proxy-asn.csv")
    cc = os.path.join(tmp, "proxy-country.csv")
    with open(asn, "w") as f:
        f.write("127.9.0.0,127.9.255.255,64500,VolunteerNet\n127.6.0.0,127.6.255.255,64502,OtherNet\n")
    with open(cc, "w") as f:
        f.write("127.9.0.0,127.9.255.255,NL\n127.6.0.0,127.6.255.255,DE\n")
    c = Collector(db, tmp, "--geoip-asn", asn, "--geoip-country", cc, "--trusted-proxy",
                  "127.0.0.2", "--rate", "0.2", "--burst", "2", "--log-json", name="proxy")
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        location / {{
            proxy_pass http://127.0.0.1:{c.port};
            proxy_bind 127.0.0.2;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
""")
    ng = subprocess.Popen([nginx, "-p", d, "-c", os.path.join(d, "nginx.conf")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def via(method, path, body=None, headers=None, source=None):  # through nginx
        return http_request(port, method, path, body, headers, source)[:2]

    def network(js):
        return js and (js.get("probe_cc"), js.get("probe_asn"))

    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        st, js = via("POST", "/api/v1/check-in", b"{}", source=PRIVATE_ADDR)
        check(st == 200 and network(js) == ("NL", "AS64500"),
              f"through the proxy, check-in finds the client's network, not the proxy's ({js})")
        st, js = via("POST", "/api/v1/check-in", b"{}", {"X-Forwarded-For": PRIVATE_ADDR},
                     source="127.6.6.6")
        check(st == 200 and network(js) == ("DE", "AS64502"),
              f"a client's own X-Forwarded-For is not believed through the proxy ({js})")
        for _ in range(2):
            st, js, _ = c.request("POST", "/api/v1/check-in", b"{}",
                                  {"X-Forwarded-For": PRIVATE_ADDR}, source="127.6.6.7")
        check(st == 200 and network(js) == ("DE", "AS64502"),
              f"nor from a caller that is not a trusted proxy ({js})")
        # The rate limit is per client behind the proxy, not one bucket for the proxy.
        codes = [via("POST", "/api/v1/check-in", b"{}", source="127.9.1.1")[0] for _ in range(3)]
        other = via("POST", "/api/v1/check-in", b"{}", source="127.9.1.2")[0]
        check(codes == [200, 200, 429] and other == 200,
              f"rate limit per client through the proxy ({codes}, then another client {other})")
        m = measurement(probe_ip=PRIVATE_ADDR,
                        test_keys={"requests": [{"body": f"your ip is {PRIVATE_ADDR}!"}]})
        st, js = via("POST", "/api/v1/measurements", gzip.compress(jsonl([m])),
                     {"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
                     source=PRIVATE_ADDR)
        body = db.query(f"SELECT body FROM measurements WHERE uid = '{m['measurement_uid']}'")
        stored = json.loads(body[0][0]) if body else {}
        check(st == 200 and js["accepted"] == 1 and
              "[scrubbed]" in stored.get("test_keys", {}).get("requests", [{}])[0].get("body", ""),
              f"through the proxy, the client's address is scrubbed from its upload ({st} {js})")
    finally:
        ng.terminate()
        try:
            ng.wait(10)
        except subprocess.TimeoutExpired:
            ng.kill()
        c.stop()
    with open(c.log_path, "rb") as f:
        log = f.read()
    check(PRIVATE_ADDR.encode() not in log and b"127.6.6.6" not in log,
          "the clients' addresses behind the proxy are not in the logs")
    check(log.count(b"X-Forwarded-For from a caller not named by --trusted-proxy") == 1,
          "an X-Forwarded-For from an untrusted caller is reported, once, without addresses")
    check(PRIVATE_ADDR.encode() not in db.dump_bytes(),
          f"nor in the database ({db.name})")


def check_mmdb(db, tmp):
    """Check-in from MaxMind DB files (--geoip-mmdb), written by MaxMind's own writer: GeoLite2's
    field names and ip-location-db's, the CSV files answering first, bad values not taken, a
    broken file refused at start-up."""
    mk = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "servers", "mkmmdb.pl")
    long_org = "Федеральное государственное бюджетное учреждение " * 3  # 2 bytes a letter

    def mmdb(name, *args):
        path = os.path.join(tmp, name)
        r = subprocess.run(["perl", mk, path] + list(args), capture_output=True, text=True,
                           timeout=60)
        return path if r.returncode == 0 else (None if r.returncode == 77 else
                                               sys.exit(f"mkmmdb.pl failed: {r.stderr}"))

    asn = mmdb("asn.mmdb", "127.9.0.0/16", "asn=64500,org=VolunteerNet",
               "127.7.0.0/16", f"asn=64510,org={long_org}", "127.6.0.0/16", "asn=0,org=Nobody")
    if not asn:
        print("   mmdb: skipped, MaxMind::DB::Writer is not installed (scripts/deps.sh test)")
        return
    geolite = mmdb("country.mmdb", "127.9.0.0/16", "iso=NL", "127.7.0.0/16", "iso=ru",
                   "127.5.0.0/16", "iso=1X")
    iplocdb = mmdb("country-cc.mmdb", "127.8.0.0/16", "cc=DE", "127.9.0.0/16", "cc=FR")
    csv = os.path.join(tmp, "mmdb-country.csv")
    with open(csv, "w") as f:
        f.write("127.9.8.0,127.9.8.255,BE\n")
    c = Collector(db, tmp, "--geoip-country", csv, "--geoip-mmdb", asn, "--geoip-mmdb", geolite,
                  "--geoip-mmdb", iplocdb, "--rate", "0", name="mmdb")
    try:
        def net(source):
            st, js, _ = c.request("POST", "/api/v1/check-in", b"{}", source=source)
            return st == 200 and (js["probe_cc"], js["probe_asn"], js["probe_network_name"])

        check(net("127.9.8.7") == ("BE", "AS64500", "VolunteerNet"),
              f"the CSV's country first, the ASN from the MMDB ({net('127.9.8.7')})")
        check(net("127.9.1.1") == ("NL", "AS64500", "VolunteerNet"),
              f"GeoLite2's country.iso_code, before a later file ({net('127.9.1.1')})")
        check(net("127.8.1.1") == ("DE", "AS0", None),
              f"ip-location-db's country_code ({net('127.8.1.1')})")
        got = net("127.7.1.1")
        org = got and got[2] or ""
        check(got and got[:2] == ("RU", "AS64510") and 0 < len(org.encode()) <= 127 and
              long_org.startswith(org),
              f"lower-case code upper-cased; a long name cut whole characters ({got})")
        check(net("127.5.1.1") == ("ZZ", "AS0", None) and net("127.6.1.1") == ("ZZ", "AS0", None),
              "a country that is not two letters and ASN 0 are not taken")
        check(net("127.4.4.4") == ("ZZ", "AS0", None), "an address in no file: ZZ / AS0")
    finally:
        c.stop()
    with open(c.log_path, "rb") as f:
        check(b"3 MMDB files" in f.read(), "the start-up line counts the MMDB files")
    broken = os.path.join(tmp, "broken.mmdb")
    with open(broken, "wb") as f:
        f.write(os.urandom(4096))
    for path, want in ((broken, "broken.mmdb"), (os.path.join(tmp, "missing.mmdb"),
                                                   "missing.mmdb: No such file")):
        r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", db.url,
                            "--geoip-mmdb", path], capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and want in r.stderr,
              f"--geoip-mmdb {os.path.basename(path)}: refused at start ({r.returncode} "
              f"{r.stderr.strip()[-100:]})")


def check_store_outage(db, tmp):
    c = Collector(db, tmp, name="outage")
    try:
        db.make_unavailable()
        try:
            m = measurement()
            st, js, hdrs = c.upload(jsonl([m]))
            check(st == 503 and "Retry-After" in hdrs and js.get("error"),
                  f"store unavailable: 503 with Retry-After ({st} {js})")
            # SQLite's reads still work while another process holds the write lock (as they
            # do on a full disk): health tells a monitor what the uploads are getting.
            st, js, _ = c.request("GET", "/api/v1/health")
            check(st == 503 and js and js.get("status") == "unavailable" and
                  "refused the last upload" in js.get("error", ""),
                  f"health after an upload the store refused: 503 ({st} {js})")
        finally:
            db.restore()
        if db.name == "pg":
            # Nobody asks anything yet: the episode refresh, which shares the event loop's
            # connection, must reconnect by itself and take the dirty mark an upload leaves.
            st, js, _ = c.upload(jsonl([measurement()]))
            check(st == 200 and js["accepted"] == 1, f"an upload after the restart ({st})")
            deadline = time.time() + 12
            while time.time() < deadline and db.query("SELECT count(*) FROM episodes_dirty") != [("0",)]:
                time.sleep(0.25)
            check(db.query("SELECT count(*) FROM episodes_dirty") == [("0",)],
                  "the store back: the episode refresh reconnects on its own and catches up")
            db.make_unavailable()  # again, for the questions: the refresh reconnected the above
            db.restore()
        # The questions first: on PostgreSQL the event loop's connection died with the server
        # (the ingest threads' connections are others), and the first read after the restart
        # must not be the one that finds out.
        for path in ("/api/v1/aggregation?by=probe_cc", "/api/v1/episodes",
                     "/api/v1/measurements?limit=1"):
            st, js, _ = c.request("GET", path)
            check(st == 200 and js is not None, f"the store back: {path} answers 200 at once ({st})")
        st, js, _ = c.upload(jsonl([m]))
        check(st == 200 and js["accepted"] == 1, "after the store is back the batch is accepted")
        st, js, _ = c.request("GET", "/api/v1/health")
        check(st == 200 and js["status"] == "ok", f"health ok once an upload is stored ({st} {js})")
    finally:
        c.stop()


def check_two_collectors(db, tmp):
    a = Collector(db, tmp, name="two-a")
    b = Collector(db, tmp, name="two-b")
    try:
        batch = [measurement() for _ in range(200)]
        body = jsonl(batch)
        out = {}

        def up(c, k):
            out[k] = c.upload(body)

        ts = [threading.Thread(target=up, args=(x, k)) for k, x in (("a", a), ("b", b))]
        [t.start() for t in ts]
        [t.join(60) for t in ts]
        ja, jb = out["a"][1], out["b"][1]
        acc = [x == "accepted" for x in statuses(ja)]
        acc_b = [x == "accepted" for x in statuses(jb)]
        check(out["a"][0] == 200 and out["b"][0] == 200 and
              all(x != y for x, y in zip(acc, acc_b)),
              "two collectors, one database, same batch at once: each uid accepted exactly once")
        uids = ",".join(f"'{m['measurement_uid']}'" for m in batch)
        n = db.query(f"SELECT count(*) FROM measurements WHERE uid IN ({uids})")[0][0]
        check(int(n) == 200, "and stored once")
    finally:
        a.stop()
        b.stop()


def check_insert_race(db, tmp):
    """PostgreSQL stores a batch by looking up the uids already stored, then COPYing the rest. A
    uid that another session stores between the two makes the COPY fail (a unique violation): the
    collector must then redo the batch row by row and call that uid a duplicate. The race is made
    for real: a psql session inserts one of the batch's uids and holds its transaction open, the
    collector's COPY waits on it, and the session commits (or rolls back)."""
    if db.name != "pg":
        return
    c = Collector(db, tmp, name="race")
    try:
        for end, asn in (("COMMIT", "AS64998"), ("ROLLBACK", "AS64999")):
            batch = [measurement(probe_asn=asn) for _ in range(50)]
            held = batch[7]
            row = json.dumps(held, separators=(",", ":"))
            now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            ps = subprocess.Popen(["psql", "-h", db.dir, "-U", "postgres", "-d", "vantage", "-qAt",
                                   "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ps.stdin.write("BEGIN;\nINSERT INTO measurements (uid, received_at, "
                           "measurement_start_time, probe_cc, probe_asn, test_name, body) VALUES "
                           f"('{held['measurement_uid']}', '{now}', '{now}', 'IT', '{asn}', "
                           f"'web_connectivity', $b${row}$b$);\nSELECT 'held';\n")
            ps.stdin.flush()
            check(ps.stdout.readline().strip() == "held", f"{end}: a session holds one uid")
            out = {}
            t = threading.Thread(target=lambda: out.update(r=c.upload(jsonl(batch))))
            t.start()
            waiting = False
            deadline = time.time() + 10
            while time.time() < deadline and not waiting:
                waiting = bool(db.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = "
                                        "'Lock' AND query LIKE 'COPY measurements%'"))
                time.sleep(0.05)
            check(waiting, f"{end}: the collector's COPY waits for that session")
            ps.stdin.write(end + ";\n")
            ps.stdin.close()
            ps.wait(20)
            t.join(30)
            st, js, _ = out.get("r", (None, None, None))
            want = ["duplicate" if m is held and end == "COMMIT" else "accepted" for m in batch]
            check(st == 200 and statuses(js) == want,
                  f"{end}: the batch is answered with the held uid "
                  f"{'a duplicate' if end == 'COMMIT' else 'accepted'} ({st})")
            uids = ",".join(f"'{m['measurement_uid']}'" for m in batch)
            n = db.query(f"SELECT count(*) FROM measurements WHERE uid IN ({uids})")[0][0]
            check(int(n) == 50, f"{end}: all 50 stored once ({n})")
            r = db.query(f"SELECT coalesce(sum(n), 0) FROM rollup_hourly WHERE probe_asn = '{asn}'")
            counted = 49 if end == "COMMIT" else 50
            check(int(r[0][0]) == counted,
                  f"{end}: the rollups count the {counted} the collector accepted ({r[0][0]})")
    finally:
        c.stop()


def check_graceful(db, tmp):
    c = Collector(db, tmp, name="graceful")
    batch = [measurement() for _ in range(300)]
    res = {}

    def up():
        try:
            res["r"] = c.upload(jsonl(batch))
        except Exception as e:
            res["e"] = e

    t = threading.Thread(target=up)
    t.start()
    time.sleep(0.05)
    c.proc.send_signal(signal.SIGTERM)
    t.join(30)
    rc = c.stop()
    check(rc == 0, f"SIGTERM: exit status 0 (got {rc})")
    if "r" in res and res["r"][0] == 200:
        check(len(present(db, [m["measurement_uid"] for m in batch])) == len(batch),
              "a batch acknowledged around SIGTERM is stored")
    else:
        check(True, f"the upload raced SIGTERM and was refused ({res}); nothing acknowledged")
    try:
        socket.create_connection(("127.0.0.1", c.port), timeout=2).close()
        check(False, "no longer accepting after SIGTERM")
    except OSError:
        check(True, "no longer accepting after SIGTERM")


def check_concurrency(db, tmp):
    """Many parallel uploads through the ingest threads (group commit): every uid stored exactly
    once, accepted exactly once across all answers (a uid sent twice at once, in different
    batches, is accepted once and a duplicate once), and the rollups count each one once."""
    asn = "AS%d" % random.randint(100000, 999999)  # this check's own buckets
    uploaders, rounds, per = 12, 6, 40
    batches = [[[measurement(probe_asn=asn) for _ in range(per)] for _ in range(rounds)]
               for _ in range(uploaders)]
    # Each uploader also sends, in its last batch, the first batch of its neighbour again.
    for u in range(uploaders):
        batches[u].append(batches[(u + 1) % uploaders][0])
    c = Collector(db, tmp, "--ingest-threads", "3", "--rate", "0", name="concurrency")
    answers, errors = [], []
    lock = threading.Lock()

    def up(u):
        for b in batches[u]:
            try:
                st, js, _ = c.upload(jsonl(b), gz=(u % 2 == 1))
            except (OSError, http.client.HTTPException) as e:
                st, js = None, str(e)
            with lock:
                (answers if st == 200 else errors).append(js if st == 200 else (st, js))

    try:
        ts = [threading.Thread(target=up, args=(u,)) for u in range(uploaders)]
        [t.start() for t in ts]
        [t.join(120) for t in ts]
        check(not errors and len(answers) == uploaders * (rounds + 1),
              f"{len(answers)} parallel uploads answered 200 ({errors[:2]})")
        uids = {m["measurement_uid"] for bs in batches for b in bs for m in b}
        acc = {}
        for js in answers:
            for r in js["results"]:
                acc.setdefault(r["uid"], []).append(r["status"])
        once = all(sorted(v) == (["accepted", "duplicate"] if len(v) == 2 else ["accepted"])
                   for v in acc.values())
        check(set(acc) == uids and once,
              "each uid accepted exactly once over all answers, duplicates otherwise")
        n = db.query(f"SELECT count(*), count(DISTINCT uid) FROM measurements "
                     f"WHERE probe_asn = '{asn}'")[0]
        check(int(n[0]) == len(uids) and int(n[1]) == len(uids),
              f"all {len(uids)} stored exactly once ({n})")
        r = db.query(f"SELECT sum(n) FROM rollup_hourly WHERE probe_asn = '{asn}'")[0]
        check(int(r[0] or 0) == len(uids), f"the rollups counted each once ({r[0]})")
    finally:
        check(c.stop() == 0, "collector exits 0 on SIGTERM")


def check_graceful_inflight(db, tmp):
    """SIGTERM while several batches are in the ingest threads: each acknowledged batch is
    stored, the collector exits 0."""
    c = Collector(db, tmp, "--ingest-threads", "2", "--rate", "0", name="graceful-many")
    batches = [[measurement(test_keys={"pad": "p" * 1000, "i": i}) for i in range(250)]
               for _ in range(6)]
    res = [None] * len(batches)

    def up(i):
        try:
            res[i] = c.upload(jsonl(batches[i]))
        except (OSError, http.client.HTTPException) as e:
            res[i] = e

    ts = [threading.Thread(target=up, args=(i,)) for i in range(len(batches))]
    [t.start() for t in ts]
    # A load balancer's keep-alive connection, open before the signal.
    lb = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    lb.request("GET", "/api/v1/health")
    lb.getresponse().read()
    time.sleep(0.15)
    c.proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    # Draining: health says so on that connection (the balancer takes this collector out), or
    # the connection is gone.
    try:
        lb.request("GET", "/api/v1/health")
        r = lb.getresponse()
        hst, hjs = r.status, json.loads(r.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError) as e:
        hst, hjs = type(e).__name__, None
    lb.close()
    check(hst != 200 and (hjs is None or hjs.get("status") == "shutting_down"),
          f"health while draining: not ok ({hst} {hjs})")
    [t.join(60) for t in ts]
    rc = c.stop(timeout=60)  # it commits what it received first: slow on a loaded machine
    check(rc == 0, f"SIGTERM with uploads in flight: exit status 0 (got {rc})")
    acked = [i for i, r in enumerate(res) if isinstance(r, tuple) and r[0] == 200]
    lost = 0
    for i in acked:
        uids = [m["measurement_uid"] for m in batches[i]]
        lost += len(uids) - len(present(db, uids))
    others = sorted({str(r[0]) if isinstance(r, tuple) else type(r).__name__
                     for i, r in enumerate(res) if i not in acked})
    check(lost == 0, f"{len(acked)} of {len(batches)} batches acknowledged around SIGTERM, "
          f"all stored ({lost} lost); the others refused or cut: {others}")


def check_crash_safety(db, tmp):
    """SIGKILL the collector at random moments during 20 uploads, restart it, re-upload
    everything: every measurement is stored exactly once, nothing acknowledged is lost, and the
    rollups (written in the same transactions) count each one exactly once."""
    rnd = random.Random(int(os.environ.get("VT_SEED", "0")) or None)
    asn = "AS%d" % random.randint(100000, 999999)  # this check's own buckets
    batches = [[measurement(probe_asn=asn, test_keys={"pad": "p" * 2000, "i": i})
                for i in range(150)] for _ in range(20)]
    acked = set()
    kills = 0
    c = Collector(db, tmp, name="crash")
    for batch in batches:
        killer = threading.Timer(rnd.uniform(0.0, 0.15), lambda p=c.proc: p.kill())
        killer.start()
        try:
            st, js, _ = c.upload(jsonl(batch), gz=rnd.random() < 0.5)
            if st == 200:
                acked.update(r["uid"] for r in js["results"] if r["status"] in
                             ("accepted", "duplicate"))
        except (OSError, http.client.HTTPException):
            pass
        killer.join()
        if c.proc.wait(5) is not None:
            kills += 1
        c.stop(signal.SIGKILL)
        c = Collector(db, tmp, name="crash")
    check(kills == 20, f"20 uploads with a SIGKILL each ({len(acked)} uids acknowledged first)")
    lost = set(acked) - present(db, acked)
    check(not lost, f"no acknowledged measurement lost ({len(lost)} lost)")
    for batch in batches:
        st, js, _ = c.upload(jsonl(batch))
        if not (st == 200 and js["rejected"] == 0):
            check(False, f"re-upload after the crashes ({st} {js})")
            break
        for r in js["results"]:
            if r["uid"] in acked and r["status"] != "duplicate":
                check(False, f"acknowledged uid {r['uid']} came back as {r['status']}")
    uids = [m["measurement_uid"] for b in batches for m in b]
    inlist = ",".join(f"'{u}'" for u in uids)
    n = db.query(f"SELECT count(*), count(DISTINCT uid) FROM measurements WHERE uid IN "
                 f"({inlist})")[0]
    check(int(n[0]) == 3000 and int(n[1]) == 3000, f"all 3000 stored exactly once ({n})")
    for table in ("rollup_hourly", "rollup_daily"):
        r = db.query(f"SELECT sum(n) FROM {table} WHERE probe_asn = '{asn}'")[0]
        check(int(r[0] or 0) == 3000, f"{table} counts each of them once ({r[0]})")
    rc = c.stop()
    check(rc == 0, "the last collector exits cleanly")


def check_cli(db, tmp):
    r = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and r.stdout.startswith("vantage-collector "), "--version")
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and "serve --listen" in r.stdout, "--help")
    r = subprocess.run([BIN, "serve", "--db", db.url], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "--listen" in r.stderr, "serve without --listen: usage error 2")
    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", "mysql://x"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "unknown database URL" in r.stderr,
          f"unknown --db: usage error 2 ({r.returncode})")
    r = subprocess.run([BIN, "token", "list", "--db", "mysql://x"], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode == 2 and "unknown database URL" in r.stderr,
          f"token list with an unknown --db: usage error 2 ({r.returncode})")
    for bad in ("proxy.example.org", "10.0.0.0/40", "127.0.0.1,"):
        r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", db.url,
                            "--trusted-proxy", bad], capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and "--trusted-proxy" in r.stderr,
              f"--trusted-proxy {bad}: usage error 2 ({r.returncode} {r.stderr.strip()[-80:]})")
    bad = os.path.join(tmp, "bad-asn.csv")
    with open(bad, "w") as f:
        f.write("1.0.0.0,1.0.0.255,13335,X\n1.0.0.0,zzz,1,Y\n")
    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", db.url, "--geoip-asn",
                        bad], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "bad-asn.csv:2" in r.stderr,
          f"a broken geoip file is named with its line ({r.stderr.strip()})")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
        has_v6 = True
    except OSError:
        has_v6 = False
    if has_v6:
        log = os.path.join(tmp, "v6.log")
        with open(log, "wb") as lf:
            p = subprocess.Popen([BIN, "serve", "--listen", "[::1]:0", "--db", db.url],
                                 stderr=lf)
        port = None
        for _ in range(200):
            with open(log) as f:
                t = f.read()
            if "listening on port" in t:
                port = int(t.split("listening on port ")[1].split()[0])
                break
            time.sleep(0.02)
        try:
            c6 = http.client.HTTPConnection("::1", port, timeout=10)
            c6.request("POST", "/api/v1/check-in", b"{}")
            r6 = c6.getresponse()
            js6 = json.loads(r6.read())
            check(r6.status == 200 and js6["probe_asn"] == "AS0", "serves on IPv6 [::1]")
        except (OSError, TypeError, ValueError) as e:
            check(False, f"serves on IPv6 [::1] ({e})")
        p.send_signal(signal.SIGTERM)
        check(p.wait(10) == 0, "IPv6 collector exits 0")
    for bad in ("nonsense", "127.0.0.1", "8081", "127.0.0.1:99999"):
        r = subprocess.run([BIN, "serve", "--listen", bad, "--db", db.url],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and "--listen" in r.stderr,
              f"bad --listen {bad}: usage error 2 ({r.returncode} {r.stderr.strip()[-60:]})")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % busy.getsockname()[1],
                            "--db", db.url], capture_output=True, text=True, timeout=10)
    finally:
        busy.close()
    check(r.returncode == 1 and "cannot listen" in r.stderr and
          os.strerror(errno.EADDRINUSE) in r.stderr,
          f"a port in use: error 1 with the reason ({r.stderr.strip()})")


# collector/store.c VT_SCHEMA_VERSION (2: the intermittent counts of the rollups and episodes)
SCHEMA_VERSION = 2


def check_schema_version(db, tmp):
    """A database a newer collector used is refused by every command, before anything in it
    changes; an older one (no schema_version table) gets this version's."""
    def run(*args):  # a serve that does not refuse runs on: stopped, and it fails the check
        try:
            return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                                  timeout=10)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, None, "", "still running after 10 s")

    def write(sql):
        if db.name == "sqlite":
            con = sqlite3.connect(db.path, timeout=5)
            con.execute(sql)
            con.commit()
            con.close()
        else:
            db.query(sql)

    def version():
        return [int(r[0]) for r in db.query("SELECT version FROM schema_version")]

    c = Collector(db, tmp, name="schema")
    check(c.stop() == 0 and version() == [SCHEMA_VERSION],
          f"the database records schema version {SCHEMA_VERSION} ({version()})")
    write("UPDATE schema_version SET version = 999")
    write("DROP TABLE rollup_cc_all_daily")  # any open that went on would create it again
    write("DROP INDEX measurements_cc_asn")  # ... and this, which the back end's schema makes
    for cmd in (["serve", "--listen", "127.0.0.1:0"], ["token", "list"], ["token", "create"],
                ["report", "--cc", "IT", "--since", "2026-01-01"], ["delete", "--uid", "x"]):
        r = run(*cmd, "--db", db.url)
        check(r.returncode == 1 and "newer vantage-collector" in r.stderr and
              "schema version 999" in r.stderr,
              f"{' '.join(cmd[:2])} refuses a database of a newer schema "
              f"({r.returncode} {r.stderr.strip()[-120:]})")
    def have(name):
        return int(db.query("SELECT COUNT(*) FROM " + (
            "sqlite_master WHERE name = '%s'" if db.name == "sqlite" else
            "pg_class WHERE relname = '%s'") % name)[0][0])
    check(version() == [999] and have("rollup_cc_all_daily") == 0 and
          have("measurements_cc_asn") == 0,
          "... and changes nothing in it (version, tables and indexes as they were)")
    if db.name == "sqlite":  # SQLite keeps any text in the column: not a version, refused
        write("UPDATE schema_version SET version = 'x1'")
        r = run("delete", "--uid", "x", "--db", db.url)
        check(r.returncode == 1 and "'x1', which is not a version number" in r.stderr and
              db.query("SELECT version FROM schema_version") == [("x1",)] and
              have("measurements_cc_asn") == 0,
              f"a schema version that is not a number is refused, not overwritten "
              f"({r.returncode} {r.stderr.strip()[-120:]})")
    write("UPDATE schema_version SET version = 1")
    write("DROP TABLE schema_version")  # a database from before schema versions
    c = Collector(db, tmp, name="schema")
    st, js, _ = c.request("GET", "/api/v1/health")
    check(c.stop() == 0 and st == 200 and version() == [SCHEMA_VERSION],
          f"a database from before schema versions is opened and given one ({version()})")
    if db.name != "pg":
        return
    # Two collectors opening a new PostgreSQL database at once, the first one's schema slow to
    # commit (here: a synchronous standby that is not there; in life a slow disk): the second
    # waits for it and finds its tables, rather than failing on them (duplicate key in pg_type).
    db.psql_admin("CREATE DATABASE fresh")
    fresh = db.url.replace("///vantage?", "///fresh?")

    def waiting(cond):
        out = subprocess.run(["psql", "-h", db.dir, "-U", "postgres", "-d", "postgres", "-qAtc",
                              "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = 'fresh' "
                              "AND " + cond], capture_output=True, text=True, timeout=30).stdout
        return int(out.strip() or 0)

    def until(cond):
        for _ in range(150):
            if waiting(cond):
                return True
            time.sleep(0.1)
        return False

    opens, seen = [], []
    db.psql_admin("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    db.psql_admin("SELECT pg_reload_conf()")
    try:
        for cond in ("wait_event = 'SyncRep'", "wait_event_type = 'Lock'"):
            opens.append(subprocess.Popen([BIN, "token", "create", "--db", fresh],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
            seen.append(until(cond))
    finally:
        db.psql_admin("ALTER SYSTEM RESET synchronous_standby_names")
        db.psql_admin("SELECT pg_reload_conf()")
    rcs, errs = [], []
    for p in opens:
        try:
            _, e = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            _, e = p.communicate()
        rcs.append(p.returncode)
        errs.append(e.strip()[-160:])
    vs = subprocess.run(["psql", "-h", db.dir, "-U", "postgres", "-d", "fresh", "-qAtc",
                         "SELECT version FROM schema_version"], capture_output=True, text=True,
                        timeout=30).stdout.split()
    check(seen == [True, True] and rcs == [0, 0] and vs == [str(SCHEMA_VERSION)],
          f"two first opens of a new PostgreSQL database at once: both succeed, one version row "
          f"({seen} {rcs} {vs} {errs[1] if len(errs) > 1 else ''})")


def check_relocated(db, tmp):
    """An install under another prefix than the one configured (cmake --install --prefix X,
    make install PREFIX=X DESTDIR=...): X/bin/vantage-collector serves X/share/vantage/web."""
    prefix = os.path.join(tmp, "relocated", "usr")
    os.makedirs(os.path.join(prefix, "bin"))
    web = os.path.join(prefix, "share", "vantage", "web")
    os.makedirs(web)
    marker = "relocated dashboard " + os.urandom(4).hex()
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write(f"<!DOCTYPE html><title>{marker}</title>\n")
    with open(os.path.join(web, "app.css"), "w") as f:
        f.write("body{}\n")
    exe = os.path.join(prefix, "bin", "vantage-collector")
    shutil.copy2(BIN, exe)
    env = {k: v for k, v in os.environ.items() if k != "VANTAGE_WEB_DIR"}
    c = Collector(db, tmp, name="relocated", binary=exe, env=env)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=20)
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        conn.close()
        check(r.status == 200 and marker in body,
              f"a relocated collector serves its dashboard from ../share/vantage/web ({r.status} "
              f"{body[:60]!r})")
        st, _, h = c.request("GET", "/static/app.css")
        check(st == 200, f"... and its static files ({st})")
    finally:
        check(c.stop() == 0, "relocated collector exits 0 on SIGTERM")


def check_control(db, tmp):
    """POST /api/v1/control against local servers the test starts."""
    import http.server

    chain_hits = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/chain/"):
                # A slow redirect chain: every hop answers after 0.7 s (inside a step's
                # timeout), ten hops in all.
                n = int(self.path.split("/")[2])
                chain_hits.append(n)
                time.sleep(0.7)
                self.send_response(302)
                self.send_header("Location", f"/chain/{n - 1}" if n > 0 else "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"<html><head><title>control page</title></head><body>hi</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts (kernel backlog) and never answers
    web = f"http://127.0.0.1:{srv.server_address[1]}/"
    strict = Collector(db, tmp, name="control-strict")
    off = Collector(db, tmp, "--control-max", "0", name="control-off")
    lab = Collector(db, tmp, "--allow-private-control", "--control-max", "1",
                    "--control-timeout", "2", name="control-lab")
    try:
        def ctl(c, obj, raw=None):
            return c.request("POST", "/api/v1/control",
                             raw if raw is not None else json.dumps(obj).encode(),
                             {"Content-Type": "application/json"}, timeout=30)

        st, js, _ = ctl(off, {"input": web, "kind": "web"})
        check(st == 404 and "control" in js.get("error", ""),
              f"--control-max 0: the endpoint is off, 404 ({st} {js})")
        st, js, _ = ctl(lab, {"input": web, "kind": "web"})
        if st in (501, 503) and js and "kind" in js.get("error", "") or st == 501:
            print(f"skip: control measurements not available in this build ({st} {js})")
            return
        check(st == 200 and js["kind"] == "web" and isinstance(js.get("test_keys"), dict),
              f"control of a local web page with --allow-private-control ({st})")
        tk = js.get("test_keys", {}) if js else {}
        check(tk.get("http_status") == 200 and tk.get("title") == "control page" and
              tk.get("failure") is None and tk.get("requests"),
              f"the control's test_keys describe the page ({tk.get('http_status')}, "
              f"{tk.get('title')!r}, {tk.get('failure')})")
        for inp, kind in ((web, "web"), (f"127.0.0.1:{srv.server_address[1]}", "endpoint"),
                          ("http://10.1.2.3/", "web"), ("http://[::1]:1/", "web"),
                          ("169.254.1.1:80", "endpoint"), ("http://localhost:1/", "web"),
                          # every way of writing 127.0.0.1 that the measurement would read so
                          ("http://2130706433:1/", "web"), ("http://0x7f.1:1/", "web"),
                          ("http://127.1:1/", "web"), ("http://0177.0.0.1:1/", "web"),
                          ("http://%31%32%37.0.0.1:1/", "web"), ("http://[::1%25lo]:1/", "web"),
                          ("http://localhost.:1/", "web"), ("http://[::127.0.0.1]:1/", "web"),
                          ("2130706433:80", "endpoint"), ("127.1:80", "endpoint"),
                          ("http://127.0.0.1:1", "endpoint")):
            st, js, _ = ctl(strict, {"input": inp, "kind": kind})
            check(st == 403 and js.get("error"), f"private destination {inp} refused: 403 ({st})")
        for body, what in ((b"nope", "not JSON"), (b"{}", "no input"),
                           (json.dumps({"input": web, "kind": "ftp"}).encode(), "bad kind"),
                           (json.dumps({"input": "ftp://x/", "kind": "web"}).encode(), "not http"),
                           (json.dumps({"input": "hostonly", "kind": "endpoint"}).encode(),
                            "endpoint without port"),
                           (json.dumps({"input": "example.org:0", "kind": "endpoint"}).encode(),
                            "port 0"),
                           (json.dumps({"input": "http://example.org:0/"}).encode(), "URL port 0"),
                           (json.dumps({"input": "http://example.org:99999999999/"}).encode(),
                            "URL port too large"),
                           (json.dumps({"input": "http://example.org/\n2026-11-29 POST "
                                        "/api/v1/measurements 200"}).encode(),
                            "a newline (a forged log line)"),
                           (json.dumps({"input": "http://example.org/a b"}).encode(), "a space")):
            st, js, _ = ctl(strict, None, raw=body)
            check(st == 400 and js.get("error"), f"control, {what}: 400 ({st})")
        # Time cap and concurrency: a server that never answers holds the only slot.
        hung = f"http://127.0.0.1:{hang.getsockname()[1]}/"
        res = {}
        t = threading.Thread(target=lambda: res.setdefault("r", ctl(lab, {"input": hung,
                                                                          "kind": "web"})))
        t0 = time.time()
        t.start()
        time.sleep(0.3)
        st, js, _ = ctl(lab, {"input": web, "kind": "web"})
        check(st == 429, f"control beyond its concurrency limit: 429 ({st})")
        t.join(20)
        st, js = res.get("r", (None, None))[:2]
        took = time.time() - t0
        check((st == 504 or st == 200 and js["test_keys"].get("failure")) and took < 4,
              f"control of a server that never answers ends within the 2 s cap: a timeout "
              f"failure or 504 ({st}, {took:.1f}s, {js and js.get('test_keys', js).get('failure')})")
        # A chain of slow redirects ends with the run's time cap: its slot is free again soon
        # after the caller's answer (each hop used to start with a fresh timeout, holding the
        # only slot for ten hops after the 504).
        t = threading.Thread(target=lambda: res.__setitem__(
            "c", ctl(lab, {"input": web + "chain/9", "kind": "web"})))
        t0 = time.time()
        t.start()
        t.join(10)
        st, js = res.get("c", (None, None))[:2]
        check(st in (200, 504) and time.time() - t0 < 4,
              f"a slow redirect chain is answered within the cap ({st}, {time.time() - t0:.1f}s)")
        time.sleep(max(0.0, t0 + 3.0 - time.time()))
        st, js, _ = ctl(lab, {"input": web, "kind": "web"})
        check(st == 200, f"the chain's slot is free 3 s after it began: 200 ({st}, "
                         f"{len(chain_hits)} hops served)")
        check(len(chain_hits) <= 4, f"the chain stopped at the cap: {len(chain_hits)} hops")
        st, _, _ = lab.request("GET", "/api/v1/health")
        check(st == 200, "collector serving after control requests")
        # One client holds at most half of the slots: with --control-max 2, a second request
        # from the client whose run hangs is refused, another client's is measured.
        share = Collector(db, tmp, "--allow-private-control", "--control-max", "2",
                          "--control-timeout", "2", name="control-share")
        try:
            t = threading.Thread(target=lambda: res.__setitem__(
                "h", ctl(share, {"input": hung, "kind": "web"})))
            t.start()
            time.sleep(0.3)
            body = json.dumps({"input": web, "kind": "web"}).encode()
            hdr = {"Content-Type": "application/json"}
            st1, js1, h1 = share.request("POST", "/api/v1/control", body, hdr, timeout=30)
            st2, js2, _ = share.request("POST", "/api/v1/control", body, hdr,
                                        source=PRIVATE_ADDR, timeout=30)
            t.join(20)
            check(st1 == 429 and "share" in js1.get("error", "") and "Retry-After" in h1 and
                  st2 == 200 and js2["test_keys"].get("failure") is None,
                  f"one client's share of control slots: its second run 429, another "
                  f"client's 200 ({st1} {js1}, {st2})")
        finally:
            check(share.stop(timeout=20) == 0, "the share collector exits 0")
    finally:
        rcs = (strict.stop(), lab.stop(timeout=20), off.stop())
        srv.shutdown()
        hang.close()
    check(rcs == (0, 0, 0), f"SIGTERM with a control run in flight: all exit 0 ({rcs})")


# ---------------------------------------------------------------- the SNI test server


def sni_port(c):
    """The SNI test server's port, from its startup line (port 0 picked one)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(c.log_path, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                if "SNI test server on port " in line:
                    return int(line.split("SNI test server on port ")[1].split()[0])
        time.sleep(0.02)
    raise RuntimeError("no SNI test server line in the log")


def tls_client(sni, host="127.0.0.1"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def sni_get(port, sni, path, method="GET", host="127.0.0.1", source=None, raw=None,
            timeout=10):
    """One request over TLS with this SNI (None: no SNI): status, headers, body, the server's
    DER certificate, the TLS version."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    t = tls_client(sni).wrap_socket(s, server_hostname=sni)
    try:
        der, version = t.getpeercert(binary_form=True), t.version()
        t.sendall(raw if raw is not None else
                  f"{method} {path} HTTP/1.1\r\nHost: {sni or host}\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = t.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    finally:
        t.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/1.1 ") else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body, der, version


def spki_pin(der):
    """sha256//BASE64 of the certificate's SubjectPublicKeyInfo, as libcurl pins keys."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except ImportError:
        pem = subprocess.run(["openssl", "x509", "-inform", "der", "-pubkey", "-noout"],
                             input=der, capture_output=True, check=True).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem,
                              capture_output=True, check=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def closed_soon(s, wait=2.0):
    """The server closed this socket (EOF or reset) within wait seconds."""
    s.settimeout(wait)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def check_sni_test(db, tmp):
    """The SNI test server (docs/api.md): any name, exactly N bytes, its errors, hostile clients,
    the connection cap, the check-in's endpoint and pin, an operator's certificate, the rate
    limit, and no client address in the log."""
    if db.name != "sqlite":
        print("skip: the SNI test server does not touch the store (run with sqlite)")
        return
    c = Collector(db, tmp, "--sni-test-listen", "127.0.0.1:0", "--sni-test-burst", "1000",
                  name="sni")
    try:
        port = sni_port(c)
        # 70 idle connections at once: 64 are kept, the rest closed at accept.
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(70)]
        time.sleep(0.5)
        # All at once (the 10 s handshake deadline would close the others while waiting on each).
        readable = select.select(idle, [], [], 0)[0]
        shut = [s in readable and closed_soon(s, 0.5) for s in idle]
        check(shut == [False] * 64 + [True] * 6,
              f"70 idle connections: the first 64 kept, the last 6 closed at once "
              f"({shut.count(True)} closed, at {[i for i, x in enumerate(shut) if x]})")
        for s in idle:
            s.close()
        time.sleep(0.3)
        st, _, body, _, _ = sni_get(port, "x.com", "/vantage/sni-test?bytes=10")
        check(st == 200 and len(body) == 10, f"after they closed, a fresh request is served ({st})")
        # One that never sends anything: closed by the handshake deadline (checked at the end).
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        silent_t0 = time.time()

        # (a) any name, and none; TLS 1.2 and 1.3
        certs = set()
        for sni in ("x.com", "example.com", None):
            st, h, body, der, ver = sni_get(port, sni, "/vantage/sni-test?bytes=100",
                                            source=PRIVATE_ADDR)
            certs.add(der)
            check(st == 200 and len(body) == 100 and ver in ("TLSv1.2", "TLSv1.3"),
                  f"SNI {sni}: handshake and 100 bytes ({st}, {len(body)}, {ver})")
        check(len(certs) == 1, "the same certificate whatever the name")
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = tls_client("x.com")
            ctx.minimum_version = ctx.maximum_version = v
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                 server_hostname="x.com") as t:
                check(t.version() == v.name.replace("_", "."), f"{v.name} handshake")
        ctx = tls_client("x.com")
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                             server_hostname="x.com") as t:
            check(t.selected_alpn_protocol() == "http/1.1", "ALPN: http/1.1 chosen over h2")
        ctx = tls_client("x.com")
        ctx.set_alpn_protocols(["h2"])
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                             server_hostname="x.com") as t:
            check(t.selected_alpn_protocol() is None, "ALPN h2 only: the handshake goes on "
                  "without ALPN")

        # (b) exactly N bytes, incompressible, with the promised headers
        for n in (1, 1000, 65536, 65537, 300001, 1048576):
            st, h, body, _, _ = sni_get(port, "x.com", f"/vantage/sni-test?bytes={n}&x=1")
            check(st == 200 and len(body) == n and h.get("content-length") == str(n),
                  f"bytes={n}: exactly {n} bytes ({st}, {len(body)})")
        st, h, body, _, _ = sni_get(port, "example.com", "/vantage/sni-test")
        check(st == 200 and len(body) == 131072 and
              h.get("content-type") == "application/octet-stream" and
              h.get("cache-control") == "no-store" and h.get("connection") == "close",
              f"no bytes=: 131072 bytes, octet-stream, no-store, close ({st}, {len(body)}, {h})")
        check(len(zlib.compress(body)) > len(body) * 0.99, "the bytes do not compress")
        curl = shutil.which("curl")
        if curl:
            r = subprocess.run([curl, "-sk", "--resolve", f"x.com:{port}:127.0.0.1", "-o",
                                os.devnull, "-w", "%{http_code} %{size_download}",
                                f"https://x.com:{port}/vantage/sni-test?bytes=4242"],
                               capture_output=True, text=True, timeout=20)
            check(r.stdout == "200 4242", f"curl -k --resolve x.com: 200, 4242 bytes ({r.stdout})")

        # (c) errors
        for path, method, want in (("/other", "GET", 404), ("/vantage/sni-test/x", "GET", 404),
                                   ("/vantage/sni-test?bytes=0", "GET", 400),
                                   ("/vantage/sni-test?bytes=1048577", "GET", 400),
                                   ("/vantage/sni-test?bytes=abc", "GET", 400),
                                   ("/vantage/sni-test?bytes=-1", "GET", 400),
                                   ("/vantage/sni-test?bytes=5&bytes=6", "GET", 400),
                                   ("/vantage/sni-test", "POST", 400),
                                   ("/vantage/sni-test", "HEAD", 400)):
            st, h, body, _, _ = sni_get(port, "x.com", path, method)
            check(st == want and int(h.get("content-length", -1)) == len(body) and
                  body.endswith(b"\n") and len(body) < 200,
                  f"{method} {path}: {want} with a short text body ({st}, {body[:60]})")
        st, _, _, _, _ = sni_get(port, "x.com", None, raw=b"garbage\r\n\r\n")
        check(st == 400, f"a garbage request line: 400 ({st})")
        big = b"GET /vantage/sni-test HTTP/1.1\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"
        st, _, _, _, _ = sni_get(port, "x.com", None, raw=big, source=PRIVATE_ADDR)
        check(st == 400, f"a 10 KB header: 400 ({st})")

        # (d) hostile clients
        with socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=(PRIVATE_ADDR, 0)) as s:
            s.sendall(b"GET /vantage/sni-test HTTP/1.1\r\nHost: x\r\n\r\n")
            check(closed_soon(s), "plain HTTP to the TLS port: closed")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = tls_client("x.com").wrap_bio(incoming, outgoing, server_hostname="x.com")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(hello[:len(hello) // 2])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(hello[:len(hello) // 2])
            s.shutdown(socket.SHUT_WR)
            check(closed_soon(s), "a truncated ClientHello, then EOF: closed")
        for _ in range(3):  # a client that reads 10 bytes of 1 MiB and goes away
            t = tls_client("x.com").wrap_socket(
                socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="x.com")
            t.sendall(b"GET /vantage/sni-test?bytes=1048576 HTTP/1.1\r\nHost: x.com\r\n\r\n")
            got = t.recv(10)
            t.close()
        check(len(got) > 0, "a reader that stops after 10 bytes and disconnects")
        st, _, body, der, _ = sni_get(port, "x.com", "/vantage/sni-test?bytes=77")
        check(st == 200 and len(body) == 77, "still serving after the hostile clients")
        st, js, _ = c.request("GET", "/api/v1/health")
        check(st == 200 and js["status"] == "ok", f"the collector's health after it all ({st})")

        # (e) check-in: the endpoint with the port bound, the pin of the certificate presented
        st, js, _ = c.request("POST", "/api/v1/check-in", b"{}")
        sn = (js or {}).get("sni_test", {})
        check(st == 200 and sn.get("endpoint") == f"127.0.0.1:{port}",
              f"check-in announces the endpoint with the real port ({sn})")
        check(sn.get("pin") == spki_pin(der), f"check-in's pin is the presented key's ({sn})")

        time.sleep(max(0.0, 10.8 - (time.time() - silent_t0)))
        check(closed_soon(silent, 1.0), "a connection that sends nothing: closed after 10 s")
        silent.close()

        # SIGTERM while a client sits on a download it does not read: no long wait.
        t = tls_client("x.com").wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="x.com")
        t.sendall(b"GET /vantage/sni-test?bytes=1048576 HTTP/1.1\r\nHost: x.com\r\n\r\n")
        t0 = time.time()
    finally:
        rc = c.stop()
    took = time.time() - t0
    t.close()
    check(rc == 0 and took < 3, f"SIGTERM with a download stalled: exit 0 in {took:.1f} s")
    with open(c.log_path, "rb") as f:
        log = f.read().decode(errors="replace")
    check(PRIVATE_ADDR not in log, "the client's address is not in the log")
    lines = [ln for ln in log.splitlines() if "127.0.0.1" in ln]
    check(len(lines) == 1 and "SNI test server on port" in lines[0],
          f"127.0.0.1 only in the listen line ({lines})")

    # (f) an operator's certificate and public address; the rate limit
    cert, key = os.path.join(tmp, "sni-cert.pem"), os.path.join(tmp, "sni-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj",
                    "/CN=sni-test-fixture", "-days", "2"], check=True, capture_output=True)
    with open(cert) as f:
        want_der = ssl.PEM_cert_to_DER_cert(f.read())
    c = Collector(db, tmp, "--sni-test-listen", "127.0.0.1:0", "--sni-test-cert", cert,
                  "--sni-test-key", key, "--sni-test-public", "sni.example.net:443",
                  "--sni-test-rate", "1", "--sni-test-burst", "3", name="sni-cert")
    try:
        port = sni_port(c)
        codes = []
        for _ in range(4):
            st, h, _, der, _ = sni_get(port, "x.com", "/vantage/sni-test?bytes=10")
            codes.append(st)
        check(der == want_der, "--sni-test-cert: that certificate is presented")
        check(codes == [200, 200, 200, 429] and int(h.get("retry-after", 0)) >= 1,
              f"rate limit: burst 3, then 429 with Retry-After ({codes})")
        st, js, _ = c.request("POST", "/api/v1/check-in", b"{}")
        check(js.get("sni_test") == {"endpoint": "sni.example.net:443", "pin": spki_pin(want_der)},
              f"check-in: --sni-test-public and the given certificate's pin ({js})")
    finally:
        check(c.stop() == 0, "exits 0 on SIGTERM (under ASan: nothing leaked)")

    # The advertised endpoint from the listen address: IPv6 in brackets, none for [::].
    for i, (listen, want) in enumerate((("[::1]:0", "[::1]:{}"), ("[::]:0", None),
                                        ("0.0.0.0:0", None))):
        try:
            c = Collector(db, tmp, "--sni-test-listen", listen, name=f"sni-addr{i}")
        except RuntimeError:
            check(False, f"--sni-test-listen {listen}: starts")
            continue
        try:
            port = sni_port(c)
            host = "::1" if "::" in listen else "127.0.0.1"
            st, _, body, _, _ = sni_get(port, "x.com", "/vantage/sni-test?bytes=3", host=host)
            js = c.request("POST", "/api/v1/check-in", b"{}")[1]
            got = js.get("sni_test", {}).get("endpoint")
            check(st == 200 and got == (want.format(port) if want else None),
                  f"--sni-test-listen {listen}: serves, check-in endpoint {got}")
        finally:
            check(c.stop() == 0, f"--sni-test-listen {listen}: exits 0 on SIGTERM")

    # Usage errors
    for args, what in ((["--sni-test-cert", cert], "a certificate without a key"),
                       (["--sni-test-cert", cert, "--sni-test-key", cert], "a key that is not one"),
                       (["--sni-test-listen", "127.0.0.1"], "no port"),
                       (["--sni-test-public", "x:443"], "--sni-test-public alone")):
        a = args if "--sni-test-listen" in args or args[0] == "--sni-test-public" else \
            ["--sni-test-listen", "127.0.0.1:0"] + args
        r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", db.url] + a,
                           capture_output=True, text=True, timeout=20)
        check(r.returncode in (1, 2) and ("sni-test" in r.stderr or "SNI test" in r.stderr),
              f"{what}: refused ({r.returncode}: {r.stderr.strip()[-90:]})")


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    only = sys.argv[2:]  # optional subset of sections
    if not os.path.exists(BIN):
        print(f"skip: {BIN} not built")
        return 77
    tmp = tempfile.mkdtemp(prefix=f"vt-collector-{kind}-")
    db = None
    try:
        db = SqliteDB(tmp) if kind == "sqlite" else PgDB(tmp)
        sections = [("uploads", None), ("uploads-nothreads", None), ("slow", None),
                    ("tokens", check_tokens),
                    ("rate", check_rate_limit), ("privacy", check_privacy_and_checkin),
                    ("proxy", check_proxy), ("mmdb", check_mmdb),
                    ("geoip-reload", check_geoip_reload),
                    ("outage", check_store_outage), ("two", check_two_collectors),
                    ("race", check_insert_race),
                    ("graceful", check_graceful), ("concurrency", check_concurrency),
                    ("graceful-many", check_graceful_inflight), ("crash", check_crash_safety),
                    ("cli", check_cli), ("schema", check_schema_version),
                    ("relocated", check_relocated),
                    ("control", check_control), ("sni_test", check_sni_test)]
        for name, fn in sections:
            if only and name not in only:
                continue
            print(f"== {name} ({kind})", flush=True)
            if name in ("uploads", "uploads-nothreads", "slow"):
                extra = (("--timeout", "2") if name == "slow" else
                         ("--ingest-threads", "0") if name == "uploads-nothreads" else ())
                c = Collector(db, tmp, *extra, name=name)
                try:
                    if name.startswith("uploads"):
                        check_uploads(db, c)
                    else:
                        check_slow_clients(c, 2)
                finally:
                    check(c.stop() == 0, "collector exits 0 on SIGTERM")
            else:
                fn(db, tmp)
    finally:
        if db:
            db.close()
        if FAILURES:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
