/* TCP request/response step: connect (vt_tcp_connect), write a request, read until a
 * caller-supplied check says the reply is complete. For binary protocols on TCP (OpenVPN over
 * TCP); TLS and HTTP have their own steps. */
#ifndef VANTAGE_TCP_EXCHANGE_H
#define VANTAGE_TCP_EXCHANGE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "failure.h"
#include "loop.h"
#include "tcp.h"

#define VT_TCPX_MAX_REPLY 65536 /* bytes read at most */

/* What a check says of the bytes read so far. */
#define VT_TCPX_NEED_MORE 0
#define VT_TCPX_ACCEPT 1
#define VT_TCPX_REJECT 2 /* failure filled */

typedef int (*vt_tcpx_check_fn)(const unsigned char *buf, size_t len, void *arg, char *failure,
                                size_t flen);

typedef struct vt_tcpx_opts {
    const char *ip;
    int port;
    const unsigned char *payload; /* copied */
    size_t payload_len;
    int connect_timeout_ms;
    int timeout_ms; /* from connected to an accepted reply (default 10000) */
    vt_tcpx_check_fn check;
    void *check_arg;
    double t_base;
} vt_tcpx_opts;

typedef struct vt_tcpx_result {
    vt_tcp_result tcp;            /* the connect */
    char failure[VT_FAILURE_MAX]; /* "" when the reply was accepted */
    const char *failed_operation; /* "connect", "write", "read" or NULL */
    double t0, t;                 /* write start, end */
    double rtt;                   /* request written to reply accepted; -1 without */
    size_t bytes_sent, bytes_received;
    const unsigned char *reply; /* valid during the callback */
    size_t reply_len;
} vt_tcpx_result;

typedef void (*vt_tcpx_cb)(const vt_tcpx_result *r, void *arg);
/* -1 only when it cannot start; otherwise cb exactly once from the loop. */
int vt_tcpx_exchange(vt_loop *loop, const vt_tcpx_opts *o, vt_tcpx_cb cb, void *arg);

#endif
