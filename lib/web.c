/* The "web", "endpoint" and "telegram" kinds, composed of the DNS, TCP, TLS and HTTP steps.
 *
 * Each endpoint of a target is one small state machine (an "ep") that runs its phases in order:
 *   DNS (A and AAAA through env->dns; env->dns_alt and env->dns_doh recorded beside it)
 *   -> TCP connect to up to max_addrs_per_family addresses per family
 *   -> TLS handshake with SNI on one connected address per family (https, or "tls": true)
 *   -> HTTP request through the curl multi to the addresses that connected, redirects followed
 *      hop by hop (a new host resolved through env->dns first).
 * A target's endpoints run concurrently; their OONI arrays are merged, and the summary keys
 * (failure_phase, failure, http_status, body_length, title, throughput_bps, x_*_runtime) are
 * those of the first endpoint (the measurement's input). A target's large_resource is fetched
 * once the endpoints are done, for throughput. Then, with a collector's SNI test server configured
 * (cfg->sni_test), an HTTPS web target's name and a neutral one are each sent as the TLS SNI of a
 * download from that server, both at once: same server, same path, same moment, only the name
 * differs, so a network that slows traffic by name shows in their rates (x_sni_test). With that
 * server given by address, the target's name is also asked of it on UDP port 53 from the start,
 * where no DNS server runs: an answer is an on-path forgery (x_dns_injection).
 *
 * Every step callback may end the task: a function that calls ep_step_done() or ep_finish()
 * returns right after, touching nothing. */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vantage/addr.h"
#include "vantage/dns.h"
#include "vantage/failure.h"
#include "vantage/http.h"
#include "vantage/json.h"
#include "vantage/task.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"
#include "vantage/verdict.h"

#define LARGE_BODY_KEPT 1024

enum ep_mode {
    EP_WEB,      /* a URL: DNS, TCP, TLS, HTTP GET with redirects */
    EP_ENDPOINT, /* host:port: DNS, TCP, optional TLS */
    EP_TG_DC,    /* a Telegram data centre: DNS (if a name), TCP, HTTP POST */
    EP_LARGE,    /* a large resource: DNS, HTTP GET with redirects, max_download bytes */
    EP_SNI,      /* one of the SNI test's pair: DNS of the test server, HTTP GET to it with
                  * the name in the URL (so in the SNI), VT_SNI_TEST_BYTES, no redirects */
};

/* The SNI test's download: enough to pass a policer's initial burst (the lab's lets 32 KiB
 * through at full speed) and to be measured at a few kbit/s, cheap enough to run for every
 * HTTPS target (2 x 128 KiB each); cut after VT_SNI_TEST_MS. The neutral name is one no
 * network has a reason to treat specially (IANA's reserved example domain). */
#define VT_SNI_TEST_BYTES 131072
#define VT_SNI_TEST_MS 6000
#define VT_SNI_TEST_PATH "/vantage/sni-test"
#define VT_SNI_TEST_NEUTRAL "example.com"

enum ep_stage { ST_DNS, ST_TCP, ST_TLS, ST_HTTP, ST_HOP_DNS, ST_DONE };

enum lookup_role { ROLE_MAIN, ROLE_EXTRA, ROLE_HOP };

typedef struct addr_list {
    char (*a)[INET6_ADDRSTRLEN];
    size_t n, cap;
} addr_list;

typedef struct web_state web_state;

typedef struct ep {
    web_state *w;
    int mode;
    int stage;
    int pending;
    char *input;    /* the endpoint as written in the target */
    char *url;      /* current URL (web, large, telegram POST) */
    char host[256]; /* host of the current URL / endpoint, no brackets */
    int port;
    int https;   /* the URL is https (web): TLS phase */
    int use_tls; /* TLS phase */
    char sni[256];

    addr_list addrs;     /* resolved (or the literal) */
    addr_list connected; /* TCP connect succeeded */
    addr_list hop_addrs; /* of a redirect hop's new host */
    int on_hop_addrs;    /* the current host is a redirect hop's: use hop_addrs */

    char dns_failure_a[VT_FAILURE_MAX], dns_failure_aaaa[VT_FAILURE_MAX];
    char dns_failure[VT_FAILURE_MAX];
    int dns_failed;
    int dns_asked_again; /* the system resolver was asked a second time (after_dns) */
    int tcp_attempts, tcp_ok;
    char tcp_failure[VT_FAILURE_MAX];
    int tls_attempts, tls_ok;
    char tls_failure[VT_FAILURE_MAX];
    int http_attempted;
    char http_failure[VT_FAILURE_MAX];
    long http_status;
    long long body_length; /* -1: no response */
    char *title;
    double throughput_bps;
    size_t bytes_received;
    int body_truncated;
    int redirects;
    int origin_local;   /* the first host was local (redirects into local networks followed) */
    int redirect_local; /* a redirect into a local network was not followed */

    double dns_t0, dns_t1, tcptls_t0, tcptls_t1, http_t0, http_t1;
    /* a large resource: counted in the process's large downloads (share_*), from its start */
    int share_on;
    double share_t0, share_i0, shared_by; /* shared_by: mean number of them while it ran */
    size_t share_b0;
    double shared_bps; /* what all of them received together while it ran, bits/s */
    cJSON *queries, *tcp_connect, *tls_handshakes, *requests, *network_events;
} ep;

/* The large downloads in progress in this process (all on its one loop), and the integral of
 * their number over time: a download's mean share of the connection is the integral's growth
 * over its own duration. Several targets' downloads at once share the volunteer's link, while
 * the canary's ran alone (phase 1): on a slow link each of them gets a fraction of the canary's
 * rate, which is not throttling (lib/verdict.c). */
static struct {
    int active;
    double integral, last;
    size_t bytes; /* body bytes all of them have received (http.c counts, bytes_counter) */
} large_share;

struct web_state {
    vt_task *t;
    ep *eps;
    size_t n_eps, n_done;
    ep *large; /* NULL when the target has no large_resource */
    int large_started;
    ep *sni; /* the SNI test's pairs ([0], [2]: the target's name; [1], [3]: the neutral
              * one; [2] and [3] repeat the first pair when it looked throttled), or NULL */
    int sni_started, sni_done, sni_repeated, sni_skipped, sni_not_due;
    web_state *sni_next; /* in sni_q's waiting list */
    int sni_waiting;
    /* The DNS injection check: the target's name asked of the SNI test server's address, port
     * 53, where no DNS server runs: an answer can only come from something on the path. */
    vt_dns *inj;
    vt_config inj_cfg;   /* its settings (inj keeps a pointer) */
    cJSON *inj_query;    /* its OONI "queries" entry, once answered or timed out */
    cJSON *inj_unlisted; /* the same for a random name no censor lists: an answer to it means
                          * everything on UDP 53 is answered on the way (a transparent DNS
                          * proxy), and the check proves nothing */
    char inj_name[64];   /* that random name */
    int inj_pending, main_finished;
    struct event *done_timer;
    int is_telegram;
};

/* The DNS injection check's query: a short wait (an injector on the path answers within a
 * round trip; a host without a DNS server answers nothing, or a port unreachable). */
#define VT_INJECTION_TIMEOUT_MS 1500

/* The SNI test's pairs run one at a time in the process, and not while a large download is in
 * progress. Two flows alone on a link share it about evenly; among the 16 flows of eight pairs
 * on a full 2 Mbit/s link (lab scenario 18), one of two got a tenth of the other's rate, which
 * a pair must never read as throttling. And a pair's flows would take their share from the
 * large downloads, which are judged against the canary's rate. */
