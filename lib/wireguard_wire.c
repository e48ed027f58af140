/* WireGuard's Noise_IKpsk2 handshake messages (whitepaper section 5.4) on OpenSSL primitives. */
#include "vantage/wireguard.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char CONSTRUCTION[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char IDENTIFIER[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
static const char LABEL_MAC1[] = "mac1----";
static const char LABEL_COOKIE[] = "cookie--";

/* Offsets in the initiation. */
#define I_SENDER 4
#define I_EPH 8
#define I_STATIC 40
#define I_TS 88
#define I_MAC1 116
#define I_MAC2 132
/* Offsets in the response. */
#define R_SENDER 4
#define R_RECEIVER 8
#define R_EPH 12
#define R_EMPTY 44
#define R_MAC1 60
#define R_MAC2 76

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* HASH(a || b) with BLAKE2s-256. */
static int hash2(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int olen = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_blake2s256(), NULL) && EVP_DigestUpdate(c, a, alen) &&
             (!blen || EVP_DigestUpdate(c, b, blen)) && EVP_DigestFinal_ex(c, out, &olen) &&
             olen == 32;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

/* HMAC-BLAKE2s(key, a || b). */
static int hmac(const unsigned char key[32], const void *a, size_t alen, const void *b, size_t blen,
                unsigned char out[32])
{
    unsigned char buf[64];
    if (alen + blen > sizeof(buf)) return -1;
    memcpy(buf, a, alen);
    if (blen) memcpy(buf + alen, b, blen);
    unsigned int olen = 0;
    int ok = HMAC(EVP_blake2s256(), key, 32, buf, alen + blen, out, &olen) && olen == 32;
    OPENSSL_cleanse(buf, sizeof(buf));
    return ok ? 0 : -1;
}

/* WireGuard's KDF_n: temp = HMAC(ck, input); out1 = HMAC(temp, 1); out_i = HMAC(temp, out_i-1||i).
 * out1 (the new chaining key) may alias ck. */
static int kdf(unsigned char ck[32], const unsigned char *input, size_t ilen, unsigned char *out1,
               unsigned char *out2, unsigned char *out3)
{
    unsigned char temp[32], o1[32], o2[32], o3[32];
    static const unsigned char one = 1, two = 2, three = 3;
    int rc = -1;
    if (hmac(ck, input, ilen, NULL, 0, temp) < 0 || hmac(temp, &one, 1, NULL, 0, o1) < 0) goto done;
    if ((out2 || out3) && hmac(temp, o1, 32, &two, 1, o2) < 0) goto done;
    if (out3 && hmac(temp, o2, 32, &three, 1, o3) < 0) goto done;
    memcpy(out1, o1, 32);
    if (out2) memcpy(out2, o2, 32);
    if (out3) memcpy(out3, o3, 32);
    rc = 0;
done:
    OPENSSL_cleanse(temp, sizeof(temp));
    OPENSSL_cleanse(o1, sizeof(o1));
    OPENSSL_cleanse(o2, sizeof(o2));
    OPENSSL_cleanse(o3, sizeof(o3));
    return rc;
}

/* Keyed BLAKE2s with a 16-byte output (mac1). */
static int mac16(const unsigned char key[32], const unsigned char *data, size_t len,
                 unsigned char out[16])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    size_t size = 16, olen = 0;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    int ok = c && EVP_MAC_init(c, key, 32, params) && EVP_MAC_update(c, data, len) &&
             EVP_MAC_final(c, out, &olen, 16) && olen == 16;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return ok ? 0 : -1;
}

