/* TCP request/response step on top of vt_tcp_connect. */
#include "vantage/tcp_exchange.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct tcpx {
    vt_loop *loop;
    int fd;
    struct event *ev, *tm;
    unsigned char *payload;
    size_t payload_len, written;
    int timeout_ms;
    vt_tcpx_check_fn check;
    void *check_arg;
    double t_base, t_written;
    vt_tcpx_cb cb;
    void *arg;
    vt_tcpx_result r;
    unsigned char *buf;
    size_t len;
} tcpx;

static void finish(tcpx *x, const char *op, const char *failure)
{
    snprintf(x->r.failure, sizeof(x->r.failure), "%s", failure ? failure : "");
    x->r.failed_operation = failure && *failure ? op : NULL;
    x->r.t = vt_now() - x->t_base;
    x->r.reply = x->buf;
    x->r.reply_len = x->len;
    if (x->ev) event_free(x->ev);
    if (x->tm) event_free(x->tm);
    if (x->fd >= 0) close(x->fd);
    x->cb(&x->r, x->arg);
    free(x->payload);
    free(x->buf);
    free(x);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    tcpx *x = arg;
    finish(x, x->written < x->payload_len ? "write" : "read", "generic_timeout_error");
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    tcpx *x = arg;
    char f[VT_FAILURE_MAX];
    if (x->written < x->payload_len) {
        ssize_t n = send(x->fd, x->payload + x->written, x->payload_len - x->written, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            finish(x, "write", vt_failure_errno(errno, f, sizeof(f)));
            return;
        }
        x->written += (size_t)n;
        x->r.bytes_sent = x->written;
        if (x->written < x->payload_len) return;
        x->t_written = vt_now();
        event_del(x->ev);
        event_assign(x->ev, vt_loop_base(x->loop), x->fd, EV_READ | EV_PERSIST, on_io, x);
        event_add(x->ev, NULL);
        return;
    }
    for (int budget = 0; budget < 16; budget++) {
        if (x->len >= VT_TCPX_MAX_REPLY) {
            finish(x, "read", "reply_too_large");
            return;
        }
        ssize_t n = recv(x->fd, x->buf + x->len, VT_TCPX_MAX_REPLY - x->len, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            finish(x, "read", vt_failure_errno(errno, f, sizeof(f)));
            return;
        }
        if (n == 0) {
            finish(x, "read", "eof_error");
            return;
        }
        x->len += (size_t)n;
        x->r.bytes_received = x->len;
        char why[VT_FAILURE_MAX] = "";
        int v =
            x->check ? x->check(x->buf, x->len, x->check_arg, why, sizeof(why)) : VT_TCPX_ACCEPT;
        if (v == VT_TCPX_ACCEPT) {
            x->r.rtt = vt_now() - x->t_written;
            finish(x, NULL, "");
            return;
        }
        if (v == VT_TCPX_REJECT) {
            finish(x, "read", why[0] ? why : "unexpected_reply");
            return;
        }
    }
}

static void on_connect(const vt_tcp_result *tr, int fd, void *arg)
{
    tcpx *x = arg;
    x->r.tcp = *tr;
    x->fd = fd;
    if (fd < 0) {
        finish(x, "connect", tr->failure[0] ? tr->failure : "unknown_failure: no socket");
        return;
    }
    x->r.t0 = vt_now() - x->t_base;
    x->t_written = vt_now();
    x->ev = event_new(vt_loop_base(x->loop), fd, (x->payload_len ? EV_WRITE : EV_READ) | EV_PERSIST,
                      on_io, x);
    x->tm = evtimer_new(vt_loop_base(x->loop), on_timeout, x);
    if (!x->ev || !x->tm) {
        finish(x, "write", "unknown_failure: out of memory");
        return;
    }
    struct timeval tv = {x->timeout_ms / 1000, (x->timeout_ms % 1000) * 1000};
    evtimer_add(x->tm, &tv);
    event_add(x->ev, NULL);
}

int vt_tcpx_exchange(vt_loop *loop, const vt_tcpx_opts *o, vt_tcpx_cb cb, void *arg)
{
    tcpx *x = calloc(1, sizeof(*x));
    if (!x) return -1;
    x->loop = loop;
    x->fd = -1;
    x->cb = cb;
    x->arg = arg;
    x->check = o->check;
    x->check_arg = o->check_arg;
    x->t_base = o->t_base;
    x->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    x->r.rtt = -1;
    x->payload = malloc(o->payload_len ? o->payload_len : 1);
    x->buf = malloc(VT_TCPX_MAX_REPLY);
    if (!x->payload || !x->buf) goto fail;
    if (o->payload_len) memcpy(x->payload, o->payload, o->payload_len);
    x->payload_len = o->payload_len;
    if (vt_tcp_connect(loop, o->ip, o->port,
                       o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000, o->t_base,
                       on_connect, x) < 0)
        goto fail;
    return 0;
fail:
    free(x->payload);
    free(x->buf);
    free(x);
    return -1;
}
