/* Collector ingest: df-000 validation, limits, scrubbing and in-batch duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "ingest.h"
#include "json_arena.h"
#include "vantage/json.h"

#define NOW 1795000000.0 /* 2026-11-18 */

#define GOOD_FMT                                                                                   \
    "{\"data_format_version\":\"0.2.0\",\"measurement_start_time\":\"2026-11-18 10:00:00\","       \
    "\"probe_cc\":\"PK\",\"probe_asn\":\"AS45595\",\"probe_ip\":\"10.1.2.3\","                     \
    "\"test_name\":\"web_connectivity\",\"software_name\":\"vantage-probe\","                      \
    "\"software_version\":\"0.1.0\",\"measurement_uid\":\"%s\",\"input\":\"https://x.com/\","      \
    "\"annotations\":{\"target_id\":\"x\",\"platform\":\"x\",\"category\":\"social\"},"            \
    "\"test_keys\":{\"verdict\":\"blocked\",\"seen\":\"from 10.1.2.3 and 10.1.2.30\"}}"

static char *good(const char *uid)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf), GOOD_FMT, uid);
    return buf;
}

static int validate_text(const char *json, char *reason, size_t n)
{
    vt_ingest_limits lim;
    vt_ingest_limits_default(&lim);
    cJSON *m = cJSON_Parse(json);
    assert_non_null(m);
    int rc = vt_ingest_validate(m, NOW, &lim, reason, n);
    cJSON_Delete(m);
    return rc;
}

/* Replaces the first "key":value pair's value (a JSON fragment) in the good measurement. */
static int validate_with(const char *key, const char *value, char *reason, size_t n)
{
    cJSON *m = cJSON_Parse(good("0123456789abcdef0123456789abcdef"));
    cJSON *v = value ? cJSON_Parse(value) : NULL;
    if (value)
        cJSON_ReplaceItemInObjectCaseSensitive(m, key, v);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(m, key);
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    int rc = validate_text(s, reason, n);
    free(s);
    return rc;
}

static void a_good_measurement_is_valid(void **state)
{
    char r[160] = "";
    assert_int_equal(validate_text(good("0123456789abcdef0123456789abcdef"), r, sizeof r), 0);
}

static void required_fields_and_types_are_checked(void **state)
{
    char r[160];
    static const char *required[] = {
        "data_format_version", "measurement_start_time", "probe_cc",  "probe_asn",      "test_name",
        "software_name",       "software_version",       "test_keys", "measurement_uid"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        assert_int_equal(validate_with(required[i], NULL, r, sizeof r), -1);
        assert_non_null(strstr(r, "missing required field"));
        assert_non_null(strstr(r, required[i]));
    }
    assert_int_equal(validate_with("probe_asn", "45595", r, sizeof r), -1);
    assert_int_equal(validate_with("test_keys", "[]", r, sizeof r), -1);
    assert_int_equal(validate_with("test_name", "\"\"", r, sizeof r), -1);
    assert_int_equal(validate_with("input", "7", r, sizeof r), -1);
    assert_int_equal(validate_with("input", "null", r, sizeof r), 0);
    assert_int_equal(validate_with("annotations", "\"x\"", r, sizeof r), -1);
    /* the annotations that name a rollup bucket fit its columns whole */
    char ann[512];
    snprintf(ann, sizeof(ann), "{\"target_id\":\"%0128d\",\"platform\":\"%064d\"}", 0, 0);
    assert_int_equal(validate_with("annotations", ann, r, sizeof r), 0);
    snprintf(ann, sizeof(ann), "{\"target_id\":\"%0127d\u00e9\"}", 0);
    assert_int_equal(validate_with("annotations", ann, r, sizeof r), -1);
    assert_non_null(strstr(r, "'target_id' is longer than 128 bytes"));
    snprintf(ann, sizeof(ann), "{\"platform\":\"p\",\"category\":\"%065d\"}", 0);
    assert_int_equal(validate_with("annotations", ann, r, sizeof r), -1);
    assert_non_null(strstr(r, "'category'"));
}

