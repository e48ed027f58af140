/* UDP exchange measurement step: send a datagram to ip:port from a connected socket on the loop,
 * send it again up to N times, and wait for a reply that a caller-supplied check accepts. With
 * timing, counts and an OONI failure string. */
#ifndef VANTAGE_UDP_H
#define VANTAGE_UDP_H

#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stddef.h>

#include "failure.h"
#include "loop.h"

#define VT_UDP_MAX_DATAGRAM 65535
#define VT_UDP_KEEP 2048      /* bytes of the reply kept in the result */
#define VT_UDP_MAX_REPLIES 64 /* datagrams read in one exchange at most */

/* What a check says of one datagram. */
#define VT_UDP_IGNORE 0 /* not ours / not valid: keep waiting (failure: the reason, remembered) */
#define VT_UDP_ACCEPT 1 /* the answer: done */
#define VT_UDP_REJECT 2 /* a definite negative answer: done, with failure */

/* failure has flen bytes, "" on entry. NULL check: any datagram is accepted. */
typedef int (*vt_udp_check_fn)(const unsigned char *buf, size_t len, void *arg, char *failure,
                               size_t flen);

typedef struct vt_udp_opts {
    const char *ip; /* IPv4 or IPv6 literal */
    int port;
    const unsigned char *payload; /* copied: need not outlive the call */
    size_t payload_len;
    int tries;       /* datagrams sent in all (default 3, at most 10) */
    int interval_ms; /* wait after each send (default 1000) */
    vt_udp_check_fn check;
    void *check_arg;
    double t_base;
} vt_udp_opts;

typedef struct vt_udp_result {
    char ip[INET6_ADDRSTRLEN];
    int port;
    char failure[VT_FAILURE_MAX]; /* "" when a reply was accepted */
    double t0, t;                 /* first send, end; seconds since the measurement's start */
    double rtt;         /* the send to the accepted reply, seconds; -1 without one, or after a
                         * retransmission (which send it answers is unknown: Karn's rule) */
    int sends, replies; /* datagrams sent and received */
    size_t bytes_sent, bytes_received;
    unsigned char reply[VT_UDP_KEEP]; /* the accepted (or else the last) reply, cut to KEEP */
    size_t reply_len;                 /* its full length */
} vt_udp_result;

typedef void (*vt_udp_cb)(const vt_udp_result *r, void *arg);

/* Returns -1 only when it cannot start (bad address, payload too large); otherwise cb is called
 * exactly once from the loop. */
int vt_udp_exchange(vt_loop *loop, const vt_udp_opts *o, vt_udp_cb cb, void *arg);

/* {address, ip, port, transport:"udp", failure, sent, received, bytes_sent, bytes_received,
 *  rtt_ms|null, t0, t}. */
cJSON *vt_udp_result_json(const vt_udp_result *r);

#endif
