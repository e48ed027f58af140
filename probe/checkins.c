/* The history of successful check-ins, and the network of measurements whose check-in failed
 * (checkins.h says when it is inferred and why). */
#include "checkins.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "textfile.h"
#include "vantage/json.h"

#define CHECKINS_MAX_BYTES (256u * 1024u)

static int state_path(const char *state_dir, char *out, size_t n)
{
    char dir[4096], err[256];
    if (state_dir)
        snprintf(dir, sizeof(dir), "%s", state_dir);
    else if (vt_spool_default_state_dir(dir, sizeof(dir), err, sizeof(err)) < 0)
        return -1;
    return snprintf(out, n, "%s/" VT_CHECKINS_FILE, dir) < (int)n ? 0 : -1;
}

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

double vt_checkins_parse_time(const char *s)
{
    unsigned y, mo, d, h, mi, se;
    char tail;
    if (!s || strlen(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':')
        return -1;
    for (int i = 0; i < 19; i++)
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
            return -1;
    if (sscanf(s, "%4u-%2u-%2u %2u:%2u:%2u%c", &y, &mo, &d, &h, &mi, &se, &tail) != 6) return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
    return (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + se;
}

int vt_checkins_cc_ok(const char *s)
{
    return s && strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

int vt_checkins_asn_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 12 || strncmp(s, "AS", 2) != 0) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

void vt_checkins_load(const char *state_dir, vt_checkins *h)
{
    char path[4200], err[256], *text = NULL;
    size_t len;
    memset(h, 0, sizeof(*h));
    if (state_path(state_dir, path, sizeof(path)) < 0 ||
        vt_textfile_read(path, CHECKINS_MAX_BYTES, &text, &len, err, sizeof(err)) < 0)
        return;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "check_ins"), *e;
    if (!cJSON_IsArray(arr)) arr = NULL;
    cJSON_ArrayForEach(e, arr)
    {
        const char *t = vt_json_get_string(e, "time"), *cc = vt_json_get_string(e, "probe_cc"),
                   *asn = vt_json_get_string(e, "probe_asn"),
                   *name = vt_json_get_string(e, "probe_network_name");
        if (vt_checkins_parse_time(t) < 0 || !vt_checkins_cc_ok(cc) || !vt_checkins_asn_ok(asn))
            continue;
        if (h->n == VT_CHECKINS_MAX) { /* more than the probe writes: the newest are kept */
            memmove(&h->r[0], &h->r[1], (VT_CHECKINS_MAX - 1) * sizeof(h->r[0]));
            h->n--;
        }
        vt_checkin_rec *r = &h->r[h->n++];
        snprintf(r->time, sizeof(r->time), "%s", t);
        snprintf(r->cc, sizeof(r->cc), "%s", cc);
        snprintf(r->asn, sizeof(r->asn), "%s", asn);
        snprintf(r->name, sizeof(r->name), "%s",
                 name && strlen(name) < sizeof(r->name) ? name : "");
    }
    cJSON_Delete(j);
}

int vt_checkins_record(const char *state_dir, const char *time, const char *cc, const char *asn,
                       const char *name, char *err, size_t errlen)
{
    char path[4200];
    vt_checkins h;
    if (state_path(state_dir, path, sizeof(path)) < 0) {
        snprintf(err, errlen, "no state directory for " VT_CHECKINS_FILE);
        return -1;
    }
    if (vt_checkins_parse_time(time) < 0 || !vt_checkins_cc_ok(cc) || !vt_checkins_asn_ok(asn)) {
        snprintf(err, errlen, "check-in not recorded: not a time, country and network");
        return -1;
    }
    vt_checkins_load(state_dir, &h);
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = j ? cJSON_AddArrayToObject(j, "check_ins") : NULL;
    /* The newest VT_CHECKINS_MAX, this one included. */
    for (int i = h.n >= VT_CHECKINS_MAX ? h.n - VT_CHECKINS_MAX + 1 : 0; arr && i <= h.n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            arr = NULL;
            break;
        }
        int last = i == h.n;
        cJSON_AddStringToObject(e, "time", last ? time : h.r[i].time);
        cJSON_AddStringToObject(e, "probe_cc", last ? cc : h.r[i].cc);
        cJSON_AddStringToObject(e, "probe_asn", last ? asn : h.r[i].asn);
        cJSON_AddStringToObject(e, "probe_network_name", last ? (name ? name : "") : h.r[i].name);
    }
    char *s = arr ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!s) {
        snprintf(err, errlen, "out of memory recording a check-in");
        return -1;
    }
    int rc = vt_spool_write_file_atomic(path, s, strlen(s), err, errlen);
    free(s);
    return rc;
}

