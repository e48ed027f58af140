# shellcheck shell=bash
# The censorship lab: one network-namespace topology reused by every scenario (tests/lab/test_*).
# Source it, call lab_setup, apply the scenario's interference, run lab_probe, check with
# lab_assert. Teardown runs from an EXIT trap, also on failure and on SIGINT/SIGTERM.
#
#   vt-client (probe) ── vt-censor (router, ISP resolver, iptables/tc) ── vt-server (nginx, DNS)
#                                    └──────────────────────────────────── vt-control (collector)
#
# Only 10.99.0.0/16 is used, and only inside these namespaces: nothing is routed to the host.
# Interference rules match traffic entering the censor from the client ("-i $LAB_IF_CLI"), so the
# control vantage, which also routes through the censor, stays uncensored.

# ---- the table: names, addresses, links --------------------------------------------------------
LAB_NAMESPACES=(vt-client vt-censor vt-server vt-control)
# Made only by the scenarios that call lab_add_clean_client; removed by every set-up and teardown.
LAB_EXTRA_NAMESPACES=(vt-clean)
LAB_CLIENT_IP=10.99.1.2      # vt-client cli0
LAB_ISP_DNS=10.99.1.1        # vt-censor cen-cli: the gateway and the "ISP resolver"
LAB_CENSOR_SRV_IP=10.99.2.1  # vt-censor cen-srv
LAB_SERVER_IP=10.99.2.2      # vt-server srv0 (its own address; services have their own below)
LAB_AUTH_DNS=10.99.2.53      # vt-server: the lab's authoritative DNS (the truth)
LAB_CENSOR_CTL_IP=10.99.3.1  # vt-censor cen-ctl
LAB_CONTROL_IP=10.99.3.2     # vt-control ctl0: vantage-collector's control endpoint
LAB_CONTROL_PORT=8080        # the collector, on vt-control's loopback
LAB_CONTROL_TLS_PORT=8443    # nginx in front of it, TLS with the lab CA
LAB_FRONT_IP=10.99.3.3       # vt-control ctl0 too: the collector's other address (a CDN front),
                             # announced at check-in (--alternate-url; scenario 37)
LAB_SNI_TEST_PORT=443        # the collector's SNI test server, on vt-control's own address
LAB_IF_CLI=cen-cli           # the censor's interface towards the client
LAB_CLIENT_NET=10.99.1.0     # the censored network: country XA, AS64501 in the collector's GeoIP
LAB_CLIENT_CC=XA
LAB_CLIENT_ASN=AS64501
LAB_CLEAN_NET=10.99.4.0      # vt-clean's (lab_add_clean_client): a second, uncensored network
LAB_CLEAN_CC=XB
LAB_CLEAN_ASN=AS64502
LAB_CLEAN_IP=10.99.4.2       # vt-clean cln0
LAB_CLEAN_GW=10.99.4.1       # vt-censor cen-cln
LAB_IF_CLEAN=cen-cln         # the censor's interface towards it: the scenarios' rules skip it
LAB_IF_SRV=cen-srv
# Name -> address. Services on 10.99.2.10 (target.lab, other.lab share it) and 10.99.2.11 run in
# the "main" nginx; the others in the "aux" nginx, so a scenario can stop the target's server
# alone. blockpage.lab answers every Host with the lab blockpage. delay.lab has a name, an
# address and a certificate but no nginx ("none"): scenario 15 runs its own slow server there.
LAB_HOSTS=(
    "target.lab 10.99.2.10 main"
    "other.lab 10.99.2.10 main"
    "slow.lab 10.99.2.11 main"
    "canary.lab 10.99.2.20 aux"
    "blockpage.lab 10.99.2.66 aux"
    "delay.lab 10.99.2.12 none"
)
LAB_TARGET_IP=10.99.2.10
LAB_CANARY_IP=10.99.2.20
LAB_BLOCKPAGE_IP=10.99.2.66
LAB_INTERCEPT_IP=10.99.2.67  # HTTPS with a certificate from a CA the probe does not trust
LAB_LARGE_KB=${LAB_LARGE_KB:-64} # size of /large.bin on every site

