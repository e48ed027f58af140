#!/usr/bin/env python3
"""`vantage-collector import` on SQLite or PostgreSQL (argv[1]; run by test_collector_import_sqlite.sh
and test_collector_import_pg.sh) with real OONI measurements ($VT_SHARED_DATA/ooni-measurements;
without them, made-up ones of the same shapes, so that a clone alone still tests import): stored
through the upload's validation and rollups, each with a
uid derived from what identifies it (a second import stores nothing), OONI's own keys read into
our verdicts, OONI's annotations.platform (the device's OS) kept apart from ours, web and
circumvention measurements matched to the shipped targets; broken lines named by file and line
without stopping the rest; gzip and standard input; the aggregation API counts what came in.
Nothing leaves 127.0.0.1."""
import glob
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggregation_suite import Pg, Sqlite  # noqa: E402  the same stores the aggregation suite uses

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
COLLECTOR = os.path.join(BUILD, "collector", "vantage-collector")
SHARED = os.environ.get("VT_SHARED_DATA", os.path.join(SRC, "..", "shared", "data"))
samples = sorted(glob.glob(os.path.join(SHARED, "ooni-measurements", "*.json")))
if not os.access(COLLECTOR, os.X_OK):
    print("skip: collector not built")
    sys.exit(77)


def made_up(cc, test, input=None, report="", **keys):
    """An OONI measurement of the shape OONI's probes publish, with only the test keys import
    reads: for a clone without the shared data (../shared/data), where the real ones are."""
    return {"annotations": {"platform": "android", "engine_name": "ooniprobe-engine"},
            "data_format_version": "0.2.0", "input": input,
            "measurement_start_time": "2024-03-01 10:00:%02d" % len(report),
            "probe_asn": "AS64500", "probe_cc": cc, "probe_ip": "127.0.0.1",
            "probe_network_name": "Example", "resolver_asn": "AS64500", "resolver_ip": "10.0.0.1",
            "report_id": "20240301T100000Z_%s_%s_64500_n1_%s" % (test.replace("_", ""), cc,
                                                                   report or "made0up0sample"),
            "software_name": "ooniprobe-cli", "software_version": "3.20.0", "test_name": test,
            "test_runtime": 1.5, "test_start_time": "2024-03-01 10:00:00", "test_version": "0.4.0",
            "test_keys": keys}


if samples:
    raw = [json.load(open(f)) for f in samples]
else:
    print("note: no OONI samples in %s: made-up measurements of the same shapes" % SHARED)
    raw = [made_up("ID", "web_connectivity", "http://archive.org", "a", blocking=False,
                   accessible=True),
           made_up("IR", "web_connectivity", "https://www.facebook.com/", "b", blocking="dns",
                   accessible=False,
                   queries=[{"engine": "system", "hostname": "www.facebook.com",
                             "query_type": "A", "failure": None,
                             "answers": [{"answer_type": "A", "ipv4": "10.10.34.36"}]}]),
           made_up("IE", "whatsapp", None, "c", registration_server_status="ok",
                   whatsapp_endpoints_status="ok", whatsapp_web_status="blocked"),
           made_up("AM", "signal", None, "d", signal_backend_status="blocked",
                   signal_backend_failure="ssl_unknown_authority"),
           made_up("IT", "telegram", None, "e", telegram_http_blocking=False,
                   telegram_web_status="ok", telegram_tcp_blocking=False),
           made_up("IT", "facebook_messenger", None, "f", facebook_dns_blocking=False,
                   facebook_tcp_blocking=False),
           made_up("CN", "vanilla_tor", None, "g", success=False, error="timeout-reached",
                   failure="generic_timeout_error"),
           made_up("RO", "openvpn", "vpn://openvpn.riseup/?addr=198.252.153.109:443"
                   "&transport=tcp&obfs=obfs4", "h", success=True, failure=None),
           made_up("AF", "riseupvpn", None, "i", api_status="blocked", ca_cert_status=False,
                   requests=[{"request": {"url": "https://black.riseup.net/ca.crt"},
                              "failure": "ssl_invalid_certificate"}]),
           made_up("PK", "http_header_field_manipulation", None, "j", requests=[])]

