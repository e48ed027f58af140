/* Control measurements (OONI's test-helper role): the collector measures one input from its own
 * network with libvantage, on its own loop (vt_run_start), and answers with the test_keys.
 *
 * Bounded: at most max_in_flight runs at once, each request answered within timeout_s; a run
 * starts no step after 80% of that (cfg.task_deadline_ms) and cuts the steps it starts to what is
 * left, so a slot is free soon after its caller's 504 whatever the destination chains.
 * Destinations that are loopback, private, link-local, CGNAT, multicast, documentation,
 * unspecified, or an address of this host's own interfaces, are refused (403), as literals (as
 * libcurl reads them) and after resolving the host through the same resolver the measurement
 * uses, unless --allow-private-control. A name that resolves to a public
 * address first and a private one at measurement time (DNS rebinding), or a redirect to a private
 * address, is caught at connect time: the loop's destination policy (vt_loop_set_addr_policy)
 * refuses every such connection of the TCP/UDP steps and of libcurl, so the measurement records
 * "permission_denied" (or curl's connect error) and nothing is sent. */
#include "control.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "log.h"
#include "vantage/addr.h"
#include "vantage/config.h"
#include "vantage/dns.h"
#include "vantage/json.h"
#include "vantage/runner.h"
#include "vantage/targets.h"
#include "vantage/task.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"

typedef struct ctl_req ctl_req;

struct vt_control {
    unsigned long refused_connects; /* connections the destination policy refused */
    vt_loop *loop;
    int max, timeout_s, allow_private;
    vt_config cfg;
    vt_env env;
    int ready; /* env.dns and env.tls made (lazily, at the first request) */
    int in_flight;
    int shutting_down;
    ctl_req *reqs; /* every request not yet freed */
};

struct ctl_req {
    vt_control *c;
    struct vt_api *a;
    struct evhttp_request *req; /* NULL once answered */
    double t0;
    char kind[16];
    char host[256];
    vt_target_list targets;
    vt_runner_hooks hooks;
    cJSON *measurement;
    struct event *timer;
    int dns_pending;
    int private_found;
    int holds_slot;
    uint64_t client; /* the caller (vt_ratelimit_key of its address), for its share of slots */
    int running;     /* the run started: it ends with run_done */
    ctl_req *next, **pprev;
};

static int public_only(const struct sockaddr *sa, void *arg);

vt_control *vt_control_new(vt_loop *loop, int max_in_flight, int timeout_s, int allow_private,
                           char *err, size_t errlen)
{
    vt_control *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->max = max_in_flight >= 0 ? max_in_flight : 1; /* 0: the operator turned control off */
    c->timeout_s = timeout_s > 0 ? timeout_s : 30;
    c->allow_private = allow_private;
    vt_config_defaults(&c->cfg);
    c->cfg.concurrency = 1;
    /* No step may outlast 80% of the time cap: a server that hangs gives a measurement with
     * a timeout failure (more useful than a 504), and a run that misses the cap ends soon. */
    int cap = c->timeout_s * 800;
    if (c->cfg.dns_timeout_ms > cap) c->cfg.dns_timeout_ms = cap;
    if (c->cfg.connect_timeout_ms > cap) c->cfg.connect_timeout_ms = cap;
    if (c->cfg.tls_timeout_ms > cap) c->cfg.tls_timeout_ms = cap;
    if (c->cfg.http_timeout_ms > cap) c->cfg.http_timeout_ms = cap;
    /* ... and the whole run neither: a chain of slow redirects (each hop a fresh step) would
     * hold the run's slot for many times the cap after its caller got a 504. */
    c->cfg.task_deadline_ms = cap;
    c->cfg.user_agent = "vantage-collector-control";
    c->env.loop = loop;
    c->env.cfg = &c->cfg;
    /* The collector's loop makes no other outbound connection than control measurements. */
    if (!allow_private) vt_loop_set_addr_policy(loop, public_only, c);
    return c;
}

