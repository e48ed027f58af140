#!/usr/bin/env python3
"""vantage-probe's target lists on the command line: big Citizen Lab lists filtered with
--categories in linear time.

Only `vantage-probe targets` runs here (it lists, it never measures)."""
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
           VANTAGE_SYSTEM_CONFIG=os.path.join(tmp, "none.conf"))


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


# ---- --categories on a big list: linear ---------------------------------------------------------
# The filter built a list of ids and looked each one up by a scan of the list: 70000 rows took
# 30 s with --categories and 2 s without. Compared with the same run without the filter, so that
# a slow machine does not fail the check.
BIG = os.path.join(tmp, "big.csv")
with open(BIG, "w") as f:
    f.write(HEADER)
    for i in range(70000):
        f.write("http://h%d.example/,%s,,,,\n" % (i, "NEWS" if i % 2 else "HUMR"))
plain = probe(["targets", "--citizenlab", BIG])
filt = probe(["targets", "--citizenlab", BIG, "--categories", "NEWS"])
check(plain.returncode == 0 and "70000 targets" in plain.stderr, "70000 rows load (%s)"
      % plain.stderr.strip()[-80:])
check(filt.returncode == 0 and "35000 targets" in filt.stderr,
      "--categories NEWS keeps 35000 (%s)" % filt.stderr.strip()[-80:])
check(filt.elapsed < 3 * plain.elapsed + 2,
      "--categories is linear: %.2f s, %.2f s without it" % (filt.elapsed, plain.elapsed))
typo = probe(["targets", "--citizenlab", BIG, "--categories", "NEWZ"])
check(typo.returncode == 1 and "there are: HUMR NEWS" in typo.stderr
      and typo.elapsed < 3 * plain.elapsed + 2,
      "an unknown category names the others, in linear time: %.2f s (%s)"
      % (typo.elapsed, typo.stderr.strip()[-80:]))

subprocess.run(["rm", "-rf", tmp])
if failures:
    print("test_probe_lists: %d FAILED" % len(failures))
    sys.exit(1)
print("test_probe_lists: ok")
