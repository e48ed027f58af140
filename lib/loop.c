/* The event loop: libevent's event_base, with c-ares channels and libcurl's multi interface
 * joined to it. c-ares (1.18, no event thread) tells us its sockets through
 * ARES_OPT_SOCK_STATE_CB; a timer per channel is re-armed from ares_timeout() after every query
 * and every processing call. libcurl tells us its sockets and its timeout through
 * CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION and is driven by curl_multi_socket_action. */
#include "vantage/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One socket c-ares asked us to watch. */
typedef struct ares_sock {
    struct ares_sock *next;
    struct vt_ares_chan *chan;
    ares_socket_t fd;
    struct event *ev;
} ares_sock;

typedef struct vt_ares_chan {
    struct vt_ares_chan *next;
    vt_loop *loop;
    ares_channel ch;
    struct event *timer;
    ares_sock *socks;
    int busy; /* inside ares_process_fd: a destroy now is done when it returns */
    int dead;
} vt_ares_chan;

/* One socket curl asked us to watch. */
typedef struct curl_sock {
    vt_loop *loop;
    curl_socket_t fd;
    struct event *ev;
} curl_sock;

/* One transfer on the multi handle. */
typedef struct curl_xfer {
    vt_curl_done_fn done;
    void *arg;
} curl_xfer;

struct vt_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *curl_timer;
    vt_ares_chan *chans;
    int curl_running;
    vt_loop_addr_policy policy;
    void *policy_arg;
};

static int ares_initialized, curl_initialized;

double vt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double vt_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- libcurl ---- */

static void curl_check_done(vt_loop *loop)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        curl_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(loop->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (x) {
            vt_curl_done_fn done = x->done;
            void *arg = x->arg;
            free(x);
            done(easy, res, arg);
        }
    }
}

static void curl_event_cb(evutil_socket_t fd, short what, void *arg)
{
    curl_sock *s = arg;
    vt_loop *loop = s->loop;
    int flags = 0;
    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(loop->multi, fd, flags, &loop->curl_running);
    curl_check_done(loop);
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    vt_loop *loop = arg;
    curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &loop->curl_running);
    curl_check_done(loop);
}

static int curl_socket_fn(CURL *easy, curl_socket_t fd, int action, void *userp, void *sockp)
{
    vt_loop *loop = userp;
    curl_sock *s = sockp;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            event_free(s->ev);
            free(s);
            curl_multi_assign(loop->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->loop = loop;
        s->fd = fd;
        curl_multi_assign(loop->multi, fd, s);
    } else {
        event_free(s->ev);
        s->ev = NULL;
    }
    short kind = EV_PERSIST;
    if (action & CURL_POLL_IN)
        kind |= EV_READ;
    if (action & CURL_POLL_OUT)
        kind |= EV_WRITE;
    s->ev = event_new(loop->base, fd, kind, curl_event_cb, s);
    if (!s->ev)
        return -1;
    event_add(s->ev, NULL);
    return 0;
}

