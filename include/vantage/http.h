/* HTTP measurement step: one request through the loop's libcurl multi, sent to addresses that
 * were resolved earlier (CURLOPT_RESOLVE: DNS is not repeated). Redirects are followed by the
 * caller, one request per hop, so every hop is recorded. */
#ifndef VANTAGE_HTTP_H
#define VANTAGE_HTTP_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "config.h"
#include "failure.h"
#include "loop.h"

/* The failure of a response whose headers exceed 64 KiB in all (or 100 KiB in one line). */
#define VT_HTTP_HEADERS_TOO_LARGE "unknown_failure: http response headers too large"

typedef struct vt_http_opts {
    const char *url;
    const char *method;           /* "GET" (default) or "POST" */
    const unsigned char *body;    /* request body for POST */
    size_t body_len;
    const char *content_type;     /* for POST */
    const char *const *addrs;     /* addresses to connect to for the URL's host (NULL-terminated);
                                     NULL: let curl resolve (only for tests and DoH) */
    const char *cacert;           /* NULL: system CAs */
    int no_verify;
    const char *pinned_key;       /* "sha256//BASE64": the server's public key must be this one
                                     (checked also with no_verify), NULL: any */
    int timeout_ms;
    size_t max_body;              /* bytes of body kept in the result */
    size_t max_download;          /* bytes read before stopping (0: max_body) */
    const char *user_agent;
    double t_base;
    int sample_ms;                /* bytes_received_cumulative sampling period (0: 100 ms) */
    int connect_timeout_ms;       /* for the connection (and TLS) alone (0: timeout_ms) */
    size_t *bytes_counter;        /* non-NULL: every body byte read is also counted here (a count
                                     shared by several requests on the loop's thread) */
} vt_http_opts;

typedef struct vt_http_result {
    char failure[VT_FAILURE_MAX]; /* "" on a complete response (any status code) */
    long status;                  /* 0 when no response */
    long retry_after_s;           /* the response's Retry-After in seconds (libcurl's; 0: none) */
    char *location;               /* Location header of a 3xx, absolute URL, or NULL */
    char *title;                  /* <title> of an HTML body, or NULL */
    unsigned char *body;          /* up to max_body bytes */
    size_t body_len;
    int body_truncated;
    size_t bytes_received;        /* body bytes received in all */
    char primary_ip[64];
    long primary_port;
    double t0, t;                 /* since the measurement's start */
    /* curl's, seconds from the transfer's start: TCP connected, TLS done, request about to be
     * sent, first response byte, done (0 when not reached) */
    double connect_time, appconnect_time, pretransfer_time, starttransfer_time, total_time;
    double throughput_bps;        /* body bits per second over the transfer, 0 if unknown */
    cJSON *request_entry;         /* OONI httpt "requests" entry, owned by the result */
    cJSON *network_events;        /* OONI netevents array (bytes_received_cumulative), owned */
} vt_http_result;

/* r is valid only during the call; steal request_entry / network_events by setting them NULL. */
typedef void (*vt_http_cb)(vt_http_result *r, void *arg);
int vt_http_request(vt_loop *loop, const vt_http_opts *o, vt_http_cb cb, void *arg);

/* The text of the first <title> in an HTML body, whitespace collapsed; malloc'd or NULL. */
char *vt_http_title(const unsigned char *body, size_t len);

#endif
