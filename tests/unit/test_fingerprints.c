/* Blocking fingerprints: both file formats, every location and pattern type, the RE2 -> POSIX
 * translation, OONI's confirmation rule, the shipped and shared files, and matching speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "vantage/fingerprints.h"

#define OONI_HEADER                                                                                \
    "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,"                 \
    "expected_countries,source,exp_url,notes\n"

static char err[1024];

static int load(vt_fp_set *s, const char *csv)
{
    err[0] = 0;
    return vt_fp_load_csv(s, csv, strlen(csv), "fp.csv", err, sizeof err);
}

static const char *body_name(const vt_fp_set *s, const char *body)
{
    const vt_fp *f = vt_fp_match_body(s, body, strlen(body));
    return f ? f->name : "(none)";
}

static void each_location_and_pattern_type_matches(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, OONI_HEADER
                          "dns_full,isp,,dns,full,203.82.48.83,5,PK,ooni,,\n"
                          "dns_name,isp,,dns,full,Block.Example.NET,5,ID,ooni,,\n"
                          "body_contains,isp,,body,contains,http://119.73.65.87:8080/redirect.html?"
                          "accessurl=,5,PK,ooni,,\n"
                          "body_short,prod,,body,contains,<x>,5,,ooni,,\n"
                          "body_prefix,vbw,,body,prefix,<html><head><title>Blocked,5,,ooni,,\n"
                          "body_full,fp,,body,full,<HTML></HTML>,5,,ooni,,\n"
                          "hdr_server,inst,,header.server,full,Protected by WireFilter,5,\"AE,SA\","
                          "ooni,,\n"
                          "hdr_location,nat,,header.Location,prefix,http://www.warning.or.kr,5,KR,"
                          "ooni,,\n"
                          "hdr_via,vbw,,header.via,contains,webfilter,5,,ooni,,\n"),
                     9);
    assert_int_equal(s.n, 9);
    /* DNS: full, case-insensitive for names, a trailing dot ignored. */
    assert_string_equal(vt_fp_match_dns(&s, "203.82.48.83")->name, "dns_full");
    assert_null(vt_fp_match_dns(&s, "203.82.48.8"));
    assert_null(vt_fp_match_dns(&s, "203.82.48.830"));
    assert_string_equal(vt_fp_match_dns(&s, "block.example.net.")->name, "dns_name");
    /* Body. */
    assert_string_equal(
        body_name(&s, "<iframe src=\"http://119.73.65.87:8080/redirect.html?accessurl=aHR0\">"),
        "body_contains");
    assert_string_equal(body_name(&s, "abc<x>def"), "body_short");
    assert_string_equal(body_name(&s, "<html><head><title>Blocked site</title>"), "body_prefix");
    assert_string_equal(body_name(&s, " <html><head><title>Blocked site</title>"), "(none)");
    assert_string_equal(body_name(&s, "<HTML></HTML>"), "body_full");
    assert_string_equal(body_name(&s, "<HTML></HTML>\n"), "(none)");
    assert_string_equal(body_name(&s, "<html></html>"), "(none)"); /* case-sensitive */
    assert_string_equal(body_name(&s, ""), "(none)");
    assert_null(vt_fp_match_body(&s, "http://119.73.65.87:8080/redirect.html?accessur", 47));
    /* Headers: the name is case-insensitive, the value is not. */
    assert_string_equal(vt_fp_match_header(&s, "Server", "Protected by WireFilter")->name,
                        "hdr_server");
    assert_null(vt_fp_match_header(&s, "Server", "Protected by WireFilter 8"));
    assert_null(vt_fp_match_header(&s, "X-Server", "Protected by WireFilter"));
    assert_string_equal(vt_fp_match_header(&s, "location", "http://www.warning.or.kr/i.html")->name,
                        "hdr_location");
    assert_string_equal(vt_fp_match_header(&s, "Via", "1.1 webfilter.example")->name, "hdr_via");
    assert_null(vt_fp_match_header(&s, "Via", "1.1 WEBFILTER"));
    /* Locations do not leak into each other. */
    assert_null(vt_fp_match_dns(&s, "<HTML></HTML>"));
    assert_null(vt_fp_match_header(&s, "Location", "203.82.48.83"));
    assert_string_equal(body_name(&s, "Protected by WireFilter"), "(none)");
    const vt_fp *f = vt_fp_find(&s, "hdr_server");
    assert_int_equal(f->location, VT_FP_HEADER);
    assert_string_equal(f->header_name, "server");
    assert_int_equal(f->n_expected_countries, 2);
    assert_string_equal(f->expected_countries[1], "SA");
    assert_string_equal(vt_fp_find(&s, "hdr_location")->header_name, "location");
    assert_string_equal(f->origin, "fp.csv:8");
    vt_fp_free(&s);
}