failures = []
tmp = tempfile.mkdtemp(prefix="vt-import-")
store = None


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def imp(*args, stdin=None):
    return subprocess.run([COLLECTOR, "import", "--db", store.url] + list(args),
                          input=stdin, capture_output=True, timeout=120)




def variant(test, cc, **keys):
    """A real sample of test, moved to country cc (its own report), its test keys changed."""
    m = json.loads(json.dumps(next(x for x in raw if x["test_name"] == test)))
    m["report_id"] = m["report_id"].replace("_%s_" % m["probe_cc"], "_%s_" % cc) + "v"
    m["probe_cc"] = cc
    m["test_keys"].update(keys)
    return m


# The circumvention tests' other outcome, beside the real samples' (vanilla_tor failed in CN,
# openvpn worked in RO, riseupvpn's CA check failed in AF).
raw += [variant("vanilla_tor", "DE", success=True, error=None, failure=None),
        variant("openvpn", "DE", success=False, failure="generic_timeout_error"),
        variant("riseupvpn", "DE", api_status="ok", ca_cert_status=True, api_failure=None)]


def page(body, url="http://archive.org/"):
    return [{"request": {"url": url, "method": "GET"}, "failure": None,
             "response": {"code": 200, "body": body, "headers_list": []}}]


# OONI saw nothing, our fingerprints see Pakistan's national blockpage (confirms: scope nat).
raw.append(variant("web_connectivity", "PK", blocking=False, accessible=True,
                   requests=page("<html><body>This website is prohibited for viewership from "
                                 "within Pakistan.</body></html>")))
# No psiphon sample: a vanilla_tor one made into psiphon's shape (bootstrap_time, failure).
for cc, bt, fail in (("DE", 3.2, None), ("FR", 0, "generic_timeout_error")):
    m = variant("vanilla_tor", cc)
    m["test_name"], m["test_keys"] = "psiphon", {"bootstrap_time": bt, "failure": fail}
    raw.append(m)
lines = [json.dumps(m).encode() for m in raw]
plain = os.path.join(tmp, "ooni.jsonl")
with open(plain, "wb") as f:
    f.write(lines[0] + b"\n\n")                       # line 1, then a blank line 2
    f.write(b'{"broken\n')                            # line 3
    f.write(b'{"s": "' + b"x" * (1100 * 1024) + b'"}\n')  # line 4: over 1 MiB
    f.write(b"[1, 2]\n")                              # line 5
    f.write(b"\n".join(lines[1:]) + b"\n")
gz = os.path.join(tmp, "ooni.jsonl.gz")
with gzip.open(gz, "wb") as f:
    f.write(b"\n".join(lines) + b"\n")

