#!/usr/bin/env bash
# vantage-probe against real VPN servers on loopback (Debian's openvpn, wireguard-go,
# strongSwan charon; a Python TLS/Tor-like server), each verdict asserted:
#  - OpenVPN UDP, TCP, UDP with tls-auth (SHA256) and with tls-crypt reachable with an RTT;
#    tls-auth without the
#    key: a handshake failure (the server drops us), never reachable;
#  - WireGuard with a provisioned key (and PSK): an authenticated response; unprovisioned:
#    inconclusive ("no_provisioned_key", failure null);
#  - IKEv2 (NAT-T framing on a high port): our SPI answered with the responder's SPI and chosen
#    SA; offered Curve25519 (which this charon lacks): INVALID_KE_PAYLOAD asking for group 14;
#  - Tor: a real relay (Debian's tor, loopback only) answering the link handshake's VERSIONS;
#    a Tor-like OR TLS + dir-port consensus; a TLS server that is not a relay (a handshake
#    failure, inconclusive); obfs4 as "tcp_connect_only"; SSTP and OpenConnect
#    (a Python endpoint, and Debian's ocserv when installed);
#  - a UDP server answering garbage: a failure for each protocol, no crash;
#  - no secret from the secrets file anywhere in the output or the logs.
# Needs root and /dev/net/tun for the VPN daemons (skips those that cannot run: exit 77 if none).
set -euo pipefail
SRC=${VT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VT_BUILD_DIR:-$SRC/build}
PROBE=${VT_PROBE:-$BUILD/probe/vantage-probe}
S=$SRC/tests/servers
[ -x "$PROBE" ] || { echo "skip: $PROBE not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root (VPN daemons)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
for b in openvpn wireguard-go wg /usr/lib/ipsec/charon python3 openssl; do
    command -v "$b" >/dev/null || { echo "skip: $b missing (scripts/deps.sh lab)"; exit 77; }
done

T=$(mktemp -d /tmp/vt-vpn-XXXXXX)
PIDS=()
cleanup() {
    "$S/vpn-openvpn.sh" stop "$T/ovpn-udp" || true
    "$S/vpn-openvpn.sh" stop "$T/ovpn-tcp" || true
    "$S/vpn-openvpn.sh" stop "$T/ovpn-ta" || true
    "$S/vpn-openvpn.sh" stop "$T/ovpn-tc" || true
    "$S/vpn-wireguard.sh" stop "$T/wg" || true
    "$S/vpn-ikev2.sh" stop "$T/ike" || true
    "$S/vpn-ocserv.sh" stop "$T/oc" || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${VT_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT

# Free ports: bound then released by the kernel's choice.
read -r P_OU P_OT P_OA P_WG P_IKE P_IKEN P_G P_TLS P_DIR P_OC P_OCS P_TOR P_NT < <(python3 -c '
import socket
ss = []
for i in range(13):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if i in (0, 2, 3, 4, 5, 6, 9) else socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0)); ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))')

sh "$S/mkcerts.sh" "$T/certs" >/dev/null
"$S/vpn-openvpn.sh" start "$T/ovpn-udp" 127.0.0.1 "$P_OU" udp
"$S/vpn-openvpn.sh" start "$T/ovpn-tcp" 127.0.0.1 "$P_OT" tcp
"$S/vpn-openvpn.sh" start "$T/ovpn-ta" 127.0.0.1 "$P_OA" udp tls-auth SHA256
"$S/vpn-openvpn.sh" start "$T/ovpn-tc" 127.0.0.1 "$P_OC" udp tls-crypt
"$S/vpn-wireguard.sh" start "$T/wg" "$P_WG" psk
IKE=1
"$S/vpn-ikev2.sh" start "$T/ike" "$P_IKE" "$P_IKEN" conn || { rc=$?; [ $rc = 77 ] && IKE=0 || exit $rc; }

OCS=1
mkdir -p "$T/oc" && cp "$T/certs/"* "$T/oc/" # the same test CA as the probe's --cacert
"$S/vpn-ocserv.sh" start "$T/oc" 127.0.0.1 "$P_OCS" || { rc=$?; [ $rc = 77 ] && OCS=0 || exit $rc; }

