# shellcheck shell=bash
# VPN servers in the censorship lab (issue 5). Source after lab.sh, call vpn_require before
# lab_setup, then vpn_setup after it: real servers from Debian packages run in vt-server on their
# own lab addresses, and a target file ($LAB_TARGETS) plus a secrets file (VANTAGE_SECRETS, mode
# 0600) are written for the probe. Every server runs inside vt-server (or vt-control), so lab.sh's
# teardown kills them with the namespace; charon is also stopped by name of its pid (it shares
# /var/run/charon.pid with the whole machine).
#
#   10.99.2.30  OpenVPN, UDP 1194 (plain) and TCP 1194      (ids vpn-ovpn-udp, vpn-ovpn-tcp)
#               and a bare TCP listener on 9030              (vpn-port-tcp-9030)
#               (.30 to .34 each have a bare TCP listener on 9030, and .35 its dir port 9030:
#               the VPN targets' "address_check", as a group checks its own servers' ssh port)
#   10.99.2.31  OpenVPN with tls-auth (SHA256), UDP 1194    (vpn-ovpn-ta)
#   10.99.2.32  WireGuard (wireguard-go), UDP 51820          (vpn-wg; vpn-wg-unprovisioned)
#   10.99.2.33  IKEv2 (strongSwan charon), UDP 500           (vpn-ike)
#   10.99.2.34  OpenConnect (ocserv), TCP 443, if installed  (vpn-ocserv)
#   10.99.2.35  SSTP / Tor-like TLS (vpn-tls.py), TCP 443    (vpn-sstp)
#   10.99.2.38  an OpenVPN server that is down: the address is there, nothing listens
#               (vpn-down: never "blocked"; "down" when the control cannot connect either)
#   10.99.2.39  a UDP server answering garbage on 1194       (vpn-garbage-*)
#   10.99.3.2   (vt-control) UDP echo on 1194, 51820, 500: "the port stays open" for other
#               traffic, measured with kind "port"           (vpn-port-*)
#               and on 5353, a port no scenario blocks: the echo is up (vpn-port-5353)
# plus the lab's canary (lab-canary), so canaries_ok is known.

VPN_OVPN_IP=10.99.2.30
VPN_OVPN_TA_IP=10.99.2.31
VPN_WG_IP=10.99.2.32
VPN_IKE_IP=10.99.2.33
VPN_OC_IP=10.99.2.34
VPN_TLS_IP=10.99.2.35
VPN_DOWN_IP=10.99.2.38
VPN_GARBAGE_IP=10.99.2.39
VPN_ECHO_IP=$LAB_CONTROL_IP
VPN_ADDRS=("$VPN_OVPN_IP" "$VPN_OVPN_TA_IP" "$VPN_WG_IP" "$VPN_IKE_IP" "$VPN_OC_IP" "$VPN_TLS_IP"
    "$VPN_DOWN_IP" "$VPN_GARBAGE_IP")
VPN_SERVERS=$LAB_SRC_DIR/tests/servers
VPN_OC=0
VPN_DIR=""

# Exit 77 unless root, /dev/net/tun and the VPN daemons are there (before lab_setup, whose
# teardown trap would otherwise run for nothing).
vpn_require() {
    lab_require
    if [ ! -c /dev/net/tun ]; then
        echo "lab: skipped: no /dev/net/tun" >&2
        exit 77
    fi
    local b
    for b in openvpn wireguard-go wg /usr/lib/ipsec/charon; do
        if ! command -v "$b" >/dev/null 2>&1; then
            echo "lab: skipped: $b is missing (scripts/deps.sh lab)" >&2
            exit 77
        fi
    done
    local _
    for _ in $(seq 1 50); do # the previous test's charon may still be shutting down
        [ -f /var/run/charon.pid ] && kill -0 "$(cat /var/run/charon.pid)" 2>/dev/null || break
        sleep 0.1
    done
    if [ -f /var/run/charon.pid ] && kill -0 "$(cat /var/run/charon.pid)" 2>/dev/null; then
        echo "lab: skipped: a charon already runs on this machine (one per machine)" >&2
        exit 77
    fi
}

