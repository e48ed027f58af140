#!/usr/bin/env bash
# Lab scenario 35: on-path DNS injection whose forged address answers, as the Great Firewall's
# often do (real, unrelated services). As in scenario 32, tests/lab/dnsinject.py in vt-censor
# answers every UDP query for target.lab crossing it, whichever server it goes to, at once, and
# the ISP resolver answers the same; but the forged address answers: a working HTTPS server
# (the lab's 10.99.2.67) whose certificate is not valid for target.lab, as an unrelated
# service's is not. The probe's DNS injection check asks for each
# name at the SNI test server's address, port 53, where no DNS server runs: for target.lab an
# answer comes anyway, the forged one. The verdict must be dns_blocking, with the control and
# without it (then the second resolver, poisoned too, agrees with the ISP's, and only the check
# tells the forgery from a certificate problem). Names the injector leaves alone get no answer
# there, and stay ok.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_needs control
FORGED=$LAB_INTERCEPT_IP
lab_setup
[ -n "${LAB_SNI_TEST:-}" ] || lab_die "the collector's SNI test server did not start"
lab_isp_dns "--address=/target.lab/$FORGED"
lab_dns_injector "$FORGED"

check_run() {
    lab_show
    lab_assert lab-target verdict=dns_blocking verdict_phase=dns verdict_reason~=forged \
        "evidence.dns_injection.server=$LAB_CONTROL_IP:53" \
        "evidence.dns_injection.answers.0=$FORGED" "evidence.dns_answers.probe.0=$FORGED" \
        "x_dns_injection.query.resolver_address=$LAB_CONTROL_IP:53"
    # plain HTTP too: the forged address's own page is not the site's blockpage, it is a forgery
    lab_assert lab-target-http verdict=dns_blocking verdict_reason~=forged
    lab_assert lab-other verdict=ok "evidence.dns_injection.answers=[]"
}

# 1. With the collector's control.
lab_probe
check_run
lab_assert lab-target "evidence.dns_answers.control.0=$LAB_TARGET_IP"
# 2. Without it: both local resolvers give the forged address.
LAB_CONTROL_URL="" lab_probe
check_run
lab_assert lab-target evidence.control=null "evidence.dns_answers.resolver.0=$FORGED"
