#!/usr/bin/env bash
# Lab scenario 29: a TLS alert instead of a reset: an in-path middlebox (tests/lab/middlebox.py,
# in vt-censor) answers a ClientHello naming target.lab with a fatal handshake_failure alert, as
# some filtering boxes do, and passes every other connection to the real server. The failure is
# the alert (ssl_failed_handshake), which a server could send too; the control completes the
# handshake: TLS blocking.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
lab_censor python3 -u "$LAB_SRC_DIR/tests/lab/middlebox.py" --port 9443 --lifetime 300 \
    target.lab=alert >"$LAB_DIR/middlebox.out" 2>&1 &
lab_wait_port vt-client "$LAB_ISP_DNS" 9443
lab_censor iptables -t nat -A PREROUTING -i "$LAB_IF_CLI" -p tcp -d "$LAB_TARGET_IP" --dport 443 \
    -j REDIRECT --to-ports 9443
lab_probe
lab_show
lab_assert lab-target verdict=tls_blocking verdict_phase=tls failure=ssl_failed_handshake \
    evidence.control.failure=null
lab_assert lab-other verdict=ok verdict_phase=null failure=null
lab_assert lab-target-http verdict=ok
lab_assert lab-canary verdict=ok
