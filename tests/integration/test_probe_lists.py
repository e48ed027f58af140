#!/usr/bin/env python3
"""vantage-probe's target lists on the command line: big Citizen Lab lists filtered with
--categories (their speed is bench/target-lists'); the canaries kept with --only and added to Citizen Lab-only runs
(--no-canaries drops them).

`vantage-probe targets` lists and never measures. The one `run` measures the default targets
inside `unshare -n` (a network namespace with no network at all; root only), where nothing can
leave the machine."""
import json
import os
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
if not os.access(PROBE, os.X_OK):
    print("skip: %s not built" % PROBE)
    sys.exit(77)

failures = []
tmp = tempfile.mkdtemp(prefix="vt-lists-")
HEADER = "url,category_code,category_description,date_added,source,notes\n"
ENV = {k: v for k, v in os.environ.items() if k not in ("VANTAGE_TARGETS",)}
ENV.update(HOME=os.path.join(tmp, "home"), XDG_CONFIG_HOME=os.path.join(tmp, "xdg"),
           VANTAGE_SYSTEM_CONFIG=os.path.join(tmp, "none.conf"),
           VANTAGE_TARGETS=os.path.join(SRC, "targets"))
CANARIES = [t["id"] for t in json.load(open(os.path.join(SRC, "targets", "canaries.json")))["targets"]]


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    else:
        print("ok:", what)


def probe(args, timeout=120, env=None):
    e = dict(ENV)
    e.update(env or {})
    t0 = time.monotonic()
    try:
        p = subprocess.run([PROBE] + args, capture_output=True, text=True, timeout=timeout, env=e,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        p = subprocess.CompletedProcess(args, -1, "", "timeout")
    p.elapsed = time.monotonic() - t0
    return p


def listed(p):
    return [l.split()[0] for l in p.stdout.splitlines()[1:] if l.strip()]


# ---- --categories on a big list ----------------------------------------------------------------
# What it keeps (its speed against the unfiltered list is bench/target-lists': the filter built a
# list of ids and looked each one up by a scan of the list, 70000 rows took 30 s with
# --categories and 2 s without).
BIG = os.path.join(tmp, "big.csv")
with open(BIG, "w") as f:
    f.write(HEADER)
    for i in range(70000):
        f.write("http://h%d.example/,%s,,,,\n" % (i, "NEWS" if i % 2 else "HUMR"))
plain = probe(["targets", "--citizenlab", BIG])
filt = probe(["targets", "--citizenlab", BIG, "--categories", "NEWS"])
# (and the default canaries, as with every Citizen Lab-only run)
check(plain.returncode == 0 and "%d targets" % (70000 + len(CANARIES)) in plain.stderr, "70000 rows load (%s)"
      % plain.stderr.strip()[-80:])
check(filt.returncode == 0 and "%d targets" % (35000 + len(CANARIES)) in filt.stderr,
      "--categories NEWS keeps 35000 (%s)" % filt.stderr.strip()[-80:])
typo = probe(["targets", "--citizenlab", BIG, "--categories", "NEWZ"])
check(typo.returncode == 1 and "there are: canary HUMR NEWS" in typo.stderr,
      "an unknown category names the others (%s)" % typo.stderr.strip()[-80:])

# ---- the canaries stay ---------------------------------------------------------------------
# Without them an offline probe says "unclear", not probe_offline (README's own
# `make run ARGS="--only x-web,telegram-dc"`).
p = probe(["targets", "--only", "x-web"])
ids = listed(p)
check(p.returncode == 0 and sorted(ids) == sorted(CANARIES + ["x-web"]),
      "--only x-web keeps the canaries (%r)" % ids)
p = probe(["targets", "--only", "x-web", "--no-canaries"])
check(listed(p) == ["x-web"], "--only x-web --no-canaries: x-web alone (%r)" % listed(p))
SMALL = os.path.join(tmp, "pk.csv")
with open(SMALL, "w") as f:
    f.write(HEADER + "http://a.example/,NEWS,,,,\n")
p = probe(["targets", "--citizenlab", SMALL])
ids = listed(p)
check(p.returncode == 0 and ids == CANARIES + ["citizenlab-pk-a.example"],
      "a Citizen Lab list alone gets the default canaries, first (%r %s)" % (ids, p.stderr))
p = probe(["targets", "--citizenlab", SMALL, "--no-canaries"])
check(listed(p) == ["citizenlab-pk-a.example"], "--no-canaries: the list alone (%r)" % listed(p))
p = probe(["targets", "--categories", "vpn", "--no-canaries"])
check(p.returncode == 0 and listed(p) and not set(listed(p)) & set(CANARIES),
      "--categories vpn --no-canaries: no canary (%r)" % listed(p))
p = probe(["targets", "--no-canaries"])
check(p.returncode == 0 and listed(p) and not set(listed(p)) & set(CANARIES),
      "--no-canaries alone drops the canaries of the default lists")

if os.geteuid() == 0 and subprocess.run(["sh", "-c", "command -v unshare"],
                                        capture_output=True).returncode == 0:
    out = os.path.join(tmp, "offline.jsonl")
    e = dict(ENV, VANTAGE_ACCEPT_RISKS="yes")
    try:
        r = subprocess.run(["timeout", "120", "unshare", "-n", PROBE, "run", "--only", "x-web",
                            "--no-upload", "--state-dir", os.path.join(tmp, "state"),
                            "--timeout", "2", "--quiet", "--output", out],
                           env=e, capture_output=True, text=True, timeout=150,
                           stdin=subprocess.DEVNULL)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = -1, "timeout"
    got = {}
    if os.path.exists(out):
        for line in open(out):
            m = json.loads(line)
            got[m["annotations"]["target_id"]] = m["test_keys"].get("verdict")
    check(rc == 0 and got.get("x-web") == "probe_offline"
          and set(got.values()) == {"probe_offline"},
          "offline (unshare -n), --only x-web: probe_offline, not unclear (%d %r %s)"
          % (rc, got, err.strip()[-200:]))
else:
    print("skip: the offline run needs root and unshare")

subprocess.run(["rm", "-rf", tmp])
if failures:
    print("test_probe_lists: %d FAILED" % len(failures))
    sys.exit(1)
print("test_probe_lists: ok")