static struct {
    web_state *running;     /* whose pair (or repeat) is in progress */
    web_state *head, *tail; /* waiting, in order */
    struct event *kick;     /* the next one's start, deferred to the loop */
    vt_loop *loop;
    int dead; /* a pair got not one byte on either download: the server is out of reach (down,
               * or blocked by the network), and later targets skip the test rather than wait
               * for the same timeouts, one pair at a time */
} sni_q;

static void sni_kick(void *arg);

/* The next waiting pair starts from the loop (not from inside a finishing task's callbacks)
 * once nothing holds the link. Without a timer (out of memory) it starts at the next call. */
static void sni_schedule(void)
{
    if (sni_q.head && !sni_q.running && !sni_q.kick && large_share.active == 0 && sni_q.loop)
        sni_q.kick = vt_timer_start(sni_q.loop, 0, sni_kick, NULL);
}

typedef struct lookup_ctx {
    ep *e;
    int role;
} lookup_ctx;

static void ep_step_done(ep *e);
static void ep_finish(ep *e);
static void start_http(ep *e);

/* ---- small helpers ---- */

static int addr_add(addr_list *l, const char *ip)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->a[i], ip) == 0) return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void *p = realloc(l->a, cap * sizeof(*l->a));
        if (!p) return -1;
        l->a = p;
        l->cap = cap;
    }
    snprintf(l->a[l->n++], INET6_ADDRSTRLEN, "%s", ip);
    return 0;
}

static int is_v6(const char *ip)
{
    return strchr(ip, ':') != NULL;
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* A NULL-terminated array of pointers into l (freed by the caller; the strings stay in l). */
static const char **addr_ptrs(const addr_list *l)
{
    const char **p = calloc(l->n + 1, sizeof(*p));
    if (!p) return NULL;
    for (size_t i = 0; i < l->n; i++)
        p[i] = l->a[i];
    return p;
}

static long long ns(double secs)
{
    return secs > 0 ? (long long)(secs * 1e9) : 0;
}

static void append_all(cJSON *dst, cJSON *src)
{
    if (!src) return;
    cJSON *it;
    while ((it = cJSON_DetachItemFromArray(src, 0)) != NULL)
        cJSON_AddItemToArray(dst, it);
}

/* ---- DNS ---- */

static void dns_done(const vt_dns_query *q, void *arg)
{
    lookup_ctx *c = arg;
    ep *e = c->e;
    int role = c->role;
    free(c);
    cJSON *j = vt_dns_query_json(q);
    if (j) cJSON_AddItemToArray(e->queries, j);
    if (role != ROLE_EXTRA) {
        addr_list *l = role == ROLE_HOP ? &e->hop_addrs : &e->addrs;
        for (size_t i = 0; i < q->n_answers; i++)
            if (q->answers[i].qtype == q->qtype && q->answers[i].addr[0])
                addr_add(l, q->answers[i].addr);
        if (q->failure[0]) {
            char *dst = q->qtype == VT_DNS_AAAA ? e->dns_failure_aaaa : e->dns_failure_a;
            snprintf(dst, VT_FAILURE_MAX, "%s", q->failure);
        }
    }
    ep_step_done(e);
}

static void lookup(ep *e, vt_dns *d, const char *host, int qtype, int role)
{
    lookup_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(qtype == VT_DNS_AAAA ? e->dns_failure_aaaa : e->dns_failure_a, VT_FAILURE_MAX,
                 "unknown_failure: out of memory");
        return;
    }
    c->e = e;
    c->role = role;
    e->pending++;
    if (vt_dns_lookup(d, host, qtype, e->w->t->t0, dns_done, c) < 0) {
        e->pending--;
        free(c);
        if (role != ROLE_EXTRA)
            snprintf(qtype == VT_DNS_AAAA ? e->dns_failure_aaaa : e->dns_failure_a, VT_FAILURE_MAX,
                     "unknown_failure: cannot start the DNS lookup");
    }
}

/* Resolves host through env->dns (and the extra resolvers when asked); the stage advances when
 * every lookup has answered. */
static void start_lookups(ep *e, const char *host, int role, int extra)
{
    const vt_env *env = e->w->t->env;
    e->pending = 1; /* held while starting */
    e->dns_failure_a[0] = e->dns_failure_aaaa[0] = 0;
    if (env->dns) {
        lookup(e, env->dns, host, VT_DNS_A, role);
        lookup(e, env->dns, host, VT_DNS_AAAA, role);
    } else {
        snprintf(e->dns_failure_a, VT_FAILURE_MAX, "unknown_failure: no resolver");
    }
    if (extra) {
        if (env->dns_alt) {
            lookup(e, env->dns_alt, host, VT_DNS_A, ROLE_EXTRA);
            lookup(e, env->dns_alt, host, VT_DNS_AAAA, ROLE_EXTRA);
        }
        if (env->dns_doh) {
            lookup(e, env->dns_doh, host, VT_DNS_A, ROLE_EXTRA);
            lookup(e, env->dns_doh, host, VT_DNS_AAAA, ROLE_EXTRA);
        }
    }
    ep_step_done(e);
}

/* The failure of a lookup pair that gave no address. */
static void lookup_failure(const ep *e, char *out)
{
    const char *f = e->dns_failure_a[0]      ? e->dns_failure_a
                    : e->dns_failure_aaaa[0] ? e->dns_failure_aaaa
                                             : "dns_no_answer";
    snprintf(out, VT_FAILURE_MAX, "%s", f);
}

/* ---- TCP ---- */

static void tcp_done(const vt_tcp_result *r, int fd, void *arg)
{
    ep *e = arg;
    if (fd >= 0) close(fd);
    cJSON *j = vt_tcp_result_json(r);
    if (j) cJSON_AddItemToArray(e->tcp_connect, j);
    if (r->failure[0] == 0) {
        e->tcp_ok++;
        addr_add(&e->connected, r->ip);
    } else if (!e->tcp_failure[0]) {
        snprintf(e->tcp_failure, sizeof(e->tcp_failure), "%s", r->failure);
    }
    ep_step_done(e);
}

/* A step's timeout within the task's deadline (cfg->task_deadline_ms): ms, or what is left of
 * the deadline when that is less, or 0 when it has passed (the step is not started). */
static int within_deadline(const ep *e, int ms)
{
    int d = e->w->t->env->cfg->task_deadline_ms;
    if (d <= 0) return ms;
    double left = d - (vt_now() - e->w->t->t0) * 1000.0;
    if (left < 1) return 0;
    return left < ms ? (int)left : ms;
}

/* Of the endpoint's first host (before any redirect): a loopback, link-local or private
 * address, or a name that resolved to one. */
static int origin_local(const ep *e)
{
    if (e->addrs.n == 0) return vt_verdict_addr_class(e->host) != 0;
    for (size_t i = 0; i < e->addrs.n; i++)
        if (vt_verdict_addr_class(e->addrs.a[i]) != 0) return 1;
    return 0;
}

/* A copy of a Location for the next request and the measurement: bytes outside printable ASCII
 * percent-encoded (curl leaves them in a URL's user info, and they would make the measurement
 * invalid UTF-8, which the collector refuses). NULL when out of memory. */
static char *url_clean(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p <= 0x20 || *p >= 0x7f) ? 3 : 1;
    char *out = malloc(n + 1), *w = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            static const char hex[] = "0123456789ABCDEF";
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        } else {
            *w++ = (char)*p;
        }
    }
    *w = 0;
    return out;
}

