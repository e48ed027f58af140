/* OONI df-000 envelope, uids and report ids. */
#include "vantage/measurement.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/version.h"

int vt_uid_new(char out[VT_UID_LEN + 1])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

int vt_hex_lower(const char *s, size_t len)
{
    if (!s || strlen(s) != len) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

/* The UTC time of epoch, clamped to years 1970 to 9999 (four-digit years: the strings below
 * always fit): an epoch outside them (negative, NaN, or a year like 99999 from a bad Date
 * header) becomes 1970-01-01 00:00:00 rather than a string too long for its buffer. */
static void utc_tm(double epoch, struct tm *tm)
{
    time_t t = epoch >= 0 && epoch < 253402300800.0 ? (time_t)epoch : 0;
    if (!gmtime_r(&t, tm)) {
        memset(tm, 0, sizeof(*tm));
        tm->tm_year = 70;
        tm->tm_mday = 1;
    }
}

void vt_format_time(double epoch, char out[20])
{
    struct tm tm;
    utc_tm(epoch, &tm);
    if (strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm) != 19)
        snprintf(out, 20, "1970-01-01 00:00:00");
}

void vt_report_id_new(char *out, size_t n, double epoch, const char *test_name, const char *cc,
                      const char *asn)
{
    struct tm tm;
    char ts[20], uid[VT_UID_LEN + 1];
    utc_tm(epoch, &tm);
    if (strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm) != 16)
        snprintf(ts, sizeof(ts), "19700101T000000Z");
    if (vt_uid_new(uid) < 0)
        snprintf(uid, sizeof(uid), "0");
    uid[16] = 0;
    if (!asn || strncmp(asn, "AS", 2) != 0)
        asn = "AS0";
    /* OONI writes the test name without underscores and the ASN without "AS". */
    char tn[64];
    size_t j = 0;
    for (const char *p = test_name; *p && j + 1 < sizeof(tn); p++)
        if (*p != '_')
            tn[j++] = *p;
    tn[j] = 0;
    snprintf(out, n, "%s_%s_%s_%s_n1_%s", ts, tn, cc ? cc : "ZZ", asn + 2, uid);
}

int vt_device_hour(const unsigned char key[VT_DEVICE_KEY_LEN], const char *start,
                   char out[VT_DEVICE_HOUR_LEN + 1])
{
    /* HMAC-SHA256(key, "vantage device hour " + "YYYY-MM-DD HH"), its first 8 bytes in hex:
     * the same for one device in one clock hour, unlinkable across hours without the key. */
    char msg[64];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!key || !start || strlen(start) < 13) return -1;
    int n = snprintf(msg, sizeof(msg), "vantage device hour %.13s", start);
    if (!HMAC(EVP_sha256(), key, VT_DEVICE_KEY_LEN, (const unsigned char *)msg, (size_t)n, mac,
              &maclen) ||
        maclen < VT_DEVICE_HOUR_LEN / 2)
        return -1;
    for (int i = 0; i < VT_DEVICE_HOUR_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

double vt_measurement_now(const vt_config *cfg)
{
    return cfg->clock_offset != 0 ? vt_now() + cfg->clock_mono : vt_wall_now();
}

cJSON *vt_measurement_new(const vt_config *cfg, const char *test_name, const char *test_version,
                          const char *input, double start_epoch, double runtime,
                          cJSON *annotations, cJSON *test_keys)
{
    char start[20], uid[VT_UID_LEN + 1];
    cJSON *m = cJSON_CreateObject();
    if (!m || vt_uid_new(uid) < 0) {
        cJSON_Delete(m);
        cJSON_Delete(annotations);
        cJSON_Delete(test_keys);
        return NULL;
    }
    vt_format_time(start_epoch, start);
    cJSON_AddStringToObject(m, "data_format_version", "0.2.0");
    vt_json_add_string_or_null(m, "input", input);
    cJSON_AddStringToObject(m, "measurement_start_time", start);
    cJSON_AddStringToObject(m, "test_start_time", start);
    cJSON_AddNumberToObject(m, "test_runtime", round(runtime * 1e6) / 1e6);
    /* The system clock was off: the times above are corrected by this many seconds. */
    if (cfg->clock_offset != 0) cJSON_AddNumberToObject(m, "x_clock_offset", cfg->clock_offset);
    cJSON_AddStringToObject(m, "probe_asn", cfg->probe_asn ? cfg->probe_asn : "AS0");
    cJSON_AddStringToObject(m, "probe_cc", cfg->probe_cc ? cfg->probe_cc : "ZZ");
    cJSON_AddStringToObject(m, "probe_ip", "127.0.0.1");
    /* OONI writes a string always: "" when the network is unknown. */
    cJSON_AddStringToObject(m, "probe_network_name",
                            cfg->probe_network_name ? cfg->probe_network_name : "");
    cJSON_AddStringToObject(m, "resolver_asn", "AS0");
    cJSON_AddStringToObject(m, "resolver_ip", "127.0.0.1");
    vt_json_add_string_or_null(m, "report_id", cfg->report_id);
    if (cfg->check_in_failed) cJSON_AddStringToObject(m, "x_check_in", "failed");
    char dh[VT_DEVICE_HOUR_LEN + 1];
    if (cfg->device_key && vt_device_hour(cfg->device_key, start, dh) == 0)
        cJSON_AddStringToObject(m, "x_device_hour", dh);
    cJSON_AddStringToObject(m, "software_name", "vantage-probe");
    cJSON_AddStringToObject(m, "software_version", VT_VERSION);
    cJSON_AddStringToObject(m, "test_name", test_name);
    cJSON_AddStringToObject(m, "test_version", test_version);
    cJSON_AddStringToObject(m, "measurement_uid", uid);
    cJSON_AddItemToObject(m, "annotations", annotations ? annotations : cJSON_CreateObject());
    cJSON_AddItemToObject(m, "test_helpers", cJSON_CreateObject());
    cJSON_AddItemToObject(m, "test_keys", test_keys ? test_keys : cJSON_CreateObject());
    return m;
}

/* ---- keeping a measurement within a collector's limits ---- */

static size_t count_values(const cJSON *j)
{
    size_t n = 1;
    for (const cJSON *c = j ? j->child : NULL; c; c = c->next)
        n += count_values(c);
    return n;
}

static int fits(const cJSON *m, size_t max_bytes, size_t max_values)
{
    if (count_values(m) > max_values) return 0;
    char *s = cJSON_PrintUnformatted(m);
    if (!s) return 0;
    size_t len = strlen(s);
    free(s);
    return len <= max_bytes;
}

/* One response: body cut to body_max bytes (at a UTF-8 character's start), headers to hmax. */
static void trim_response(cJSON *resp, size_t body_max, int hmax)
{
    cJSON *body = cJSON_GetObjectItemCaseSensitive(resp, "body");
    cJSON *b64 = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "data") : NULL;
    if (cJSON_IsString(b64) && strlen(b64->valuestring) > body_max) { /* {"format": "base64"} */
        b64->valuestring[body_max / 4 * 4] = 0;
        cJSON_DeleteItemFromObjectCaseSensitive(resp, "body_is_truncated");
        cJSON_AddTrueToObject(resp, "body_is_truncated");
    } else if (cJSON_IsString(body) && strlen(body->valuestring) > body_max) {
        size_t k = body_max;
        while (k > 0 && ((unsigned char)body->valuestring[k] & 0xc0) == 0x80)
            k--;
        body->valuestring[k] = 0;
        cJSON_DeleteItemFromObjectCaseSensitive(resp, "body_is_truncated");
        cJSON_AddTrueToObject(resp, "body_is_truncated");
    }
    cJSON *hl = cJSON_GetObjectItemCaseSensitive(resp, "headers_list");
    while (cJSON_IsArray(hl) && cJSON_GetArraySize(hl) > hmax)
        cJSON_DeleteItemFromArray(hl, cJSON_GetArraySize(hl) - 1);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(resp, "headers");
    while (cJSON_IsObject(h) && cJSON_GetArraySize(h) > hmax)
        cJSON_DeleteItemFromArray(h, cJSON_GetArraySize(h) - 1);
}

