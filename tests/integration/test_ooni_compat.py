#!/usr/bin/env python3
"""Our measurements have the shape of real OONI measurements.

Runs the built probe against loopback servers this test starts (tests/servers/httpserver.py and,
when root, dnsserver.py) and compares its JSON with the real OONI measurements in
$VT_SHARED_DATA/ooni-measurements/ (skipped, exit 77, when that directory is absent):
  - every top-level key that all OONI samples carry is present, with a JSON type some sample uses
    for it; every other top-level key we share with a sample has a type some sample uses;
  - in test_keys, queries, tcp_connect, tls_handshakes, requests and network_events (the keys
    OONI's tooling reads) are lists, and each entry's keys and their types match the entries of
    the web_connectivity samples (tls_handshakes: of the samples that have any), recursively for
    the nested objects (status, request, response, answers, tor).
Keys of our own beyond OONI's are allowed (docs/data-format.md lists them). Nothing leaves
127.0.0.0/8: target URLs are http(s)://127.0.0.1:PORT; as root the probe runs in its own network
namespace (only lo) with a resolv.conf naming the test's DNS server, so the queries entries are
real answers; otherwise the targets are IP literals and queries entries are not compared.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("VT_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
SHARED = os.environ.get("VT_SHARED_DATA", os.path.join(os.path.dirname(SRC), "shared", "data"))
SAMPLES = os.path.join(SHARED, "ooni-measurements")
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
SERVERS = os.path.join(SRC, "tests", "servers")
LISTS = ("queries", "tcp_connect", "tls_handshakes", "requests", "network_events")


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(v)]


MISMATCHES = []
# A ratchet: differences known and listed in docs/data-format.md ("Known differences from OONI's
# shape") are printed, not failed, so that any NEW difference fails. Remove a line when its fix
# lands (the test then guards it).
KNOWN = set()  # all twelve of 2026-11-28 fixed in lib/ the same day; keep it empty


def fail(msg):
    print("test_ooni_compat: FAIL: " + msg)
    sys.exit(1)


def mismatch(msg):
    """A shape difference: reported, all of them, and the test fails at the end."""
    if msg not in MISMATCHES:
        MISMATCHES.append(msg)


def shape_of(entries):
    """key -> set of JSON types across entries (dicts), and key -> list of nested values."""
    types, nested = {}, {}
    for e in entries:
        for k, v in e.items():
            types.setdefault(k, set()).add(jtype(v))
            if isinstance(v, dict):
                nested.setdefault(k, []).append(v)
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                nested.setdefault(k, []).extend(v)
    return types, nested


NULLABLE = set()


def nullable_paths(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            if x is None:
                NULLABLE.add("%s.%s" % (path, k))
            nullable_paths(x, "%s.%s" % (path, k))
    elif isinstance(v, list):
        for x in v:
            nullable_paths(x, path if path.endswith("[]") else path + "[]")


def compare(where, ours, theirs):
    """Every key of OONI's entries exists in ours with a type OONI uses; recursive."""
    if not theirs or not ours:
        return 0
    ttypes, tnested = shape_of(theirs)
    otypes, onested = shape_of(ours)
    n = 0
    for k, ts in sorted(ttypes.items()):
        if k not in otypes:
            mismatch("%s: key %r missing in our entries (OONI: %s)" % (where, k,
                                                                         "/".join(sorted(ts))))
            continue
        path = "%s.%s" % (where, k)
        # OONI's only null there says nothing of the type (a failure that did not happen); our
        # null is fine where any OONI sample writes null at that key path.
        extra = set() if ts == {"null"} else otypes[k] - ts
        if path in NULLABLE:
            extra.discard("null")
        if extra:
            mismatch("%s.%s: our type %s, OONI's %s" % (where, k, "/".join(sorted(otypes[k])),
                                                     "/".join(sorted(ts))))
        n += 1
        if k in tnested and k in onested and "headers" not in k:
            n += compare("%s.%s" % (where, k), onested[k], tnested[k])
    return n