LAB_SRC_DIR=${VT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB_BUILD_DIR=${VT_BUILD_DIR:-$LAB_SRC_DIR/build}
LAB_PROBE=${LAB_PROBE:-$LAB_BUILD_DIR/probe/vantage-probe}
LAB_COLLECTOR=${LAB_COLLECTOR:-$LAB_BUILD_DIR/collector/vantage-collector}
LAB_TARGETS=${LAB_TARGETS:-$LAB_SRC_DIR/tests/lab/targets-lab.json}
LAB_FINGERPRINTS=${LAB_FINGERPRINTS:-$LAB_SRC_DIR/tests/lab/fingerprints-lab.csv}
LAB_DIR=""
LAB_OUT=""

lab_log() { echo "lab: $*" >&2; }
lab_die() {
    echo "lab: FAIL: $*" >&2
    exit 1
}

# Exit 77 (skipped) unless root and the tools are there.
lab_require() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "lab: skipped: network-namespace tests need root" >&2
        exit 77
    fi
    local t
    for t in ip iptables tc dnsmasq nginx openssl python3; do
        if ! command -v "$t" >/dev/null 2>&1; then
            echo "lab: skipped: $t is missing (scripts/deps.sh lab)" >&2
            exit 77
        fi
    done
    if [ ! -x "$LAB_PROBE" ]; then
        echo "lab: skipped: no probe at $LAB_PROBE (build first)" >&2
        exit 77
    fi
}

# lab_needs control|fingerprints...: skip (77) with a message when the probe or the collector
# cannot provide what the scenario's verdict needs.
lab_needs() {
    lab_require
    local help need
    help=$("$LAB_PROBE" --help 2>&1) || true
    for need in "$@"; do
        case "$need" in
        control)
            if ! grep -q -- '--control' <<<"$help" || [ ! -x "$LAB_COLLECTOR" ]; then
                echo "lab: skipped: needs the control (probe --control and $LAB_COLLECTOR)" >&2
                exit 77
            fi
            ;;
        fingerprints)
            if ! grep -q -- '--fingerprints' <<<"$help"; then
                echo "lab: skipped: needs probe --fingerprints" >&2
                exit 77
            fi
            ;;
        esac
    done
}

lab_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}
lab_censor() { lab_ns vt-censor "$@"; }
lab_server() { lab_ns vt-server "$@"; }
lab_client() { lab_ns vt-client "$@"; }

lab_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# Kills the processes inside one of the lab's namespaces (only those), then deletes it.
lab_ns_destroy() {
    local ns=$1 pids i
    if lab_ns_exists "$ns"; then
        pids=$(ip netns pids "$ns" 2>/dev/null)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill $pids 2>/dev/null || true
            for i in 1 2 3 4 5 6 7 8 9 10; do
                pids=$(ip netns pids "$ns" 2>/dev/null)
                [ -z "$pids" ] && break
                sleep 0.1
            done
            # shellcheck disable=SC2086
            [ -n "$pids" ] && kill -9 $pids 2>/dev/null
        fi
        ip netns del "$ns" 2>/dev/null || true
    fi
    case "$ns" in vt-*) rm -rf "/etc/netns/$ns" ;; esac
}

lab_teardown() {
    local rc=$?
    trap - EXIT INT TERM HUP PIPE
    local ns
    for ns in "${LAB_EXTRA_NAMESPACES[@]}" "${LAB_NAMESPACES[@]}"; do
        lab_ns_destroy "$ns"
    done
    if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${LAB_KEEP_ON_FAIL:-}" ]; then
            lab_log "kept $LAB_DIR"
        else
            rm -rf "$LAB_DIR"
        fi
    fi
    exit "$rc"
}

