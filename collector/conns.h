/* Connection limits for the collector's evhttp server, which libevent 2.1 does not have: a cap
 * on open connections and a deadline for each request to arrive whole.
 *
 * evhttp's own timeout is an inactivity timeout, so a client dripping one header byte every few
 * seconds keeps a connection (and a descriptor) for hours. Here every connection must deliver a
 * complete request within request_timeout_s of being opened or of its previous response being
 * sent; when the cap is reached, a new connection evicts the connection that has waited longest
 * without a request in progress. An evicted or overdue connection is shut down, and evhttp then
 * frees it as if the client had closed it. */
#ifndef VANTAGE_COLLECTOR_CONNS_H
#define VANTAGE_COLLECTOR_CONNS_H

#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>

typedef struct vt_conns vt_conns;

/* Installs itself on http (evhttp_set_bevcb). max_conns >= 1, request_timeout_s >= 1. */
vt_conns *vt_conns_new(struct evhttp *http, struct event_base *base, int max_conns,
                       int request_timeout_s);
/* Call when a request has arrived whole (the request handler's entry): its connection is busy
 * until the response has been sent, then its deadline starts again. */
void vt_conns_request(vt_conns *g, struct evhttp_request *req);
/* Open connections now, and connections shut down by the deadline or the cap since start. */
size_t vt_conns_open(const vt_conns *g);
unsigned long vt_conns_evicted(const vt_conns *g);
/* After evhttp_free (which frees the connections this still holds a reference to). */
void vt_conns_free(vt_conns *g);

#endif
