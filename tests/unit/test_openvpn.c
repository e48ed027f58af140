/* OpenVPN hard reset: the bytes we send, the replies we accept, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "vantage/openvpn.h"

static const unsigned char SID[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const unsigned char SRV_SID[8] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8};

static void test_key(unsigned char key[256])
{
    for (int i = 0; i < 256; i++)
        key[i] = (unsigned char)(i * 7 + 3);
}

static char *key_file_text(const unsigned char key[256])
{
    char *s = malloc(4096), *p = s;
    p += sprintf(p, "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n");
    for (int i = 0; i < 256; i++) {
        p += sprintf(p, "%02x", key[i]);
        if (i % 16 == 15) *p++ = '\n';
    }
    sprintf(p, "-----END OpenVPN Static key V1-----\n");
    return s;
}

static void reset_without_tls_auth_is_14_bytes(void **state)
{
    vt_openvpn_opts o = {.key_direction = VT_OVPN_KEYDIR_NONE};
    unsigned char out[128];
    size_t n = 0;
    char err[128];
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), 0);
    const unsigned char want[14] = {0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0};
    assert_int_equal(n, 14);
    assert_memory_equal(out, want, 14);
}

static void reset_over_tcp_has_length_prefix(void **state)
{
    vt_openvpn_opts o = {.tcp = 1, .key_direction = VT_OVPN_KEYDIR_NONE};
    unsigned char out[128];
    size_t n = 0;
    char err[128];
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 16);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 14);
    assert_int_equal(out[2], 0x38);
}

/* The HMAC, computed here independently: key-direction 1 sends with the second key's HMAC half
 * (bytes 192..), over [packet id][time][op][sid][ack len][message packet id]. */
static void reset_with_tls_auth_carries_openvpn_hmac(void **state)
{
    unsigned char key[256];
    test_key(key);
    vt_openvpn_opts o = {
        .tls_auth = key, .key_direction = 1, .packet_id = 1, .net_time = 0x5f000000};
    unsigned char out[128];
    size_t n = 0;
    char err[128];
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1 + 8 + 20 + 8 + 1 + 4);
    assert_int_equal(out[0], 0x38);
    assert_memory_equal(out + 1, SID, 8);
    const unsigned char pid[8] = {0, 0, 0, 1, 0x5f, 0, 0, 0};
    assert_memory_equal(out + 29, pid, 8);
    unsigned char msg[8 + 9 + 5], mac[20];
    memcpy(msg, pid, 8);
    memcpy(msg + 8, out, 9);
    memset(msg + 17, 0, 5);
    unsigned int ml = 0;
    HMAC(EVP_sha1(), key + 192, 20, msg, sizeof(msg), mac, &ml);
    assert_memory_equal(out + 9, mac, 20);

    /* SHA256 and SHA512 change the HMAC length; an unknown digest is refused. */
    o.auth_digest = "SHA256";
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 9 + 32 + 8 + 5);
    o.auth_digest = "SHA512";
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 9 + 64 + 8 + 5);
    o.auth_digest = "MD4";
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), -1);
    /* A buffer too small is an error, not an overflow. */
    o.auth_digest = NULL;
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, 20, &n, err, sizeof(err)), -1);
}

/* What an OpenVPN server sends back: reset with an ack of our packet 0 and our session id. */
static size_t server_reply(unsigned char *p, const unsigned char *key, int server_keydir)
{
    size_t n = 0;
    p[n++] = 0x40;
    memcpy(p + n, SRV_SID, 8);
    n += 8;
    size_t macoff = n;
    if (key) n += 20 + 8;
    p[n++] = 1;
    memset(p + n, 0, 4);
    n += 4;
    memcpy(p + n, SID, 8);
    n += 8;
    memset(p + n, 0, 4);
    n += 4;
    if (key) {
        const unsigned char pid[8] = {0, 0, 0, 1, 0x5f, 0, 0, 1};
        memcpy(p + macoff + 20, pid, 8);
        unsigned char msg[256], mac[20];
        memcpy(msg, pid, 8);
        memcpy(msg + 8, p, 9);
        memcpy(msg + 17, p + macoff + 28, n - macoff - 28);
        unsigned int ml = 0;
        /* The server sends with key index 0 (key-direction 0). */
        HMAC(EVP_sha1(), key + (server_keydir == 1 ? 192 : 64), 20, msg, 17 + n - macoff - 28, mac,
             &ml);
        memcpy(p + macoff, mac, 20);
    }
    return n;
}

static void server_reset_acking_our_session_is_accepted(void **state)
{
    vt_openvpn_opts o = {.key_direction = VT_OVPN_KEYDIR_NONE};
    unsigned char buf[128];
    size_t n = server_reply(buf, NULL, 0);
    assert_int_equal(n, 26);
    vt_openvpn_reply r;
    char f[128];
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_OK);
    assert_int_equal(r.opcode, 8);
    assert_memory_equal(r.server_sid, SRV_SID, 8);
    assert_true(r.acked_our_packet);
    assert_true(r.echoed_session_id);

    /* Someone else's session id: refused. */
    unsigned char other[8] = {9};
    assert_int_equal(vt_openvpn_parse_reply(&o, other, buf, n, &r, f, sizeof(f)), VT_OVPN_BAD);
    assert_string_equal(f, "openvpn_wrong_session_id");

    /* A client reset echoed back (a reflector) is not a server's answer. */
    buf[0] = 0x38;
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_BAD);
    assert_string_equal(f, "openvpn_unexpected_opcode_7");
}