/* ChaCha20-Poly1305 with counter 0 (all-zero nonce); out gets ptlen + 16 bytes. */
static int aead_seal(const unsigned char key[32], const unsigned char *pt, size_t ptlen,
                     const unsigned char ad[32], unsigned char *out)
{
    unsigned char nonce[12] = {0};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = c && EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce) &&
                      EVP_EncryptUpdate(c, NULL, &len, ad, 32) &&
                      (!ptlen || EVP_EncryptUpdate(c, out, &len, pt, (int)ptlen)) &&
                      EVP_EncryptFinal_ex(c, out + ptlen, &len) &&
                      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + ptlen) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static int aead_open(const unsigned char key[32], const unsigned char *ct, size_t ctlen,
                     const unsigned char ad[32], unsigned char *out)
{
    unsigned char nonce[12] = {0}, tag[16];
    if (ctlen < 16) return -1;
    size_t ptlen = ctlen - 16;
    memcpy(tag, ct + ptlen, 16);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = c && EVP_DecryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce) &&
                      EVP_DecryptUpdate(c, NULL, &len, ad, 32) &&
                      (!ptlen || EVP_DecryptUpdate(c, out, &len, ct, (int)ptlen)) &&
                      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1 &&
                      EVP_DecryptFinal_ex(c, out + ptlen, &len) > 0;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

/* HChaCha20 (draft-irtf-cfrg-xchacha): the ChaCha20 rounds over (constants, key, n16) without the
 * final addition; words 0-3 and 12-15. One ChaCha20 block from OpenSSL with n16 as its 16-byte
 * IV (counter and nonce: state words 12-15) is those rounds plus the input, so subtracting the
 * input gives it without a second ChaCha implementation here. */
static int hchacha20(const unsigned char key[32], const unsigned char n16[16],
                     unsigned char out[32])
{
    static const unsigned char zero[64];
    static const uint32_t sigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    unsigned char ks[64];
    int len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c && EVP_EncryptInit_ex(c, EVP_chacha20(), NULL, key, n16) &&
             EVP_EncryptUpdate(c, ks, &len, zero, 64) && len == 64;
    EVP_CIPHER_CTX_free(c);
    if (!ok) return -1;
    for (int i = 0; i < 4; i++) {
        put_le32(out + 4 * i, get_le32(ks + 4 * i) - sigma[i]);
        put_le32(out + 16 + 4 * i, get_le32(ks + 48 + 4 * i) - get_le32(n16 + 4 * i));
    }
    OPENSSL_cleanse(ks, sizeof(ks));
    return 0;
}

/* XChaCha20-Poly1305 with a 24-byte nonce (the cookie reply's): ChaCha20-Poly1305 under
 * HChaCha20(key, nonce[0..16]) with the nonce 0^4 || nonce[16..24]. seal: pt (len) -> out
 * (len + 16); open: ct (len + 16) -> out (len). 0 ok, -1 (open: not authentic). */
static int xaead(int seal, const unsigned char key[32], const unsigned char nonce[24],
                 const unsigned char *in, size_t len, const unsigned char *ad, size_t adlen,
                 unsigned char *out)
{
    unsigned char sub[32], n12[12] = {0}, tag[16];
    int l = 0, ok = hchacha20(key, nonce, sub) == 0;
    memcpy(n12 + 4, nonce + 16, 8);
    EVP_CIPHER_CTX *c = ok ? EVP_CIPHER_CTX_new() : NULL;
    if (seal)
        ok = c && EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, sub, n12) &&
             EVP_EncryptUpdate(c, NULL, &l, ad, (int)adlen) &&
             EVP_EncryptUpdate(c, out, &l, in, (int)len) && EVP_EncryptFinal_ex(c, out + len, &l) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + len) == 1;
    else {
        memcpy(tag, in + len, 16);
        ok = c && EVP_DecryptInit_ex(c, EVP_chacha20_poly1305(), NULL, sub, n12) &&
             EVP_DecryptUpdate(c, NULL, &l, ad, (int)adlen) &&
             EVP_DecryptUpdate(c, out, &l, in, (int)len) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1 &&
             EVP_DecryptFinal_ex(c, out + len, &l) > 0;
    }
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(sub, sizeof(sub));
    return ok ? 0 : -1;
}

int vt_wg_hchacha20(const unsigned char key[32], const unsigned char nonce[16],
                    unsigned char out[32])
{
    return hchacha20(key, nonce, out);
}

