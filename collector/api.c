/* evhttp handlers: upload, check-in, control, health (docs/api.md).
 *
 * The caller's address is read once per request (rate limit key, check-in lookup, scrubbing)
 * and never logged or stored. Uploads are gunzipped, parsed and stored by the ingest threads
 * (ingest_pool.c; on the loop with --ingest-threads 0): a reply is only queued after its batch
 * committed, and shutdown waits for every submitted upload to be answered. */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "aggregate.h"
#include "conns.h"
#include "log.h"
#include "control.h"
#include "ingest_pool.h"
#include "proxy.h"
#include "vantage/addr.h"
#include "vantage/json.h"
#include "vantage/version.h"

struct vt_api {
    double last_upload; /* vt_now() of the last upload taken in (vt_api_uploading) */
    vt_loop *loop;
    vt_store *store;
    vt_geoip *geo;
    vt_api_opts o;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    int port;
    int shutting_down;
    struct event *drain;
    int drain_rounds;
    int drain_uploads; /* uploads were still in the ingest threads at the last drain check */
    vt_ratelimit *rl_addr, *rl_token;
    vt_control *control;
    vt_conns *conns;
    vt_ingest_pool *pool;      /* NULL: uploads are handled on the loop */
    const vt_proxies *proxies; /* o.proxies (the caller's); NULL: X-Forwarded-For unread */
    int xff_warned;            /* an ignored X-Forwarded-For was reported (once) */
    /* The last upload the store could not take (a full disk, a lost database), vt_now(); 0 once
     * one is stored again. Health reads cannot see it (they need no space, no write lock). */
    double write_failed;
};

/* How long health reports a failed write after it, when no upload was stored since: uploads
 * keep it fresh while the store refuses them, and a collector a load balancer took out (so that
 * none arrive) comes back to its read check. */
#define VT_HEALTH_WRITE_WINDOW_S 30.0

/* Uploads received and not yet answered, at most (beyond: 503 with Retry-After). */
#define VT_API_MAX_QUEUED_UPLOADS 64

/* An upload handed to the ingest threads, answered in upload_done. */
typedef struct upload_ctx {
    vt_api *a;
    struct evhttp_request *req;
    double t0;
    size_t bytes;
} upload_ctx;

void vt_api_opts_default(vt_api_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->rate = 20;
    o->burst = 200;
    o->timeout_s = 30;
    o->control_max = 8;
    o->control_timeout_s = 30;
    o->request_timeout_s = 60;
    o->query_timeout_ms = 5000;
    o->query_max_groups = 10000;
    o->max_conns = 4096;
    o->ingest_threads = 2;
    vt_ingest_limits_default(&o->lim);
}

/* ---- replies and logs ---- */

void vt_api_reply_json(struct evhttp_request *req, int code, const char *json)
{
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add(b, json, strlen(json));
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    /* Every answer, not only the dashboard's: JSON that quotes a caller's input is never run or
     * framed as a page (aggregate.c sets its own, fuller set first). */
    if (!evhttp_find_header(h, "X-Content-Type-Options"))
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (!evhttp_find_header(h, "Content-Security-Policy"))
        evhttp_add_header(h, "Content-Security-Policy",
                          "default-src 'none'; frame-ancestors 'none'");
    const char *reason = code == 200   ? "OK"
                         : code == 400 ? "Bad Request"
                         : code == 401 ? "Unauthorized"
                         : code == 403 ? "Forbidden"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 413 ? "Payload Too Large"
                         : code == 415 ? "Unsupported Media Type"
                         : code == 429 ? "Too Many Requests"
                         : code == 503 ? "Service Unavailable"
                         : code == 504 ? "Gateway Timeout"
                                       : "Error";
    evhttp_send_reply(req, code, reason, b);
    if (b) evbuffer_free(b);
}

void vt_api_reply_error(struct evhttp_request *req, int code, const char *msg, int retry_after)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *s = vt_json_print(o);
    cJSON_Delete(o);
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
    }
    vt_api_reply_json(req, code, s ? s : "{\"error\":\"out of memory\"}");
    free(s);
}

void vt_api_log(vt_api *a, const char *method, const char *path, int status, double t0,
                const char *extra)
{
    char ts[40];
    vt_log_timestamp(ts, sizeof(ts));
    double ms = (vt_now() - t0) * 1000.0;
    if (a->o.log_json)
        fprintf(stderr,
                "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
                "\"duration_ms\":%.1f%s%s}\n",
                ts, method, path, status, ms, extra && *extra ? "," : "", extra ? extra : "");
    else
        fprintf(stderr, "%s %s %s %d %.1fms%s%s\n", ts, method, path, status, ms,
                extra && *extra ? " " : "", extra ? extra : "");
    fflush(stderr);
}