/* An address of one of this host's interfaces (a public one included: a service listening on
 * 0.0.0.0 is as reachable through the host's public address as through 127.0.0.1). Asked at
 * every check, so an address added later counts too. addr is a numeric address. */
static int own_address(const char *addr)
{
    unsigned char b[16], x[16];
    int fam = AF_INET;
    size_t len = 4;
    if (inet_pton(AF_INET, addr, b) != 1) {
        if (inet_pton(AF_INET6, addr, b) != 1) return 0;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0)
            memmove(b, b + 12, 4); /* ::ffff:a.b.c.d reaches a.b.c.d */
        else
            fam = AF_INET6, len = 16;
    }
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0) return 1; /* cannot tell: refuse */
    int own = 0;
    for (struct ifaddrs *i = ifs; i && !own; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != fam) continue;
        if (fam == AF_INET)
            memcpy(x, &((const struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        else
            memcpy(x, &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
        own = memcmp(b, x, len) == 0;
    }
    freeifaddrs(ifs);
    return own;
}

/* Not a destination for a control measurement: private (vt_control_addr_private) or this host. */
static int refused_address(const char *addr)
{
    return vt_control_addr_private(addr) || own_address(addr);
}

/* The loop's destination policy: public addresses of other hosts only. */
static int public_only(const struct sockaddr *sa, void *arg)
{
    vt_control *c = arg;
    char a[INET6_ADDRSTRLEN];
    const void *src =
        sa->sa_family == AF_INET    ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
        : sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                    : NULL;
    if (!src || !inet_ntop(sa->sa_family, src, a, sizeof(a)) || refused_address(a)) {
        c->refused_connects++;
        return 0;
    }
    return 1;
}

unsigned long vt_control_refused_connects(const vt_control *c)
{
    return c ? c->refused_connects : 0;
}

static int ensure_env(vt_control *c, char *err, size_t errlen)
{
    if (c->ready) return 0;
    if (!c->env.dns && !(c->env.dns = vt_dns_new_system(c->loop, &c->cfg, err, errlen))) return -1;
    if (!c->env.tls && !(c->env.tls = vt_tls_ctx_new(NULL, err, errlen))) return -1;
    c->ready = 1;
    return 0;
}

/* ---- addresses ---- */

static int v4_private(const unsigned char *b)
{
    unsigned a = b[0], s = b[1];
    return a == 0 || a == 10 || a == 127 || a >= 224 ||        /* this, private, loop, mc */
           (a == 100 && (s & 0xc0) == 64) ||                   /* 100.64/10 CGNAT */
           (a == 169 && s == 254) ||                           /* link-local */
           (a == 172 && (s & 0xf0) == 16) ||                   /* 172.16/12 */
           (a == 192 && s == 168) ||                           /* 192.168/16 */
           (a == 192 && s == 0 && (b[2] == 0 || b[2] == 2)) || /* 192.0.0/24, TEST-NET-1 */
           (a == 198 && (s & 0xfe) == 18) ||                   /* 198.18/15 benchmarking */
           (a == 198 && s == 51 && b[2] == 100) ||             /* TEST-NET-2 */
           (a == 203 && s == 0 && b[2] == 113);                /* TEST-NET-3 */
}

int vt_control_addr_private(const char *addr)
{
    unsigned char b[16];
    if (!addr) return 1;
    if (inet_pton(AF_INET, addr, b) == 1) return v4_private(b);
    if (inet_pton(AF_INET6, addr, b) != 1)
        return 1; /* not an address: not a destination we vouch for */
    static const unsigned char zero[16] = {0};
    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) return 1; /* :: and ::1 */
    if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
        return v4_private(b + 12); /* ::ffff:a.b.c.d */
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(b, nat64, 12) == 0) return v4_private(b + 12);
    /* Only global unicast (2000::/3) is measured: the rest is loopback, IPv4-compatible (::/96),
     * local-use NAT64 (64:ff9b:1::/48), discard, unique local, site-local, link-local and
     * multicast, or unassigned. */
    if ((b[0] & 0xe0) != 0x20) return 1;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02)
        return 1; /* 2001::/23 protocol assignments: Teredo, benchmarking, ORCHID, ... */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return 1; /* 2001:db8::/32 documentation */
    if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0) return 1; /* 3fff::/20 documentation */
    if (b[0] == 0x20 && b[1] == 0x02) return v4_private(b + 2);       /* 6to4: the IPv4 inside */
    return 0;
}

