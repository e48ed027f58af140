/* WireGuard handshake: known answers for the primitives, both sides of Noise_IKpsk2 agreeing,
 * and hostile replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "vantage/wireguard.h"

static void hex(const char *s, unsigned char *out)
{
    for (size_t i = 0; s[2 * i]; i++)
        sscanf(s + 2 * i, "%2hhx", &out[i]);
}

/* BLAKE2s-256("abc") from RFC 7693 appendix B, and the RFC 7748 X25519 test keys (Alice's
 * private key gives her public key): the primitives are the ones WireGuard means. */
static void primitives_match_published_vectors(void **state)
{
    unsigned char d[32], want[32];
    unsigned int dl = 0;
    EVP_Digest("abc", 3, d, &dl, EVP_blake2s256(), NULL);
    hex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", want);
    assert_memory_equal(d, want, 32);

    unsigned char priv[32], pub[32];
    hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", priv);
    hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", want);
    assert_int_equal(vt_wg_public_key(priv, pub), 0);
    assert_memory_equal(pub, want, 32);
}

/* A known answer from an independent implementation: with these fixed keys, ephemeral key and
 * timestamp, our initiation is byte for byte the one wireguard-go 0.0.20220316 (Debian) accepted,
 * and RESP is what it answered (its own random ephemeral inside). Captured on loopback with
 * `wg set ... peer <client pub> preshared-key <psk>`. */
static const char KAT_TS[] = "400000006b0ad2f500000000";
static const char KAT_INIT[] = "0100000004030201bb50ff9e82a574cfbf820e97f60fb9c143ec7415cf514f8c"
                               "fd98eff59e0596149c8012d193b4aa851af47ce34a5618c7c0673c2dccf004ae"
                               "5a2c863e7f8f9187d0f07eebcb322940999de3c569990484d08d25afbc800ef2"
                               "57670945dbdce4f278733294a1ea1b235ef6b1fe29e5124f3251bc3265af38bd"
                               "c62389a400000000000000000000000000000000";
static const char KAT_RESP[] = "02000000fb1a9b55040302012917594fd72bd2c6368cc88793b48bd3a76d90df"
                               "a827efd74ba682015cebc07e6d3cbebb7529c30f388b9ffb3264fe8e3f811f2d"
                               "5350ae3a528a5a388aa93a1c00000000000000000000000000000000";

static void kat_key(unsigned char *k, int seed)
{
    for (int i = 0; i < 32; i++)
        k[i] = (unsigned char)(seed + 7 * i);
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
}

static void wireguard_go_known_answer(void **state)
{
    unsigned char cpriv[32], spriv[32], epriv[32], spub[32], cpub[32], psk[32], ts[12];
    unsigned char init[VT_WG_INIT_LEN], resp[VT_WG_RESP_LEN];
    char err[128], f[128];
    kat_key(cpriv, 1);
    kat_key(spriv, 2);
    kat_key(epriv, 3);
    for (int i = 0; i < 32; i++)
        psk[i] = (unsigned char)(0xa0 + i);
    vt_wg_public_key(spriv, spub);
    vt_wg_public_key(cpriv, cpub);
    hex(KAT_TS, ts);
    hex(KAT_INIT, init);
    hex(KAT_RESP, resp);
    vt_wg_handshake hs;
    assert_int_equal(
        vt_wg_build_initiation_eph(&hs, cpriv, spub, psk, 0x01020304, ts, epriv, err, sizeof(err)),
        0);
    assert_memory_equal(hs.msg, init, VT_WG_INIT_LEN);
    vt_wg_reply r;
    assert_int_equal(vt_wg_parse_reply(&hs, resp, sizeof(resp), &r, f, sizeof(f)), VT_WG_OK);
    assert_true(r.authenticated);
    assert_int_equal(r.receiver_index, 0x01020304);
    /* Our responder reads the accepted initiation the way wireguard-go did. */
    vt_wg_responder st;
    assert_int_equal(vt_wg_responder_consume(&st, spriv, psk, init, sizeof(init), err, sizeof(err)),
                     0);
    assert_memory_equal(st.init_static, cpub, 32);
    assert_memory_equal(st.timestamp, ts, 12);
    /* Without the PSK the same answer does not authenticate. */
    assert_int_equal(
        vt_wg_build_initiation_eph(&hs, cpriv, spub, NULL, 0x01020304, ts, epriv, err, sizeof(err)),
        0);
    assert_int_equal(vt_wg_parse_reply(&hs, resp, sizeof(resp), &r, f, sizeof(f)), VT_WG_BAD);
}

