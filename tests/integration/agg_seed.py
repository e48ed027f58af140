"""Seed data for the aggregation, dashboard and report tests: three days of hourly measurements
in PK on two networks with known episodes (imported by test_aggregation_api.py and
test_dashboard.py; not a test itself).

Injected, in UTC:
  AS17557 whatsapp   dns_blocking, confirmed   2026-11-21 06:00 .. 18:00  (4 probes)
  AS23674 youtube    throughput 128 kbit/s      2026-11-22 00:00 .. 08:00  (3 probes; slowdown)
  AS23674 everything failing, canaries too     2026-11-21 02:00 .. 04:00  (outage)
  AS17557 signal     tcp_blocking from ONE probe all along (must not become an episode)
  AS17557 a target named <script>alert(1)</script>, always ok
and new_block(), uploaded later: AS9541 whatsapp tcp_blocking 2026-11-22 18:00 .. 23 00:00,
one probe's failures intermittent.
"""
import calendar
import json
import os
import time
import urllib.request

START = calendar.timegm(time.strptime("2026-11-20 00:00:00", "%Y-%m-%d %H:%M:%S"))
HOURS = 72
SCRIPT = "<script>alert(1)</script>"

NETS = {"AS17557": 4, "AS23674": 3}
TARGETS = [  # target_id, platform, category
    ("whatsapp-web", "whatsapp", "messaging"),
    ("youtube-web", "youtube", "video"),
    ("canary-example", "canary", "canary"),
    (SCRIPT, "evil", "test"),
]


def hour_str(h):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(START + h * 3600))


def in_range(h, a, b):
    return hour_str(h) >= a and hour_str(h) < b


def meas(h, asn, probe, tid, platform, cat, verdict="ok", confirmed=False, lat=0.05, bps=2e7,
         intermittent=False):
    t = START + h * 3600 + probe * 60
    m = {
        "data_format_version": "0.2.0",
        "measurement_start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)),
        "test_start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)),
        "probe_cc": "PK",
        "probe_asn": asn,
        "probe_ip": "127.0.0.1",
        "report_id": "%s-%s-probe%d-h%d" % (time.strftime("%Y%m%dT%H", time.gmtime(t)), asn, probe, h),
        "test_name": "web_connectivity",
        "test_version": "0.1.0",
        "software_name": "vantage-probe",
        "software_version": "0.1.0",
        "input": "https://%s.invalid/" % platform,
        "measurement_uid": os.urandom(16).hex(),
        "annotations": {"target_id": tid, "target_name": tid, "platform": platform,
                        "category": cat, "kind": "web"},
        "test_keys": {"verdict": verdict, "blocking_confirmed": confirmed,
                      "failure": None if verdict == "ok" else "generic_timeout_error",
                      "tcp_connect": [{"ip": "127.0.0.1", "port": 443, "t0": 1.0,
                                       "t": 1.0 + lat, "status": {"success": True,
                                                                   "failure": None}}],
                      "throughput_bps": bps},
    }
    if verdict != "ok":  # as vantage-probe writes it (lib/verdict.c): always there
        m["test_keys"]["evidence"] = {"intermittent": intermittent}
    return m


def measurements():
    out = []
    for h in range(HOURS):
        for asn, nprobes in NETS.items():
            outage = asn == "AS23674" and in_range(h, "2026-11-21 02:00:00", "2026-11-21 04:00:00")
            for p in range(nprobes):
                for tid, plat, cat in TARGETS:
                    v, conf, lat, bps = "ok", False, 0.05 + 0.002 * p, 2e7
                    if outage:
                        v = "down" if plat == "canary" else "probe_offline"
                    elif (asn == "AS17557" and plat == "whatsapp"
                          and in_range(h, "2026-11-21 06:00:00", "2026-11-21 18:00:00")):
                        v, conf = "dns_blocking", True
                    elif (asn == "AS23674" and plat == "youtube"
                          and in_range(h, "2026-11-22 00:00:00", "2026-11-22 08:00:00")):
                        bps = 128000 * (1 + 0.02 * p)
                    out.append(meas(h, asn, p, tid, plat, cat, v, conf, lat, bps))
            if asn == "AS17557":  # one lone probe claiming signal is blocked, all the time
                out.append(meas(h, asn, 9, "signal-web", "signal", "messaging", "tcp_blocking",
                                False))
    return out


NEW_BLOCK_ASN = "AS9541"
NEW_BLOCK_START, NEW_BLOCK_END = "2026-11-22 18:00:00", "2026-11-23 00:00:00"


def new_block():
    """A third network's day, uploaded after the rest: whatsapp blocked (tcp) by all 3 probes
    for its last 6 hours, still going at the newest hour; probe 1's 6 failures intermittent
    (tried again, they worked, then failed again)."""
    out = []
    for h in range(48, 72):
        for p in range(3):
            for tid, plat, cat in TARGETS[:3]:
                v = "ok"
                if plat == "whatsapp" and in_range(h, NEW_BLOCK_START, NEW_BLOCK_END):
                    v = "tcp_blocking"
                out.append(meas(h, NEW_BLOCK_ASN, p, tid, plat, cat, v, False,
                                intermittent=v != "ok" and p == 1))
    return out


def upload(base, ms, batch=500):
    for i in range(0, len(ms), batch):
        body = ("\n".join(json.dumps(m) for m in ms[i:i + batch]) + "\n").encode()
        req = urllib.request.Request(base + "/api/v1/measurements", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(req, timeout=30) as r:
            js = json.loads(r.read())
            if js.get("rejected"):
                raise RuntimeError("rejected: %r" % js["results"][:3])
