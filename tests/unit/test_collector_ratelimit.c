/* Collector rate limits: token buckets per key, refill over time, bounded table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "ratelimit.h"

static void a_burst_then_refusal_then_refill(void **state)
{
    vt_ratelimit *rl = vt_ratelimit_new(2.0, 3.0, 64);
    int retry = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.1", 100.0, &retry), 1);
    assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.1", 100.0, &retry), 0);
    assert_int_equal(retry, 1);
    /* other keys have their own bucket */
    assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.2", 100.0, NULL), 1);
    /* 2 tokens per second: after 0.5 s one more */
    assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.1", 100.5, &retry), 1);
    assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.1", 100.5, &retry), 0);
    /* never more than the burst, however long the pause */
    for (int i = 0; i < 3; i++)
        assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.1", 1000.0, NULL), 1);
    assert_int_equal(vt_ratelimit_take(rl, "a:10.0.0.1", 1000.0, NULL), 0);
    vt_ratelimit_free(rl);
}

static void slow_rates_ask_for_longer_waits(void **state)
{
    vt_ratelimit *rl = vt_ratelimit_new(0.1, 1.0, 64);
    int retry = 0;
    assert_int_equal(vt_ratelimit_take(rl, "t:abc", 0.0, &retry), 1);
    assert_int_equal(vt_ratelimit_take(rl, "t:abc", 0.0, &retry), 0);
    assert_int_equal(retry, 10);
    vt_ratelimit_free(rl);
}

static void zero_rate_disables(void **state)
{
    vt_ratelimit *rl = vt_ratelimit_new(0, 1, 64);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(vt_ratelimit_take(rl, "x", 0.0, NULL), 1);
    vt_ratelimit_free(rl);
}

static void the_table_stays_bounded_under_many_keys(void **state)
{
    vt_ratelimit *rl = vt_ratelimit_new(1.0, 1.0, 64);
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        vt_ratelimit_take(rl, key, (double)i, NULL);
    }
    assert_true(vt_ratelimit_size(rl) <= 64);
    assert_true(vt_ratelimit_size(rl) >= 32);
    /* a key seen just now is still remembered (it is the most recent in its set) */
    assert_int_equal(vt_ratelimit_take(rl, key, 99999.0, NULL), 0);
    vt_ratelimit_free(rl);
}

/* A client's bucket key: an IPv6 address stands for its /64, anything else for itself. */
static void an_ipv6_client_is_its_64(void **state)
{
    (void)state;
    char net[46];
    assert_string_equal(vt_ratelimit_client("2001:db8::ffff:3", net), "2001:db8::");
    assert_string_equal(vt_ratelimit_client("2001:db8:0:1:2:3:4:5", net), "2001:db8:0:1::");
    assert_string_equal(vt_ratelimit_client("192.0.2.7", net), "192.0.2.7");
    assert_string_equal(vt_ratelimit_client("", net), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_burst_then_refusal_then_refill),
        cmocka_unit_test(slow_rates_ask_for_longer_waits),
        cmocka_unit_test(zero_rate_disables),
        cmocka_unit_test(the_table_stays_bounded_under_many_keys),
        cmocka_unit_test(an_ipv6_client_is_its_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