static void start_tcp(ep *e)
{
    const vt_config *cfg = e->w->t->env->cfg;
    int max = cfg->max_addrs_per_family > 0 ? cfg->max_addrs_per_family : 1;
    int n4 = 0, n6 = 0;
    e->stage = ST_TCP;
    e->tcptls_t0 = vt_now();
    e->pending = 1;
    int timeout = within_deadline(e, cfg->connect_timeout_ms);
    if (!timeout) snprintf(e->tcp_failure, sizeof(e->tcp_failure), "generic_timeout_error");
    for (size_t i = 0; timeout && i < e->addrs.n; i++) {
        int *count = is_v6(e->addrs.a[i]) ? &n6 : &n4;
        if (*count >= max) continue;
        (*count)++;
        e->tcp_attempts++;
        e->pending++;
        if (vt_tcp_connect(e->w->t->env->loop, e->addrs.a[i], e->port, timeout, e->w->t->t0,
                           tcp_done, e) < 0) {
            e->pending--;
            if (!e->tcp_failure[0])
                snprintf(e->tcp_failure, sizeof(e->tcp_failure),
                         "unknown_failure: cannot connect to %s", e->addrs.a[i]);
        }
    }
    ep_step_done(e);
}

/* ---- TLS ---- */

static void tls_done(const vt_tls_result *r, void *arg)
{
    ep *e = arg;
    cJSON *j = vt_tls_result_json(r);
    if (j) cJSON_AddItemToArray(e->tls_handshakes, j);
    if (r->failure[0] == 0)
        e->tls_ok++;
    else if (!e->tls_failure[0])
        snprintf(e->tls_failure, sizeof(e->tls_failure), "%s", r->failure);
    ep_step_done(e);
}

static void start_tls(ep *e)
{
    const vt_env *env = e->w->t->env;
    const char *alpn = e->mode == EP_WEB ? VT_WEB_ALPN : NULL;
    if (e->mode == EP_ENDPOINT) alpn = vt_json_get_string(e->w->t->target->options, "alpn");
    e->stage = ST_TLS;
    e->pending = 1;
    int did4 = 0, did6 = 0;
    int timeout = within_deadline(e, env->cfg->tls_timeout_ms);
    if (!timeout) snprintf(e->tls_failure, sizeof(e->tls_failure), "generic_timeout_error");
    for (size_t i = 0; timeout && i < e->connected.n; i++) {
        int *did = is_v6(e->connected.a[i]) ? &did6 : &did4;
        if (*did) continue;
        *did = 1;
        vt_tls_opts o;
        memset(&o, 0, sizeof(o));
        o.ip = e->connected.a[i];
        o.port = e->port;
        o.sni = e->sni[0] ? e->sni : NULL;
        o.verify_name = e->sni[0] ? e->sni : e->host;
        o.alpn = alpn;
        /* "no_verify": true for services that pin their own CA (Signal): the handshake is
         * the measurement, verification against public CAs would fail by design. */
        o.no_verify =
            e->mode == EP_ENDPOINT &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e->w->t->target->options, "no_verify"));
        int ct = within_deadline(e, env->cfg->connect_timeout_ms);
        o.connect_timeout_ms = ct ? ct : 1;
        o.tls_timeout_ms = timeout;
        o.t_base = e->w->t->t0;
        e->tls_attempts++;
        e->pending++;
        if (vt_tls_handshake(env->loop, env->tls, &o, tls_done, e) < 0) {
            e->pending--;
            if (!e->tls_failure[0])
                snprintf(e->tls_failure, sizeof(e->tls_failure),
                         "unknown_failure: cannot start the TLS handshake");
        }
    }
    ep_step_done(e);
}

/* ---- HTTP ---- */

static void http_done(vt_http_result *r, void *arg)
{
    ep *e = arg;
    const vt_config *cfg = e->w->t->env->cfg;
    if (r->request_entry) {
        cJSON_InsertItemInArray(e->requests, 0, r->request_entry); /* newest first */
        r->request_entry = NULL;
    }
    append_all(e->network_events, r->network_events);
    e->http_status = r->status;
    e->body_length = r->status ? (long long)r->bytes_received : -1;
    e->bytes_received = r->bytes_received;
    e->body_truncated = r->body_truncated;
    e->throughput_bps = r->throughput_bps;
    free(e->title);
    e->title = r->title ? strdup(r->title) : NULL;
    snprintf(e->http_failure, sizeof(e->http_failure), "%s", r->failure);

    int follow = e->mode == EP_WEB || e->mode == EP_LARGE;
    if (!r->failure[0] && follow && r->location && r->status >= 300 && r->status < 400) {
        char host[256];
        int port, https;
        if (vt_url_split(r->location, host, sizeof(host), &port, &https) < 0)
            goto finish; /* not http(s): the 3xx is the final answer */
        if (e->redirects >= cfg->max_redirects) {
            snprintf(e->http_failure, sizeof(e->http_failure), "http_too_many_redirects");
            goto finish;
        }
        /* A public site never sends the probe into the volunteer's own machine or network
         * (a router's admin page, a local service, cloud metadata): the 3xx is then the final
         * answer, and its Location is the evidence (a censor redirecting to a blockpage on a
         * private address, as Iran's 10.10.34.34). Followed when the site itself was local. */
        if (!e->redirects) e->origin_local = origin_local(e);
        if (!e->origin_local && is_ip_literal(host) && vt_verdict_addr_class(host) != 0) {
            e->redirect_local = 1;
            goto finish;
        }
        e->redirects++;
        char *url = url_clean(r->location);
        if (!url) {
            snprintf(e->http_failure, sizeof(e->http_failure), "unknown_failure: out of memory");
            goto finish;
        }
        free(e->url);
        e->url = url;
        int same_host = strcasecmp(host, e->host) == 0;
        snprintf(e->host, sizeof(e->host), "%s", host);
        e->port = port;
        if (same_host || is_ip_literal(host)) {
            start_http(e);
            return;
        }
        /* A new name: measured through the resolver like the first one. */
        if (!within_deadline(e, 1)) {
            snprintf(e->http_failure, sizeof(e->http_failure), "generic_timeout_error");
            goto finish;
        }
        e->hop_addrs.n = 0;
        e->stage = ST_HOP_DNS;
        start_lookups(e, host, ROLE_HOP, 0);
        return;
    }
finish:
    e->http_t1 = vt_now();
    ep_finish(e);
}