# ---- pieces of the set-up ----------------------------------------------------------------------
lab_make_ns() {
    local ns
    for ns in "${LAB_NAMESPACES[@]}"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        lab_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
        lab_ns "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    done
    ip link add cli0 netns vt-client type veth peer name "$LAB_IF_CLI" netns vt-censor
    ip link add srv0 netns vt-server type veth peer name "$LAB_IF_SRV" netns vt-censor
    ip link add ctl0 netns vt-control type veth peer name cen-ctl netns vt-censor

    ip -n vt-client addr add "$LAB_CLIENT_IP/24" dev cli0
    ip -n vt-censor addr add "$LAB_ISP_DNS/24" dev "$LAB_IF_CLI"
    ip -n vt-censor addr add "$LAB_CENSOR_SRV_IP/24" dev "$LAB_IF_SRV"
    ip -n vt-censor addr add "$LAB_CENSOR_CTL_IP/24" dev cen-ctl
    ip -n vt-control addr add "$LAB_CONTROL_IP/24" dev ctl0
    ip -n vt-control addr add "$LAB_FRONT_IP/24" dev ctl0
    ip -n vt-server addr add "$LAB_SERVER_IP/24" dev srv0
    local a
    for a in "$LAB_AUTH_DNS" "$LAB_INTERCEPT_IP" $(lab_host_ips); do
        ip -n vt-server addr add "$a/24" dev srv0 2>/dev/null || true
    done
    ip -n vt-client link set cli0 up
    ip -n vt-server link set srv0 up
    ip -n vt-control link set ctl0 up
    ip -n vt-censor link set "$LAB_IF_CLI" up
    ip -n vt-censor link set "$LAB_IF_SRV" up
    ip -n vt-censor link set cen-ctl up
    ip -n vt-client route add default via "$LAB_ISP_DNS"
    ip -n vt-server route add default via "$LAB_CENSOR_SRV_IP"
    ip -n vt-control route add default via "$LAB_CENSOR_CTL_IP"
    lab_censor sysctl -qw net.ipv4.ip_forward=1

    mkdir -p /etc/netns/vt-client /etc/netns/vt-control
    echo "nameserver $LAB_ISP_DNS" >/etc/netns/vt-client/resolv.conf
    echo "nameserver $LAB_AUTH_DNS" >/etc/netns/vt-control/resolv.conf
}

lab_host_ips() {
    local e
    for e in "${LAB_HOSTS[@]}"; do
        set -- $e
        echo "$2"
    done | sort -u
}
# The lab CA (trusted by the probe and the control), a certificate for every lab name from it,
# and a second "interceptor" CA nobody trusts with its own certificate for target.lab.
lab_make_certs() {
    local d=$LAB_DIR/pki san="" e
    mkdir -p "$d"
    for e in "${LAB_HOSTS[@]}"; do
        set -- $e
        san="${san:+$san,}DNS:$1"
    done
    (
        cd "$d" || exit 1
        for ca in ca evilca; do
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj "/CN=Vantage lab $ca" -keyout $ca.key -out $ca.pem \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
                2>/dev/null || exit 1
        done
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=target.lab" \
            -keyout server.key -out server.csr 2>/dev/null || exit 1
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem 2>/dev/null || exit 1
        # The blockpage server's own certificate names only blockpage.lab, as a real one would.
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=blockpage.lab" \
            -keyout blockpage.key -out blockpage.csr 2>/dev/null || exit 1
        printf 'subjectAltName=DNS:blockpage.lab\n' >blockpage.ext
        openssl x509 -req -in blockpage.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile blockpage.ext -out blockpage.pem 2>/dev/null || exit 1
        # The control endpoint's, for its address (the probe accepts its URL over https only).
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=control" \
            -keyout control.key -out control.csr 2>/dev/null || exit 1
        printf 'subjectAltName=IP:%s,IP:%s\nextendedKeyUsage=serverAuth\n' "$LAB_CONTROL_IP" \
            "$LAB_FRONT_IP" >control.ext
        openssl x509 -req -in control.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile control.ext -out control.pem 2>/dev/null || exit 1
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=target.lab" \
            -keyout evil.key -out evil.csr 2>/dev/null || exit 1
        printf 'subjectAltName=DNS:target.lab,DNS:other.lab\n' >evil.ext
        openssl x509 -req -in evil.csr -CA evilca.pem -CAkey evilca.key -CAcreateserial -days 2 \
            -extfile evil.ext -out evil.pem 2>/dev/null || exit 1
    ) || lab_die "making the lab certificates failed"
    LAB_CACERT=$d/ca.pem
}

