#!/usr/bin/env bash
# A public site (or a censor's injected 302) cannot send the probe into the volunteer's own
# machine or network: a redirect from a public address to 127.0.0.1, or to a name that resolves
# there, is not followed (the 3xx is the final answer, "x_redirect_not_followed"), and nothing
# reaches the local service, so nothing of it can end up in a published measurement. A Location
# with raw bytes in its user info is percent-encoded, so the measurement stays valid UTF-8 (the
# collector refuses anything else). A slow redirect chain ends at the probe's per-target
# deadline. A measurement inflated past a collector's limits (thousands of headers on ten
# redirects) is trimmed to fit, the final answer kept.
#
# Runs in a network and mount namespace this test creates: loopback, plus a second namespace
# behind a veth pair holding 192.88.99.7 (a public-looking address, RFC 7526's retired 6to4
# relay range) for the "public" site; /etc/resolv.conf is bind-mounted, in that namespace only,
# to the test's DNS server. No packet can leave the two namespaces.
# Positive control: the same redirect from a local site (origin 127.0.0.1) is followed, so the
# test fails if the guard is not what stops it.
set -euo pipefail
if [ "${1:-}" != --inside ]; then
    [ "$(id -u)" = 0 ] || { echo "skip: needs root for a network namespace"; exit 77; }
    for c in unshare ip mount python3; do
        command -v "$c" >/dev/null || { echo "skip: $c not installed"; exit 77; }
    done
    exec unshare --net --mount --propagation private bash "$0" --inside
fi

