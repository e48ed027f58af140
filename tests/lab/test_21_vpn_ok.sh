#!/usr/bin/env bash
# Lab scenario 21 (VPN, no interference): real OpenVPN (UDP, TCP, tls-auth), WireGuard
# (wireguard-go, the probe's key provisioned), IKEv2 (charon), SSTP (vpn-tls.py) and OpenConnect
# (ocserv, when installed) in vt-server are reachable through the censor, with a handshake RTT;
# WireGuard with a key the server does not know is inconclusive (never blocked); a server
# answering garbage is a failure of each protocol's handshake, and the probe neither crashes nor
# fails (exit 0). A server that is down (its address there, nothing listening) is never called
# blocked: down when the control cannot connect either, else inconclusive.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
vpn_wait_free
lab_setup
vpn_setup
lab_probe
lab_show
lab_assert lab-canary verdict=ok evidence.canaries_ok=true
for id in vpn-ovpn-udp vpn-ovpn-tcp vpn-ovpn-ta vpn-wg vpn-ike vpn-sstp; do
    lab_assert "$id" verdict=ok verdict_phase=null reachable=true failure=null failure_phase=null \
        'rtt_ms>=0.001' evidence.canaries_ok=true
done
[ "$VPN_OC" = 1 ] && lab_assert vpn-ocserv verdict=ok reachable=true failure=null 'rtt_ms>=0.001' \
    handshakes.1.config_auth=true
lab_assert vpn-ovpn-tcp handshakes.0.transport=tcp
lab_assert vpn-ovpn-ta handshakes.0.hmac_verified=true
lab_assert vpn-wg handshakes.0.authenticated=true
lab_assert vpn-ike 'handshakes.0.spi_r!=0000000000000000'
lab_assert vpn-sstp handshakes.1.status_code=200
lab_assert vpn-wg-unprovisioned verdict=inconclusive verdict_phase=null reachable=false \
    failure=null inconclusive_reason=no_provisioned_key
for p in openvpn wireguard ikev2; do
    lab_assert "vpn-garbage-$p" reachable=false failure_phase=handshake "failure~=^${p}_" \
        verdict=inconclusive verdict_phase=null
done
if [ -n "${LAB_CONTROL_URL:-}" ]; then
    lab_assert vpn-down verdict=down blocking=null reachable=false failure_phase=handshake \
        failure=connection_refused evidence.vpn.address_silent=true \
        evidence.vpn.control_input=10.99.2.38:9030 evidence.control.failure=connection_refused
else
    # nothing listens: an ICMP port unreachable, which a filter could forge; never blocking
    lab_assert vpn-down verdict=inconclusive blocking=null failure=connection_refused \
        inconclusive_reason=udp_port_refused evidence.vpn.refused=true
fi
# No secret in the measurements or the probe's messages.
python3 - "$VPN_DIR/secrets.json" "$LAB_OUT" "$LAB_DIR/probe.err" <<'PY' || lab_die "a secret leaked"
import json, sys
sec = json.load(open(sys.argv[1]))
blob = open(sys.argv[2]).read() + open(sys.argv[3]).read()
lines = [l for l in sec["lab_ta"].splitlines() if len(l) == 32]
assert len(lines) == 16, len(lines)
assert not any(l in blob for l in lines), "tls-auth key"
assert sec["lab_wg"][:16] not in blob, "wireguard key"
PY
