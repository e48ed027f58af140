/* OONI df-000 envelope, uids and report ids. */
#include "vantage/measurement.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vantage/json.h"
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

void vt_format_time(double epoch, char out[20])
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

void vt_report_id_new(char *out, size_t n, double epoch, const char *test_name, const char *cc,
                      const char *asn)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    char ts[20], uid[VT_UID_LEN + 1];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
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
    cJSON_AddStringToObject(m, "probe_asn", cfg->probe_asn ? cfg->probe_asn : "AS0");
    cJSON_AddStringToObject(m, "probe_cc", cfg->probe_cc ? cfg->probe_cc : "ZZ");
    cJSON_AddStringToObject(m, "probe_ip", "127.0.0.1");
    /* OONI writes a string always: "" when the network is unknown. */
    cJSON_AddStringToObject(m, "probe_network_name",
                            cfg->probe_network_name ? cfg->probe_network_name : "");
    cJSON_AddStringToObject(m, "resolver_asn", "AS0");
    cJSON_AddStringToObject(m, "resolver_ip", "127.0.0.1");
    vt_json_add_string_or_null(m, "report_id", cfg->report_id);
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