static void keys_round_trip_through_base64(void **state)
{
    unsigned char k[32], back[32];
    char b64[45], err[128];
    for (int i = 0; i < 32; i++)
        k[i] = (unsigned char)(i * 13);
    vt_wg_key_to_base64(k, b64);
    assert_int_equal(strlen(b64), 44);
    assert_int_equal(vt_wg_key_from_base64(b64, back, err, sizeof(err)), 0);
    assert_memory_equal(k, back, 32);
    assert_int_equal(vt_wg_key_from_base64("short", back, err, sizeof(err)), -1);
    assert_int_equal(vt_wg_key_from_base64(NULL, back, err, sizeof(err)), -1);
    b64[5] = '*';
    assert_int_equal(vt_wg_key_from_base64(b64, back, err, sizeof(err)), -1);
}

typedef struct pair {
    unsigned char cpriv[32], cpub[32], spriv[32], spub[32], psk[32];
} pair;

static void make_pair(pair *p)
{
    assert_int_equal(vt_wg_generate_private(p->cpriv), 0);
    assert_int_equal(vt_wg_generate_private(p->spriv), 0);
    assert_int_equal(vt_wg_public_key(p->cpriv, p->cpub), 0);
    assert_int_equal(vt_wg_public_key(p->spriv, p->spub), 0);
    for (int i = 0; i < 32; i++)
        p->psk[i] = (unsigned char)(0x40 + i);
}

static void initiation_is_148_bytes_with_zero_mac2(void **state)
{
    pair p;
    make_pair(&p);
    vt_wg_handshake hs;
    char err[128];
    assert_int_equal(
        vt_wg_build_initiation(&hs, p.cpriv, p.spub, NULL, 0x11223344, NULL, err, sizeof(err)), 0);
    const unsigned char head[8] = {1, 0, 0, 0, 0x44, 0x33, 0x22, 0x11};
    assert_memory_equal(hs.msg, head, 8);
    assert_memory_equal(hs.msg + 8, hs.eph_pub, 32);
    unsigned char zero[16] = {0};
    assert_memory_equal(hs.msg + 132, zero, 16);
    assert_memory_not_equal(hs.msg + 116, zero, 16);
    /* The static key travels encrypted. */
    assert_memory_not_equal(hs.msg + 40, p.cpub, 32);
    vt_wg_handshake_clear(&hs);
}

static void responder_accepts_initiation_and_initiator_accepts_response(void **state)
{
    pair p;
    make_pair(&p);
    for (int with_psk = 0; with_psk < 2; with_psk++) {
        vt_wg_handshake hs;
        char err[128];
        unsigned char ts[12] = {0x40, 0, 0, 0, 0x6a, 0x12, 0x34, 0x56, 0, 0, 0, 7};
        const unsigned char *psk = with_psk ? p.psk : NULL;
        assert_int_equal(
            vt_wg_build_initiation(&hs, p.cpriv, p.spub, psk, 77, ts, err, sizeof(err)), 0);
        vt_wg_responder st;
        assert_int_equal(
            vt_wg_responder_consume(&st, p.spriv, psk, hs.msg, VT_WG_INIT_LEN, err, sizeof(err)),
            0);
        assert_memory_equal(st.init_static, p.cpub, 32);
        assert_memory_equal(st.timestamp, ts, 12);
        assert_int_equal(st.init_index, 77);
        unsigned char resp[VT_WG_RESP_LEN];
        assert_int_equal(vt_wg_responder_respond(&st, 0xabcdef01, resp, err, sizeof(err)), 0);
        assert_int_equal(resp[0], 2);
        vt_wg_reply r;
        char f[128];
        assert_int_equal(vt_wg_parse_reply(&hs, resp, sizeof(resp), &r, f, sizeof(f)), VT_WG_OK);
        assert_true(r.authenticated);
        assert_int_equal(r.sender_index, 0xabcdef01);
        assert_int_equal(r.receiver_index, 77);

        /* Every single flipped bit of the response is caught. */
        for (size_t i = 0; i < 76; i++) {
            resp[i] ^= 0x10;
            assert_int_equal(vt_wg_parse_reply(&hs, resp, sizeof(resp), &r, f, sizeof(f)),
                             VT_WG_BAD);
            resp[i] ^= 0x10;
        }
    }
}

