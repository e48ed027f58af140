#!/bin/sh
# A real OpenVPN server (Debian's openvpn) for the VPN tests and the lab, answering the client's
# hard reset. Needs root and /dev/net/tun (it creates a tun device but configures no address).
#   vpn-openvpn.sh start DIR ADDR PORT [udp|tcp] [tls-auth [SHA1|SHA256|SHA512] | tls-crypt]
#   vpn-openvpn.sh stop DIR
# start makes DIR (certificates from mkcerts.sh, with tls-auth the static key DIR/ta.key, used
# with key-direction 0 on the server: clients use 1; with tls-crypt the key DIR/tc.key), runs
# openvpn in the background, waits
# until it is initialised and writes its pid to DIR/openvpn.pid. Log: DIR/openvpn.log.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2
if [ "$cmd" = stop ]; then
    [ -f "$dir/openvpn.pid" ] && kill "$(cat "$dir/openvpn.pid")" 2>/dev/null || true
    exit 0
fi
addr=$3 port=$4 proto=${5:-udp} tlsauth=${6:-} digest=${7:-SHA1}
command -v openvpn >/dev/null || { echo "vpn-openvpn.sh: openvpn is not installed" >&2; exit 77; }
[ -c /dev/net/tun ] || { echo "vpn-openvpn.sh: no /dev/net/tun" >&2; exit 77; }
mkdir -p "$dir"
[ -f "$dir/good.pem" ] || sh "$here/mkcerts.sh" "$dir" >/dev/null
case $proto in udp) p=udp ;; tcp) p=tcp-server ;; *) echo "udp or tcp" >&2; exit 2 ;; esac
cat >"$dir/server.conf" <<CONF
mode server
tls-server
proto $p
local $addr
lport $port
dev tun
topology subnet
ifconfig 10.213.0.1 255.255.255.0
ifconfig-noexec
route-noexec
ca $dir/ca.pem
cert $dir/good.pem
key $dir/good.key
dh none
verb 3
writepid $dir/openvpn.pid
CONF
if [ "$tlsauth" = tls-auth ]; then
    [ -f "$dir/ta.key" ] || openvpn --genkey secret "$dir/ta.key" >/dev/null 2>&1
    printf 'tls-auth %s/ta.key 0\nauth %s\n' "$dir" "$digest" >>"$dir/server.conf"
elif [ "$tlsauth" = tls-crypt ]; then
    [ -f "$dir/tc.key" ] || openvpn --genkey secret "$dir/tc.key" >/dev/null 2>&1
    printf 'tls-crypt %s/tc.key\n' "$dir" >>"$dir/server.conf"
fi
openvpn --config "$dir/server.conf" >"$dir/openvpn.log" 2>&1 &
for _ in $(seq 100); do
    grep -q "Initialization Sequence Completed" "$dir/openvpn.log" 2>/dev/null && exit 0
    kill -0 $! 2>/dev/null || break
    sleep 0.05
done
echo "vpn-openvpn.sh: openvpn did not start:" >&2
tail -5 "$dir/openvpn.log" >&2
kill $! 2>/dev/null || true
exit 1
