/* Trusted reverse proxies (collector/proxy.c): who may name the client in X-Forwarded-For, and
 * which entry of the header is believed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy.h"

static vt_proxies *parse(const char *list)
{
    char err[256] = "";
    vt_proxies *p = vt_proxies_parse(list, err, sizeof(err));
    if (!p) fprintf(stderr, "%s\n", err);
    return p;
}

static void lists_are_parsed_and_bad_ones_refused(void **state)
{
    (void)state;
    vt_proxies *p = parse("127.0.0.1,10.0.0.0/8,2001:db8::/32, 192.0.2.7 ");
    assert_non_null(p);
    assert_true(vt_proxies_contains(p, "127.0.0.1"));
    assert_false(vt_proxies_contains(p, "127.0.0.2"));
    assert_true(vt_proxies_contains(p, "10.255.1.2"));
    assert_false(vt_proxies_contains(p, "11.0.0.1"));
    assert_true(vt_proxies_contains(p, "2001:db8:ffff::1"));
    assert_false(vt_proxies_contains(p, "2001:db9::1"));
    assert_true(vt_proxies_contains(p, "::ffff:10.1.2.3")); /* IPv4-mapped is IPv4 */
    assert_true(vt_proxies_contains(p, "192.0.2.7"));
    assert_false(vt_proxies_contains(p, "192.0.2.8"));
    assert_false(vt_proxies_contains(p, "not an address"));
    assert_false(vt_proxies_contains(p, NULL));
    vt_proxies_free(p);

    p = parse("10.1.2.3/20"); /* host bits set: the network is what counts */
    assert_non_null(p);
    assert_true(vt_proxies_contains(p, "10.1.15.255"));
    assert_false(vt_proxies_contains(p, "10.1.16.0"));
    vt_proxies_free(p);

    const char *bad[] = {"",
                         ",",
                         " ",
                         "127.0.0.1,",
                         "127.0.0.1,,10.0.0.1",
                         "10.0.0.0/33",
                         "::/129",
                         "10.0.0.0/",
                         "10.0.0.0/x",
                         "10.0.0.0/-1",
                         "localhost",
                         "10.0.0.256",
                         "1.2.3.4/8/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        assert_null(vt_proxies_parse(bad[i], err, sizeof(err)));
        assert_non_null(strstr(err, "--trusted-proxy"));
    }
    char many[2048] = "";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.0.%d", i ? "," : "", i);
    char err[256] = "";
    assert_null(vt_proxies_parse(many, err, sizeof(err)));
    assert_non_null(strstr(err, "at most 64"));
}

static void check_client(const vt_proxies *p, const char *peer, const char *xff, const char *want,
                         int want_header)
{
    char out[64];
    int h = vt_proxies_client(p, peer, xff, out, sizeof(out));
    if (strcmp(out, want) != 0 || h != want_header)
        fail_msg("peer %s, X-Forwarded-For '%s': got %s (%d), want %s (%d)", peer,
                 xff ? xff : "(none)", out, h, want, want_header);
}

static void only_trusted_peers_name_the_client(void **state)
{
    (void)state;
    vt_proxies *p = parse("127.0.0.1,10.0.0.0/8");
    assert_non_null(p);
    /* Not through a trusted proxy: the header is the client's own claim, ignored. */
    check_client(p, "198.51.100.9", "203.0.113.5", "198.51.100.9", 0);
    check_client(NULL, "127.0.0.1", "203.0.113.5", "127.0.0.1", 0);
    /* Through one, without the header: the proxy's address. */
    check_client(p, "127.0.0.1", NULL, "127.0.0.1", 0);
    check_client(p, "::ffff:127.0.0.1", NULL, "127.0.0.1", 0);
    /* The proxy's word. */
    check_client(p, "127.0.0.1", "203.0.113.5", "203.0.113.5", 1);
    check_client(p, "127.0.0.1", " 203.0.113.5\t", "203.0.113.5", 1);
    /* Whatever the client wrote itself is left of what the proxy appended: not believed. */
    check_client(p, "127.0.0.1", "192.0.2.1, 203.0.113.5", "203.0.113.5", 1);
    /* A chain of trusted proxies passes the client on. */
    check_client(p, "127.0.0.1", "192.0.2.1, 203.0.113.5, 10.2.3.4", "203.0.113.5", 1);
    /* Every entry a proxy: the leftmost. */
    check_client(p, "127.0.0.1", "10.0.0.9,10.0.0.8", "10.0.0.9", 1);
    /* Not an address: the walk stops at the nearest trusted hop to its right. */
    check_client(p, "127.0.0.1", "garbage", "127.0.0.1", 0);
    check_client(p, "127.0.0.1", "203.0.113.5, unknown", "127.0.0.1", 0);
    check_client(p, "127.0.0.1", "unknown, 10.0.0.8", "10.0.0.8", 1);
    check_client(p, "127.0.0.1", "garbage, 203.0.113.5", "203.0.113.5", 1);
    check_client(p, "127.0.0.1", "", "127.0.0.1", 0);
    check_client(p, "127.0.0.1", ",", "127.0.0.1", 0);
    /* With the client's port, as some proxies write it: the address. */
    check_client(p, "127.0.0.1", "203.0.113.5:443", "203.0.113.5", 1);
    check_client(p, "127.0.0.1", "[2001:db8::1]:5678", "2001:db8::1", 1);
    check_client(p, "127.0.0.1", "192.0.2.1, 203.0.113.5:443, 10.2.3.4:80", "203.0.113.5", 1);
    check_client(p, "127.0.0.1", "203.0.113.5:65536", "127.0.0.1", 0);
    check_client(p, "127.0.0.1", "203.0.113.5:", "127.0.0.1", 0);
    check_client(p, "127.0.0.1", "[2001:db8::1]x", "127.0.0.1", 0);
    check_client(p, "127.0.0.1", "[2001:db8::1", "127.0.0.1", 0);
    /* IPv6, bracketed or not, in canonical form; IPv4-mapped as IPv4. */
    check_client(p, "127.0.0.1", "[2001:DB8:0:0::1]", "2001:db8::1", 1);
    check_client(p, "127.0.0.1", "2001:db8::1", "2001:db8::1", 1);
    check_client(p, "127.0.0.1", "::ffff:203.0.113.5", "203.0.113.5", 1);
    /* An entry too long to be an address. */
    char longe[300];
    memset(longe, '1', sizeof(longe) - 1);
    longe[sizeof(longe) - 1] = 0;
    check_client(p, "127.0.0.1", longe, "127.0.0.1", 0);
    /* The peer itself unparsable: nothing. */
    check_client(p, "", "203.0.113.5", "", 0);
    vt_proxies_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lists_are_parsed_and_bad_ones_refused),
        cmocka_unit_test(only_trusted_peers_name_the_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