static int x25519(const unsigned char priv[32], const unsigned char pub[32], unsigned char out[32])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, 32);
    EVP_PKEY_CTX *c = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    size_t olen = 32;
    int ok = c && p && EVP_PKEY_derive_init(c) > 0 && EVP_PKEY_derive_set_peer(c, p) > 0 &&
             EVP_PKEY_derive(c, out, &olen) > 0 && olen == 32;
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(k);
    EVP_PKEY_free(p);
    /* OpenSSL refuses an all-zero shared secret (a low-order point) itself. */
    return ok ? 0 : -1;
}

int vt_wg_public_key(const unsigned char priv[VT_WG_KEY_LEN], unsigned char pub[VT_WG_KEY_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    size_t len = 32;
    int ok = k && EVP_PKEY_get_raw_public_key(k, pub, &len) > 0 && len == 32;
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

int vt_wg_generate_private(unsigned char priv[VT_WG_KEY_LEN])
{
    if (RAND_bytes(priv, 32) != 1) return -1;
    priv[0] &= 248; /* clamp as wg genkey does */
    priv[31] &= 127;
    priv[31] |= 64;
    return 0;
}

int vt_wg_key_from_base64(const char *b64, unsigned char out[VT_WG_KEY_LEN], char *err,
                          size_t errlen)
{
    unsigned char buf[36];
    if (!b64 || strlen(b64) != 44 || b64[43] != '=' || b64[42] == '=') {
        snprintf(err, errlen, "a WireGuard key is 44 base64 characters ending in '='");
        return -1;
    }
    if (EVP_DecodeBlock(buf, (const unsigned char *)b64, 44) != 33) {
        snprintf(err, errlen, "a WireGuard key is 44 base64 characters ending in '='");
        return -1;
    }
    memcpy(out, buf, 32);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

void vt_wg_key_to_base64(const unsigned char key[VT_WG_KEY_LEN], char out[45])
{
    EVP_EncodeBlock((unsigned char *)out, key, 32);
    out[44] = 0;
}

void vt_wg_tai64n_now(unsigned char out[12])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = 0x400000000000000aULL + (uint64_t)ts.tv_sec;
    uint32_t ns = (uint32_t)ts.tv_nsec;
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(s >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        out[8 + i] = (unsigned char)(ns >> (24 - 8 * i));
}

/* ck = HASH(CONSTRUCTION); h = HASH(HASH(ck || IDENTIFIER) || responder's static public). */
static int init_chain(unsigned char ck[32], unsigned char h[32], const unsigned char rpub[32])
{
    if (hash2(CONSTRUCTION, strlen(CONSTRUCTION), NULL, 0, ck) < 0 ||
        hash2(ck, 32, IDENTIFIER, strlen(IDENTIFIER), h) < 0 || hash2(h, 32, rpub, 32, h) < 0)
        return -1;
    return 0;
}

static int mac1_key(const unsigned char pub[32], unsigned char key[32])
{
    return hash2(LABEL_MAC1, 8, pub, 32, key);
}

void vt_wg_handshake_clear(vt_wg_handshake *hs)
{
    OPENSSL_cleanse(hs, sizeof(*hs));
}

int vt_wg_build_initiation(vt_wg_handshake *hs, const unsigned char client_priv[VT_WG_KEY_LEN],
                           const unsigned char server_pub[VT_WG_KEY_LEN], const unsigned char *psk,
                           uint32_t sender_index, const unsigned char *tai64n, char *err,
                           size_t errlen)
{
    return vt_wg_build_initiation_eph(hs, client_priv, server_pub, psk, sender_index, tai64n, NULL,
                                      err, errlen);
}

int vt_wg_build_initiation_eph(vt_wg_handshake *hs, const unsigned char client_priv[VT_WG_KEY_LEN],
                               const unsigned char server_pub[VT_WG_KEY_LEN],
                               const unsigned char *psk, uint32_t sender_index,
                               const unsigned char *tai64n, const unsigned char *eph_priv,
                               char *err, size_t errlen)
{
    unsigned char key[32], dh[32], ts[12], mk[32];
    unsigned char *m = hs->msg;
    int rc = -1;
    memset(hs, 0, sizeof(*hs));
    memcpy(hs->static_priv, client_priv, 32);
    memcpy(hs->server_pub, server_pub, 32);
    if (psk) memcpy(hs->psk, psk, 32);
    hs->sender_index = sender_index;
    if (eph_priv) memcpy(hs->eph_priv, eph_priv, 32);
    if (vt_wg_public_key(client_priv, hs->static_pub) < 0 ||
        (!eph_priv && vt_wg_generate_private(hs->eph_priv) < 0) ||
        vt_wg_public_key(hs->eph_priv, hs->eph_pub) < 0) {
        snprintf(err, errlen, "X25519 key generation failed");
        goto done;
    }
    if (init_chain(hs->ck, hs->h, server_pub) < 0) goto crypto;
    m[0] = 1;
    put_le32(m + I_SENDER, sender_index);
    memcpy(m + I_EPH, hs->eph_pub, 32);
    if (hash2(hs->h, 32, hs->eph_pub, 32, hs->h) < 0 ||
        kdf(hs->ck, hs->eph_pub, 32, hs->ck, NULL, NULL) < 0)
        goto crypto;
    if (x25519(hs->eph_priv, server_pub, dh) < 0) {
        snprintf(err, errlen, "X25519 with the server's public key failed (invalid key?)");
        goto done;
    }
    if (kdf(hs->ck, dh, 32, hs->ck, key, NULL) < 0 ||
        aead_seal(key, hs->static_pub, 32, hs->h, m + I_STATIC) < 0 ||
        hash2(hs->h, 32, m + I_STATIC, 48, hs->h) < 0)
        goto crypto;
    if (x25519(hs->static_priv, server_pub, dh) < 0) {
        snprintf(err, errlen, "X25519 with the server's public key failed (invalid key?)");
        goto done;
    }
    if (tai64n)
        memcpy(ts, tai64n, 12);
    else
        vt_wg_tai64n_now(ts);
    if (kdf(hs->ck, dh, 32, hs->ck, key, NULL) < 0 || aead_seal(key, ts, 12, hs->h, m + I_TS) < 0 ||
        hash2(hs->h, 32, m + I_TS, 28, hs->h) < 0)
        goto crypto;
    if (mac1_key(server_pub, mk) < 0 || mac16(mk, m, I_MAC1, m + I_MAC1) < 0) goto crypto;
    /* mac2 stays zero: no cookie received. */
    rc = 0;
    goto done;
crypto:
    snprintf(err, errlen, "OpenSSL lacks a primitive WireGuard needs (BLAKE2s, ChaCha20-Poly1305)");
done:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(dh, sizeof(dh));
    return rc;
}

static int bad(char *failure, size_t flen, const char *s)
{
    snprintf(failure, flen, "%s", s);
    return VT_WG_BAD;
}

int vt_wg_parse_reply(const vt_wg_handshake *hs, const unsigned char *buf, size_t len,
                      vt_wg_reply *r, char *failure, size_t flen)
{
    unsigned char ck[32], h[32], dh[32], temp2[32], key[32], mk[32], mac[16], empty[16];
    int rc = VT_WG_BAD;
    memset(r, 0, sizeof(*r));
    if (failure && flen) failure[0] = 0;
    if (!buf || len < 4) return bad(failure, flen, "wireguard_truncated_reply");
    r->type = buf[0];
    if (buf[1] || buf[2] || buf[3]) return bad(failure, flen, "wireguard_unexpected_message");
    if (r->type == 3) {
        if (len != VT_WG_COOKIE_LEN) return bad(failure, flen, "wireguard_bad_length");
        r->receiver_index = get_le32(buf + 4);
        if (r->receiver_index != hs->sender_index)
            return bad(failure, flen, "wireguard_wrong_receiver_index");
        /* Only the server holding the key can encrypt a cookie under HASH("cookie--" || its
         * public key) with our mac1 as additional data: anything else that knows our index (a
         * reflector, a middlebox) must not make the server "reachable". */
        unsigned char ckey[32], cookie[16];
        int auth = hash2(LABEL_COOKIE, 8, hs->server_pub, 32, ckey) == 0 &&
                   xaead(0, ckey, buf + 8, buf + 32, 16, hs->msg + I_MAC1, 16, cookie) == 0;
        OPENSSL_cleanse(ckey, sizeof(ckey));
        OPENSSL_cleanse(cookie, sizeof(cookie));
        if (!auth) return bad(failure, flen, "wireguard_bad_cookie");
        return VT_WG_COOKIE;
    }
    if (r->type != 2) return bad(failure, flen, "wireguard_unexpected_message");
    if (len != VT_WG_RESP_LEN) return bad(failure, flen, "wireguard_bad_length");
    r->sender_index = get_le32(buf + R_SENDER);
    r->receiver_index = get_le32(buf + R_RECEIVER);
    if (r->receiver_index != hs->sender_index)
        return bad(failure, flen, "wireguard_wrong_receiver_index");
    if (mac1_key(hs->static_pub, mk) < 0 || mac16(mk, buf, R_MAC1, mac) < 0)
        return bad(failure, flen, "wireguard_crypto_error");
    if (CRYPTO_memcmp(mac, buf + R_MAC1, 16) != 0) return bad(failure, flen, "wireguard_bad_mac1");
    memcpy(ck, hs->ck, 32);
    memcpy(h, hs->h, 32);
    const unsigned char *e_r = buf + R_EPH;
    if (hash2(h, 32, e_r, 32, h) < 0 || kdf(ck, e_r, 32, ck, NULL, NULL) < 0) goto crypto;
    if (x25519(hs->eph_priv, e_r, dh) < 0) {
        rc = bad(failure, flen, "wireguard_bad_ephemeral");
        goto done;
    }
    if (kdf(ck, dh, 32, ck, NULL, NULL) < 0) goto crypto;
    if (x25519(hs->static_priv, e_r, dh) < 0) {
        rc = bad(failure, flen, "wireguard_bad_ephemeral");
        goto done;
    }
    if (kdf(ck, dh, 32, ck, NULL, NULL) < 0 || kdf(ck, hs->psk, 32, ck, temp2, key) < 0 ||
        hash2(h, 32, temp2, 32, h) < 0)
        goto crypto;
    if (aead_open(key, buf + R_EMPTY, 16, h, empty) < 0) {
        rc = bad(failure, flen, "wireguard_decrypt_error");
        goto done;
    }
    r->authenticated = 1;
    rc = VT_WG_OK;
    goto done;
crypto:
    rc = bad(failure, flen, "wireguard_crypto_error");
done:
    OPENSSL_cleanse(ck, sizeof(ck));
    OPENSSL_cleanse(h, sizeof(h));
    OPENSSL_cleanse(dh, sizeof(dh));
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(temp2, sizeof(temp2));
    return rc;
}

int vt_wg_responder_consume(vt_wg_responder *st, const unsigned char server_priv[VT_WG_KEY_LEN],
                            const unsigned char *psk, const unsigned char *msg, size_t len,
                            char *err, size_t errlen)
{
    unsigned char spub[32], mk[32], mac[16], dh[32], key[32];
    int rc = -1;
    memset(st, 0, sizeof(*st));
    if (!msg || len != VT_WG_INIT_LEN || msg[0] != 1 || msg[1] || msg[2] || msg[3]) {
        snprintf(err, errlen, "not a handshake initiation");
        return -1;
    }
    if (psk) memcpy(st->psk, psk, 32);
    if (vt_wg_public_key(server_priv, spub) < 0 || mac1_key(spub, mk) < 0 ||
        mac16(mk, msg, I_MAC1, mac) < 0)
        goto crypto;
    if (CRYPTO_memcmp(mac, msg + I_MAC1, 16) != 0) {
        snprintf(err, errlen, "bad mac1");
        goto done;
    }
    st->init_index = get_le32(msg + I_SENDER);
    memcpy(st->init_eph, msg + I_EPH, 32);
    if (init_chain(st->ck, st->h, spub) < 0 || hash2(st->h, 32, st->init_eph, 32, st->h) < 0 ||
        kdf(st->ck, st->init_eph, 32, st->ck, NULL, NULL) < 0)
        goto crypto;
    if (x25519(server_priv, st->init_eph, dh) < 0 || kdf(st->ck, dh, 32, st->ck, key, NULL) < 0)
        goto crypto;
    if (aead_open(key, msg + I_STATIC, 48, st->h, st->init_static) < 0) {
        snprintf(err, errlen, "cannot decrypt the initiator's static key");
        goto done;
    }
    if (hash2(st->h, 32, msg + I_STATIC, 48, st->h) < 0 ||
        x25519(server_priv, st->init_static, dh) < 0 || kdf(st->ck, dh, 32, st->ck, key, NULL) < 0)
        goto crypto;
    if (aead_open(key, msg + I_TS, 28, st->h, st->timestamp) < 0) {
        snprintf(err, errlen, "cannot decrypt the timestamp");
        goto done;
    }
    if (hash2(st->h, 32, msg + I_TS, 28, st->h) < 0) goto crypto;
    rc = 0;
    goto done;
crypto:
    snprintf(err, errlen, "crypto error");
done:
    OPENSSL_cleanse(dh, sizeof(dh));
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int vt_wg_responder_respond(vt_wg_responder *st, uint32_t sender_index,
                            unsigned char out[VT_WG_RESP_LEN], char *err, size_t errlen)
{
    unsigned char epriv[32], epub[32], dh[32], temp2[32], key[32], mk[32];
    int rc = -1;
    memset(out, 0, VT_WG_RESP_LEN);
    out[0] = 2;
    put_le32(out + R_SENDER, sender_index);
    put_le32(out + R_RECEIVER, st->init_index);
    if (vt_wg_generate_private(epriv) < 0 || vt_wg_public_key(epriv, epub) < 0) goto crypto;
    memcpy(out + R_EPH, epub, 32);
    if (hash2(st->h, 32, epub, 32, st->h) < 0 || kdf(st->ck, epub, 32, st->ck, NULL, NULL) < 0 ||
        x25519(epriv, st->init_eph, dh) < 0 || kdf(st->ck, dh, 32, st->ck, NULL, NULL) < 0 ||
        x25519(epriv, st->init_static, dh) < 0 || kdf(st->ck, dh, 32, st->ck, NULL, NULL) < 0 ||
        kdf(st->ck, st->psk, 32, st->ck, temp2, key) < 0 ||
        hash2(st->h, 32, temp2, 32, st->h) < 0 ||
        aead_seal(key, NULL, 0, st->h, out + R_EMPTY) < 0 ||
        hash2(st->h, 32, out + R_EMPTY, 16, st->h) < 0)
        goto crypto;
    if (mac1_key(st->init_static, mk) < 0 || mac16(mk, out, R_MAC1, out + R_MAC1) < 0) goto crypto;
    rc = 0;
    goto done;
crypto:
    snprintf(err, errlen, "crypto error");
done:
    OPENSSL_cleanse(epriv, sizeof(epriv));
    OPENSSL_cleanse(dh, sizeof(dh));
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int vt_wg_cookie_reply(const unsigned char server_pub[VT_WG_KEY_LEN], const unsigned char *init,
                       size_t init_len, const unsigned char cookie[16],
                       const unsigned char nonce[24], unsigned char out[VT_WG_COOKIE_LEN])
{
    unsigned char ckey[32];
    if (!init || init_len != VT_WG_INIT_LEN || init[0] != 1) return -1;
    memset(out, 0, VT_WG_COOKIE_LEN);
    out[0] = 3;
    memcpy(out + 4, init + I_SENDER, 4); /* the receiver: the initiator's index */
    memcpy(out + 8, nonce, 24);
    int rc = hash2(LABEL_COOKIE, 8, server_pub, 32, ckey) == 0 &&
                     xaead(1, ckey, nonce, cookie, 16, init + I_MAC1, 16, out + 32) == 0
                 ? 0
                 : -1;
    OPENSSL_cleanse(ckey, sizeof(ckey));
    return rc;
}