/* ---- request helpers ---- */

/* The caller's address in canonical text form; "" when unknown. */
static void peer_addr(struct evhttp_request *req, char *out, size_t n)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    vt_addr_text(c ? evhttp_connection_get_addr(c) : NULL, out, n);
}

/* The client's address: the peer's, or, from a trusted proxy, the one its X-Forwarded-For
 * names (proxy.h). Every X-Forwarded-For header counts, in order (their total is bounded by
 * the 16 KiB of headers evhttp accepts). */
static void client_addr(vt_api *a, struct evhttp_request *req, char *out, size_t n)
{
    char peer[INET6_ADDRSTRLEN];
    peer_addr(req, peer, sizeof(peer));
    snprintf(out, n, "%s", peer);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    if (!a->proxies || !*peer || !vt_proxies_contains(a->proxies, peer)) {
        memset(peer, 0, sizeof(peer));
        /* Once: a proxy in front that the collector was not told about makes every probe
         * look like the proxy (no address is printed). */
        if (!a->xff_warned && evhttp_find_header(in, "X-Forwarded-For")) {
            a->xff_warned = 1;
            vt_log_msg("vantage-collector: a request came with X-Forwarded-For from a caller not "
                       "named by --trusted-proxy; the header is ignored, so behind a proxy every "
                       "probe counts as the proxy (check-in, rate limit, scrubbing): see "
                       "docs/privacy.md");
        }
        return;
    }
    struct evkeyval *h;
    size_t total = 0;
    TAILQ_FOREACH(h, in, next)
    {
        if (strcasecmp(h->key, "X-Forwarded-For") == 0) total += strlen(h->value) + 1;
    }
    char *xff = total ? malloc(total) : NULL;
    if (xff) {
        size_t len = 0;
        TAILQ_FOREACH(h, in, next)
        {
            if (strcasecmp(h->key, "X-Forwarded-For") != 0) continue;
            if (len) xff[len++] = ',';
            size_t vl = strlen(h->value);
            memcpy(xff + len, h->value, vl);
            len += vl;
        }
        xff[len] = 0;
    }
    /* Out of memory: the proxy's own address, as without the header. */
    vt_proxies_client(a->proxies, peer, xff, out, n);
    if (xff) {
        memset(xff, 0, total);
        free(xff);
    }
    memset(peer, 0, sizeof(peer));
}

static const char *method_name(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    default:
        return "OTHER";
    }
}

/* Takes one token from the address bucket; on refusal answers 429 and returns 0. */
static int rate_ok(vt_api *a, vt_ratelimit *rl, const char *prefix, const char *key,
                   struct evhttp_request *req)
{
    char k[160];
    int retry = 1;
    char net[INET6_ADDRSTRLEN];
    if (rl == a->rl_addr) key = vt_ratelimit_client(key, net); /* an IPv6 client's /64 */
    snprintf(k, sizeof(k), "%s%s", prefix, key);
    if (vt_ratelimit_take(rl, k, vt_now(), &retry)) return 1;
    vt_api_reply_error(req, 429, "too many requests: slow down and retry after Retry-After seconds",
                       retry);
    return 0;
}

/* ---- POST /api/v1/measurements ---- */

/* The answer of a finished upload job; the log fields into extra. */
static int upload_reply(vt_api *a, struct evhttp_request *req, const vt_ingest_job *j, size_t bytes,
                        char *extra, size_t extralen)
{
    if (j->log_err[0]) {
        vt_log_msg("vantage-collector: store: %s", j->log_err);
        a->write_failed = vt_now();
    } else if (j->status == 200) {
        a->write_failed = 0;
    }
    if (j->status != 200) {
        vt_api_reply_error(req, j->status, j->err, j->retry_after);
        return j->status;
    }
    snprintf(extra, extralen,
             a->o.log_json ? "\"bytes\":%zu,\"accepted\":%zu,\"duplicate\":%zu,\"rejected\":%zu"
                           : "bytes=%zu accepted=%zu duplicate=%zu rejected=%zu",
             bytes, j->accepted, j->duplicate, j->rejected);
    vt_api_reply_json(req, 200, j->answer);
    return 200;
}