static void country_asn_and_uid_shapes(void **state)
{
    char r[160];
    assert_int_equal(validate_with("probe_cc", "\"pk\"", r, sizeof r), -1);
    assert_int_equal(validate_with("probe_cc", "\"PAK\"", r, sizeof r), -1);
    assert_int_equal(validate_with("probe_cc", "\"P1\"", r, sizeof r), -1);
    assert_int_equal(validate_with("probe_cc", "\"ZZ\"", r, sizeof r), 0);
    assert_int_equal(validate_with("probe_asn", "\"AS\"", r, sizeof r), -1);
    assert_int_equal(validate_with("probe_asn", "\"as1\"", r, sizeof r), -1);
    assert_int_equal(validate_with("probe_asn", "\"AS1x\"", r, sizeof r), -1);
    assert_int_equal(validate_with("probe_asn", "\"AS0\"", r, sizeof r), 0);
    assert_int_equal(
        validate_with("measurement_uid", "\"0123456789ABCDEF0123456789abcdef\"", r, sizeof r), -1);
    assert_int_equal(validate_with("measurement_uid", "\"0123\"", r, sizeof r), -1);
}

static void start_time_must_be_a_real_recent_date(void **state)
{
    char r[160];
    double t;
    assert_int_equal(vt_ingest_parse_time("2026-11-18 10:00:00", &t), 0);
    assert_true(t == 1794996000.0);
    assert_int_equal(vt_ingest_parse_time("2024-02-29 00:00:00", &t), 0);
    assert_int_equal(vt_ingest_parse_time("2023-02-29 00:00:00", &t), -1);
    assert_int_equal(vt_ingest_parse_time("2026-13-01 00:00:00", &t), -1);
    assert_int_equal(vt_ingest_parse_time("2026-11-18T10:00:00", &t), -1);
    assert_int_equal(vt_ingest_parse_time("2026-11-18 10:00:00Z", &t), -1);
    assert_int_equal(vt_ingest_parse_time("2026-11-18 24:00:00", &t), -1);
    assert_int_equal(
        validate_with("measurement_start_time", "\"2011-12-31 23:59:59\"", r, sizeof r), -1);
    assert_int_equal(
        validate_with("measurement_start_time", "\"2012-01-01 00:00:00\"", r, sizeof r), 0);
    /* NOW + 23 h is fine, NOW + 25 h is not */
    assert_int_equal(
        validate_with("measurement_start_time", "\"2026-11-19 09:00:00\"", r, sizeof r), 0);
    assert_int_equal(
        validate_with("measurement_start_time", "\"2026-11-19 12:00:00\"", r, sizeof r), -1);
    assert_non_null(strstr(r, "future"));
}

static void nesting_depth_counts_brackets_outside_strings(void **state)
{
    assert_int_equal(vt_ingest_json_depth("{}", 2), 1);
    assert_int_equal(vt_ingest_json_depth("{\"a\":[{}]}", 10), 3);
    assert_int_equal(vt_ingest_json_depth("{\"a\":\"[[[[\\\"[[\"}", 16), 1);
    char deep[300];
    memset(deep, '[', 150);
    memset(deep + 150, ']', 150);
    assert_int_equal(vt_ingest_json_depth(deep, 300), 150);
}

static void value_counts_bound_the_work(void **state)
{
    assert_int_equal(vt_ingest_json_values("{}", 2), 1);
    assert_int_equal(vt_ingest_json_values("{\"a\":[1,2,3]}", 13), 4);
    assert_int_equal(vt_ingest_json_values("[\"a,b:c\",1]", 11), 2); /* not inside strings */
}

static void parse_line(const char *body, vt_ingest_batch *b, const char *addr)
{
    vt_ingest_limits lim;
    vt_ingest_limits_default(&lim);
    int code = 0;
    char err[256];
    assert_int_equal(
        vt_ingest_parse(body, strlen(body), &lim, addr, NOW, b, &code, err, sizeof err), 0);
}

