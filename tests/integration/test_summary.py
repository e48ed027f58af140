#!/usr/bin/env python3
"""`vantage-probe summary FILE`: one row per platform, its most serious result in words, the
counts behind it; VPN measurements with a blocking class (address, port, protocol) are named by
that class, not by the web phase their verdict borrows."""
import json
import os
import subprocess
import sys
import tempfile

BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")


def m(platform, verdict, blocking=None, confirmed=False, intermittent=None):
    tk = {"verdict": verdict, "blocking_confirmed": confirmed}
    if intermittent is not None:
        tk["evidence"] = {"intermittent": intermittent}
    if blocking is not None:
        tk["blocking"] = blocking
    return {"annotations": {"platform": platform}, "test_keys": tk}


rows = [
    m("x", "tls_blocking", intermittent=False), m("x", "ok"), m("x", "dns_blocking", confirmed=True),
    # a block that lets a share of connections through (evidence.intermittent): said so
    m("telegram", "tcp_blocking", intermittent=True), m("telegram", "tls_blocking", intermittent=True),
    m("wireguard", "tls_blocking", "protocol"), m("wireguard", "ok"),
    m("openvpn", "tcp_blocking", "port"), m("tor", "tcp_blocking", "address"),
    m("ikev2", "inconclusive", None), m("signal", "ok"), m("canary", "probe_offline"),
    # no verdict (another tool's measurement): never "reachable"; failed without one
    {"annotations": {"platform": "ooni"}, "test_keys": {"failure": None}},
    {"annotations": {"platform": "old"}, "test_keys": {"failure": "generic_timeout_error"}},
]
# not measurements at all (a target file given by mistake, an empty object): skipped
junk = [{"version": 1, "targets": []}, {}]
want = {
    "x": ("blocked (DNS tampering)", "1 dns_blocking, 1 tls_blocking, 1 ok, 1 confirmed"),
    "wireguard": ("blocked (VPN protocol, by DPI)", "1 protocol_blocked, 1 ok"),
    "openvpn": ("blocked (VPN port)", "1 port_blocked"),
    "tor": ("blocked (VPN server address)", "1 address_blocked"),
    "ikev2": ("unclear (not enough evidence)", "1 inconclusive"),
    "signal": ("reachable", "1 ok"),
    "telegram": ("blocked (connections cut)", "1 tcp_blocking, 1 tls_blocking, 2 intermittent"),
    "canary": ("your connection was offline", "1 probe_offline"),
    "ooni": ("no verdict recorded", "1 unknown"),
    "old": ("failed (no verdict)", "1 failed"),
}


def main():
    if not os.path.exists(PROBE):
        print("skip: vantage-probe not built")
        return 77
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in rows + junk:
            f.write(json.dumps(r) + "\n")
    try:
        out = subprocess.run([PROBE, "summary", f.name], capture_output=True, text=True,
                             timeout=20)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        print("test_summary: FAIL: exit %d: %s" % (out.returncode, out.stderr))
        return 1
    lines = out.stdout.splitlines()
    print(out.stdout)
    bad = []
    for platform, (words, counts) in want.items():
        line = next((l for l in lines if l.split()[:1] == [platform]), None)
        if not line or words not in line or counts.split(", 1 confirmed")[0] not in line:
            bad.append("%s: want %r / %r, got %r" % (platform, words, counts, line))
    x = next(l for l in lines if l.startswith("x "))
    if "1 confirmed by blockpage" not in x:
        bad.append("x: the confirmed count is missing")
    if "intermittent" in x:
        bad.append("x: intermittent said of no intermittent measurement")
    if lines[-2].split()[0] != "canary":
        bad.append("canaries are not the last row")
    if "%d measurements." % len(rows) not in lines[-1]:
        bad.append("total line: %r" % lines[-1])
    if out.stderr.count("not a JSON measurement, skipped") != len(junk):
        bad.append("the non-measurements were not skipped: %r" % out.stderr)
    h = subprocess.run([PROBE, "summary", "--help"], capture_output=True, text=True, timeout=20)
    if h.returncode != 0 or "usage: vantage-probe summary" not in h.stdout:
        bad.append("summary --help: %d %r" % (h.returncode, h.stdout + h.stderr))
    if "\033[" in out.stdout:
        bad.append("colour codes when output is not a terminal")
    for b in bad:
        print("test_summary: FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
