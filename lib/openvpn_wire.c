/* OpenVPN wire format: the client's hard reset and the check of the server's answer.
 *
 * Plain control packet:   [op|key_id][session id 8][ack count][acks 4*n][remote sid 8 if n]
 *                         [message packet id 4][payload]
 * With tls-auth, after the session id: [HMAC][packet id 4][net time 4]; the HMAC covers
 * [packet id][net time][op][session id][ack array...][message packet id][payload], which is how
 * OpenVPN computes it (ssl_pkt.c swaps the fields to the front before authenticating). */
#include "vantage/openvpn.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"

#define OVPN_MAX_ACKS 8 /* RELIABLE_ACK_SIZE */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int vt_openvpn_parse_static_key(const char *text, size_t len,
                                unsigned char out[VT_OVPN_STATIC_KEY_LEN], char *err, size_t errlen)
{
    static const char begin[] = "-----BEGIN OpenVPN Static key V1-----";
    static const char end[] = "-----END OpenVPN Static key V1-----";
    size_t i = 0, nibbles = 0;
    int in_key = 0, done = 0;
    if (!text) {
        snprintf(err, errlen, "no key text");
        return -1;
    }
    while (i < len && !done) {
        size_t ls = i;
        while (i < len && text[i] != '\n')
            i++;
        size_t le = i;
        if (i < len) i++;
        while (le > ls && isspace((unsigned char)text[le - 1]))
            le--;
        while (ls < le && isspace((unsigned char)text[ls]))
            ls++;
        size_t ll = le - ls;
        const char *line = text + ls;
        if (ll == 0 || line[0] == '#' || line[0] == ';') continue;
        if (!in_key) {
            if (ll == sizeof(begin) - 1 && memcmp(line, begin, ll) == 0) in_key = 1;
            continue;
        }
        if (ll == sizeof(end) - 1 && memcmp(line, end, ll) == 0) {
            done = 1;
            break;
        }
        for (size_t k = 0; k < ll; k++) {
            int v = vt_hex_digit((unsigned char)line[k]);
            if (v < 0) {
                if (isspace((unsigned char)line[k])) continue;
                snprintf(err, errlen, "static key: non-hex character in the key block");
                return -1;
            }
            if (nibbles >= 2 * VT_OVPN_STATIC_KEY_LEN) {
                snprintf(err, errlen, "static key: more than %d bytes", VT_OVPN_STATIC_KEY_LEN);
                return -1;
            }
            if (nibbles % 2 == 0)
                out[nibbles / 2] = (unsigned char)(v << 4);
            else
                out[nibbles / 2] |= (unsigned char)v;
            nibbles++;
        }
    }
    if (!in_key) {
        snprintf(err, errlen, "static key: no \"%s\" line", begin);
        return -1;
    }
    if (!done) {
        snprintf(err, errlen, "static key: no END line");
        return -1;
    }
    if (nibbles != 2 * VT_OVPN_STATIC_KEY_LEN) {
        snprintf(err, errlen, "static key: %zu bytes, want %d", nibbles / 2,
                 VT_OVPN_STATIC_KEY_LEN);
        return -1;
    }
    return 0;
}

static const EVP_MD *digest_md(const char *digest)
{
    if (!digest || !*digest || strcasecmp(digest, "SHA1") == 0 || strcasecmp(digest, "SHA-1") == 0)
        return EVP_sha1();
    if (strcasecmp(digest, "SHA256") == 0 || strcasecmp(digest, "SHA-256") == 0)
        return EVP_sha256();
    if (strcasecmp(digest, "SHA512") == 0 || strcasecmp(digest, "SHA-512") == 0)
        return EVP_sha512();
    return NULL;
}

size_t vt_openvpn_digest_len(const char *digest)
{
    const EVP_MD *md = digest_md(digest);
    return md ? (size_t)EVP_MD_get_size(md) : 0;
}

/* The static key holds two keys of 64 cipher + 64 HMAC bytes; key-direction picks which one
 * each side sends with (OpenVPN's key_direction_state_init). */
static const unsigned char *hmac_key(const vt_openvpn_opts *o, int outgoing)
{
    int idx = 0;
    if (o->key_direction == 0)
        idx = outgoing ? 0 : 1;
    else if (o->key_direction == 1)
        idx = outgoing ? 1 : 0;
    return o->tls_auth + idx * 128 + 64;
}

/* HMAC over [pid+time (8)][op+sid (9)][rest]. */
static int compute_hmac(const vt_openvpn_opts *o, int outgoing, const unsigned char *pidtime,
                        const unsigned char *head, const unsigned char *rest, size_t restlen,
                        unsigned char *mac, size_t maclen)
{
    const EVP_MD *md = digest_md(o->auth_digest);
    if (!md || (size_t)EVP_MD_get_size(md) != maclen) return -1;
    unsigned char buf[8 + 9 + VT_OVPN_MAX_PACKET];
    if (restlen > VT_OVPN_MAX_PACKET) return -1;
    memcpy(buf, pidtime, 8);
    memcpy(buf + 8, head, 9);
    if (restlen) memcpy(buf + 17, rest, restlen);
    unsigned int mlen = 0;
    if (!HMAC(md, hmac_key(o, outgoing), (int)maclen, buf, 17 + restlen, mac, &mlen) ||
        mlen != maclen)
        return -1;
    return 0;
}

