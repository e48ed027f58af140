/* Collector log messages (collector/log.c): one line each, and valid JSON with --log-json,
 * whatever the message holds (a libpq error's newlines, quotes, bytes that are not UTF-8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "log.h"

static void one_line(const char *out)
{
    const char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], 0);
}

static void plain_messages_are_one_line(void **state)
{
    (void)state;
    char out[256];
    vt_log_format(out, sizeof(out), "", "store: connection failed\n\tIs the server running?\n",
                  0);
    assert_string_equal(out, "store: connection failed  Is the server running?\n");
    vt_log_format(out, sizeof(out), "", "query: no connection to the server\n\n", 0);
    assert_string_equal(out, "query: no connection to the server\n");
}

static void json_messages_parse(void **state)
{
    (void)state;
    char out[512];
    vt_log_format(out, sizeof(out), "2026-11-30T06:00:00.000Z",
                  "store: \"x\" \\ failed\n\tDETAIL: \xd0\xa4\n", 1);
    one_line(out);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "ts")->valuestring, "2026-11-30T06:00:00.000Z");
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring,
                        "store: \"x\" \\ failed  DETAIL: \xd0\xa4");
    cJSON_Delete(j);
    /* not UTF-8: every non-ASCII byte a '?' */
    vt_log_format(out, sizeof(out), "t", "bad \xff\xfe ok \xd0\xa4", 1);
    j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, "bad ?? ok ??");
    cJSON_Delete(j);
}

static void long_messages_are_cut_whole(void **state)
{
    (void)state;
    char msg[300], out[64];
    for (size_t i = 0; i + 2 < sizeof(msg); i += 2)
        memcpy(msg + i, "\xd0\xa4", 2);
    msg[sizeof(msg) - 2] = 0;
    for (size_t cap = 30; cap < sizeof(out); cap++) { /* every cut: inside a character or not */
        vt_log_format(out, cap, "t", msg, 1);
        one_line(out);
        cJSON *j = cJSON_Parse(out);
        assert_non_null(j);
        cJSON_Delete(j);
        vt_log_format(out, cap, "t", msg, 0);
        one_line(out);
        assert_true(strlen(out) % 2 == 1); /* whole two-byte characters and the newline */
    }
    vt_log_format(out, 1, "t", msg, 1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_messages_are_one_line),
        cmocka_unit_test(json_messages_parse),
        cmocka_unit_test(long_messages_are_cut_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
