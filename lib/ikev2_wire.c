/* IKEv2 IKE_SA_INIT (RFC 7296 sections 1.2, 3.1-3.4, 3.9, 3.10; RFC 3948 for the non-ESP
 * marker on port 4500). */
#include "vantage/ikev2.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define PL_SA 33
#define PL_KE 34
#define PL_NONCE 40
#define PL_NOTIFY 41
#define EXCH_IKE_SA_INIT 34
#define FLAG_INITIATOR 0x08
#define FLAG_RESPONSE 0x20

#define T_ENCR 1
#define T_PRF 2
#define T_INTEG 3
#define T_DH 4
#define ENCR_AES_CBC 12
#define ENCR_AES_GCM_16 20
#define PRF_HMAC_SHA2_256 5
#define AUTH_HMAC_SHA2_256_128 12
#define ATTR_KEY_LENGTH 14

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int overflow;
} wbuf;

static unsigned char *wb_take(wbuf *b, size_t n)
{
    if (b->overflow || b->n + n > b->cap) {
        b->overflow = 1;
        return NULL;
    }
    unsigned char *q = b->p + b->n;
    memset(q, 0, n);
    b->n += n;
    return q;
}

static void transform(wbuf *b, int last, int type, int id, int keylen)
{
    unsigned char *t = wb_take(b, keylen ? 12 : 8);
    if (!t) return;
    t[0] = last ? 0 : 3;
    put16(t + 2, keylen ? 12 : 8);
    t[4] = (unsigned char)type;
    put16(t + 6, (unsigned)id);
    if (keylen) {
        put16(t + 8, 0x8000 | ATTR_KEY_LENGTH);
        put16(t + 10, (unsigned)keylen);
    }
}

/* Proposal 1: AES-CBC-256/128, HMAC-SHA256, PRF-SHA256; proposal 2: AES-GCM-16-256/128,
 * PRF-SHA256. Both offer the DH groups with ours first. */
static void proposals(wbuf *b, int ke_group)
{
    int groups[3] = {ke_group, 0, 0}, ng = 1;
    static const int all[] = {VT_IKE_DH_CURVE25519, VT_IKE_DH_ECP256, VT_IKE_DH_MODP2048};
    for (int i = 0; i < 3; i++)
        if (all[i] != ke_group) groups[ng++] = all[i];
    for (int prop = 1; prop <= 2; prop++) {
        size_t start = b->n;
        unsigned char *p = wb_take(b, 8);
        if (!p) return;
        int encr = prop == 1 ? ENCR_AES_CBC : ENCR_AES_GCM_16;
        int nt = 0;
        transform(b, 0, T_ENCR, encr, 256), nt++;
        transform(b, 0, T_ENCR, encr, 128), nt++;
        transform(b, 0, T_PRF, PRF_HMAC_SHA2_256, 0), nt++;
        if (prop == 1) transform(b, 0, T_INTEG, AUTH_HMAC_SHA2_256_128, 0), nt++;
        for (int i = 0; i < ng; i++)
            transform(b, i == ng - 1, T_DH, groups[i], 0), nt++;
        if (b->overflow) return;
        p = b->p + start;
        p[0] = prop == 2 ? 0 : 2;
        put16(p + 2, (unsigned)(b->n - start));
        p[4] = (unsigned char)prop;
        p[5] = 1; /* IKE */
        p[6] = 0; /* no SPI in IKE_SA_INIT */
        p[7] = (unsigned char)nt;
    }
}

/* A fresh public value for the group, as the KE payload carries it. */
static int ke_value(int group, unsigned char *out, size_t cap, size_t *len)
{
    EVP_PKEY *k = NULL;
    BIGNUM *bn = NULL;
    int rc = -1;
    if (group == VT_IKE_DH_CURVE25519) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        *len = 32;
        if (k && cap >= 32 && EVP_PKEY_get_raw_public_key(k, out, len) > 0 && *len == 32) rc = 0;
    } else if (group == VT_IKE_DH_ECP256) {
        unsigned char pt[65];
        size_t pl = 0;
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (k && cap >= 64 &&
            EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                            &pl) > 0 &&
            pl == 65 && pt[0] == 4) {
            memcpy(out, pt + 1, 64); /* x || y, RFC 5903 */
            *len = 64;
            rc = 0;
        }
    } else if (group == VT_IKE_DH_MODP2048) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
        char name[] = "modp_2048";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, name, 0),
            OSSL_PARAM_construct_end()};
        if (c && EVP_PKEY_keygen_init(c) > 0 && EVP_PKEY_CTX_set_params(c, params) > 0 &&
            EVP_PKEY_generate(c, &k) > 0 &&
            EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PUB_KEY, &bn) > 0 && cap >= 256 &&
            BN_bn2binpad(bn, out, 256) == 256) {
            *len = 256;
            rc = 0;
        }
        EVP_PKEY_CTX_free(c);
    }
    BN_free(bn);
    EVP_PKEY_free(k);
    return rc;
}

