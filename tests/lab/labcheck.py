#!/usr/bin/env python3
"""Checks the probe's JSONL output in lab tests (no jq needed).

usage: labcheck.py OUT.jsonl TARGET_ID CHECK...     (exit 1 and a report when a check fails)
       labcheck.py OUT.jsonl --show                 (one line per measurement)
       labcheck.py OUT.jsonl --all CHECK...         (every measurement must pass)

CHECK: key=value, key!=value, key~=regex, key>=number, key<=number, key? (present, not null).
key is a dotted path into test_keys ("evidence.sni_swap"); a path starting with "/" is from the
top of the measurement ("/annotations/target_id"). Values compare as plain text: null, true,
false, numbers as JSON writes them, strings unquoted.
"""
import json
import re
import sys


def load(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                sys.exit("labcheck: %s:%d: not JSON: %s" % (path, n, e))
    return out


def tid(m):
    return (m.get("annotations") or {}).get("target_id", "?")


def get(m, key):
    if key.startswith("/"):
        node, parts = m, [p for p in key.split("/") if p]
    else:
        node, parts = m.get("test_keys") or {}, key.split(".")
    for p in parts:
        if isinstance(node, dict) and p in node:
            node = node[p]
        elif isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        else:
            return KeyError
    return node


def text(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def check(m, c):
    for op in ("!=", "~=", ">=", "<=", "="):
        if op in c:
            key, want = c.split(op, 1)
            break
    else:
        if c.endswith("?"):
            v = get(m, c[:-1])
            return v is not KeyError and v is not None, "%s is %s" % (c[:-1], shown(v))
        return False, "bad check %r" % c
    v = get(m, key)
    if v is KeyError:
        return False, "%s is missing" % key
    got = text(v)
    if op == "=":
        ok = got == want
    elif op == "!=":
        ok = got != want
    elif op == "~=":
        ok = re.search(want, got) is not None
    else:
        try:
            num = float(v)
        except (TypeError, ValueError):
            return False, "%s is %s, not a number" % (key, got)
        ok = num >= float(want) if op == ">=" else num <= float(want)
    return ok, "%s is %s (want %s %s)" % (key, got, op, want)


def shown(v):
    return "missing" if v is KeyError else text(v)


def summary(m):
    keys = ("verdict", "verdict_phase", "failure_phase", "failure", "blocking_confirmed",
            "throughput_bps", "verdict_reason", "evidence")
    return "%-14s %s" % (tid(m), " ".join("%s=%s" % (k, shown(get(m, k))) for k in keys))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    ms = load(argv[1])
    if argv[2] == "--show":
        for m in ms:
            print(summary(m))
        return 0
    if argv[2] == "--all":
        sel = ms
        if not sel:
            print("labcheck: no measurements")
            return 1
    else:
        sel = [m for m in ms if tid(m) == argv[2]]
        if not sel:
            print("labcheck: no measurement of %s; have: %s" % (argv[2], [tid(m) for m in ms]))
            return 1
    bad = 0
    for m in sel:
        for c in argv[3:]:
            ok, why = check(m, c)
            if not ok:
                print("labcheck: %s: %s" % (tid(m), why))
                bad += 1
    if bad:
        for m in ms:
            print("  " + summary(m))
        return 1
    for m in sel:
        print("labcheck: ok %s" % summary(m))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
