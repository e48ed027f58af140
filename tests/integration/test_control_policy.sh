#!/usr/bin/env bash
# The collector's control measurements (POST /api/v1/control) keep to public destinations even
# when DNS changes its answer between the collector's check and the measurement (rebinding), or
# a public server redirects to a private one: the connection to the private address is refused
# at connect time and nothing reaches the private service.
#
# Everything runs in a network and mount namespace this test creates: loopback only, which also
# holds 192.88.99.7 (a public-looking address, RFC 7526's retired 6to4 relay) for the "public"
# web server; /etc/resolv.conf is bind-mounted, in that namespace only, to point at the
# test's DNS server. No packet can leave the namespace.
# Positive control: the same requests to a collector run with --allow-private-control do reach
# the private service, so the test fails if the policy is not what stops them.
set -euo pipefail
if [ "${1:-}" != --inside ]; then
    [ "$(id -u)" = 0 ] || { echo "skip: needs root for a network namespace"; exit 77; }
    for c in unshare ip mount python3; do
        command -v "$c" >/dev/null || { echo "skip: $c not installed"; exit 77; }
    done
    exec unshare --net --mount --propagation private bash "$0" --inside
fi

SRC=${VT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${VT_BUILD_DIR:-$SRC/build}/collector/vantage-collector
PUB=192.88.99.7
tmp=$(mktemp -d)
pids=()
cleanup() {
    # the collectors started in $(start_collector ...) subshells left their pids in files
    for f in "$tmp"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "test_control_policy: FAIL: $*"; for f in "$tmp"/*.log; do echo "== $f"; tail -n 20 "$f"; done; exit 1; }

ip link set lo up
ip addr add "$PUB/32" dev lo
echo "nameserver 127.0.0.1" >"$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf

python3 "$SRC/tests/servers/dnsserver.py" --port 53 --lifetime 60 --log "$tmp/queries" \
    --zone "rebind.test=rebind:$PUB:127.0.0.1" --zone "redir.test=a:$PUB" >"$tmp/dns.log" 2>&1 &
pids+=($!)

# A "public" server on $PUB:8080 redirecting to the private service on 127.0.0.1:8081, which
# counts every request it gets in $tmp/hits.
python3 - "$PUB" "$tmp/hits" >"$tmp/web.log" 2>&1 <<'PY' &
import http.server, sys, threading, time
pub, hits = sys.argv[1], sys.argv[2]
class Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:8081/secret")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a): pass
class Private(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(hits, "a") as f:
            f.write(self.path + "\n")
        body = b"<title>private</title>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
for addr, h in (((pub, 8080), Redirect), (("127.0.0.1", 8081), Private)):
    s = http.server.ThreadingHTTPServer(addr, h)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
PY
pids+=($!)

start_collector() { # name, extra args...; prints the port (run in $(...): the pid goes to a file)
    local name=$1
    shift
    "$BIN" serve --listen 127.0.0.1:0 --db "sqlite:$tmp/$name.db" --control-timeout 5 "$@" \
        >"$tmp/$name.log" 2>&1 &
    echo $! >"$tmp/$name.pid"
    for _ in $(seq 100); do
        if grep -q "listening on port" "$tmp/$name.log"; then
            sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$tmp/$name.log" | head -n1
            return 0
        fi
        sleep 0.05
    done
    return 1
}
for _ in $(seq 100); do grep -q ready "$tmp/web.log" && [ -s "$tmp/dns.log" ] && break; sleep 0.05; done
grep -q ready "$tmp/web.log" || fail "test servers did not start"

control() { # port, url -> the answer's JSON on stdout, the status in $tmp/status
    curl -s -o "$tmp/answer.json" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/json' \
        --data "{\"input\": \"$2\", \"kind\": \"web\"}" "http://127.0.0.1:$1/api/v1/control" \
        >"$tmp/status" || true
    cat "$tmp/answer.json"
}
hits() { [ -f "$tmp/hits" ] && wc -l <"$tmp/hits" || echo 0; }

strict=$(start_collector strict) || fail "collector did not start"

# DNS rebinding: the collector's check sees $PUB, the measurement's own lookup 127.0.0.1.
control "$strict" "http://rebind.test:8081/" >"$tmp/rebind.json"
[ "$(grep -c '^rebind.test 1$' "$tmp/queries")" -ge 2 ] ||
    fail "the measurement did not resolve rebind.test again (the rebinding was not exercised)"
[ "$(hits)" = 0 ] || fail "a rebinding name reached the private service"
python3 - "$tmp/rebind.json" "$(cat "$tmp/status")" <<'PY' || fail "rebinding answer"
import json, sys
st, js = int(sys.argv[2]), json.load(open(sys.argv[1]))
tk = js.get("test_keys") or {}
conns = tk.get("tcp_connect") or []
assert st == 200, st
assert conns and all(c["ip"] == "127.0.0.1" for c in conns), conns
assert all(c["status"]["failure"] == "permission_denied" for c in conns), conns
assert tk.get("http_status") in (None, 0), tk.get("http_status")
print("rebinding: every connection to 127.0.0.1 refused:", [c["status"]["failure"] for c in conns])
PY

# A redirect from a public server to a private address: the first hop is measured, the second
# is refused.
control "$strict" "http://redir.test:8080/" >"$tmp/redir.json"
[ "$(hits)" = 0 ] || fail "a redirect reached the private service"
python3 - "$tmp/redir.json" "$(cat "$tmp/status")" <<'PY' || fail "redirect answer"
import json, sys
st, js = int(sys.argv[2]), json.load(open(sys.argv[1]))
tk = js.get("test_keys") or {}
reqs = tk.get("requests") or []
assert st == 200, st
codes = [(r.get("response") or {}).get("code") for r in reqs]
assert 302 in codes, codes
assert 200 not in codes, codes
blob = json.dumps(tk)
assert "permission_denied" in blob or "connect" in blob, "no refusal recorded"
print("redirect: hops", codes)
PY

# Positive control: with --allow-private-control the same requests do reach the service.
lab=$(start_collector lab --allow-private-control) || fail "collector did not start"
control "$lab" "http://redir.test:8080/" >/dev/null
[ "$(hits)" -ge 1 ] || fail "positive control: the redirect did not reach the private service"
echo "test_control_policy: ok (rebinding and redirect refused; $(hits) hit(s) with --allow-private-control)"