int vt_ikev2_build_sa_init(const vt_ikev2_opts *o, const unsigned char spi_i[VT_IKE_SPI_LEN],
                           unsigned char *out, size_t cap, size_t *outlen, char *err, size_t errlen)
{
    int group = o->ke_group ? o->ke_group : VT_IKE_DH_CURVE25519;
    if (group != VT_IKE_DH_CURVE25519 && group != VT_IKE_DH_ECP256 && group != VT_IKE_DH_MODP2048) {
        snprintf(err, errlen, "unsupported IKE DH group %d (14, 19 or 31)", group);
        return -1;
    }
    wbuf b = {.p = out, .cap = cap};
    if (o->natt) wb_take(&b, 4); /* non-ESP marker */
    size_t hdr = b.n;
    unsigned char *h = wb_take(&b, 28);
    if (h) {
        memcpy(h, spi_i, 8);
        h[16] = PL_SA;
        h[17] = 0x20; /* version 2.0 */
        h[18] = EXCH_IKE_SA_INIT;
        h[19] = FLAG_INITIATOR;
    }
    size_t sa = b.n;
    if (wb_take(&b, 4)) {
        proposals(&b, group);
        if (!b.overflow) {
            b.p[sa] = PL_KE;
            put16(b.p + sa + 2, (unsigned)(b.n - sa));
        }
    }
    size_t ke = b.n;
    unsigned char *k = wb_take(&b, 8);
    if (k) {
        size_t klen = 0;
        if (ke_value(group, b.p + b.n, b.cap - b.n, &klen) < 0) {
            snprintf(err, errlen, "cannot generate a DH group %d public value", group);
            return -1;
        }
        b.n += klen;
        b.p[ke] = PL_NONCE;
        put16(b.p + ke + 2, (unsigned)(b.n - ke));
        put16(b.p + ke + 4, (unsigned)group);
    }
    unsigned char *nonce = wb_take(&b, 4 + 32);
    if (nonce) {
        put16(nonce + 2, 36);
        if (RAND_bytes(nonce + 4, 32) != 1) {
            snprintf(err, errlen, "no random bytes for the nonce");
            return -1;
        }
    }
    if (b.overflow) {
        snprintf(err, errlen, "output buffer too small");
        return -1;
    }
    size_t total = b.n - hdr;
    out[hdr + 24] = (unsigned char)(total >> 24);
    out[hdr + 25] = (unsigned char)(total >> 16);
    out[hdr + 26] = (unsigned char)(total >> 8);
    out[hdr + 27] = (unsigned char)total;
    *outlen = b.n;
    return 0;
}

static int bad(char *failure, size_t flen, const char *s)
{
    snprintf(failure, flen, "%s", s);
    return VT_IKE_BAD;
}

/* Records the transforms of the responder's chosen proposal (the first). */
static void parse_sa(const unsigned char *p, size_t n, vt_ikev2_reply *r)
{
    if (n < 8) return;
    size_t plen = get16(p + 2);
    if (plen < 8 || plen > n) return;
    size_t off = 8 + p[6]; /* after the SPI */
    int nt = p[7];
    for (int i = 0; i < nt && off + 8 <= plen; i++) {
        size_t tl = get16(p + off + 2);
        if (tl < 8 || off + tl > plen) return;
        int type = p[off + 4], id = (int)get16(p + off + 6);
        switch (type) {
        case T_ENCR:
            r->chosen_encr = id;
            if (tl >= 12 && get16(p + off + 8) == (0x8000 | ATTR_KEY_LENGTH))
                r->chosen_encr_keylen = (int)get16(p + off + 10);
            break;
        case T_PRF:
            r->chosen_prf = id;
            break;
        case T_INTEG:
            r->chosen_integ = id;
            break;
        case T_DH:
            r->chosen_dh = id;
            break;
        default:
            break;
        }
        off += tl;
    }
}