static void response_from_wrong_server_key_or_psk_fails(void **state)
{
    pair p, q;
    make_pair(&p);
    make_pair(&q);
    vt_wg_handshake hs;
    char err[128], f[128];
    assert_int_equal(vt_wg_build_initiation(&hs, p.cpriv, p.spub, p.psk, 5, NULL, err, sizeof(err)),
                     0);
    vt_wg_responder st;
    /* A server with another key rejects the mac1. */
    assert_int_equal(
        vt_wg_responder_consume(&st, q.spriv, NULL, hs.msg, VT_WG_INIT_LEN, err, sizeof(err)), -1);
    /* The right server with a different PSK answers, but the answer does not authenticate. */
    assert_int_equal(
        vt_wg_responder_consume(&st, p.spriv, NULL, hs.msg, VT_WG_INIT_LEN, err, sizeof(err)), 0);
    unsigned char resp[VT_WG_RESP_LEN];
    assert_int_equal(vt_wg_responder_respond(&st, 9, resp, err, sizeof(err)), 0);
    vt_wg_reply r;
    assert_int_equal(vt_wg_parse_reply(&hs, resp, sizeof(resp), &r, f, sizeof(f)), VT_WG_BAD);
    assert_string_equal(f, "wireguard_decrypt_error");
}

/* HChaCha20's test vector (draft-irtf-cfrg-xchacha-03, 2.2.1). */
static void hchacha20_known_answer(void **state)
{
    unsigned char key[32], out[32];
    static const unsigned char nonce[16] = {0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x4a,
                                            0x00, 0x00, 0x00, 0x00, 0x31, 0x41, 0x59, 0x27};
    static const unsigned char want[32] = {0x82, 0x41, 0x3b, 0x42, 0x27, 0xb2, 0x7b, 0xfe,
                                           0xd3, 0x0e, 0x42, 0x50, 0x8a, 0x87, 0x7d, 0x73,
                                           0xa0, 0xf9, 0xe4, 0xd5, 0x8a, 0x74, 0xa8, 0x53,
                                           0xc1, 0x2e, 0xc4, 0x13, 0x26, 0xd3, 0xec, 0xdc};
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    assert_int_equal(vt_wg_hchacha20(key, nonce, out), 0);
    assert_memory_equal(out, want, 32);
}

/* A cookie reply counts only when the server's key encrypted it for our initiation: a reply of
 * the right shape carrying our index but random bytes (a reflector, a middlebox that learned
 * the index) is not one, nor a real one for another initiation or from another key. */