python3 -u - "$P_G" >"$T/garbage.log" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(1)
end = time.time() + 120
while time.time() < end:
    try:
        d, a = s.recvfrom(4096)
    except socket.timeout:
        continue
    s.sendto(b"\x40garbage, not a VPN at all: " + bytes(range(64)), a)
EOF
PIDS+=($!)
python3 -u "$S/vpn-tls.py" --cert "$T/certs/good.pem" --key "$T/certs/good.key" \
    --tls-port "$P_TLS" --dir-port "$P_DIR" --lifetime 120 >"$T/tls.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$T/tls.log" 2>/dev/null && break; sleep 0.05; done

# A TLS server that is not a Tor relay: it answers the link handshake with an HTTP error.
python3 -u "$S/tlsserver.py" --cert "$T/certs/good.pem,$T/certs/good.key" --port "$P_NT" \
    --reply "$(printf 'HTTP/1.1 400 Bad Request\r\n\r\n' | od -An -tx1 | tr -d ' \n')" \
    --lifetime 120 >"$T/nt.log" 2>&1 &
PIDS+=($!)

# A real Tor relay (Debian's tor) on loopback, when installed: TestingTorNetwork with a
# directory authority at 127.0.0.1:2 (nothing listens there), so it never contacts anything
# beyond this machine's loopback; no descriptor published, no reachability self-test.
TOR=0
if command -v tor >/dev/null; then
    mkdir -m 700 "$T/tor"
    cat >"$T/tor/torrc" <<EOF
DataDirectory $T/tor
ORPort 127.0.0.1:$P_TOR
Address 127.0.0.1
SocksPort 0
ExitRelay 0
PublishServerDescriptor 0
AssumeReachable 1
TestingTorNetwork 1
DirAuthority lab orport=1 no-v2 v3ident=0000000000000000000000000000000000000001 127.0.0.1:2 0000000000000000000000000000000000000001
Nickname vantagelab
ContactInfo lab
Log notice stdout
EOF
    tor -f "$T/tor/torrc" >"$T/tor.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 300); do grep -q "Bootstrapped 0%" "$T/tor.log" 2>/dev/null && break; sleep 0.1; done
    grep -q "Bootstrapped 0%" "$T/tor.log" && TOR=1 || { echo "tor did not start:"; tail -5 "$T/tor.log"; }
fi
[ "$TOR" = 1 ] || echo "note: no tor relay (scripts/deps.sh lab installs tor); tor-relay not checked"

# Secrets: the tls-auth key and the WireGuard client key and PSK, mode 0600.
python3 - "$T" <<'EOF'
import json, os, sys
t = sys.argv[1]
r = lambda p: open(os.path.join(t, p)).read().strip()
sec = {"lab_ta": open(os.path.join(t, "ovpn-ta/ta.key")).read(),
       "lab_tc": open(os.path.join(t, "ovpn-tc/tc.key")).read(), "lab_wg": r("wg/client.key"),
       "lab_psk": r("wg/psk")}
fd = os.open(os.path.join(t, "secrets.json"), os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, json.dumps(sec).encode())
os.close(fd)
EOF
chmod 600 "$T/secrets.json"