/* Loop thread: an ingest thread finished the job. */
static void upload_done(vt_ingest_job *j, void *arg)
{
    (void)arg;
    upload_ctx *u = j->arg;
    char extra[256] = "";
    /* A request whose client went away is freed by evhttp_send_reply (libevent keeps it until
     * it is answered). */
    int status = upload_reply(u->a, u->req, j, u->bytes, extra, sizeof(extra));
    vt_api_log(u->a, "POST", "/api/v1/measurements", status, u->t0, extra);
    vt_ingest_job_free(j);
    free(u);
}

/* 0: handed to the ingest threads (answered later); else the HTTP status answered now. */
static int upload(vt_api *a, struct evhttp_request *req, const char *addr, double t0, char *extra,
                  size_t extralen)
{
    char err[256];
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *auth = evhttp_find_header(in, "Authorization");
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
            vt_api_reply_error(req, 401, "Authorization must be 'Bearer <token>'", 0);
            return 401;
        }
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        int st = vt_store_token_check(a->store, tok, err, sizeof(err));
        if (st < 0) {
            vt_log_msg("vantage-collector: %s", err);
            vt_api_reply_error(req, 503, "the collector's database is unavailable; retry later", 5);
            return 503;
        }
        if (st == 0) {
            vt_api_reply_error(req, 401, "unknown upload token", 0);
            return 401;
        }
        if (st == 2) {
            vt_api_reply_error(req, 401, "this upload token has been revoked", 0);
            return 401;
        }
        char hash[65];
        vt_store_sha256_hex(tok, hash);
        hash[16] = 0;
        if (!rate_ok(a, a->rl_token, "t:", hash, req)) return 429;
    } else if (a->o.require_token) {
        vt_api_reply_error(req, 401,
                           "this collector needs an upload token: send 'Authorization: Bearer "
                           "<token>'",
                           0);
        return 401;
    }

    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    if (len > a->o.lim.max_body) {
        snprintf(err, sizeof(err),
                 "upload body is over the limit of %zu bytes: send smaller "
                 "batches",
                 a->o.lim.max_body);
        vt_api_reply_error(req, 413, err, 0);
        return 413;
    }
    const char *enc = evhttp_find_header(in, "Content-Encoding");
    int gz = enc && (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "x-gzip") == 0);
    if (enc && *enc && !gz && strcasecmp(enc, "identity") != 0) {
        vt_api_reply_error(req, 415, "unsupported Content-Encoding: send gzip or identity", 0);
        return 415;
    }
    /* Back-pressure: queued uploads hold their bodies (up to 16 MiB each) in memory. */
    if (a->pool && vt_ingest_pool_pending(a->pool) >= VT_API_MAX_QUEUED_UPLOADS) {
        vt_api_reply_error(req, 503, "the collector is busy storing other uploads; retry later", 2);
        return 503;
    }
    a->last_upload = vt_now();
    vt_ingest_job *j = calloc(1, sizeof(*j));
    upload_ctx *u = a->pool ? calloc(1, sizeof(*u)) : NULL;
    /* The job owns the body, copied out of the request's buffer chain once (pulling it up
     * first was a second 1.5 MB copy per batch of 500): the request may outlive its connection
     * until it is answered. */
    if (!j || (a->pool && !u) || !(j->body = malloc(len ? len : 1)) ||
        (len && evbuffer_remove(body, j->body, len) != (int)len)) {
        if (j) free(j->body);
        free(j);
        free(u);
        vt_api_reply_error(req, 503, "out of memory; retry later", 5);
        return 503;
    }
    j->len = len;
    j->gzip = gz;
    snprintf(j->addr, sizeof(j->addr), "%s", addr);
    j->now = vt_wall_now();
    if (a->pool) {
        u->a = a;
        u->req = req;
        u->t0 = t0;
        u->bytes = len;
        j->arg = u;
        vt_ingest_pool_submit(a->pool, j);
        return 0; /* answered and logged by upload_done */
    }
    vt_ingest_job_run(a->store, &a->o.lim, j);
    int code = upload_reply(a, req, j, len, extra, extralen);
    vt_ingest_job_free(j);
    vt_store_upkeep(a->store); /* after the commit, as the ingest threads do */
    return code;
}

/* ---- POST /api/v1/check-in ---- */

