/* TCP connect step: a non-blocking connect watched by the loop. */
#include "vantage/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vantage/addr.h"
#include "vantage/json.h"

typedef struct tcp_op {
    vt_tcp_result r;
    vt_tcp_cb cb;
    void *arg;
    int fd;
    double t_base;
    struct event *ev;
    int immediate_errno; /* connect() failed at once: report from the loop */
} tcp_op;

int vt_split_host_port(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hl;
    if (!s || !*s)
        return -1;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        hl = (size_t)(end - s - 1);
        s++;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* no port, or a bare IPv6 address without brackets */
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return -1;
    memcpy(host, s, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

static void finish(tcp_op *op, int err)
{
    op->r.t = vt_now() - op->t_base;
    int fd = -1;
    if (err == 0) {
        fd = op->fd;
        op->r.failure[0] = 0;
    } else {
        if (err == ETIMEDOUT)
            snprintf(op->r.failure, sizeof(op->r.failure), "generic_timeout_error");
        else
            vt_failure_errno(err, op->r.failure, sizeof(op->r.failure));
        if (op->fd >= 0)
            close(op->fd);
    }
    if (op->ev)
        event_free(op->ev);
    vt_tcp_cb cb = op->cb;
    void *arg = op->arg;
    vt_tcp_result r = op->r;
    free(op);
    cb(&r, fd, arg);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    tcp_op *op = arg;
    if (op->immediate_errno) {
        finish(op, op->immediate_errno);
        return;
    }
    if (what & EV_TIMEOUT) {
        finish(op, ETIMEDOUT);
        return;
    }
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    finish(op, soerr);
}

int vt_tcp_connect(vt_loop *loop, const char *ip, int port, int timeout_ms, double t_base,
                   vt_tcp_cb cb, void *arg)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (!loop || !cb || vt_addr_sockaddr(ip, port, &ss, &sslen) < 0)
        return -1;
    if (timeout_ms <= 0)
        timeout_ms = 10000; /* 0 would time out at once */
    tcp_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -1;
    op->cb = cb;
    op->arg = arg;
    op->t_base = t_base;
    snprintf(op->r.ip, sizeof(op->r.ip), "%s", ip);
    op->r.port = port;
    op->r.t0 = vt_now() - t_base;
    op->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (op->fd < 0) {
        op->immediate_errno = errno;
    } else if (!vt_loop_addr_allowed(loop, (struct sockaddr *)&ss)) {
        op->immediate_errno = EPERM;
    } else if (connect(op->fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
        op->immediate_errno = errno;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (op->immediate_errno) {
        /* Report from the loop, never from inside this call. */
        op->ev = evtimer_new(vt_loop_base(loop), on_event, op);
        tv.tv_sec = tv.tv_usec = 0;
    } else {
        op->ev = event_new(vt_loop_base(loop), op->fd, EV_WRITE, on_event, op);
    }
    if (!op->ev || event_add(op->ev, &tv) < 0) {
        if (op->ev)
            event_free(op->ev);
        if (op->fd >= 0)
            close(op->fd);
        free(op);
        return -1;
    }
    return 0;
}

cJSON *vt_tcp_result_json(const vt_tcp_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ip", r->ip);
    cJSON_AddNumberToObject(o, "port", r->port);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    cJSON_AddBoolToObject(st, "success", r->failure[0] == 0);
    vt_json_add_failure(st, "failure", r->failure);
    /* OONI's meaning: this connect failed while the control connected to the same address.
     * A connect that worked is not blocked; a failure is unknown (null) until the verdict
     * compares it with the control (lib/verdict.c mark_tcp_blocked). */
    if (r->failure[0] == 0)
        cJSON_AddFalseToObject(st, "blocked");
    else
        cJSON_AddNullToObject(st, "blocked");
    vt_json_add_time(o, "t0", r->t0);
    vt_json_add_time(o, "t", r->t);
    cJSON_AddNullToObject(o, "tags"); /* as OONI's web_connectivity: null */
    return o;
}
