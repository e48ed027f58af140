#!/usr/bin/env python3
"""The dashboard in a real browser: seeds a collector over the upload API (agg_seed.py, including a
target named <script>alert(1)</script>), loads / in headless Chromium and checks what is shown
(country grid with the seeded platforms and their colours, the episodes, the script text shown as
text), that the page logged no console errors or CSP refusals, and saves screenshots (desktop and
phone width) into the build directory. Exit 77 only when Chromium or Chart.js cannot be installed."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agg_seed  # noqa: E402

BUILD = os.environ.get("VT_BUILD_DIR", "build")
CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def ensure(pkg, present):
    if present():
        return True
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", pkg],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return present()


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


if not ensure("chromium", chromium):
    print("skip: chromium not installed and cannot be installed")
    sys.exit(77)
if not ensure("libjs-chart.js", lambda: os.path.exists(CHARTJS)):
    print("skip: libjs-chart.js not installed and cannot be installed")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="vt-dash-")
proc = subprocess.Popen([os.path.join(BUILD, "collector", "vantage-collector"), "serve",
                         "--listen", "127.0.0.1:0", "--db", "sqlite:" + os.path.join(tmp, "c.db"),
                         "--rate", "0"], stderr=subprocess.PIPE, text=True)
try:
    port = None
    deadline = time.time() + 10
    while time.time() < deadline and port is None:
        line = proc.stderr.readline()
        m = re.search(r"listening on port (\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        print("FAIL collector did not start")
        sys.exit(1)
    base = "http://127.0.0.1:%d" % port
    agg_seed.upload(base, agg_seed.measurements())
    agg_seed.upload(base, agg_seed.new_block())  # a block still going at the newest hour
    # Episodes come from the collector's refresh timer (every 2 s): wait for it, bounded.
    t0 = time.time()
    while time.time() - t0 < 15:
        with urllib.request.urlopen(base + "/api/v1/episodes?since=2026-11-01", timeout=10) as r:
            if json.loads(r.read())["count"] >= 4:
                break
        time.sleep(0.2)

    with urllib.request.urlopen(base + "/", timeout=10) as r:
        csp = r.headers.get("Content-Security-Policy", "")
        check("default-src 'self'" in csp and "script-src 'self'" in csp and
              "unsafe-inline" not in csp, "/ sends a CSP without inline script")
        check(r.headers.get("X-Content-Type-Options") == "nosniff", "/ sends nosniff")
        html = r.read().decode()
        check("<script>" not in html.replace("<script src=", ""), "index.html has no inline script")
    with urllib.request.urlopen(base + "/static/vendor/chart.js", timeout=10) as r:
        check(r.status == 200 and b"Chart.js" in r.read(2000), "Chart.js served from the system")

    def browser(extra, url):
        prof = tempfile.mkdtemp(prefix="vt-chrome-", dir=tmp)
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--user-data-dir=" + prof, "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=15000"] + extra + [url]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        return p.stdout, p.stderr

    dom, err = browser(["--window-size=1200,2000", "--dump-dom"], base + "/?cc=PK")
    open(os.path.join(BUILD, "dashboard-dom.html"), "w").write(dom)
    check('data-state="ready"' in dom, "the page finished loading its data")
    check("Could not load" not in dom, "no load error shown")
    for plat in ("whatsapp", "youtube", "canary", "signal", "evil"):
        check(re.search(r'<th scope="col">%s</th>' % plat, dom) is not None,
              "country grid has a column for " + plat)
    check(re.search(r'<td class="st-blocked" data-platform="whatsapp" data-network="AS17557">', dom)
          is not None, "whatsapp on AS17557 is coloured blocked")
    check(re.search(r'<td class="st-slow" data-platform="youtube" data-network="AS23674">', dom)
          is not None, "youtube on AS23674 is coloured slowed")
    check(re.search(r'<td class="st-(ok|mixed)" data-platform="signal" data-network="AS17557">',
                    dom) is not None, "one probe's claims about signal do not colour it blocked")
    check(">48 / 288<" in dom, "grid shows counts (48 anomalous of 288)")
    check(re.search(r'data-platform="whatsapp" data-network="AS9541"><span>18 / 72</span>'
                    r'<span class="n">\d+ probe-hours</span><span class="n">6 intermittent</span>',
                    dom) is not None, "grid: AS9541's whatsapp cell counts its 6 intermittent")
    rows = re.findall(r'<tr class="episode">(.*?)</tr>', dom)
    check(len(rows) == 4, "four episodes listed (got %d)" % len(rows))
    # The block at the end of the data is ongoing there, which need not be now (the data here
    # is days old): the dashboard says which.
    check(any("AS9541" in r and "2026-11-23 00:00:00 (ongoing in the newest data)" in r
              for r in rows) and "(ongoing)" not in dom,
          "an episode reaching the newest data: 'ongoing in the newest data', not '(ongoing)'")
    check(any("AS9541" in r and "intermittent in 6 measurements (tried again, it worked, then "
              "failed again)" in r for r in rows),
          "the AS9541 block says its failures were intermittent in 6 measurements")
    check(any("blocking (confirmed)" in r and "2026-11-21 06:00:00" in r and
              "2026-11-21 18:00:00" in r for r in rows), "the confirmed whatsapp block with its times")
    check(any("slowdown" in r and "128 kbit/s policer" in r for r in rows),
          "the youtube slowdown names the 128 kbit/s policer")
    check(any("outage" in r and "AS23674" in r for r in rows), "the outage on AS23674")
    # The column holds evidence.max_probes (4 for a 12-hour block with 48 runs): not "Probes".
    check("<th>Most probes in an hour</th>" in dom and "<th>Probes</th>" not in dom,
          "episodes: the runs column says it is the most in one hour")
    check("&lt;script&gt;alert(1)&lt;/script&gt;" in dom, "the <script> target name shows as text")
    check("<script>alert(1)" not in dom, "no <script> element from probe data")
    check(re.search(r'<canvas id="c-share"[^>]*style="display: block', dom) is not None,
          "Chart.js drew the blocked-share chart")
    bad = [line for line in err.splitlines()
           if "CONSOLE" in line or "Uncaught" in line or "Refused to" in line
           or "Content Security Policy" in line]
    check(not bad, "no console errors or CSP refusals" + ("" if not bad else ": " + bad[0][:300]))

    dom, err = browser(["--window-size=1200,1200", "--dump-dom"], base + "/?cc=ZZ&since=2026-11-01")
    # ...and does not tell the reader nothing was blocked there: there is nothing to go on.
    check('data-state="ready"' in dom and "No measurements for this country and range." in dom
          and "No blocks, slowdowns or outages detected." not in dom and
          "No measurements in this range: nothing can be said about blocking." in dom,
          "a country without data says so, not that nothing was blocked")
    bad = [line for line in err.splitlines() if "CONSOLE" in line or "Refused to" in line]
    check(not bad, "no console errors without data" + ("" if not bad else ": " + bad[0][:300]))

    shot = os.path.join(BUILD, "dashboard.png")
    phone = os.path.join(BUILD, "dashboard-phone.png")
    for f in (shot, phone):
        if os.path.exists(f):
            os.unlink(f)
    browser(["--window-size=1200,2000", "--screenshot=" + shot], base + "/?cc=PK")
    browser(["--window-size=390,1600", "--screenshot=" + phone], base + "/?cc=PK")
    check(os.path.exists(shot) and os.path.getsize(shot) > 20000, "screenshot saved: " + shot)
    check(os.path.exists(phone) and os.path.getsize(phone) > 10000, "phone screenshot: " + phone)
finally:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failures else 0)