static void the_first_loaded_match_wins_and_nul_bytes_are_data(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, OONI_HEADER "late_long,isp,,body,contains,blocked by order,5,,x,,\n"
                                          "later_short,isp,,body,contains,ord,5,,x,,\n"),
                     2);
    assert_int_equal(load(&s, OONI_HEADER "in_second_file,isp,,body,contains,blocked,5,,x,,\n"
                                          "re_after_nul,isp,,body,regexp,tail[0-9]+end,5,,x,,\n"),
                     2);
    /* "blocked" (index 2) occurs before "blocked by order" (index 0) in the body: index 0 wins. */
    assert_string_equal(body_name(&s, "xx blocked by order"), "late_long");
    assert_string_equal(body_name(&s, "xx blocked"), "in_second_file");
    assert_string_equal(body_name(&s, "order"), "later_short");
    const char bin[] = "\0\0\xff\x00 blocked by order";
    assert_string_equal(vt_fp_match_body(&s, bin, sizeof bin - 1)->name, "late_long");
    const char bin2[] = "a\0b tail123end";
    assert_string_equal(vt_fp_match_body(&s, bin2, sizeof bin2 - 1)->name, "re_after_nul");
    assert_null(vt_fp_match_body(&s, bin2, 8)); /* the length bounds the search */
    vt_fp_free(&s);
}

static void regexps_are_translated_from_re2(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, OONI_HEADER
                          "icase,fp,,body,regexp,(?i)access\\s+denied,5,,x,,\n"
                          "digits,fp,,body,regexp,error \\d{3}\\b,5,,x,,\n"
                          "lazy,fp,,body,regexp,<title>D.*?Hutto</title>,5,,x,,\n"
                          "brace,fp,,body,regexp,\"{\"\"msg\"\":.*\"\"id\"\":\",5,,x,,\n"
                          "dot,fp,,body,regexp,AAA.BBB,5,,x,,\n"
                          "escaped,fp,,body,regexp,www\\.internet\\.gov\\.sa/\\(x\\),5,,x,,\n"
                          "bracket,fp,,body,regexp,zz[\\d\\-]+zz,5,,x,,\n"
                          "noncap,fp,,body,regexp,(?:foo|bar)baz,5,,x,,\n"
                          "unicode,fp,,body,regexp,\\p{Greek}+,5,,x,,\n"
                          "mflag,fp,,body,regexp,(?m)^x$,5,,x,,\n"
                          "bigrep,fp,,body,regexp,(a{200}){200},5,,x,,\n"
                          "rep,fp,,body,regexp,\"(ab){2,}c\",5,,x,,\n"),
                     9);
    assert_int_equal(s.n_skipped, 3);
    assert_int_equal(s.n_warnings, 3);
    assert_non_null(strstr(s.warnings[2], "fp.csv:12: bigrep: regexp \"(a{200}){200}\" skipped: "
                                          "counted repetitions above 256 in total"));
    assert_non_null(strstr(s.warnings[0], "fp.csv:10: unicode: regexp"));
    assert_non_null(strstr(s.warnings[1], "fp.csv:11: mflag: regexp"));
    assert_null(vt_fp_find(&s, "unicode"));
    assert_string_equal(body_name(&s, "... ACCESS \t DENIED ..."), "icase");
    assert_string_equal(body_name(&s, "error 404 here"), "digits");
    assert_string_equal(body_name(&s, "error 4044"), "(none)");
    assert_string_equal(body_name(&s, "<title>Dr. Marie Hooks-Hutto</title>"), "lazy");
    assert_string_equal(body_name(&s, "{\"msg\":\"no\",\"id\":3}"), "brace");
    assert_string_equal(body_name(&s, "AAA-BBB"), "dot");
    assert_string_equal(body_name(&s, "AAA\nBBB"), "(none)"); /* RE2: '.' is not '\n' */
    assert_string_equal(body_name(&s, "http://www.internet.gov.sa/(x)"), "escaped");
    assert_string_equal(body_name(&s, "http://wwwXinternet.gov.sa/(x)"), "(none)");
    assert_string_equal(body_name(&s, "zz12-3zz"), "bracket");
    assert_string_equal(body_name(&s, "zz\\zz"), "(none)"); /* no literal backslash in [] */
    assert_string_equal(body_name(&s, "barbaz"), "noncap");
    assert_string_equal(body_name(&s, "xababc"), "rep");
    assert_string_equal(body_name(&s, "xabc"), "(none)");
    vt_fp_free(&s);
}