lab_make_www() {
    local e host
    for e in "${LAB_HOSTS[@]}"; do
        set -- $e
        host=$1
        mkdir -p "$LAB_DIR/www/$host"
        printf '<!doctype html><html><head><title>Lab site %s</title></head><body><p>Welcome to %s, a site of the Vantage lab.</p></body></html>\n' \
            "$host" "$host" >"$LAB_DIR/www/$host/index.html"
        head -c $((LAB_LARGE_KB * 1024)) /dev/zero >"$LAB_DIR/www/$host/large.bin"
    done
    mkdir -p "$LAB_DIR/www/blockpage"
    printf '<!doctype html><html><head><title>Access denied</title></head><body><h1>VANTAGE-LAB-BLOCKPAGE</h1><p>This site has been blocked by order of the lab authority.</p></body></html>\n' \
        >"$LAB_DIR/www/blockpage/index.html"
    mkdir -p "$LAB_DIR/www/intercept"
    printf '<!doctype html><html><head><title>Intercepted</title></head><body>intercepted</body></html>\n' \
        >"$LAB_DIR/www/intercept/index.html"
}

# nginx instance NAME serving the server blocks in the file $LAB_DIR/nginx-NAME/sites.conf.
lab_nginx_conf() {
    local name=$1 p=$LAB_DIR/nginx-$1
    mkdir -p "$p/tmp"
    cat >"$p/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $p/nginx.pid;
error_log $p/error.log warn;
events { worker_connections 256; }
http {
    access_log $p/access.log;
    default_type application/octet-stream;
    types { text/html html; }
    sendfile on;
    keepalive_timeout 5;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    ssl_certificate $LAB_DIR/pki/server.pem;
    ssl_certificate_key $LAB_DIR/pki/server.key;
    include $p/sites.conf;
}
EOF
    : >"$p/sites.conf"
}

lab_make_nginx() {
    local e host ip inst
    lab_nginx_conf main
    lab_nginx_conf aux
    for e in "${LAB_HOSTS[@]}"; do
        set -- $e
        host=$1 ip=$2 inst=$3
        [ "$host" = blockpage.lab ] || [ "$inst" = none ] && continue
        cat >>"$LAB_DIR/nginx-$inst/sites.conf" <<EOF
server {
    listen $ip:80;
    listen $ip:443 ssl;
    server_name $host;
    root $LAB_DIR/www/$host;
}
EOF
    done
    cat >>"$LAB_DIR/nginx-aux/sites.conf" <<EOF
server {
    listen $LAB_BLOCKPAGE_IP:80 default_server;
    listen $LAB_BLOCKPAGE_IP:443 ssl default_server;
    server_name _;
    ssl_certificate $LAB_DIR/pki/blockpage.pem;
    ssl_certificate_key $LAB_DIR/pki/blockpage.key;
    root $LAB_DIR/www/blockpage;
    error_page 404 =200 /index.html;
}
server {
    listen $LAB_INTERCEPT_IP:443 ssl default_server;
    listen $LAB_INTERCEPT_IP:80 default_server;
    server_name _;
    ssl_certificate $LAB_DIR/pki/evil.pem;
    ssl_certificate_key $LAB_DIR/pki/evil.key;
    root $LAB_DIR/www/intercept;
    error_page 404 =200 /index.html;
}
EOF
    for inst in main aux; do
        lab_server nginx -e "$LAB_DIR/nginx-$inst/error.log" -c "$LAB_DIR/nginx-$inst/nginx.conf" ||
            lab_die "nginx $inst did not start: $(cat "$LAB_DIR/nginx-$inst/error.log")"
    done
}

