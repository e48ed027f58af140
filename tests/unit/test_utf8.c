/* lib/json.c vt_utf8_valid: fixed cases from RFC 3629, and the word-at-a-time version checked
 * against a byte-by-byte reference on generated inputs at every alignment (the ASCII fast path
 * must never skip a NUL, a non-ASCII byte or the tail of a buffer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vantage/json.h"

/* RFC 3629's table, byte by byte, without NUL (the collector's rule: cJSON strings end there). */
static int reference(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0) return 0;
        if (c <= 0x7f) {
            i++;
            continue;
        }
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c == 0xe0) {
            n = 2, lo = 0xa0;
        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
            n = 2;
        } else if (c == 0xed) {
            n = 2, hi = 0x9f; /* no surrogates */
        } else if (c == 0xf0) {
            n = 3, lo = 0x90;
        } else if (c >= 0xf1 && c <= 0xf3) {
            n = 3;
        } else if (c == 0xf4) {
            n = 3, hi = 0x8f;
        } else {
            return 0;
        }
        if (len - i <= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return 0;
        i += n + 1;
    }
    return 1;
}

static int valid(const char *s, size_t len)
{
    return vt_utf8_valid((const unsigned char *)s, len);
}

static void fixed_cases(void **state)
{
    (void)state;
    assert_true(valid("", 0));
    assert_true(valid("plain ascii, longer than a word", 31));
    assert_true(valid("caf\xc3\xa9", 5));
    assert_true(valid("\xe2\x82\xac and \xf0\x9f\x98\x80", 12));
    assert_true(valid("\xf4\x8f\xbf\xbf", 4));     /* U+10FFFF */
    assert_false(valid("abcdefg\0hijklmnop", 17)); /* NUL inside the first word */
    assert_false(valid("abcdefghijklmno\0", 16));  /* NUL as the last byte of a word */
    assert_false(valid("abcdefgh\xc3", 9));        /* truncated after a whole word */
    assert_false(valid("\xc0\xaf", 2));            /* overlong '/' */
    assert_false(valid("\xe0\x80\xaf", 3));        /* overlong, three bytes */
    assert_false(valid("\xed\xa0\x80", 3));        /* a surrogate */
    assert_false(valid("\xf4\x90\x80\x80", 4));    /* over U+10FFFF */
    assert_false(valid("\xf5\x80\x80\x80", 4));
    assert_false(valid("abcdefgh\x80zzzzzzz", 16)); /* a lone continuation byte */
    assert_false(valid("\xff", 1));
    /* The length bounds the scan: what follows is not read as part of it. */
    assert_true(valid("abcdefgh\xff", 8));
    assert_true(valid("abcdefghijklmnop\0", 16));
}

/* A small deterministic generator (xorshift), so that a failure reproduces. */
static uint32_t rng = 2463534242u;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Mostly ASCII runs (the fast path), with valid and broken sequences among them. */
static size_t generate(unsigned char *out, size_t cap)
{
    static const char *const pieces[] = {"\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xf4\x8f\xbf\xbf",
                                         "\xef\xbf\xbf",
                                         "\xed\x9f\xbf",
                                         "\xc0\x80",
                                         "\xc1\xbf",
                                         "\xe0\x9f\xbf",
                                         "\xed\xa0\x80",
                                         "\xf0\x8f\xbf\xbf",
                                         "\xf4\x90\x80\x80",
                                         "\x80",
                                         "\xbf",
                                         "\xfe",
                                         "\xff",
                                         "\xc3",
                                         "\xe2\x82",
                                         "\xf0\x9f\x98"};
    size_t n = 0, target = next() % cap;
    while (n < target) {
        uint32_t r = next() % 16;
        if (r < 11) { /* an ASCII run, NUL now and then */
            size_t run = 1 + next() % 24;
            for (size_t k = 0; k < run && n < cap; k++)
                out[n++] = (unsigned char)(next() % 997 == 0 ? 0 : 0x20 + next() % 0x5f);
        } else {
            const char *p = pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t l = strlen(p);
            if (n + l > cap) break;
            memcpy(out + n, p, l);
            n += l;
        }
    }
    return n;
}

static void same_as_the_reference(void **state)
{
    (void)state;
    unsigned char buf[200 + 8];
    size_t seen_valid = 0, seen_invalid = 0;
    for (int iter = 0; iter < 60000; iter++) {
        size_t off = (size_t)iter % 8; /* every alignment of the words */
        size_t n = generate(buf + off, 200);
        int want = reference(buf + off, n), got = vt_utf8_valid(buf + off, n);
        if (want != got)
            fail_msg("iteration %d (length %zu, offset %zu): %d, want %d", iter, n, off, got, want);
        /* and every prefix of a few, where sequences and words are cut anywhere */
        for (size_t cut = 0; iter % 50 == 0 && cut < n; cut++)
            assert_int_equal(vt_utf8_valid(buf + off, cut), reference(buf + off, cut));
        if (want)
            seen_valid++;
        else
            seen_invalid++;
    }
    /* the generator reaches both answers often, or the comparison proves little */
    assert_true(seen_valid > 5000);
    assert_true(seen_invalid > 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixed_cases),
        cmocka_unit_test(same_as_the_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