# Stops charon (its pid file is ours: vpn-ikev2.sh writes $VPN_DIR/ike/charon.pid), then the lab.
vpn_teardown() {
    local rc=$?
    if [ -n "$VPN_DIR" ] && [ -f "$VPN_DIR/ike/charon.pid" ]; then
        local pid _
        pid=$(cat "$VPN_DIR/ike/charon.pid")
        "$VPN_SERVERS/vpn-ikev2.sh" stop "$VPN_DIR/ike" 2>/dev/null || true
        for _ in $(seq 1 100); do # the next charon on this machine needs this one gone
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    if [ -n "$VPN_DIR" ] && [ -f "$VPN_DIR/oc/sockdir" ]; then
        "$VPN_SERVERS/vpn-ocserv.sh" stop "$VPN_DIR/oc" 2>/dev/null || true
    fi
    set +e # lab_teardown reads the exit status from $?: (exit rc) must not end the trap
    (exit "$rc")
    lab_teardown
}

# A bounded UDP server in namespace NS on ADDR: mode "echo" sends every datagram back, "garbage"
# answers each with bytes that are no VPN's reply. Ports are the remaining arguments.
vpn_udp_server() {
    local ns=$1 mode=$2 addr=$3
    shift 3
    lab_ns "$ns" python3 -u - "$mode" "$addr" "$@" >"$VPN_DIR/udp-$mode.log" 2>&1 <<'EOF' &
import select, socket, sys, time
mode, addr, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
socks = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, p))
    socks.append(s)
print("ready", flush=True)
end = time.time() + 300
while time.time() < end:
    r, _, _ = select.select(socks, [], [], 1)
    for s in r:
        d, a = s.recvfrom(4096)
        s.sendto(d if mode == "echo" else b"\x40garbage, not a VPN at all: " + bytes(range(64)), a)
EOF
    local _
    for _ in $(seq 1 50); do
        grep -q ready "$VPN_DIR/udp-$mode.log" 2>/dev/null && return 0
        sleep 0.1
    done
    lab_die "UDP $mode server did not start: $(cat "$VPN_DIR/udp-$mode.log")"
}

vpn_setup() {
    trap vpn_teardown EXIT
    VPN_DIR=$LAB_DIR/vpn
    mkdir -p "$VPN_DIR"
    local a
    for a in "${VPN_ADDRS[@]}"; do
        ip -n vt-server addr add "$a/24" dev srv0
    done
    local S=$VPN_SERVERS
    sh "$S/mkcerts.sh" "$VPN_DIR/certs" >/dev/null || lab_die "mkcerts failed"
    local d
    for d in ovpn-udp ovpn-tcp ovpn-ta oc; do
        mkdir -p "$VPN_DIR/$d" && cp "$VPN_DIR/certs/"* "$VPN_DIR/$d/"
    done
    lab_server "$S/vpn-openvpn.sh" start "$VPN_DIR/ovpn-udp" "$VPN_OVPN_IP" 1194 udp ||
        lab_die "openvpn (udp) did not start"
    lab_server "$S/vpn-openvpn.sh" start "$VPN_DIR/ovpn-tcp" "$VPN_OVPN_IP" 1194 tcp ||
        lab_die "openvpn (tcp) did not start"
    lab_server "$S/vpn-openvpn.sh" start "$VPN_DIR/ovpn-ta" "$VPN_OVPN_TA_IP" 1194 udp tls-auth \
        SHA256 || lab_die "openvpn (tls-auth) did not start"
    lab_server "$S/vpn-wireguard.sh" start "$VPN_DIR/wg" 51820 || lab_die "wireguard-go did not start"
    lab_server "$S/vpn-ikev2.sh" start "$VPN_DIR/ike" 500 4500 conn || lab_die "charon did not start"
    if command -v ocserv >/dev/null 2>&1; then
        lab_server "$S/vpn-ocserv.sh" start "$VPN_DIR/oc" "$VPN_OC_IP" 443 ||
            lab_die "ocserv did not start"
        VPN_OC=1
    fi
    lab_server python3 -u "$S/vpn-tls.py" --cert "$VPN_DIR/certs/good.pem" \
        --key "$VPN_DIR/certs/good.key" --listen "$VPN_TLS_IP" --tls-port 443 --dir-port 9030 \
        --lifetime 300 >"$VPN_DIR/tls.log" 2>&1 &
    # Bare TCP listeners on port 9030 of the VPN servers' addresses: "the address is reachable"
    # (vpn-port-tcp-9030 and the targets' address_check).
    lab_server python3 -c "import socket, time
ls = []
for a in ('$VPN_OVPN_IP', '$VPN_OVPN_TA_IP', '$VPN_WG_IP', '$VPN_IKE_IP', '$VPN_OC_IP'):
    s = socket.socket(); s.bind((a, 9030)); s.listen(16); ls.append(s)
time.sleep(300)" &
    vpn_udp_server vt-server garbage "$VPN_GARBAGE_IP" 1194
    vpn_udp_server vt-control echo "$VPN_ECHO_IP" 1194 51820 500 5353
    for a in $(seq 1 50); do
        grep -q ready "$VPN_DIR/tls.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q ready "$VPN_DIR/tls.log" || lab_die "vpn-tls.py did not start: $(cat "$VPN_DIR/tls.log")"
    # The probe trusts the lab CA and the VPN servers' test CA (mkcerts.sh).
    cat "$LAB_CACERT" "$VPN_DIR/certs/ca.pem" >"$VPN_DIR/ca-bundle.pem"
    LAB_CACERT=$VPN_DIR/ca-bundle.pem
    vpn_write_targets
}

