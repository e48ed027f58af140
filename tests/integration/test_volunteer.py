#!/usr/bin/env python3
"""The probe on a volunteer's machine: the consent gate (non-interactive refusal with exit 6,
--accept-risks, accept_risks in probe.conf, the environment, a typed yes or no on a pty, a
recorded consent of an older notice version), probe.conf precedence (system < user < --config <
flags), its file:line:key errors, "# note" comments and "~/" paths, the run lock (a held lock,
silent with --quiet unless stuck, and two real overlapping runs: exit 5), what cron mails when
the collector is down, answers 404 or is not set at all, --jitter bounds, `status` on fixture
state directories (text and JSON, damaged files, a fake systemctl), and `make install
DESTDIR=...` / `cmake --install --prefix` with the installed binaries run from the staging
directory.

Runs measure only a loopback endpoint on a closed port; nothing leaves 127.0.0.1."""
import fcntl
import http.server
import json
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("VT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VT_BUILD_DIR", os.path.join(SRC, "build"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
if not os.access(PROBE, os.X_OK):
    print("skip: %s not built" % PROBE)
    sys.exit(77)

failures = []
tmp = tempfile.mkdtemp(prefix="vt-volunteer-")


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    else:
        print("ok:", what)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def target_file(path, tid, category="social", port=None):
    doc = {"version": 1, "list": tid, "targets": [{
        "id": tid, "name": tid, "platform": "test", "category": category, "kind": "endpoint",
        "endpoints": ["127.0.0.1:%d" % (port or closed_port())]}]}
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


# A clean environment: no real config, state or acceptance leaks in.
ENV = {k: v for k, v in os.environ.items()
       if k not in ("VANTAGE_ACCEPT_RISKS", "VANTAGE_UPLOAD_TOKEN", "VANTAGE_TARGETS")}
ENV.update(HOME=os.path.join(tmp, "home"), XDG_CONFIG_HOME=os.path.join(tmp, "xdg"),
           XDG_STATE_HOME=os.path.join(tmp, "xstate"),
           VANTAGE_SYSTEM_CONFIG=os.path.join(tmp, "etc", "probe.conf"))
os.makedirs(ENV["HOME"])
LOOP = target_file(os.path.join(tmp, "loop.json"), "loop-closed")
RUN = ["run", "--targets", LOOP, "--no-upload", "--timeout", "2", "--concurrency", "2"]


def probe(args, env=None, stdin=subprocess.DEVNULL, timeout=60, binary=PROBE):
    e = dict(ENV)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([binary] + args, env=e, stdin=stdin, capture_output=True, text=True,
                       timeout=timeout)
    p.elapsed = time.monotonic() - t0
    return p


def state(name):
    return os.path.join(tmp, "states", name)


def run_in(name, extra=(), env=None, **kw):
    st = state(name)
    return probe(RUN + ["--state-dir", st, "--output", os.path.join(tmp, name + ".jsonl")]
                 + list(extra), env=env, **kw)


def consent_fields(st):
    path = os.path.join(st, "consent")
    if not os.path.exists(path):
        return None
    return dict(line.split("=", 1) for line in open(path).read().splitlines()
                if "=" in line and not line.startswith("#"))


def read_lastrun(st):
    try:
        return json.load(open(os.path.join(st, "last-run.json")))
    except (OSError, ValueError):
        return {}


# ---- consent --------------------------------------------------------------------------------
p = run_in("c1")
check(p.returncode == 6, "no acceptance, not a terminal: exit 6 (got %d)" % p.returncode)
check("not measuring" in p.stderr and "--accept-risks" in p.stderr,
      "the refusal says why and how to accept")
check(not os.path.exists(os.path.join(tmp, "c1.jsonl")), "refused run wrote no output")
check(not os.path.exists(state("c1")), "refused run created no state (nothing spooled)")

p = run_in("c1", env={"VANTAGE_ACCEPT_RISKS": "no"})
check(p.returncode == 6, "VANTAGE_ACCEPT_RISKS=no is no acceptance")

p = run_in("c1", ["--accept-risks"])
check(p.returncode not in (2, 5, 6), "--accept-risks proceeds (exit %d)" % p.returncode)
c = consent_fields(state("c1"))
check(c is not None and c.get("version") == "1" and c.get("how") == "--accept-risks",
      "--accept-risks is recorded with version and how: %r" % c)
check(c is not None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c.get("date", "")),
      "the consent records the date")
check(os.path.exists(os.path.join(state("c1"), "last-run.json")), "the run wrote last-run.json")
lr = json.load(open(os.path.join(state("c1"), "last-run.json")))
check(lr.get("targets") == 1 and lr.get("exit_code") == p.returncode,
      "last-run.json: 1 target, the run's exit code (%r)" % lr)

p = run_in("c1")
check(p.returncode != 6, "a recorded consent lets later unattended runs measure")

write(os.path.join(state("c2"), "consent"), "version=0\ndate=2020-01-01T00:00:00Z\n")
p = run_in("c2")
check(p.returncode == 6, "a consent to an older notice version is asked for again")

conf = write(os.path.join(tmp, "accept.conf"), "# test\n\naccept_risks = yes\n")
p = run_in("c3", ["--config", conf])
check(p.returncode != 6, "accept_risks = yes in --config proceeds")
c = consent_fields(state("c3")) or {}
check(c.get("how", "").endswith("accept.conf:3"), "how names the config file and line: %r" % c)

p = run_in("c4", env={"VANTAGE_ACCEPT_RISKS": "yes"})
check(p.returncode != 6, "VANTAGE_ACCEPT_RISKS=yes proceeds")


# A target of a kind this probe does not know: skipped, said with the probe's own prefix.
unk = write(os.path.join(tmp, "unknown-kind.json"), json.dumps({"version": 1, "targets": [
    {"id": "v1", "name": "x", "platform": "p", "category": "c", "kind": "nosuchkind",
     "endpoints": ["127.0.0.1:9"]}]}))
p = probe(["run", "--accept-risks", "--no-upload", "--targets", unk, "--state-dir",
           state("k1"), "--output", os.devnull])
check(p.returncode == 3 and "vantage-probe: v1: skipped: no measurement of this kind" in p.stderr,
      "an unknown kind: skipped with the vantage-probe: prefix, exit 3 (%d %r)"
      % (p.returncode, p.stderr[-300:]))


def run_pty(name, answer, output=True):
    """Runs with stdin (and stdout, stderr) on a pty, answers the prompt."""
    pid, fd = pty.fork()
    st = state(name)
    if pid == 0:
        out = ["--output", os.path.join(tmp, name + ".jsonl")] if output else []
        os.execve(PROBE, [PROBE] + RUN + ["--state-dir", st] + out, ENV)
    out, deadline, answered = b"", time.monotonic() + 30, False
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not answered and b"Type yes" in out:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


rc, out = run_pty("c5", "no")
check(rc == 6 and "IP address is never" in out and "risks" in out,
      "on a terminal the notice is shown and 'no' refuses (exit %d)" % rc)
check(consent_fields(state("c5")) is None, "a refusal is not recorded")
rc, out = run_pty("c6", "YES")
check(rc != 6 and (consent_fields(state("c6")) or {}).get("how") == "typed yes at the prompt",
      "a typed yes on a terminal proceeds and is recorded (exit %d)" % rc)

# Without --output on a terminal, the JSON goes to the state directory, not over the screen.
rc, out = run_pty("c7", "yes", output=False)
lr = os.path.join(state("c7"), "last-run.jsonl")
check(rc != 6 and "measurement_uid" not in out and lr in out,
      "on a terminal without --output no JSON is printed, the file is named (exit %d)" % rc)
check(os.path.exists(lr) and all("measurement_uid" in json.loads(l) for l in open(lr)) and
      len(open(lr).readlines()) == 1, "... and the measurement is in last-run.jsonl")

p = probe(["consent"])
check(p.returncode == 0 and "never" in p.stdout and "uploaded" in p.stdout,
      "`consent` prints the notice")

# ---- configuration ---------------------------------------------------------------------------
os.makedirs(os.path.join(tmp, "cfg"))
T = {n: target_file(os.path.join(tmp, "cfg", "t-%s.json" % n), "t-" + n)
     for n in ("sys", "user", "explicit", "flag")}
SYS = ENV["VANTAGE_SYSTEM_CONFIG"]
USER = os.path.join(ENV["XDG_CONFIG_HOME"], "vantage", "probe.conf")
EXPL = os.path.join(tmp, "cfg", "explicit.conf")


def listed(args=(), env=None):
    p = probe(["targets"] + list(args), env=env)
    ids = [l.split()[0] for l in p.stdout.splitlines()[1:] if l.strip()]
    return p, ids


def status_dir(args=()):
    p = probe(["status", "--json"] + list(args))
    try:
        return json.loads(p.stdout).get("state_dir")
    except ValueError:
        return None


write(SYS, "[probe]\ntargets = %s\nstate_dir = %s\n" % (T["sys"], os.path.join(tmp, "s-sys")))
p, ids = listed()
check(ids == ["t-sys"], "system file alone: its targets (%r %s)" % (ids, p.stderr.strip()))
check(status_dir() == os.path.join(tmp, "s-sys"), "system file alone: its state_dir")
# the user file names its targets relative to its own directory
write(USER, "targets = t-user.json\nstate_dir = %s\n" % os.path.join(tmp, "s-user"))
shutil.copy(T["user"], os.path.join(os.path.dirname(USER), "t-user.json"))
p, ids = listed()
check(ids == ["t-user"], "user file overrides the system file, relative path (%r %s)"
      % (ids, p.stderr.strip()))
check(status_dir() == os.path.join(tmp, "s-user"), "user file overrides state_dir")
write(EXPL, "targets = %s\nstate_dir = %s\n" % (T["explicit"], os.path.join(tmp, "s-expl")))
p, ids = listed(["--config", EXPL])
check(ids == ["t-explicit"], "--config overrides the user file (%r)" % ids)
check(status_dir(["--config", EXPL]) == os.path.join(tmp, "s-expl"), "--config state_dir")
p, ids = listed(["--config=" + EXPL, "--targets", T["flag"]])
check(ids == ["t-flag"], "--targets overrides every file (%r)" % ids)
check(status_dir(["--config", EXPL, "--state-dir", os.path.join(tmp, "s-flag")])
      == os.path.join(tmp, "s-flag"), "--state-dir overrides every file")
# a key only the system file sets survives the later files
write(SYS, "targets = %s, %s\ncategories = social\n" % (T["sys"], T["flag"]))
write(USER, "; nothing about targets here\n")
p, ids = listed()
check(ids == ["t-sys", "t-flag"], "comma list of targets; later files keep unset keys (%r)" % ids)
write(USER, "categories = nosuch\n")
p, ids = listed()
check(p.returncode == 1 and "nosuch" in p.stderr and "social" in p.stderr,
      "an unknown category is an error naming the ones there are")
# An indented line continues the list above it (targets, categories): it used to replace it.
MSG = target_file(os.path.join(tmp, "cfg", "t-msg.json"), "t-msg", category="messaging")
write(EXPL, "targets = %s,\n  %s\n\t%s, %s\ncategories = messaging,\n  social\n"
      % (T["sys"], T["user"], T["flag"], MSG))
p, ids = listed(["--config", EXPL])
check(ids == ["t-sys", "t-user", "t-flag", "t-msg"],
      "indented lines add to targets and categories (%r %s)" % (ids, p.stderr.strip()))
os.remove(USER)
os.remove(SYS)

BAD = [
    ("concurency = 3\n", 1, "concurency", "did you mean concurrency"),
    ("# ok\nconcurrency = 0\n", 2, "concurrency", "1..1000"),
    ("\n\njitter = 9999\n", 3, "jitter", "0..3600"),
    ("upload = maybe\n", 1, "upload", "yes or no"),
    ("quiet = yes\nthis line has no equals sign\n", 2, None, "key = value"),
    ("[server]\ntimeout = 5\n", 2, "timeout", "section"),
    ("collector_url = ftp://x\n", 1, "collector_url", "https"),
    ("state_dir =\n", 1, "state_dir", "no value"),
    ("targets = " + "x" * 300 + "\n", 1, None, "longer than"),
    ("quiet = no\ntargets = " + "y" * 300 + "\n", 2, None, "continues on indented lines"),
    ("Timeout = 5\n", 1, "Timeout", "did you mean timeout"),
    ("jitter = 1\x00x\nquiet = yes\n", 1, None, "NUL byte"),
    ("quiet = yes\njitter = 1\x00\n", 2, None, "NUL byte"),
    ("collector_url = http://collector.invalid/\n", 1, "collector_url", "plain http only"),
    ("timeout = 5\n  7\n", 2, "timeout", "only targets and categories continue"),
    ("[probe]\n  targets = a.json\n  timeout = 5\n", 3, "targets", "looks like a key"),
    ("categories = social\n\n   upload = no\n", 3, "categories", "looks like a key"),
    ("targets = %s\n " % (",".join(["a"] * 20)) + ",".join(["b"] * 13) + "\n", 2, "targets",
     "at most 32"),
    ("resolver = 999.9.9.9\n", 1, "resolver", "IP or IP:PORT"),
    ("quiet = no\nresolver = 192.0.2.1:99999\n", 2, "resolver", "IP or IP:PORT"),
    ("resolver = dns.example\n", 1, "resolver", "IP or IP:PORT"),
    ("sni_test_every = 721\n", 1, "sni_test_every", "0..720"),
    ("sni_test_evry = 24\n", 1, "sni_test_evry", "did you mean sni_test_every"),
]
for text, line, key, words in BAD:
    path = write(os.path.join(tmp, "bad.conf"), text)
    p = probe(["targets", "--config", path])
    want = "%s:%d: %s" % (path, line, key + ":" if key else "")
    check(p.returncode == 2 and want in p.stderr and words in p.stderr,
          "bad config %r: exit 2 naming %s (%r)" % (text[:30], want, p.stderr.strip()[:160]))
# errors in the system file name the system file; a missing --config is an error
write(SYS, "ok = 1\n")
p = probe(["targets"])
check(p.returncode == 2 and SYS + ":1: ok:" in p.stderr, "system file error names it")
os.remove(SYS)
p = probe(["targets", "--config", os.path.join(tmp, "missing.conf")])
check(p.returncode == 2 and "missing.conf" in p.stderr, "a missing --config file is an error")
p = probe(["targets", "--config"])
check(p.returncode == 2, "--config without a file is a usage error")
p = probe(["targets", "--config", tmp])
check(p.returncode == 2 and "%s: is a directory" % tmp in p.stderr,
      "--config DIR says it is a directory (%r)" % p.stderr.strip())
for good in ("192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:53"):
    path = write(os.path.join(tmp, "res.conf"), "resolver = %s\n" % good)
    p = probe(["targets", "--config", path, "--targets", LOOP])
    check(p.returncode == 0, "resolver = %s is taken (%r)" % (good, p.stderr.strip()))
# The sample file says "#" starts a comment: one after a value ends it, as " ;" does. It used to
# become part of the value (a state directory named "... # mine", made without a word).
cm = write(os.path.join(tmp, "cfg", "comment.conf"),
           "concurrency = 4 # fewer, for the Pi\ntargets = %s   # the lists\n"
           "state_dir = %s # mine\n" % (T["sys"], os.path.join(tmp, "s-comment")))
p, ids = listed(["--config", cm])
check(p.returncode == 0 and ids == ["t-sys"],
      "'# note' after a value is a comment (%d %r %s)" % (p.returncode, ids, p.stderr.strip()))
check(status_dir(["--config", cm]) == os.path.join(tmp, "s-comment"),
      "'# note' after state_dir is not part of the path (%r)" % status_dir(["--config", cm]))
# "~/" is the home directory, as in a shell; taken as relative, it was a directory named "~"
# beside the config file.
cm = write(os.path.join(tmp, "cfg", "tilde.conf"), "state_dir = ~/vantage-state\n")
check(status_dir(["--config", cm]) == os.path.join(ENV["HOME"], "vantage-state"),
      "state_dir = ~/... is in the home directory (%r)" % status_dir(["--config", cm]))
p = probe(["targets", "--config", cm], env={"HOME": ""})
check(p.returncode == 2 and "tilde.conf:1: state_dir:" in p.stderr and "HOME" in p.stderr,
      "~ without HOME: exit 2 naming the line (%r)" % p.stderr.strip())
# A bad --resolver is a usage error before the run starts: no lock, no last-run.json.
p = run_in("badres", ["--accept-risks", "--resolver", "999.1.1.1"])
check(p.returncode == 2 and "--resolver" in p.stderr and "999.1.1.1" in p.stderr
      and not os.path.exists(state("badres")),
      "--resolver 999.1.1.1: exit 2 naming the flag, nothing started (%d %r)"
      % (p.returncode, p.stderr.strip()))
tok = write(os.path.join(tmp, "token.conf"), "upload_token = secret-token-value\n")
os.chmod(tok, 0o644)
p = probe(["status", "--config", tok])
check("others can read it" in p.stderr and "secret-token-value" not in p.stderr + p.stdout,
      "a readable config file with upload_token is warned about, the token never shown")
os.chmod(tok, 0o600)
p = probe(["status", "--config", tok])
check("others can read it" not in p.stderr, "no warning for a 0600 config file")
# The system file is read by the systemd unit's own user: "chmod 600 it" would stop every timer
# run (exit 2). For that file the warning says to move the token to /etc/vantage/probe.env, and
# a system file the probe cannot read says why.
systok = write(os.path.join(tmp, "etc-tok", "probe.conf"), "upload_token = secret-token-value\n")
os.chmod(systok, 0o644)
p = probe(["status"], env={"VANTAGE_SYSTEM_CONFIG": systok})
check("others can read it" in p.stderr and "probe.env" in p.stderr
      and "chmod 600" not in p.stderr,
      "a token in the system file: move it to probe.env, not chmod 600 (%r)" % p.stderr)
if os.geteuid() == 0 and shutil.which("runuser"):
    os.chmod(tmp, 0o755)  # only the file's mode keeps nobody out
    os.chmod(os.path.dirname(systok), 0o755)
    os.chmod(systok, 0o600)
    p = subprocess.run(["runuser", "-u", "nobody", "--", PROBE, "targets"],
                       env=dict(ENV, VANTAGE_SYSTEM_CONFIG=systok, HOME="/nonexistent",
                                XDG_CONFIG_HOME="/nonexistent"),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    os.chmod(tmp, 0o700)
    check(p.returncode == 2 and "Permission denied" in p.stderr and "0644" in p.stderr
          and "probe.env" in p.stderr,
          "a system file only root can read: exit 2, why and what to do (%d %r)"
          % (p.returncode, p.stderr))

# ---- lock -------------------------------------------------------------------------------------
st = state("lock")
os.makedirs(st)
fd = os.open(os.path.join(st, "run.lock"), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
p = run_in("lock", ["--accept-risks"])
check(p.returncode == 5 and "another run" in p.stderr and p.elapsed < 10,
      "a held run.lock: exit 5 at once with a message (%d, %.1f s)" % (p.returncode, p.elapsed))
# From cron (--quiet) a run that is still going is no news: a crontab starting runs more often
# than they take mailed "another run is in progress" for nearly every one. A run holding the lock
# for hours may be stuck: that is said, with its pid.
os.write(fd, b"%d\n" % os.getpid())
p = run_in("lock", ["--accept-risks", "--quiet"])
check(p.returncode == 5 and p.stderr == "",
      "--quiet, the lock held by a young run: exit 5, nothing printed (%d %r)"
      % (p.returncode, p.stderr))
p = run_in("lock", ["--accept-risks"])
check(p.returncode == 5 and "pid %d" % os.getpid() in p.stderr and "stuck" not in p.stderr,
      "without --quiet the holder is named (%r)" % p.stderr)
old = time.time() - 3 * 3600
os.utime(os.path.join(st, "run.lock"), (old, old))
p = run_in("lock", ["--accept-risks", "--quiet"])
check(p.returncode == 5 and "may be stuck" in p.stderr and "kill %d" % os.getpid() in p.stderr,
      "--quiet, the lock held for 3 hours: said, with the pid (%d %r)" % (p.returncode, p.stderr))
fcntl.flock(fd, fcntl.LOCK_UN)
os.close(fd)
p = run_in("lock", ["--accept-risks"])
check(p.returncode not in (5, 6), "after the lock is released the run proceeds (%d)" % p.returncode)
# Two real runs at once: the first holds the lock through its jitter sleep. The sleep is random
# in [0, 4] s; an attempt counts when it is at least 1.5 s (P(8 misses) < 0.001).
for attempt in range(8):
    first = subprocess.Popen([PROBE] + RUN + ["--state-dir", st, "--jitter", "4", "--output",
                                              os.path.join(tmp, "l1.jsonl")],
                             env=ENV, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    line = first.stderr.readline()
    m = re.search(r"waiting ([0-9.]+) s", line)
    wait = float(m.group(1)) if m else 0
    if wait >= 1.5:
        second = run_in("lock")
        inside = time.monotonic() - t0 < wait - 0.2
    first.communicate(timeout=60)
    if wait >= 1.5 and inside:
        check(second.returncode == 5 and "another run is in progress" in second.stderr,
              "an overlapping second run exits 5 (got %d: %s)"
              % (second.returncode, second.stderr.strip()[:200]))
        check(first.returncode not in (5, 6), "the first run went on (%d)" % first.returncode)
        break
else:
    check(False, "no attempt overlapped two runs")

# ---- a collector that is down, from cron ------------------------------------------------------
# --quiet is for cron, which mails whatever is printed: the outcome of the check-in and of the
# upload, one line each, not a line per retry (there were 2 for the check-in, 5 for the upload).
down = ["run", "--targets", LOOP, "--timeout", "2", "--accept-risks", "--output", "/dev/null",
        "--collector", "http://127.0.0.1:%d" % closed_port(), "--upload-attempts", "3",
        "--upload-backoff-ms", "10"]
p = probe(down + ["--quiet", "--state-dir", state("down-quiet")])
lines = p.stderr.strip().splitlines()
check(p.returncode == 4 and len(lines) == 2 and "check-in" in lines[0]
      and "still spooled" in lines[1] and "attempt 1/" not in p.stderr,
      "collector down, --quiet: one line for the check-in, one for the upload (%d %r)"
      % (p.returncode, p.stderr))
p = probe(down + ["--state-dir", state("down-loud")])
check(p.returncode == 4 and "upload: attempt 1/3 failed" in p.stderr,
      "collector down, without --quiet: each retry is shown (%r)" % p.stderr[-300:])

# No collector and no word that none is meant (a forgotten collector_url, or sudo reading root's
# ~/.config): the measurements piled up in the spool with exit 0 and nothing said, even to cron.
nocoll = [a for a in RUN if a != "--no-upload"] + ["--accept-risks", "--quiet", "--output",
                                                   "/dev/null"]
p = probe(nocoll + ["--state-dir", state("nocoll")])
check(p.returncode == 0 and "no collector is set" in p.stderr and ENV["VANTAGE_SYSTEM_CONFIG"]
      in p.stderr and os.path.join(ENV["XDG_CONFIG_HOME"], "vantage", "probe.conf") in p.stderr,
      "no collector: said, with the config files looked for (%d %r)" % (p.returncode, p.stderr))
p = probe(nocoll + ["--state-dir", state("nocoll"), "--no-upload"])
check(p.returncode == 0 and p.stderr == "", "--no-upload: no collector is meant (%r)" % p.stderr)

# Offline from cron with no collector: every target probe_offline (the canary failed too) used to
# pass in silence with exit 0; one line says so. With the canary reachable, nothing is said.
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(8)
for name, canary_port, want in (("offline", closed_port(), True),
                                ("online", lst.getsockname()[1], False)):
    f = os.path.join(tmp, name + "-targets.json")
    with open(f, "w") as fh:
        json.dump({"version": 1, "list": name, "targets": [
            {"id": "c", "name": "c", "platform": "canary", "category": "canary",
             "kind": "endpoint", "endpoints": ["127.0.0.1:%d" % canary_port]},
            {"id": "t", "name": "t", "platform": "test", "category": "social",
             "kind": "endpoint", "endpoints": ["127.0.0.1:%d" % closed_port()]}]}, fh)
    out = os.path.join(tmp, name + "-out.jsonl")
    p = probe(["run", "--targets", f, "--no-upload", "--timeout", "2", "--accept-risks",
               "--quiet", "--state-dir", state(name), "--output", out])
    verdicts = [json.loads(l)["test_keys"]["verdict"] for l in open(out)] if os.path.exists(out) \
        else []
    said = "connection was offline" in p.stderr
    check(p.returncode == 0 and said == want and
          (verdicts == ["probe_offline"] * 2) == want,
          "--quiet, %s: %s (%r %r)" % (name, "said once" if want else "nothing said", verdicts,
                                        p.stderr))
lst.close()

# A collector URL with /api/v1 in it (pasted from a control URL): the check-in and the upload
# get 404 for .../api/v1/api/v1/...; the message says what the URL should be.
class NotFound(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": "no such endpoint"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


nf = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
threading.Thread(target=nf.serve_forever, daemon=True).start()
p = probe(["run", "--targets", LOOP, "--timeout", "2", "--accept-risks", "--output", "/dev/null",
           "--quiet", "--collector", "http://127.0.0.1:%d/api/v1" % nf.server_address[1],
           "--state-dir", state("notfound")])
nf.shutdown()
nf.server_close()
check(p.returncode == 4 and p.stderr.count("without /api/v1") == 2,
      "a 404 at check-in and upload: the collector URL is said to be wrong (%d %r)"
      % (p.returncode, p.stderr))

# ---- jitter -----------------------------------------------------------------------------------
waits = []
for i in range(3):
    p = run_in("jitter", ["--jitter", "2", "--accept-risks"])
    m = re.search(r"waiting ([0-9.]+) s", p.stderr)
    w = float(m.group(1)) if m else -1
    waits.append((w, p.elapsed))
    check(0 <= w <= 2.0 and p.elapsed >= w - 0.05,
          "--jitter 2 waits %.1f s within [0, 2] and the run took at least that (%.2f s)"
          % (w, p.elapsed))
p = run_in("jitter", ["--jitter", "1", "--quiet"])
check("waiting" not in p.stderr and p.returncode != 2, "--quiet says nothing about the wait")
for bad in ("3601", "-1", "x"):
    p = run_in("jitter", ["--jitter", bad, "--accept-risks"])
    check(p.returncode == 2, "--jitter %s is a usage error" % bad)
p = run_in("jitter", ["--sni-test-every", "721", "--accept-risks"])
check(p.returncode == 2 and "0..720" in p.stderr, "--sni-test-every 721 is a usage error")
p = run_in("jitter", ["--jitter", "0"])
check("waiting" not in p.stderr, "--jitter 0 does not wait")

# A stop during the wait (systemd stopping the service, a cron run killed) ends the run as stopped,
# exit 7, with last-run.json saying why: it used to die of the signal, status showing the run
# before. The wait is random in [0, 30] s; an attempt counts when it is at least 1.5 s.
for attempt in range(6):
    st = state("jitter-stop")
    if os.path.exists(os.path.join(tmp, "js.jsonl")):
        os.unlink(os.path.join(tmp, "js.jsonl"))  # an attempt that was not stopped measured
    p = subprocess.Popen([PROBE] + RUN + ["--state-dir", st, "--jitter", "30", "--accept-risks",
                                          "--output", os.path.join(tmp, "js.jsonl")],
                         env=ENV, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    line = ""
    while "waiting" not in line and time.monotonic() - t0 < 10:
        line = p.stderr.readline()
        if not line:
            break
    m = re.search(r"waiting ([0-9.]+) s", line)
    wait = float(m.group(1)) if m else 0
    if wait >= 1.5:
        time.sleep(0.3)
        p.terminate()
    err = p.communicate(timeout=60)[1]
    elapsed = time.monotonic() - t0
    if wait < 1.5:
        continue
    lr = read_lastrun(st)
    check(p.returncode == 7 and elapsed < wait and "during the --jitter wait" in err,
          "SIGTERM during the jitter wait: exit 7 at once (%d after %.1f s of %.1f: %r)"
          % (p.returncode, elapsed, wait, err[-200:]))
    check(lr.get("exit_code") == 7 and lr.get("measured") == 0 and
          "jitter" in lr.get("error", ""), "... and last-run.json says so (%r)" % lr)
    check(not os.path.exists(os.path.join(tmp, "js.jsonl")) or
          os.path.getsize(os.path.join(tmp, "js.jsonl")) == 0, "... nothing was measured")
    break
else:
    check(False, "no jitter wait of 1.5 s in 6 attempts")

# ---- a run that cannot start --------------------------------------------------------------------
# A target file broken by an edit: from cron the error went to mail (often nowhere) and `status`
# showed the last good run for weeks. Now last-run.json says why, where the state directory
# exists; a state directory is never made for it, and a running run's file is left alone.
bad = write(os.path.join(tmp, "broken.json"), '{"version": 1, "targets": [')
st = state("broken")
p = run_in("broken", ["--accept-risks"])
check(p.returncode == 0, "a run first (exit %d)" % p.returncode)
p = probe(["run", "--targets", bad, "--no-upload", "--state-dir", st, "--accept-risks",
           "--quiet"])
lr = read_lastrun(st)
check(p.returncode == 1 and "broken.json" in p.stderr and lr.get("exit_code") == 1 and
      "broken.json:1:" in lr.get("error", "") and lr.get("measured") == 0,
      "a broken target file: exit 1 and last-run.json names the file and line (%d %r)"
      % (p.returncode, lr))
p = probe(["status", "--state-dir", st])
check(re.search(r"exit code 1\n  error: +.*broken\.json:1:", p.stdout) is not None,
      "status shows the error (%r)" % p.stdout)
p = probe(["status", "--json", "--state-dir", st])
check("broken.json" in (json.loads(p.stdout).get("last_run") or {}).get("error", ""),
      "status --json carries it")
p = run_in("broken", ["--only", "no-such-target", "--accept-risks"])
lr = read_lastrun(st)
check(p.returncode in (1, 3) and lr.get("exit_code") == p.returncode and lr.get("error"),
      "--only matching nothing: last-run.json says why (%d %r)" % (p.returncode, lr))
# another run holds the lock: its last-run.json is left to it
before = open(os.path.join(st, "last-run.json")).read()
fd = os.open(os.path.join(st, "run.lock"), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
p = probe(["run", "--targets", bad, "--no-upload", "--state-dir", st, "--accept-risks"])
fcntl.flock(fd, fcntl.LOCK_UN)
os.close(fd)
check(p.returncode == 1 and open(os.path.join(st, "last-run.json")).read() == before,
      "with the lock held by a run, last-run.json is not touched")
p = probe(["run", "--targets", bad, "--no-upload", "--state-dir", state("never"),
           "--accept-risks"])
check(p.returncode == 1 and not os.path.exists(state("never")),
      "no state directory yet: none is made for a failed start")

# ---- status on fixture state directories ----------------------------------------------------
st = state("fixture")
write(os.path.join(st, "consent"), "version=1\ndate=2026-11-01T10:00:00Z\nhow=test\n")
write(os.path.join(st, "last-run.json"), json.dumps({
    "time": "2026-11-28 06:00:00", "time_epoch": time.time() - 3 * 3600, "duration_s": 42.5,
    "targets": 40, "measured": 38, "verdicts": {"ok": 30, "dns_blocking": 5, "throttled": 3},
    "exit_code": 4}))
write(os.path.join(st, "last-upload.json"), json.dumps({
    "time": "2026-11-28 06:01:00", "time_epoch": time.time() - 3 * 3600, "ok": False,
    "collector": "https://collector.example.org", "accepted": 10, "duplicate": 1, "rejected": 2,
    "left": 25, "requests": 6, "error": "HTTP 503 after 6 attempts\x1b[31m"}))
for i in range(3):
    write(os.path.join(st, "spool", "%032x.json" % i), "{}")
write(os.path.join(st, "spool", "tmp", "x.json.tmp"), "")
write(os.path.join(st, "spool", "rejected", "%032x.json" % 9), "{}")
write(os.path.join(st, "spool", "rejected", "%032x.reason" % 9), "bad")
write(os.path.join(st, "spool", "damaged", "%032x.json" % 8), "{\"cut")
write(os.path.join(st, "spool", "damaged", "%032x.json.reason" % 8), "not a JSON object")
write(os.path.join(st, "spool", "damaged", "notes.txt"), "hello")
write(os.path.join(st, "collector-alternates.json"), json.dumps({
    "collector": "https://collector.example.org\x1b[31m",
    "alternate_urls": ["https://front.example.net", "https://front2.example.net"]}))
write(os.path.join(st, "sni-test.last"), "%d\n" % (time.time() - 5 * 3600))
fakebin = os.path.join(tmp, "fakebin")
write(os.path.join(fakebin, "systemctl"),
      "#!/bin/sh\necho LoadState=loaded\necho 'NextElapseUSecRealtime=Sat 2026-11-28 18:23:00 UTC'\n")
os.chmod(os.path.join(fakebin, "systemctl"), 0o755)
withctl = {"PATH": fakebin + ":" + os.environ.get("PATH", "/usr/bin:/bin")}
p = probe(["status", "--state-dir", st], env=withctl)
out = p.stdout
check(p.returncode == 0, "status exits 0")
check("accepted 2026-11-01T10:00:00Z" in out, "status: consent date")
check("2026-11-28 06:00:00 UTC (3 h ago), 40 targets, 38 measured, exit code 4" in out,
      "status: last run line (%r)" % out)
check("ok 30, dns_blocking 5, throttled 3" in out, "status: verdict counts")
check("3 measurements waiting" in out and "1 rejected" in out and "2 damaged" in out,
      "status: spool counts")
check("FAILED, 10 accepted, 1 already there, 2 rejected, 25 left: HTTP 503" in out
      and "\x1b" not in out, "status: last upload, control bytes dropped")
check("next run:        Sat 2026-11-28 18:23:00 UTC" in out, "status: next timer run")
check("collector:       2 other addresses known for https://collector.example.org" in out,
      "status: the collector's other addresses kept")
check(re.search(r"SNI test: +last done .* UTC \(5 h ago\)", out) is not None,
      "status: when the SNI test was last done")
p = probe(["status", "--json", "--state-dir", st], env=withctl)
j = json.loads(p.stdout)
check(j["spool"] == {"waiting": 3, "rejected": 1, "damaged": 2} and j["consent"]["accepted"] is True
      and j["last_run"]["verdicts"]["dns_blocking"] == 5 and j["last_upload"]["left"] == 25
      and j["next_run"] == "Sat 2026-11-28 18:23:00 UTC"
      and j["collector_alternates"] == ["https://front.example.net", "https://front2.example.net"]
      and abs(j["sni_test_last_epoch"] - (time.time() - 5 * 3600)) < 60, "status --json fields")
write(os.path.join(st, "last-run.json"), "{not json")
write(os.path.join(st, "collector-alternates.json"), "[" * 5000)
write(os.path.join(fakebin, "systemctl"), "#!/bin/sh\necho LoadState=not-found\n")
p = probe(["status", "--json", "--state-dir", st], env=withctl)
j = json.loads(p.stdout)
check(p.returncode == 0 and j["last_run"] is None and j["next_run"] is None
      and j["collector_alternates"] == [] and j["sni_test_last_epoch"] is not None,
      "damaged last-run.json and alternates, no timer: still exit 0, nulls")
p = probe(["status", "--state-dir", st], env={"PATH": "/nonexistent"})
check(p.returncode == 0 and "last run:        damaged" in p.stdout and "unknown" in p.stdout,
      "status without systemctl on PATH")
p = probe(["status", "--state-dir", os.path.join(tmp, "nowhere")])
check(p.returncode == 0 and "does not exist yet" in p.stdout and "none yet" in p.stdout,
      "status of a state directory that does not exist")
# No recorded consent, but probe.conf (or the environment) accepts: runs will not refuse.
fresh = os.path.join(tmp, "fresh-state")
os.makedirs(fresh)
acc = write(os.path.join(tmp, "acc.conf"), "accept_risks = yes\n")
p = probe(["status", "--config", acc, "--state-dir", fresh])
check(p.returncode == 0 and "runs accept by accept_risks in " + acc in p.stdout,
      "status: acceptance by probe.conf is shown, not 'runs refuse' (%r)" % p.stdout)
p = probe(["status", "--state-dir", fresh], env={"VANTAGE_ACCEPT_RISKS": "yes"})
check("runs accept by VANTAGE_ACCEPT_RISKS" in p.stdout, "status: acceptance by the environment")
p = probe(["status", "--state-dir", fresh])
check("not accepted yet (runs refuse" in p.stdout, "status: no acceptance anywhere")
# A state directory this user cannot read (the systemd unit's, without sudo): said so, exit 1.
if os.geteuid() == 0 and shutil.which("runuser"):
    private = os.path.join(tmp, "private")
    os.makedirs(os.path.join(private, "state"))
    os.chmod(private, 0o755)
    os.chmod(os.path.join(private, "state"), 0o700)
    p = subprocess.run(["runuser", "-u", "nobody", "--", PROBE, "status", "--state-dir",
                        os.path.join(private, "state")],
                       env=dict(ENV, VANTAGE_SYSTEM_CONFIG="/nonexistent/probe.conf",
                                XDG_CONFIG_HOME="/nonexistent", HOME="/nonexistent"),
                       capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    check(p.returncode == 1 and "cannot be read: Permission denied; try with sudo" in p.stdout
          and "not accepted" not in p.stdout,
          "status of an unreadable state directory: said so, exit 1 (%d %r)"
          % (p.returncode, p.stdout + p.stderr))

# ---- install ----------------------------------------------------------------------------------
stage = os.path.join(tmp, "stage")
if shutil.which("make") and shutil.which("cmake"):
    mk = subprocess.run(["make", "-s", "-C", SRC, "install", "BUILD=" + BUILD,
                         "DESTDIR=" + stage], capture_output=True, text=True, timeout=600)
    check(mk.returncode == 0, "make install DESTDIR=... (%s)" % mk.stderr.strip()[-300:])
    if mk.returncode != 0:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    prefix = None
    for l in open(os.path.join(BUILD, "CMakeCache.txt")):
        if l.startswith("CMAKE_INSTALL_PREFIX:"):
            prefix = l.split("=", 1)[1].strip()
    root = os.path.join(stage, prefix.lstrip("/"))
    for rel in ("bin/vantage-probe", "share/vantage/targets/social.json",
                "share/vantage/targets/canaries.json", "share/vantage/targets/fingerprints.csv",
                "share/man/man1/vantage-probe.1", "share/man/man1/vantage-collector.1",
                "share/man/man5/probe.conf.5", "share/vantage/probe.conf.example",
                "lib/systemd/system/vantage-probe.service",
                "lib/systemd/system/vantage-probe.timer",
                "lib/systemd/system/vantage-collector.service"):
        check(os.path.exists(os.path.join(root, rel)), "installed %s" % rel)
    if os.path.exists(os.path.join(BUILD, "collector", "vantage-collector")):
        check(os.access(os.path.join(root, "bin", "vantage-collector"), os.X_OK),
              "installed bin/vantage-collector")
    web = os.path.join(SRC, "collector", "web")
    if os.path.isdir(web):
        for name in os.listdir(web):
            check(os.path.exists(os.path.join(root, "share/vantage/web", name)),
                  "installed the dashboard's %s" % name)
    unit = open(os.path.join(root, "lib/systemd/system/vantage-probe.service")).read()
    check("ExecStart=%s/bin/vantage-probe run" % prefix in unit and "@VT_" not in unit,
          "the unit runs the installed binary")
    check("After=network-online.target time-sync.target" in unit,
          "the unit runs after the network is up and the clock is set")
    inst = os.path.join(root, "bin", "vantage-probe")
    p = probe(["--version"], binary=inst)
    check(p.returncode == 0 and p.stdout.startswith("vantage-probe "), "installed --version")
    # the installed binary lists the staged target lists (an extra file proves which copy)
    target_file(os.path.join(root, "share/vantage/targets/zz-staged.json"), "staged-only",
                category="canary")
    p = probe(["targets"], binary=inst)
    ids = [l.split()[0] for l in p.stdout.splitlines()[1:] if l.strip()]
    check(p.returncode == 0 and "staged-only" in ids and len(ids) > 3,
          "the installed probe lists its installed targets (%d)" % len(ids))
    for man in ("man1/vantage-probe.1", "man5/probe.conf.5", "man1/vantage-collector.1"):
        if shutil.which("man"):
            m = subprocess.run(["man", "-l", os.path.join(root, "share/man", man)],
                               capture_output=True, text=True, env=dict(ENV, MANPAGER="cat",
                                                                         PAGER="cat"))
            check(m.returncode == 0 and len(m.stdout) > 500, "man -l %s renders" % man)
    # cmake --install --prefix elsewhere: a relocated install finds its own share/
    pfx = os.path.join(tmp, "prefix2")
    ci = subprocess.run(["cmake", "--install", BUILD, "--prefix", pfx], capture_output=True,
                        text=True, timeout=300)
    check(ci.returncode == 0, "cmake --install --prefix")
    p = probe(["targets"], binary=os.path.join(pfx, "bin", "vantage-probe"))
    check(p.returncode == 0 and len(p.stdout.splitlines()) > 3
          and "staged-only" not in p.stdout, "the relocated probe lists its own targets")
else:
    print("skip install: no make or cmake")

shutil.rmtree(tmp, ignore_errors=True)
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all volunteer checks passed")
