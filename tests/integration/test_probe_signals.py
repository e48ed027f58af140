#!/usr/bin/env python3
"""A run stopped by SIGTERM or SIGINT (systemd stopping the service, a shutdown, Ctrl-C) loses
nothing it measured: no target starts after the signal, the measurement in flight finishes within
its timeout, a VPN measurement held for the run's VPN verdicts is written too, everything is in
the spool for the next upload, and the exit code is 7 (with --no-upload: no check-in before the run). A second signal stops at once. A signal during the last commit (fsyncs slowed by strace) loses nothing.

Targets: an OpenVPN endpoint on a closed UDP port (over at once, then held until the run's other
VPN targets end), then web targets on a server that accepts and never answers (each ends at the
HTTP timeout), then a second OpenVPN endpoint that is never reached. Loopback only."""
import atexit
import json
import os
import shutil
import signal
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
tmp = tempfile.mkdtemp(prefix="vt-signals-")
atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # it was left behind after every run


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def closed_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def closed_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# A server that accepts and never answers (closed when the test ends). Its accepts tell the test
# when a web target is in flight: the run is measuring, so its signal handlers are in place (a
# sleep would not do on a slow or sanitized build, where start-up can take seconds).
stall = socket.socket()
stall.bind(("127.0.0.1", 0))
stall.listen(64)
SPORT = stall.getsockname()[1]
accepted = []
accepted_cv = threading.Condition()


def accept_forever():
    while True:
        try:
            conn, _ = stall.accept()
        except OSError:
            return
        with accepted_cv:
            accepted.append(conn)
            accepted_cv.notify_all()


threading.Thread(target=accept_forever, daemon=True).start()


def wait_measuring(before, what):
    """Until the stall server has a connection more than before (bounded: 60 s)."""
    with accepted_cv:
        ok = accepted_cv.wait_for(lambda: len(accepted) > before, timeout=60)
    check(ok, "%s: a web target is in flight" % what)
    time.sleep(0.2)

targets = [{"id": "vpn-first", "name": "first", "platform": "test", "category": "vpn",
            "kind": "openvpn", "endpoints": ["127.0.0.1:%d" % closed_udp_port()]}]
for i in range(5):
    targets.append({"id": "web-%d" % i, "name": "web %d" % i, "platform": "test",
                    "category": "social", "kind": "web",
                    "endpoints": ["http://127.0.0.1:%d/%d" % (SPORT, i)]})
targets.append({"id": "vpn-last", "name": "last", "platform": "test", "category": "vpn",
                "kind": "openvpn", "endpoints": ["127.0.0.1:%d" % closed_udp_port()]})
TARGETS = os.path.join(tmp, "targets.json")
with open(TARGETS, "w") as f:
    json.dump({"version": 1, "list": "signals", "targets": targets}, f)

ENV = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
ENV.update(HOME=os.path.join(tmp, "home"), XDG_CONFIG_HOME=os.path.join(tmp, "xdg"),
           VANTAGE_SYSTEM_CONFIG=os.path.join(tmp, "none.conf"))
TIMEOUT_S = 3