/* glibc's regcomp copies a group per counted repetition and builds epsilon closures quadratic in
 * the node count: these took the fuzzer past 2 GB. They are skipped with a warning, while a
 * pattern near the cap still loads and matches. */
static void regexps_too_complex_to_compile_are_skipped(void **state)
{
    (void)state;
    char alt[3000] = "(", opt[13000] = "";
    for (int i = 0; i < 500; i++)
        strcat(alt, "ab|");
    strcat(alt, "c){200}");
    for (int i = 0; i < 2000; i++)
        strcat(opt, "(a|b?)");
    char csv[20000];
    snprintf(csv, sizeof csv,
             OONI_HEADER
             "alt,fp,,body,regexp,%s,5,,x,,\n"
             "opt,fp,,body,regexp,%s,5,,x,,\n"
             "nested,fp,,body,regexp,((a?){16}){16},5,,x,,\n"
             "near,fp,,body,regexp,\"(x[0-9]{2}y){100}\",5,,x,,\n"
             "stacked,fp,,body,regexp,a++++++++++++++++++++++++++++++++++++++++,5,,x,,\n"
             "lazy2,fp,,body,regexp,a*??,5,,x,,\n"
             "plus,fp,,body,regexp,\"((((((((((((ab)+)+c)+)+d)+)+)+)+)+)+)+)+\",5,,x,,\n",
             alt, opt);
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, csv), 1);
    assert_int_equal(s.n_skipped, 6);
    for (int i = 0; i < 3; i++)
        assert_non_null(strstr(s.warnings[i], "skipped: too complex: above 1024 nodes"));
    assert_non_null(strstr(s.warnings[2], "fp.csv:4: nested: regexp"));
    assert_non_null(strstr(s.warnings[3], "fp.csv:6: stacked: regexp"));
    assert_non_null(strstr(s.warnings[3], "skipped: bad repetition operator"));
    assert_non_null(strstr(s.warnings[4], "fp.csv:7: lazy2: regexp"));
    assert_non_null(strstr(s.warnings[4], "skipped: bad repetition operator"));
    assert_non_null(strstr(s.warnings[5], "fp.csv:8: plus: regexp"));
    assert_non_null(strstr(s.warnings[5], "skipped: too complex"));
    char body[1100] = "<<";
    for (int i = 0; i < 100; i++)
        strcat(body, "x42y");
    assert_string_equal(body_name(&s, body), "near");
    body[10] = 'z';
    assert_null(vt_fp_match_body(&s, body, strlen(body)));
    vt_fp_free(&s);
}

