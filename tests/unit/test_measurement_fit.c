/* vt_measurement_fit: a measurement a hostile server inflated (thousands of headers on each of
 * ten redirects, 64 KiB bodies) is shrunk under a collector's limits, the final answer and the
 * verdict kept; a normal one is left alone. */
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

static size_t values(const cJSON *j)
{
    size_t n = 1;
    for (const cJSON *c = j->child; c; c = c->next)
        n += values(c);
    return n;
}

static size_t printed(const cJSON *m)
{
    char *s = cJSON_PrintUnformatted(m);
    assert_non_null(s);
    size_t n = strlen(s);
    free(s);
    return n;
}

/* A response with nh headers and a body of blen bytes starting with first. */
static cJSON *request(int nh, size_t blen, const char *first)
{
    cJSON *rq = cJSON_CreateObject(), *resp = cJSON_AddObjectToObject(rq, "response");
    cJSON *hl = cJSON_AddArrayToObject(resp, "headers_list");
    cJSON *h = cJSON_AddObjectToObject(resp, "headers");
    for (int i = 0; i < nh; i++) {
        char name[32];
        snprintf(name, sizeof(name), "X-Filler-%d", i);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(name));
        cJSON_AddItemToArray(pair, cJSON_CreateString("v"));
        cJSON_AddItemToArray(hl, pair);
        cJSON_AddStringToObject(h, name, "v");
    }
    char *body = malloc(blen + 1);
    assert_non_null(body);
    memset(body, 'a', blen);
    memcpy(body, first, strlen(first));
    body[blen] = 0;
    cJSON_AddStringToObject(resp, "body", body);
    cJSON_AddFalseToObject(resp, "body_is_truncated");
    cJSON_AddNumberToObject(resp, "code", 302);
    free(body);
    return rq;
}

static cJSON *measurement(int hops, int nh, size_t blen)
{
    vt_config cfg;
    vt_config_defaults(&cfg);
    cJSON *tk = cJSON_CreateObject();
    cJSON *reqs = cJSON_AddArrayToObject(tk, "requests");
    for (int i = 0; i < hops; i++)
        cJSON_AddItemToArray(reqs, request(nh, blen, i == hops - 1 ? "<title>final</title>" : "x"));
    cJSON *ev = cJSON_AddArrayToObject(tk, "network_events");
    for (int i = 0; i < 200; i++)
        cJSON_AddItemToArray(ev, cJSON_CreateObject());
    cJSON_AddStringToObject(tk, "verdict", "http_blocking");
    return vt_measurement_new(&cfg, "web_connectivity", "0.1.0", "http://example.org/", 0, 1, NULL,
                              tk);
}

static void an_inflated_measurement_is_shrunk_to_fit(void **state)
{
    (void)state;
    cJSON *m = measurement(11, 5500, 65536);
    assert_true(values(m) > VT_MEASUREMENT_MAX_VALUES);
    assert_int_equal(vt_measurement_fit(m, VT_MEASUREMENT_MAX_BYTES, VT_MEASUREMENT_MAX_VALUES), 1);
    assert_true(values(m) <= VT_MEASUREMENT_MAX_VALUES);
    assert_true(printed(m) <= VT_MEASUREMENT_MAX_BYTES);
    cJSON *tk = cJSON_GetObjectItem(m, "test_keys");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(tk, "x_trimmed")));
    assert_string_equal(cJSON_GetObjectItem(tk, "verdict")->valuestring, "http_blocking");
    cJSON *reqs = cJSON_GetObjectItem(tk, "requests");
    assert_int_equal(cJSON_GetArraySize(reqs), 11); /* every hop still recorded */
    cJSON *last = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 10), "response");
    assert_non_null(strstr(cJSON_GetObjectItem(last, "body")->valuestring, "<title>final</title>"));
    /* the intermediate responses gave enough: the answer keeps its body and headers */
    assert_int_equal(strlen(cJSON_GetObjectItem(last, "body")->valuestring), 65536);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(last, "headers_list")), 5500);
    cJSON *hop = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 3), "response");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(hop, "headers_list")), 16);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(hop, "body_is_truncated")));
    cJSON_Delete(m);

    /* One response too large on its own: then it is cut too. */
    m = measurement(1, 12000, 65536);
    assert_int_equal(vt_measurement_fit(m, VT_MEASUREMENT_MAX_BYTES, VT_MEASUREMENT_MAX_VALUES), 1);
    assert_true(values(m) <= VT_MEASUREMENT_MAX_VALUES);
    last = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "test_keys"), "requests"), 0),
        "response");
    assert_int_equal(strlen(cJSON_GetObjectItem(last, "body")->valuestring), 16384);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(last, "body_is_truncated")));
    cJSON_Delete(m);

    /* Bodies alone: ten 64 KiB redirects' bodies go first, the answer's stays whole. */
    m = measurement(11, 2, 65536 + 32768);
    assert_true(printed(m) > VT_MEASUREMENT_MAX_BYTES);
    assert_int_equal(vt_measurement_fit(m, VT_MEASUREMENT_MAX_BYTES, VT_MEASUREMENT_MAX_VALUES), 1);
    reqs = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "test_keys"), "requests");
    last = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 10), "response");
    assert_int_equal(strlen(cJSON_GetObjectItem(last, "body")->valuestring), 65536 + 32768);
    cJSON *first = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "response");
    assert_int_equal(strlen(cJSON_GetObjectItem(first, "body")->valuestring), 1024);
    cJSON_Delete(m);
}

static void a_normal_measurement_is_left_alone(void **state)
{
    (void)state;
    cJSON *m = measurement(2, 20, 4096);
    char *before = cJSON_PrintUnformatted(m);
    assert_int_equal(vt_measurement_fit(m, VT_MEASUREMENT_MAX_BYTES, VT_MEASUREMENT_MAX_VALUES), 0);
    char *after = cJSON_PrintUnformatted(m);
    assert_string_equal(before, after);
    free(before);
    free(after);
    cJSON_Delete(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_inflated_measurement_is_shrunk_to_fit),
        cmocka_unit_test(a_normal_measurement_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
