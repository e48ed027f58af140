#!/usr/bin/env bash
# Lab scenario 18: a slow home connection, no censorship. Everything towards the client is
# shaped to 2 Mbit/s (tbf on the censor's client side), and eight targets download their large
# resources at once (the probe's default concurrency), after the canary downloaded its own alone
# (the runner's phase 1). Each target gets about an eighth of the link, an eighth of the canary's
# rate: the link is shared, not throttled. No target may be called throttled (nor blocked).
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
LAB_TARGETS=$LAB_DIR/targets-shared.json
python3 - "$LAB_SRC_DIR/tests/lab/targets-lab.json" "$LAB_TARGETS" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
out = [x for x in t["targets"] if x["category"] == "canary"]
hosts = ["target.lab", "other.lab", "slow.lab"]
for i in range(8):
    h = hosts[i % 3]
    out.append({"id": "lab-shared-%d" % i, "name": "shared %d" % i, "platform": "lab-target",
                "category": "social", "kind": "web", "endpoints": ["https://%s/?%d" % (h, i)],
                "large_resource": "https://%s/large.bin?%d" % (h, i)})
t["targets"] = out
json.dump(t, open(sys.argv[2], "w"))
PY
lab_censor tc qdisc add dev "$LAB_IF_CLI" root tbf rate 2mbit burst 16kb latency 400ms
lab_probe --concurrency 8
lab_show
for i in 0 1 2 3 4 5 6 7; do
    lab_assert "lab-shared-$i" verdict=ok failure=null x_large_resource.failure=null \
        "x_large_resource.x_concurrent_downloads>=1"
done
# The canary's download ran alone, on a slow link (2 Mbit/s, and tbf's burst).
lab_assert lab-canary verdict=ok "x_large_resource.x_concurrent_downloads<=1.05" \
    "evidence.canary_throughput_bps<=3000000"
# The link was shared: some download had several others beside it.
python3 - "$LAB_OUT" <<'PY' || lab_die "no download shared the link"
import json, sys
n = [json.loads(l)["test_keys"]["x_large_resource"]["x_concurrent_downloads"]
     for l in open(sys.argv[1]) if "lab-shared" in l]
sys.exit(0 if max(n) >= 4 else 1)
PY