# Stops the nginx that serves target.lab / other.lab / slow.lab (scenario: the site is down).
lab_stop_main_server() {
    local pid
    pid=$(cat "$LAB_DIR/nginx-main/nginx.pid" 2>/dev/null) || lab_die "no main nginx pid"
    kill "$pid"
    local i
    for i in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

# The authoritative DNS for .lab (in vt-server): the truth, used by the control and by the
# probe's second resolver.
lab_make_auth_dns() {
    local args=() e
    for e in "${LAB_HOSTS[@]}"; do
        set -- $e
        args+=("--address=/$1/$2")
    done
    lab_server dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
        --listen-address="$LAB_AUTH_DNS" --local=/lab/ --user=root --group=root \
        --pid-file="$LAB_DIR/dns-auth.pid" --log-queries --log-facility="$LAB_DIR/dns-auth.log" \
        "${args[@]}" || lab_die "authoritative dnsmasq did not start"
}

# SNI throttling (Russia's 2021 kind): a ClientHello naming NAME marks its connection, and every
# later packet of it towards the client goes through an htb class of RATE_KBIT; further
# arguments go to the class (e.g. "burst 32k cburst 32k": a full-speed start).
lab_sni_throttle() {
    local name=$1 rate=$2
    shift 2
    lab_censor tc qdisc add dev "$LAB_IF_CLI" root handle 1: htb
    lab_censor tc class add dev "$LAB_IF_CLI" parent 1: classid 1:7 htb rate "${rate}kbit" \
        ceil "${rate}kbit" "$@"
    lab_censor iptables -t mangle -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 \
        -m string --string "$name" --algo bm -j CONNMARK --set-mark 7
    lab_censor iptables -t mangle -A POSTROUTING -o "$LAB_IF_CLI" -m connmark --mark 7 \
        -j CLASSIFY --set-class 1:7
}

# lab_dns_injector FORGED: the Great Firewall's way (dnsinject.py in vt-censor): every UDP query
# for target.lab crossing the censor from the client, whatever its server, is dropped and
# answered at once with FORGED; the query itself goes on 300 ms later, so the real answer comes
# second.
lab_dns_injector() {
    local forged=$1 ip
    lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -p udp --dport 53 \
        -m string --hex-string '|06|target|03|lab|00|' --algo bm -j DROP
    # the injector re-sends the held query as a frame: it needs the neighbour entries of the
    # servers queried (the resolver, the SNI test server of the injection check)
    for ip in "$LAB_AUTH_DNS" "$LAB_CONTROL_IP"; do
        lab_censor python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('$ip', 9))"
    done
    lab_censor python3 -u "$LAB_SRC_DIR/tests/lab/dnsinject.py" --iface "$LAB_IF_CLI" \
        --name target.lab --forge "$forged" --delay-ms 300 --lifetime 300 \
        >"$LAB_DIR/inject.out" 2>&1 &
    for _ in $(seq 1 50); do
        grep -q listening "$LAB_DIR/inject.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q listening "$LAB_DIR/inject.out" ||
        lab_die "the injector did not start: $(cat "$LAB_DIR/inject.out")"
}

# The ISP resolver (in vt-censor): forwards to the authoritative DNS, with the scenario's
# overrides, e.g. lab_isp_dns "--address=/target.lab/" (NXDOMAIN) or
# "--address=/target.lab/127.0.0.1". Restarts it when called again.
lab_isp_dns() {
    local pidf=$LAB_DIR/dns-isp.pid pid
    if [ -f "$pidf" ]; then
        pid=$(cat "$pidf")
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$pidf"
    fi
    lab_censor dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
        --listen-address="$LAB_ISP_DNS" --server="$LAB_AUTH_DNS" --cache-size=0 \
        --user=root --group=root --pid-file="$pidf" --log-queries \
        --log-facility="$LAB_DIR/dns-isp.log" "$@" || lab_die "ISP dnsmasq did not start"
}

