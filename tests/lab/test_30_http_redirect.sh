#!/usr/bin/env bash
# Lab scenario 30: HTTP redirects to a blockpage host (Pakistan's and Indonesia's ISPs answer a
# blocked site's plain-HTTP request so). An in-path middlebox (tests/lab/middlebox.py in
# vt-censor) answers requests for the three sites on port 80 itself with a 302; the real server is
# never reached:
#   target.lab -> http://blockpage.lab/?u=target.lab   a known blockpage: confirmed
#   other.lab  -> http://10.99.2.66:81/blocked          the blockpage address refuses the hop
#   slow.lab   -> http://warning.lab/                   the blockpage host does not resolve
# The control loads every page without a redirect: http_blocking for all three. A hop that fails
# is the censor's answer as much as a blockpage, not this device's trouble.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control fingerprints
lab_setup
lab_censor python3 -u "$LAB_SRC_DIR/tests/lab/middlebox.py" --port 9080 --lifetime 300 \
    target.lab=302:http://blockpage.lab/?u=target.lab \
    "other.lab=302:http://$LAB_BLOCKPAGE_IP:81/blocked" \
    slow.lab=302:http://warning.lab/ >"$LAB_DIR/middlebox.out" 2>&1 &
lab_wait_port vt-client "$LAB_ISP_DNS" 9080
for ip in "$LAB_TARGET_IP" 10.99.2.11; do # target.lab and other.lab; slow.lab
    lab_censor iptables -t nat -A PREROUTING -i "$LAB_IF_CLI" -p tcp -d "$ip" --dport 80 \
        -j REDIRECT --to-ports 9080
done
LAB_TARGETS=$LAB_DIR/targets-redirect.json
cat >"$LAB_TARGETS" <<EOT
{"version": 1, "list": "lab-redirect", "targets": [
 {"id": "lab-canary", "name": "Lab canary", "platform": "canary", "category": "canary",
  "kind": "web", "endpoints": ["https://canary.lab/"],
  "large_resource": "https://canary.lab/large.bin"},
 {"id": "lab-target-http", "name": "Lab target (plain HTTP)", "platform": "lab-target",
  "category": "social", "kind": "web", "endpoints": ["http://target.lab/"]},
 {"id": "lab-other-http", "name": "Lab neighbour (plain HTTP)", "platform": "lab-other",
  "category": "social", "kind": "web", "endpoints": ["http://other.lab/"]},
 {"id": "lab-slow-http", "name": "Lab slow site (plain HTTP)", "platform": "lab-slow",
  "category": "social", "kind": "web", "endpoints": ["http://slow.lab/"]},
 {"id": "lab-target", "name": "Lab target (HTTPS)", "platform": "lab-target",
  "category": "social", "kind": "web", "endpoints": ["https://target.lab/"]}
]}
EOT
lab_probe
lab_show
lab_assert lab-target-http verdict=http_blocking verdict_phase=http failure=null x_redirects=1 \
    blocking_confirmed=true evidence.fingerprint=vantage.lab_body_blockpage
lab_assert lab-other-http verdict=http_blocking verdict_phase=http failure=connection_refused \
    x_redirects=1 evidence.control.failure=null "verdict_reason~=redirected here to 10.99.2.66"
lab_assert lab-slow-http verdict=http_blocking verdict_phase=http failure=dns_nxdomain_error \
    x_redirects=1 evidence.control.failure=null "verdict_reason~=redirected here to warning.lab"
lab_assert lab-target verdict=ok
lab_assert lab-canary verdict=ok