static int curl_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    vt_loop *loop = userp;
    if (timeout_ms < 0) {
        evtimer_del(loop->curl_timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(loop->curl_timer, &tv);
    return 0;
}

void vt_loop_set_addr_policy(vt_loop *loop, vt_loop_addr_policy allowed, void *arg)
{
    loop->policy = allowed;
    loop->policy_arg = arg;
}

int vt_loop_addr_allowed(vt_loop *loop, const struct sockaddr *sa)
{
    return !loop || !loop->policy || loop->policy(sa, loop->policy_arg);
}

/* libcurl asks here for every socket it connects, redirects and happy-eyeballs included. */
static curl_socket_t curl_open_socket(void *clientp, curlsocktype purpose,
                                      struct curl_sockaddr *a)
{
    vt_loop *loop = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN || !vt_loop_addr_allowed(loop, &a->addr))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

int vt_loop_curl_add(vt_loop *loop, CURL *easy, vt_curl_done_fn done, void *arg)
{
    curl_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (loop->policy) {
        curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, curl_open_socket);
        curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, loop);
    }
    if (curl_multi_add_handle(loop->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    return 0;
}

void vt_loop_curl_cancel(vt_loop *loop, CURL *easy)
{
    curl_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(loop->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
}

/* ---- c-ares ---- */

/* Arms the channel's timer for its next query timeout; with no query pending the timer goes,
 * so a finished lookup does not keep vt_loop_run from returning. */
static void ares_rearm(vt_ares_chan *c)
{
    struct timeval tv, *tvp = ares_timeout(c->ch, NULL, &tv);
    if (tvp)
        evtimer_add(c->timer, tvp);
    else
        evtimer_del(c->timer);
}

static void ares_chan_free(vt_ares_chan *c);
static void ares_chan_unlink(vt_ares_chan *c);

/* A channel destroyed from one of its own query callbacks (a lookup's own channel, destroyed
 * when the lookup completes) is freed once c-ares is done with it. */
static void chan_process(vt_ares_chan *c, ares_socket_t rfd, ares_socket_t wfd)
{
    c->busy++;
    ares_process_fd(c->ch, rfd, wfd);
    c->busy--;
    if (c->dead) {
        if (!c->busy) {
            ares_chan_unlink(c);
            ares_chan_free(c);
        }
        return;
    }
    ares_rearm(c);
}

static void ares_event_cb(evutil_socket_t fd, short what, void *arg)
{
    ares_sock *s = arg;
    vt_ares_chan *c = s->chan;
    ares_socket_t rfd = (what & EV_READ) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (what & EV_WRITE) ? fd : ARES_SOCKET_BAD;
    /* s may be freed inside ares_process_fd (sock_state_cb); c is not. */
    chan_process(c, rfd, wfd);
}

static void ares_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    chan_process(arg, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void on_ares_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    vt_ares_chan *c = data;
    ares_sock **pp = &c->socks, *s;
    while ((s = *pp) && s->fd != fd)
        pp = &s->next;
    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            event_free(s->ev);
            free(s);
        }
        return;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return; /* the query will time out through the channel timer */
        s->chan = c;
        s->fd = fd;
        s->next = c->socks;
        c->socks = s;
    } else {
        event_free(s->ev);
        s->ev = NULL;
    }
    short kind = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    s->ev = event_new(c->loop->base, fd, kind, ares_event_cb, s);
    if (s->ev)
        event_add(s->ev, NULL);
}

static int set_servers(ares_channel ch, const char *servers, char *err, size_t errlen)
{
    /* ares_set_servers_ports_csv takes "IP:PORT" and "[IPv6]:PORT". */
    int rc = ares_set_servers_ports_csv(ch, servers);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "bad resolver address '%s': %s (want IP[:PORT])", servers,
                 ares_strerror(rc));
        return -1;
    }
    return 0;
}

int vt_loop_ares_channel(vt_loop *loop, const char *servers, int timeout_ms, int tries,
                         int extra_flags, ares_channel *out, char *err, size_t errlen)
{
    vt_ares_chan *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->loop = loop;
    c->timer = evtimer_new(loop->base, ares_timer_cb, c);
    struct ares_options opts;
    memset(&opts, 0, sizeof(opts));
    int mask = ARES_OPT_SOCK_STATE_CB;
    opts.sock_state_cb = on_ares_sock_state;
    opts.sock_state_cb_data = c;
    if (timeout_ms > 0) {
        opts.timeout = timeout_ms;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (tries > 0) {
        opts.tries = tries;
        mask |= ARES_OPT_TRIES;
    }
    /* We ask for A and AAAA ourselves; search domains would turn an NXDOMAIN into other names.
     * NOCHECKRESP: a SERVFAIL or REFUSED is evidence to record, not a reason to ask again. */
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP | extra_flags;
    mask |= ARES_OPT_FLAGS;
    int rc = c->timer ? ares_init_options(&c->ch, &opts, mask) : ARES_ENOMEM;
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot start the DNS resolver: %s", ares_strerror(rc));
        if (c->timer)
            event_free(c->timer);
        free(c);
        return -1;
    }
    if (servers && set_servers(c->ch, servers, err, errlen) < 0) {
        ares_destroy(c->ch);
        event_free(c->timer);
        free(c);
        return -1;
    }
    c->next = loop->chans;
    loop->chans = c;
    *out = c->ch;
    return 0;
}