static int set_string(cJSON *m, const char *key, const char *value)
{
    cJSON *v = cJSON_CreateString(value);
    if (!v) return -1;
    if (cJSON_GetObjectItemCaseSensitive(m, key)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(m, key, v)) {
            cJSON_Delete(v);
            return -1;
        }
    } else if (!cJSON_AddItemToObject(m, key, v)) {
        cJSON_Delete(v);
        return -1;
    }
    return 0;
}

int vt_checkins_relabel(const vt_checkins *h, cJSON *m)
{
    const char *flag = vt_json_get_string(m, "x_check_in");
    const char *cc = vt_json_get_string(m, "probe_cc"), *asn = vt_json_get_string(m, "probe_asn");
    const char *start = vt_json_get_string(m, "measurement_start_time");
    double t = vt_checkins_parse_time(start);
    if (!flag || strcmp(flag, "failed") != 0 || !cc || strcmp(cc, "ZZ") != 0 || !asn ||
        strcmp(asn, "AS0") != 0 || t < 0)
        return 0;
    /* The check-ins just before and just after it. Times have whole seconds: one in the
     * measurement's own second may lie on either side, so the two are the nearest strictly
     * before and after, and every check-in between them (those included) must agree. The
     * history is searched whole: a clock stepped back can leave it out of order. */
    const vt_checkin_rec *before = NULL, *after = NULL;
    double tb = 0, ta = 0;
    for (int i = 0; i < h->n; i++) {
        double x = vt_checkins_parse_time(h->r[i].time);
        if (x < 0) continue;
        if (x < t && (!before || x > tb)) before = &h->r[i], tb = x;
        if (x > t && (!after || x < ta)) after = &h->r[i], ta = x;
    }
    /* Check-ins that did not know the network either (ZZ/AS0) have nothing to give. */
    if (!before || !after || ta - tb > VT_CHECKINS_GAP_MAX || !strcmp(after->cc, "ZZ") ||
        !strcmp(after->asn, "AS0"))
        return 0;
    for (int i = 0; i < h->n; i++) {
        double x = vt_checkins_parse_time(h->r[i].time);
        if (x >= tb && x <= ta &&
            (strcmp(h->r[i].cc, after->cc) != 0 || strcmp(h->r[i].asn, after->asn) != 0))
            return 0;
    }
    /* The new report_id first (it names the country and the network): OONI's
     * <time>_<test>_<cc>_<asn digits>_n1_<random>, this run's "_ZZ_0_n1_" replaced. */
    char rid[256] = "";
    const char *old = vt_json_get_string(m, "report_id");
    const char *at = old ? strstr(old, "_ZZ_0_n1_") : NULL;
    if (at && strlen(old) < 200)
        snprintf(rid, sizeof(rid), "%.*s_%s_%s_n1_%s", (int)(at - old), old, after->cc,
                 after->asn + 2, at + strlen("_ZZ_0_n1_"));
    cJSON *around = cJSON_CreateArray();
    if (!around || !cJSON_AddItemToArray(around, cJSON_CreateString(before->time)) ||
        !cJSON_AddItemToArray(around, cJSON_CreateString(after->time))) {
        cJSON_Delete(around);
        return -1;
    }
    /* The names may differ in spelling between the two answers: the later one's. */
    if (set_string(m, "probe_cc", after->cc) < 0 || set_string(m, "probe_asn", after->asn) < 0 ||
        set_string(m, "probe_network_name", after->name) < 0 ||
        (rid[0] && set_string(m, "report_id", rid) < 0) ||
        set_string(m, "x_check_in", "inferred") < 0) {
        cJSON_Delete(around);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m, "x_check_ins_around");
    cJSON_AddItemToObject(m, "x_check_ins_around", around);
    return 1;
}