static int check_in(vt_api *a, struct evhttp_request *req, const char *addr)
{
    vt_geoip_result r;
    vt_geoip_lookup(a->geo, addr, &r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "probe_cc", r.cc);
    cJSON_AddStringToObject(o, "probe_asn", r.asn);
    vt_json_add_string_or_null(o, "probe_network_name", r.org[0] ? r.org : NULL);
    vt_json_add_string_or_null(o, "targets_version", a->o.targets_version);
    /* Where a probe measures SNI throttling without fetching from the platforms (sni_test.h). */
    if (a->o.sni_test_endpoint && a->o.sni_test_pin) {
        cJSON *t = cJSON_AddObjectToObject(o, "sni_test");
        if (t) {
            cJSON_AddStringToObject(t, "endpoint", a->o.sni_test_endpoint);
            cJSON_AddStringToObject(t, "pin", a->o.sni_test_pin);
        }
    }
    if (a->o.n_alternate_urls > 0) {
        cJSON *alt = cJSON_AddArrayToObject(o, "alternate_urls");
        for (int i = 0; alt && i < a->o.n_alternate_urls; i++)
            cJSON_AddItemToArray(alt, cJSON_CreateString(a->o.alternate_urls[i]));
    }
    char *s = vt_json_print(o);
    cJSON_Delete(o);
    vt_api_reply_json(req, 200, s ? s : "{}");
    free(s);
    return 200;
}

/* ---- GET /api/v1/health ---- */

static int health(vt_api *a, struct evhttp_request *req)
{
    char err[256];
    /* Shutting down (SIGTERM, uploads refused with 503): a load balancer asking health must
     * take this collector out now, not when it is gone. */
    int draining = a->shutting_down;
    int write_failed = a->write_failed > 0 && vt_now() - a->write_failed < VT_HEALTH_WRITE_WINDOW_S;
    int ok = !draining && !write_failed && vt_store_health(a->store, err, sizeof(err)) == 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ok ? "ok" : draining ? "shutting_down" : "unavailable");
    cJSON_AddStringToObject(o, "store", vt_store_name(a->store));
    cJSON_AddStringToObject(o, "version", VT_VERSION);
    if (!ok)
        cJSON_AddStringToObject(o, "error",
                                draining       ? "the collector is shutting down"
                                : write_failed ? "the database refused the last upload (a full "
                                                 "disk? see the collector's log)"
                                               : "the database does not answer");
    char *s = vt_json_print(o);
    cJSON_Delete(o);
    if (!ok) evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
    vt_api_reply_json(req, ok ? 200 : 503, s ? s : "{}");
    free(s);
    return ok ? 200 : 503;
}

/* ---- routing ---- */

/* More than one Content-Length, or one beside Transfer-Encoding: libevent framed the body by one
 * of them, a proxy in front may have used the other, and what follows on the connection is no
 * longer known to be a request (request smuggling). */
static int ambiguous_length(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    int cl = 0, te = 0;
    TAILQ_FOREACH(kv, h, next)
    {
        if (strcasecmp(kv->key, "Content-Length") == 0) cl++;
        if (strcasecmp(kv->key, "Transfer-Encoding") == 0) te++;
    }
    return cl > 1 || (cl && te);
}