static void the_confirm_rule_is_ooni_s(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, OONI_HEADER "n,nat,,dns,full,1.1.1.1,5,,x,,\n"
                                          "i,isp,,dns,full,1.1.1.2,5,\"ID,RU\",x,,\n"
                                          "p,prod,,dns,full,1.1.1.3,5,AE SA,x,,\n"
                                          "f,fp,,dns,full,1.1.1.4,5,,x,,\n"),
                     4);
    assert_true(vt_fp_confirms(vt_fp_find(&s, "n"), "US"));
    assert_true(vt_fp_confirms(vt_fp_find(&s, "i"), "US"));
    assert_true(vt_fp_confirms(vt_fp_find(&s, "n"), NULL));
    assert_true(vt_fp_confirms(vt_fp_find(&s, "p"), "SA"));
    assert_true(vt_fp_confirms(vt_fp_find(&s, "p"), "ae"));
    assert_false(vt_fp_confirms(vt_fp_find(&s, "p"), "PK"));
    assert_false(vt_fp_confirms(vt_fp_find(&s, "p"), NULL));
    assert_false(vt_fp_confirms(vt_fp_find(&s, "f"), "PK"));
    assert_false(vt_fp_confirms(NULL, "PK"));
    vt_fp_free(&s);
}

static void citizenlab_formats_are_detected(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, "name,response,confidence_no_fp,exp_url,source,scope,"
                              "expected_countries,notes\n"
                              "dns_br_1234,1.2.3.4,10,https://e/,[],br,[],\"A 1.2.3.4 reply\"\n"
                              "dns_isp_ru,blocked.example.ru,10,,[],isp,['RU'],\n"
                              "dns_nat_x,9.9.9.8,10,,[],nat,[''],\n"),
                     3);
    assert_int_equal(load(&s,
                          "name,common_name,pattern,location_found,exp_url,confidence_no_fp,"
                          "source,scope,expected_countries,notes\n"
                          "injb_ru_mts,Injection,http://unblock.mts.ru,header,https://e/,10,"
                          "['https://t/'],injb,['RU'],note\n"
                          "isp_x,X,Access denied by decree,body,,10,[],isp,\"['GB', 'IE']\",\n"),
                     2);
    const vt_fp *f = vt_fp_find(&s, "dns_isp_ru");
    assert_int_equal(f->location, VT_FP_DNS);
    assert_int_equal(f->pattern_type, VT_FP_FULL);
    assert_int_equal(f->n_expected_countries, 1);
    assert_string_equal(f->expected_countries[0], "RU");
    assert_int_equal(vt_fp_find(&s, "dns_nat_x")->n_expected_countries, 0);
    assert_string_equal(vt_fp_match_dns(&s, "1.2.3.4")->name, "dns_br_1234");
    assert_string_equal(vt_fp_match_dns(&s, "BLOCKED.example.ru")->name, "dns_isp_ru");
    f = vt_fp_find(&s, "injb_ru_mts");
    assert_int_equal(f->location, VT_FP_HEADER);
    assert_null(f->header_name); /* any header */
    assert_int_equal(f->pattern_type, VT_FP_CONTAINS);
    assert_string_equal(vt_fp_match_header(&s, "Location", "http://unblock.mts.ru/x")->name,
                        "injb_ru_mts");
    assert_string_equal(vt_fp_match_header(&s, "Refresh", "0; url=http://unblock.mts.ru")->name,
                        "injb_ru_mts");
    assert_string_equal(body_name(&s, "<p>Access denied by decree</p>"), "isp_x");
    assert_true(vt_fp_confirms(vt_fp_find(&s, "isp_x"), "IE"));
    vt_fp_free(&s);
}

