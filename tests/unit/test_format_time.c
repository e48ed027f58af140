/* vt_format_time and the report id: any epoch, however wrong (a collector's Date in the year
 * 99999, a negative or NaN one), gives a NUL-terminated 19-character time, never a buffer left
 * unterminated for a later strlen to run off. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vantage/config.h"
#include "vantage/measurement.h"

/* Formats epoch into a buffer filled with 'X' (no NUL anywhere) and checks the result is
 * terminated exactly at 19 characters. */
static void formats_as(double epoch, const char *want)
{
    char out[20];
    memset(out, 'X', sizeof(out));
    vt_format_time(epoch, out);
    assert_ptr_equal(memchr(out, 0, sizeof(out)), out + 19);
    assert_string_equal(out, want);
}

static void a_normal_epoch_is_formatted(void **state)
{
    (void)state;
    formats_as(1793491200.0, "2026-11-01 00:00:00");
    formats_as(1793491200.9, "2026-11-01 00:00:00");
    formats_as(0, "1970-01-01 00:00:00");
    formats_as(253402300799.0, "9999-12-31 23:59:59");
}

static void an_epoch_out_of_range_gives_the_fallback(void **state)
{
    (void)state;
    formats_as(3093496444800.0, "1970-01-01 00:00:00");     /* Mon, 01 Jan 99999 00:00:00 GMT */
    formats_as(253402300800.0, "1970-01-01 00:00:00");      /* year 10000 */
    formats_as(67767976233316800.0, "1970-01-01 00:00:00"); /* year INT_MAX */
    formats_as(1e300, "1970-01-01 00:00:00");
    formats_as(INFINITY, "1970-01-01 00:00:00");
    formats_as(-1, "1970-01-01 00:00:00");
    formats_as(-62135596800.0, "1970-01-01 00:00:00"); /* year 1 */
    formats_as(-1e300, "1970-01-01 00:00:00");
    formats_as(-INFINITY, "1970-01-01 00:00:00");
    formats_as(NAN, "1970-01-01 00:00:00");
}

/* The measurement built with such a start time: its times and report id are well formed. */
static void a_measurement_dated_in_the_year_99999_is_well_formed(void **state)
{
    (void)state;
    vt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cJSON *m = vt_measurement_new(&cfg, "tcp_connect", "0.1.0", NULL, 3093496444800.0, 0.5, NULL,
                                  cJSON_CreateObject());
    assert_non_null(m);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "measurement_start_time");
    assert_true(cJSON_IsString(t));
    assert_string_equal(t->valuestring, "1970-01-01 00:00:00");
    cJSON_Delete(m);

    char id[256];
    vt_report_id_new(id, sizeof(id), 3093496444800.0, "tcp_connect", "DE", "AS3320");
    assert_int_equal(strncmp(id, "19700101T000000Z_tcpconnect_DE_3320_n1_", 39), 0);
    vt_report_id_new(id, sizeof(id), NAN, "tcp_connect", "DE", "AS3320");
    assert_int_equal(strncmp(id, "19700101T000000Z_tcpconnect_DE_3320_n1_", 39), 0);
    vt_report_id_new(id, sizeof(id), 1793491200.0, "tcp_connect", "DE", "AS3320");
    assert_int_equal(strncmp(id, "20261101T000000Z_tcpconnect_DE_3320_n1_", 39), 0);
}

/* The device's hourly token: HMAC-SHA256 of the hour under the device key, first 8 bytes in hex
 * (the expected values computed with Python's hmac module). */
static void a_measurement_carries_the_device_token_of_its_hour(void **state)
{
    (void)state;
    unsigned char key[VT_DEVICE_KEY_LEN], other[VT_DEVICE_KEY_LEN];
    for (int i = 0; i < VT_DEVICE_KEY_LEN; i++) {
        key[i] = (unsigned char)i;
        other[i] = 0xff;
    }
    char t[VT_DEVICE_HOUR_LEN + 1];
    assert_int_equal(vt_device_hour(key, "2026-12-01 04:00:00", t), 0);
    assert_string_equal(t, "b147c334c4082d4b");
    assert_int_equal(vt_device_hour(key, "2026-12-01 04:59:59", t), 0);
    assert_string_equal(t, "b147c334c4082d4b"); /* the same hour */
    assert_int_equal(vt_device_hour(key, "2026-12-01 05:00:00", t), 0);
    assert_string_equal(t, "60bf6f9780ce4526");
    assert_int_equal(vt_device_hour(other, "2026-12-01 04:10:00", t), 0);
    assert_string_equal(t, "a6c2a049aaf94e14"); /* another device */
    assert_int_equal(vt_device_hour(key, "2026", t), -1);

    vt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cJSON *m = vt_measurement_new(&cfg, "web", "0.1.0", NULL, 1796099400.0, 0.5, NULL, NULL);
    assert_null(cJSON_GetObjectItemCaseSensitive(m, "x_device_hour")); /* no key: no token */
    cJSON_Delete(m);
    cfg.device_key = key;
    m = vt_measurement_new(&cfg, "web", "0.1.0", NULL, 1796099400.0, 0.5, NULL, NULL);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m, "measurement_start_time")->valuestring,
                        "2026-12-01 04:30:00");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m, "x_device_hour")->valuestring,
                        "b147c334c4082d4b");
    cJSON_Delete(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_normal_epoch_is_formatted),
        cmocka_unit_test(an_epoch_out_of_range_gives_the_fallback),
        cmocka_unit_test(a_measurement_dated_in_the_year_99999_is_well_formed),
        cmocka_unit_test(a_measurement_carries_the_device_token_of_its_hour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