static void handle(struct evhttp_request *req, void *arg)
{
    vt_api *a = arg;
    double t0 = vt_now();
    vt_conns_request(a->conns, req);
    const char *method = method_name(req);
    const char *uri = evhttp_request_get_uri(req);
    char path[64] = "(other)";
    static const char *known[] = {"/api/v1/measurements", "/api/v1/check-in", "/api/v1/control",
                                  "/api/v1/health"};
    const char *route = NULL;
    size_t ulen = uri ? strcspn(uri, "?#") : 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (uri && strlen(known[i]) == ulen && strncmp(uri, known[i], ulen) == 0) route = known[i];
    if (route) snprintf(path, sizeof(path), "%s", route); /* only known paths are logged */
    char extra[256] = "";
    int status;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char addr[INET6_ADDRSTRLEN] = "";

    if (ambiguous_length(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        vt_api_reply_error(req, 400, "more than one Content-Length, or one with Transfer-Encoding",
                           0);
        vt_api_log(a, method, path, 400, t0, "");
        return;
    }
    /* Read-only queries and the dashboard (aggregate.c): GET/HEAD only. Queries read the
     * database, so they share the per-address rate limit (own bucket keys). */
    if ((cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) && uri && vt_aggregate_is_query(uri)) {
        client_addr(a, req, addr, sizeof(addr));
        int ok = rate_ok(a, a->rl_addr, "q:", addr, req);
        memset(addr, 0, sizeof(addr));
        if (!ok) {
            vt_api_log(a, method, "(query)", 429, t0, "");
            return;
        }
    }
    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) {
        /* rollup.c's SQLite statement cache is shared with the ingest threads (store.h). */
        int lock = a->pool && vt_store_one_writer(a->store);
        if (lock) vt_store_db_lock();
        status = vt_aggregate_handle(a->store, req, path, sizeof(path), a->o.query_timeout_ms,
                                     a->o.query_max_groups);
        if (lock) vt_store_db_unlock();
        if (status > 0) {
            vt_api_log(a, method, path, status, t0, "");
            return;
        }
    }
    if (!route && uri && (vt_aggregate_is_query(uri) || vt_aggregate_is_page(uri))) {
        /* A query or dashboard path with a method other than GET/HEAD (those were answered
         * above): the path exists, the method does not (docs/api.md). */
        snprintf(path, sizeof(path), "%.*s", (int)ulen, uri); /* one of a few fixed paths */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        vt_api_reply_error(req, 405, "use GET", 0);
        status = 405;
    } else if (!route) {
        vt_api_reply_error(req, 404, "no such endpoint; see docs/api.md", 0);
        status = 404;
    } else if (strcmp(route, "/api/v1/health") == 0) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
            vt_api_reply_error(req, 405, "use GET", 0);
            status = 405;
        } else {
            status = health(a, req);
        }
    } else if (cmd != EVHTTP_REQ_POST) {
        /* GET lists the stored measurements there (aggregate.c). */
        int both = strcmp(route, "/api/v1/measurements") == 0;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          both ? "GET, HEAD, POST" : "POST");
        vt_api_reply_error(req, 405, both ? "use GET or POST" : "use POST", 0);
        status = 405;
    } else if (a->shutting_down) {
        vt_api_reply_error(req, 503, "the collector is shutting down; retry later", 5);
        status = 503;
    } else {
        client_addr(a, req, addr, sizeof(addr));
        if (!rate_ok(a, a->rl_addr, "a:", addr, req)) {
            status = 429;
        } else if (strcmp(route, "/api/v1/measurements") == 0) {
            status = upload(a, req, addr, t0, extra, sizeof(extra));
            if (status == 0) { /* answered by upload_done */
                memset(addr, 0, sizeof(addr));
                return;
            }
        } else if (strcmp(route, "/api/v1/check-in") == 0) {
            status = check_in(a, req, addr);
        } else {
            struct evbuffer *body = evhttp_request_get_input_buffer(req);
            size_t len = evbuffer_get_length(body);
            const char *data = len ? (const char *)evbuffer_pullup(body, -1) : "";
            /* control answers later, from the loop; it logs its own line. */
            vt_control_handle(a->control, a, req, data ? data : "", data ? len : 0, t0,
                              vt_ratelimit_key(a->rl_addr, addr));
            memset(addr, 0, sizeof(addr));
            return;
        }
    }
    memset(addr, 0, sizeof(addr)); /* the address is dropped here */
    vt_api_log(a, method, path, status, t0, extra);
}

void vt_api_set_geoip(vt_api *a, vt_geoip *geo)
{
    a->geo = geo;
}