static void bad_rows_name_file_line_and_problem(void **state)
{
    static const struct {
        const char *row, *msg;
    } cases[] = {
        {"a,isp,,hdr,full,x,5,,x,,", "fp.csv:2: a: location_found \"hdr\": expected dns, body"},
        {"a,isp,,header.,full,x,5,,x,,", "fp.csv:2: a: location_found \"header.\""},
        {"a,isp,,header.a b,full,x,5,,x,,", "bad header name"},
        {"a,isp,,body,glob,x,5,,x,,", "fp.csv:2: a: pattern_type \"glob\": expected full"},
        {"a,isp,,body,full,x,5,,x", "fp.csv:2: expected 11 fields (as in the header), got 9"},
        {",isp,,body,full,x,5,,x,,", "fp.csv:2: name is empty"},
        {"a,isp,,body,full,,5,,x,,", "fp.csv:2: a: pattern is empty"},
        {"a,isp,,body,full,x,five,,x,,", "fp.csv:2: a: confidence_no_fp \"five\""},
        {"a,isp,,body,full,x,5,Pakistan,x,,", "fp.csv:2: a: expected_countries"},
        {"a,isp,,body,full,x,5,P1,x,,", "fp.csv:2: a: expected_countries"},
        {"a,isp,,body,full,\"x,5,,x,,", "fp.csv:2: quoted field opened here is never closed"},
    };
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(load(&s, OONI_HEADER "keep,isp,,dns,full,1.2.3.4,5,,x,,\n"), 1);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char csv[512];
        snprintf(csv, sizeof csv, OONI_HEADER "%s\nb,isp,,dns,full,5.6.7.8,5,,x,,\n", cases[i].row);
        assert_int_equal(load(&s, csv), -1);
        if (!strstr(err, cases[i].msg))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].msg);
        assert_int_equal(s.n, 1); /* nothing of a failed file is kept */
        assert_null(vt_fp_match_dns(&s, "5.6.7.8"));
    }
    assert_int_equal(load(&s, "a,b,c\n1,2,3\n"), -1);
    assert_non_null(strstr(err, "fp.csv:1: not a fingerprint file"));
    assert_int_equal(load(&s, ""), -1);
    assert_non_null(strstr(err, "fp.csv:1: empty file"));
    assert_int_equal(vt_fp_load(&s, "/nonexistent/fp.csv", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/fp.csv: cannot open"));
    assert_string_equal(vt_fp_match_dns(&s, "1.2.3.4")->name, "keep");
    vt_fp_free(&s);
}

static void an_empty_set_matches_nothing(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    assert_null(vt_fp_match_dns(&s, "1.2.3.4"));
    assert_null(vt_fp_match_body(&s, "abc", 3));
    assert_null(vt_fp_match_header(&s, "Server", "x"));
    assert_int_equal(load(&s, OONI_HEADER), 0);
    assert_null(vt_fp_match_body(&s, "abc", 3));
    vt_fp_free(&s);
}

/* ---- shipped, lab and shared files ---- */

static void the_shipped_file_holds_the_pakistani_facts(void **state)
{
    vt_fp_set s;
    vt_fp_init(&s);
    if (vt_fp_load(&s, VT_SOURCE_DIR "/targets/fingerprints.csv", err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(s.n_skipped, 0);
    const vt_fp *f = vt_fp_match_dns(&s, "203.82.48.83");
    assert_non_null(f);
    assert_true(vt_fp_confirms(f, "PK"));
    assert_non_null(vt_fp_match_dns(&s, "203.82.48.86"));
    const char *jazz = "<iframe src=\"http://119.73.65.87:8080/redirect.html?accessurl=eA==\">";
    assert_non_null(vt_fp_match_body(&s, jazz, strlen(jazz)));
    const char *nat = "This website is prohibited for viewership from within Pakistan.";
    f = vt_fp_match_body(&s, nat, strlen(nat));
    assert_non_null(f);
    assert_string_equal(f->scope, "nat");
    /* Lab-only rows live in tests/lab, never in the shipped file. */
    for (size_t i = 0; i < s.n; i++)
        assert_string_not_equal(s.items[i].source, "vantage-lab");
    assert_null(vt_fp_match_body(&s, "VANTAGE-LAB-BLOCKPAGE", 21));
    vt_fp_free(&s);

    /* The lab's own file (tests/lab owns its names and addresses) loads and matches its page. */
    vt_fp_init(&s);
    if (vt_fp_load(&s, VT_SOURCE_DIR "/tests/lab/fingerprints-lab.csv", err, sizeof err) < 0)
        fail_msg("%s", err);
    const char *lab = "<html><body>VANTAGE-LAB-BLOCKPAGE</body></html>";
    f = vt_fp_match_body(&s, lab, strlen(lab));
    assert_non_null(f);
    assert_true(vt_fp_confirms(f, "ZZ"));
    for (size_t i = 0; i < s.n; i++)
        if (s.items[i].location == VT_FP_DNS)
            assert_ptr_equal(vt_fp_match_dns(&s, s.items[i].pattern), &s.items[i]);
    vt_fp_free(&s);
}

static void every_shared_fingerprint_file_loads(void **state)
{
    const char *env = getenv("VT_SHARED_DATA");
    char dir[1024];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/fingerprints", env ? env : VT_SOURCE_DIR "/../shared/data");
    if (stat(dir, &st) != 0) {
        print_message("skipped: %s is absent (set VT_SHARED_DATA to ../shared/data)\n", dir);
        skip();
    }
    static const struct {
        const char *file;
        int rows; /* counted with Python's csv module */
    } files[] = {{"ooni-dns.csv", 226},
                 {"ooni-http.csv", 1729},
                 {"citizenlab-dns.csv", 127},
                 {"citizenlab-http.csv", 346},
                 {"pk-subset.csv", 10}};
    vt_fp_set all;
    vt_fp_init(&all);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, files[i].file);
        vt_fp_set s;
        vt_fp_init(&s);
        int n = vt_fp_load(&s, p, err, sizeof err);
        if (n < 0) fail_msg("%s", err);
        assert_int_equal((size_t)n + s.n_skipped, (size_t)files[i].rows);
        for (size_t w = 0; w < s.n_warnings; w++)
            print_message("warning: %s\n", s.warnings[w]);
        vt_fp_free(&s);
        assert_true(vt_fp_load(&all, p, err, sizeof err) >= 0);
    }
    /* The Pakistani facts, through the OONI rows. */
    const vt_fp *f = vt_fp_match_dns(&all, "203.82.48.86");
    assert_non_null(f);
    assert_string_equal(f->name, "ooni.pk_4");
    assert_true(vt_fp_confirms(f, "PK"));
    const char *b = "x prohibited for viewership from within Pakistan x";
    assert_non_null(vt_fp_match_body(&all, b, strlen(b)));
    const char *loc = "http://restrict.wateen.net/?u=x";
    assert_non_null(vt_fp_match_header(&all, "Location", loc));
    vt_fp_free(&all);
}

/* ---- speed: 64 KiB bodies against 2000 patterns ---- */

static const vt_fp *naive_first(const vt_fp_set *s, const char *b, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (memmem(b, n, s->items[i].pattern, s->items[i].pattern_len)) return &s->items[i];
    return NULL;
}

static void matching_2000_patterns_on_64k_is_fast_and_exact(void **state)
{
    const size_t np = 2000, blen = 64 * 1024;
    size_t cap = np * 80 + 256, used = 0;
    char *csv = malloc(cap);
    char *body = malloc(blen);
    unsigned r = 7;
    used += (size_t)snprintf(csv + used, cap - used, OONI_HEADER);
    for (size_t i = 0; i < np; i++) {
        char pat[40];
        size_t pl = 3 + i % 20;
        for (size_t k = 0; k < pl; k++) {
            r = r * 1103515245u + 12345u;
            pat[k] = "abcdefgh<>/= "[(r >> 16) % 13];
        }
        pat[pl] = 0;
        used += (size_t)snprintf(csv + used, cap - used, "p%zu,isp,,body,contains,\"%s\",5,,x,,\n",
                                 i, pat);
    }
    vt_fp_set s;
    vt_fp_init(&s);
    assert_int_equal(vt_fp_load_csv(&s, csv, used, "gen.csv", err, sizeof err), (int)np);
    /* Exactness against memmem on bodies drawn from the same alphabet (many partial hits). */
    for (int round = 0; round < 20; round++) {
        size_t n = 200 + (size_t)round * 37;
        for (size_t k = 0; k < n; k++) {
            r = r * 1103515245u + 12345u;
            body[k] = "abcdefgh<>/= xyz"[(r >> 16) % 16];
        }
        assert_ptr_equal(vt_fp_match_body(&s, body, n), naive_first(&s, body, n));
    }
    /* Speed: a 64 KiB body that matches nothing, so every pattern is tried everywhere. */
    for (size_t k = 0; k < blen; k++) {
        r = r * 1103515245u + 12345u;
        body[k] = "ABCDEFGHIJKLMNOP<>/= "[(r >> 16) % 21];
    }
    memcpy(body + blen - 16, "<>/= <>/= <>/= ", 15);
    struct timespec t0, t1;
    const vt_fp *m = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 20; k++)
        m = vt_fp_match_body(&s, body, blen);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 20;
    print_message("64 KiB x %zu patterns: %.3f ms per body\n", np, ms);
    assert_ptr_equal(m, naive_first(&s, body, blen));
    assert_true(ms < 25.0); /* ~1 ms here; generous for sanitizer builds */
    vt_fp_free(&s);
    free(csv);
    free(body);
}