WGPUB=$(cat "$T/wg/server.pub")
cat >"$T/targets.json" <<EOF
{"version": 1, "targets": [
 {"id": "ovpn-udp", "name": "OpenVPN UDP", "platform": "lab", "category": "vpn", "kind": "openvpn",
  "endpoints": ["127.0.0.1:$P_OU"]},
 {"id": "ovpn-tcp", "name": "OpenVPN TCP", "platform": "lab", "category": "vpn", "kind": "openvpn",
  "transport": "tcp", "endpoints": ["127.0.0.1:$P_OT"]},
 {"id": "ovpn-ta", "name": "OpenVPN tls-auth", "platform": "lab", "category": "vpn",
  "kind": "openvpn", "endpoints": ["127.0.0.1:$P_OA"], "tls_auth_key": {"secret": "lab_ta"},
  "key_direction": 1, "auth": "SHA256"},
 {"id": "ovpn-tc", "name": "OpenVPN tls-crypt", "platform": "lab", "category": "vpn",
  "kind": "openvpn", "endpoints": ["127.0.0.1:$P_OC"], "tls_crypt_key": {"secret": "lab_tc"}},
 {"id": "ovpn-ta-nokey", "name": "OpenVPN tls-auth, no key", "platform": "lab", "category": "vpn",
  "kind": "openvpn", "endpoints": ["127.0.0.1:$P_OA"]},
 {"id": "wg", "name": "WireGuard", "platform": "lab", "category": "vpn", "kind": "wireguard",
  "endpoints": ["127.0.0.1:$P_WG"], "server_public_key": "$WGPUB",
  "client_private_key": {"secret": "lab_wg"}, "preshared_key": {"secret": "lab_psk"}},
 {"id": "wg-unprovisioned", "name": "WireGuard, unknown peer", "platform": "lab",
  "category": "vpn", "kind": "wireguard", "endpoints": ["127.0.0.1:$P_WG"],
  "server_public_key": "$WGPUB"},
 {"id": "ike", "name": "IKEv2", "platform": "lab", "category": "vpn", "kind": "ikev2",
  "endpoints": ["127.0.0.1:$P_IKEN"]},
 {"id": "ike-x25519", "name": "IKEv2, a group charon lacks", "platform": "lab", "category": "vpn",
  "kind": "ikev2", "ke_group": 31, "endpoints": ["127.0.0.1:$P_IKEN"]},
 {"id": "garbage-openvpn", "name": "garbage", "platform": "lab", "category": "vpn",
  "kind": "openvpn", "endpoints": ["127.0.0.1:$P_G"]},
 {"id": "garbage-wireguard", "name": "garbage", "platform": "lab", "category": "vpn",
  "kind": "wireguard", "endpoints": ["127.0.0.1:$P_G"], "server_public_key": "$WGPUB"},
 {"id": "garbage-ikev2", "name": "garbage", "platform": "lab", "category": "vpn",
  "kind": "ikev2", "endpoints": ["127.0.0.1:$P_G"]},
 {"id": "tor-or", "name": "Tor-like OR + dir", "platform": "lab", "category": "vpn",
  "kind": "tor", "endpoints": ["127.0.0.1:$P_TLS"], "dir_port": $P_DIR},
 {"id": "tor-obfs4", "name": "obfs4-like bridge", "platform": "lab", "category": "vpn",
  "kind": "tor", "endpoints": ["127.0.0.1:$P_TLS"], "bridge_type": "obfs4"},
 {"id": "tor-relay", "name": "a real Tor relay", "platform": "lab", "category": "vpn",
  "kind": "tor", "endpoints": ["127.0.0.1:$P_TOR"]},
 {"id": "tor-not-relay", "name": "TLS, but not Tor", "platform": "lab", "category": "vpn",
  "kind": "tor", "endpoints": ["127.0.0.1:$P_NT"]},
 {"id": "sstp", "name": "SSTP", "platform": "lab", "category": "vpn", "kind": "tlsvpn",
  "protocol": "sstp", "sni": "good.test", "endpoints": ["127.0.0.1:$P_TLS"]},
 {"id": "openconnect", "name": "OpenConnect", "platform": "lab", "category": "vpn",
  "kind": "tlsvpn", "protocol": "openconnect", "sni": "good.test",
  "endpoints": ["127.0.0.1:$P_TLS"]},
 {"id": "ocserv", "name": "ocserv", "platform": "lab", "category": "vpn", "kind": "tlsvpn",
  "protocol": "openconnect", "sni": "good.test", "endpoints": ["127.0.0.1:$P_OCS"]},
 {"id": "port-tcp", "name": "TCP port", "platform": "lab", "category": "vpn", "kind": "port",
  "endpoints": ["127.0.0.1:$P_TLS"]}
]}
EOF