static void start_http(ep *e)
{
    const vt_env *env = e->w->t->env;
    const vt_config *cfg = env->cfg;
    e->stage = ST_HTTP;
    if (!e->http_attempted) {
        e->http_attempted = 1;
        e->http_t0 = vt_now();
    }
    /* Addresses: those of the redirect hop's new name once there was one, else those that
     * connected, else all resolved; none for an IP literal (curl connects to it). */
    const addr_list *l = e->on_hop_addrs  ? &e->hop_addrs
                         : e->connected.n ? &e->connected
                                          : &e->addrs;
    if (is_ip_literal(e->host) && e->mode != EP_SNI) l = NULL;
    if (l && l->n == 0) { /* never let curl resolve a name itself */
        snprintf(e->http_failure, sizeof(e->http_failure), "dns_no_answer");
        e->http_t1 = vt_now();
        ep_finish(e);
        return;
    }
    int timeout = within_deadline(e, cfg->http_timeout_ms);
    if (!timeout) {
        snprintf(e->http_failure, sizeof(e->http_failure), "generic_timeout_error");
        e->http_t1 = vt_now();
        ep_finish(e);
        return;
    }
    const char **addrs = l ? addr_ptrs(l) : NULL;
    vt_http_opts o;
    memset(&o, 0, sizeof(o));
    o.url = e->url;
    o.addrs = addrs;
    o.cacert = cfg->cacert;
    o.timeout_ms = timeout;
    /* curl's connect includes the TLS handshake: both phases' budgets */
    int ct = within_deadline(e, cfg->connect_timeout_ms + cfg->tls_timeout_ms);
    o.connect_timeout_ms = ct ? ct : 1;
    o.max_body = cfg->max_body_bytes;
    o.user_agent = cfg->user_agent;
    o.t_base = e->w->t->t0;
    if (e->mode == EP_LARGE) {
        o.max_body = LARGE_BODY_KEPT;
        o.max_download = cfg->max_download_bytes;
        o.bytes_counter = &large_share.bytes;
    }
    if (e->mode == EP_SNI) {
        /* Any name is the server's: its certificate cannot match, only its key (the
         * check-in's pin) says it is the collector's server. */
        o.no_verify = 1;
        o.pinned_key = cfg->sni_test_pin;
        o.max_body = LARGE_BODY_KEPT;
        o.max_download = VT_SNI_TEST_BYTES;
        o.bytes_counter = &large_share.bytes;
        if (o.timeout_ms > VT_SNI_TEST_MS) o.timeout_ms = VT_SNI_TEST_MS;
        if (o.connect_timeout_ms > o.timeout_ms) o.connect_timeout_ms = o.timeout_ms;
    }
    if (e->mode == EP_TG_DC) {
        o.method = "POST";
        o.body = (const unsigned char *)"";
        o.body_len = 0;
    }
    int rc = (l && !addrs) ? -1 : vt_http_request(env->loop, &o, http_done, e);
    free(addrs);
    if (rc < 0) {
        snprintf(e->http_failure, sizeof(e->http_failure),
                 "unknown_failure: cannot start the HTTP request");
        e->http_t1 = vt_now();
        ep_finish(e);
    }
}

/* ---- the endpoint's state machine ---- */

/* The system resolver's lookups gave no address and one of them timed out or said SERVFAIL:
 * what a resolver that drops some queries, or answers a name not in its cache too late, does as
 * well as a censor dropping the queries for one name. */
static int dns_transient(const ep *e)
{
    return vt_failure_is_timeout(e->dns_failure_a) || vt_failure_is_timeout(e->dns_failure_aaaa) ||
           strcmp(e->dns_failure_a, "dns_servfail_error") == 0 ||
           strcmp(e->dns_failure_aaaa, "dns_servfail_error") == 0;
}

static void after_dns(ep *e)
{
    e->dns_t1 = vt_now();
    /* Asked once more before the name counts as failed: a censor drops every query for the
     * name, a flaky or slow resolver answers the second one (or its cache does). Both rounds
     * are in "queries". */
    if (e->addrs.n == 0 && !e->dns_asked_again && dns_transient(e) && within_deadline(e, 1)) {
        e->dns_asked_again = 1;
        start_lookups(e, e->host, ROLE_MAIN, 0);
        return;
    }
    if (e->addrs.n == 0) {
        e->dns_failed = 1;
        lookup_failure(e, e->dns_failure);
        ep_finish(e);
        return;
    }
    if (e->mode == EP_LARGE || e->mode == EP_SNI)
        start_http(e);
    else
        start_tcp(e);
}

static void after_tcp(ep *e)
{
    if (e->use_tls && e->connected.n) {
        start_tls(e);
        return;
    }
    e->tcptls_t1 = vt_now();
    /* No connection at all: an HTTP request would only connect again (curl's own connect,
     * doubling a blocked target's time) to the same failure, which the tcp phase reports. */
    if (e->mode == EP_ENDPOINT || (e->tcp_attempts && !e->connected.n))
        ep_finish(e);
    else
        start_http(e);
}

static void after_hop_dns(ep *e)
{
    /* A hop's name that resolves to the volunteer's own network: those addresses are dropped
     * (see http_done); with none left, the last 3xx is the final answer. */
    if (!e->origin_local) {
        size_t k = 0;
        for (size_t i = 0; i < e->hop_addrs.n; i++) {
            if (vt_verdict_addr_class(e->hop_addrs.a[i]) != 0) continue;
            if (k != i) memcpy(e->hop_addrs.a[k], e->hop_addrs.a[i], sizeof(e->hop_addrs.a[k]));
            k++;
        }
        if (k == 0 && e->hop_addrs.n > 0) {
            e->hop_addrs.n = 0;
            e->redirect_local = 1;
            e->http_t1 = vt_now();
            ep_finish(e);
            return;
        }
        e->hop_addrs.n = k;
    }
    e->on_hop_addrs = 1;
    if (e->hop_addrs.n == 0) {
        lookup_failure(e, e->http_failure);
        e->http_t1 = vt_now();
        ep_finish(e);
        return;
    }
    start_http(e);
}

static void ep_step_done(ep *e)
{
    if (--e->pending > 0) return;
    switch (e->stage) {
    case ST_DNS:
        after_dns(e);
        break;
    case ST_TCP:
        after_tcp(e);
        break;
    case ST_TLS:
        e->tcptls_t1 = vt_now();
        /* No handshake completed: the same, for the tls phase. */
        if (e->mode == EP_ENDPOINT || (e->tls_attempts && !e->tls_ok))
            ep_finish(e);
        else
            start_http(e);
        break;
    case ST_HOP_DNS:
        after_hop_dns(e);
        break;
    default:
        break;
    }
}

/* large_share: its count of downloads, their integral over time and their bytes. */
static void large_share_tick(void)
{
    double now = vt_now();
    if (large_share.active > 0)
        large_share.integral += large_share.active * (now - large_share.last);
    large_share.last = now;
}

static void large_share_begin(ep *e)
{
    large_share_tick();
    large_share.active++;
    e->share_on = 1;
    e->share_t0 = large_share.last;
    e->share_i0 = large_share.integral;
    e->share_b0 = large_share.bytes;
}

static void large_share_end(ep *e)
{
    if (!e->share_on) return;
    large_share_tick();
    double dt = large_share.last - e->share_t0;
    e->shared_by = dt > 0 ? (large_share.integral - e->share_i0) / dt : 1;
    if (e->shared_by < 1) e->shared_by = 1;
    e->shared_bps = dt > 0 ? (double)(large_share.bytes - e->share_b0) * 8.0 / dt : 0;
    large_share.active--;
    e->share_on = 0;
    sni_schedule(); /* a pair may have waited for the large downloads to end */
}

static void ep_start(ep *e)
{
    if (e->mode == EP_LARGE) large_share_begin(e);
    e->stage = ST_DNS;
    e->dns_t0 = vt_now();
    if (is_ip_literal(e->host)) {
        addr_add(&e->addrs, e->host);
        after_dns(e);
        return;
    }
    int extra = e->mode == EP_WEB || e->mode == EP_ENDPOINT;
    start_lookups(e, e->host, ROLE_MAIN, extra);
}

/* The first pair's named download under VT_VERDICT_THROTTLE_RATIO of the neutral one's rate
 * (curl's rates: the verdict's finer ones come from the same bytes). */
