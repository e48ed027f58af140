#!/usr/bin/env bash
# Lab scenario 36: a transparent DNS proxy, as ISPs that force their own resolver run: every UDP
# query to port 53 leaving the client, whatever its server, is answered by the ISP resolver
# (iptables REDIRECT in vt-censor). The probe's DNS injection check then gets an answer from the
# SNI test server's address, where no DNS server runs, for every name; for the random name it
# asks beside the target's too, so it knows that answer is the proxy's, no forgery. The target's
# address is blocked (connections reset): the verdict must be what it is without the check,
# tcp_blocking with the control, inconclusive without it; never the dns_blocking of a forgery.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
lab_setup
[ -n "${LAB_SNI_TEST:-}" ] || lab_die "the collector's SNI test server did not start"
lab_censor iptables -t nat -A PREROUTING -i "$LAB_IF_CLI" -p udp --dport 53 -j REDIRECT --to-ports 53
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$LAB_TARGET_IP" -p tcp \
    -j REJECT --reject-with tcp-reset
# The proxy works as meant: a query to an address without DNS is answered.
lab_client python3 - "$LAB_CONTROL_IP" <<'PY' || lab_die "the transparent proxy did not answer"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(struct.pack("!HHHHHH", 0x4321, 0x100, 1, 0, 0, 0) + b"\x05other\x03lab\x00" +
         struct.pack("!HH", 1, 1), (sys.argv[1], 53))
print("lab: the proxy answered", len(s.recvfrom(512)[0]), "bytes", file=sys.stderr)
PY

# with the control: tcp_blocking; without it, a reset address is inconclusive (blocked or down
# cannot be told apart); never dns_blocking
check_run() {
    local want=$1
    lab_show
    lab_assert lab-target "verdict=$want" \
        evidence.dns_injection.intercepted=true "evidence.dns_injection.answers=[]" \
        "x_dns_injection.query.answers.0.ipv4=$LAB_TARGET_IP" x_dns_injection.unlisted_query.rcode?
    lab_assert lab-target-http "verdict=$want" evidence.dns_injection.intercepted=true
    lab_assert lab-canary verdict=ok
}
lab_probe
check_run tcp_blocking
LAB_CONTROL_URL="" lab_probe
check_run inconclusive