static void bad_lines_are_rejected_and_good_ones_kept(void **state)
{
    char body[8192];
    char deep[200];
    memset(deep, '[', 70);
    memset(deep + 70, ']', 70);
    deep[140] = 0;
    snprintf(body, sizeof body, "%s\n\nnot json\n{\"a\":%s}\r\n%s\n\xff\xfe\n",
             good("00000000000000000000000000000001"), deep,
             good("00000000000000000000000000000001"));
    vt_ingest_batch b;
    parse_line(body, &b, NULL);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.items[0].status, VT_INGEST_ACCEPTED);
    assert_int_equal(b.items[1].status, VT_INGEST_REJECTED);
    assert_int_equal(b.items[1].line, 3); /* the blank line counts */
    assert_non_null(strstr(b.items[1].reason, "line 3: not valid JSON"));
    assert_int_equal(b.items[2].status, VT_INGEST_REJECTED);
    assert_non_null(strstr(b.items[2].reason, "depth"));
    assert_int_equal(b.items[3].status, VT_INGEST_DUPLICATE); /* same uid as line 1 */
    assert_int_equal(b.items[4].status, VT_INGEST_REJECTED);
    assert_non_null(strstr(b.items[4].reason, "UTF-8"));
    assert_int_equal(b.rejected, 3);
    assert_int_equal(b.duplicate, 1);
    /* columns come from the measurement */
    assert_string_equal(b.items[0].row.probe_cc, "PK");
    assert_string_equal(b.items[0].row.verdict, "blocked");
    assert_string_equal(b.items[0].row.target_id, "x");
    assert_string_equal(b.items[0].row.input, "https://x.com/");
    vt_ingest_batch_free(&b);
}

static char *plain_good(const char *uid, const char *extra);

/* What other JSON readers would see differently: text after the value, repeated keys. */
static void one_measurement_per_line_and_no_repeated_keys(void **state)
{
    char body[8192], g1[2048];
    snprintf(g1, sizeof g1, "%s", good("00000000000000000000000000000011"));
    /* two measurements on one line (a lost newline), and garbage after a good one */
    snprintf(body, sizeof body, "%s %s\n%s ]]] garbage\n", g1,
             good("00000000000000000000000000000012"), g1);
    vt_ingest_batch b;
    parse_line(body, &b, NULL);
    assert_int_equal(b.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(b.items[i].status, VT_INGEST_REJECTED);
        assert_non_null(strstr(b.items[i].reason, "text after the measurement"));
    }
    vt_ingest_batch_free(&b);
    /* a second probe_cc, probe_ip, or verdict in test_keys */
    const char *extra[] = {"\"probe_cc\":\"not a cc\",", "\"probe_ip\":\"203.0.113.9\",", NULL};
    for (int i = 0; extra[i]; i++) {
        snprintf(body, sizeof body, "%s", good("00000000000000000000000000000013"));
        char *tk = strstr(body, "\"test_keys\"");
        char tail[2048];
        snprintf(tail, sizeof tail, "%s", tk);
        snprintf(tk, sizeof body - (size_t)(tk - body), "%s%s", extra[i], tail);
        parse_line(body, &b, NULL);
        assert_int_equal(b.items[0].status, VT_INGEST_REJECTED);
        assert_non_null(strstr(b.items[0].reason, "appears twice"));
        vt_ingest_batch_free(&b);
    }
    snprintf(body, sizeof body, "%s", good("00000000000000000000000000000014"));
    char *v = strstr(body, "\"verdict\"");
    char tail[2048];
    snprintf(tail, sizeof tail, "%s", v);
    snprintf(v, sizeof body - (size_t)(v - body), "\"verdict\":\"ok\",%s", tail);
    parse_line(body, &b, NULL);
    assert_int_equal(b.items[0].status, VT_INGEST_REJECTED);
    assert_non_null(strstr(b.items[0].reason, "'verdict' appears twice"));
    vt_ingest_batch_free(&b);
    /* repeated keys deeper down are a probe's own business */
    parse_line(plain_good("00000000000000000000000000000015", "\"x\":{\"k\":1,\"k\":2},"), &b,
               NULL);
    assert_int_equal(b.items[0].status, VT_INGEST_ACCEPTED);
    vt_ingest_batch_free(&b);
}