static int sni_looks_slowed(const web_state *w)
{
    const ep *named = &w->sni[0], *neutral = &w->sni[1];
    return named->throughput_bps > 0 && neutral->throughput_bps > 0 &&
           named->throughput_bps < VT_VERDICT_THROTTLE_RATIO * neutral->throughput_bps &&
           named->throughput_bps < VT_VERDICT_THROTTLE_MAX_BPS;
}

/* ---- the end of the task: the steps, and the DNS injection check beside them ---- */

static void done_fire(void *arg)
{
    web_state *w = arg;
    w->done_timer = NULL;
    vt_task_done(w->t);
}

static void inj_done(const vt_dns_query *q, void *arg)
{
    web_state *w = arg;
    cJSON **dst = strcasecmp(q->hostname, w->inj_name) == 0 ? &w->inj_unlisted : &w->inj_query;
    cJSON_Delete(*dst);
    *dst = vt_dns_query_json(q);
    if (--w->inj_pending > 0) return;
    /* not from inside the resolver's callback: the task's end frees the resolver */
    if (w->main_finished && !w->done_timer) {
        w->done_timer = vt_timer_start(w->t->env->loop, 0, done_fire, w);
        if (!w->done_timer) vt_task_done(w->t); /* out of memory: the lookup is over anyway */
    }
}

/* The steps are over: the task ends now, or when the injection check has its answer. */
static void main_done(web_state *w)
{
    w->main_finished = 1;
    if (!w->inj_pending) vt_task_done(w->t);
}

static void sni_run(web_state *w)
{
    sni_q.running = w;
    /* A start that fails finishes its endpoint here; the second start is the last thing done
     * (it may end the task). */
    ep_start(&w->sni[0]);
    ep_start(&w->sni[1]);
}

static web_state *sni_pop(void)
{
    web_state *w = sni_q.head;
    sni_q.head = w->sni_next;
    if (!sni_q.head) sni_q.tail = NULL;
    w->sni_next = NULL;
    w->sni_waiting = 0;
    return w;
}

static void sni_kick(void *arg)
{
    (void)arg;
    sni_q.kick = NULL;
    /* the server stopped answering meanwhile: the pairs waiting are skipped */
    while (sni_q.head && sni_q.dead) {
        web_state *w = sni_pop();
        w->sni_started = 0;
        w->sni_skipped = 1;
        main_done(w);
    }
    if (!sni_q.head || sni_q.running || large_share.active > 0) return;
    sni_run(sni_pop());
}

/* w's pair is over (or w is gone): the next waiting one starts from the loop, not from inside
 * the finishing task's callbacks. */
static void sni_release(web_state *w)
{
    if (sni_q.running != w) return;
    sni_q.running = NULL;
    sni_schedule();
}

/* A waiting w leaves the queue (its task is freed before its turn). */
static void sni_unqueue(web_state *w)
{
    web_state **pp = &sni_q.head, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->sni_next;
    }
    if (!*pp) return;
    *pp = w->sni_next;
    if (sni_q.tail == w) sni_q.tail = prev;
    w->sni_next = NULL;
    w->sni_waiting = 0;
    if (!sni_q.head && sni_q.kick) {
        vt_timer_cancel(sni_q.kick);
        sni_q.kick = NULL;
    }
}

/* The SNI test runs when the target's first endpoint connected: a network that reaches it
 * reaches the test server, and an offline or blackholed run does not wait for it. */
static void after_large(web_state *w)
{
    if (!w->sni || w->sni_started || !w->eps[0].tcp_ok) {
        main_done(w);
        return;
    }
    if (sni_q.dead) {
        w->sni_skipped = 1;
        main_done(w);
        return;
    }
    w->sni_started = 1;
    sni_q.loop = w->t->env->loop;
    if (!sni_q.running && !sni_q.head && large_share.active == 0) {
        sni_run(w);
        return;
    }
    w->sni_waiting = 1;
    if (sni_q.tail)
        sni_q.tail->sni_next = w;
    else
        sni_q.head = w;
    sni_q.tail = w;
    sni_schedule();
}

static void ep_finish(ep *e)
{
    web_state *w = e->w;
    e->stage = ST_DONE;
    if (w->sni && e >= &w->sni[0] && e <= &w->sni[3]) {
        if (++w->sni_done < 2 * (1 + w->sni_repeated)) return;
        /* A named download far slower than the neutral one is asked once more: a loss that
         * stalled one of two flows does not happen to the named one twice in a row, a
         * policer does (lib/verdict.c judges both pairs). */
        if (!w->sni_repeated && sni_looks_slowed(w) && within_deadline(&w->sni[0], 1)) {
            w->sni_repeated = 1;
            ep_start(&w->sni[2]);
            ep_start(&w->sni[3]);
            return;
        }
        if (w->sni[0].bytes_received == 0 && w->sni[1].bytes_received == 0) sni_q.dead = 1;
        sni_release(w);
        main_done(w);
        return;
    }
    if (e == w->large) {
        large_share_end(e);
        after_large(w);
        return;
    }
    if (++w->n_done < w->n_eps) return;
    if (w->large && !w->large_started) {
        w->large_started = 1;
        ep_start(w->large);
        return;
    }
    after_large(w);
}

/* ---- create / finish ---- */

static int ep_init(ep *e, web_state *w, int mode, const char *input)
{
    memset(e, 0, sizeof(*e));
    e->w = w;
    e->mode = mode;
    e->body_length = -1;
    e->input = strdup(input);
    e->queries = cJSON_CreateArray();
    e->tcp_connect = cJSON_CreateArray();
    e->tls_handshakes = cJSON_CreateArray();
    e->requests = cJSON_CreateArray();
    e->network_events = cJSON_CreateArray();
    return e->input && e->queries && e->tcp_connect && e->tls_handshakes && e->requests &&
                   e->network_events
               ? 0
               : -1;
}

static void ep_free(ep *e)
{
    free(e->input);
    free(e->url);
    free(e->title);
    free(e->addrs.a);
    free(e->connected.a);
    free(e->hop_addrs.a);
    cJSON_Delete(e->queries);
    cJSON_Delete(e->tcp_connect);
    cJSON_Delete(e->tls_handshakes);
    cJSON_Delete(e->requests);
    cJSON_Delete(e->network_events);
}

static void state_free(web_state *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_eps; i++)
        ep_free(&w->eps[i]);
    free(w->eps);
    if (w->large) {
        large_share_end(w->large);
        ep_free(w->large);
        free(w->large);
    }
    if (w->sni_waiting) sni_unqueue(w);
    sni_release(w);
    if (w->done_timer) vt_timer_cancel(w->done_timer);
    if (w->inj) vt_dns_free(w->inj);
    cJSON_Delete(w->inj_query);
    cJSON_Delete(w->inj_unlisted);
    if (w->sni) {
        for (int i = 0; i < 4; i++)
            ep_free(&w->sni[i]);
        free(w->sni);
    }
    free(w);
}

