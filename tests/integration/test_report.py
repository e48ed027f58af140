#!/usr/bin/env python3
"""vantage-collector report: seeds a database over the upload API (agg_seed.py plus a platform
named like HTML), then checks each format: the injected episodes with their start and end, probe
and measurement counts, how they were detected; HTML self-contained (no script, no external
resource, inline SVG charts) with probe data escaped; bad arguments refused with exit 2."""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agg_seed  # noqa: E402

BUILD = os.environ.get("VT_BUILD_DIR", "build")
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
EVIL = "<img src=x onerror=alert(1)> &lt;b&gt; ~~gone~~"
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


tmp = tempfile.mkdtemp(prefix="vt-report-")
url = "sqlite:" + os.path.join(tmp, "c.db")
proc = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--db", url, "--rate",
                         "0"], stderr=subprocess.PIPE, text=True)
try:
    port = None
    deadline = time.time() + 10
    while time.time() < deadline and port is None:
        m = re.search(r"listening on port (\d+)", proc.stderr.readline())
        port = m.group(1) if m else None
    if not port:
        sys.exit("FAIL collector did not start")
    ms = agg_seed.measurements()
    for h in range(3):
        ms.append(agg_seed.meas(h, "AS17557", 0, "evil-2", EVIL, "test"))
    # 90 measurements from 90 distinct probe runs in one hour in IR: the distinct-run sketch
    # estimates 98 runs for these report ids (above its exact range of 64).
    for i in range(90):
        m = agg_seed.meas(0, "AS64500", 0, "whatsapp-web", "whatsapp", "messaging")
        m["probe_cc"], m["report_id"] = "IR", "run-%d" % i
        ms.append(m)
    # agg_seed's later block (one probe's failures intermittent), as a country of its own.
    for m in agg_seed.new_block():
        m["probe_cc"] = "BY"
        ms.append(m)
    agg_seed.upload("http://127.0.0.1:" + port, ms)
finally:
    proc.terminate()
    proc.wait(timeout=10)


