"""Rollups, detection and the query API against a running vantage-collector, on SQLite or
PostgreSQL (argv[1]): the same seeded data (agg_seed.py) must give the same answers on both.
Run by test_aggregation_sqlite.sh and test_aggregation_pg.sh."""
import calendar
import collections
import csv
import io
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agg_seed  # noqa: E402

BUILD = os.environ.get("VT_BUILD_DIR", "build")
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


class Sqlite:
    name = "sqlite"

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "c.db")
        self.url = "sqlite:" + self.path

    def execute(self, sql):
        c = sqlite3.connect(self.path, timeout=5)
        try:
            r = c.execute(sql).fetchall()
            c.commit()
            return r
        finally:
            c.close()

    def close(self):
        pass


class Pg:
    name = "pg"
    BINDIR = "/usr/lib/postgresql/15/bin"

    def __init__(self, tmp):
        if not os.path.exists(os.path.join(self.BINDIR, "initdb")):
            print("skip: PostgreSQL 15 is not installed (scripts/deps.sh lab)")
            sys.exit(77)
        if os.geteuid() != 0:
            print("skip: initdb runs as user postgres (needs root)")
            sys.exit(77)
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(tmp, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.pg("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.pg("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                f"-k {self.dir} -c listen_addresses='' -c fsync=off", "start")
        self.psql("postgres", "CREATE DATABASE vantage")
        self.url = f"postgresql:///vantage?host={self.dir}&user=postgres"

    def pg(self, tool, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(self.BINDIR, tool)] +
                       list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)

    def psql(self, db, sql):
        out = subprocess.run(["psql", "-h", self.dir, "-U", "postgres", "-d", db, "-qAtF", "\t",
                              "-c", sql], check=True, capture_output=True, text=True,
                             timeout=30).stdout
        return [tuple(line.split("\t")) for line in out.splitlines()]

    def execute(self, sql):
        return self.psql("vantage", sql)

    def close(self):
        try:
            self.pg("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except Exception:
            pass


def start(db, rate=("--rate", "0")):
    p = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db", db.url] +
                         list(rate), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"listening on port (\d+)", line)
        if m:
            return p, "http://127.0.0.1:%s" % m.group(1)
        if not line and p.poll() is not None:
            break
    p.kill()
    raise SystemExit("FAIL collector did not start")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()


def get(base, path, params=None, accept=None):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def getj(base, path, params=None):
    st, _, body = get(base, path, params)
    return st, json.loads(body)


def restart_after(db, proc, *sql):
    """Stops the collector, changes the database with sql (an older schema), starts it again;
    returns the new process and base URL, and what it answers at once: the per-network
    aggregation (status, body) and the episodes (body)."""
    stop(proc)
    for q in sql:
        db.execute(q)
    proc, base = start(db)
    st, agg = getj(base, "/api/v1/aggregation", {"by": "probe_asn,platform",
                                                  "since": "2026-11-01"})
    _, eps = getj(base, "/api/v1/episodes", {"since": "2026-11-01"})
    return proc, base, st, agg, eps