int vt_ikev2_parse_reply(const vt_ikev2_opts *o, const unsigned char spi_i[VT_IKE_SPI_LEN],
                         const unsigned char *buf, size_t len, vt_ikev2_reply *r, char *failure,
                         size_t flen)
{
    memset(r, 0, sizeof(*r));
    if (failure && flen) failure[0] = 0;
    if (!buf) return bad(failure, flen, "ikev2_truncated_reply");
    if (len > VT_IKE_MAX_MESSAGE + 4) return bad(failure, flen, "ikev2_oversized_reply");
    if (o->natt) {
        if (len < 4) return bad(failure, flen, "ikev2_truncated_reply");
        if (buf[0] || buf[1] || buf[2] || buf[3])
            return bad(failure, flen, "ikev2_not_ike"); /* ESP, or garbage */
        buf += 4;
        len -= 4;
    }
    if (len < 28) return bad(failure, flen, "ikev2_truncated_reply");
    if (memcmp(buf, spi_i, 8) != 0) return bad(failure, flen, "ikev2_wrong_spi");
    memcpy(r->spi_r, buf + 8, 8);
    for (int i = 0; i < 8; i++)
        r->spi_r_nonzero |= r->spi_r[i] != 0;
    if (buf[17] >> 4 != 2) return bad(failure, flen, "ikev2_bad_version");
    r->exchange = buf[18];
    r->flags = buf[19];
    r->message_id = get32(buf + 20);
    size_t total = get32(buf + 24);
    if (total < 28) return bad(failure, flen, "ikev2_bad_length");
    if (total > len) return bad(failure, flen, "ikev2_truncated_reply");
    if (r->exchange != EXCH_IKE_SA_INIT) return bad(failure, flen, "ikev2_unexpected_exchange");
    if (!(r->flags & FLAG_RESPONSE)) return bad(failure, flen, "ikev2_not_a_response");
    int next = buf[16];
    size_t off = 28;
    for (int count = 0; next != 0 && count < 64; count++) {
        if (off + 4 > total) return bad(failure, flen, "ikev2_bad_payload_length");
        const unsigned char *p = buf + off;
        size_t pl = get16(p + 2);
        if (pl < 4 || off + pl > total) return bad(failure, flen, "ikev2_bad_payload_length");
        switch (next) {
        case PL_SA:
            r->has_sa = 1;
            parse_sa(p + 4, pl - 4, r);
            break;
        case PL_KE:
            r->has_ke = 1;
            break;
        case PL_NONCE:
            r->has_nonce = 1;
            break;
        case PL_NOTIFY:
            if (pl >= 8) {
                int type = (int)get16(p + 6);
                size_t spisz = p[5];
                if (r->n_notifies < VT_IKE_MAX_NOTIFIES) r->notifies[r->n_notifies++] = type;
                if (type < 16384 && !r->error_notify) r->error_notify = type;
                if (type == VT_IKE_N_INVALID_KE_PAYLOAD && pl >= 8 + spisz + 2)
                    r->invalid_ke_group = (int)get16(p + 8 + spisz);
            }
            break;
        default:
            break;
        }
        next = p[0];
        off += pl;
    }
    if (!r->spi_r_nonzero && r->n_notifies == 0) return bad(failure, flen, "ikev2_empty_response");
    return VT_IKE_OK;
}

const char *vt_ikev2_notify_name(int type)
{
    switch (type) {
    case 1:
        return "UNSUPPORTED_CRITICAL_PAYLOAD";
    case 4:
        return "INVALID_IKE_SPI";
    case 5:
        return "INVALID_MAJOR_VERSION";
    case 7:
        return "INVALID_SYNTAX";
    case 9:
        return "INVALID_MESSAGE_ID";
    case 14:
        return "NO_PROPOSAL_CHOSEN";
    case 17:
        return "INVALID_KE_PAYLOAD";
    case 24:
        return "AUTHENTICATION_FAILED";
    case 43:
        return "TEMPORARY_FAILURE";
    case 16388:
        return "NAT_DETECTION_SOURCE_IP";
    case 16389:
        return "NAT_DETECTION_DESTINATION_IP";
    case 16390:
        return "COOKIE";
    case 16404:
        return "MULTIPLE_AUTH_SUPPORTED";
    case 16430:
        return "IKEV2_FRAGMENTATION_SUPPORTED";
    case 16431:
        return "SIGNATURE_HASH_ALGORITHMS";
    case 16418:
        return "REDIRECT_SUPPORTED";
    default:
        return NULL;
    }
}
