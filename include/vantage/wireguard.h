/* WireGuard handshake probe: a real Noise_IKpsk2 handshake initiation (148 bytes) and the check
 * of the server's 92-byte response, authenticated and decrypted; built on OpenSSL 3.0 (X25519,
 * BLAKE2s, HMAC-BLAKE2s, keyed BLAKE2s-128, ChaCha20-Poly1305, XChaCha20-Poly1305 for cookie
 * replies). Pure functions, no I/O.
 * The responder side is here too: the unit tests and the loopback test server use it. */
#ifndef VANTAGE_WIREGUARD_H
#define VANTAGE_WIREGUARD_H

#include <stddef.h>
#include <stdint.h>

#define VT_WG_KEY_LEN 32
#define VT_WG_INIT_LEN 148
#define VT_WG_RESP_LEN 92
#define VT_WG_COOKIE_LEN 64

/* The initiator's state between the initiation and the response. Holds key material: wipe it
 * with vt_wg_handshake_clear. */
typedef struct vt_wg_handshake {
    unsigned char ck[32], h[32];
    unsigned char eph_priv[32], eph_pub[32];
    unsigned char static_priv[32], static_pub[32];
    unsigned char server_pub[32];
    unsigned char psk[32];
    uint32_t sender_index;
    unsigned char msg[VT_WG_INIT_LEN];
} vt_wg_handshake;

typedef struct vt_wg_reply {
    int type;                /* 2 response, 3 cookie reply, else the first byte */
    uint32_t sender_index;   /* the responder's index (response) */
    uint32_t receiver_index; /* ours, echoed */
    int authenticated;       /* 1: the empty payload decrypted with the derived key */
} vt_wg_reply;

/* A 32-byte key from its base64 form (44 characters, as wg prints them). */
int vt_wg_key_from_base64(const char *b64, unsigned char out[VT_WG_KEY_LEN], char *err,
                          size_t errlen);
void vt_wg_key_to_base64(const unsigned char key[VT_WG_KEY_LEN], char out[45]);
int vt_wg_generate_private(unsigned char priv[VT_WG_KEY_LEN]);
int vt_wg_public_key(const unsigned char priv[VT_WG_KEY_LEN], unsigned char pub[VT_WG_KEY_LEN]);
/* TAI64N of now (12 bytes). */
void vt_wg_tai64n_now(unsigned char out[12]);

/* Builds the initiation into hs->msg. psk NULL: all zeros (no pre-shared key). tai64n NULL: now.
 * 0 on success, -1 with err. */
int vt_wg_build_initiation(vt_wg_handshake *hs, const unsigned char client_priv[VT_WG_KEY_LEN],
                           const unsigned char server_pub[VT_WG_KEY_LEN], const unsigned char *psk,
                           uint32_t sender_index, const unsigned char *tai64n, char *err,
                           size_t errlen);

/* The same with a given ephemeral private key (NULL: fresh): for known-answer tests only. */
int vt_wg_build_initiation_eph(vt_wg_handshake *hs, const unsigned char client_priv[VT_WG_KEY_LEN],
                               const unsigned char server_pub[VT_WG_KEY_LEN],
                               const unsigned char *psk, uint32_t sender_index,
                               const unsigned char *tai64n, const unsigned char *eph_priv,
                               char *err, size_t errlen);

#define VT_WG_OK 0     /* an authenticated handshake response to our initiation */
#define VT_WG_COOKIE 1 /* an authentic cookie reply to our initiation: the server is under load */
#define VT_WG_BAD (-1) /* anything else; failure filled */

int vt_wg_parse_reply(const vt_wg_handshake *hs, const unsigned char *buf, size_t len,
                      vt_wg_reply *r, char *failure, size_t flen);
void vt_wg_handshake_clear(vt_wg_handshake *hs);

/* Responder: checks mac1 and decrypts an initiation with the server's private key. On success
 * the initiator's static public key and timestamp are out, and the state for the response is
 * kept in st. */
typedef struct vt_wg_responder {
    unsigned char ck[32], h[32];
    unsigned char init_eph[32], init_static[32];
    unsigned char timestamp[12];
    unsigned char psk[32];
    uint32_t init_index;
} vt_wg_responder;

int vt_wg_responder_consume(vt_wg_responder *st, const unsigned char server_priv[VT_WG_KEY_LEN],
                            const unsigned char *psk, const unsigned char *msg, size_t len,
                            char *err, size_t errlen);
/* A server under load's cookie reply to the initiation init: the 16-byte cookie encrypted with
 * XChaCha20-Poly1305 under HASH("cookie--" || server_pub), the 24-byte nonce, and the
 * initiation's mac1 as additional data. 0 ok, -1 (not an initiation, crypto). */
int vt_wg_cookie_reply(const unsigned char server_pub[VT_WG_KEY_LEN], const unsigned char *init,
                       size_t init_len, const unsigned char cookie[16],
                       const unsigned char nonce[24], unsigned char out[VT_WG_COOKIE_LEN]);
/* HChaCha20 (XChaCha20's subkey derivation), exposed for its known-answer test. */
int vt_wg_hchacha20(const unsigned char key[32], const unsigned char nonce[16],
                    unsigned char out[32]);

/* Writes the 92-byte response (fresh ephemeral key). */
int vt_wg_responder_respond(vt_wg_responder *st, uint32_t sender_index,
                            unsigned char out[VT_WG_RESP_LEN], char *err, size_t errlen);

#endif