try:
    store = (Pg if sys.argv[1:] == ["pg"] else Sqlite)(tmp)
    p = imp(plain)
    out, err = p.stdout.decode(), p.stderr.decode()
    check(p.returncode == 1 and "imported: %d stored, 0 already there, 3 rejected" % len(raw) in out,
          "every OONI sample stored, 3 bad lines rejected, exit 1 (%d %r)" % (p.returncode, out))
    for n, why in ((3, "not a JSON object"), (4, "longer than"), (5, "not a JSON object")):
        check(("ooni.jsonl:%d: rejected: %s" % (n, why)) in err, "line %d named: %s" % (n, why))

    p = imp(gz)
    check(p.returncode == 0 and "0 stored, %d already there, 0 rejected" % len(raw) in p.stdout.decode(),
          "the same measurements again, gzip: all already there, exit 0 (%r)" % p.stdout)
    p = imp("-", stdin=b"\n".join(lines[:3]) + b"\n")
    check(p.returncode == 0 and "0 stored, 3 already there" in p.stdout.decode(),
          "standard input (%r)" % p.stdout)
    p = imp(os.path.join(tmp, "missing.jsonl"))
    check(p.returncode == 1 and b"cannot open" in p.stderr, "a missing file: named, exit 1")
    cut = os.path.join(tmp, "cut.jsonl.gz")
    with open(gz, "rb") as f, open(cut, "wb") as g:
        data = f.read()
        g.write(data[:len(data) // 2])
    p = imp(cut)
    check(p.returncode == 1 and b"cut.jsonl.gz: after line" in p.stderr,
          "a truncated gzip file: says where it stopped, exit 1 (%r)" % p.stderr[-200:])
    p = subprocess.run([COLLECTOR, "import", "--db", store.url], capture_output=True)
    check(p.returncode == 2, "no file: usage, exit 2")

    rows = {(r[0], r[1]): r for r in store.execute(
        "SELECT probe_cc, test_name, uid, platform, target_id, verdict, body FROM measurements")}
    check(len(rows) == len(raw), "one row per sample (%d)" % len(rows))
    want = {("ID", "web_connectivity"): "ok", ("IR", "web_connectivity"): "dns_blocking",
            ("IE", "whatsapp"): "http_blocking", ("AM", "signal"): "tls_blocking",
            ("IT", "telegram"): "ok", ("IT", "facebook_messenger"): "ok",
            ("CN", "vanilla_tor"): "inconclusive", ("RO", "openvpn"): "ok",
            ("AF", "riseupvpn"): "inconclusive", ("DE", "vanilla_tor"): "ok",
            ("DE", "openvpn"): "inconclusive", ("DE", "riseupvpn"): "ok",
            ("DE", "psiphon"): "ok", ("FR", "psiphon"): "inconclusive",
            ("PK", "web_connectivity"): "http_blocking"}
    for k, v in want.items():
        got = rows.get(k)
        check(got is not None and got[5] == v, "%s %s: verdict %s (%s)" % (k[0], k[1], v,
                                                                          got and got[5]))
    # IR's https://www.facebook.com/: the shipped web target on that host.
    fb = [t for f in glob.glob(os.path.join(SRC, "targets", "*.json"))
          for t in json.load(open(f))["targets"]
          if t["kind"] == "web" and any("facebook.com/" in e for e in t["endpoints"])]
    ir = rows.get(("IR", "web_connectivity"))
    check(ir and fb and ir[3] == fb[0]["platform"] and ir[4] == fb[0]["id"],
          "IR's facebook.com measurement counts for %s (%r)" % (fb and fb[0]["id"], ir and ir[3:5]))
    body = json.loads(ir[6])
    orig = next(m for m in raw if m["probe_cc"] == "IR")
    check(body["annotations"].get("x_os_platform") == orig["annotations"]["platform"] and
          body["test_keys"].get("x_verdict_from") == "import" and
          body["probe_ip"] == "127.0.0.1" and len(ir[2]) == 32,
          "OONI's platform kept as x_os_platform, the verdict marked imported, a 32-hex uid")
    # The circumvention tests' targets: openvpn by its addr=, riseupvpn by where its requests
    # went (black.riseup.net), Tor's bootstrap by platform alone.
    for k, tid, plat in ((("RO", "openvpn"), "riseupvpn-gateway-openvpn", "riseupvpn"),
                         (("DE", "openvpn"), "riseupvpn-gateway-openvpn", "riseupvpn"),
                         (("AF", "riseupvpn"), "riseupvpn-provider", "riseupvpn"),
                         (("CN", "vanilla_tor"), "", "tor")):
        got = rows.get(k)
        check(got is not None and (got[4] or "") == tid and got[3] == plat,
              "%s %s counts for target %r, platform %s (%r)" % (k + (tid, plat, got and got[3:5])))
    # Our fingerprints on OONI's web measurements: IR's answer 10.10.34.36 (Iran's national DNS
    # injection), the PK page's text.
    for k, name in ((("IR", "web_connectivity"), "vantage.ir_dns_3"),
                    (("PK", "web_connectivity"), "vantage.pk_national_body")):
        tk = json.loads(rows[k][6])["test_keys"] if k in rows else {}
        check(tk.get("blocking_confirmed") is True and tk.get("x_fingerprint") == name,
              "%s %s: confirmed by %s (%r)" % (k + (name, tk.get("x_fingerprint"))))
    tk = json.loads(rows[("ID", "web_connectivity")][6])["test_keys"]
    check("blocking_confirmed" not in tk and "x_fingerprint" not in tk,
          "ID's archive.org: no fingerprint, nothing confirmed")
    idm = rows.get(("ID", "web_connectivity"))
    check(idm and idm[3] is None or idm and idm[3] == "", "a site in no target list: no platform")

    # The rollups: what a serving collector answers.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    coll = subprocess.Popen([COLLECTOR, "serve", "--listen", "127.0.0.1:%d" % port, "--db",
                             store.url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        coll.stderr.readline()
        url = ("http://127.0.0.1:%d/api/v1/aggregation?since=2016-01-01&by=probe_cc,platform"
               % port)
        with urllib.request.urlopen(url, timeout=10) as r:
            agg = json.load(r)["results"]
        a = {(r["probe_cc"], r["platform"]): r for r in agg}
        irf = a.get(("IR", fb[0]["platform"]), {})
        check(irf.get("measurement_count") == 1 and irf.get("anomaly_count") == 1 and
              irf.get("confirmed_count") == 1,
              "aggregation: IR / %s, 1 measurement, 1 anomaly, 1 confirmed (%r)"
              % (fb[0]["platform"], irf))
        check(sum(r["measurement_count"] for r in agg) == len(raw),
              "aggregation: every imported measurement counted once")
    finally:
        coll.terminate()
        coll.wait(timeout=20)

    # --fingerprints instead of the shipped file: a product's page (scope prod) seen outside its
    # expected country is named, not confirmed; the shipped Pakistani one no longer applies.
    fps = os.path.join(tmp, "fp.csv")
    with open(fps, "w") as f:
        f.write("name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,"
                "expected_countries,source,exp_url,notes\n"
                "test.filter_product,prod,,body,contains,Access Denied by FilterBox,5,US,test,,\n")
    two = [variant("web_connectivity", "BR", requests=page("<p>Access Denied by FilterBox</p>")),
           variant("web_connectivity", "BD", blocking=False, accessible=True,
                   requests=page("prohibited for viewership from within Pakistan"))]
    p = imp("--fingerprints", fps, "-", stdin=b"".join(json.dumps(m).encode() + b"\n"
                                                       for m in two))
    check(p.returncode == 0 and "2 stored" in p.stdout.decode() and
          "0 confirmed by a fingerprint" in p.stdout.decode(),
          "--fingerprints FILE: 2 stored, none confirmed (%r)" % p.stdout)
    got = {r[0]: json.loads(r[1])["test_keys"] for r in store.execute(
        "SELECT probe_cc, body FROM measurements WHERE probe_cc IN ('BR', 'BD')")}
    br, bd = got.get("BR", {}), got.get("BD", {})
    check(br.get("x_fingerprint") == "test.filter_product" and "blocking_confirmed" not in br and
          br.get("verdict") == "ok", "a match that does not confirm is named only (%r)"
          % {k: br.get(k) for k in ("x_fingerprint", "verdict")})
    check("x_fingerprint" not in bd and bd.get("verdict") == "ok",
          "only the given fingerprints apply (%r)" % {k: bd.get(k) for k in ("x_fingerprint",
                                                                             "verdict")})
    p = imp("--fingerprints", os.path.join(tmp, "missing.csv"), "-", stdin=b"")
    check(p.returncode == 2 and b"missing.csv" in p.stderr,
          "a fingerprint file that cannot be read: named, exit 2 (%d %r)"
          % (p.returncode, p.stderr[-200:]))
finally:
    if store:
        store.close()
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all import checks passed")
