/* The SNI test server's request line (sni_test.c): what is served, what is 404, what is 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sni_test.h"

static int parse(const char *line, long *bytes)
{
    return vt_sni_test_parse_request(line, strlen(line), bytes);
}

static void good_requests_name_their_size(void **state)
{
    long n = 0;
    assert_int_equal(parse("GET /vantage/sni-test?bytes=1 HTTP/1.1", &n), 200);
    assert_int_equal(n, 1);
    assert_int_equal(parse("GET /vantage/sni-test?bytes=1048576 HTTP/1.1", &n), 200);
    assert_int_equal(n, 1048576);
    assert_int_equal(parse("GET /vantage/sni-test?bytes=000042 HTTP/1.0", &n), 200);
    assert_int_equal(n, 42);
    /* other parameters are ignored, wherever they are */
    assert_int_equal(parse("GET /vantage/sni-test?a=1&bytes=7&b&c=bytes=9 HTTP/1.1", &n), 200);
    assert_int_equal(n, 7);
    assert_int_equal(parse("GET /vantage/sni-test?xbytes=5 HTTP/1.1", &n), 200);
    assert_int_equal(n, VT_SNI_TEST_DEFAULT_BYTES);
}

static void without_bytes_the_default(void **state)
{
    long n = 0;
    assert_int_equal(parse("GET /vantage/sni-test HTTP/1.1", &n), 200);
    assert_int_equal(n, 131072);
    assert_int_equal(parse("GET /vantage/sni-test? HTTP/1.1", &n), 200);
    assert_int_equal(n, 131072);
    assert_int_equal(parse("GET /vantage/sni-test?&& HTTP/1.1", &n), 200);
    assert_int_equal(n, 131072);
}

static void other_paths_are_not_found(void **state)
{
    long n;
    assert_int_equal(parse("GET / HTTP/1.1", &n), 404);
    assert_int_equal(parse("GET /vantage/sni-test/ HTTP/1.1", &n), 404);
    assert_int_equal(parse("GET /vantage/sni-tes HTTP/1.1", &n), 404);
    assert_int_equal(parse("GET /vantage/sni-testx?bytes=1 HTTP/1.1", &n), 404);
    assert_int_equal(parse("GET /VANTAGE/sni-test HTTP/1.1", &n), 404);
}

static void bad_sizes_methods_and_lines_are_400(void **state)
{
    long n;
    static const char *bad[] = {
        "GET /vantage/sni-test?bytes=0 HTTP/1.1",
        "GET /vantage/sni-test?bytes=1048577 HTTP/1.1",
        "GET /vantage/sni-test?bytes=99999999999999999999999 HTTP/1.1",
        "GET /vantage/sni-test?bytes=abc HTTP/1.1",
        "GET /vantage/sni-test?bytes=1a HTTP/1.1",
        "GET /vantage/sni-test?bytes=-1 HTTP/1.1",
        "GET /vantage/sni-test?bytes=+1 HTTP/1.1",
        "GET /vantage/sni-test?bytes= HTTP/1.1",
        "GET /vantage/sni-test?bytes=1&bytes=1 HTTP/1.1",
        "POST /vantage/sni-test HTTP/1.1",
        "HEAD /vantage/sni-test HTTP/1.1",
        "get /vantage/sni-test HTTP/1.1",
        "GET /vantage/sni-test HTTP/2",
        "GET /vantage/sni-test HTTP/1.1 ",
        "GET /vantage/sni-test",
        "GET  /vantage/sni-test HTTP/1.1",
        "GET vantage/sni-test HTTP/1.1",
        "GET /vantage/sni-test\t HTTP/1.1",
        "GET ",
        "GET",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &n) != 400) fail_msg("not 400: '%s'", bad[i]);
    }
    /* a NUL inside the line is a control character, not its end */
    static const char nul[] = "GET /vantage/sni-test?bytes=1\0 HTTP/1.1";
    assert_int_equal(vt_sni_test_parse_request(nul, sizeof(nul) - 1, &n), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_requests_name_their_size),
        cmocka_unit_test(without_bytes_the_default),
        cmocka_unit_test(other_paths_are_not_found),
        cmocka_unit_test(bad_sizes_methods_and_lines_are_400),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
