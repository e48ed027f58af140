/* IKEv2 IKE_SA_INIT: the request's structure, the responder answers we accept, hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vantage/ikev2.h"

static const unsigned char SPI[8] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* Walks the payload chain the way a responder would and checks each length adds up. */
static void check_request(const unsigned char *m, size_t n, int group, size_t kelen)
{
    assert_true(n >= 28);
    assert_memory_equal(m, SPI, 8);
    for (int i = 8; i < 16; i++)
        assert_int_equal(m[i], 0);
    assert_int_equal(m[16], 33);
    assert_int_equal(m[17], 0x20);
    assert_int_equal(m[18], 34);
    assert_int_equal(m[19], 0x08);
    assert_int_equal(be32(m + 20), 0);
    assert_int_equal(be32(m + 24), n);
    size_t off = 28;
    int next = m[16], seen = 0;
    while (next) {
        assert_true(off + 4 <= n);
        size_t pl = be16(m + off + 2);
        assert_true(pl >= 4 && off + pl <= n);
        if (next == 33) {
            /* Two proposals whose transform lengths add up, the first with 4+1+... */
            size_t po = off + 4;
            int last = 0, props = 0;
            while (!last) {
                size_t plen = be16(m + po + 2);
                last = m[po] == 0;
                assert_int_equal(m[po + 5], 1);
                int nt = m[po + 7];
                size_t to = po + 8;
                int ndh = 0, first_dh = 0;
                for (int t = 0; t < nt; t++) {
                    size_t tl = be16(m + to + 2);
                    assert_int_equal(m[to], t == nt - 1 ? 0 : 3);
                    if (m[to + 4] == 4 && !ndh++) first_dh = (int)be16(m + to + 6);
                    to += tl;
                }
                assert_int_equal(to - po, plen);
                assert_int_equal(first_dh, group);
                assert_int_equal(ndh, 3);
                po += plen;
                props++;
            }
            assert_int_equal(props, 2);
            assert_int_equal(po, off + pl);
            seen |= 1;
        } else if (next == 34) {
            assert_int_equal(be16(m + off + 4), group);
            assert_int_equal(pl, 8 + kelen);
            seen |= 2;
        } else if (next == 40) {
            assert_int_equal(pl, 36);
            seen |= 4;
        }
        next = m[off];
        off += pl;
    }
    assert_int_equal(off, n);
    assert_int_equal(seen, 7);
}

static void sa_init_request_is_well_formed_for_each_group(void **state)
{
    unsigned char out[1500];
    size_t n = 0;
    char err[128];
    const int groups[] = {31, 19, 14};
    const size_t lens[] = {32, 64, 256};
    for (int i = 0; i < 3; i++) {
        vt_ikev2_opts o = {.ke_group = groups[i]};
        assert_int_equal(vt_ikev2_build_sa_init(&o, SPI, out, sizeof(out), &n, err, sizeof(err)),
                         0);
        check_request(out, n, groups[i], lens[i]);
    }
    vt_ikev2_opts bad = {.ke_group = 2};
    assert_int_equal(vt_ikev2_build_sa_init(&bad, SPI, out, sizeof(out), &n, err, sizeof(err)), -1);
    vt_ikev2_opts o = {.ke_group = 14};
    assert_int_equal(vt_ikev2_build_sa_init(&o, SPI, out, 100, &n, err, sizeof(err)), -1);
}

static void natt_request_starts_with_non_esp_marker(void **state)
{
    unsigned char out[1500];
    size_t n = 0;
    char err[128];
    vt_ikev2_opts o = {.natt = 1};
    assert_int_equal(vt_ikev2_build_sa_init(&o, SPI, out, sizeof(out), &n, err, sizeof(err)), 0);
    const unsigned char zero[4] = {0};
    assert_memory_equal(out, zero, 4);
    check_request(out + 4, n - 4, 31, 32);
}

/* A responder's answer: header, then the given payloads. */
static size_t response(unsigned char *m, const unsigned char *spir, const unsigned char *payloads,
                       size_t plen, int first)
{
    memcpy(m, SPI, 8);
    memcpy(m + 8, spir, 8);
    m[16] = (unsigned char)first;
    m[17] = 0x20;
    m[18] = 34;
    m[19] = 0x20;
    memset(m + 20, 0, 4);
    size_t n = 28 + plen;
    m[24] = 0;
    m[25] = 0;
    m[26] = (unsigned char)(n >> 8);
    m[27] = (unsigned char)n;
    if (plen) memcpy(m + 28, payloads, plen);
    return n;
}

