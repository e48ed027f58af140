#!/bin/sh
# A real WireGuard server (Debian's wireguard-go, configured with wg) for the VPN tests and the
# lab. Needs root and /dev/net/tun; the kernel module is not needed.
#   vpn-wireguard.sh start DIR PORT [psk]
#   vpn-wireguard.sh stop DIR
# start writes DIR/server.key|.pub and DIR/client.key|.pub (the client is provisioned as the
# server's one peer; with "psk", DIR/psk is its pre-shared key), runs wireguard-go on interface
# vtwg<PORT> listening on UDP PORT (all addresses), and DIR/wg.pid.
set -eu
cmd=$1 dir=$2
if [ "$cmd" = stop ]; then
    [ -f "$dir/wg.pid" ] && kill "$(cat "$dir/wg.pid")" 2>/dev/null || true
    exit 0
fi
port=$3 psk=${4:-}
for b in wireguard-go wg ip; do
    command -v $b >/dev/null || { echo "vpn-wireguard.sh: $b is not installed" >&2; exit 77; }
done
[ -c /dev/net/tun ] || { echo "vpn-wireguard.sh: no /dev/net/tun" >&2; exit 77; }
mkdir -p "$dir"
umask 077
[ -f "$dir/server.key" ] || wg genkey >"$dir/server.key"
[ -f "$dir/client.key" ] || wg genkey >"$dir/client.key"
wg pubkey <"$dir/server.key" >"$dir/server.pub"
wg pubkey <"$dir/client.key" >"$dir/client.pub"
ifname=vtwg$port
WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifname" >"$dir/wg.log" 2>&1 &
echo $! >"$dir/wg.pid"
for _ in $(seq 100); do
    [ -S "/var/run/wireguard/$ifname.sock" ] && break
    sleep 0.05
done
extra=
if [ "$psk" = psk ]; then
    [ -f "$dir/psk" ] || wg genpsk >"$dir/psk"
    extra="preshared-key $dir/psk"
fi
# shellcheck disable=SC2086
if ! wg set "$ifname" listen-port "$port" private-key "$dir/server.key" \
    peer "$(cat "$dir/client.pub")" allowed-ips 10.214.0.2/32 $extra ||
    ! ip link set "$ifname" up; then
    echo "vpn-wireguard.sh: wireguard-go did not start:" >&2
    cat "$dir/wg.log" >&2
    kill "$(cat "$dir/wg.pid")" 2>/dev/null || true
    exit 1
fi
