/* OpenVPN handshake probe: the client's first control packet (P_CONTROL_HARD_RESET_CLIENT_V2)
 * and the check of the server's answer (P_CONTROL_HARD_RESET_SERVER_V2 acknowledging our session
 * id), plain or with tls-auth. Pure functions: no I/O, defensive on any input. */
#ifndef VANTAGE_OPENVPN_H
#define VANTAGE_OPENVPN_H

#include <stddef.h>
#include <stdint.h>

#define VT_OVPN_STATIC_KEY_LEN 256
#define VT_OVPN_SID_LEN 8
#define VT_OVPN_MAX_PACKET 1600

#define VT_OVPN_OP_CLIENT_RESET_V2 7
#define VT_OVPN_OP_SERVER_RESET_V2 8
#define VT_OVPN_OP_ACK_V1 5
#define VT_OVPN_OP_CONTROL_V1 4

/* key_direction: the value of OpenVPN's "key-direction" (or the tls-auth file argument) on the
 * client's side; -1 when none (bidirectional: both directions use the first key). */
#define VT_OVPN_KEYDIR_NONE (-1)

typedef struct vt_openvpn_opts {
    int tcp;                       /* 1: 2-byte big-endian length prefix */
    const unsigned char *tls_auth; /* VT_OVPN_STATIC_KEY_LEN bytes, or NULL: no tls-auth */
    int key_direction;             /* VT_OVPN_KEYDIR_NONE, 0 or 1 (client's) */
    const char *auth_digest;       /* "SHA1" (default), "SHA256" or "SHA512" */
    /* tls-crypt key (VT_OVPN_STATIC_KEY_LEN bytes) or NULL; excludes tls_auth. AES-256-CTR and
     * HMAC-SHA256 with the client's key direction, as OpenVPN's tls-crypt. */
    const unsigned char *tls_crypt;
    uint32_t packet_id; /* tls-auth/tls-crypt packet id (1 for the first packet) */
    uint32_t net_time;  /* tls-auth/tls-crypt time (seconds since the epoch) */
} vt_openvpn_opts;

typedef struct vt_openvpn_reply {
    int opcode; /* of the packet parsed */
    int key_id;
    unsigned char server_sid[VT_OVPN_SID_LEN];
    int n_acks;
    int acked_our_packet;  /* 1 when the ack array holds our packet id 0 */
    int echoed_session_id; /* 1 when the remote session id is ours */
    int hmac_checked;      /* 1 when a tls-auth HMAC or tls-crypt tag was verified */
    uint32_t message_packet_id;
    size_t payload_len; /* bytes after the message packet id */
    size_t consumed;    /* bytes of buf used (TCP: with the length prefix) */
} vt_openvpn_reply;

/* Parses an OpenVPN static key V1 file ("-----BEGIN OpenVPN Static key V1-----", 512 hex digits,
 * '#' comments). 0 on success, -1 with err. */
int vt_openvpn_parse_static_key(const char *text, size_t len,
                                unsigned char out[VT_OVPN_STATIC_KEY_LEN], char *err,
                                size_t errlen);

/* Length of the HMAC for a digest name (20, 32, 64), or 0 when unsupported. */
size_t vt_openvpn_digest_len(const char *digest);

/* Builds the client's hard reset into out (cap bytes). 0 on success with *outlen set. */
int vt_openvpn_build_reset(const vt_openvpn_opts *o, const unsigned char sid[VT_OVPN_SID_LEN],
                           unsigned char *out, size_t cap, size_t *outlen, char *err,
                           size_t errlen);

/* Result of a reply check. */
#define VT_OVPN_OK 0        /* a server hard reset acknowledging our session id */
#define VT_OVPN_NEED_MORE 1 /* TCP: the packet is not complete yet */
#define VT_OVPN_OTHER 2     /* a well-formed ack without the reset: wait for more */
#define VT_OVPN_BAD (-1)    /* not what a server answers: failure filled */

/* Checks one datagram (or the start of a TCP stream) against the reset we sent with sid.
 * failure gets a short string such as "openvpn_bad_hmac" or "openvpn_truncated_reply". */
int vt_openvpn_parse_reply(const vt_openvpn_opts *o, const unsigned char sid[VT_OVPN_SID_LEN],
                           const unsigned char *buf, size_t len, vt_openvpn_reply *r, char *failure,
                           size_t flen);

#endif
