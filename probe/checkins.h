/* The network a run measured from when its check-in failed (probe/checkins.c).
 *
 * A run whose check-in fails (the collector down for an hour, or unreachable that moment) measures
 * as ZZ/AS0 and says so ("x_check_in": "failed"); its measurements wait in the spool. The probe
 * keeps the answers of its last successful check-ins (time, country, network) in
 * <state>/check-ins.json. When such a measurement is uploaded and the check-ins just before and
 * just after it named the same country and network, at most VT_CHECKINS_GAP_MAX apart, it is sent
 * with that country and network ("x_check_in": "inferred", and the two check-ins' times): a probe
 * that stays on one network (a Raspberry Pi at home, run from cron) loses no measurement to a
 * collector's outage. Otherwise it keeps ZZ/AS0. */
#ifndef VANTAGE_PROBE_CHECKINS_H
#define VANTAGE_PROBE_CHECKINS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define VT_CHECKINS_FILE "check-ins.json"
#define VT_CHECKINS_MAX 64                  /* the newest ones are kept */
#define VT_CHECKINS_GAP_MAX (72.0 * 3600.0) /* seconds between the two check-ins, at most */

typedef struct vt_checkin_rec {
    char time[20]; /* "YYYY-MM-DD HH:MM:SS" UTC, as measurement_start_time */
    char cc[3];
    char asn[16];
    char name[256];
} vt_checkin_rec;

typedef struct vt_checkins {
    vt_checkin_rec r[VT_CHECKINS_MAX]; /* oldest first */
    int n;
} vt_checkins;

/* The history kept in state_dir (NULL: the default state directory). A missing, unreadable or
 * broken file is an empty history (entries that are not what the probe writes are skipped). */
void vt_checkins_load(const char *state_dir, vt_checkins *h);

/* Appends a successful check-in (time as above, cc "AA", asn "AS123", name possibly "") to the
 * history in state_dir, keeping the newest VT_CHECKINS_MAX. -1 with err when it cannot be
 * written. */
int vt_checkins_record(const char *state_dir, const char *time, const char *cc, const char *asn,
                       const char *name, char *err, size_t errlen);

/* m a measurement read from the spool: when it says "x_check_in": "failed", is ZZ/AS0, and h's
 * check-ins around its measurement_start_time agree (see above), sets its probe_cc, probe_asn,
 * probe_network_name and report_id, and "x_check_in": "inferred" with "x_check_ins_around".
 * 1 when relabelled, 0 when not (m unchanged), -1 out of memory (m may be half changed: not to
 * be sent). */
int vt_checkins_relabel(const vt_checkins *h, cJSON *m);

/* A country as the probe takes it from a check-in ("PK"), and a network ("AS17557"). */
int vt_checkins_cc_ok(const char *s);
int vt_checkins_asn_ok(const char *s);

/* Seconds since the epoch of "YYYY-MM-DD HH:MM:SS" (UTC), or -1 when s is not that. */
double vt_checkins_parse_time(const char *s);

#endif