static void responder_sa_with_nonzero_spi_is_accepted(void **state)
{
    const unsigned char spir[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    /* SA with one proposal: AES-CBC-256, PRF-SHA256, SHA256-128, group 31; then KE, Nonce. */
    const unsigned char p[] = {
        34, 0, 0, 48,              /* SA, next KE */
        0,  0, 0, 44, 1,  1, 0, 4, /* proposal 1, IKE, 4 transforms */
        3,  0, 0, 12, 1,  0, 0, 12, 0x80, 14, 1, 0, 3,  0,  0, 8, 2, 0, 0,  5, 3, 0, 0,
        8,  3, 0, 0,  12, 0, 0, 0,  8,    4,  0, 0, 31, 40, 0, 0, 8, 0, 31, 0, 0, /* KE (truncated
                                                                                     data is the
                                                                                     responder's
                                                                                     business) */
        0,  0, 0, 8,  1,  2, 3, 4,                                                /* Nonce */
    };
    unsigned char m[256];
    size_t n = response(m, spir, p, sizeof(p), 33);
    vt_ikev2_opts o = {0};
    vt_ikev2_reply r;
    char f[128];
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_OK);
    assert_true(r.spi_r_nonzero);
    assert_true(r.has_sa && r.has_ke && r.has_nonce);
    assert_int_equal(r.chosen_encr, 12);
    assert_int_equal(r.chosen_encr_keylen, 256);
    assert_int_equal(r.chosen_prf, 5);
    assert_int_equal(r.chosen_integ, 12);
    assert_int_equal(r.chosen_dh, 31);

    /* The same over port 4500, with the marker. */
    unsigned char m2[260] = {0};
    memcpy(m2 + 4, m, n);
    vt_ikev2_opts natt = {.natt = 1};
    assert_int_equal(vt_ikev2_parse_reply(&natt, SPI, m2, n + 4, &r, f, sizeof(f)), VT_IKE_OK);
    /* ESP (non-zero SPI where the marker goes) is not IKE. */
    m2[0] = 1;
    assert_int_equal(vt_ikev2_parse_reply(&natt, SPI, m2, n + 4, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_string_equal(f, "ikev2_not_ike");

    /* Someone else's SPI, a request instead of a response, another exchange: refused. */
    unsigned char other[8] = {1};
    assert_int_equal(vt_ikev2_parse_reply(&o, other, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_string_equal(f, "ikev2_wrong_spi");
    m[19] = 0x08;
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_string_equal(f, "ikev2_not_a_response");
    m[19] = 0x20;
    m[18] = 35;
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_string_equal(f, "ikev2_unexpected_exchange");
}

static void notify_with_zero_spi_is_accepted_and_named(void **state)
{
    const unsigned char zero[8] = {0};
    const unsigned char inv_ke[] = {0, 0, 0, 10, 0, 0, 0, 17, 0, 14};
    unsigned char m[128];
    size_t n = response(m, zero, inv_ke, sizeof(inv_ke), 41);
    vt_ikev2_opts o = {0};
    vt_ikev2_reply r;
    char f[128];
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_OK);
    assert_int_equal(r.error_notify, VT_IKE_N_INVALID_KE_PAYLOAD);
    assert_int_equal(r.invalid_ke_group, 14);
    assert_string_equal(vt_ikev2_notify_name(r.error_notify), "INVALID_KE_PAYLOAD");

    const unsigned char npc[] = {0, 0, 0, 8, 0, 0, 0, 14};
    n = response(m, zero, npc, sizeof(npc), 41);
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_OK);
    assert_string_equal(vt_ikev2_notify_name(r.error_notify), "NO_PROPOSAL_CHOSEN");

    /* No payload and a zero SPIr says nothing. */
    n = response(m, zero, NULL, 0, 0);
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_string_equal(f, "ikev2_empty_response");
}

static void hostile_replies_fail_cleanly(void **state)
{
    const unsigned char spir[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    const unsigned char npc[] = {0, 0, 0, 8, 0, 0, 0, 14};
    unsigned char m[4096];
    size_t n = response(m, spir, npc, sizeof(npc), 41);
    vt_ikev2_opts o = {0}, natt = {.natt = 1};
    vt_ikev2_reply r;
    char f[128];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, i, &r, f, sizeof(f)), VT_IKE_BAD);
    /* A payload length running past the message, or zero (a loop). */
    m[28 + 3] = 200;
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_string_equal(f, "ikev2_bad_payload_length");
    m[28 + 3] = 0;
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    /* A payload chain pointing at itself forever stops. */
    m[28 + 3] = 8;
    m[28] = 41;
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    /* Header length larger than the datagram; oversized datagram. */
    n = response(m, spir, npc, sizeof(npc), 41);
    m[26] = 0x10;
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, n, &r, f, sizeof(f)), VT_IKE_BAD);
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, m, sizeof(m), &r, f, sizeof(f)), VT_IKE_BAD);
    assert_int_equal(vt_ikev2_parse_reply(&o, SPI, NULL, 0, &r, f, sizeof(f)), VT_IKE_BAD);
    /* Random bodies behind a valid header: no crash; an SA proposal with silly lengths. */
    srand(3);
    for (int round = 0; round < 20000; round++) {
        size_t len = 28 + (size_t)(rand() % 200);
        for (size_t i = 0; i < len; i++)
            m[i] = (unsigned char)rand();
        response(m, spir, m + 28, 0, 33 + rand() % 9);
        m[26] = (unsigned char)(len >> 8);
        m[27] = (unsigned char)len;
        vt_ikev2_parse_reply(&o, SPI, m, len, &r, f, sizeof(f));
        vt_ikev2_parse_reply(&natt, SPI, m, len, &r, f, sizeof(f));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sa_init_request_is_well_formed_for_each_group),
        cmocka_unit_test(natt_request_starts_with_non_esp_marker),
        cmocka_unit_test(responder_sa_with_nonzero_spi_is_accepted),
        cmocka_unit_test(notify_with_zero_spi_is_accepted_and_named),
        cmocka_unit_test(hostile_replies_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