def expected(ms):
    """Per (asn, platform) counts computed straight from the seed."""
    out = collections.defaultdict(lambda: collections.Counter())
    anomalies = {"dns_blocking", "tcp_blocking", "tls_blocking", "http_blocking", "throttled"}
    for m in ms:
        tk = m["test_keys"]
        c = out[(m["probe_asn"], m["annotations"]["platform"])]
        c["measurement_count"] += 1
        c["ok_count"] += tk["verdict"] == "ok"
        c["anomaly_count"] += tk["verdict"] in anomalies
        c["confirmed_count"] += bool(tk["blocking_confirmed"])
        c["failure_count"] += tk["verdict"] in ("down", "probe_offline", "inconclusive")
        c["intermittent_count"] += bool(tk.get("evidence", {}).get("intermittent"))
    return out


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    tmp = tempfile.mkdtemp(prefix="vt-agg-")
    db = Pg(tmp) if kind == "pg" else Sqlite(tmp)
    proc = None
    try:
        proc, base = start(db)
        ms = agg_seed.measurements()
        agg_seed.upload(base, ms)
        agg_seed.upload(base, ms[:500])  # duplicates must not count twice
        total = int(db.execute("SELECT SUM(n) FROM rollup_hourly")[0][0])
        check(total == len(ms), "rollups count every accepted measurement once (%d)" % total)
        total = int(db.execute("SELECT SUM(n) FROM rollup_daily")[0][0])
        check(total == len(ms), "daily rollups too (%d)" % total)

        st, a = getj(base, "/api/v1/aggregation", {"probe_cc": "PK", "by": "probe_asn,platform",
                                                    "since": "2026-11-01"})
        check(st == 200 and a["by"] == ["probe_asn", "platform"], "aggregation by two dimensions")
        exp = expected(ms)
        got = {(r["probe_asn"], r["platform"]): r for r in a["results"]}
        check(set(got) == set(exp), "one row per network and platform")
        same = all(got[k][f] == v for k, c in exp.items() for f, v in c.items() if k in got)
        check(same, "OONI counts equal the seed's (measurement, ok, anomaly, confirmed, failure)")
        est = got[("AS17557", "whatsapp")]["probes"]
        check(abs(est - 288) <= 0.3 * 288,
              "distinct probe runs over 3 days: KMV estimate %d of 288 (within 30%%)" % est)
        st, a = getj(base, "/api/v1/aggregation", {"probe_asn": "AS17557", "platform": "whatsapp",
                                                    "by": "day", "grain": "hour",
                                                    "since": "2026-11-01"})
        check(len(a["results"]) == 72 and all(r["probes"] == 4 for r in a["results"]),
              "distinct probe runs per hour exact (4)")

        # Quantiles from merged histograms: within one bin of the exact value.
        lat = sorted(1000 * (m["test_keys"]["tcp_connect"][0]["t"] - 1.0) for m in ms
                     if m["probe_asn"] == "AS17557")
        exact = lat[math.ceil(0.5 * len(lat)) - 1]
        st, a = getj(base, "/api/v1/aggregation", {"probe_asn": "AS17557", "since": "2026-11-01"})
        p50 = a["results"][0]["latency_ms_p50"]
        binw = 60000 ** (1 / 64)
        check(exact / binw <= p50 <= exact * binw,
              "latency median %.1f within one bin of the exact %.1f" % (p50, exact))
        bps = sorted(m["test_keys"]["throughput_bps"] for m in ms if m["probe_asn"] == "AS23674"
                     and m["annotations"]["platform"] == "youtube")
        exact = bps[math.ceil(0.9 * len(bps)) - 1]
        st, a = getj(base, "/api/v1/aggregation", {"probe_asn": "AS23674", "platform": "youtube",
                                                    "since": "2026-11-01"})
        p90 = a["results"][0]["throughput_bps_p90"]
        binw = 1e7 ** (1 / 64)
        check(exact / binw <= p90 <= exact * binw,
              "throughput p90 %.0f within one bin of the exact %.0f" % (p90, exact))

        st, a = getj(base, "/api/v1/aggregation", {"probe_asn": "AS17557", "platform": "whatsapp",
                                                    "by": "day", "grain": "hour",
                                                    "since": "2026-11-21T06:00:00Z",
                                                    "until": "2026-11-21T08:00:00Z"})
        check([r["day"] for r in a["results"]] == ["2026-11-21 06:00:00", "2026-11-21 07:00:00"],
              "hour grain and since/until bounds")
        st, a = getj(base, "/api/v1/aggregation", {"by": "day", "grain": "week",
                                                    "since": "2026-11-01"})
        check([r["day"] for r in a["results"]] == ["2026-11-16"] and
              a["results"][0]["measurement_count"] == len(ms), "week grain starts on Monday")

        st, h, body = get(base, "/api/v1/aggregation", {"by": "day,verdict",
                                                         "probe_asn": "AS17557",
                                                         "since": "2026-11-01", "format": "csv"})
        lines = body.strip().split("\r\n")
        check(st == 200 and h.get("Content-Type", "").startswith("text/csv") and
              lines[0].startswith("day,verdict,measurement_count,ok_count,anomaly_count"),
              "CSV with a header row")
        check("2026-11-21,dns_blocking,48,0,48" in body, "CSV rows by day and verdict")
        st, h, body = get(base, "/api/v1/aggregation", {"by": "target", "since": "2026-11-01"},
                          accept="text/csv")
        check(st == 200 and "<script>alert(1)</script>" in body and body.startswith("target,"),
              "Accept: text/csv gives CSV too")

        total = int(db.execute("SELECT SUM(n) FROM rollup_cc_hourly")[0][0])
        check(total == len(ms), "per-country hourly rollups count every measurement (%d)" % total)
        total = int(db.execute("SELECT SUM(n) FROM rollup_cc_daily")[0][0])
        check(total == len(ms), "per-country daily rollups too (%d)" % total)
        total = int(db.execute("SELECT SUM(n) FROM rollup_cc_all_daily")[0][0])
        check(total == len(ms), "per-country daily totals too (%d)" % total)
        st, a = getj(base, "/api/v1/aggregation", {"by": "probe_cc", "since": "2026-11-01"})
        check(st == 200 and sum(r["measurement_count"] for r in a["results"]) == len(ms),
              "country list from the per-country buckets")

        # Episodes are re-detected by the collector's timer (every 2 s) for the series the
        # uploads marked dirty: wait for it, bounded.
        t0 = time.time()
        while True:
            st, e = getj(base, "/api/v1/episodes", {"probe_cc": "PK", "since": "2026-11-01"})
            dirty = int(db.execute("SELECT COUNT(*) FROM episodes_dirty")[0][0])
            if (st == 200 and len(e["results"]) >= 3 and dirty == 0) or time.time() - t0 > 15:
                break
            time.sleep(0.2)
        check(time.time() - t0 < 15, "episodes appear after the refresh timer (%.1f s)" %
              (time.time() - t0))
        check(dirty == 0, "no series left dirty after the refresh")
        eps = {(x["kind"], x["probe_asn"], x["target"]): x for x in e["results"]}
        check(st == 200 and len(e["results"]) == 3, "three episodes (got %d)" % len(e["results"]))
        b = eps.get(("blocking", "AS17557", "whatsapp-web"))
        check(b is not None and b["start"] == "2026-11-21 06:00:00" and
              b["end"] == "2026-11-21 18:00:00" and b["confirmed"] and
              b["evidence"]["max_probes"] == 4 and b["evidence"]["top_verdict"] == "dns_blocking",
              "whatsapp block: start, end, confirmed, 4 probes, dns")
        s = eps.get(("slowdown", "AS23674", "youtube-web"))
        check(s is not None and s["start"] == "2026-11-22 00:00:00" and
              s["end"] == "2026-11-22 08:00:00" and s["evidence"]["policer_bps"] == 128000 and
              s["evidence"]["extreme"] and s["scope"] == "targeted",
              "youtube slowdown: times, 128 kbit/s policer, extreme, targeted")
        o = eps.get(("outage", "AS23674", None))
        check(o is not None and o["start"] == "2026-11-21 02:00:00" and
              o["end"] == "2026-11-21 04:00:00", "outage on AS23674 with canaries failing")
        # Its dominant verdict is what the canaries said (agg_seed: "down"), not a made-up one.
        check(o is not None and o["evidence"]["top_verdict"] == "down" and
              o["evidence"]["failures"] == 6,
              "outage evidence: the canaries' own verdict (%r)" %
              (o and o["evidence"]["top_verdict"]))
        check(not any(x["target"] == "signal-web" for x in e["results"]),
              "one probe alone cannot make a block (signal-web)")
        check(not any(x["kind"] == "blocking" and x["probe_asn"] == "AS23674"
                      for x in e["results"]), "outage hours are not called blocking")
        # The CSV holds what the JSON says, the evidence's counts included: its "confirmed" (a
        # count) used to collide with the episode's boolean and was lost, as were the outage's
        # failures, the category and "extreme".
        st, _, body = get(base, "/api/v1/episodes", {"since": "2026-11-01", "format": "csv"})
        rows = {(r["kind"], r["probe_asn"]): r for r in csv.DictReader(io.StringIO(body))}
        rb, ro = rows.get(("blocking", "AS17557"), {}), rows.get(("outage", "AS23674"), {})
        rs = rows.get(("slowdown", "AS23674"), {})
        check(st == 200 and rb.get("confirmed") == "true" and
              rb.get("confirmed_measurements") == str(b["evidence"]["confirmed"]) == "48" and
              rb.get("category") == "messaging" and
              ro.get("failures") == str(o["evidence"]["failures"]) != "0" and
              rs.get("extreme") == "true",
              "episodes CSV: confirmed_measurements, failures, category, extreme (%r)" %
              body[:400])
        # The answer says which hours it counted: until 03:30 counts the 03:00 bucket whole
        # (2 hours x 3 probes x 4 targets of AS23674), and says so rather than 03:30.
        st, r = getj(base, "/api/v1/aggregation", {"by": "probe_asn", "probe_asn": "AS23674",
                                                    "since": "2026-11-21T02:30:00Z",
                                                    "until": "2026-11-21T03:30:00Z"})
        check(st == 200 and r.get("since") == "2026-11-21 02:00:00" and
              r.get("until") == "2026-11-21 04:00:00" and
              [x["measurement_count"] for x in r["results"]] == [24],
              "aggregation echoes the whole hours it counted (%r)" % {k: r.get(k) for k in
                                                                      ("since", "until")})
        st, r = getj(base, "/api/v1/aggregation", {"by": "probe_asn"})
        check(st == 200 and "since" in r and r["since"] is None and r["until"] is None,
              "aggregation without a range: since and until null")
        # The episodes answer names the range it covers, the default 30 days included.
        st, r = getj(base, "/api/v1/episodes", {"since": "2026-11-01", "until": "2026-12-01"})
        check(st == 200 and r.get("since") == "2026-11-01 00:00:00" and
              r.get("until") == "2026-12-01 00:00:00", "episodes echo since/until")
        st, r = getj(base, "/api/v1/episodes", {"kind": "outage"})
        back = time.time() - 30 * 86400
        got = r.get("since")
        check(st == 200 and got is not None and r.get("until") is None and
              abs(calendar.timegm(time.strptime(got, "%Y-%m-%d %H:%M:%S")) - back) < 3600,
              "episodes without a range say it is the last 30 days (since %r)" % got)
        st, e = getj(base, "/api/v1/episodes", {"target": "youtube-web", "since": "2026-11-01"})
        check(st == 200 and [x["kind"] for x in e["results"]] == ["slowdown"], "target filter")
        st, e = getj(base, "/api/v1/episodes", {"kind": "outage", "since": "2026-11-01"})
        check(st == 200 and [x["kind"] for x in e["results"]] == ["outage"], "kind filter")
        st, e = getj(base, "/api/v1/episodes", {"since": "2026-11-23", "until": "2026-11-24"})
        check(st == 200 and e["results"] == [], "no episodes outside the range")

        seen, cursor, pages = [], None, 0
        while pages < 20:
            params = {"probe_asn": "AS23674", "platform": "youtube", "limit": "50"}
            if cursor:
                params["cursor"] = cursor
            st, page = getj(base, "/api/v1/measurements", params)
            if st != 200:
                break
            seen += [(m["measurement_start_time"], m["measurement_uid"]) for m in page["results"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        check(len(seen) == 216 and len(set(seen)) == 216 and pages == 5,
              "cursor pages: 216 youtube measurements on AS23674, each once, 5 pages")
        check(seen == sorted(seen, reverse=True), "newest first")
        st, page = getj(base, "/api/v1/measurements", {"verdict": "dns_blocking"})
        check(st == 200 and page["count"] == 48 and
              all(m["test_keys"]["verdict"] == "dns_blocking" for m in page["results"]),
              "verdict filter, whole measurements returned")

        bad = [{"probe_cc": "pk"}, {"probe_asn": "12"}, {"probe_asn": "AS1x"},
               {"since": "2026-13-01"}, {"since": "2026-02-30"}, {"until": "yesterday"},
               {"grain": "month"}, {"by": "day,probe_cc,target"}, {"by": "day,day"},
               {"by": "uid"}, {"format": "xml"}, {"bogus": "1"}, {"target": "a\x01b"},
               {"target": "x" * 200}, {"since": "2026-11-05", "until": "2026-11-01"},
               # Not UTF-8 (what ingest stores never is): PostgreSQL refuses it in a parameter.
               {"target": b"a\xffb"}, {"platform": b"\xc3("}, {"probe_cc": b"\xff\xfe"}]
        for q in bad:
            st, h, body = get(base, "/api/v1/aggregation", q)
            try:
                err = json.loads(body).get("error")
            except ValueError:
                err = None
            check(st == 400 and err and h.get("X-Content-Type-Options") == "nosniff",
                  "aggregation %r: 400 JSON error (%s)" % (q, err))
        # A well-formed date outside the calendar the API takes says why, not "wrong format".
        st, _, body = get(base, "/api/v1/measurements", {"since": "1900-01-01"})
        check(st == 400 and "from 1970" in body, "since 1900: 400 saying why (%s)" % body)
        for q in [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"cursor": "xyz"},
                  {"cursor": "20261301000000-" + "0" * 32}, {"verdict": "blocked"}]:
            st, _, body = get(base, "/api/v1/measurements", q)
            check(st == 400 and "error" in json.loads(body), "measurements %r: 400" % q)
        for path in ("/api/v1/measurements", "/api/v1/episodes"):
            st, _, body = get(base, path, {"target": b"\xe2\x82"})
            check(st == 400 and "error" in json.loads(body), "%s, a target not UTF-8: 400" % path)
        st, _, body = get(base, "/api/v1/episodes", {"kind": "censorship"})
        check(st == 400, "episodes kind checked")
        st, _, body = get(base, "/api/v1/aggregation?by=day&by=target")
        check(st == 400 and "twice" in body, "a parameter given twice: 400")

        # Incremental: a new block on another network is found by the timer, the others stay.
        block = agg_seed.new_block()
        agg_seed.upload(base, block)
        t0, found = time.time(), None
        while time.time() - t0 < 15 and not found:
            time.sleep(0.2)
            st, e = getj(base, "/api/v1/episodes", {"since": "2026-11-01"})
            found = [x for x in e["results"] if x["probe_asn"] == agg_seed.NEW_BLOCK_ASN]
        check(bool(found) and found[0]["kind"] == "blocking" and
              found[0]["start"] == agg_seed.NEW_BLOCK_START and
              found[0]["end"] == agg_seed.NEW_BLOCK_END and found[0]["ongoing"],
              "an upload's block shows in /api/v1/episodes after the timer (%.1f s): %r" %
              (time.time() - t0, found and (found[0]["start"], found[0]["end"])))
        check(len(e["results"]) == 4, "the earlier episodes unchanged (%d in all)" %
              len(e["results"]))
        ms = ms + block
        # Intermittent failures (the probe's evidence.intermittent) counted per bucket: in the
        # aggregation, the episode's evidence, its CSV and the report's text.
        st, a = getj(base, "/api/v1/aggregation", {"by": "probe_asn,platform",
                                                    "since": "2026-11-01"})
        exp = expected(ms)
        got = {(r["probe_asn"], r["platform"]): r for r in a["results"]}
        check(st == 200 and set(got) == set(exp) and
              all(got[k][f] == v for k, c in exp.items() for f, v in c.items()) and
              got[(agg_seed.NEW_BLOCK_ASN, "whatsapp")]["intermittent_count"] == 6 and
              got[("AS17557", "whatsapp")]["intermittent_count"] == 0,
              "intermittent_count per network and platform: 6 where one probe's failures came "
              "and went, 0 elsewhere (%r)" % {k: r["intermittent_count"] for k, r in got.items()})
        st, a = getj(base, "/api/v1/aggregation", {"by": "verdict", "since": "2026-11-01",
                                                    "probe_asn": agg_seed.NEW_BLOCK_ASN})
        check(st == 200 and all(r["intermittent_count"] is None for r in a["results"]),
              "by verdict: intermittent_count null, as confirmed_count (not split by verdict)")
        found = found[0] if found else {}
        check(found.get("evidence", {}).get("intermittent") == 6,
              "the episode's evidence counts its 6 intermittent measurements (%r)" %
              found.get("evidence"))
        st, _, body = get(base, "/api/v1/episodes", {"since": "2026-11-01", "format": "csv",
                                                      "probe_asn": agg_seed.NEW_BLOCK_ASN})
        rows = list(csv.DictReader(io.StringIO(body)))
        check(st == 200 and [r.get("intermittent") for r in rows] == ["6"],
              "episodes CSV: intermittent column (%r)" % body[:300])

        # A database from before rollups: the table is rebuilt from the measurements at start.
        st, before = getj(base, "/api/v1/aggregation", {"by": "probe_asn,platform",
                                                         "since": "2026-11-01"})
        old, proc = proc, None  # None while restarting: nothing for the finally to stop
        proc, base, st, after, _ = restart_after(db, old, "DROP TABLE rollup_hourly")
        check(st == 200 and after == before, "rollups rebuilt from stored measurements")
        # Rollup tables from before the probes/share_pm columns: dropped and rebuilt.
        old, proc = proc, None
        proc, base, st, after, e = restart_after(db, old,
                                                 "ALTER TABLE rollup_daily DROP COLUMN share_pm")
        check(st == 200 and after == before and len(e["results"]) == 4,
              "rollups of an older schema rebuilt, episodes detected again at start")
        # Schema version 1: rollups and episodes without the intermittent counts. Dropped and
        # rebuilt from the measurements, whose bodies hold what the new columns count.
        old, proc = proc, None
        proc, base, st, after, e = restart_after(
            db, old, "ALTER TABLE rollup_cc_daily DROP COLUMN n_intermittent",
            "ALTER TABLE episodes DROP COLUMN intermittent_count",
            "UPDATE schema_version SET version = 1")
        nb = [x for x in e.get("results", []) if x["probe_asn"] == agg_seed.NEW_BLOCK_ASN]
        cols = [r[0] for r in db.execute("SELECT n_intermittent FROM rollup_cc_daily")]
        check(st == 200 and after == before and len(e["results"]) == 4 and
              [x["evidence"]["intermittent"] for x in nb] == [6] and sum(map(int, cols)) == 6 and
              [int(r[0]) for r in db.execute("SELECT version FROM schema_version")] == [2],
              "a version 1 database: rollups rebuilt with the intermittent counts, episodes "
              "detected again, schema version 2 (%r)" % [x["evidence"] for x in nb])
        # A database from before the per-country tables and the episodes table.
        old, proc = proc, None
        proc, base, st, after, e2 = restart_after(
            db, old, "DROP TABLE rollup_cc_hourly", "DROP TABLE rollup_cc_daily",
            "DROP TABLE rollup_cc_all_daily", "DROP TABLE episodes")
        st3, c3 = getj(base, "/api/v1/aggregation", {"by": "probe_cc,platform",
                                                      "since": "2026-11-01"})
        check(st == 200 and after == before and e2 == e and st3 == 200 and
              sum(r["measurement_count"] for r in c3["results"]) == len(ms),
              "per-country and episode tables built at start from the per-network buckets")
        st, c5 = getj(base, "/api/v1/aggregation", {"by": "probe_cc,day", "since": "2026-11-01"})
        st6, c6 = getj(base, "/api/v1/aggregation", {"by": "probe_cc,day", "since": "2026-11-01",
                                                      "probe_asn": "AS17557"})
        check(st == 200 and len(c5["results"]) == 3 and
              sum(r["measurement_count"] for r in c5["results"]) == len(ms),
              "country totals per day from the per-country daily totals")

        # CSV cells a spreadsheet would split or run: quoted whatever the reader's separator
        # (';' in many locales, tab when pasted), a leading formula character neutralised.
        m = agg_seed.meas(0, "AS3301", 0, "news;=2+5;@SUM(1)", "x\t=1+1", "test")
        m["probe_cc"] = "SE"
        agg_seed.upload(base, [m])
        st, _, body = get(base, "/api/v1/aggregation", {"by": "target,platform", "probe_cc": "SE",
                                                         "since": "2026-11-01", "format": "csv"})
        check(st == 200 and '\r\n"news;=2+5;@SUM(1)","x\t=1+1",1,' in body,
              "CSV quotes cells holding ; or a tab (%r)" % body[-120:])

        # Bounds on one query: groups (a 400 that says how to narrow it) and time.
        stop(proc)
        proc, base = start(db, ("--rate", "0", "--query-max-groups", "3",
                                "--query-timeout", "1"))
        st, _, body = get(base, "/api/v1/aggregation", {"by": "target", "since": "2026-11-01"})
        check(st == 400 and "over 3 groups" in body, "--query-max-groups: 400 (%d %s)" %
              (st, body[:120]))
        st, a = getj(base, "/api/v1/aggregation", {"by": "probe_cc", "since": "2026-11-01"})
        check(st == 200 and len(a["results"]) == 2, "a query within the bound still answers")
        if db.name == "pg":
            # A query held up (here by a lock another session holds) ends at --query-timeout.
            ps = subprocess.Popen(["psql", "-h", db.dir, "-U", "postgres", "-d", "vantage",
                                   "-qAt", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ps.stdin.write("BEGIN;\nLOCK TABLE rollup_cc_all_daily IN ACCESS EXCLUSIVE MODE;\n"
                           "SELECT 'held';\n")
            ps.stdin.flush()
            held = ps.stdout.readline().strip() == "held"
            t0 = time.time()
            st, _, body = get(base, "/api/v1/aggregation", {"by": "probe_cc",
                                                             "since": "2026-11-01"})
            took = time.time() - t0
            ps.stdin.write("ROLLBACK;\n")
            ps.stdin.close()
            ps.wait(timeout=10)
            check(held and st == 503 and "time limit" in body and took < 4,
                  "--query-timeout ends a query held up for longer (%d, %.1f s)" % (st, took))
            st, a = getj(base, "/api/v1/aggregation", {"by": "probe_cc", "since": "2026-11-01"})
            check(st == 200, "queries answer again once the lock is gone (no limit left on)")

        # Queries share the per-address rate limit.
        stop(proc)
        proc, base = start(db, ("--rate", "1", "--burst", "3"))
        codes = [get(base, "/api/v1/aggregation", {"by": "probe_cc"})[0] for _ in range(8)]
        check(codes[:3] == [200] * 3 and 429 in codes, "queries are rate limited: %r" % codes)
        st, _, _ = get(base, "/")
        check(st == 200, "static files are not counted against the query limit")

        # vantage-collector delete, while a collector serves the same database: a volunteer's
        # runs (by report_id), one measurement (uid), a retention date. Nothing deleted may stay
        # in a count, a probe-run sketch or an episode.
        stop(proc)
        proc, base = start(db)
        ms = ms + [m]

        def agg(by="probe_asn,platform"):
            st, a = getj(base, "/api/v1/aggregation", {"by": by, "since": "2026-11-01"})
            return {tuple(r[k] for k in by.split(",")): r for r in a["results"]}

        def episodes():
            return getj(base, "/api/v1/episodes", {"since": "2026-11-01"})[1]["results"]

        def delete(*args):
            return subprocess.run([COLLECTOR, "delete", "--db", db.url] + list(args),
                                  capture_output=True, text=True, timeout=120)

        def stored():
            return int(db.execute("SELECT COUNT(*) FROM measurements")[0][0])

        agg_before, eps_before, n_before = agg(), episodes(), stored()
        check(n_before == len(ms) and len(eps_before) == 4, "before the delete: %d stored, %d "
              "episodes" % (n_before, len(eps_before)))
        # The runs that saw whatsapp blocked on AS17557: the dns_blocking episode's evidence.
        rids = sorted({x["report_id"] for x in ms if x["test_keys"]["verdict"] == "dns_blocking"})
        gone = [x for x in ms if x["report_id"] in set(rids)]
        args = [a for r in rids for a in ("--report-id", r)]
        r = delete("--dry-run", *args)
        check(r.returncode == 0 and "%d measurements would be deleted" % len(gone) in r.stdout and
              stored() == n_before and agg() == agg_before,
              "delete --dry-run counts %d and changes nothing (%d %s%s)" %
              (len(gone), r.returncode, r.stdout.strip(), r.stderr.strip()))
        r = delete(*args)
        left = [x for x in ms if x["report_id"] not in set(rids)]
        check(r.returncode == 0 and "deleted %d measurements" % len(gone) in r.stdout and
              "episodes detected again" in r.stdout and stored() == len(left),
              "delete --report-id x%d: %d measurements gone (%d %s%s)" %
              (len(rids), len(gone), r.returncode, r.stdout.strip(), r.stderr.strip()))
        got, exp = agg(), expected([x for x in left if x["probe_cc"] == "PK"])
        check(all(got[k][f] == v for k, c in exp.items() for f, v in c.items() if k in got) and
              set(exp) <= set(got),
              "the counts are those of the measurements left")
        st, a = getj(base, "/api/v1/aggregation", {"probe_asn": "AS17557", "platform": "whatsapp",
                                                    "by": "day", "grain": "hour",
                                                    "since": "2026-11-01"})
        check(len(a["results"]) == 72 - 12, "the deleted runs' hours are gone from the hourly "
              "series (%d hours left)" % len(a["results"]))
        eps = episodes()
        check(len(eps) == 3 and not [e for e in eps if e["kind"] == "blocking" and
                                     e["probe_asn"] == "AS17557"] and
              [e for e in eps_before if e not in eps] == [x for x in eps_before
                                                         if x["probe_asn"] == "AS17557"],
              "the block they evidenced is no longer an episode, the others stay (%d)" % len(eps))
        # The serving collector adds new uploads to the rebuilt buckets: the same runs again
        # give back exactly what there was, sketches and histograms included.
        agg_seed.upload(base, gone)
        t0 = time.time()
        while time.time() - t0 < 15 and len(episodes()) != 4:
            time.sleep(0.2)
        check(agg() == agg_before and episodes() == eps_before,
              "uploading them again restores every count, quantile, run estimate and episode")
        uid = m["measurement_uid"]
        r = delete("--uid", uid)
        check(r.returncode == 0 and "deleted 1 measurement;" in r.stdout and
              "SE" not in {k[0] for k in agg("probe_cc")},
              "delete --uid: the one measurement, and its country, gone (%s)" % r.stdout.strip())
        ms = [x for x in ms if x["measurement_uid"] != uid]
        if db.name == "sqlite":
            # Deleted means gone from the files too: not left in free pages or the WAL.
            marker = "volunteer-asked-" + os.urandom(6).hex()
            mk = agg_seed.meas(30, "AS17557", 5, "news-web", "news", "news")
            mk["test_keys"]["note"] = marker
            agg_seed.upload(base, [mk])

            def on_disk():
                data = b""
                for suffix in ("", "-wal"):
                    if os.path.exists(db.path + suffix):
                        with open(db.path + suffix, "rb") as f:
                            data += f.read()
                return marker.encode() in data
            was = on_disk()
            r = delete("--uid", mk["measurement_uid"])
            check(was and r.returncode == 0 and not on_disk(),
                  "a deleted body's bytes are in neither the database file nor its WAL (%s %s)"
                  % (was, r.stdout.strip().replace("\n", " / ")))
        old = [x for x in ms if x["measurement_start_time"] < "2026-11-20 06:00:00"]
        r = delete("--measured-before", "2026-11-20T06:00:00Z")
        st, a = getj(base, "/api/v1/aggregation", {"by": "day", "grain": "hour",
                                                    "since": "2026-11-01"})
        check(r.returncode == 0 and "deleted %d measurements" % len(old) in r.stdout and
              a["results"][0]["day"] == "2026-11-20 06:00:00",
              "delete --measured-before: a retention date (%d gone; first hour %s)" %
              (len(old), a["results"][0]["day"]))
        # Deletes while uploads stream in: every bucket still counts exactly what is stored.
        stream = [agg_seed.meas(h, "AS64999", p, t, pl, c) for h in range(24) for p in range(4)
                  for t, pl, c in agg_seed.TARGETS]
        for x in stream:
            x["probe_cc"] = "NO"
        refused = []

        def uploader():
            for i in range(0, len(stream), 24):
                time.sleep(0.05)  # spread over the deletes' time
                for _ in range(40):  # SQLite: a batch arriving during a delete may get 503
                    try:
                        agg_seed.upload(base, stream[i:i + 24])
                        break
                    except urllib.error.HTTPError as e:
                        refused.append(e.code)
                        time.sleep(0.05)
        th = threading.Thread(target=uploader)
        th.start()
        old_uids = {x["measurement_uid"] for x in old}
        ms = [x for x in ms if x["measurement_uid"] not in old_uids]
        victims = {x["measurement_uid"] for x in ms[-6:]}
        rcs = [delete("--uid", u).returncode for u in sorted(victims)]
        th.join(60)
        ms = [x for x in ms if x["measurement_uid"] not in victims]
        n = stored()
        sums = [int(db.execute("SELECT COALESCE(SUM(n), 0) FROM %s" % t)[0][0])
                for t in ("rollup_hourly", "rollup_daily", "rollup_cc_hourly", "rollup_cc_daily",
                          "rollup_cc_all_daily")]
        check(rcs == [0] * 6 and not th.is_alive() and n == len(ms) + len(stream) and
              sums == [n] * 5 and set(refused) <= {503},
              "six deletes during %d uploads: every rollup table counts the %d stored (%r; %d "
              "retried)" % (len(stream) // 24, n, sums, len(refused)))
        # The delete takes the lock ingest's rollups take (PostgreSQL: the advisory lock; SQLite:
        # the write lock, past the busy timeout): held elsewhere, the delete waits for it.
        victim = ms.pop()["measurement_uid"]
        if db.name == "pg":
            holder = subprocess.Popen(["psql", "-h", db.dir, "-U", "postgres", "-d", "vantage",
                                       "-qAt"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
            holder.stdin.write("SELECT pg_advisory_lock(7413002);\nSELECT 'held';\n")
        else:
            holder = sqlite3.connect(db.path, timeout=5, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
        if db.name == "pg":
            holder.stdin.flush()
            held = holder.stdout.readline().strip() == "" and holder.stdout.readline().strip() == "held"
        else:
            held = True
        d = subprocess.Popen([COLLECTOR, "delete", "--db", db.url, "--uid", victim],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
        waited = d.poll() is None
        if db.name == "pg":
            holder.stdin.write("SELECT pg_advisory_unlock(7413002);\n")
            holder.stdin.close()
            holder.wait(timeout=10)
        else:
            holder.execute("ROLLBACK")
            holder.close()
        out, errs = d.communicate(timeout=60)
        n = stored()
        check(held and waited and d.returncode == 0 and "deleted 1 measurement;" in out and
              n == len(ms) + len(stream),
              "delete waits for the rollup lock held elsewhere, then deletes (%s %s %d %s%s)" %
              (held, waited, d.returncode, out.strip(), errs.strip()))
        if db.name == "sqlite":
            # The delete is committed, then its episode refresh (every network, 64 series a
            # transaction) meets a serving collector's write lock for longer than the busy
            # timeout (1 s): it waits for it, and the exit status is still 0.
            # 3,000 more networks (one measurement each, one run) make the refresh last long
            # enough for this test to take the lock in the middle of it.
            crowd = []
            for i in range(3000):
                x = agg_seed.meas(40, "AS%d" % (400000 + i), 0, "news-web", "news", "news")
                x["probe_cc"], x["report_id"] = "NO", "crowd-run"
                crowd.append(x)
            agg_seed.upload(base, crowd)
            # Under load the lock may only be had once the refresh is over (the scenario not
            # made, not a failure): up to three deletes, one victim each.
            tries = []
            for _ in range(3):
                victim = ms.pop()["measurement_uid"]
                d = subprocess.Popen([COLLECTOR, "delete", "--db", db.url, "--uid", victim],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                first = d.stdout.readline()
                holder = sqlite3.connect(db.path, timeout=0, isolation_level=None)
                t_end = time.time() + 10
                while True:  # between two of the refresh's transactions: no busy handler's sleeps
                    try:
                        holder.execute("BEGIN EXCLUSIVE")
                        break
                    except sqlite3.OperationalError:
                        if time.time() > t_end:
                            raise
                mid = d.poll() is None  # taken while the refresh still had work to do
                time.sleep(2.5)
                refreshing = mid and d.poll() is None
                holder.execute("ROLLBACK")
                holder.close()
                out, errs = d.communicate(timeout=60)
                n -= 1
                tries.append((refreshing, d.returncode, "deleted 1 measurement;" in first and
                              "episodes detected again" in out, (first + out).strip(),
                              errs.strip()[-200:]))
                if refreshing:
                    break
            check(tries[-1][0] and all(t[1] == 0 and t[2] for t in tries) and
                  stored() == n + len(crowd),
                  "a write lock held during the delete's episode refresh is waited for, exit 0 "
                  "(%r)" % (tries,))
            r = delete("--report-id", "crowd-run")
            check(r.returncode == 0 and stored() == n, "the crowd's run deleted again (%s)" %
                  r.stdout.strip().replace("\n", " / "))
        r = delete("--report-id", "no-such-run")
        check(r.returncode == 0 and "no stored measurement matched" in r.stdout,
              "a run that is not stored: said, exit 0")
        for bad, what in (([], "no selector"), (["--measured-before", "yesterday"], "a bad date"),
                          (["--report-id", ""], "an empty id"),
                          (["--uid", "a\tb"], "a control character"),
                          (["--report-id", b"run-\xff".decode("utf-8", "surrogateescape")],
                           "invalid UTF-8")):
            r = delete(*bad)
            check(r.returncode == 2 and r.stderr and stored() == n,
                  "delete with %s: usage error 2, nothing deleted (%s)" %
                  (what, r.stderr.strip().splitlines()[0] if r.stderr else ""))
        if db.name == "pg":
            # The store's statement timeout (30 s; here 300 ms, from the URL) does not cut the
            # delete's wait for the lock, nor its scan of every body on a large database.
            victim = ms.pop()["measurement_uid"]
            holder = subprocess.Popen(["psql", "-h", db.dir, "-U", "postgres", "-d", "vantage",
                                       "-qAt"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
            holder.stdin.write("SELECT pg_advisory_lock(7413002);\nSELECT 'held';\n")
            holder.stdin.flush()
            held = holder.stdout.readline().strip() == "" and holder.stdout.readline().strip() == "held"
            d = subprocess.Popen([COLLECTOR, "delete", "--db",
                                  db.url + "&options=-c%20statement_timeout%3D300", "--uid",
                                  victim], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            waiting = False
            for _ in range(100):  # until the delete waits for the lock
                waiting = db.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND NOT granted")[0][0] == "1"
                if waiting or d.poll() is not None:
                    break
                time.sleep(0.1)
            time.sleep(1)  # past the 300 ms
            holder.stdin.write("SELECT pg_advisory_unlock(7413002);\n")
            holder.stdin.close()
            holder.wait(timeout=10)
            out, errs = d.communicate(timeout=60)
            check(held and waiting and d.returncode == 0 and "deleted 1 measurement;" in out and
                  stored() == n - 1,
                  "delete on PostgreSQL: no statement timeout cuts its wait for the lock (%s %s "
                  "%d %s%s)" % (held, waiting, d.returncode, out.strip(), errs.strip()[-200:]))
        if db.name == "sqlite":
            missing = os.path.join(tmp, "nope.db")
            r = subprocess.run([COLLECTOR, "delete", "--db", "sqlite:" + missing, "--uid", "x"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 1 and not os.path.exists(missing),
                  "delete on a database that does not exist: error 1, none created (%s)" %
                  r.stderr.strip())
            # A file SQLite cannot read (here: not a database; also a full or read-only file
            # system) is said to be that, not "no measurements table".
            junk = os.path.join(tmp, "junk.db")
            with open(junk, "w") as f:
                f.write("not a database, but longer than a header would be\n" * 20)
            r = subprocess.run([COLLECTOR, "delete", "--db", "sqlite:" + junk, "--uid", "x"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 1 and "file is not a database" in r.stderr and
                  "no measurements table" not in r.stderr,
                  "delete on a file that is not a database: SQLite's reason (%s)" %
                  r.stderr.strip())
            # A dry run only counts: it does not wait for the write lock (nor, holding it for
            # its scan of every body, keep uploads out).
            uid = db.execute("SELECT uid FROM measurements LIMIT 1")[0][0]
            holder = sqlite3.connect(db.path, timeout=5, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            d = subprocess.Popen([COLLECTOR, "delete", "--db", db.url, "--uid", uid, "--dry-run"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, errs = d.communicate(timeout=25)  # the write lock: tried for 30 s
            except subprocess.TimeoutExpired:
                d.kill()
                out, errs = d.communicate()
                errs += " (still waiting after 25 s)"
            holder.execute("ROLLBACK")
            holder.close()
            check(d.returncode == 0 and "1 measurement would be deleted" in out,
                  "delete --dry-run while the write lock is held elsewhere: counts, no wait "
                  "(%s %s)" % (out.strip(), errs.strip()[-120:]))
            # A collector (re)started while a delete holds the write lock past the busy
            # timeout (every network dirty, as a delete leaves them): it serves, and detects the
            # episodes once the lock is free, rather than exiting "database is locked".
            stop(proc)
            proc = None
            con = sqlite3.connect(db.path, timeout=5, isolation_level=None)
            eps_stored = con.execute("SELECT * FROM episodes ORDER BY 1, 2, 3, 4, 5, 9").fetchall()
            con.execute("INSERT INTO episodes_dirty (probe_cc, probe_asn, target_id, test_name, "
                        "whole) SELECT DISTINCT probe_cc, probe_asn, '', '', 1 FROM rollup_hourly")
            dirty = con.execute("SELECT COUNT(*) FROM episodes_dirty").fetchone()[0]
            con.execute("BEGIN EXCLUSIVE")
            proc = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db",
                                     db.url, "--rate", "0"], stderr=subprocess.PIPE, text=True)
            lines, port, deadline = [], None, time.time() + 30
            while port is None and time.time() < deadline and len(lines) < 100:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    break
                lines.append(line.strip())
                m = re.search(r"listening on port (\d+)", line)
                port = m and m.group(1)
            con.execute("ROLLBACK")
            left = dirty
            for _ in range(100):  # the refresh timer, once the lock is free
                left = con.execute("SELECT COUNT(*) FROM episodes_dirty").fetchone()[0]
                if left == 0:
                    break
                time.sleep(0.2)
            eps_now = con.execute("SELECT * FROM episodes ORDER BY 1, 2, 3, 4, 5, 9").fetchall()
            con.close()
            check(dirty > 0 and port and left == 0 and eps_stored and eps_now == eps_stored,
                  "a collector started while the write lock is held elsewhere serves, and "
                  "detects the episodes once it is free (%s; %d then %d dirty)" %
                  (" / ".join(l for l in lines if l)[-200:], dirty, left))
    finally:
        if proc:
            stop(proc)
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