def report(*args):
    p = subprocess.run([COLLECTOR, "report", "--db", url] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


try:
    rng = ["--cc", "PK", "--since", "2026-11-19", "--until", "2026-11-24"]
    rc, md, err = report(*rng, "--format", "md")
    check(rc == 0 and md.startswith("# Internet censorship in PK"), "markdown report")
    # 4 probes an hour for 12 hours: 48 in all, so the column says "in an hour".
    check("| blocking (confirmed) | AS17557 | whatsapp (whatsapp-web) | 2026-11-21 06:00:00 | "
          "2026-11-21 18:00:00 | 4 | 48 |" in md and
          "| To (UTC) | Most probes in an hour | Measurements |" in md,
          "markdown: the whatsapp block, times, at most 4 probes an hour, 48 measurements")
    check("128 kbit/s policer" in md and "| slowdown | AS23674 |" in md,
          "markdown: the youtube slowdown and its policer")
    check("\\<img src=x onerror=alert(1)\\> &amp;lt;b&amp;gt; \\~\\~gone\\~\\~" in md,
          "markdown escapes HTML, entities and strikethrough from probes")

    rc, out, err = report(*rng, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    check(rc == 0 and len(rows) == 3, "CSV: three episodes")
    got = {(r["kind"], r["probe_asn"]): (r["start"], r["end"], r.get("max_probe_runs_per_hour"))
           for r in rows}
    check(got.get(("blocking", "AS17557")) == ("2026-11-21 06:00:00", "2026-11-21 18:00:00", "4")
          and got.get(("slowdown", "AS23674")) == ("2026-11-22 00:00:00", "2026-11-22 08:00:00",
                                                   "3")
          and got.get(("outage", "AS23674"), ("",))[0] == "2026-11-21 02:00:00",
          "CSV: starts, ends and the most probe runs in an hour")
    out_ = [r for r in rows if r["kind"] == "outage"]
    check(out_ and out_[0].get("failures") == "6" and out_[0]["anomalies"] == "0",
          "CSV: an outage's failures (its 6 canary measurements that failed), not only 0 "
          "anomalies")

    rc, out, err = report(*rng, "--format", "json")
    js = json.loads(out)
    pk = sum(m["probe_cc"] == "PK" for m in ms)
    check(rc == 0 and js["summary"]["measurement_count"] == pk and
          len(js["episodes"]) == 3 and all(e["how_detected"] for e in js["episodes"]),
          "JSON: totals and episodes with how they were detected")

    path = os.path.join(tmp, "r.html")
    rc, out, err = report(*rng, "--format", "html", "--output", path)
    html = open(path).read()
    check(rc == 0 and html.startswith("<!DOCTYPE html>"), "HTML report written to --output")
    check(html.count("<svg") == 2 and "<polyline" in html and "<rect" in html,
          "HTML: timeline and share charts inline as SVG")
    check("<script" not in html.lower() and not re.search(r'(src|href)\s*=\s*"?(https?:)?//',
                                                          html), "HTML: no script, no external resource")
    check("&lt;img src=x onerror=alert(1)&gt; &amp;lt;b&amp;gt;" in html and EVIL not in html,
          "HTML escapes probe data")
    check('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src '
          '\'unsafe-inline\'">' in html, "HTML: a Content-Security-Policy of its own")

    # A day with measurements and no episode (the lone signal probe is not one) says so...
    rc, out, err = report("--cc", "PK", "--since", "2026-11-20", "--until", "2026-11-21")
    check(rc == 0 and "No blocking, slowdown or outage was detected." in out,
          "a quiet range says so")
    # ...but a range without a single measurement must not read as an all-clear.
    for cc, rng_ in (("PK", ("--since", "2026-11-23", "--until", "2026-11-24")),
                     ("DE", ("--since", "2026-11-19"))):
        rc, out, err = report("--cc", cc, *rng_)
        check(rc == 0 and "No blocking, slowdown or outage was detected." not in out and
              "No measurements in this range" in out,
              "no data in %s %s: says there is nothing to go on, not that nothing was blocked" %
              (cc, " ".join(rng_)))
        rc, out, err = report("--cc", cc, *rng_, "--format", "html")
        check(rc == 0 and "No measurements in this range" in out and
              "No blocking, slowdown or outage" not in out, "the same in HTML (%s)" % cc)
    # A period with only an outage: the summary counts the failures (2 hours x 3 probes x 4
    # targets on AS23674), not just "0 anomalous", and JSON has them too.
    orng = ("--cc", "PK", "--asn", "AS23674", "--since", "2026-11-21T02:00:00Z", "--until",
            "2026-11-21T04:00:00Z")
    rc, out, err = report(*orng)
    check(rc == 0 and "; 24 failed (down, offline or inconclusive: not counted as censorship)"
          in out and "| outage | AS23674 |" in out and "1 episode detected." in out,
          "outage-only period: the failures in the summary, '1 episode'")
    rc, out, err = report(*orng, "--format", "json")
    check(rc == 0 and json.loads(out)["summary"].get("failure_count") == 24,
          "outage-only period: JSON summary failure_count")
    # A block still going when an --until in the past ends is not "ongoing" now.
    rc, out, err = report("--cc", "PK", "--since", "2026-11-21", "--until", "2026-11-21T12:00:00Z")
    check(rc == 0 and "2026-11-21 12:00:00 (still going at the end of the range)" in out and
          "(ongoing)" not in out, "an episode cut by --until: still going at the end of the range")
    check(md.startswith("# Internet censorship in PK: 2026-11-19 00:00:00 to 2026-11-24 00:00:00 "
                        "(UTC)\n"), "markdown heading states UTC")
    rc, out, err = report("--cc", "PK", "--since", "2026-11-19", "--asn", "AS17557",
                          "--format", "csv")
    check(rc == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 1, "--asn narrows")
    for bad in (["--cc", "pk", "--since", "2026-11-01"], ["--cc", "PK", "--since", "yesterday"],
                ["--cc", "PK", "--since", "2026-11-01", "--format", "pdf"],
                ["--cc", "PK"], ["--cc", "PK", "--since", "2026-11-05", "--until", "2026-11-01"]):
        rc, out, err = report(*bad)
        check(rc == 2 and err, "refused with exit 2: %s" % " ".join(bad))

    # --asn as the API's probe_asn: AS17557, or bare digits meaning the same; else refused.
    rc, out, err = report("--cc", "PK", "--since", "2026-11-19", "--asn", "17557", "--format",
                          "json")
    rc2, out2, err2 = report("--cc", "PK", "--since", "2026-11-19", "--asn", "AS17557",
                             "--format", "json")
    n1 = json.loads(out)["summary"]["measurement_count"] if rc == 0 else -1
    n2 = json.loads(out2)["summary"]["measurement_count"] if rc2 == 0 else -2
    check(n1 == n2 and n1 > 0, f"--asn 17557 is AS17557 ({n1} and {n2} measurements)")
    rc3, out3, err3 = report("--cc", "PK", "--since", "2026-11-19", "--asn", "as17557",
                             "--format", "json")
    n3 = json.loads(out3)["summary"]["measurement_count"] if rc3 == 0 else -3
    check(n3 == n2, f"--asn as17557 is AS17557 ({n3} and {n2} measurements)")
    for bad in ("ASX", "AS", "AS17557x", "as-1", ""):
        rc, out, err = report("--cc", "PK", "--since", "2026-11-19", "--asn", bad)
        check(rc == 2 and "--asn" in err,
              f"--asn {bad!r} refused with exit 2 ({rc} {err.strip()})")

    # The rollups are hourly: the heading shows the whole hours counted, not the times given.
    rc, out, err = report("--cc", "PK", "--since", "2026-11-21T06:30:00Z", "--until",
                          "2026-11-21T07:10:00Z")
    check(rc == 0 and out.startswith("# Internet censorship in PK: 2026-11-21 06:00:00 to "
                                     "2026-11-21 08:00:00 (UTC)\n"),
          f"--since/--until shown rounded to the hours counted ({out.splitlines()[0]!r})")
    rc, out, err = report("--cc", "PK", "--since", "2026-11-21T06:30:00Z", "--format", "json")
    check(rc == 0 and json.loads(out)["since"] == "2026-11-21 06:00:00", "JSON: since rounded")

    # More probe runs than measurements is impossible: the estimate is clamped.
    rc, out, err = report("--cc", "IR", "--since", "2026-11-19", "--format", "json")
    js = json.loads(out) if rc == 0 else {"summary": {}, "networks": []}
    check(js["summary"].get("measurement_count") == 90 and js["summary"].get("probes") == 90 and
          all(x["probes"] <= x["measurement_count"] for x in js["networks"]),
          f"probe runs never exceed measurements ({js['summary']})")
    rc, out, err = report("--cc", "IR", "--since", "2026-11-19")
    check(rc == 0 and "90 measurements from about 90 probe-hours" in out,
          "markdown: 90 measurements from about 90 probe-hours")

    # A block whose failures came and went for one of its 3 probes (evidence.intermittent):
    # counted in every format.
    by = ("--cc", "BY", "--since", "2026-11-19")
    rc, out, err = report(*by)
    check(rc == 0 and "tcp\\_blocking in 100% of each probe's measurements" in out and
          "intermittent in 6 measurements (tried again, it worked, then failed again)" in out,
          "markdown: the block's intermittent measurements in how it was detected (%r)" %
          out[-400:])
    check(rc == 0 and "| Confirmed | Intermittent | Failed |" in out and
          "| AS9541 | whatsapp | 72 | 18 (25%) | 0 | 6 | 0 |" in out,
          "markdown: the networks table's intermittent column")
    rc, out, err = report(*by, "--format", "html")
    check(rc == 0 and "<th>Confirmed</th><th>Intermittent</th><th>Failed</th>" in out and
          "<td>72</td><td>18 (25%)</td><td>0</td><td>6</td><td>0</td>" in out,
          "HTML: the networks table's intermittent column")
    rc, out, err = report(*by, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    check(rc == 0 and [(r["kind"], r["intermittent"]) for r in rows] == [("blocking", "6")],
          "CSV: the intermittent column (%r)" % out[:300])
    rc, out, err = report(*by, "--format", "json")
    js = json.loads(out) if rc == 0 else {"summary": {}, "networks": [], "episodes": []}
    check(js["summary"].get("intermittent_count") == 6 and
          sorted(x["intermittent_count"] for x in js["networks"]) == [0, 0, 6] and
          [e["evidence"]["intermittent"] for e in js["episodes"]] == [6],
          "JSON: intermittent_count in the summary, per network and platform, per episode "
          "(%r)" % js["summary"])

    # A mistyped database is an error, not an empty database and a report of nothing blocked.
    missing = os.path.join(tmp, "mistyped.db")
    for db in ("sqlite:" + missing, missing):
        p = subprocess.run([COLLECTOR, "report", "--db", db, "--cc", "PK", "--since",
                            "2026-11-01"], capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and "no such database" in p.stderr and not p.stdout and
              not os.path.exists(missing),
              f"report of a missing database: exit 1, nothing created ({p.returncode} "
              f"{p.stderr.strip()})")
    open(missing, "w").close()  # an empty file is no collector's database either
    p = subprocess.run([COLLECTOR, "report", "--db", missing, "--cc", "PK", "--since",
                        "2026-11-01"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 1 and "no such database" in p.stderr and os.path.getsize(missing) == 0,
          f"report of an empty file: exit 1, file untouched ({p.stderr.strip()})")
    p = subprocess.run([COLLECTOR, "report", "--db", "mysql://x", "--cc", "PK", "--since",
                        "2026-11-01"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2, f"report with an unknown --db scheme: exit 2 ({p.returncode})")
    rc, out, err = report(*rng, "--output", os.path.join(tmp, "no", "such", "dir", "r.md"))
    check(rc == 1 and "cannot write" in err and "No such file or directory" in err,
          f"cannot write names the reason ({err.strip()})")

    # A report of a live database: a backlog of series waiting for the collector's episode
    # refresh, and a writer holding the database, hold it up neither (it detects from the
    # buckets itself and writes nothing).
    import sqlite3
    db = sqlite3.connect(os.path.join(tmp, "c.db"), timeout=5)
    db.execute("INSERT OR IGNORE INTO episodes_dirty (probe_cc, probe_asn, target_id, test_name, "
               "whole) "
               "SELECT DISTINCT probe_cc, probe_asn, '', '', 1 FROM rollup_hourly")
    db.commit()
    dirty = db.execute("SELECT COUNT(*) FROM episodes_dirty").fetchone()[0]
    db.execute("BEGIN IMMEDIATE")  # the running collector's write transaction
    t0 = time.time()
    rc, out, err = report(*rng, "--format", "csv")
    took = time.time() - t0
    db.rollback()
    left = db.execute("SELECT COUNT(*) FROM episodes_dirty").fetchone()[0]
    db.close()
    check(rc == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 3 and took < 4 and
          dirty > 0 and left == dirty,
          "report beside a writer and a refresh backlog: rc %d in %.1f s, %d of %d dirty left (%s)"
          % (rc, took, left, dirty, err.strip()[-100:]))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failures else 0)
