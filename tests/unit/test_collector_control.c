/* Collector control: which destinations count as private (refused without
 * --allow-private-control). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "control.h"

static void private_and_special_addresses_are_refused(void **state)
{
    static const char *priv[] = {
        "127.0.0.1",
        "127.9.8.7",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "::",
        "::1",
        "fe80::1",
        "fd00::1",
        "fc12::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.1.1",
        "64:ff9b::a01:101",
        "2001:db8::1",
        "::127.0.0.1", /* IPv4-compatible */
        "::10.1.2.3",
        "2002:7f00:1::1", /* 6to4 around 127.0.0.1 */
        "2002:c0a8:101::1",
        "64:ff9b:1::1", /* local-use NAT64 */
        "fec0::1",      /* site-local */
        "2001::1",      /* Teredo */
        "2001:2::1",    /* benchmarking */
        "2001:10::1",   /* ORCHID */
        "3fff::1",      /* documentation (RFC 9637) */
        "100::1",       /* discard */
        "4000::1",      /* unassigned */
        "not-an-ip",
        "",
    };
    for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
        if (!vt_control_addr_private(priv[i])) fail_msg("%s should be private", priv[i]);
    }
    assert_true(vt_control_addr_private(NULL));
}

static void public_addresses_are_measured(void **state)
{
    static const char *pub[] = {
        "1.1.1.1",      "8.8.8.8",         "172.15.255.255",  "172.32.0.1",     "100.63.255.255",
        "100.128.0.1",  "192.169.0.1",     "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
        "2a00:1450::1", "2002:808:808::1", "2001:4860::8888", "2c0f:fb50::1"};
    for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
        if (vt_control_addr_private(pub[i])) fail_msg("%s should be public", pub[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(private_and_special_addresses_are_refused),
        cmocka_unit_test(public_addresses_are_measured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