VANTAGE_SECRETS=$T/secrets.json "$PROBE" run --targets "$T/targets.json" --output "$T/out.jsonl" \
    --timeout 2 --concurrency 4 --cacert "$T/certs/ca.pem" --accept-risks --no-upload \
    --state-dir "$T/state" --quiet >"$T/probe.out" 2>"$T/probe.err" || {
    rc=$?
    # exit 4: measured, upload pending (no collector); anything else is a failure
    [ $rc = 4 ] || { echo "FAIL: probe exited $rc"; cat "$T/probe.err"; exit 1; }
}

python3 - "$T" "$IKE" "$OCS" "$TOR" <<'EOF'
import json, os, sys
t, ike, ocs, tor = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4] == "1"
ms = {}
for line in open(os.path.join(t, "out.jsonl")):
    m = json.loads(line)
    ms[m["annotations"]["target_id"]] = m
bad = []
def check(cond, what):
    if not cond:
        bad.append(what)
def tk(i):
    return ms[i]["test_keys"] if i in ms else {}
def hs(i):
    h = tk(i).get("handshakes") or [{}]
    return h
def reachable(i, test_name):
    k = tk(i)
    check(i in ms, i + ": no measurement")
    check(ms.get(i, {}).get("test_name") == test_name, i + ": test_name " + str(ms.get(i, {}).get("test_name")))
    check(k.get("reachable") is True, i + ": not reachable: %s %s" % (k.get("failure_phase"), k.get("failure")))
    check(k.get("failure") is None and k.get("failure_phase") is None, i + ": failure set")
    check(isinstance(k.get("rtt_ms"), (int, float)) and k["rtt_ms"] >= 0, i + ": no rtt")
reachable("ovpn-udp", "vantage_openvpn")
reachable("ovpn-tcp", "vantage_openvpn")
check(hs("ovpn-tcp")[0].get("transport") == "tcp", "ovpn-tcp: transport")
reachable("ovpn-ta", "vantage_openvpn")
check(hs("ovpn-ta")[0].get("hmac_verified") is True, "ovpn-ta: HMAC not verified")
reachable("ovpn-tc", "vantage_openvpn")
check(hs("ovpn-tc")[0].get("tls_crypt") is True and hs("ovpn-tc")[0].get("hmac_verified") is True,
      "ovpn-tc: tls-crypt tag not verified")
k = tk("ovpn-ta-nokey")
check(k.get("reachable") is False and k.get("failure_phase") == "handshake"
      and k.get("failure") == "generic_timeout_error", "ovpn-ta-nokey: %s" % k)
reachable("wg", "vantage_wireguard")
check(hs("wg")[0].get("authenticated") is True, "wg: not authenticated")
k = tk("wg-unprovisioned")
check(k.get("reachable") is False and k.get("failure") is None
      and k.get("inconclusive_reason") == "no_provisioned_key", "wg-unprovisioned: %s" % k)
check(k.get("verdict") == "inconclusive", "wg-unprovisioned: verdict %s" % k.get("verdict"))
check(tk("ovpn-udp").get("verdict") == "ok", "ovpn-udp: verdict %s" % tk("ovpn-udp").get("verdict"))
if ike:
    reachable("ike", "vantage_ikev2")
    h = hs("ike")[0]
    check(h.get("spi_r", "0" * 16) != "0" * 16, "ike: no SPIr")
    check((h.get("chosen_sa") or {}).get("dh") == 14 and h["chosen_sa"].get("prf") == 5,
          "ike: chosen SA %s" % h.get("chosen_sa"))
    reachable("ike-x25519", "vantage_ikev2")
    h = hs("ike-x25519")[0]
    check(h.get("error_notify") == "INVALID_KE_PAYLOAD" and h.get("requested_ke_group") == 14,
          "ike-x25519: %s %s" % (h.get("error_notify"), h.get("requested_ke_group")))