/* The host a measurement of input will reach, as the measurement itself parses it (libcurl's URL
 * parser, which also reads 2130706433, 0x7f.1 and 127.1 as 127.0.0.1; or host:port), with an
 * IPv4 address in any of inet_aton's forms written the usual way. 0 ok, -1 not a valid input. */
static int input_host(const char *input, const char *kind, char *host, size_t n)
{
    for (const unsigned char *q = (const unsigned char *)input; *q; q++)
        if (*q <= 0x20 || *q == 0x7f) return -1; /* never in a URL or host:port */
    int port = 0, https;
    if (strstr(input, "://")) return vt_url_split(input, host, n, &port, &https);
    if (strcmp(kind, "web") == 0 || vt_split_host_port(input, host, n, &port) < 0 || !host[0] ||
        port <= 0 || port > 65535)
        return -1;
    struct in_addr a4;
    if (!strchr(host, ':') && inet_aton(host, &a4)) inet_ntop(AF_INET, &a4, host, (socklen_t)n);
    return 0;
}

/* localhost and its subdomains (RFC 6761), with or without the root's dot. */
static int localhost_name(const char *h)
{
    size_t n = strlen(h);
    while (n && h[n - 1] == '.')
        n--;
    return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
           (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0);
}

/* ---- request lifetime ---- */

static void req_free(ctl_req *r)
{
    if (r->timer) vt_timer_cancel(r->timer);
    if (r->holds_slot) r->c->in_flight--;
    if (r->pprev) {
        *r->pprev = r->next;
        if (r->next) r->next->pprev = r->pprev;
    }
    vt_targets_free(&r->targets);
    cJSON_Delete(r->measurement);
    free(r);
}

static void answer_error(ctl_req *r, int code, const char *msg, int retry)
{
    if (!r->req) return;
    vt_api_reply_error(r->req, code, msg, retry);
    vt_api_log(r->a, "POST", "/api/v1/control", code, r->t0, "");
    r->req = NULL;
}