def start(name, targets_file=TARGETS):
    state = os.path.join(tmp, name)
    out = os.path.join(tmp, name + ".jsonl")
    p = subprocess.Popen([PROBE, "run", "--targets", targets_file, "--accept-risks", "--quiet",
                          "--state-dir", state, "--no-upload",
                          "--timeout", str(TIMEOUT_S), "--concurrency", "1", "--output", out],
                         env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p, state, out


def finish(p):
    """Waits for the run to end (bounded: it is killed after the in-flight timeouts)."""
    try:
        return p.communicate(timeout=TIMEOUT_S * 4 + 10)[1], True
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()[1], False


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def spooled(state):
    d = os.path.join(state, "spool")
    return sorted(n for n in os.listdir(d) if n.endswith(".json")) if os.path.isdir(d) else []


for signame, sig in (("SIGTERM", signal.SIGTERM), ("SIGINT", signal.SIGINT)):
    n0 = len(accepted)
    p, state, out = start(signame.lower())
    # vpn-first ends at once (port unreachable), web-0 waits for its HTTP timeout: a signal once
    # web-0 is connected lands while it is in flight and vpn-first is held for the VPN verdicts.
    wait_measuring(n0, signame)
    if sig == signal.SIGTERM:
        # probe/main.c executes itself once with GNUTLS_NO_IMPLICIT_INIT=1 where GnuTLS is loaded
        # (Debian's libcurl links it, unused): same pid, and the signals above still work.
        with open("/proc/%d/maps" % p.pid) as f:
            gnutls = "libgnutls" in f.read()
        with open("/proc/%d/environ" % p.pid, "rb") as f:
            env = f.read().split(b"\0")
        check(not gnutls or b"GNUTLS_NO_IMPLICIT_INIT=1" in env,
              "GnuTLS (%s) is not initialised: GNUTLS_NO_IMPLICIT_INIT=1 in the run's environment"
              % ("loaded" if gnutls else "not loaded"))
    t_sig = time.time()
    p.send_signal(sig)
    err, ended = finish(p)
    if not ended:
        check(False, "%s: the run ended after the signal" % signame)
        continue
    took = time.time() - t_sig
    ids = [m["annotations"]["target_id"] for m in lines(out)]
    check(p.returncode == 7, "%s: exit code 7 (got %s; stderr: %s)" % (signame, p.returncode,
                                                                      err.strip()[-300:]))
    check("stopping" in err and "stopped early" in err,
          "%s: says it is stopping and that it stopped early" % signame)
    check("vpn-first" in ids, "%s: the held VPN measurement is written (%s)" % (signame, ids))
    check("web-0" in ids, "%s: the measurement in flight finished and is written" % signame)
    check("vpn-last" not in ids and "web-4" not in ids,
          "%s: no target started after the signal (%s)" % (signame, ids))
    check(len(spooled(state)) == len(ids) and len(ids) >= 2,
          "%s: every measurement written is in the spool (%d spooled, %d written)"
          % (signame, len(spooled(state)), len(ids)))
    vpn = [m for m in lines(out) if m["annotations"]["target_id"] == "vpn-first"]
    check(bool(vpn) and "blocking" in vpn[0]["test_keys"],
          "%s: the held VPN measurement has its verdict" % signame)
    print("%s: the run ended %.1f s after the signal" % (signame, took))
    with open(os.path.join(state, "last-run.json")) as f:
        check(json.load(f).get("exit_code") == 7, "%s: last-run.json records exit 7" % signame)

# Stopped while the canaries run (their measurements wait for the last canary): the canary in
# flight ends, and it is written with its verdict; nothing after it starts.
CANARY = os.path.join(tmp, "canary.json")
with open(CANARY, "w") as f:
    json.dump({"version": 1, "list": "canary", "targets": [
        {"id": "canary-%d" % i, "name": "canary", "platform": "test", "category": "canary",
         "kind": "web", "endpoints": ["http://127.0.0.1:%d/c%d" % (SPORT, i)]} for i in range(2)]
        + targets[1:3]}, f)
n0 = len(accepted)
p, state, out = start("canary", CANARY)
wait_measuring(n0, "among the canaries")
p.send_signal(signal.SIGTERM)
finish(p)
ids = [m["annotations"]["target_id"] for m in lines(out)]
check(p.returncode == 7 and ids == ["canary-0"],
      "stopped among the canaries: the one in flight is written, nothing else (%s, exit %s)"
      % (ids, p.returncode))
check(len(spooled(state)) == 1, "stopped among the canaries: it is spooled")
check(all(m["test_keys"].get("verdict") for m in lines(out)), "the canary has its verdict")

# A second signal does not wait for the measurement in flight.
n0 = len(accepted)
p, state, out = start("twice")
wait_measuring(n0, "twice")
p.send_signal(signal.SIGINT)
time.sleep(0.3)
t_sig = time.time()
p.send_signal(signal.SIGINT)
finish(p)
took = time.time() - t_sig
check(p.returncode == -signal.SIGINT, "a second SIGINT kills the run (returncode %s)"
      % p.returncode)
check(took < 1.5, "a second SIGINT stops at once (%.2f s)" % took)

# A signal during the last batch's fsyncs (a slow SD card; strace delays every fsync after the
# second by 1 s): it is caught, not the default action that would kill the process with the
# batch half committed. Every measurement of the run is spooled and written.
if shutil.which("strace"):
    FAST = os.path.join(tmp, "closed-ports.json")
    with open(FAST, "w") as f:
        json.dump({"version": 1, "targets": [
            {"id": "closed-%d" % i, "name": "closed", "platform": "test", "category": "test",
             "kind": "port", "endpoints": ["127.0.0.1:%d" % closed_tcp_port()]}
            for i in range(4)]}, f)
    state, out = os.path.join(tmp, "slow-disk"), os.path.join(tmp, "slow-disk.jsonl")
    p = subprocess.Popen(["strace", "-f", "-o", "/dev/null", "-e", "trace=fsync",
                          "-e", "inject=fsync:delay_enter=1s:when=3+",
                          PROBE, "run", "--targets", FAST, "--accept-risks", "--quiet",
                          "--state-dir", state, "--no-upload", "--timeout", "2",
                          "--output", out],
                         # LeakSanitizer cannot run under ptrace (a sanitized build's exit 1)
                         env=dict(ENV, ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") +
                                                     ":detect_leaks=0").lstrip(":")),
                         stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    probe_pid = None
    for _ in range(100):  # strace's child, once it has become the probe
        r = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "vantage-probe"],
                           capture_output=True, text=True)
        if r.stdout.strip():
            probe_pid = int(r.stdout.split()[0])
            break
        time.sleep(0.02)
    def staged():  # measured: written to the spool's tmp/, or already renamed into it
        t = os.path.join(state, "spool", "tmp")
        return len(os.listdir(t)) if os.path.isdir(t) else 0
    deadline = time.time() + 30
    while time.time() < deadline and staged() + len(spooled(state)) < 4:
        time.sleep(0.02)
    time.sleep(0.2)  # the commits are in their delayed fsyncs (each a second)
    if probe_pid:
        os.kill(probe_pid, signal.SIGTERM)
    try:
        p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    check(probe_pid is not None, "slow disk: the probe started under strace")
    check(len(spooled(state)) == 4 and len(lines(out)) == 4,
          "slow disk: a signal during the last commit loses nothing (%d spooled, %d written, "
          "strace exit %s)" % (len(spooled(state)), len(lines(out)), p.returncode))
    check(p.returncode == 7, "slow disk: and the run ends as stopped early (exit %s)" % p.returncode)
else:
    print("skip: strace missing: the slow-disk signal case")

stall.close()
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("probe signals: ok")