def main():
    if not os.path.isdir(SAMPLES):
        print("test_ooni_compat: skipped: no OONI samples at %s (../shared is absent)" % SAMPLES)
        return 77
    if not os.access(PROBE, os.X_OK):
        fail("no probe at %s (build first)" % PROBE)
    samples = {}
    for f in sorted(glob.glob(os.path.join(SAMPLES, "*.json"))):
        with open(f) as fh:
            samples[os.path.basename(f)] = json.load(fh)
    web = [m for m in samples.values() if m.get("test_name") == "web_connectivity"]
    for m in samples.values():
        nullable_paths(m.get("test_keys"), "test_keys")
    if len(samples) < 3 or not web:
        fail("expected OONI samples with web_connectivity ones in %s" % SAMPLES)

    inside = len(sys.argv) > 1 and sys.argv[1] == "--inside"
    if not inside and os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        # Own network namespace (only lo) and mount namespace (our resolv.conf).
        r = subprocess.run(["unshare", "--net", "--mount", "--", sys.executable,
                            os.path.abspath(__file__), "--inside"], timeout=120)
        if r.returncode != 200:  # 200: unshare worked but namespace set-up did not
            return r.returncode
        print("test_ooni_compat: no network namespace here; IP-literal targets only")
    tmp = tempfile.mkdtemp(prefix="vt-ooni-compat-")
    procs = []
    try:
        return run(tmp, procs, samples, web, inside)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def start(procs, cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    procs.append(p)
    line = p.stdout.readline()
    if not line:
        fail("server did not start: %s" % " ".join(cmd))
    return json.loads(line)


def run(tmp, procs, samples, web, inside):
    names = False
    if inside:
        resolv = os.path.join(tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        ok = (subprocess.run(["ip", "link", "set", "lo", "up"]).returncode == 0 and
              subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"]).returncode == 0)
        if not ok:
            sys.exit(200)
        start(procs, [sys.executable, os.path.join(SERVERS, "dnsserver.py"), "--port", "53",
                      "--lifetime", "60", "--zone", "good.test=a:127.0.0.1",
                      "--zone", "gone.test=nxdomain"])
        names = True
    certs = os.path.join(tmp, "certs")
    subprocess.run(["sh", os.path.join(SERVERS, "mkcerts.sh"), certs], check=True)
    ports = start(procs, [sys.executable, os.path.join(SERVERS, "httpserver.py"), "--cert",
                          "%s/good.pem,%s/good.key" % (certs, certs), "--lifetime", "60"])
    hp, sp = ports["http"], ports["https"][0]
    host = "good.test" if names else "127.0.0.1"
    urls = ["https://%s:%d/title" % (host, sp),
            "http://127.0.0.1:%d/chain/1?h1=127.0.0.1&h2=127.0.0.1" % hp,
            "http://127.0.0.1:%d/reset" % hp]
    if names:
        urls.append("http://gone.test:%d/title" % hp)
    targets = [{"id": "compat-web-%d" % i, "name": "compat %d" % i, "platform": "compat",
                "category": "test", "kind": "web", "endpoints": [u]} for i, u in enumerate(urls)]
    targets.append({"id": "compat-ep", "name": "compat endpoint", "platform": "compat",
                    "category": "test", "kind": "endpoint", "endpoints": ["127.0.0.1:%d" % sp]})
    tfile = os.path.join(tmp, "targets.json")
    with open(tfile, "w") as f:
        json.dump({"version": 1, "list": "compat", "targets": targets}, f)
    out = os.path.join(tmp, "out.jsonl")
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "cfg"),
               VANTAGE_SYSTEM_CONFIG="/dev/null")
    t0 = time.time()
    r = subprocess.run([PROBE, "run", "--accept-risks", "--quiet", "--state-dir",
                        os.path.join(tmp, "state"), "--no-upload", "--targets", tfile,
                        "--timeout", "3", "--cacert", os.path.join(certs, "ca.pem"),
                        "--output", out], env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail("probe exited %d: %s" % (r.returncode, r.stderr.strip()[-500:]))
    with open(out) as f:
        ours = [json.loads(line) for line in f if line.strip()]
    if len(ours) != len(targets):
        fail("%d measurements for %d targets" % (len(ours), len(targets)))

    # Top level.
    all_keys = set.intersection(*(set(m) for m in samples.values()))
    types = {}
    for m in samples.values():
        for k, v in m.items():
            types.setdefault(k, set()).add(jtype(v))
    for m in ours:
        for k in sorted(all_keys):
            if k not in m:
                mismatch("top-level key %r missing (every OONI sample has it)" % k)
        for k, v in m.items():
            if k in types and jtype(v) not in types[k]:
                mismatch("top-level %s: our type %s, OONI's %s" % (
                    k, jtype(v), "/".join(sorted(types[k]))))
        if m["data_format_version"] != "0.2.0" or m["probe_ip"] != "127.0.0.1":
            fail("data_format_version %r / probe_ip %r" % (m["data_format_version"],
                                                           m["probe_ip"]))
        if not isinstance(m.get("test_keys"), dict):
            fail("test_keys is not an object")

    # test_keys lists.
    checked = {}
    for key in LISTS:
        theirs = [e for m in web for e in (m["test_keys"].get(key) or [])]
        if not theirs:  # OONI's web_connectivity 0.4 writes tls_handshakes: null
            theirs = [e for m in samples.values()
                      for e in (m.get("test_keys", {}).get(key) or [])
                      if isinstance(m["test_keys"].get(key), list)]
        mine = []
        for m in ours:
            v = m["test_keys"].get(key)
            if not isinstance(v, list):
                fail("test_keys.%s: our type %s, OONI's array" % (key, jtype(v)))
            mine += v
        if not mine:
            if key == "queries" and not names:
                print("test_ooni_compat: queries entries not compared (not root: no namespace)")
                continue
            fail("test_keys.%s: no entries in our measurements to compare" % key)
        checked[key] = compare("test_keys.%s[]" % key, mine, theirs)
    new = [msg for msg in MISMATCHES if msg not in KNOWN]
    for msg in MISMATCHES:
        print("test_ooni_compat: %s: %s" % ("known difference" if msg in KNOWN else "MISMATCH",
                                            msg))
    if new:
        fail("%d new shape mismatches with OONI's measurements (above)" % len(new))
    print("test_ooni_compat: %d measurements in %.1f s; top level %d keys; entry keys compared: %s"
          % (len(ours), time.time() - t0, len(all_keys),
             ", ".join("%s %d" % kv for kv in checked.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