static void server_reset_over_tcp_needs_whole_packet(void **state)
{
    vt_openvpn_opts o = {.tcp = 1, .key_direction = VT_OVPN_KEYDIR_NONE};
    unsigned char buf[130];
    size_t n = server_reply(buf + 2, NULL, 0);
    buf[0] = 0;
    buf[1] = (unsigned char)n;
    vt_openvpn_reply r;
    char f[128];
    for (size_t i = 0; i < n + 2; i++)
        assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, i, &r, f, sizeof(f)),
                         VT_OVPN_NEED_MORE);
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n + 2, &r, f, sizeof(f)), VT_OVPN_OK);
    assert_int_equal(r.consumed, n + 2);
    buf[0] = 0xff; /* 65 KB announced: refused at once */
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, 4, &r, f, sizeof(f)), VT_OVPN_BAD);
}

static void tls_auth_reply_is_verified(void **state)
{
    unsigned char key[256];
    test_key(key);
    vt_openvpn_opts o = {.tls_auth = key, .key_direction = 1};
    unsigned char buf[128];
    size_t n = server_reply(buf, key, 0);
    vt_openvpn_reply r;
    char f[128];
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_OK);
    assert_true(r.hmac_checked);
    /* One flipped bit anywhere after the HMAC: refused. */
    buf[n - 1] ^= 1;
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_BAD);
    assert_string_equal(f, "openvpn_bad_hmac");
    /* Signed with the wrong direction: refused. */
    n = server_reply(buf, key, 1);
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_BAD);
    /* Without key-direction both sides use the first key. */
    o.key_direction = VT_OVPN_KEYDIR_NONE;
    n = server_reply(buf, key, 0);
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_OK);
}

static void truncated_and_garbage_replies_fail_cleanly(void **state)
{
    unsigned char key[256];
    test_key(key);
    vt_openvpn_opts plain = {.key_direction = VT_OVPN_KEYDIR_NONE};
    vt_openvpn_opts ta = {.tls_auth = key, .key_direction = 1};
    unsigned char buf[128];
    size_t n = server_reply(buf, NULL, 0);
    vt_openvpn_reply r;
    char f[128];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(vt_openvpn_parse_reply(&plain, SID, buf, i, &r, f, sizeof(f)),
                         VT_OVPN_BAD);
        assert_true(f[0] != 0);
    }
    n = server_reply(buf, key, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(vt_openvpn_parse_reply(&ta, SID, buf, i, &r, f, sizeof(f)), VT_OVPN_BAD);
    assert_int_equal(vt_openvpn_parse_reply(&plain, SID, NULL, 5, &r, f, sizeof(f)), VT_OVPN_BAD);
    /* An ack array longer than OpenVPN allows. */
    n = server_reply(buf, NULL, 0);
    buf[9] = 200;
    assert_int_equal(vt_openvpn_parse_reply(&plain, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_BAD);
    assert_string_equal(f, "openvpn_bad_ack_array");
    /* Oversized datagram. */
    unsigned char *big = calloc(1, 70000);
    big[0] = 0x40;
    assert_int_equal(vt_openvpn_parse_reply(&plain, SID, big, 70000, &r, f, sizeof(f)),
                     VT_OVPN_BAD);
    assert_int_equal(vt_openvpn_parse_reply(&ta, SID, big, VT_OVPN_MAX_PACKET, &r, f, sizeof(f)),
                     VT_OVPN_BAD);
    free(big);
    /* Random bytes: never accepted, never a crash. */
    srand(5);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % 80);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rand();
        if (round % 3 == 0) buf[0] = 0x40;
        assert_int_not_equal(vt_openvpn_parse_reply(&ta, SID, buf, len, &r, f, sizeof(f)),
                             VT_OVPN_OK);
        vt_openvpn_parse_reply(&plain, SID, buf, len, &r, f, sizeof(f));
    }
}

static void ack_alone_means_wait(void **state)
{
    vt_openvpn_opts o = {.key_direction = VT_OVPN_KEYDIR_NONE};
    unsigned char buf[64] = {0x28, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 1, 0, 0, 0, 0};
    memcpy(buf + 14, SID, 8);
    vt_openvpn_reply r;
    char f[128];
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, 22, &r, f, sizeof(f)), VT_OVPN_OTHER);
    assert_true(r.echoed_session_id);
}

/* tls-crypt as OpenVPN's tls_crypt.c does it, written here independently: the server wraps
 * with the first key (AES-256-CTR key = bytes 0..31, HMAC-SHA256 key = bytes 64..95). */
