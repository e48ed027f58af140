#!/usr/bin/env bash
# Lab scenario 37: the censor blocks the collector. The collector announces another address of
# itself at check-in (--alternate-url https://10.99.3.3:8443, standing for a CDN front: the same
# nginx, which passes the client's address on); a probe that checked in once keeps it. Then the
# censor resets every connection to the collector's own address and port (10.99.3.2:8443, where
# its check-in, upload and control are). The next run must check in and upload at the front,
# say so, be placed in its own country and network (the front passes its address), and lose
# nothing; the collector must hold both runs' measurements.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
lab_setup
[ -n "${LAB_COLLECTOR_URL:-}" ] || lab_die "the collector did not come up"
ST=$LAB_DIR/state-37
DB=$LAB_DIR/collector/vantage.db

# 1. A run that reaches the collector: it keeps the announced address.
lab_probe_upload vt-client "$ST" "$LAB_OUT" --only lab-target
python3 - "$ST/collector-alternates.json" "$LAB_COLLECTOR_URL" "$LAB_FRONT_IP" <<'PY' ||
import json, sys
k = json.load(open(sys.argv[1]))
print("lab: kept:", k, file=sys.stderr)
sys.exit(k != {"collector": sys.argv[2], "alternate_urls": ["https://%s:8443" % sys.argv[3]]})
PY
    lab_die "the probe did not keep the collector's announced address"

# 2. The collector's address blocked (connections reset): the run goes to the front.
lab_censor iptables -A FORWARD -i "$LAB_IF_CLI" -d "$LAB_CONTROL_IP" -p tcp \
    --dport "$LAB_CONTROL_TLS_PORT" -j REJECT --reject-with tcp-reset
lab_probe_upload vt-client "$ST" "$LAB_OUT" --only lab-target
cat "$LAB_OUT.err" >&2
grep -q "checked in at https://$LAB_FRONT_IP:$LAB_CONTROL_TLS_PORT instead" "$LAB_OUT.err" ||
    lab_die "the run did not say it checked in at the front"
python3 - "$LAB_OUT" "$DB" "$ST/last-upload.json" "$LAB_FRONT_IP" "$LAB_CLIENT_CC" \
    "$LAB_CLIENT_ASN" <<'PY' || lab_die "run 2's measurements did not arrive through the front"
import json, sqlite3, sys
out, db, lu, front, cc, asn = sys.argv[1:]
ms = [json.loads(l) for l in open(out)]
uids = [m["measurement_uid"] for m in ms]
places = {(m["probe_cc"], m["probe_asn"]) for m in ms}
c = sqlite3.connect(db)
have = {r[0] for r in c.execute("SELECT uid FROM measurements")}
total = c.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
last = json.load(open(lu))
print("lab: run 2: %d measurements placed in %s; stored %d of them, %d in all; uploaded to %s"
      % (len(uids), places, len(set(uids) & have), total, last.get("collector")), file=sys.stderr)
ok = (uids and set(uids) <= have and places == {(cc, asn)} and total == 2 * len(uids)
      and last.get("collector") == "https://%s:8443" % front and last.get("ok") is True)
sys.exit(0 if ok else 1)
PY
lab_log "ok: the collector's address blocked, the probe checked in and uploaded at its front"
