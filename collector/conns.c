/* Connection cap and request deadline for evhttp (conns.h).
 *
 * evhttp creates each incoming connection's bufferevent through our callback (evhttp_set_bevcb),
 * so every connection is seen as it opens. We hold one reference on its bufferevent: when evhttp
 * frees the connection (bufferevent_free clears its callbacks; evhttp shuts the socket down for
 * writing at once, so clients see the close then), the bufferevent stays valid until our next
 * sweep notices and drops the reference. Nothing here reads or keeps the client's address. */
#include "conns.h"

#include <event2/bufferevent.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "vantage/loop.h"

#define SWEEP_MS 100

typedef struct {
    struct bufferevent *bev;
    double mark; /* opened, or its last response sent */
    int busy;    /* a request arrived and its response is not sent yet */
    int doomed;  /* chosen to be shut down */
    int shut;    /* shutdown() done */
} conn;

struct vt_conns {
    struct evhttp *http;
    struct event *sweep;
    conn *c;
    size_t n, alloc;
    size_t max;
    double timeout;
    unsigned long evicted;
};

static int freed_by_evhttp(struct bufferevent *bev)
{
    bufferevent_data_cb r = NULL, w = NULL;
    bufferevent_event_cb e = NULL;
    bufferevent_getcb(bev, &r, &w, &e, NULL);
    return !r && !w && !e;
}

static void shut(vt_conns *g, conn *c)
{
    if (!c->doomed) {
        c->doomed = 1;
        g->evicted++;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (!c->shut && fd >= 0) {
        /* evhttp reads EOF and frees the connection as if the client had closed it. */
        shutdown(fd, SHUT_RDWR);
        c->shut = 1;
    }
}

static void drop_freed(vt_conns *g)
{
    for (size_t i = 0; i < g->n;) {
        if (freed_by_evhttp(g->c[i].bev)) {
            bufferevent_decref(g->c[i].bev);
            g->c[i] = g->c[--g->n];
        } else {
            i++;
        }
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vt_conns *g = arg;
    drop_freed(g);
    double now = vt_now();
    for (size_t i = 0; i < g->n; i++) {
        conn *c = &g->c[i];
        if (c->doomed || (!c->busy && now - c->mark > g->timeout)) shut(g, c);
    }
}

static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
    vt_conns *g = arg;
    drop_freed(g);
    if (g->n == g->alloc) {
        size_t na = g->alloc ? g->alloc * 2 : 64;
        conn *nc = realloc(g->c, na * sizeof(*nc));
        if (!nc) return NULL; /* evhttp makes its own bufferevent: served, but not tracked */
        g->c = nc;
        g->alloc = na;
    }
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) return NULL;
    bufferevent_incref(bev);
    conn *c = &g->c[g->n++];
    *c = (conn){.bev = bev, .mark = vt_now()};
    if (g->n > g->max) {
        /* Over the cap: the idle connection that has waited longest goes (a slow-drip client
         * is always the oldest); if every other one is busy, this one. Its socket is not set
         * yet: the next sweep, made immediate, shuts it down. */
        conn *victim = c;
        for (size_t i = 0; i + 1 < g->n; i++) {
            conn *o = &g->c[i];
            if (!o->busy && !o->doomed && (victim == c || o->mark < victim->mark)) victim = o;
        }
        victim->doomed = 1;
        g->evicted++;
        event_active(g->sweep, EV_TIMEOUT, 0);
    }
    return bev;
}

static conn *find(vt_conns *g, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (size_t i = 0; bev && i < g->n; i++)
        if (g->c[i].bev == bev) return &g->c[i];
    return NULL;
}

static void on_response_sent(struct evhttp_request *req, void *arg)
{
    conn *c = find(arg, req);
    if (c) {
        c->busy = 0;
        c->mark = vt_now();
    }
}

void vt_conns_request(vt_conns *g, struct evhttp_request *req)
{
    conn *c = g ? find(g, req) : NULL;
    if (!c) return;
    c->busy = 1;
    evhttp_request_set_on_complete_cb(req, on_response_sent, g);
}

vt_conns *vt_conns_new(struct evhttp *http, struct event_base *base, int max_conns,
                       int request_timeout_s)
{
    vt_conns *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->http = http;
    g->max = max_conns > 0 ? (size_t)max_conns : 1;
    g->timeout = request_timeout_s > 0 ? request_timeout_s : 1;
    g->sweep = event_new(base, -1, EV_PERSIST, on_sweep, g);
    struct timeval tv = {0, SWEEP_MS * 1000};
    if (!g->sweep || event_add(g->sweep, &tv) < 0) {
        if (g->sweep) event_free(g->sweep);
        free(g);
        return NULL;
    }
    evhttp_set_bevcb(http, on_new_conn, g);
    return g;
}

size_t vt_conns_open(const vt_conns *g)
{
    size_t n = 0;
    for (size_t i = 0; g && i < g->n; i++)
        n += !freed_by_evhttp(g->c[i].bev);
    return n;
}

unsigned long vt_conns_evicted(const vt_conns *g)
{
    return g ? g->evicted : 0;
}

void vt_conns_free(vt_conns *g)
{
    if (!g) return;
    event_free(g->sweep);
    for (size_t i = 0; i < g->n; i++)
        bufferevent_decref(g->c[i].bev);
    free(g->c);
    free(g);
}
