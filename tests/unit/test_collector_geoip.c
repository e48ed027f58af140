/* Collector geoip: ip-location-db CSV ranges, IPv4 and IPv6, text and numeric forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "geoip.h"
#include "vantage/json.h"

static char *write_tmp(const char *content)
{
    char *path = strdup("/tmp/vt-geoip-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static vt_geoip *load(const char *asn, const char *cc)
{
    vt_geoip *g = vt_geoip_new();
    char err[256];
    char *a = write_tmp(asn), *c = write_tmp(cc);
    assert_int_equal(vt_geoip_load_asn(g, a, err, sizeof err), 0);
    assert_int_equal(vt_geoip_load_country(g, c, err, sizeof err), 0);
    unlink(a);
    unlink(c);
    free(a);
    free(c);
    return g;
}

static void ranges_are_found_by_binary_search(void **state)
{
    /* out of order on purpose: loading sorts */
    vt_geoip *g = load("8.8.8.0,8.8.8.255,15169,GOOGLE\n"
                       "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n"
                       "2001:db8::,2001:db8:0:ffff:ffff:ffff:ffff:ffff,64501,DocNet\n"
                       "39.32.0.0,39.63.255.255,45595,PTCL\n",
                       "1.0.0.0,1.0.0.255,AU\n39.32.0.0,39.63.255.255,pk\n"
                       "2001:db8::,2001:db8::ffff,NL\n");
    vt_geoip_result r;
    vt_geoip_lookup(g, "1.0.0.1", &r);
    assert_string_equal(r.asn, "AS13335");
    assert_string_equal(r.org, "Cloudflare, Inc.");
    assert_string_equal(r.cc, "AU");
    vt_geoip_lookup(g, "39.40.1.2", &r);
    assert_string_equal(r.asn, "AS45595");
    assert_string_equal(r.cc, "PK");
    vt_geoip_lookup(g, "39.63.255.255", &r); /* inclusive end */
    assert_string_equal(r.asn, "AS45595");
    vt_geoip_lookup(g, "39.64.0.0", &r);
    assert_string_equal(r.asn, "AS0");
    assert_string_equal(r.cc, "ZZ");
    assert_string_equal(r.org, "");
    vt_geoip_lookup(g, "::ffff:8.8.8.8", &r); /* IPv4-mapped */
    assert_string_equal(r.asn, "AS15169");
    vt_geoip_lookup(g, "2001:db8::5", &r);
    assert_string_equal(r.asn, "AS64501");
    assert_string_equal(r.cc, "NL");
    vt_geoip_lookup(g, "2001:db8::1:0", &r); /* in the ASN range, past the country range */
    assert_string_equal(r.asn, "AS64501");
    assert_string_equal(r.cc, "ZZ");
    vt_geoip_lookup(g, "0.0.0.0", &r);
    assert_string_equal(r.asn, "AS0");
    vt_geoip_lookup(g, "not an address", &r);
    assert_string_equal(r.cc, "ZZ");
    vt_geoip_lookup(g, "16777217", &r); /* numbers are not addresses in a lookup */
    assert_string_equal(r.asn, "AS0");
    vt_geoip_free(g);
}

static void numeric_files_load_too(void **state)
{
    /* 1.0.0.0 = 16777216; 2001:db8:: = 42540766411282592856903984951653826560 */
    vt_geoip *g = load("16777216,16777471,13335,CLOUDFLARENET\n"
                       "42540766411282592856903984951653826560,"
                       "42540766411282592856903984951653826815,64501,DocNet\n",
                       "16777216,16777471,AU\n");
    vt_geoip_result r;
    vt_geoip_lookup(g, "1.0.0.200", &r);
    assert_string_equal(r.asn, "AS13335");
    assert_string_equal(r.cc, "AU");
    vt_geoip_lookup(g, "2001:db8::ff", &r);
    assert_string_equal(r.asn, "AS64501");
    vt_geoip_free(g);
}