/* Every request list in test_keys (the page's and the large resource's): all responses but each
 * list's last (all == 0), or all of them. */
static void trim_requests(cJSON *tk, int all, size_t body_max, int hmax)
{
    cJSON *lists[2] = {cJSON_GetObjectItemCaseSensitive(tk, "requests"),
                       cJSON_GetObjectItemCaseSensitive(
                           cJSON_GetObjectItemCaseSensitive(tk, "x_large_resource"), "requests")};
    for (int l = 0; l < 2; l++) {
        int n = cJSON_IsArray(lists[l]) ? cJSON_GetArraySize(lists[l]) : 0;
        for (int i = 0; i < n; i++) {
            if (!all && i == n - 1) continue; /* requests are in order: the last is the answer */
            cJSON *rq = cJSON_GetArrayItem(lists[l], i);
            trim_response(cJSON_GetObjectItemCaseSensitive(rq, "response"), body_max, hmax);
            cJSON *req = cJSON_GetObjectItemCaseSensitive(rq, "request");
            cJSON *hl = cJSON_GetObjectItemCaseSensitive(req, "headers_list");
            while (cJSON_IsArray(hl) && cJSON_GetArraySize(hl) > hmax)
                cJSON_DeleteItemFromArray(hl, cJSON_GetArraySize(hl) - 1);
        }
    }
}

int vt_measurement_fit(cJSON *m, size_t max_bytes, size_t max_values)
{
    if (fits(m, max_bytes, max_values)) return 0;
    cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "test_keys");
    if (!cJSON_IsObject(tk)) return -1;
    trim_requests(tk, 0, 1024, 16);
    if (!fits(m, max_bytes, max_values)) trim_requests(tk, 1, 16384, 16);
    cJSON *ev = cJSON_GetObjectItemCaseSensitive(tk, "network_events");
    while (!fits(m, max_bytes, max_values) && cJSON_IsArray(ev) && cJSON_GetArraySize(ev) > 64) {
        int n = cJSON_GetArraySize(ev);
        for (int i = n / 2; i > 0; i--) /* the later half: the first events date the transfer */
            cJSON_DeleteItemFromArray(ev, cJSON_GetArraySize(ev) - 1);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "x_trimmed");
    cJSON_AddTrueToObject(tk, "x_trimmed");
    return fits(m, max_bytes, max_values) ? 1 : -1;
}