static void mutated_files_never_crash(void **state)
{
    const char *seed = OONI_HEADER "a,isp,\"b,c\",header.server,regexp,(?i)x[a-c\\d]{2}.*?y,5,"
                                   "\"AE,SA\",x,,\nd,nat,,dns,full,1.2.3.4,5,,x,,\n";
    size_t n = strlen(seed);
    char *buf = malloc(n);
    unsigned r = 3;
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(buf, seed, n);
        for (int m = 0; m < 1 + iter % 3; m++) {
            r = r * 1103515245u + 12345u;
            size_t pos = (r >> 8) % n;
            r = r * 1103515245u + 12345u;
            buf[pos] = "\",\n\\()[]{}?*.x1\x80"[(r >> 16) % 17];
        }
        vt_fp_set s;
        vt_fp_init(&s);
        if (vt_fp_load_csv(&s, buf, n, "m.csv", err, sizeof err) >= 0) {
            vt_fp_match_header(&s, "server", "xab123y");
            vt_fp_match_body(&s, buf, n);
            vt_fp_match_dns(&s, "1.2.3.4");
        } else {
            assert_int_equal(s.n, 0);
        }
        vt_fp_free(&s);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_location_and_pattern_type_matches),
        cmocka_unit_test(the_first_loaded_match_wins_and_nul_bytes_are_data),
        cmocka_unit_test(regexps_are_translated_from_re2),
        cmocka_unit_test(regexps_too_complex_to_compile_are_skipped),
        cmocka_unit_test(the_confirm_rule_is_ooni_s),
        cmocka_unit_test(citizenlab_formats_are_detected),
        cmocka_unit_test(bad_rows_name_file_line_and_problem),
        cmocka_unit_test(an_empty_set_matches_nothing),
        cmocka_unit_test(the_shipped_file_holds_the_pakistani_facts),
        cmocka_unit_test(every_shared_fingerprint_file_loads),
        cmocka_unit_test(matching_2000_patterns_on_64k_is_fast_and_exact),
        cmocka_unit_test(mutated_files_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
