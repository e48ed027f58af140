#!/usr/bin/env bash
# Lab scenario 24 (VPN, protocol blocked by DPI, ports open): the censor drops, on UDP only,
#  - OpenVPN's hard reset: first payload byte 0x38 (P_CONTROL_HARD_RESET_CLIENT_V2) on 1194;
#  - WireGuard initiations: 176-byte IP packets (148-byte payload) whose first byte is 0x01 on
#    51820;
#  - IKE_SA_INIT: exchange type 34 at offset 18 of the IKE header (after the SPIs, next
#    payload and version) on 500.
# The ports stay open to other traffic: datagrams of other shapes to the same ports (kind
# "port", echoed by vt-control) are answered, and OpenVPN over TCP 1194 works; datagrams shaped
# like the protocols' first messages to the same echo are dropped, which shows the match is on
# content. Each DPI rule's counter must have matched. The look-alikes are declared as such
# ("mimics": the protocol), so the probe's verdict can use them (docs/methodology.md): each VPN
# handshake over UDP is protocol blocking ("blocking": "protocol", verdict tls_blocking, phase
# handshake), with the look-alike named as the evidence; OpenVPN over TCP still works.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/vpn.sh"
vpn_require
vpn_wait_free
lab_setup
vpn_setup
PAYLOAD='0>>22&0x3C@8' # u32: the first 4 bytes of the UDP payload (any IP header length)
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p udp --dport 1194 \
    -m u32 --u32 "$PAYLOAD>>24=0x38" -j DROP
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p udp --dport 51820 -m length --length 176 \
    -m u32 --u32 "$PAYLOAD>>24=0x01" -j DROP
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p udp --dport 500 \
    -m u32 --u32 "0>>22&0x3C@23&0xFF=34" -j DROP
# Look-alikes of each first message, sent to the echo on the same port.
python3 - "$LAB_TARGETS" "$VPN_ECHO_IP" <<'PY'
import json, sys
p, ip = sys.argv[1], sys.argv[2]
d = json.load(open(p))
def port(i, n, payload, mimics):
    d["targets"].append({"id": i, "name": n, "platform": "lab-vpn", "category": "vpn",
                         "kind": "port", "transport": "udp", "payload_hex": payload.hex(),
                         "mimics": mimics, "endpoints": ["%s:%d" % (ip, int(i.split("-")[2]))]})
port("vpn-shape-1194", "an OpenVPN hard reset look-alike", b"\x38" + bytes(13), "openvpn")
port("vpn-shape-51820", "a WireGuard initiation look-alike", b"\x01" + bytes(147), "wireguard")
ike = bytes(8) + bytes(8) + b"\x21\x20\x22\x08" + bytes(4) + (28).to_bytes(4, "big")
port("vpn-shape-500", "an IKE_SA_INIT look-alike", ike, "ikev2")
json.dump(d, open(p, "w"))
PY
lab_probe
lab_show
lab_assert lab-canary verdict=ok evidence.canaries_ok=true
shape() { case $1 in vpn-ovpn-*) echo 1194 ;; vpn-wg) echo 51820 ;; vpn-ike) echo 500 ;; esac; }
for id in vpn-ovpn-udp vpn-ovpn-ta vpn-wg vpn-ike; do
    p=$(shape "$id")
    lab_assert "$id" verdict=tls_blocking blocking=protocol verdict_phase=handshake \
        reachable=false failure_phase=handshake failure=generic_timeout_error rtt_ms=null \
        evidence.canaries_ok=true blocking_confirmed=false evidence.vpn.replied=false \
        "evidence.vpn.mimic_blocked.0~=^vpn-shape-$p .*:$p/udp$" evidence.vpn.control_input=null
done
# the addresses are up (their address_check connected): DPI, not an address block
for id in vpn-ovpn-udp vpn-ovpn-ta vpn-wg vpn-ike; do
    lab_assert "$id" evidence.vpn.address_silent=false "evidence.vpn.address_up~=:9030/tcp"
done
# The DPI drops OpenVPN's reset on UDP 1194 whatever the address: the garbage server's too.
lab_assert vpn-garbage-openvpn verdict=tls_blocking blocking=protocol
# The garbage server answers the other protocols: their wrong answers are not blocking.
for p in wireguard ikev2; do
    lab_assert "vpn-garbage-$p" verdict=inconclusive blocking=null evidence.vpn.replied=true
done
lab_assert vpn-wg-unprovisioned verdict=inconclusive failure=null inconclusive_reason=no_provisioned_key
# The ports are open to other traffic ...
for p in 1194 51820 500; do
    lab_assert "vpn-port-$p" verdict=ok reachable=true failure=null 'rtt_ms>=0.001'
done
lab_assert vpn-ovpn-tcp verdict=ok blocking=null reachable=true 'rtt_ms>=0.001'
lab_assert vpn-port-tcp-1194 verdict=ok reachable=true
# ... and closed to what looks like the protocol.
for p in 1194 51820 500; do
    lab_assert "vpn-shape-$p" verdict=inconclusive reachable=false inconclusive_reason=udp_no_reply
done
# Every DPI rule dropped something (the u32/length matches work on this kernel).
lab_censor iptables -nvxL FORWARD >"$LAB_DIR/forward.txt"
for p in 1194 51820 500; do
    n=$(awk -v p="dpt:$p" '$3 == "DROP" && index($0, p) && /u32/ {print $1}' "$LAB_DIR/forward.txt")
    [ "${n:-0}" -ge 1 ] || { cat "$LAB_DIR/forward.txt" >&2; lab_die "the DPI rule on $p matched ${n:-0} packets"; }
done
# The volunteer's summary names it in words: the VPN's protocol is blocked.
"$LAB_PROBE" summary "$LAB_OUT" | grep -E '^lab-vpn +[0-9]+ +blocked \(VPN protocol, by DPI\)' ||
    lab_die "the summary does not say the VPN protocol is blocked"
