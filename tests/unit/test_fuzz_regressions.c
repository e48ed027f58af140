/* Inputs the fuzzers (tests/fuzz/) found crashing or leaking, kept as unit tests so the normal
 * and ASan suites replay them too (the fuzz build replays tests/fuzz/regress/ as well). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ingest.h"

#define NOW 1795000000.0 /* 2026-11-18 */

/* fuzz_ingest: a key "proBe_ip" made cJSON_HasObjectItem (case-insensitive) say yes, the
 * case-sensitive replace then did nothing: the placeholder leaked and no probe_ip was set. */
static void probe_ip_in_another_case_still_gets_the_placeholder(void **state)
{
    (void)state;
    const char *line =
        "{\"data_format_version\":\"0.2.0\",\"measurement_start_time\":\"2026-11-18 10:00:00\","
        "\"probe_cc\":\"PK\",\"probe_asn\":\"AS45595\",\"proBe_ip\":\"10.9.9.9\","
        "\"test_name\":\"web_connectivity\",\"software_name\":\"vantage-probe\","
        "\"software_version\":\"0.1.0\",\"measurement_uid\":\"0123456789abcdef0123456789abcdef\","
        "\"input\":\"https://x.com/\",\"test_keys\":{}}\n";
    vt_ingest_limits lim;
    vt_ingest_limits_default(&lim);
    vt_ingest_batch b;
    int code = 0;
    char err[256];
    assert_int_equal(
        vt_ingest_parse(line, strlen(line), &lim, "192.0.2.7", NOW, &b, &code, err, sizeof(err)),
        0);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.items[0].status, VT_INGEST_ACCEPTED);
    assert_non_null(strstr(b.items[0].body, "\"probe_ip\":\"127.0.0.1\""));
    vt_ingest_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(probe_ip_in_another_case_still_gets_the_placeholder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