void vt_loop_ares_kick(vt_loop *loop, ares_channel ch)
{
    for (vt_ares_chan *c = loop->chans; c; c = c->next)
        if (c->ch == ch && !c->dead) {
            ares_rearm(c);
            return;
        }
}

static void ares_chan_free(vt_ares_chan *c)
{
    ares_destroy(c->ch); /* calls back pending queries with ARES_EDESTRUCTION, closes sockets */
    while (c->socks) {
        ares_sock *s = c->socks;
        c->socks = s->next;
        event_free(s->ev);
        free(s);
    }
    event_free(c->timer);
    free(c);
}

static void ares_chan_unlink(vt_ares_chan *c)
{
    for (vt_ares_chan **pp = &c->loop->chans; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

void vt_loop_ares_destroy(vt_loop *loop, ares_channel ch)
{
    for (vt_ares_chan *c = loop->chans; c; c = c->next)
        if (c->ch == ch && !c->dead) {
            if (c->busy) {
                c->dead = 1; /* freed by chan_process when ares_process_fd returns */
                evtimer_del(c->timer);
                return;
            }
            ares_chan_unlink(c);
            ares_chan_free(c);
            return;
        }
}

/* ---- the loop ---- */

vt_loop *vt_loop_new(char *err, size_t errlen)
{
    if (!curl_initialized) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return NULL;
        }
        curl_initialized = 1;
    }
    if (!ares_initialized) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            snprintf(err, errlen, "cannot initialise c-ares");
            return NULL;
        }
        ares_initialized = 1;
    }
    vt_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        goto oom;
    loop->base = event_base_new();
    loop->multi = curl_multi_init();
    if (!loop->base || !loop->multi)
        goto oom;
    loop->curl_timer = evtimer_new(loop->base, curl_timer_cb, loop);
    if (!loop->curl_timer)
        goto oom;
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_fn);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, curl_timer_fn);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
    return loop;
oom:
    snprintf(err, errlen, "out of memory creating the event loop");
    vt_loop_free(loop);
    return NULL;
}

void vt_loop_free(vt_loop *loop)
{
    if (!loop)
        return;
    while (loop->chans) {
        vt_ares_chan *c = loop->chans;
        loop->chans = c->next;
        ares_chan_free(c);
    }
    if (loop->multi)
        curl_multi_cleanup(loop->multi); /* transfers still added are the callers' to clean up */
    if (loop->curl_timer)
        event_free(loop->curl_timer);
    if (loop->base)
        event_base_free(loop->base);
    free(loop);
}

struct event_base *vt_loop_base(vt_loop *loop)
{
    return loop->base;
}

int vt_loop_run(vt_loop *loop)
{
    return event_base_dispatch(loop->base);
}

void vt_loop_break(vt_loop *loop)
{
    event_base_loopbreak(loop->base);
}

/* ---- one-shot timers ---- */

typedef struct vt_timer {
    struct event *ev;
    void (*fn)(void *);
    void *arg;
} vt_timer;

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    vt_timer *t = arg;
    void (*fn)(void *) = t->fn;
    void *a = t->arg;
    event_free(t->ev);
    free(t);
    fn(a);
}

struct event *vt_timer_start(vt_loop *loop, int ms, void (*fn)(void *arg), void *arg)
{
    vt_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    t->ev = evtimer_new(loop->base, timer_fire, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t->ev, &tv);
    return t->ev;
}

void vt_timer_cancel(struct event *ev)
{
    if (!ev)
        return;
    vt_timer *t = event_get_callback_arg(ev);
    event_free(ev);
    free(t);
}
