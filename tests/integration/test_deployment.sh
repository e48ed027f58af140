#!/usr/bin/env bash
# The deployment the docs describe, end to end on loopback: vantage-collector behind nginx, which
# terminates TLS with a certificate from a private CA and appends the client to X-Forwarded-For,
# the collector started with --trusted-proxy; vantage-probe run with --collector https://... and
# --collector-cacert. The probe checks in (the collector knows the probe's address only from the
# header: the network of 127.0.0.1 in its GeoIP files, while nginx connects from 127.0.0.2, which
# is in none), measures a loopback page, uploads; the stored measurement carries the probe's
# network and the spool is empty. Without the CA the upload is refused and the measurement waits
# in the spool; uploaded then with the CA, it is stored once.
set -euo pipefail
SRC=${VT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VT_BUILD_DIR:-$SRC/build}
PROBE=${VT_PROBE:-$BUILD/probe/vantage-probe}
COLLECTOR=${VT_COLLECTOR:-$BUILD/collector/vantage-collector}
for b in "$PROBE" "$COLLECTOR"; do
    [ -x "$b" ] || { echo "skip: $b not built"; exit 77; }
done
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
[ -n "$NGINX" ] || { echo "skip: nginx is not installed (scripts/deps.sh lab)"; exit 77; }
command -v openssl >/dev/null || { echo "skip: no openssl"; exit 77; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy VANTAGE_UPLOAD_TOKEN

T=$(mktemp -d /tmp/vt-deploy-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${VT_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in collector.err nginx/error.log probe.err; do
        [ -s "$T/$f" ] && { echo "--- $f"; tail -20 "$T/$f"; }
    done
    exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

sh "$SRC/tests/servers/mkca.sh" "$T/pki" 127.0.0.1 >/dev/null
printf '127.0.0.1,127.0.0.1,64500,LoopNet\n' >"$T/asn.csv"
printf '127.0.0.1,127.0.0.1,NL\n' >"$T/country.csv"

"$COLLECTOR" serve --listen 127.0.0.1:0 --db "sqlite:$T/collector.db" --rate 0 \
    --trusted-proxy 127.0.0.2 --geoip-asn "$T/asn.csv" --geoip-country "$T/country.csv" \
    >"$T/collector.out" 2>"$T/collector.err" &
PIDS+=($!)
CPORT=
for _ in $(seq 100); do
    CPORT=$(grep -o 'listening on port [0-9]\+' "$T/collector.err" 2>/dev/null | head -1 | sed 's/.* //' || true)
    [ -n "$CPORT" ] && break
    sleep 0.05
done
[ -n "$CPORT" ] || fail "the collector did not start"

NPORT=$(free_port)
mkdir -p "$T/nginx"
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;" || USER_LINE=""
cat >"$T/nginx/nginx.conf" <<EOF
$USER_LINE
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $T/pki/127.0.0.1.pem;
        ssl_certificate_key $T/pki/127.0.0.1.key;
        location / {
            proxy_pass http://127.0.0.1:$CPORT;
            proxy_bind 127.0.0.2;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" 2>"$T/nginx/stderr" &
PIDS+=($!)
wait_port "$NPORT" || fail "nginx did not start"

python3 "$SRC/tests/servers/httpserver.py" --lifetime 60 >"$T/http.json" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/http.json" ] && break; sleep 0.05; done
HPORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$T/http.json")
cat >"$T/targets.json" <<EOF
{"version": 1, "list": "deployment", "targets": [
 {"id": "loop-title", "name": "loopback page", "platform": "test", "category": "test",
  "kind": "web", "endpoints": ["http://127.0.0.1:$HPORT/title"]}]}
EOF

probe() { # probe STATE [ARGS]
    local st=$1
    shift
    XDG_CONFIG_HOME=$T/cfg VANTAGE_SYSTEM_CONFIG=/dev/null "$PROBE" "$@" --state-dir "$st" \
        --collector "https://127.0.0.1:$NPORT"
}
spooled() { find "$1/spool" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }
stored() { # stored UID: "probe_cc probe_asn probe_network_name" of the stored row, or nothing
    python3 - "$T/collector.db" "$1" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = db.execute("SELECT body FROM measurements WHERE uid = ?", (sys.argv[2],)).fetchall()
for (b,) in rows:
    m = json.loads(b)
    print(m["probe_cc"], m["probe_asn"], m["probe_network_name"])
PY
}

# 1. The documented set-up: check-in, measurement and upload through the TLS proxy.
rc=0
probe "$T/s1" run --quiet --accept-risks --timeout 3 --targets "$T/targets.json" \
    --output "$T/out1.jsonl" --collector-cacert "$T/pki/ca.pem" 2>"$T/probe.err" || rc=$?
[ "$rc" -eq 0 ] || fail "probe run through the proxy: exit $rc"
uid=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["measurement_uid"])' "$T/out1.jsonl")
got=$(stored "$uid")
[ "$got" = "NL AS64500 LoopNet" ] || fail "stored measurement's network: '$got' (want the probe's: NL AS64500 LoopNet)"
[ "$(spooled "$T/s1")" -eq 0 ] || fail "the spool is not empty after the upload"
echo "ok: through nginx (TLS, private CA) and --trusted-proxy, check-in named the probe's network and the measurement was stored with it"

# 2. The probe does not trust the private CA by itself: refused, kept, then delivered once.
rc=0
probe "$T/s2" run --quiet --accept-risks --timeout 3 --targets "$T/targets.json" \
    --output "$T/out2.jsonl" 2>"$T/probe.err" || rc=$?
[ "$rc" -eq 4 ] || fail "probe run without the CA: exit $rc (want 4, upload pending)"
[ "$(spooled "$T/s2")" -eq 1 ] || fail "without the CA the measurement is not in the spool"
uid2=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["measurement_uid"])' "$T/out2.jsonl")
[ -z "$(stored "$uid2")" ] || fail "a measurement was stored through an unverified connection"
probe "$T/s2" upload --collector-cacert "$T/pki/ca.pem" 2>"$T/probe.err" || fail "upload with the CA: exit $?"
[ "$(spooled "$T/s2")" -eq 0 ] || fail "the spool is not empty after the upload with the CA"
[ "$(stored "$uid2" | wc -l)" -eq 1 ] || fail "the spooled measurement was not stored exactly once"
echo "ok: without the CA the upload is refused and the measurement waits; with it, stored once"