static void malformed_files_are_refused_with_file_and_line(void **state)
{
    vt_geoip *g = vt_geoip_new();
    char err[256];
    char *p = write_tmp("1.0.0.0,1.0.0.255,13335,X\n1.0.1.0,1.0.0.0,1,Y\n");
    assert_int_equal(vt_geoip_load_asn(g, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2:"));
    assert_int_equal(vt_geoip_count(g, 0), 0); /* nothing of that file kept */
    unlink(p);
    free(p);
    p = write_tmp("1.0.0.0,1.0.0.255,AUS\n");
    assert_int_equal(vt_geoip_load_country(g, p, err, sizeof err), -1);
    unlink(p);
    free(p);
    p = write_tmp("1.0.0.0,1.0.0.255,notanumber,X\n");
    assert_int_equal(vt_geoip_load_asn(g, p, err, sizeof err), -1);
    unlink(p);
    free(p);
    /* an IPv4 start with an IPv6 end would swallow IPv6's space up to that end */
    p = write_tmp("1.0.0.0,2001:db8::1,64496,X\n");
    assert_int_equal(vt_geoip_load_asn(g, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1: the range's start and end are not the same address family"));
    assert_int_equal(vt_geoip_count(g, 0), 0);
    unlink(p);
    free(p);
    p = write_tmp("2001:db8::,1.0.0.255,NL\n");
    assert_int_equal(vt_geoip_load_country(g, p, err, sizeof err), -1);
    assert_non_null(strstr(err, "not the same address family"));
    unlink(p);
    free(p);
    /* written as IPv6 on both sides, an IPv4-mapped end is one IPv6 range */
    vt_geoip *g6 = vt_geoip_new();
    p = write_tmp("::,::ffff:255.255.255.255,XX\n");
    assert_int_equal(vt_geoip_load_country(g6, p, err, sizeof err), 0);
    assert_int_equal(vt_geoip_count(g6, 1), 1);
    unlink(p);
    free(p);
    vt_geoip_free(g6);
    assert_int_equal(vt_geoip_load_asn(g, "/nonexistent/asn.csv", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/asn.csv"));
    /* a header line is skipped */
    p = write_tmp("ip_start,ip_end,asn,org\n1.0.0.0,1.0.0.255,AS13335,X\n");
    assert_int_equal(vt_geoip_load_asn(g, p, err, sizeof err), 0);
    assert_int_equal(vt_geoip_count(g, 0), 1);
    unlink(p);
    free(p);
    /* a byte order mark does not turn the first range into a skipped header */
    p = write_tmp("\xef\xbb\xbf"
                  "2.0.0.0,2.0.0.255,64496,Y\n3.0.0.0,3.0.0.255,64497,Z\n");
    assert_int_equal(vt_geoip_load_asn(g, p, err, sizeof err), 0);
    assert_int_equal(vt_geoip_count(g, 0), 3);
    unlink(p);
    free(p);
    p = write_tmp("\xef\xbb\xbfip_start,ip_end,country\n2.0.0.0,2.0.0.255,NL\n");
    assert_int_equal(vt_geoip_load_country(g, p, err, sizeof err), 0);
    unlink(p);
    free(p);
    vt_geoip_result r;
    vt_geoip_lookup(g, "2.0.0.1", &r);
    assert_string_equal(r.asn, "AS64496");
    assert_string_equal(r.cc, "NL");
    vt_geoip_lookup(NULL, "1.0.0.1", &r);
    assert_string_equal(r.asn, "AS0");
    vt_geoip_free(g);
}

/* Names and codes as the probe will repeat them in its measurements, which the collector
 * validates: UTF-8 (a long name cut between characters, never inside one), no control
 * characters, a country of two letters. */
static void answers_are_valid_text(void **state)
{
    (void)state;
    char asn[1024] = "1.0.0.0,1.0.0.255,64510,\"";
    for (int i = 0; i < 20; i++) /* 2-byte letters: 200+ bytes, an odd cut would split one */
        strcat(asn, "\xd0\xa4\xd0\xb5\xd0\xb4 ");
    strcat(asn,
           "\"\n2.0.0.0,2.0.0.255,64511,\"Tab\there\"\n3.0.0.0,3.0.0.255,64512,\"bad \xff\"\n");
    vt_geoip *g = load(asn, "1.0.0.0,1.0.0.255,ru\n");
    vt_geoip_result r;
    vt_geoip_lookup(g, "1.0.0.1", &r);
    assert_string_equal(r.cc, "RU");
    assert_string_equal(r.asn, "AS64510");
    size_t n = strlen(r.org);
    assert_true(n > 100 && n <= 120);
    assert_true(vt_utf8_valid((const unsigned char *)r.org, n));
    assert_memory_equal(r.org, "\xd0\xa4\xd0\xb5\xd0\xb4 ", 7);
    vt_geoip_lookup(g, "2.0.0.1", &r);
    assert_string_equal(r.org, "Tabhere");
    vt_geoip_lookup(g, "3.0.0.1", &r);
    assert_string_equal(r.asn, "AS64512");
    assert_string_equal(r.org, ""); /* not UTF-8: no name rather than a broken one */
    vt_geoip_free(g);
    char err[256];
    const char *bad[] = {"1.0.0.0,1.0.0.255,1!\n", "1.0.0.0,1.0.0.255,\xd0\xa4\n"};
    for (size_t i = 0; i < 2; i++) {
        g = vt_geoip_new();
        char *p = write_tmp(bad[i]);
        assert_int_equal(vt_geoip_load_country(g, p, err, sizeof err), -1);
        assert_non_null(strstr(err, "two letters"));
        unlink(p);
        free(p);
        vt_geoip_free(g);
    }
    g = vt_geoip_new();
    assert_int_equal(vt_geoip_load_mmdb(g, "/nonexistent/x.mmdb", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.mmdb"));
    assert_int_equal(vt_geoip_mmdb_count(g), 0);
    vt_geoip_free(g);
}

/* MaxMind DB files written by MaxMind's writer (tests/servers/mkmmdb.pl): IPv4 and IPv6, both
 * field layouts, CSV first. Skipped where the writer is not installed. */
static void mmdb_files_answer_what_csv_does_not(void **state)
{
    (void)state;
    char dir[] = "/tmp/vt-mmdb-XXXXXX", cmd[2048], asn[64], cc[64];
    assert_non_null(mkdtemp(dir));
    snprintf(asn, sizeof asn, "%s/asn.mmdb", dir);
    snprintf(cc, sizeof cc, "%s/cc.mmdb", dir);
    snprintf(cmd, sizeof cmd,
             "perl '%s/tests/servers/mkmmdb.pl' %s 2001:db8::/32 asn=64501,org=DocNet "
             "1.0.0.0/24 asn=13335,org=FromMMDB && perl '%s/tests/servers/mkmmdb.pl' %s "
             "2001:db8::/32 cc=de 9.9.9.0/24 iso=CH",
             VT_SOURCE_DIR, asn, VT_SOURCE_DIR, cc);
    int rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        (void)system(cmd);
        if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) skip(); /* no MaxMind::DB::Writer */
        fail_msg("mkmmdb.pl failed (%d)", rc);
    }
    vt_geoip *g = load("1.0.0.0,1.0.0.255,64496,FromCSV\n", "1.0.0.0,1.0.0.255,AU\n");
    char err[256];
    assert_int_equal(vt_geoip_load_mmdb(g, asn, err, sizeof err), 0);
    assert_int_equal(vt_geoip_load_mmdb(g, cc, err, sizeof err), 0);
    assert_int_equal(vt_geoip_mmdb_count(g), 2);
    vt_geoip_result r;
    vt_geoip_lookup(g, "2001:db8::5", &r);
    assert_string_equal(r.cc, "DE");
    assert_string_equal(r.asn, "AS64501");
    assert_string_equal(r.org, "DocNet");
    vt_geoip_lookup(g, "::ffff:9.9.9.9", &r); /* IPv4-mapped: the IPv4 entry */
    assert_string_equal(r.cc, "CH");
    assert_string_equal(r.asn, "AS0");
    vt_geoip_lookup(g, "1.0.0.1", &r); /* the CSV answers first */
    assert_string_equal(r.cc, "AU");
    assert_string_equal(r.asn, "AS64496");
    assert_string_equal(r.org, "FromCSV");
    vt_geoip_lookup(g, "2001:db9::1", &r);
    assert_string_equal(r.cc, "ZZ");
    assert_string_equal(r.asn, "AS0");
    vt_geoip_free(g);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Nested and overlapping ranges (a /24 inside a /8, two files of the same family): the narrowest
 * range holding an address answers, the wide one everywhere around it; of two equal ranges, the
 * one loaded last. Before, a lookup saw only the last range starting before the address, and
 * everything of the /8 after the /24 was ZZ. An unquoted comma in the organisation (the last
 * field) stays in it. */
static void nested_ranges_answer_the_narrowest(void **state)
{
    vt_geoip *g = load("10.0.0.0,10.255.255.255,64500,Wide\n"
                       "10.1.0.0,10.1.0.255,64501,Example, Inc.\n"
                       "10.1.0.128,10.1.0.129,64502,Inner\n"
                       "10.200.0.0,10.200.0.255,64503,First\n"
                       "10.200.0.0,10.200.0.255,64504,Second\n"
                       "10.250.0.0,10.251.255.255,64505,Left\n"
                       "10.251.0.0,10.253.255.255,64506,RightWider\n"
                       "10.251.128.0,10.253.0.0,64507,Straddle\n",
                       "10.0.0.0,10.255.255.255,US\n10.1.0.0,10.1.0.255,DE\n");
    char err[256];
    char *later = write_tmp("10.9.0.0,10.9.0.255,FR\n10.1.0.0,10.1.0.255,NL\n");
    assert_int_equal(vt_geoip_load_country(g, later, err, sizeof err), 0);
    unlink(later);
    free(later);
    static const struct {
        const char *ip, *asn, *org, *cc;
    } want[] = {
        {"10.0.0.1", "AS64500", "Wide", "US"},
        {"10.1.0.1", "AS64501", "Example, Inc.", "NL"}, /* NL: the same range, loaded later */
        {"10.1.0.128", "AS64502", "Inner", "NL"},
        {"10.1.0.130", "AS64501", "Example, Inc.", "NL"},
        {"10.1.1.0", "AS64500", "Wide", "US"},
        {"10.2.0.1", "AS64500", "Wide", "US"},
        {"10.9.0.7", "AS64500", "Wide", "FR"},
        {"10.200.0.1", "AS64504", "Second", "US"},
        {"10.200.0.255", "AS64504", "Second", "US"},
        {"10.200.1.0", "AS64500", "Wide", "US"},
        {"10.250.0.1", "AS64505", "Left", "US"},
        {"10.251.0.1", "AS64505", "Left", "US"},       /* Left and RightWider: Left narrower */
        {"10.251.200.1", "AS64507", "Straddle", "US"}, /* three hold it: Straddle narrowest */
        {"10.252.0.1", "AS64507", "Straddle", "US"},
        {"10.253.0.0", "AS64507", "Straddle", "US"},
        {"10.253.0.1", "AS64506", "RightWider", "US"},
        {"10.254.0.0", "AS64500", "Wide", "US"},
        {"10.255.255.255", "AS64500", "Wide", "US"},
        {"11.0.0.0", "AS0", "", "ZZ"},
        {"9.255.255.255", "AS0", "", "ZZ"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        vt_geoip_result r;
        vt_geoip_lookup(g, want[i].ip, &r);
        assert_string_equal(r.asn, want[i].asn);
        assert_string_equal(r.org, want[i].org);
        assert_string_equal(r.cc, want[i].cc);
    }
    assert_int_equal(vt_geoip_count(g, 0), 8); /* ranges as loaded */
    vt_geoip_free(g);

    /* The whole IPv6 space with a hole: the last address has no end + 1. */
    g = load("::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,64510,All\n"
             "2001:db8::,2001:db8::ffff,64511,Doc\n",
             "1.0.0.0,1.0.0.255,AU\n");
    vt_geoip_result r;
    vt_geoip_lookup(g, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &r);
    assert_string_equal(r.asn, "AS64510");
    vt_geoip_lookup(g, "2001:db8::1", &r);
    assert_string_equal(r.asn, "AS64511");
    vt_geoip_lookup(g, "2001:db8::1:0", &r);
    assert_string_equal(r.asn, "AS64510");
    vt_geoip_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges_are_found_by_binary_search),
        cmocka_unit_test(nested_ranges_answer_the_narrowest),
        cmocka_unit_test(numeric_files_load_too),
        cmocka_unit_test(malformed_files_are_refused_with_file_and_line),
        cmocka_unit_test(answers_are_valid_text),
        cmocka_unit_test(mmdb_files_answer_what_csv_does_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
