#!/usr/bin/env bash
# Installs the Debian packages a target needs, when missing.
# usage: scripts/deps.sh build|test|lab|all
# As root it runs apt-get; otherwise it prints the exact command and fails.
# cmocka is a build dependency: the unit tests are part of the default build. libjs-chart.js:
# the collector's dashboard draws its charts with it (a build by root installs it beside).
set -euo pipefail
build=(cmake make gcc pkg-config libevent-dev libc-ares-dev libcurl4-openssl-dev libcjson-dev
       libssl-dev libsqlite3-dev libpq-dev zlib1g-dev libinih-dev libmaxminddb-dev python3 curl
       sqlite3 libcmocka-dev libjs-chart.js)
test=(python3 clang openssl time libmaxmind-db-writer-perl strace faketime)
lab=(iproute2 iptables dnsmasq-base nginx-light postgresql sqlite3 curl procps chromium
     openvpn wireguard-go wireguard-tools strongswan-charon ocserv tor)
case "${1:-build}" in
build) want=("${build[@]}") ;;
test) want=("${build[@]}" "${test[@]}") ;;
lab | all) want=("${build[@]}" "${test[@]}" "${lab[@]}") ;;
*) echo "usage: $0 build|test|lab|all" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "vantage: missing Debian packages; run as root:" >&2
    echo "  apt-get update && $cmd" >&2
    exit 1
fi
echo "vantage: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The lab's daemons (tor above all: its service would join the real Tor network) must not be
# started by their packages; the tests start their own, on loopback. Docker images already
# forbid it (policy-rc.d exits 101); elsewhere it is forbidden for this install only.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq >/dev/null || true
$cmd >/dev/null