/* tls-crypt (OpenVPN's tls_crypt.c): the client sends with the second key (key-direction
 * inverse), the server with the first; each key is AES-256-CTR (its first 32 cipher bytes) and
 * HMAC-SHA256 (its first 32 HMAC bytes). tag = HMAC(header || plaintext), IV = tag[0:16]. */
static const unsigned char *crypt_key(const vt_openvpn_opts *o, int outgoing, int hmac)
{
    return o->tls_crypt + (outgoing ? 128 : 0) + (hmac ? 64 : 0);
}

static int crypt_tag(const vt_openvpn_opts *o, int outgoing, const unsigned char *hdr,
                     const unsigned char *pt, size_t ptlen, unsigned char tag[32])
{
    unsigned char buf[17 + VT_OVPN_MAX_PACKET];
    unsigned int tl = 0;
    if (ptlen > VT_OVPN_MAX_PACKET) return -1;
    memcpy(buf, hdr, 17);
    if (ptlen) memcpy(buf + 17, pt, ptlen);
    if (!HMAC(EVP_sha256(), crypt_key(o, outgoing, 1), 32, buf, 17 + ptlen, tag, &tl) || tl != 32)
        return -1;
    return 0;
}

/* AES-256-CTR is its own inverse. */
static int crypt_ctr(const vt_openvpn_opts *o, int outgoing, const unsigned char iv[16],
                     const unsigned char *in, size_t len, unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, ok = c &&
                    EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, crypt_key(o, outgoing, 0), iv) &&
                    (!len || EVP_EncryptUpdate(c, out, &l, in, (int)len)) &&
                    EVP_EncryptFinal_ex(c, out + l, &l);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

int vt_openvpn_build_reset(const vt_openvpn_opts *o, const unsigned char sid[VT_OVPN_SID_LEN],
                           unsigned char *out, size_t cap, size_t *outlen, char *err, size_t errlen)
{
    unsigned char pkt[2 + 9 + 64 + 8 + 1 + 4];
    size_t n = 0, off = o->tcp ? 2 : 0, hlen = 0;
    if (o->tls_auth && o->tls_crypt) {
        snprintf(err, errlen, "tls-auth and tls-crypt exclude each other");
        return -1;
    }
    if (o->tls_crypt) {
        unsigned char *p = pkt + off, pt[5] = {0, 0, 0, 0, 0}; /* no acks, message packet id 0 */
        p[0] = VT_OVPN_OP_CLIENT_RESET_V2 << 3;
        memcpy(p + 1, sid, VT_OVPN_SID_LEN);
        put32(p + 9, o->packet_id);
        put32(p + 13, o->net_time);
        if (crypt_tag(o, 1, p, pt, sizeof(pt), p + 17) < 0 ||
            crypt_ctr(o, 1, p + 17, pt, sizeof(pt), p + 49) < 0) {
            snprintf(err, errlen, "tls-crypt computation failed");
            return -1;
        }
        n = 49 + sizeof(pt);
        goto framed;
    }
    if (o->tls_auth) {
        hlen = vt_openvpn_digest_len(o->auth_digest);
        if (!hlen) {
            snprintf(err, errlen, "unsupported tls-auth digest \"%s\"", o->auth_digest);
            return -1;
        }
    }
    unsigned char *p = pkt + off;
    p[0] = VT_OVPN_OP_CLIENT_RESET_V2 << 3; /* key id 0 */
    memcpy(p + 1, sid, VT_OVPN_SID_LEN);
    n = 9;
    unsigned char *mac = NULL, *pidtime = NULL;
    if (hlen) {
        mac = p + n;
        n += hlen;
        pidtime = p + n;
        put32(p + n, o->packet_id);
        put32(p + n + 4, o->net_time);
        n += 8;
    }
    size_t rest = n;
    p[n++] = 0;      /* ack array length */
    put32(p + n, 0); /* message packet id */
    n += 4;
    if (hlen && compute_hmac(o, 1, pidtime, p, p + rest, n - rest, mac, hlen) < 0) {
        snprintf(err, errlen, "tls-auth HMAC computation failed");
        return -1;
    }
framed:
    if (o->tcp) {
        pkt[0] = (unsigned char)(n >> 8);
        pkt[1] = (unsigned char)n;
    }
    if (off + n > cap) {
        snprintf(err, errlen, "output buffer too small");
        return -1;
    }
    memcpy(out, pkt, off + n);
    *outlen = off + n;
    return 0;
}

static int fail(char *failure, size_t flen, const char *what)
{
    snprintf(failure, flen, "%s", what);
    return VT_OVPN_BAD;
}