static void cookie_reply_is_authenticated(void **state)
{
    pair p, other;
    make_pair(&p);
    make_pair(&other);
    vt_wg_handshake hs, hs2;
    char err[128], f[128];
    assert_int_equal(
        vt_wg_build_initiation(&hs, p.cpriv, p.spub, NULL, 0x01020304, NULL, err, sizeof(err)), 0);
    assert_int_equal(
        vt_wg_build_initiation(&hs2, p.cpriv, p.spub, NULL, 0x01020304, NULL, err, sizeof(err)), 0);
    unsigned char cookie[16], nonce[24], c[VT_WG_COOKIE_LEN];
    memset(cookie, 0x5a, sizeof(cookie));
    for (int i = 0; i < 24; i++)
        nonce[i] = (unsigned char)(100 + i);
    assert_int_equal(vt_wg_cookie_reply(p.spub, hs.msg, VT_WG_INIT_LEN, cookie, nonce, c), 0);
    assert_int_equal(c[0], 3);
    vt_wg_reply r;
    assert_int_equal(vt_wg_parse_reply(&hs, c, sizeof(c), &r, f, sizeof(f)), VT_WG_COOKIE);
    assert_int_equal(r.receiver_index, 0x01020304);
    /* the same reply for another initiation (another mac1): not ours */
    assert_int_equal(vt_wg_parse_reply(&hs2, c, sizeof(c), &r, f, sizeof(f)), VT_WG_BAD);
    assert_string_equal(f, "wireguard_bad_cookie");
    /* any bit changed */
    for (int i = 8; i < VT_WG_COOKIE_LEN; i += 7) {
        c[i] ^= 1;
        assert_int_equal(vt_wg_parse_reply(&hs, c, sizeof(c), &r, f, sizeof(f)), VT_WG_BAD);
        assert_string_equal(f, "wireguard_bad_cookie");
        c[i] ^= 1;
    }
    /* encrypted under another server's key */
    assert_int_equal(vt_wg_cookie_reply(other.spub, hs.msg, VT_WG_INIT_LEN, cookie, nonce, c), 0);
    assert_int_equal(vt_wg_parse_reply(&hs, c, sizeof(c), &r, f, sizeof(f)), VT_WG_BAD);
    /* our index with random bytes, as a reflector could send */
    unsigned char junk[VT_WG_COOKIE_LEN] = {3, 0, 0, 0, 4, 3, 2, 1};
    for (int i = 8; i < VT_WG_COOKIE_LEN; i++)
        junk[i] = (unsigned char)(i * 37);
    assert_int_equal(vt_wg_parse_reply(&hs, junk, sizeof(junk), &r, f, sizeof(f)), VT_WG_BAD);
    assert_string_equal(f, "wireguard_bad_cookie");
    junk[4] = 9;
    assert_int_equal(vt_wg_parse_reply(&hs, junk, sizeof(junk), &r, f, sizeof(f)), VT_WG_BAD);
    assert_string_equal(f, "wireguard_wrong_receiver_index");
    /* not an initiation */
    assert_int_equal(vt_wg_cookie_reply(p.spub, junk, sizeof(junk), cookie, nonce, c), -1);
    vt_wg_handshake_clear(&hs);
    vt_wg_handshake_clear(&hs2);
}

static void hostile_replies_fail_cleanly(void **state)
{
    pair p;
    make_pair(&p);
    vt_wg_handshake hs;
    char err[128], f[128];
    assert_int_equal(vt_wg_build_initiation(&hs, p.cpriv, p.spub, NULL, 1, NULL, err, sizeof(err)),
                     0);
    vt_wg_reply r;
    unsigned char buf[2048];
    assert_int_equal(vt_wg_parse_reply(&hs, NULL, 0, &r, f, sizeof(f)), VT_WG_BAD);
    /* Our own initiation reflected back. */
    assert_int_equal(vt_wg_parse_reply(&hs, hs.msg, VT_WG_INIT_LEN, &r, f, sizeof(f)), VT_WG_BAD);
    /* Right type and index, right length, random rest. */
    srand(7);
    for (int round = 0; round < 3000; round++) {
        size_t len = round % 2 ? VT_WG_RESP_LEN : (size_t)(rand() % sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rand();
        if (len >= 12) {
            buf[0] = (unsigned char)(2 + round % 3 % 2);
            buf[1] = buf[2] = buf[3] = 0;
            memcpy(buf + 8, "\x01\0\0\0", 4);
        }
        assert_int_not_equal(vt_wg_parse_reply(&hs, buf, len, &r, f, sizeof(f)), VT_WG_OK);
    }
    /* An all-zero ephemeral (a low-order point) is refused, not crashed on. */
    memset(buf, 0, VT_WG_RESP_LEN);
    buf[0] = 2;
    buf[8] = 1;
    assert_int_equal(vt_wg_parse_reply(&hs, buf, VT_WG_RESP_LEN, &r, f, sizeof(f)), VT_WG_BAD);
    /* The responder is just as careful with what it is given. */
    vt_wg_responder st;
    assert_int_equal(vt_wg_responder_consume(&st, p.spriv, NULL, buf, 10, err, sizeof(err)), -1);
    assert_int_equal(vt_wg_responder_consume(&st, p.spriv, NULL, NULL, 148, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(primitives_match_published_vectors),
        cmocka_unit_test(wireguard_go_known_answer),
        cmocka_unit_test(keys_round_trip_through_base64),
        cmocka_unit_test(initiation_is_148_bytes_with_zero_mac2),
        cmocka_unit_test(responder_accepts_initiation_and_initiator_accepts_response),
        cmocka_unit_test(response_from_wrong_server_key_or_psk_fails),
        cmocka_unit_test(hchacha20_known_answer),
        cmocka_unit_test(cookie_reply_is_authenticated),
        cmocka_unit_test(hostile_replies_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