for g, want in (("garbage-openvpn", "openvpn_"), ("garbage-wireguard", "wireguard_"),
                ("garbage-ikev2", "ikev2_")):
    k = tk(g)
    check(k.get("reachable") is False and k.get("failure_phase") == "handshake"
          and str(k.get("failure")).startswith(want) and "inconclusive_reason" not in k,
          "%s: %s %s" % (g, k.get("failure_phase"), k.get("failure")))
reachable("tor-or", "vantage_tor")
methods = [h.get("method") for h in hs("tor-or")]
check(methods == ["or_tls", "dir_http"], "tor-or: methods %s" % methods)
check(all(h.get("failure") is None for h in hs("tor-or")), "tor-or: a step failed %s" % hs("tor-or"))
check((hs("tor-or")[0].get("link_handshake") or {}).get("link_protocol") == 5,
      "tor-or: link handshake %s" % hs("tor-or")[0].get("link_handshake"))
if tor:
    reachable("tor-relay", "vantage_tor")
    lh = hs("tor-relay")[0].get("link_handshake") or {}
    check(lh.get("link_protocol") == 5 and lh.get("failure") is None and lh.get("bytes_sent") == 11
          and lh.get("bytes_received", 0) >= 11, "tor-relay: link handshake %s" % lh)
# TLS completes, the answer inside is not a relay's: a failure of the handshake phase, the
# bytes that came back counted, and (a server that answered, wrongly) never called blocked.
k = tk("tor-not-relay")
lh = hs("tor-not-relay")[0].get("link_handshake") or {}
check(k.get("reachable") is False and k.get("failure_phase") == "handshake"
      and k.get("failure") == "tor_unexpected_link_reply", "tor-not-relay: %s" % k)
check(lh.get("link_protocol") is None and lh.get("bytes_received", 0) > 0,
      "tor-not-relay: link handshake %s" % lh)
check(k.get("verdict") == "inconclusive", "tor-not-relay: verdict %s" % k.get("verdict"))
reachable("tor-obfs4", "vantage_tor")
check(hs("tor-obfs4")[0].get("method") == "tcp_connect_only", "tor-obfs4: method")
check(tk("tor-obfs4").get("method") == "tcp_connect_only", "tor-obfs4: top-level method")
reachable("sstp", "vantage_tlsvpn")
check([h.get("method") for h in hs("sstp")] == ["tls_handshake", "sstp_duplex_post"], "sstp: steps")
check(hs("sstp")[-1].get("status_code") == 200, "sstp: status")
reachable("openconnect", "vantage_tlsvpn")
check(hs("openconnect")[-1].get("config_auth") is True, "openconnect: no config-auth")
if ocs:
    reachable("ocserv", "vantage_tlsvpn")
    check(hs("ocserv")[-1].get("config_auth") is True, "ocserv: no config-auth")
reachable("port-tcp", "vantage_port")
check(hs("port-tcp")[0].get("method") == "tcp_connect_only", "port-tcp: method")
# No secret anywhere: the key file's hex lines, the WireGuard private key and PSK.
sec = json.load(open(os.path.join(t, "secrets.json")))
blob = ""
for f in ("out.jsonl", "probe.out", "probe.err"):
    blob += open(os.path.join(t, f)).read()
for root, _, files in os.walk(os.path.join(t, "state")):
    for f in files:
        try:
            blob += open(os.path.join(root, f), errors="replace").read()
        except OSError:
            pass
hexlines = [l for k in ("lab_ta", "lab_tc") for l in sec[k].splitlines() if len(l) == 32]
check(len(hexlines) == 32, "static keys have %d hex lines" % len(hexlines))
for l in hexlines:
    check(l not in blob, "a tls-auth key line is in the output")
for name in ("lab_wg", "lab_psk"):
    check(sec[name] not in blob and sec[name][:16] not in blob, name + " is in the output")
for b in bad:
    print("FAIL:", b)
if not bad:
    print("all checks hold over %d measurements" % len(ms))
sys.exit(1 if bad else 0)
EOF
echo "vpn servers: ok (ikev2: $([ $IKE = 1 ] && echo real charon || echo skipped, a charon already runs);" \
    "ocserv: $([ $OCS = 1 ] && echo real || echo not installed))"