static void answer_result(ctl_req *r)
{
    if (!r->req) return;
    cJSON *m = r->measurement;
    if (!m) {
        answer_error(r, 502, "the control measurement produced no result", 0);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    static const char *keys[] = {"input", "test_name", "test_version", "measurement_start_time",
                                 "test_runtime"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keys[i]);
        if (v) cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddStringToObject(o, "kind", r->kind);
    cJSON *tk = cJSON_DetachItemFromObjectCaseSensitive(m, "test_keys");
    cJSON_AddItemToObject(o, "test_keys", tk ? tk : cJSON_CreateObject());
    char *s = vt_json_print(o);
    cJSON_Delete(o);
    if (!s) {
        answer_error(r, 502, "out of memory", 0);
        return;
    }
    vt_api_reply_json(r->req, 200, s);
    free(s);
    vt_api_log(r->a, "POST", "/api/v1/control", 200, r->t0, "");
    r->req = NULL;
}

static void on_timeout(void *arg)
{
    ctl_req *r = arg;
    r->timer = NULL;
    answer_error(r, 504, "the control measurement did not finish within its time cap", 0);
    if (!r->running && !r->dns_pending) req_free(r);
}

static void on_result(cJSON *m, const vt_target *t, void *arg)
{
    ctl_req *r = arg;
    cJSON_Delete(r->measurement);
    r->measurement = m;
}

static void run_done(long produced, void *arg)
{
    ctl_req *r = arg;
    r->running = 0;
    answer_result(r);
    req_free(r);
}

static void start_run(ctl_req *r)
{
    char err[256];
    if (r->private_found) {
        answer_error(r, 403,
                     "the destination resolves to a loopback, private or link-local address or to "
                     "this collector's own; "
                     "the collector measures only public destinations",
                     0);
        req_free(r);
        return;
    }
    if (!r->req) { /* timed out or shut down while resolving */
        req_free(r);
        return;
    }
    r->hooks.on_result = on_result;
    r->hooks.arg = r;
    r->running = 1;
    if (vt_run_start(&r->c->env, &r->targets, &r->hooks, run_done, r, err, sizeof(err)) < 0) {
        r->running = 0;
        answer_error(r, 503, "the control measurement could not start; retry later", 5);
        req_free(r);
    }
}

static void on_dns(const vt_dns_query *q, void *arg)
{
    ctl_req *r = arg;
    for (size_t i = 0; i < q->n_answers; i++)
        if (refused_address(q->answers[i].addr)) r->private_found = 1;
    if (--r->dns_pending == 0) start_run(r);
}

static int make_target(ctl_req *r, const char *input)
{
    vt_target *t = calloc(1, sizeof(*t));
    if (!t) return -1;
    r->targets.items = t;
    r->targets.n = r->targets.cap = 1;
    t->id = strdup("control");
    t->name = strdup(input);
    t->platform = strdup("control");
    t->category = strdup("control");
    t->kind = strdup(r->kind);
    t->endpoints = calloc(1, sizeof(char *));
    if (t->endpoints) t->endpoints[0] = strdup(input);
    t->n_endpoints = t->endpoints ? 1 : 0;
    t->options = cJSON_CreateObject();
    t->source = strdup("control request");
    return t->id && t->name && t->platform && t->category && t->kind && t->endpoints &&
                   t->endpoints[0] && t->options && t->source
               ? 0
               : -1;
}

/* The slots the client's requests hold now. */
static int client_slots(const vt_control *c, uint64_t client)
{
    int n = 0;
    for (const ctl_req *r = c->reqs; r && client; r = r->next)
        n += r->holds_slot && r->client == client;
    return n;
}

void vt_control_handle(vt_control *c, struct vt_api *a, struct evhttp_request *req,
                       const char *body, size_t len, double t0, uint64_t client)
{
    ctl_req tmp = {.c = c, .a = a, .req = req, .t0 = t0, .client = client};
    char err[256];
    if (c->max == 0) {
        answer_error(&tmp, 404, "this collector does not offer control measurements", 0);
        return;
    }
    cJSON *js = len < 65536 ? cJSON_ParseWithLength(body, len) : NULL;
    const char *input = vt_json_get_string(js, "input");
    const char *kind = vt_json_get_string(js, "kind");
    if (!js || !cJSON_IsObject(js)) {
        answer_error(&tmp, 400,
                     "send a JSON object {\"input\": URL or host:port, \"kind\": "
                     "\"web\" or \"endpoint\"}",
                     0);
        goto done;
    }
    if (!input || !*input || strlen(input) > 2048 ||
        !vt_utf8_valid((const unsigned char *)input, strlen(input))) {
        answer_error(&tmp, 400, "'input' must be a URL or host:port (at most 2048 characters)", 0);
        goto done;
    }
    if (!kind) kind = strstr(input, "://") ? "web" : "endpoint";
    if (strcmp(kind, "web") != 0 && strcmp(kind, "endpoint") != 0) {
        answer_error(&tmp, 400, "'kind' must be \"web\" or \"endpoint\"", 0);
        goto done;
    }
    if (!vt_kind_find(kind)) {
        answer_error(&tmp, 503, "this collector has no measurement of that kind", 0);
        goto done;
    }
    snprintf(tmp.kind, sizeof(tmp.kind), "%s", kind);
    if (input_host(input, kind, tmp.host, sizeof(tmp.host)) < 0) {
        answer_error(&tmp, 400,
                     strcmp(kind, "web") == 0
                         ? "'input' must be an http:// or https:// URL with a host and a port "
                           "from 1 to 65535, without spaces or control characters"
                         : "'input' must be host:port (a port from 1 to 65535) or an http(s) URL, "
                           "without spaces or control characters",
                     0);
        goto done;
    }
    if (c->shutting_down) {
        answer_error(&tmp, 503, "the collector is shutting down; retry later", 5);
        goto done;
    }
    if (c->in_flight >= c->max) {
        answer_error(&tmp, 429, "too many control measurements in flight; retry shortly", 2);
        goto done;
    }
    if (client_slots(c, client) >= (c->max + 1) / 2) {
        answer_error(&tmp, 429,
                     "this client has its share of the control measurements in flight (half); "
                     "retry shortly",
                     2);
        goto done;
    }
    unsigned char lit[16];
    int literal = inet_pton(AF_INET, tmp.host, lit) == 1 || inet_pton(AF_INET6, tmp.host, lit) == 1;
    if (!c->allow_private && (literal ? refused_address(tmp.host) : localhost_name(tmp.host))) {
        answer_error(&tmp, 403,
                     "the destination is a loopback, private or link-local address or this "
                     "collector's own; the "
                     "collector measures only public destinations",
                     0);
        goto done;
    }
    if (ensure_env(c, err, sizeof(err)) < 0) {
        vt_log_msg("vantage-collector: control: %s", err);
        answer_error(&tmp, 503, "control measurements are unavailable on this collector", 30);
        goto done;
    }
    ctl_req *r = calloc(1, sizeof(*r));
    if (!r) {
        answer_error(&tmp, 503, "out of memory; retry later", 5);
        goto done;
    }
    *r = tmp;
    if (make_target(r, input) < 0) {
        answer_error(r, 503, "out of memory; retry later", 5);
        req_free(r);
        goto done;
    }
    r->next = c->reqs;
    if (c->reqs) c->reqs->pprev = &r->next;
    c->reqs = r;
    r->pprev = &c->reqs;
    r->holds_slot = 1;
    c->in_flight++;
    r->timer = vt_timer_start(c->loop, c->timeout_s * 1000, on_timeout, r);
    if (!c->allow_private && !literal) {
        /* Resolve first: a public name that points at a private address is refused too. */
        /* 2 lookups + 1 for this frame, so an answer given at once cannot start the run
         * (and free r) before both are asked. */
        r->dns_pending = 3;
        if (vt_dns_lookup(c->env.dns, r->host, VT_DNS_A, vt_now(), on_dns, r) < 0) r->dns_pending--;
        if (vt_dns_lookup(c->env.dns, r->host, VT_DNS_AAAA, vt_now(), on_dns, r) < 0)
            r->dns_pending--;
        if (--r->dns_pending == 0) start_run(r);
    } else {
        start_run(r);
    }
done:
    cJSON_Delete(js);
}

int vt_control_busy(const vt_control *c)
{
    int n = 0;
    for (const ctl_req *r = c->reqs; r; r = r->next)
        n += r->running || r->dns_pending;
    return n;
}

void vt_control_shutdown(vt_control *c)
{
    c->shutting_down = 1;
    for (ctl_req *r = c->reqs; r; r = r->next)
        answer_error(r, 503, "the collector is shutting down; retry later", 5);
}

void vt_control_free(vt_control *c)
{
    if (!c) return;
    if (!c->allow_private) vt_loop_set_addr_policy(c->loop, NULL, NULL);
    /* Runs still on the loop are abandoned with it (the process is exiting). */
    int abandoned = 0;
    while (c->reqs) {
        ctl_req *r = c->reqs;
        c->reqs = r->next;
        r->pprev = NULL;
        if (r->timer) vt_timer_cancel(r->timer);
        r->timer = NULL;
        r->holds_slot = 0;
        if (!r->running && !r->dns_pending) {
            vt_targets_free(&r->targets);
            cJSON_Delete(r->measurement);
            free(r);
        } else {
            abandoned = 1;
        }
    }
    if (abandoned) return; /* their callbacks may still reach c while the loop is torn down */
    if (c->env.dns) vt_dns_free(c->env.dns);
    if (c->env.tls) vt_tls_ctx_free(c->env.tls);
    free(c);
}