# The uncensored control vantage: vantage-collector's control endpoint in vt-control.
lab_make_control() {
    LAB_CONTROL_URL=""
    LAB_COLLECTOR_URL=""
    LAB_SNI_TEST=""
    if [ ! -x "$LAB_COLLECTOR" ]; then
        lab_log "no collector at $LAB_COLLECTOR: running without a control"
        return 0
    fi
    local d=$LAB_DIR/collector
    mkdir -p "$d"
    # The control's "system" CA store is the lab CA: ip netns exec bind-mounts
    # /etc/netns/vt-control/ssl over /etc/ssl, for OpenSSL and libcurl alike.
    mkdir -p /etc/netns/vt-control/ssl/certs
    cp /etc/ssl/openssl.cnf /etc/netns/vt-control/ssl/ 2>/dev/null || true
    cp "$LAB_CACERT" /etc/netns/vt-control/ssl/certs/ca-certificates.crt
    # The client networks' made-up country and network, in ip-location-db's CSV format, so that
    # a probe checking in from one is told its own (scenario 27).
    printf '%s,%s,%s,%s\n' "${LAB_CLIENT_NET%.*}.0" "${LAB_CLIENT_NET%.*}.255" \
        "${LAB_CLIENT_ASN#AS}" "Lab censored ISP" "${LAB_CLEAN_NET%.*}.0" \
        "${LAB_CLEAN_NET%.*}.255" "${LAB_CLEAN_ASN#AS}" "Lab clean ISP" >"$d/geoip-asn.csv"
    printf '%s,%s,%s\n' "${LAB_CLIENT_NET%.*}.0" "${LAB_CLIENT_NET%.*}.255" "$LAB_CLIENT_CC" \
        "${LAB_CLEAN_NET%.*}.0" "${LAB_CLEAN_NET%.*}.255" "$LAB_CLEAN_CC" >"$d/geoip-country.csv"
    # nginx in front passes the client's address (X-Forwarded-For), as a deployment's proxy
    # does: check-in and scrubbing see the probe's address, not nginx's.
    # Its SNI test server on vt-control's own address, port 443 (where a censor's DPI looks),
    # so every scenario runs the probe's SNI test: a false "throttled" anywhere fails it.
    local sni=()
    if "$LAB_COLLECTOR" --help 2>&1 | grep -q -- --sni-test-listen; then
        sni=(--sni-test-listen "$LAB_CONTROL_IP:$LAB_SNI_TEST_PORT")
    fi
    # Its other address, which check-ins announce (a CDN front in a deployment).
    local alt=()
    if "$LAB_COLLECTOR" --help 2>&1 | grep -q -- --alternate-url; then
        alt=(--alternate-url "https://$LAB_FRONT_IP:$LAB_CONTROL_TLS_PORT")
    fi
    lab_ns vt-control "$LAB_COLLECTOR" serve --allow-private-control \
        --listen "127.0.0.1:$LAB_CONTROL_PORT" --db "sqlite:$d/vantage.db" --rate 0 \
        --trusted-proxy 127.0.0.1 --geoip-asn "$d/geoip-asn.csv" \
        --geoip-country "$d/geoip-country.csv" "${sni[@]}" "${alt[@]}" >"$d/collector.log" 2>&1 &
    # TLS in front of it, as a deployment has: the probe takes a control URL over https only
    # (plain http to loopback aside). Port 8443: the scenarios' rules on 443 leave it alone.
    lab_nginx_conf ctl
    cat >"$LAB_DIR/nginx-ctl/sites.conf" <<EOF
server {
    listen $LAB_CONTROL_IP:$LAB_CONTROL_TLS_PORT ssl;
    listen $LAB_FRONT_IP:$LAB_CONTROL_TLS_PORT ssl;
    ssl_certificate $LAB_DIR/pki/control.pem;
    ssl_certificate_key $LAB_DIR/pki/control.key;
    location / {
        proxy_set_header X-Forwarded-For \$remote_addr;
        proxy_pass http://127.0.0.1:$LAB_CONTROL_PORT;
    }
}
EOF
    if ! lab_ns vt-control nginx -e "$LAB_DIR/nginx-ctl/error.log" \
        -c "$LAB_DIR/nginx-ctl/nginx.conf"; then
        lab_log "the control's nginx did not start: $(cat "$LAB_DIR/nginx-ctl/error.log")"
        return 0
    fi
    local i
    for i in $(seq 1 50); do
        if lab_ns vt-control python3 -c "import socket; socket.create_connection(('127.0.0.1',$LAB_CONTROL_PORT),0.2)" 2>/dev/null &&
            lab_client python3 -c "import socket; socket.create_connection(('$LAB_CONTROL_IP',$LAB_CONTROL_TLS_PORT),0.2)" 2>/dev/null; then
            LAB_CONTROL_URL="https://$LAB_CONTROL_IP:$LAB_CONTROL_TLS_PORT/api/v1/control"
            LAB_COLLECTOR_URL="https://$LAB_CONTROL_IP:$LAB_CONTROL_TLS_PORT"
            if [ "${#sni[@]}" -gt 0 ]; then
                lab_wait_port vt-client "$LAB_CONTROL_IP" "$LAB_SNI_TEST_PORT"
                LAB_SNI_TEST="$LAB_CONTROL_IP:$LAB_SNI_TEST_PORT"
            fi
            return 0
        fi
        sleep 0.1
    done
    lab_log "the collector did not come up: $(tail -5 "$d/collector.log")"
}

