#!/usr/bin/env bash
# Lab scenario 32: on-path DNS injection, the Great Firewall's way. tests/lab/dnsinject.py in
# vt-censor reads every UDP query for target.lab that crosses it, whichever resolver it is sent
# to (here the probe's second resolver, the authoritative DNS), and answers at once with a forged
# address that does not answer (10.99.2.99: packets to it dropped, as the GFW's forged addresses
# mostly are); the query itself goes on 300 ms later, so the real answer arrives second. The ISP
# resolver, whose own queries the injector would poison the same way, answers the forged address
# (dnsmasq --address). Both local resolvers then agree on an address the control does not give:
# the "CDN's other node" rule must not call that consistent when nothing connects to it while
# the control connects: DNS blocking, not the address blocking the failed connect suggests.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
FORGED=10.99.2.99
lab_setup
lab_isp_dns "--address=/target.lab/$FORGED"
lab_censor iptables -A FORWARD -d "$FORGED" -j DROP
lab_dns_injector "$FORGED"
# The injection works as meant: the forged answer first, the real one 300 ms later.
lab_client python3 - "$LAB_AUTH_DNS" <<'PY' || lab_die "the injector did not answer first"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(struct.pack("!HHHHHH", 0x1234, 0x100, 1, 0, 0, 0) + b"\x06target\x03lab\x00" +
         struct.pack("!HH", 1, 1), (sys.argv[1], 53))
got = [socket.inet_ntoa(s.recvfrom(512)[0][-4:]) for _ in range(2)]
print("lab: answers in order:", got, file=sys.stderr)
sys.exit(got != ["10.99.2.99", "10.99.2.10"])
PY
lab_probe
lab_show
lab_assert lab-target verdict=dns_blocking verdict_phase=dns failure_phase=tcp \
    evidence.dns_consistency=inconsistent "evidence.dns_answers.probe.0=$FORGED" \
    "evidence.dns_answers.resolver.0=$FORGED" "evidence.dns_answers.control.0=$LAB_TARGET_IP"
lab_assert lab-target-http verdict=dns_blocking verdict_phase=dns
lab_assert lab-other verdict=ok
lab_assert lab-canary verdict=ok
