#!/bin/sh
# A real IKEv2 responder (Debian's strongSwan charon) for the VPN tests and the lab. With no
# connection configured it still answers IKE_SA_INIT (a notify, our SPIi, its own SPIr); with
# "conn" a connection is added (stroke) and it answers with a chosen SA, KE and nonce (or
# INVALID_KE_PAYLOAD asking for MODP_2048 when offered another group).
# Needs root. One charon at a time on the machine: its pid file /var/run/charon.pid and control
# socket /var/run/charon.ctl are shared by every network namespace (run it with
# `ip netns exec NS` to serve inside one). Ports other than 500 carry the non-ESP marker
# (charon's rule).
#   vpn-ikev2.sh start DIR PORT NATT_PORT [conn]
#   vpn-ikev2.sh stop DIR
# start writes DIR/strongswan.conf, runs charon in the background (DIR/charon.pid, log
# DIR/charon.log) listening on UDP PORT and NATT_PORT (all addresses).
set -eu
cmd=$1 dir=$2
if [ "$cmd" = stop ]; then
    # Waits for charon to be gone (up to 10 s, then SIGKILL): the next charon on this machine
    # refuses to start while this one holds /var/run/charon.pid.
    [ -f "$dir/charon.pid" ] || exit 0
    pid=$(cat "$dir/charon.pid")
    kill "$pid" 2>/dev/null || exit 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    exit 0
fi
port=$3 natt=$4 conn=${5:-}
charon=/usr/lib/ipsec/charon
[ -x $charon ] || { echo "vpn-ikev2.sh: strongswan-charon is not installed" >&2; exit 77; }
if [ -f /var/run/charon.pid ] && kill -0 "$(cat /var/run/charon.pid)" 2>/dev/null; then
    echo "vpn-ikev2.sh: a charon already runs here (pid $(cat /var/run/charon.pid))" >&2
    exit 77
fi
# A charon that was stopped leaves its control socket behind: remove it, or the wait below could
# see the old socket and stroke would talk to nobody (a CI failure: "charon did not start").
rm -f /var/run/charon.ctl
mkdir -p "$dir"
cat >"$dir/strongswan.conf" <<CONF
charon {
    port = $port
    port_nat_t = $natt
    install_routes = no
    install_virtual_ip = no
    load_modular = yes
    plugins {
        include /etc/strongswan.d/charon/*.conf
    }
    filelog {
        vtlog {
            path = $dir/charon.log
            default = 2
            net = 2
            flush_line = yes
            enc = 1
        }
    }
}
CONF
STRONGSWAN_CONF=$dir/strongswan.conf $charon >"$dir/charon.out" 2>&1 &
echo $! >"$dir/charon.pid"
# Up to 15 s (a busy 2-core CI machine loads charon's plugins slowly); stroke is retried, since
# the socket can exist a moment before charon accepts on it.
for _ in $(seq 300); do
    if ss -lun 2>/dev/null | grep -q ":$port " && [ -S /var/run/charon.ctl ]; then
        [ "$conn" = conn ] || exit 0
        # Any peer; IDs and subnets only make a connection exist (no authentication happens).
        /usr/lib/ipsec/stroke add vtlab lab.test client.test 0.0.0.0 0.0.0.0 \
            10.215.0.0/24 10.215.1.0/24 >"$dir/stroke.out" 2>&1 && exit 0
    fi
    kill -0 "$(cat "$dir/charon.pid")" 2>/dev/null || break
    sleep 0.05
done
echo "vpn-ikev2.sh: charon did not start:" >&2
tail -5 "$dir/charon.out" "$dir/charon.log" "$dir/stroke.out" 2>/dev/null >&2 || true
kill "$(cat "$dir/charon.pid")" 2>/dev/null || true
exit 1