# Secrets (tls-auth key, WireGuard client key) in a 0600 file; the targets, with the lab canary.
vpn_write_targets() {
    python3 - "$VPN_DIR" <<'EOF' || lab_die "writing the secrets failed"
import json, os, sys
t = sys.argv[1]
sec = {"lab_ta": open(os.path.join(t, "ovpn-ta/ta.key")).read(),
       "lab_wg": open(os.path.join(t, "wg/client.key")).read().strip()}
fd = os.open(os.path.join(t, "secrets.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps(sec).encode())
os.close(fd)
EOF
    chmod 600 "$VPN_DIR/secrets.json"
    export VANTAGE_SECRETS=$VPN_DIR/secrets.json
    local wgpub oc=""
    wgpub=$(cat "$VPN_DIR/wg/server.pub")
    if [ "$VPN_OC" = 1 ]; then
        oc=' {"id": "vpn-ocserv", "name": "OpenConnect (ocserv)", "platform": "lab-vpn",
  "category": "vpn", "kind": "tlsvpn", "protocol": "openconnect", "sni": "good.test",
  "address_check": [9030],
  "endpoints": ["'$VPN_OC_IP':443"]},'
    fi
    LAB_TARGETS=$VPN_DIR/targets.json
    cat >"$LAB_TARGETS" <<EOF
{"version": 1, "list": "lab-vpn", "targets": [
 {"id": "lab-canary", "name": "Lab canary", "platform": "canary", "category": "canary",
  "kind": "web", "endpoints": ["https://canary.lab/"]},
 {"id": "vpn-ovpn-udp", "name": "OpenVPN UDP", "platform": "lab-vpn", "category": "vpn",
  "kind": "openvpn", "address_check": [9030],
  "endpoints": ["$VPN_OVPN_IP:1194"]},
 {"id": "vpn-ovpn-tcp", "name": "OpenVPN TCP", "platform": "lab-vpn", "category": "vpn",
  "kind": "openvpn", "transport": "tcp", "address_check": [9030],
  "endpoints": ["$VPN_OVPN_IP:1194"]},
 {"id": "vpn-ovpn-ta", "name": "OpenVPN tls-auth", "platform": "lab-vpn", "category": "vpn",
  "kind": "openvpn", "address_check": [9030],
  "endpoints": ["$VPN_OVPN_TA_IP:1194"], "tls_auth_key": {"secret": "lab_ta"},
  "key_direction": 1, "auth": "SHA256"},
 {"id": "vpn-wg", "name": "WireGuard", "platform": "lab-vpn", "category": "vpn",
  "kind": "wireguard", "address_check": [9030],
  "endpoints": ["$VPN_WG_IP:51820"], "server_public_key": "$wgpub",
  "client_private_key": {"secret": "lab_wg"}},
 {"id": "vpn-wg-unprovisioned", "name": "WireGuard, key not provisioned", "platform": "lab-vpn",
  "category": "vpn", "kind": "wireguard", "endpoints": ["$VPN_WG_IP:51820"],
  "server_public_key": "$wgpub"},
 {"id": "vpn-ike", "name": "IKEv2", "platform": "lab-vpn", "category": "vpn", "kind": "ikev2",
  "address_check": [9030],
  "endpoints": ["$VPN_IKE_IP:500"]},
$oc
 {"id": "vpn-sstp", "name": "SSTP", "platform": "lab-vpn", "category": "vpn", "kind": "tlsvpn",
  "protocol": "sstp", "sni": "good.test", "address_check": [9030],
  "endpoints": ["$VPN_TLS_IP:443"]},
 {"id": "vpn-down", "name": "OpenVPN, server down", "platform": "lab-vpn", "category": "vpn",
  "kind": "openvpn", "address_check": [9030], "endpoints": ["$VPN_DOWN_IP:1194"]},
 {"id": "vpn-garbage-openvpn", "name": "garbage", "platform": "lab-vpn", "category": "vpn",
  "kind": "openvpn", "endpoints": ["$VPN_GARBAGE_IP:1194"]},
 {"id": "vpn-garbage-wireguard", "name": "garbage", "platform": "lab-vpn", "category": "vpn",
  "kind": "wireguard", "endpoints": ["$VPN_GARBAGE_IP:1194"], "server_public_key": "$wgpub"},
 {"id": "vpn-garbage-ikev2", "name": "garbage", "platform": "lab-vpn", "category": "vpn",
  "kind": "ikev2", "natt": false, "endpoints": ["$VPN_GARBAGE_IP:1194"]},
 {"id": "vpn-port-1194", "name": "UDP 1194 elsewhere", "platform": "lab-vpn", "category": "vpn",
  "kind": "port", "transport": "udp", "payload_hex": "00766e7470726f6265",
  "endpoints": ["$VPN_ECHO_IP:1194"]},
 {"id": "vpn-port-51820", "name": "UDP 51820 elsewhere", "platform": "lab-vpn",
  "category": "vpn", "kind": "port", "transport": "udp", "payload_hex": "00766e7470726f6265",
  "endpoints": ["$VPN_ECHO_IP:51820"]},
 {"id": "vpn-port-500", "name": "UDP 500 elsewhere", "platform": "lab-vpn", "category": "vpn",
  "kind": "port", "transport": "udp", "payload_hex": "00766e7470726f6265",
  "endpoints": ["$VPN_ECHO_IP:500"]},
 {"id": "vpn-port-5353", "name": "UDP 5353 elsewhere", "platform": "lab-vpn", "category": "vpn",
  "kind": "port", "transport": "udp", "payload_hex": "00766e7470726f6265",
  "endpoints": ["$VPN_ECHO_IP:5353"]},
 {"id": "vpn-port-tcp-1194", "name": "TCP 1194", "platform": "lab-vpn", "category": "vpn",
  "kind": "port", "address_check": [9030],
  "endpoints": ["$VPN_OVPN_IP:1194"]},
 {"id": "vpn-port-tcp-9030", "name": "TCP 9030 on the OpenVPN address", "platform": "lab-vpn",
  "category": "vpn", "kind": "port", "endpoints": ["$VPN_OVPN_IP:9030"]}
]}
EOF
}

# Before a run: wait (bounded, 3 minutes) while another lab run's namespaces exist; lab_setup's
# flock then serialises with runs that start later.
vpn_wait_free() {
    local _
    for _ in $(seq 1 18); do
        ip netns list 2>/dev/null | grep -q '^vt-' || return 0
        lab_log "another lab run is up; waiting"
        sleep 10
    done
}
