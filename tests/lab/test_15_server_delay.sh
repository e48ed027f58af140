#!/usr/bin/env bash
# Lab scenario 15: a slow server is not a blocked one, and the probe's latency is the server's.
# delay.lab answers /delay?ms=N after N ms (tests/servers/httpserver.py in vt-server, no
# interference anywhere): the verdict is ok, and the time to the first byte the probe reports for
# the delayed path is the imposed delay longer than without it, measured in the same run. The kernel
# has no netem, so the delay is the server's; bench/lab-accuracy reports the error in ms.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
LAB_DELAY_MS=${LAB_DELAY_MS:-500}
LAB_DELAY_IP=10.99.2.12
lab_setup
lab_server python3 -u "$LAB_SRC_DIR/tests/servers/httpserver.py" --bind "$LAB_DELAY_IP" \
    --http-port 80 --https-port 443 --cert "$LAB_DIR/pki/server.pem,$LAB_DIR/pki/server.key" \
    --lifetime 300 >"$LAB_DIR/delay-server.out" 2>&1 &
lab_wait_port vt-client "$LAB_DELAY_IP" 443
LAB_TARGETS=$LAB_DIR/targets-delay.json
cat >"$LAB_TARGETS" <<EOF
{"version": 1, "list": "lab-delay", "targets": [
 {"id": "lab-canary", "name": "Lab canary", "platform": "canary", "category": "canary",
  "kind": "web", "endpoints": ["https://canary.lab/"]},
 {"id": "lab-delay-0", "name": "Lab server, no delay", "platform": "lab-delay",
  "category": "social", "kind": "web", "endpoints": ["https://delay.lab/delay?ms=0"]},
 {"id": "lab-delay", "name": "Lab server, slow", "platform": "lab-delay", "category": "social",
  "kind": "web", "endpoints": ["https://delay.lab/delay?ms=$LAB_DELAY_MS"]}
]}
EOF
lab_probe
lab_show
lab_assert lab-delay-0 verdict=ok verdict_phase=null failure=null http_status=200 title=Delayed
lab_assert lab-delay verdict=ok verdict_phase=null failure=null http_status=200 title=Delayed
# The server's think time as the probe saw it (x_timings: starttransfer - pretransfer, the time
# from the request sent to the first byte) with the delay, less the same without it.
python3 - "$LAB_OUT" "$LAB_DELAY_MS" <<'EOF' || lab_die "the reported latency is not the server's"
import json, sys
ms = {json.loads(l)["annotations"]["target_id"]: json.loads(l) for l in open(sys.argv[1])}
def ttfb(tid):
    rq = [r for r in ms[tid]["test_keys"]["requests"] if "/delay" in r["request"]["url"]]
    tm = rq[-1]["x_timings"]
    return (tm["starttransfer"] - tm["pretransfer"]) * 1000
extra = ttfb("lab-delay") - ttfb("lab-delay-0")
err = extra - float(sys.argv[2])
print("lab: delay imposed %s ms, measured %.1f ms, error %+.1f ms" % (sys.argv[2], extra, err),
      file=sys.stderr)
# Loose here (CI machines are busy); bench/lab-accuracy reports the error's distribution.
sys.exit(0 if abs(err) < 50 else 1)
EOF