# A second client network, vt-clean (10.99.4.2), routed through the censor on its own interface
# (cen-cln), so that rules matching "-i $LAB_IF_CLI" leave it alone; its resolver is the
# authoritative DNS (an ISP resolver that does not censor). Call after lab_setup.
lab_add_clean_client() {
    ip netns add vt-clean
    ip -n vt-clean link set lo up
    lab_ns vt-clean sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
    ip link add cln0 netns vt-clean type veth peer name "$LAB_IF_CLEAN" netns vt-censor
    ip -n vt-clean addr add "$LAB_CLEAN_IP/24" dev cln0
    ip -n vt-censor addr add "$LAB_CLEAN_GW/24" dev "$LAB_IF_CLEAN"
    ip -n vt-clean link set cln0 up
    ip -n vt-censor link set "$LAB_IF_CLEAN" up
    ip -n vt-clean route add default via "$LAB_CLEAN_GW"
    mkdir -p /etc/netns/vt-clean
    echo "nameserver $LAB_AUTH_DNS" >/etc/netns/vt-clean/resolv.conf
    lab_wait_port vt-clean "$LAB_TARGET_IP" 443
}

# lab_probe_upload NS STATE_DIR OUT [ARGS...]: one probe run in namespace NS (vt-client or
# vt-clean) that checks in with the lab's collector and uploads what it measured, as a
# volunteer's probe does; STATE_DIR is that volunteer's spool. The run's JSONL goes to OUT, its
# stderr to OUT.err. Fails unless the run exits 0 (4: measurements left in the spool).
lab_probe_upload() {
    local ns=$1 state=$2 out=$3 rc=0
    shift 3
    [ -n "${LAB_COLLECTOR_URL:-}" ] || lab_die "no collector to upload to"
    lab_ns "$ns" "$LAB_PROBE" run --quiet --accept-risks --targets "$LAB_TARGETS" \
        --output "$out" --cacert "$LAB_CACERT" --resolver "$LAB_AUTH_DNS:53" \
        --timeout "${LAB_TIMEOUT:-3}" --control "$LAB_CONTROL_URL" \
        --fingerprints "$LAB_FINGERPRINTS" --state-dir "$state" \
        --collector "$LAB_COLLECTOR_URL" --collector-cacert "$LAB_CACERT" \
        --upload-attempts 3 --upload-backoff-ms 200 --upload-max-time 30 "$@" \
        2>"$out.err" || rc=$?
    if [ "$rc" -ne 0 ] || [ ! -s "$out" ]; then
        tail -20 "$out.err" >&2
        lab_die "the probe in $ns exited $rc ($(wc -l <"$out" 2>/dev/null || echo 0) measurements)"
    fi
}

# Waits until a TCP port answers from inside a namespace.
lab_wait_port() {
    local ns=$1 ip=$2 port=$3 i
    for i in $(seq 1 50); do
        lab_ns "$ns" python3 -c "import socket; socket.create_connection(('$ip',$port),0.2)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    lab_die "$ip:$port does not answer from $ns"
}