vt_api *vt_api_new(vt_loop *loop, vt_store *store, vt_geoip *geo, const vt_api_opts *o, char *err,
                   size_t errlen)
{
    vt_api *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->store = store;
    a->geo = geo;
    a->o = *o;
    a->proxies = o->proxies;
    a->http = evhttp_new(vt_loop_base(loop));
    a->rl_addr = vt_ratelimit_new(o->rate, o->burst, 65536);
    a->rl_token = vt_ratelimit_new(o->rate, o->burst, 16384);
    a->control = vt_control_new(loop, o->control_max, o->control_timeout_s,
                                o->allow_private_control, err, errlen);
    if (!a->http || !a->rl_addr || !a->rl_token || !a->control) {
        if (a->control || !*err) snprintf(err, errlen, "out of memory");
        vt_api_free(a);
        return NULL;
    }
    evhttp_set_timeout(a->http, o->timeout_s);
    evhttp_set_max_body_size(a->http, (ev_ssize_t)o->lim.max_body);
    evhttp_set_max_headers_size(a->http, 16 * 1024);
    /* Every method reaches handle(), which answers the ones a route does not take with a JSON
     * 405 and Allow: libevent's own answer to a method outside this set is an HTML 501, a 5xx
     * for a client's mistake. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(a->http, "application/json");
    evhttp_set_gencb(a->http, handle, a);
    a->conns = vt_conns_new(a->http, vt_loop_base(loop), o->max_conns, o->request_timeout_s);
    if (!a->conns) {
        snprintf(err, errlen, "out of memory");
        vt_api_free(a);
        return NULL;
    }
    if (o->ingest_threads > 0 && o->db_url) {
        a->pool = vt_ingest_pool_new(vt_loop_base(loop), o->db_url, o->ingest_threads, &o->lim,
                                     upload_done, a, err, errlen);
        if (!a->pool) {
            vt_api_free(a);
            return NULL;
        }
    }
    return a;
}

int vt_api_parse_listen(const char *listen, char host[128], int *port, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) {
        snprintf(err, errlen, "--listen '%s': expected ADDR:PORT (IPv6 as [ADDR]:PORT)", listen);
        return -1;
    }
    size_t hl = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= 128) {
        snprintf(err, errlen, "--listen '%s': address too long", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535) {
        snprintf(err, errlen, "--listen '%s': port must be 0..65535", listen);
        return -1;
    }
    *port = (int)p;
    return 0;
}

int vt_api_listen(vt_api *a, const char *listen, char *err, size_t errlen)
{
    char host[128];
    int port;
    if (vt_api_parse_listen(listen, host, &port, err, errlen) < 0) return -1;
    errno = 0;
    a->bound = evhttp_bind_socket_with_handle(a->http, host, (ev_uint16_t)port);
    if (!a->bound) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", listen,
                 e ? strerror(e) : "not a local address");
        return -1;
    }
    /* Accepted connections inherit it (Linux): without it an answer's last segment waited for
     * the client's delayed ACK, 40 ms per upload (measured with bench/collector-ingest). */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(a->bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(a->bound), (struct sockaddr *)&ss, &sl) == 0)
        a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int vt_api_port(const vt_api *a)
{
    return a->port;
}

static void drained(void *arg)
{
    vt_api *a = arg;
    a->drain = NULL;
    /* Uploads with the ingest threads are committed and answered; each answer then gets a
     * drain period to reach its client. Bounded by the stores' own timeouts (SQLite's busy
     * timeout, PostgreSQL's statement_timeout). */
    if (vt_ingest_pool_pending(a->pool) > 0 || a->drain_uploads) {
        a->drain_uploads = vt_ingest_pool_pending(a->pool) > 0;
        a->drain = vt_timer_start(a->loop, a->drain_uploads ? 50 : 300, drained, a);
        if (a->drain) return;
    }
    /* Control runs still measuring end within their step timeouts (capped by the control's
     * time cap): wait for them, a bounded number of times, so nothing is torn down under them. */
    if (vt_control_busy(a->control) && a->drain_rounds++ < 10 * (a->o.control_timeout_s + 5)) {
        a->drain = vt_timer_start(a->loop, 100, drained, a);
        if (a->drain) return;
    }
    vt_loop_break(a->loop);
}

void vt_api_shutdown(vt_api *a)
{
    if (a->shutting_down) return;
    a->shutting_down = 1;
    if (a->bound) {
        evhttp_del_accept_socket(a->http, a->bound);
        a->bound = NULL;
    }
    vt_control_shutdown(a->control);
    /* Replies already queued (each after its commit) get a moment to reach their clients. */
    a->drain = vt_timer_start(a->loop, 300, drained, a);
    if (!a->drain) vt_loop_break(a->loop);
}

void vt_api_free(vt_api *a)
{
    if (!a) return;
    if (a->drain) vt_timer_cancel(a->drain);
    vt_ingest_pool_free(a->pool); /* before evhttp_free: nothing answers after it */
    vt_control_free(a->control);
    if (a->http) evhttp_free(a->http);
    vt_conns_free(a->conns); /* after evhttp_free: it drops the connections' last reference */
    vt_ratelimit_free(a->rl_addr);
    vt_ratelimit_free(a->rl_token);
    free(a);
}

int vt_api_uploading(const vt_api *a)
{
    if (!a) return 0;
    if (a->pool && vt_ingest_pool_pending(a->pool) > 0) return 1;
    return a->last_upload > 0 && vt_now() - a->last_upload < 1.0;
}
