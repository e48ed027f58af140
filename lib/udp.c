/* UDP exchange step: a connected socket (so ICMP port unreachable comes back as
 * connection_refused), retransmission on a timer, replies judged by the caller's check. */
#include "vantage/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vantage/addr.h"
#include "vantage/json.h"

typedef struct udpx {
    vt_loop *loop;
    int fd;
    struct event *rd, *tm;
    unsigned char *payload;
    size_t payload_len;
    int tries, interval_ms;
    vt_udp_check_fn check;
    void *check_arg;
    double t_base, last_send;
    char reason[VT_FAILURE_MAX];        /* why the last ignored reply was ignored */
    char start_failure[VT_FAILURE_MAX]; /* socket()/connect() failed */
    vt_udp_cb cb;
    void *arg;
    vt_udp_result r;
    unsigned char buf[VT_UDP_MAX_DATAGRAM + 1];
} udpx;

static void finish(udpx *x, const char *failure)
{
    snprintf(x->r.failure, sizeof(x->r.failure), "%s", failure ? failure : "");
    x->r.t = vt_now() - x->t_base;
    if (x->rd) event_free(x->rd);
    if (x->tm) event_free(x->tm);
    if (x->fd >= 0) close(x->fd);
    x->cb(&x->r, x->arg);
    free(x->payload);
    free(x);
}

static void finish_errno(udpx *x, int err)
{
    char f[VT_FAILURE_MAX];
    finish(x, vt_failure_errno(err, f, sizeof(f)));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    udpx *x = arg;
    if (x->start_failure[0]) {
        finish(x, x->start_failure);
        return;
    }
    if (x->r.sends >= x->tries) {
        finish(x, x->r.replies && x->reason[0] ? x->reason : "generic_timeout_error");
        return;
    }
    double now = vt_now();
    if (x->r.sends == 0) x->r.t0 = now - x->t_base;
    ssize_t n = send(x->fd, x->payload, x->payload_len, 0);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
        finish_errno(x, errno); /* ECONNREFUSED: an earlier datagram met ICMP unreachable */
        return;
    }
    x->r.sends++; /* a send the kernel dropped still uses a try */
    if (n > 0) x->r.bytes_sent += (size_t)n;
    x->last_send = now;
    struct timeval tv = {x->interval_ms / 1000, (x->interval_ms % 1000) * 1000};
    evtimer_add(x->tm, &tv);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    udpx *x = arg;
    for (int budget = 0; budget < 16; budget++) {
        ssize_t n = recv(x->fd, x->buf, sizeof(x->buf), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            finish_errno(x, errno); /* ECONNREFUSED: ICMP port unreachable */
            return;
        }
        size_t len = (size_t)n;
        if (x->r.sends == 0)
            continue; /* nothing asked yet: not an answer */
        x->r.replies++;
        x->r.bytes_received += len;
        x->r.reply_len = len;
        memcpy(x->r.reply, x->buf, len < VT_UDP_KEEP ? len : VT_UDP_KEEP);
        char why[VT_FAILURE_MAX] = "";
        int verdict =
            x->check ? x->check(x->buf, len, x->check_arg, why, sizeof(why)) : VT_UDP_ACCEPT;
        if (verdict == VT_UDP_ACCEPT) {
            /* Karn's rule: after a retransmission the reply may answer any of the sends (the
             * datagrams are the same), so no round trip can be told: a slow server answering
             * the first would read as fast as the time since the last. */
            x->r.rtt = x->r.sends == 1 ? vt_now() - x->last_send : -1;
            finish(x, "");
            return;
        }
        if (verdict == VT_UDP_REJECT) {
            finish(x, why[0] ? why : "unexpected_reply");
            return;
        }
        snprintf(x->reason, sizeof(x->reason), "%s", why[0] ? why : "unexpected_reply");
        if (x->r.replies >= VT_UDP_MAX_REPLIES) {
            finish(x, x->reason);
            return;
        }
    }
}

int vt_udp_exchange(vt_loop *loop, const vt_udp_opts *o, vt_udp_cb cb, void *arg)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (o->payload_len > VT_UDP_MAX_DATAGRAM || vt_addr_sockaddr(o->ip, o->port, &ss, &sl) < 0)
        return -1;
    udpx *x = calloc(1, sizeof(*x));
    if (!x) return -1;
    x->loop = loop;
    x->fd = -1;
    x->cb = cb;
    x->arg = arg;
    x->check = o->check;
    x->check_arg = o->check_arg;
    x->t_base = o->t_base;
    x->tries = o->tries > 0 ? (o->tries > 10 ? 10 : o->tries) : 3;
    x->interval_ms = o->interval_ms > 0 ? o->interval_ms : 1000;
    snprintf(x->r.ip, sizeof(x->r.ip), "%s", o->ip);
    x->r.port = o->port;
    x->r.rtt = -1;
    x->r.t0 = vt_now() - o->t_base;
    x->payload = malloc(o->payload_len ? o->payload_len : 1);
    x->tm = evtimer_new(vt_loop_base(loop), on_timer, x);
    if (!x->payload || !x->tm) {
        if (x->tm) event_free(x->tm);
        free(x->payload);
        free(x);
        return -1;
    }
    if (o->payload_len) memcpy(x->payload, o->payload, o->payload_len);
    x->payload_len = o->payload_len;
    struct timeval now0 = {0, 0};
    x->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int start_errno = 0;
    if (x->fd < 0)
        start_errno = errno;
    else if (!vt_loop_addr_allowed(loop, (struct sockaddr *)&ss))
        start_errno = EPERM; /* the loop's destination policy */
    else if (connect(x->fd, (struct sockaddr *)&ss, sl) < 0)
        start_errno = errno;
    if (start_errno) {
        /* Reported from the loop, like every other outcome. */
        vt_failure_errno(start_errno, x->start_failure, sizeof(x->start_failure));
        evtimer_add(x->tm, &now0);
        return 0;
    }
    x->rd = event_new(vt_loop_base(loop), x->fd, EV_READ | EV_PERSIST, on_read, x);
    if (!x->rd) {
        event_free(x->tm);
        close(x->fd);
        free(x->payload);
        free(x);
        return -1;
    }
    event_add(x->rd, NULL);
    evtimer_add(x->tm, &now0);
    return 0;
}

cJSON *vt_udp_result_json(const vt_udp_result *r)
{
    cJSON *o = cJSON_CreateObject();
    char addr[INET6_ADDRSTRLEN + 8];
    if (strchr(r->ip, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%d", r->ip, r->port);
    else
        snprintf(addr, sizeof(addr), "%s:%d", r->ip, r->port);
    cJSON_AddStringToObject(o, "address", addr);
    cJSON_AddStringToObject(o, "ip", r->ip);
    cJSON_AddNumberToObject(o, "port", r->port);
    cJSON_AddStringToObject(o, "transport", "udp");
    vt_json_add_failure(o, "failure", r->failure);
    cJSON_AddNumberToObject(o, "sent", r->sends);
    cJSON_AddNumberToObject(o, "received", r->replies > 0 ? r->replies : 0);
    cJSON_AddNumberToObject(o, "bytes_sent", (double)r->bytes_sent);
    cJSON_AddNumberToObject(o, "bytes_received", (double)r->bytes_received);
    if (r->rtt >= 0)
        cJSON_AddNumberToObject(o, "rtt_ms", (double)(long)(r->rtt * 1e6) / 1e3);
    else
        cJSON_AddNullToObject(o, "rtt_ms");
    vt_json_add_time(o, "t0", r->t0);
    vt_json_add_time(o, "t", r->t);
    return o;
}
