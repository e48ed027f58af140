/* The collector's HTTP API on evhttp (docs/api.md). */
#ifndef VANTAGE_COLLECTOR_API_H
#define VANTAGE_COLLECTOR_API_H

#include <event2/http.h>
#include <stddef.h>

#include "geoip.h"
#include "ingest.h"
#include "proxy.h"
#include "ratelimit.h"
#include "store.h"
#include "vantage/loop.h"

#define VT_API_MAX_ALTERNATES 4

typedef struct vt_api_opts {
    int require_token;
    int allow_private_control;
    int log_json;
    double rate, burst;          /* per token and per client address; rate <= 0: off */
    const char *targets_version; /* for check-in; NULL: null */
    int timeout_s;               /* evhttp read/write timeout */
    int control_max;             /* control measurements in flight */
    int control_timeout_s;       /* time cap of one control measurement */
    int request_timeout_s;       /* a connection's time to deliver a whole request */
    int query_timeout_ms;        /* one dashboard/API query at most (5000) */
    int query_max_groups;        /* groups of one aggregation at most (10000) */
    int max_conns;               /* open connections at most (conns.h) */
    int ingest_threads;          /* upload worker threads (2); 0: uploads run on the loop */
    const char *db_url;          /* the --db URL: each ingest thread opens its own connection */
    vt_ingest_limits lim;
    /* --trusted-proxy: connections from these may name their client in X-Forwarded-For (the
     * address then used for check-in, the rate limit and scrubbing); owned by the caller. */
    const vt_proxies *proxies;
    /* The SNI test server (sni_test.h) the check-in announces: HOST:PORT and the key's pin;
     * NULL: not announced. Owned by the caller. */
    const char *sni_test_endpoint, *sni_test_pin;
    /* --alternate-url: other addresses of this collector (a CDN front, a mirror name) that the
     * check-in announces, for probes to try when this one cannot be reached (a censor blocking
     * it). Owned by the caller. */
    const char *alternate_urls[VT_API_MAX_ALTERNATES];
    int n_alternate_urls;
} vt_api_opts;

void vt_api_opts_default(vt_api_opts *o);

typedef struct vt_api vt_api;

/* Check-ins answer from geo from now on (the caller frees the one before; loop thread only). */
void vt_api_set_geoip(vt_api *a, vt_geoip *geo);
vt_api *vt_api_new(vt_loop *loop, vt_store *store, vt_geoip *geo, const vt_api_opts *o, char *err,
                   size_t errlen);
/* Splits --listen's ADDR:PORT ([ADDR]:PORT for IPv6) into host (128 bytes) and port, without
 * binding: -1 with err for a usage error. */
int vt_api_parse_listen(const char *listen, char host[128], int *port, char *err, size_t errlen);
/* listen: "ADDR:PORT" or "[ADDR6]:PORT"; port 0 picks one (see vt_api_port). -1 with err (and
 * the reason, strerror) when it cannot bind. */
int vt_api_listen(vt_api *a, const char *listen, char *err, size_t errlen);
int vt_api_port(const vt_api *a);
/* Uploads are coming in: one arrived in the last second, or some still wait to be stored. */
int vt_api_uploading(const vt_api *a);
/* Stops accepting connections, answers 503 to new requests on open connections, lets replies
 * already queued drain, then breaks the loop. Safe to call twice. */
void vt_api_shutdown(vt_api *a);
void vt_api_free(vt_api *a);

/* For control.c: the pieces of the API it shares. */
void vt_api_reply_json(struct evhttp_request *req, int code, const char *json);
void vt_api_reply_error(struct evhttp_request *req, int code, const char *msg, int retry_after);
void vt_api_log(vt_api *a, const char *method, const char *path, int status, double t0,
                const char *extra_json_fields);

#endif