SRC=${VT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PROBE=${VT_BUILD_DIR:-$SRC/build}/probe/vantage-probe
PUB=192.88.99.7
NS=vt-redir-pub-$$
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "test_probe_redirect_local: FAIL: $*"; for f in "$tmp"/*.log; do echo "== $f"; tail -n 20 "$f"; done; exit 1; }

ip link set lo up
ip netns add "$NS"
ip link add vtr0 type veth peer name vtr1
ip link set vtr1 netns "$NS"
ip addr add 192.88.99.1/24 dev vtr0
ip link set vtr0 up
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$PUB/24" dev vtr1
ip -n "$NS" link set vtr1 up
echo "nameserver 127.0.0.1" >"$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf

python3 "$SRC/tests/servers/dnsserver.py" --port 53 --lifetime 60 --log "$tmp/queries" \
    --zone "local.test=a:127.0.0.1" >"$tmp/dns.log" 2>&1 &
pids+=($!)

cat >"$tmp/servers.py" <<'PY'
import http.server, sys, threading, time
which, hits = sys.argv[1], sys.argv[2]
class Site(http.server.BaseHTTPRequestHandler):
    """The 'public' site (and, on 127.0.0.1:18082, a local one) redirecting inwards."""
    def do_GET(self):
        if self.path.startswith("/slow/"):  # a chain of slow hops, 1.5 s each
            n = int(self.path.split("/")[2])
            time.sleep(1.5)
            loc = "/slow/%d" % (n + 1)
        elif self.path.startswith("/fat/"):  # ten hops of 3,000 headers each
            n = int(self.path.split("/")[2])
            self.send_response(302)
            for i in range(3000):
                self.send_header("X-F%d" % i, "v")
            self.send_header("Location", "/fat/%d" % (n + 1) if n < 9 else "/plain")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            loc = {"/to-local": "http://127.0.0.1:18081/secret",
                   "/to-local-name": "http://local.test:18081/secret",
                   "/bad-userinfo": b"http://us\xff:p\xe9@192.88.99.7/plain".decode("latin-1"),
                   "/plain": None}.get(self.path)
        if loc is None:
            body = b"<title>plain</title>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(302)
        self.send_header("Location", loc)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a): pass
class Secret(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(hits, "a") as f:
            f.write(self.path + "\n")
        body = b"<title>Router admin</title>SECRET-WIFI-PASSWORD=hunter2"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
servers = {"public": [(("0.0.0.0", 80), Site)],
           "host": [(("127.0.0.1", 18081), Secret), (("127.0.0.1", 18082), Site)]}[which]
for addr, h in servers:
    s = http.server.ThreadingHTTPServer(addr, h)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(90)
PY
ip netns exec "$NS" python3 "$tmp/servers.py" public "$tmp/hits" >"$tmp/public.log" 2>&1 &
pids+=($!)
python3 "$tmp/servers.py" host "$tmp/hits" >"$tmp/host.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q ready "$tmp/public.log" && grep -q ready "$tmp/host.log" && [ -s "$tmp/dns.log" ] && break
    sleep 0.05
done
grep -q ready "$tmp/public.log" && grep -q ready "$tmp/host.log" || fail "test servers did not start"
hits() { [ -f "$tmp/hits" ] && wc -l <"$tmp/hits" || echo 0; }

python3 - "$tmp/targets.json" "$PUB" <<'PY'
import json, sys
pub = sys.argv[2]
t = lambda i, url: {"id": i, "name": i, "platform": "test", "category": "test", "kind": "web",
                    "endpoints": [url]}
json.dump({"version": 1, "targets": [
    t("to-local", "http://%s/to-local" % pub), t("to-local-name", "http://%s/to-local-name" % pub),
    t("bad-userinfo", "http://%s/bad-userinfo" % pub), t("slow-chain", "http://%s/slow/0" % pub),
    t("local-origin", "http://127.0.0.1:18082/to-local"),
    t("fat-headers", "http://%s/fat/0" % pub)]}, open(sys.argv[1], "w"))
PY
rc=0
timeout 120 "$PROBE" run --quiet --accept-risks --no-upload --targets "$tmp/targets.json" \
    --state-dir "$tmp/state" --output "$tmp/out.jsonl" --timeout 1 2>"$tmp/probe.log" || rc=$?
[ -s "$tmp/out.jsonl" ] || fail "the probe wrote no measurement (exit $rc)"

python3 - "$tmp/out.jsonl" "$(hits)" <<'PY' || fail "measurements"
import json, sys
raw = open(sys.argv[1], "rb").read()
raw.decode("utf-8")  # strictly valid UTF-8, as the collector requires
m = {}
for line in raw.decode().splitlines():
    j = json.loads(line)
    m[j["annotations"]["target_id"]] = j["test_keys"]
    assert len(line.encode()) <= 1 << 20, (j["annotations"]["target_id"], len(line))
hits = int(sys.argv[2])
for i in ("to-local", "to-local-name"):
    tk = m[i]
    assert tk.get("http_status") == 302, (i, tk.get("http_status"), {k: tk.get(k) for k in ("failure", "failure_phase", "tcp_connect", "verdict_reason")})
    assert tk.get("x_redirect_not_followed") == "local_address", (i, tk.get("x_redirect_not_followed"))
    assert "SECRET" not in json.dumps(tk), i
print("redirects into the local network: not followed, the 302 is the answer")
urls = [r["request"]["url"] for r in m["bad-userinfo"]["requests"]]
assert any("%FF" in u for u in urls), urls
print("Location with raw bytes: percent-encoded:", urls)
rt = m["slow-chain"]
# --timeout 1: steps 1+1+1+3 s, the deadline twice that (12 s); without it, 10 hops of 1.5 s
# each would run on (each hop a fresh 3 s timeout).
runtime = max(r.get("t", 0) for r in rt["requests"])
assert runtime < 14 and rt.get("x_redirects", 0) < 10, (runtime, rt.get("x_redirects"))
print("slow chain ended at the deadline: %.1f s, %d hops" % (runtime, rt["x_redirects"]))
# Positive control: from a local origin the same redirect is followed and reaches the service.
assert m["local-origin"].get("http_status") == 200, m["local-origin"].get("http_status")
assert hits == 1, hits
print("local origin: followed (1 hit on the local service, from it only)")
# Ten redirects of 3,000 headers each (>130,000 JSON values): trimmed under the collector's
# 50,000, the final answer kept.
def count(v):
    return 1 + (sum(count(x) for x in v.values()) if isinstance(v, dict) else
                sum(count(x) for x in v) if isinstance(v, list) else 0)
fat = m["fat-headers"]
assert fat.get("x_trimmed") is True and count(fat) < 50000, (fat.get("x_trimmed"), count(fat))
assert fat.get("http_status") == 200 and fat.get("title") == "plain", fat.get("http_status")
print("a measurement inflated by headers: trimmed to %d values, the answer kept" % count(fat))
PY
echo "test_probe_redirect_local: ok"
