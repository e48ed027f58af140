#!/usr/bin/env bash
# Lab scenario 25: broken IPv6 at home, no censorship. The ISP resolver gives the target's names
# an AAAA record too (fd00:99::10), but the client has no IPv6 (disabled in the lab's
# namespaces): every IPv6 connect fails on the device itself, IPv4 works. That is the volunteer's
# own network, not blocking: the verdict must be ok.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
lab_isp_dns "--host-record=target.lab,$LAB_TARGET_IP,fd00:99::10" \
    "--host-record=other.lab,$LAB_TARGET_IP,fd00:99::10"
lab_probe
lab_show
for id in lab-target lab-target-http lab-other; do
    lab_assert "$id" verdict=ok failure=null evidence.dns_consistency=consistent
done
lab_assert lab-canary verdict=ok
# The IPv6 address was there and tried: its connect failed here, the IPv4 one worked.
python3 - "$LAB_OUT" <<'PY' || lab_die "no failed IPv6 connect beside a working IPv4 one"
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["annotations"]["target_id"] != "lab-target":
        continue
    tc = m["test_keys"]["tcp_connect"]
    v6 = [c for c in tc if ":" in c["ip"]]
    v4 = [c for c in tc if ":" not in c["ip"]]
    sys.exit(0 if v6 and all(c["status"]["failure"] for c in v6)
             and any(c["status"]["success"] for c in v4) else 1)
sys.exit(1)
PY
