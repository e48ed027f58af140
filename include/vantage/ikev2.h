/* IKEv2 handshake probe: an IKE_SA_INIT request (RFC 7296) with common proposals and a real
 * key-exchange value, and the check of the responder's answer. Pure functions, no I/O. */
#ifndef VANTAGE_IKEV2_H
#define VANTAGE_IKEV2_H

#include <stddef.h>
#include <stdint.h>

#define VT_IKE_SPI_LEN 8
#define VT_IKE_MAX_MESSAGE 3000
#define VT_IKE_MAX_NOTIFIES 8

/* Transform type 4 values. */
#define VT_IKE_DH_MODP2048 14
#define VT_IKE_DH_ECP256 19
#define VT_IKE_DH_CURVE25519 31

/* Notify message types worth naming. */
#define VT_IKE_N_NO_PROPOSAL_CHOSEN 14
#define VT_IKE_N_INVALID_KE_PAYLOAD 17
#define VT_IKE_N_COOKIE 16390

typedef struct vt_ikev2_opts {
    int natt;     /* 1: port 4500 framing, a 4-byte non-ESP marker (zeros) before the message */
    int ke_group; /* group of the KE payload: 14, 19 or 31 (default 31 when 0) */
} vt_ikev2_opts;

typedef struct vt_ikev2_reply {
    unsigned char spi_r[VT_IKE_SPI_LEN];
    int spi_r_nonzero;
    int exchange;
    int flags;
    uint32_t message_id;
    int has_sa, has_ke, has_nonce;
    int n_notifies;
    int notifies[VT_IKE_MAX_NOTIFIES]; /* notify message types, in order */
    int error_notify;                  /* first notify type < 16384, or 0 */
    int invalid_ke_group;              /* the group the responder asks for, with INVALID_KE */
    int chosen_encr, chosen_encr_keylen, chosen_prf, chosen_integ, chosen_dh; /* from its SA */
} vt_ikev2_reply;

/* Builds the request into out (cap bytes, 1200 are enough for group 14). spi_i: our SPI. */
int vt_ikev2_build_sa_init(const vt_ikev2_opts *o, const unsigned char spi_i[VT_IKE_SPI_LEN],
                           unsigned char *out, size_t cap, size_t *outlen, char *err,
                           size_t errlen);

#define VT_IKE_OK 0 /* a responder's IKE_SA_INIT answer to our SPI */
#define VT_IKE_BAD (-1)

/* Checks a datagram. Success: our SPIi, exchange 34, the response flag, and either a non-zero
 * SPIr or a notify. failure: "ikev2_truncated_reply", "ikev2_wrong_spi", ... */
int vt_ikev2_parse_reply(const vt_ikev2_opts *o, const unsigned char spi_i[VT_IKE_SPI_LEN],
                         const unsigned char *buf, size_t len, vt_ikev2_reply *r, char *failure,
                         size_t flen);

/* "NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD", ... or NULL for a type without a name here. */
const char *vt_ikev2_notify_name(int type);

#endif