# ---- the entry points --------------------------------------------------------------------------
lab_setup() {
    lab_require
    trap lab_teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    trap 'exit 141' PIPE
    # One lab at a time on this machine: the names are fixed, a second set-up would tear the
    # first one down. The lock goes with the process (fd 9).
    exec 9>/run/vantage-lab.lock
    if command -v flock >/dev/null && ! flock -w 900 9; then
        lab_die "another lab run holds /run/vantage-lab.lock"
    fi
    local ns
    for ns in "${LAB_EXTRA_NAMESPACES[@]}" "${LAB_NAMESPACES[@]}"; do # leftovers of a crashed run
        lab_ns_destroy "$ns"
    done
    LAB_DIR=$(mktemp -d /tmp/vt-lab.XXXXXX)
    chmod 755 "$LAB_DIR"
    LAB_OUT=$LAB_DIR/out.jsonl
    lab_make_ns
    lab_make_certs
    lab_make_www
    lab_make_auth_dns
    lab_isp_dns
    lab_make_nginx
    lab_wait_port vt-client "$LAB_TARGET_IP" 443
    lab_wait_port vt-client "$LAB_CANARY_IP" 443
    lab_make_control
}

# Runs the probe in vt-client over the lab's targets; extra arguments are passed on.
# The output (JSONL) goes to $LAB_OUT; the probe's stderr to $LAB_DIR/probe.err.
lab_probe() {
    local args=(run --quiet --targets "$LAB_TARGETS" --output "$LAB_OUT" --cacert "$LAB_CACERT"
        --resolver "$LAB_AUTH_DNS:53" --timeout "${LAB_TIMEOUT:-3}")
    local help
    help=$("$LAB_PROBE" --help 2>&1)
    local ctl_flag
    ctl_flag=$(grep -o -- '--control[a-z-]*' <<<"$help" | grep -v cacert | head -1) || true
    if [ -n "${LAB_CONTROL_URL:-}" ] && [ -n "$ctl_flag" ]; then
        args+=("$ctl_flag" "$LAB_CONTROL_URL")
    fi
    if grep -q -- '--fingerprints' <<<"$help"; then
        args+=(--fingerprints "$LAB_FINGERPRINTS")
    fi
    if [ -n "${LAB_SNI_TEST:-}" ] && grep -q -- '--sni-test' <<<"$help"; then
        args+=(--sni-test "$LAB_SNI_TEST")
    fi
    # unattended, no upload, state kept in the lab's directory
    grep -q -- '--accept-risks' <<<"$help" && args+=(--accept-risks)
    grep -q -- '--no-upload' <<<"$help" && args+=(--no-upload)
    grep -q -- '--state-dir' <<<"$help" && args+=(--state-dir "$LAB_DIR/state")
    local t0=$SECONDS rc=0
    lab_client "$LAB_PROBE" "${args[@]}" "$@" 2>"$LAB_DIR/probe.err" || rc=$?
    lab_log "probe ran $((SECONDS - t0)) s, exit $rc, $(wc -l <"$LAB_OUT" 2>/dev/null || echo 0) measurements"
    if [ ! -s "$LAB_OUT" ]; then
        cat "$LAB_DIR/probe.err" >&2
        lab_die "the probe wrote no measurement (exit $rc)"
    fi
    if [ -n "${LAB_SAVE_OUT:-}" ]; then # bench/lab-accuracy keeps the measurements
        cp "$LAB_OUT" "$LAB_SAVE_OUT"
    fi
    if [ "$rc" -ne "${LAB_PROBE_RC:-0}" ]; then # a crash or sanitizer report fails the test
        tail -30 "$LAB_DIR/probe.err" >&2
        lab_die "the probe exited $rc"
    fi
}

# lab_assert TARGET_ID CHECK...: each CHECK is key=value, key~=regex, key>=num, key<=num or
# key!=value on the measurement's test_keys (dotted paths: evidence.sni_swap); values are
# compared as JSON scalars written plainly (null, true, 12, text).
lab_assert() {
    python3 "$LAB_SRC_DIR/tests/lab/labcheck.py" "$LAB_OUT" "$@" || lab_die "assertion on $1"
}

# lab_rule_packets REGEX: the packet count of the censor's FORWARD rules whose listing
# (iptables -L -v -x -n) matches REGEX, one line per rule: how often a rule fired.
lab_rule_packets() {
    lab_censor iptables -L FORWARD -v -x -n | awk -v re="$1" '$0 ~ re {print $1}'
}

# Every measurement of the run: id, verdict, phase (for the test's log).
lab_show() {
    python3 "$LAB_SRC_DIR/tests/lab/labcheck.py" "$LAB_OUT" --show >&2 || true
}
