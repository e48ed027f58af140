#!/usr/bin/env bash
# Lab scenario 16: transfers frozen once they pass 16 KB (as Russia's TSPU has done to
# connections towards some foreign hosting networks since 2024): a ClientHello naming target.lab
# marks the connection, and once the server has sent 16 KiB on it every further packet towards
# the client is dropped. The handshake and a small page pass; the 64 KiB large resource stalls
# until the probe's timeout (nothing of it arrives: its first 16 KiB TLS record is never
# complete). The probe must call it http_blocking (a cut transfer, not throttling, not ok),
# while the canary's download completes and other names pass.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_censor sysctl -qw net.netfilter.nf_conntrack_acct=1
lab_censor iptables -t mangle -A FORWARD -i "$LAB_IF_CLI" -p tcp --dport 443 \
    -m string --string target.lab --algo bm -j CONNMARK --set-mark 7
lab_censor iptables -A FORWARD -o "$LAB_IF_CLI" -m connmark --mark 7 \
    -m connbytes --connbytes 16384: --connbytes-dir reply --connbytes-mode bytes -j DROP
lab_probe
lab_show
lab_assert lab-target verdict=http_blocking verdict_phase=http failure=null \
    x_large_resource.failure=generic_timeout_error "x_large_resource.bytes_received<=16383" \
    "verdict_reason~=stopped after"
lab_assert lab-canary verdict=ok "x_large_resource.throughput_bps>=5000000"
lab_assert lab-other verdict=ok
lab_assert lab-target-http verdict=ok