/* A reason quoting a long key with multi-byte characters stays valid UTF-8. */
static void reasons_are_cut_between_characters(void **state)
{
    static char body[400 * 1024];
    char key[256] = "a";
    for (int i = 0; i < 100; i++)
        strcat(key, "\xc3\xa9"); /* é */
    char *g = good("00000000000000000000000000000016");
    char *tk = strstr(g, "\"test_keys\":{") + 13;
    int n = snprintf(body, sizeof body, "%.*s\"%s\":\"", (int)(tk - g), g, key);
    memset(body + n, 'x', 300 * 1024);
    snprintf(body + n + 300 * 1024, sizeof body - (size_t)n - 300 * 1024, "\",%s", tk);
    vt_ingest_batch b;
    parse_line(body, &b, NULL);
    assert_int_equal(b.items[0].status, VT_INGEST_REJECTED);
    assert_non_null(strstr(b.items[0].reason, "longer than the limit"));
    assert_true(vt_utf8_valid((const unsigned char *)b.items[0].reason, strlen(b.items[0].reason)));
    vt_ingest_batch_free(&b);
}

static void the_callers_address_is_scrubbed_and_probe_ip_forced(void **state)
{
    vt_ingest_batch b;
    parse_line(good("00000000000000000000000000000002"), &b, "10.1.2.3");
    assert_int_equal(b.items[0].status, VT_INGEST_ACCEPTED);
    assert_null(strstr(b.items[0].body, "10.1.2.3"));
    assert_non_null(strstr(b.items[0].body, "\"probe_ip\":\"127.0.0.1\""));
    assert_non_null(strstr(b.items[0].body, "from [scrubbed] and [scrubbed]0"));
    vt_ingest_batch_free(&b);

    cJSON *v = cJSON_Parse("{\"2001:DB8::1\":[\"x 2001:db8::1 y\",{\"k\":\"2001:db8::1\"}]}");
    assert_int_equal(vt_ingest_scrub(v, "2001:db8::1"), 3);
    char *s = cJSON_PrintUnformatted(v);
    assert_string_equal(s, "{\"[scrubbed]\":[\"x [scrubbed] y\",{\"k\":\"[scrubbed]\"}]}");
    free(s);
    cJSON_Delete(v);
    v = cJSON_Parse("[\"1.2.3.4\"]");
    assert_int_equal(vt_ingest_scrub(v, "::ffff:1.2.3.4"), 1);
    cJSON_Delete(v);
}

/* A good measurement with probe_ip 127.0.0.1 and extra members (JSON text) before test_keys. */
static char *plain_good(const char *uid, const char *extra)
{
    static char buf[4096];
    char *g = good(uid);
    char *ip = strstr(g, "10.1.2.3\""), *tk = strstr(g, "\"test_keys\"");
    snprintf(buf, sizeof buf, "%.*s127.0.0.1%.*s%s%s", (int)(ip - g), g, (int)(tk - ip - 8), ip + 8,
             extra, tk);
    return buf;
}

