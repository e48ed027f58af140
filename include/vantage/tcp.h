/* TCP connect measurement step: a non-blocking connect on the loop, with timing and failure. */
#ifndef VANTAGE_TCP_H
#define VANTAGE_TCP_H

#include <cjson/cJSON.h>
#include <netinet/in.h>

#include "failure.h"
#include "loop.h"

typedef struct vt_tcp_result {
    char ip[INET6_ADDRSTRLEN];
    int port;
    char failure[VT_FAILURE_MAX]; /* "" when connected */
    double t0, t;                 /* seconds since the measurement's start */
} vt_tcp_result;

/* fd: the connected non-blocking socket, now owned by the callee (close it), or -1. */
typedef void (*vt_tcp_cb)(const vt_tcp_result *r, int fd, void *arg);
/* Connects to ip:port (IPv4 or IPv6 literal). Returns -1 only when it cannot even start
 * (bad address); otherwise cb is called exactly once from the loop. */
int vt_tcp_connect(vt_loop *loop, const char *ip, int port, int timeout_ms, double t_base,
                   vt_tcp_cb cb, void *arg);

/* OONI "tcp_connect" entry: {ip, port, status:{success, failure, blocked}, t0, t, tags:null};
 * blocked is false when the connect worked, null when it failed (the verdict decides it). */
cJSON *vt_tcp_result_json(const vt_tcp_result *r);

/* Parses "host:port", "[v6]:port" into host and port; -1 when malformed. */
int vt_split_host_port(const char *s, char *host, size_t hostlen, int *port);

#endif
