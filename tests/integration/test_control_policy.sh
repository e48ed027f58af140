#!/usr/bin/env bash
# The collector's control measurements (POST /api/v1/control) keep to public destinations even
# when DNS changes its answer between the collector's check and the measurement (rebinding), or
# a public server redirects to a private one: the connection to the private address is refused
# at connect time and nothing reaches the private service.
#
# Nor can a caller reach a service on the collector's own host through the host's public
# address (a service listening on 0.0.0.0 answers there as on 127.0.0.1).
#
# Everything runs in a network and mount namespace this test creates, with one more namespace
# behind a veth pair: the collector's side holds 192.88.99.1 (its "public" address), the other
# 192.88.99.7 (public-looking addresses, RFC 7526's retired 6to4 relay range) for the "public"
# web server; /etc/resolv.conf is bind-mounted, in that namespace only, to point at the
# test's DNS server. No packet can leave the two namespaces.
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
SELF=192.88.99.1
NS=vt-ctl-pub-$$
tmp=$(mktemp -d)
pids=()
cleanup() {
    # the collectors started in $(start_collector ...) subshells left their pids in files
    for f in "$tmp"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "test_control_policy: FAIL: $*"; for f in "$tmp"/*.log; do echo "== $f"; tail -n 20 "$f"; done; exit 1; }

ip link set lo up
ip netns add "$NS"
ip link add vtc0 type veth peer name vtc1
ip link set vtc1 netns "$NS"
ip addr add "$SELF/24" dev vtc0
ip link set vtc0 up
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$PUB/24" dev vtc1
ip -n "$NS" link set vtc1 up
echo "nameserver 127.0.0.1" >"$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf

python3 "$SRC/tests/servers/dnsserver.py" --port 53 --lifetime 60 --log "$tmp/queries" \
    --zone "rebind.test=rebind:$PUB:127.0.0.1" --zone "redir.test=a:$PUB" \
    --zone "self.test=a:$SELF" >"$tmp/dns.log" 2>&1 &
pids+=($!)

# A "public" server on $PUB:8080 (in the other namespace) redirecting to the private service on
# 127.0.0.1:8081, and a service of the collector's host on 0.0.0.0:8082; both count every request
# they get in $tmp/hits.
cat >"$tmp/servers.py" <<'PY'
import http.server, sys, threading, time
which, hits = sys.argv[1], sys.argv[2]
class Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        # "/": into loopback (never followed from a public site, lib/web.c); "/to-self": to the
        # collector's own public-looking address (followed, then refused at connect time).
        self.send_header("Location", "http://192.88.99.1:8082/secret" if self.path == "/to-self"
                         else "http://127.0.0.1:8081/secret")
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
servers = {"public": [(("0.0.0.0", 8080), Redirect)],
           "host": [(("127.0.0.1", 8081), Private), (("0.0.0.0", 8082), Private)]}[which]
for addr, h in servers:
    s = http.server.ThreadingHTTPServer(addr, h)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
PY
ip netns exec "$NS" python3 "$tmp/servers.py" public "$tmp/hits" >"$tmp/web.log" 2>&1 &
pids+=($!)
python3 "$tmp/servers.py" host "$tmp/hits" >"$tmp/host.log" 2>&1 &
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
for _ in $(seq 100); do
    grep -q ready "$tmp/web.log" && grep -q ready "$tmp/host.log" && [ -s "$tmp/dns.log" ] && break
    sleep 0.05
done
grep -q ready "$tmp/web.log" && grep -q ready "$tmp/host.log" || fail "test servers did not start"

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
# is not followed (the measurement's own rule); one to the collector's own address is followed
# and refused at connect time (the destination policy).
control "$strict" "http://redir.test:8080/" >"$tmp/redir.json"
[ "$(hits)" = 0 ] || fail "a redirect reached the private service"
python3 - "$tmp/redir.json" <<'PY' || fail "redirect into loopback: not followed"
import json, sys
tk = json.load(open(sys.argv[1])).get("test_keys") or {}
assert tk.get("x_redirect_not_followed") == "local_address", tk.get("x_redirect_not_followed")
PY
control "$strict" "http://redir.test:8080/to-self" >"$tmp/redir.json"
[ "$(hits)" = 0 ] || fail "a redirect reached the collector host's own service"
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

# The collector's own address, as a literal and through a name: refused before measuring (403),
# and nothing reaches the host's service on 0.0.0.0:8082.
for url in "http://$SELF:8082/" "http://self.test:8082/" "http://[::ffff:$SELF]:8082/"; do
    control "$strict" "$url" >"$tmp/self.json"
    [ "$(cat "$tmp/status")" = 403 ] || fail "$url: $(cat "$tmp/status") $(cat "$tmp/self.json")"
done
[ "$(hits)" = 0 ] || fail "a request reached the collector host's own service"
echo "own address: refused as $SELF, self.test and ::ffff:$SELF"

# Positive control: with --allow-private-control the same requests do reach the service.
lab=$(start_collector lab --allow-private-control) || fail "collector did not start"
control "$lab" "http://redir.test:8080/to-self" >/dev/null
[ "$(hits)" -ge 1 ] || fail "positive control: the redirect did not reach the host's service"
control "$lab" "http://$SELF:8082/" >/dev/null
[ "$(hits)" -ge 2 ] || fail "positive control: $SELF:8082 did not reach the host's service"
echo "test_control_policy: ok (rebinding and redirect refused; $(hits) hit(s) with --allow-private-control)"