static void unchanged_plain_lines_are_stored_as_received(void **state)
{
    static const struct {
        const char *extra;
        int plain;
    } cases[] = {
        {"\"n\": [1, -2.5e3, 0, 0.25E+2, true, false, null],\t", 1},
        {"\"s\":\"a\\\"b\\\\c\\/d\\n\",", 1},
        {"\"n\":01,", 0}, /* cJSON reads it; JSON does not */
        {"\"n\":1.,", 0},
        {"\"n\":-01,", 0},
        {"\"n\":1E5,", 1},
        {"\"n\":1e400,", 0},    /* cJSON prints it as null */
        {"\"s\":\"a\tb\",", 0}, /* a raw control character in a string */
        {"\"s\":\"\\u00e9\",", 0},
        {"\"s\":\"x\\u0000 10.1.2.3\",", 0}, /* cJSON's string ends at the NUL */
        {"\x01\"n\":1,", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char uid[33];
        snprintf(uid, sizeof uid, "%032zx", i + 100);
        const char *line = plain_good(uid, cases[i].extra);
        assert_int_equal(vt_ingest_json_plain(line, strlen(line)), cases[i].plain);
        vt_ingest_batch b;
        parse_line(line, &b, "127.0.0.1");
        assert_int_equal(b.items[0].status, VT_INGEST_ACCEPTED);
        if (cases[i].plain) {
            assert_string_equal(b.items[0].body, line);
        } else { /* printed again: compact, and JSON that a strict parser takes */
            assert_string_not_equal(b.items[0].body, line);
            assert_null(strstr(b.items[0].body, "\": "));
        }
        vt_ingest_batch_free(&b);
    }
    /* Trailing text after the measurement: refused (one_measurement_per_line_...). A caller's
     * address anywhere, or another probe_ip: printed (scrubbed, forced). */
    char line[4096];
    snprintf(line, sizeof line, "%s x", plain_good("000000000000000000000000000000aa", ""));
    vt_ingest_batch b;
    parse_line(line, &b, NULL);
    assert_int_equal(b.items[0].status, VT_INGEST_REJECTED);
    vt_ingest_batch_free(&b);
    parse_line(plain_good("000000000000000000000000000000ab", "\"x\":\"10.1.2.3\","), &b,
               "10.1.2.3");
    assert_null(strstr(b.items[0].body, "10.1.2.3"));
    vt_ingest_batch_free(&b);
    parse_line(plain_good("000000000000000000000000000000ac", "\"x\":\"x\\u0000 10.1.2.3\","), &b,
               "10.1.2.3");
    assert_null(strstr(b.items[0].body, "10.1.2.3"));
    vt_ingest_batch_free(&b);
}

static void whole_body_refusals(void **state)
{
    vt_ingest_limits lim;
    vt_ingest_limits_default(&lim);
    lim.max_batch = 2;
    vt_ingest_batch b;
    int code = 0;
    char err[256];
    assert_int_equal(vt_ingest_parse("\n \n", 3, &lim, NULL, NOW, &b, &code, err, sizeof err), -1);
    assert_int_equal(code, 400);
    assert_int_equal(vt_ingest_parse("{}\n{}\n{}", 8, &lim, NULL, NOW, &b, &code, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "at most 2"));
}

static void gzip_bodies_inflate_within_the_cap(void **state)
{
    unsigned char in[4096], z[8192], *out;
    memset(in, 'a', sizeof in);
    uLongf zl = sizeof z;
    /* gzip framing via deflateInit2 */
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = in;
    s.avail_in = sizeof in;
    s.next_out = z;
    s.avail_out = sizeof z;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    zl = sizeof z - s.avail_out;
    deflateEnd(&s);
    size_t ol;
    char err[128];
    assert_int_equal(vt_ingest_inflate(z, zl, 1 << 20, &out, &ol, err, sizeof err), 0);
    assert_int_equal(ol, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    free(out);
    assert_int_equal(vt_ingest_inflate(z, zl, 4095, &out, &ol, err, sizeof err), -2);
    assert_int_equal(vt_ingest_inflate(z, zl, 4096, &out, &ol, err, sizeof err), 0);
    free(out);
    assert_int_equal(vt_ingest_inflate(z, zl - 9, 1 << 20, &out, &ol, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(
        vt_ingest_inflate((const unsigned char *)"hello", 5, 1 << 20, &out, &ol, err, sizeof err),
        -1);
    assert_int_equal(vt_ingest_inflate(z, 0, 1 << 20, &out, &ol, err, sizeof err), -1);
    /* Zero padding after the member is accepted, as gzip(1) does; other trailing bytes are not
     * a gzip member and are refused. */
    unsigned char padded[8192 + 512];
    memcpy(padded, z, zl);
    memset(padded + zl, 0, 512);
    assert_int_equal(vt_ingest_inflate(padded, zl + 512, 1 << 20, &out, &ol, err, sizeof err), 0);
    assert_int_equal(ol, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    free(out);
    padded[zl + 100] = 'x';
    assert_int_equal(vt_ingest_inflate(padded, zl + 512, 1 << 20, &out, &ol, err, sizeof err), -1);
    assert_non_null(strstr(err, "not valid gzip"));
}

/* Random damage to a valid batch: whatever comes out, parsing never crashes and every line gets
 * a status (run under -DVT_SANITIZE=ON to catch memory errors). */
static void damaged_batches_never_crash(void **state)
{
    char base[8192];
    snprintf(base, sizeof base, "%s\n", good("00000000000000000000000000000003"));
    size_t bl = strlen(base);
    memcpy(base + bl, base, bl);
    bl *= 2;
    static const char pieces[] = "{}[]\",:\\\n\r\x00\xff\xc3u0123456789aeflnrstuAS";
    unsigned seed = 12345;
    char *buf = malloc(bl + 64);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, base, bl);
        size_t len = bl;
        int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            switch ((seed >> 4) % 3) {
            case 0:
                buf[pos] = pieces[(seed >> 12) % (sizeof pieces - 1)];
                break;
            case 1:
                len = pos ? pos : 1;
                break; /* truncate */
            default:
                if (len > 1) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
                break;
            }
        }
        vt_ingest_limits lim;
        vt_ingest_limits_default(&lim);
        vt_ingest_batch b;
        int code = 0;
        char err[256];
        if (vt_ingest_parse(buf, len, &lim, "10.1.2.3", NOW, &b, &code, err, sizeof err) == 0) {
            assert_true(b.n >= 1);
            for (size_t i = 0; i < b.n; i++)
                assert_true(b.items[i].status >= VT_INGEST_ACCEPTED &&
                            b.items[i].status <= VT_INGEST_REJECTED);
            char *answer = vt_ingest_answer(&b);
            assert_non_null(answer);
            free(answer);
            vt_ingest_batch_free(&b);
        } else {
            assert_true(code >= 400 && code < 500);
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_good_measurement_is_valid),
        cmocka_unit_test(required_fields_and_types_are_checked),
        cmocka_unit_test(country_asn_and_uid_shapes),
        cmocka_unit_test(start_time_must_be_a_real_recent_date),
        cmocka_unit_test(nesting_depth_counts_brackets_outside_strings),
        cmocka_unit_test(value_counts_bound_the_work),
        cmocka_unit_test(bad_lines_are_rejected_and_good_ones_kept),
        cmocka_unit_test(the_callers_address_is_scrubbed_and_probe_ip_forced),
        cmocka_unit_test(one_measurement_per_line_and_no_repeated_keys),
        cmocka_unit_test(reasons_are_cut_between_characters),
        cmocka_unit_test(unchanged_plain_lines_are_stored_as_received),
        cmocka_unit_test(whole_body_refusals),
        cmocka_unit_test(gzip_bodies_inflate_within_the_cap),
        cmocka_unit_test(damaged_batches_never_crash),
    };
    /* Twice: batches on the heap, then (as vantage-collector runs) parsed into arenas, whose
     * trees are freed with the batch (AddressSanitizer checks neither leaks nor frees twice). */
    int failed = cmocka_run_group_tests_name("heap", tests, NULL, NULL);
    vt_json_arena_install();
    return failed + cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