static size_t server_reply_tls_crypt(unsigned char *out, const unsigned char key[256])
{
    unsigned char plain[64];
    size_t n = server_reply(plain, NULL, 0); /* op, sid, acks, msg pid: 26 bytes */
    const unsigned char pid[8] = {0, 0, 0, 1, 0x5f, 0, 0, 2};
    memcpy(out, plain, 9);
    memcpy(out + 9, pid, 8);
    unsigned char mac_in[128];
    memcpy(mac_in, out, 17);
    memcpy(mac_in + 17, plain + 9, n - 9);
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key + 64, 32, mac_in, 17 + n - 9, out + 17, &ml);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, out + 17);
    EVP_EncryptUpdate(c, out + 49, &l, plain + 9, (int)(n - 9));
    EVP_CIPHER_CTX_free(c);
    return 49 + n - 9;
}

static void tls_crypt_reset_and_reply(void **state)
{
    unsigned char key[256];
    test_key(key);
    vt_openvpn_opts o = {.tls_crypt = key,
                         .key_direction = VT_OVPN_KEYDIR_NONE,
                         .packet_id = 1,
                         .net_time = 0x5f000000};
    unsigned char out[128];
    size_t n = 0;
    char err[128];
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 9 + 8 + 32 + 5);
    assert_int_equal(out[0], 0x38);
    /* The client's tag: HMAC-SHA256 with the second key's HMAC half over header || plaintext,
     * and the plaintext (5 zero bytes) is not sent in clear. */
    unsigned char mac_in[22] = {0}, tag[32];
    memcpy(mac_in, out, 17);
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key + 192, 32, mac_in, sizeof(mac_in), tag, &ml);
    assert_memory_equal(out + 17, tag, 32);
    unsigned char ct[5];
    int l = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key + 128, tag);
    EVP_EncryptUpdate(c, ct, &l, mac_in + 17, 5);
    EVP_CIPHER_CTX_free(c);
    assert_memory_equal(out + 49, ct, 5);
    /* Both: refused. */
    o.tls_auth = key;
    assert_int_equal(vt_openvpn_build_reset(&o, SID, out, sizeof(out), &n, err, sizeof(err)), -1);
    o.tls_auth = NULL;

    unsigned char buf[128];
    n = server_reply_tls_crypt(buf, key);
    vt_openvpn_reply r;
    char f[128];
    assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_OK);
    assert_true(r.hmac_checked);
    assert_memory_equal(r.server_sid, SRV_SID, 8);
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x01;
        assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, n, &r, f, sizeof(f)), VT_OVPN_BAD);
        buf[i] ^= 0x01;
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(vt_openvpn_parse_reply(&o, SID, buf, i, &r, f, sizeof(f)), VT_OVPN_BAD);
}

static void static_key_file_parses(void **state)
{
    unsigned char key[256], got[256];
    test_key(key);
    char *text = key_file_text(key);
    char err[256];
    assert_int_equal(vt_openvpn_parse_static_key(text, strlen(text), got, err, sizeof(err)), 0);
    assert_memory_equal(got, key, 256);

    /* CRLF line ends are fine. */
    char *crlf = malloc(8192), *q = crlf;
    for (char *p = text; *p; p++) {
        if (*p == '\n') *q++ = '\r';
        *q++ = *p;
    }
    *q = 0;
    assert_int_equal(vt_openvpn_parse_static_key(crlf, strlen(crlf), got, err, sizeof(err)), 0);
    free(crlf);

    /* Missing END, short key, bad character, no BEGIN: each refused with a message. */
    char *end = strstr(text, "-----END");
    char saved = *end;
    *end = 0;
    assert_int_equal(vt_openvpn_parse_static_key(text, strlen(text), got, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "END"));
    *end = saved;
    char *body = strstr(text, "V1-----\n") + 8;
    memmove(body, body + 33, strlen(body + 33) + 1);
    assert_int_equal(vt_openvpn_parse_static_key(text, strlen(text), got, err, sizeof(err)), -1);
    free(text);
    text = key_file_text(key);
    strstr(text, "V1-----\n")[8] = 'z';
    assert_int_equal(vt_openvpn_parse_static_key(text, strlen(text), got, err, sizeof(err)), -1);
    assert_int_equal(vt_openvpn_parse_static_key("hello", 5, got, err, sizeof(err)), -1);
    assert_int_equal(vt_openvpn_parse_static_key(NULL, 0, got, err, sizeof(err)), -1);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reset_without_tls_auth_is_14_bytes),
        cmocka_unit_test(reset_over_tcp_has_length_prefix),
        cmocka_unit_test(reset_with_tls_auth_carries_openvpn_hmac),
        cmocka_unit_test(server_reset_acking_our_session_is_accepted),
        cmocka_unit_test(server_reset_over_tcp_needs_whole_packet),
        cmocka_unit_test(tls_auth_reply_is_verified),
        cmocka_unit_test(truncated_and_garbage_replies_fail_cleanly),
        cmocka_unit_test(ack_alone_means_wait),
        cmocka_unit_test(tls_crypt_reset_and_reply),
        cmocka_unit_test(static_key_file_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
