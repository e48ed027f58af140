#!/bin/sh
# A real OpenConnect (AnyConnect-protocol) server, Debian's ocserv, for the VPN tests and the
# lab: it answers the client's XML config-auth "init" POST with an auth-request form.
# Needs root (ocserv drops to nobody for its workers).
#   vpn-ocserv.sh start DIR ADDR PORT
#   vpn-ocserv.sh stop DIR
# start makes DIR (certificates from mkcerts.sh: good.test, a.test, localhost, 127.0.0.1),
# runs ocserv in the foreground in the background (DIR/ocserv.pid, log DIR/ocserv.log).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2
if [ "$cmd" = stop ]; then
    [ -f "$dir/ocserv.pid" ] && kill "$(cat "$dir/ocserv.pid")" 2>/dev/null || true
    [ -f "$dir/sockdir" ] && rm -rf "$(cat "$dir/sockdir")"
    exit 0
fi
addr=$3 port=$4
command -v ocserv >/dev/null || { echo "vpn-ocserv.sh: ocserv is not installed" >&2; exit 77; }
mkdir -p "$dir"
[ -f "$dir/good.pem" ] || sh "$here/mkcerts.sh" "$dir" >/dev/null
: >"$dir/passwd"
# The workers run as nobody and reach the main process through this socket: it must not sit
# in a directory only root can enter (DIR often does, under mktemp -d).
sockdir=$(mktemp -d /tmp/vt-ocserv-XXXXXX)
chmod 755 "$sockdir"
echo "$sockdir" >"$dir/sockdir"
cat >"$dir/ocserv.conf" <<CONF
auth = "plain[passwd=$dir/passwd]"
listen-host = $addr
tcp-port = $port
run-as-user = nobody
run-as-group = nogroup
socket-file = $sockdir/ocserv.sock
server-cert = $dir/good.pem
server-key = $dir/good.key
isolate-workers = false
max-clients = 8
device = vtoc
ipv4-network = 10.216.0.0/24
use-occtl = false
CONF
ocserv -f -c "$dir/ocserv.conf" >"$dir/ocserv.log" 2>&1 &
echo $! >"$dir/ocserv.pid"
for _ in $(seq 100); do
    grep -q "listening (TCP)" "$dir/ocserv.log" 2>/dev/null && exit 0
    kill -0 "$(cat "$dir/ocserv.pid")" 2>/dev/null || break
    sleep 0.05
done
echo "vpn-ocserv.sh: ocserv did not start:" >&2
tail -5 "$dir/ocserv.log" >&2
kill "$(cat "$dir/ocserv.pid")" 2>/dev/null || true
exit 1