static int ep_set_url(ep *e, const char *url, char *err, size_t errlen)
{
    if (vt_url_split(url, e->host, sizeof(e->host), &e->port, &e->https) < 0) {
        snprintf(err, errlen, "'%s' is not an http:// or https:// URL", url);
        return -1;
    }
    e->url = strdup(url);
    if (!e->url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(e->sni, sizeof(e->sni), "%s", e->host);
    return 0;
}

/* "host:port", "[v6]:port", or a URL (its host and port). */
static int ep_set_host_port(ep *e, const char *s, char *err, size_t errlen)
{
    int https;
    if (strstr(s, "://")) {
        if (vt_url_split(s, e->host, sizeof(e->host), &e->port, &https) == 0) return 0;
        snprintf(err, errlen, "'%s' is not host:port or an http(s) URL", s);
        return -1;
    }
    if (vt_split_host_port(s, e->host, sizeof(e->host), &e->port) < 0 || !e->host[0] ||
        e->port <= 0 || e->port > 65535) {
        snprintf(err, errlen, "'%s' is not host:port", s);
        return -1;
    }
    return 0;
}

static web_state *state_new(vt_task *t, size_t n, char *err, size_t errlen)
{
    web_state *w = calloc(1, sizeof(*w));
    if (w) w->eps = calloc(n ? n : 1, sizeof(*w->eps));
    if (!w || !w->eps) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->t = t;
    return w;
}

static int add_large(web_state *w, char *err, size_t errlen)
{
    const char *lr = w->t->target->large_resource;
    if (!lr || !*lr) return 0;
    w->large = calloc(1, sizeof(*w->large));
    if (!w->large || ep_init(w->large, w, EP_LARGE, lr) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (ep_set_url(w->large, lr, err, errlen) < 0) return -1;
    return 0;
}

/* The SNI test's pair for an https first endpoint, when a test server is configured. The
 * server's host is what is resolved (e->host); the URL carries the name sent as SNI. */
/* The SNI test server's host and port, when there is one and this target's first endpoint is a
 * name (not a canary's): 1; 0 when the target takes no part; -1 when cfg->sni_test is not
 * HOST:PORT (the probe checks it first: vt_probe_sni_test_check). */
static int sni_server(const web_state *w, char *host, size_t hostlen, int *port, char *err,
                      size_t errlen)
{
    const vt_config *cfg = w->t->env->cfg;
    if (!cfg->sni_test || !*cfg->sni_test || is_ip_literal(w->eps[0].host) ||
        (w->t->target->category && strcmp(w->t->target->category, "canary") == 0))
        return 0;
    if (vt_split_host_port(cfg->sni_test, host, hostlen, port) < 0 || !host[0] || *port <= 0 ||
        *port > 65535) {
        snprintf(err, errlen, "SNI test server '%s' is not HOST:PORT", cfg->sni_test);
        return -1;
    }
    return 1;
}

static int add_sni(web_state *w, char *err, size_t errlen)
{
    const vt_config *cfg = w->t->env->cfg;
    const ep *first = &w->eps[0];
    char host[256];
    int port;
    int r = first->https ? sni_server(w, host, sizeof(host), &port, err, errlen) : 0;
    if (r <= 0) return r;
    if (cfg->sni_test_not_due) { /* a recent run did it (sni_test_every): no downloads */
        w->sni_not_due = 1;
        return 0;
    }
    w->sni = calloc(4, sizeof(*w->sni));
    if (!w->sni) goto oom;
    for (int i = 0; i < 4; i++) {
        ep *e = &w->sni[i];
        const char *name = i % 2 == 0 ? first->host : VT_SNI_TEST_NEUTRAL;
        char url[512];
        snprintf(url, sizeof(url), "https://%s:%d" VT_SNI_TEST_PATH "?bytes=%d", name, port,
                 VT_SNI_TEST_BYTES);
        if (ep_init(e, w, EP_SNI, cfg->sni_test) < 0 || !(e->url = strdup(url))) goto oom;
        snprintf(e->host, sizeof(e->host), "%s", host);
        snprintf(e->sni, sizeof(e->sni), "%s", name);
        e->port = port;
        e->https = 1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* With an SNI test server given by address (the check-in's usually is), a web target's name
 * (http or https) is also asked of that address on port 53 (docs/methodology.md, control 8). */
static int add_injection_check(web_state *w, char *err, size_t errlen)
{
    char host[256], server[300];
    int port;
    int r = sni_server(w, host, sizeof(host), &port, err, errlen);
    if (r <= 0 || !is_ip_literal(host)) return r < 0 ? -1 : 0;
    snprintf(server, sizeof(server), is_v6(host) ? "[%s]:53" : "%s:53", host);
    w->inj_cfg = *w->t->env->cfg;
    w->inj_cfg.dns_timeout_ms = VT_INJECTION_TIMEOUT_MS;
    w->inj = vt_dns_new_udp(w->t->env->loop, &w->inj_cfg, server, err, errlen);
    return w->inj ? 0 : -1;
}

static int web_create(vt_task *t, char *err, size_t errlen)
{
    const vt_target *tg = t->target;
    if (tg->n_endpoints == 0) {
        snprintf(err, errlen, "target %s has no endpoints", tg->id);
        return -1;
    }
    web_state *w = state_new(t, tg->n_endpoints, err, errlen);
    if (!w) return -1;
    for (size_t i = 0; i < tg->n_endpoints; i++) {
        ep *e = &w->eps[w->n_eps++];
        if (ep_init(e, w, EP_WEB, tg->endpoints[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (ep_set_url(e, tg->endpoints[i], err, errlen) < 0) goto fail;
        e->use_tls = e->https;
    }
    if (add_large(w, err, errlen) < 0) goto fail;
    t->state = w; /* add_sni reads the configuration through it */
    if (add_sni(w, err, errlen) < 0 || add_injection_check(w, err, errlen) < 0) goto fail;
    return 0;
fail:
    t->state = NULL;
    state_free(w);
    return -1;
}

static int endpoint_create(vt_task *t, char *err, size_t errlen)
{
    const vt_target *tg = t->target;
    if (tg->n_endpoints == 0) {
        snprintf(err, errlen, "target %s has no endpoints", tg->id);
        return -1;
    }
    web_state *w = state_new(t, tg->n_endpoints, err, errlen);
    if (!w) return -1;
    int tls = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tg->options, "tls"));
    const char *sni = vt_json_get_string(tg->options, "sni");
    for (size_t i = 0; i < tg->n_endpoints; i++) {
        ep *e = &w->eps[w->n_eps++];
        if (ep_init(e, w, EP_ENDPOINT, tg->endpoints[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (ep_set_host_port(e, tg->endpoints[i], err, errlen) < 0) goto fail;
        e->use_tls = tls;
        snprintf(e->sni, sizeof(e->sni), "%s", sni ? sni : e->host);
    }
    t->state = w;
    return 0;
fail:
    state_free(w);
    return -1;
}

/* Telegram: "https://..." endpoints are the web check (web.telegram.org); "IP" is a data
 * centre on ports 80 and 443, "IP:PORT" or "http://IP:PORT/" one data-centre address; each data
 * centre gets a TCP connect and a plain-HTTP POST, as OONI's telegram test does. */
static int telegram_create(vt_task *t, char *err, size_t errlen)
{
    const vt_target *tg = t->target;
    if (tg->n_endpoints == 0) {
        snprintf(err, errlen, "target %s has no endpoints", tg->id);
        return -1;
    }
    web_state *w = state_new(t, tg->n_endpoints * 2, err, errlen);
    if (!w) return -1;
    w->is_telegram = 1;
    for (size_t i = 0; i < tg->n_endpoints; i++) {
        const char *s = tg->endpoints[i];
        if (strncasecmp(s, "https://", 8) == 0) {
            ep *e = &w->eps[w->n_eps++];
            if (ep_init(e, w, EP_WEB, s) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            if (ep_set_url(e, s, err, errlen) < 0) goto fail;
            e->use_tls = 1;
            continue;
        }
        char host[256];
        int ports[2] = {0, 0}, np = 0;
        if (strncasecmp(s, "http://", 7) == 0) {
            int https;
            if (vt_url_split(s, host, sizeof(host), &ports[0], &https) < 0) {
                snprintf(err, errlen, "'%s' is not a data-centre URL", s);
                goto fail;
            }
            np = 1;
        } else if (is_ip_literal(s) || (!strchr(s, ':') && strlen(s) < sizeof(host))) {
            snprintf(host, sizeof(host), "%s", s);
            ports[0] = 80;
            ports[1] = 443;
            np = 2;
        } else if (vt_split_host_port(s, host, sizeof(host), &ports[0]) == 0 && host[0] &&
                   ports[0] > 0 && ports[0] < 65536) {
            np = 1;
        } else {
            snprintf(err, errlen, "'%s' is not a data-centre address (IP, IP:PORT or URL)", s);
            goto fail;
        }
        for (int k = 0; k < np; k++) {
            ep *e = &w->eps[w->n_eps++];
            char url[300];
            int v6 = is_v6(host);
            snprintf(url, sizeof(url), "http://%s%s%s:%d/", v6 ? "[" : "", host, v6 ? "]" : "",
                     ports[k]);
            if (ep_init(e, w, EP_TG_DC, s) < 0 || !(e->url = strdup(url))) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            snprintf(e->host, sizeof(e->host), "%s", host);
            e->port = ports[k];
        }
    }
    t->state = w;
    return 0;
fail:
    state_free(w);
    return -1;
}

static void web_start(vt_task *t)
{
    web_state *w = t->state;
    /* The injection check first: its answer never comes from inside the call, and the task
     * waits for it (main_done). A name the resolver refuses just has no check. */
    if (w->inj && vt_dns_lookup(w->inj, w->eps[0].host, VT_DNS_A, t->t0, inj_done, w) == 0) {
        w->inj_pending = 1;
        unsigned char r[8];
        if (RAND_bytes(r, sizeof(r)) == 1) {
            snprintf(w->inj_name, sizeof(w->inj_name),
                     "vt-%02x%02x%02x%02x%02x%02x%02x%02x.example.com", r[0], r[1], r[2], r[3],
                     r[4], r[5], r[6], r[7]);
            if (vt_dns_lookup(w->inj, w->inj_name, VT_DNS_A, t->t0, inj_done, w) == 0)
                w->inj_pending++;
        }
    }
    /* Every endpoint is under way before any can finish the task (callbacks come from the
     * loop, but an IP literal or a failing start finishes an endpoint right here). */
    w->n_done = 0;
    size_t n = w->n_eps;
    w->n_eps = n + 1; /* held while starting */
    for (size_t i = 0; i < n; i++)
        ep_start(&w->eps[i]);
    w->n_eps = n;
    if (w->n_done >= n) { /* all finished synchronously: account as ep_finish would */
        w->n_done = n - 1;
        ep *last = &w->eps[n - 1];
        ep_finish(last);
    }
}

static const char *phase_of(const ep *e, const char **failure)
{
    *failure = NULL;
    if (e->dns_failed) {
        *failure = e->dns_failure;
        return "dns";
    }
    if (e->tcp_attempts && !e->tcp_ok) {
        *failure = e->tcp_failure[0] ? e->tcp_failure : "unknown_failure: no connection";
        return "tcp";
    }
    if (e->tls_attempts && !e->tls_ok) {
        *failure = e->tls_failure[0] ? e->tls_failure : "ssl_failed_handshake";
        return "tls";
    }
    if (e->http_attempted && e->http_failure[0]) {
        *failure = e->http_failure;
        return "http";
    }
    return NULL;
}

static void add_number_or_null(cJSON *o, const char *key, int have, double v)
{
    if (have)
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* The summary keys of one endpoint into o. */
static void add_summary(cJSON *o, const ep *e)
{
    const char *failure;
    const char *phase = phase_of(e, &failure);
    vt_json_add_string_or_null(o, "failure_phase", phase);
    vt_json_add_failure(o, "failure", failure);
    add_number_or_null(o, "http_status", e->http_status > 0, (double)e->http_status);
    add_number_or_null(o, "body_length", e->body_length >= 0, (double)e->body_length);
    vt_json_add_string_or_null(o, "title", e->title);
    cJSON_AddNumberToObject(o, "x_redirects", e->redirects);
    /* the last response redirected into the volunteer's own network: not followed */
    if (e->redirect_local) cJSON_AddStringToObject(o, "x_redirect_not_followed", "local_address");
}

/* One download of the SNI test: its name, how it ended, what it received and how fast. A
 * download cut at VT_SNI_TEST_MS (generic_timeout_error after some bytes) still has a rate:
 * a throttled one is expected to be cut. */
static cJSON *sni_side(ep *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const char *f;
    const char *phase = phase_of(e, &f);
    cJSON_AddStringToObject(o, "sni", e->sni);
    vt_json_add_string_or_null(o, "failure_phase", phase);
    vt_json_add_failure(o, "failure", f);
    add_number_or_null(o, "http_status", e->http_status > 0, (double)e->http_status);
    cJSON_AddNumberToObject(o, "bytes_received", (double)e->bytes_received);
    add_number_or_null(o, "throughput_bps", e->throughput_bps > 0,
                       (double)(long long)(e->throughput_bps + 0.5));
    cJSON_AddNumberToObject(o, "x_http_runtime", (double)ns(e->http_t1 - e->http_t0));
    /* the rate over time (bytes_received_cumulative): where a policer's burst ends */
    cJSON_AddItemToObject(o, "network_events", e->network_events);
    e->network_events = NULL;
    return o;
}

static void add_sni_test(cJSON *tk, web_state *w)
{
    cJSON *x = cJSON_AddObjectToObject(tk, "x_sni_test");
    if (!x) return;
    cJSON_AddStringToObject(x, "endpoint", w->sni[0].input);
    cJSON_AddNumberToObject(x, "bytes_requested", VT_SNI_TEST_BYTES);
    cJSON_AddItemToObject(x, "target", sni_side(&w->sni[0]));
    cJSON_AddItemToObject(x, "control", sni_side(&w->sni[1]));
    if (w->sni_repeated) {
        cJSON *r = cJSON_AddObjectToObject(x, "repeat");
        cJSON_AddItemToObject(r, "target", sni_side(&w->sni[2]));
        cJSON_AddItemToObject(r, "control", sni_side(&w->sni[3]));
    } else {
        cJSON_AddNullToObject(x, "repeat");
    }
}

static void web_finish(vt_task *t)
{
    web_state *w = t->state;
    cJSON *tk = t->test_keys;
    if (!w) return;
    cJSON *queries = cJSON_AddArrayToObject(tk, "queries");
    cJSON *tcp = cJSON_AddArrayToObject(tk, "tcp_connect");
    cJSON *tls = cJSON_AddArrayToObject(tk, "tls_handshakes");
    cJSON *requests = cJSON_AddArrayToObject(tk, "requests");
    cJSON *events = cJSON_AddArrayToObject(tk, "network_events");
    for (size_t i = 0; i < w->n_eps; i++) {
        ep *e = &w->eps[i];
        append_all(queries, e->queries);
        append_all(tcp, e->tcp_connect);
        append_all(tls, e->tls_handshakes);
        append_all(requests, e->requests);
        append_all(events, e->network_events);
    }
    const ep *first = &w->eps[0];

    /* The large resource: its requests stay apart from the page's. */
    double large_bps = 0;
    if (w->large) {
        ep *l = w->large;
        append_all(queries, l->queries);
        append_all(events, l->network_events);
        cJSON *x = cJSON_AddObjectToObject(tk, "x_large_resource");
        cJSON_AddStringToObject(x, "url", l->input);
        const char *lf;
        const char *lphase = phase_of(l, &lf);
        vt_json_add_string_or_null(x, "failure_phase", lphase);
        vt_json_add_failure(x, "failure", lf);
        add_number_or_null(x, "http_status", l->http_status > 0, (double)l->http_status);
        cJSON_AddNumberToObject(x, "bytes_received", (double)l->bytes_received);
        /* true when the download stopped at max_download_bytes rather than at the end */
        cJSON_AddBoolToObject(x, "download_capped",
                              l->bytes_received >= t->env->cfg->max_download_bytes);
        add_number_or_null(x, "throughput_bps", l->throughput_bps > 0, l->throughput_bps);
        cJSON_AddNumberToObject(x, "x_http_runtime", (double)ns(l->http_t1 - l->http_t0));
        /* the mean number of large downloads of the run in progress while it ran, itself
         * included: 1 when it had the connection to itself */
        add_number_or_null(x, "x_concurrent_downloads", l->shared_by >= 1,
                           (double)(long)(l->shared_by * 100 + 0.5) / 100);
        /* and what they received together meanwhile (bits/s): whether they filled the link */
        add_number_or_null(x, "x_concurrent_bps", l->shared_by >= 1,
                           (double)(long long)(l->shared_bps + 0.5));
        cJSON_AddItemToObject(x, "requests", l->requests);
        l->requests = NULL;
        if (!lphase && l->http_status >= 200 && l->http_status < 300) large_bps = l->throughput_bps;
    }

    if (w->sni_started) add_sni_test(tk, w);
    /* No pair: an earlier one of the run got nothing from the server, or a recent run did the
     * test (sni_test_every). */
    const char *skipped = w->sni_skipped ? "server_unreachable" : w->sni_not_due ? "not_due" : NULL;
    cJSON *sx = skipped ? cJSON_AddObjectToObject(tk, "x_sni_test") : NULL;
    if (sx) {
        cJSON_AddStringToObject(sx, "endpoint", w->t->env->cfg->sni_test);
        cJSON_AddStringToObject(sx, "skipped", skipped);
    }
    if (w->inj_query) {
        cJSON *x = cJSON_AddObjectToObject(tk, "x_dns_injection");
        if (x) {
            cJSON_AddItemToObject(x, "query", w->inj_query);
            w->inj_query = NULL;
            if (w->inj_unlisted) {
                cJSON_AddItemToObject(x, "unlisted_query", w->inj_unlisted);
                w->inj_unlisted = NULL;
            }
        }
    }

    if (w->is_telegram) {
        /* OONI's telegram keys: DC blocking when no connect / no POST worked at all. */
        int dc = 0, tcp_ok = 0, http_ok = 0;
        const ep *web = NULL, *first_dc = NULL;
        for (size_t i = 0; i < w->n_eps; i++) {
            const ep *e = &w->eps[i];
            if (e->mode == EP_WEB) {
                if (!web) web = e;
                continue;
            }
            if (!first_dc) first_dc = e;
            dc++;
            tcp_ok += e->tcp_ok > 0;
            http_ok += e->http_attempted && !e->http_failure[0];
        }
        if (dc) {
            cJSON_AddBoolToObject(tk, "telegram_tcp_blocking", tcp_ok == 0);
            cJSON_AddBoolToObject(tk, "telegram_http_blocking", http_ok == 0);
        } else {
            cJSON_AddNullToObject(tk, "telegram_tcp_blocking");
            cJSON_AddNullToObject(tk, "telegram_http_blocking");
        }
        const char *wf = NULL;
        const char *wphase = web ? phase_of(web, &wf) : NULL;
        if (web)
            cJSON_AddStringToObject(tk, "telegram_web_status", wphase ? "blocked" : "ok");
        else
            cJSON_AddNullToObject(tk, "telegram_web_status");
        vt_json_add_failure(tk, "telegram_web_failure", wf);
        /* The summary: the data centres when none answered, else the web check. */
        const ep *s = (dc && (tcp_ok == 0 || http_ok == 0)) ? first_dc : web ? web : first;
        if (dc && tcp_ok == 0) {
            cJSON_AddStringToObject(tk, "failure_phase", "tcp");
            vt_json_add_failure(tk, "failure", first_dc->tcp_failure);
        } else if (dc && http_ok == 0) {
            cJSON_AddStringToObject(tk, "failure_phase", "http");
            vt_json_add_failure(tk, "failure", first_dc->http_failure);
        } else {
            const char *f;
            const char *ph = phase_of(s, &f);
            vt_json_add_string_or_null(tk, "failure_phase", ph);
            vt_json_add_failure(tk, "failure", f);
        }
        first = s;
        vt_json_add_failure(tk, "dns_experiment_failure", s->dns_failed ? s->dns_failure : NULL);
        vt_json_add_failure(tk, "http_experiment_failure",
                            s->http_attempted ? s->http_failure : NULL);
        add_number_or_null(tk, "http_status", s->http_status > 0, (double)s->http_status);
        add_number_or_null(tk, "body_length", s->body_length >= 0, (double)s->body_length);
        vt_json_add_string_or_null(tk, "title", s->title);
    } else {
        vt_json_add_failure(tk, "dns_experiment_failure",
                            first->dns_failed ? first->dns_failure : NULL);
        vt_json_add_failure(tk, "http_experiment_failure",
                            first->http_attempted ? first->http_failure : NULL);
        const char *failure;
        const char *phase = phase_of(first, &failure);
        vt_json_add_string_or_null(tk, "failure_phase", phase);
        vt_json_add_failure(tk, "failure", failure);
        add_number_or_null(tk, "http_status", first->http_status > 0, (double)first->http_status);
        add_number_or_null(tk, "body_length", first->body_length >= 0, (double)first->body_length);
        vt_json_add_string_or_null(tk, "title", first->title);
    }
    double bps = large_bps > 0 ? large_bps : first->throughput_bps;
    add_number_or_null(tk, "throughput_bps", bps > 0, bps);
    cJSON_AddNumberToObject(tk, "x_redirects", first->redirects);
    if (first->redirect_local)
        cJSON_AddStringToObject(tk, "x_redirect_not_followed", "local_address");
    cJSON_AddNumberToObject(tk, "x_dns_runtime", (double)ns(first->dns_t1 - first->dns_t0));
    cJSON_AddNumberToObject(tk, "x_tcptls_runtime",
                            (double)ns(first->tcptls_t1 - first->tcptls_t0));
    cJSON_AddNumberToObject(tk, "x_http_runtime", (double)ns(first->http_t1 - first->http_t0));

    /* Every endpoint's own summary, in target order. */
    cJSON *eps = cJSON_AddArrayToObject(tk, "x_endpoints");
    for (size_t i = 0; i < w->n_eps; i++) {
        const ep *e = &w->eps[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "endpoint", e->mode == EP_TG_DC ? e->url : e->input);
        add_summary(o, e);
        cJSON_AddItemToArray(eps, o);
    }
    state_free(w);
    t->state = NULL;
}

const vt_kind vt_kind_web = {"web", "web_connectivity", "0.1.0", web_create, web_start, web_finish};
const vt_kind vt_kind_endpoint = {"endpoint",      "vantage_endpoint", "0.1.0",
                                  endpoint_create, web_start,          web_finish};
const vt_kind vt_kind_telegram = {"telegram",      "telegram", "0.1.0",
                                  telegram_create, web_start,  web_finish};