static int parse_packet(const vt_openvpn_opts *o, const unsigned char sid[VT_OVPN_SID_LEN],
                        const unsigned char *p, size_t n, vt_openvpn_reply *r, char *failure,
                        size_t flen)
{
    if (n < 1 + VT_OVPN_SID_LEN) return fail(failure, flen, "openvpn_truncated_reply");
    r->opcode = p[0] >> 3;
    r->key_id = p[0] & 7;
    memcpy(r->server_sid, p + 1, VT_OVPN_SID_LEN);
    if (r->opcode != VT_OVPN_OP_SERVER_RESET_V2 && r->opcode != VT_OVPN_OP_ACK_V1 &&
        r->opcode != VT_OVPN_OP_CONTROL_V1) {
        snprintf(failure, flen, "openvpn_unexpected_opcode_%d", r->opcode);
        return VT_OVPN_BAD;
    }
    size_t off = 9;
    unsigned char plain[VT_OVPN_MAX_PACKET];
    if (o->tls_crypt) {
        unsigned char tag[32];
        if (n < 9 + 8 + 32) return fail(failure, flen, "openvpn_truncated_reply");
        size_t ctlen = n - 49;
        if (ctlen > sizeof(plain)) return fail(failure, flen, "openvpn_oversized_reply");
        memcpy(plain, p, 9); /* the header stays in front, clear */
        if (crypt_ctr(o, 0, p + 17, p + 49, ctlen, plain + 9) < 0 ||
            crypt_tag(o, 0, p, plain + 9, ctlen, tag) < 0)
            return fail(failure, flen, "openvpn_crypto_error");
        if (CRYPTO_memcmp(tag, p + 17, 32) != 0) return fail(failure, flen, "openvpn_bad_hmac");
        r->hmac_checked = 1;
        p = plain;
        n = 9 + ctlen;
    } else if (o->tls_auth) {
        size_t hlen = vt_openvpn_digest_len(o->auth_digest);
        if (!hlen) return fail(failure, flen, "openvpn_bad_digest");
        if (n < off + hlen + 8) return fail(failure, flen, "openvpn_truncated_reply");
        unsigned char mac[64];
        if (compute_hmac(o, 0, p + off + hlen, p, p + off + hlen + 8, n - off - hlen - 8, mac,
                         hlen) < 0)
            return fail(failure, flen, "openvpn_oversized_reply");
        if (CRYPTO_memcmp(mac, p + off, hlen) != 0) return fail(failure, flen, "openvpn_bad_hmac");
        r->hmac_checked = 1;
        off += hlen + 8;
    }
    if (n < off + 1) return fail(failure, flen, "openvpn_truncated_reply");
    r->n_acks = p[off++];
    if (r->n_acks > OVPN_MAX_ACKS) return fail(failure, flen, "openvpn_bad_ack_array");
    if (n < off + 4 * (size_t)r->n_acks + (r->n_acks ? VT_OVPN_SID_LEN : 0))
        return fail(failure, flen, "openvpn_truncated_reply");
    for (int i = 0; i < r->n_acks; i++)
        if (get32(p + off + 4 * (size_t)i) == 0) r->acked_our_packet = 1;
    off += 4 * (size_t)r->n_acks;
    if (r->n_acks) {
        r->echoed_session_id = memcmp(p + off, sid, VT_OVPN_SID_LEN) == 0;
        off += VT_OVPN_SID_LEN;
    }
    if (r->opcode == VT_OVPN_OP_ACK_V1) {
        r->payload_len = n - off;
        snprintf(failure, flen, "openvpn_ack_without_reset");
        return VT_OVPN_OTHER;
    }
    if (n < off + 4) return fail(failure, flen, "openvpn_truncated_reply");
    r->message_packet_id = get32(p + off);
    off += 4;
    r->payload_len = n - off;
    if (r->opcode != VT_OVPN_OP_SERVER_RESET_V2)
        return fail(failure, flen, "openvpn_control_without_reset");
    if (r->n_acks && !r->echoed_session_id) return fail(failure, flen, "openvpn_wrong_session_id");
    if (!r->acked_our_packet) return fail(failure, flen, "openvpn_reset_without_ack");
    return VT_OVPN_OK;
}

int vt_openvpn_parse_reply(const vt_openvpn_opts *o, const unsigned char sid[VT_OVPN_SID_LEN],
                           const unsigned char *buf, size_t len, vt_openvpn_reply *r, char *failure,
                           size_t flen)
{
    memset(r, 0, sizeof(*r));
    if (failure && flen) failure[0] = 0;
    if (!buf) return fail(failure, flen, "openvpn_truncated_reply");
    if (!o->tcp) {
        if (len > VT_OVPN_MAX_PACKET) return fail(failure, flen, "openvpn_oversized_reply");
        r->consumed = len;
        return parse_packet(o, sid, buf, len, r, failure, flen);
    }
    if (len < 2) return VT_OVPN_NEED_MORE;
    size_t plen = (size_t)buf[0] << 8 | buf[1];
    if (plen == 0 || plen > VT_OVPN_MAX_PACKET)
        return fail(failure, flen, "openvpn_bad_length_prefix");
    if (len < 2 + plen) return VT_OVPN_NEED_MORE;
    r->consumed = 2 + plen;
    return parse_packet(o, sid, buf + 2, plen, r, failure, flen);
}
