#!/usr/bin/env bash
# Lab scenario 17: a slow ISP resolver, no censorship. The "ISP resolver" has to look up names
# it has not cached, and answers them only 4.5 s after the first query (longer than the probe's
# DNS timeout, 3 s here: the first round of queries times out); once looked up, it answers at
# once. The canary's name is in its cache (popular names are). That is a slow resolver, not a
# block: the probe must ask again and call the target ok, not dns_blocking. other.lab is a real
# block for contrast: the resolver drops every query for it, and that must stay dns_blocking.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
# The ISP resolver becomes tests/servers/dnsserver.py on the same address (A answers only, AAAA
# empty, as the lab's names have no IPv6).
for i in $(seq 1 50); do # dnsmasq writes its pid file once it runs
    [ -s "$LAB_DIR/dns-isp.pid" ] && break
    sleep 0.1
done
isp_pid=$(cat "$LAB_DIR/dns-isp.pid") || lab_die "no pid of the ISP dnsmasq"
kill "$isp_pid"
for i in $(seq 1 50); do
    kill -0 "$isp_pid" 2>/dev/null || break
    sleep 0.1
done
lab_censor python3 "$LAB_SRC_DIR/tests/servers/dnsserver.py" --bind "$LAB_ISP_DNS" --port 53 \
    --lifetime 120 --log "$LAB_DIR/dns-isp.log" \
    --zone "canary.lab=a:$LAB_CANARY_IP" --zone "target.lab=cold:4500:$LAB_TARGET_IP" \
    --zone "other.lab=drop" >"$LAB_DIR/dns-isp.out" 2>&1 &
for i in $(seq 1 50); do
    grep -q '"dns"' "$LAB_DIR/dns-isp.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '"dns"' "$LAB_DIR/dns-isp.out" || lab_die "the slow resolver did not start"
LAB_TIMEOUT=3 lab_probe
lab_show
# The first round timed out (recorded after the second resolver's answers), the second one
# answered.
lab_assert lab-target verdict=ok failure=null evidence.dns_consistency=consistent \
    queries.2.engine=system queries.2.failure=generic_timeout_error
lab_assert lab-target-http verdict=ok failure=null
lab_assert lab-canary verdict=ok
# Every query for other.lab dropped, twice: still evidence of a block.
lab_assert lab-other verdict=dns_blocking verdict_phase=dns failure=generic_timeout_error
