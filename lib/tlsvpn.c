/* The "tlsvpn" kind: VPNs that run over TLS on 443. A TLS handshake with SNI, then the
 * protocol's first HTTP exchange: OpenConnect/AnyConnect's XML "config-auth" init POST, or
 * SSTP's SSTP_DUPLEX_POST to /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ (MS-SSTP 2.2.1,
 * answered by "HTTP/1.1 200" with an endless Content-Length). Target keys: docs/targets.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/http.h"
#include "vantage/json.h"
#include "vantage/tls.h"
#include "vpn.h"

#define SSTP_PATH "/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"
#define OC_USER_AGENT "Open AnyConnect VPN Agent v9.12"

enum { P_TLS, P_OPENCONNECT, P_SSTP };

typedef struct tlsvpn {
    vt_vpn vpn; /* first */
    int protocol;
    const char *sni; /* NULL: the endpoint's host when it is a name */
    int no_verify;
    const vt_vpn_job *job;
    char name[256]; /* host name of this probe's URL and SNI, "" when none */
    /* SSTP over our own curl handle */
    CURL *easy;
    struct curl_slist *hdrs, *resolve;
    long status;
    int headers_done;
    char server[128];
    double t_sent;
} tlsvpn;

static const char *proto_name(int p)
{
    return p == P_OPENCONNECT ? "openconnect" : p == P_SSTP ? "sstp" : "tls";
}

static int is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static cJSON *entry(tlsvpn *s, const char *method)
{
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    cJSON_ReplaceItemInObject(e, "protocol", cJSON_CreateString(proto_name(s->protocol)));
    cJSON_AddStringToObject(e, "method", method);
    return e;
}

/* The URL's authority: the name (resolved already, pinned to our address) or the address. */
static void make_url(tlsvpn *s, const char *path, char *url, size_t n)
{
    const vt_vpn_job *j = s->job;
    if (s->name[0])
        snprintf(url, n, "https://%s:%d%s", s->name, j->port, path);
    else if (strchr(j->ip, ':'))
        snprintf(url, n, "https://[%s]:%d%s", j->ip, j->port, path);
    else
        snprintf(url, n, "https://%s:%d%s", j->ip, j->port, path);
}

/* ---- OpenConnect --------------------------------------------------------------------------- */

static void on_oc(vt_http_result *r, void *arg)
{
    vt_task *t = arg;
    tlsvpn *s = t->state;
    cJSON *e = entry(s, "openconnect_init");
    char f[VT_FAILURE_MAX] = "";
    int xml = r->body && r->body_len && memmem(r->body, r->body_len, "<config-auth", 12) != NULL;
    if (r->failure[0])
        snprintf(f, sizeof(f), "%s", r->failure);
    else if (!xml)
        snprintf(f, sizeof(f), "openconnect_unexpected_response");
    double rtt = f[0] ? -1 : r->starttransfer_time - r->appconnect_time;
    if (!f[0] && rtt < 0) rtt = 0;
    vt_json_add_failure(e, "failure", f);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    if (r->status)
        cJSON_AddNumberToObject(e, "status_code", r->status);
    else
        cJSON_AddNullToObject(e, "status_code");
    cJSON_AddBoolToObject(e, "config_auth", xml);
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, "handshake", f, rtt);
}

static void start_openconnect(vt_task *t)
{
    tlsvpn *s = t->state;
    const vt_config *cfg = t->env->cfg;
    char url[600], body[1024];
    make_url(s, "/", url, sizeof(url));
    int n = snprintf(body, sizeof(body),
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\">"
                     "<version who=\"vpn\">v9.12</version><device-id>linux-64</device-id>"
                     "<group-access>%s</group-access></config-auth>",
                     url);
    const char *addrs[2] = {s->job->ip, NULL};
    vt_http_opts o = {.url = url,
                      .method = "POST",
                      .body = (const unsigned char *)body,
                      .body_len = (size_t)n,
                      .content_type = "application/x-www-form-urlencoded",
                      .addrs = addrs,
                      .cacert = cfg->cacert,
                      .no_verify = s->no_verify,
                      .timeout_ms = cfg->http_timeout_ms,
                      .max_body = 16384,
                      .user_agent = OC_USER_AGENT,
                      .t_base = t->t0};
    if (vt_http_request(t->env->loop, &o, on_oc, t) < 0)
        vt_vpn_job_done(t, s->job, entry(s, "openconnect_init"), "handshake",
                        "unknown_failure: cannot start the request", -1);
}

/* ---- SSTP ---------------------------------------------------------------------------------- */

/* Reads the status line and the headers; at their end, stops the transfer (the body of an
 * SSTP answer never ends). */
static size_t sstp_header(char *b, size_t size, size_t nitems, void *arg)
{
    tlsvpn *s = arg;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(b, "HTTP/", 5) == 0) {
        const char *sp = memchr(b, ' ', n);
        s->status = sp && sp + 4 <= b + n ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    if (n >= 7 && strncasecmp(b, "Server:", 7) == 0) {
        size_t k = 7;
        while (k < n && b[k] == ' ')
            k++;
        size_t m = 0;
        while (k < n && b[k] != '\r' && b[k] != '\n' && m + 1 < sizeof(s->server))
            s->server[m++] = isprint((unsigned char)b[k]) ? b[k] : '?', k++;
        s->server[m] = 0;
    }
    if ((n == 2 && b[0] == '\r' && b[1] == '\n') || (n == 1 && b[0] == '\n')) {
        s->headers_done = 1;
        return 0; /* abort: all we wanted */
    }
    return n;
}

static size_t sstp_body(char *b, size_t size, size_t nitems, void *arg)
{
    return 0;
}

static void on_sstp(CURL *easy, CURLcode res, void *arg)
{
    vt_task *t = arg;
    tlsvpn *s = t->state;
    cJSON *e = entry(s, "sstp_duplex_post");
    char f[VT_FAILURE_MAX] = "", errbuf[64] = "";
    double pre = 0, start = 0;
    long oserr = 0;
    curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME, &pre);
    curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME, &start);
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);
    if (!s->headers_done)
        vt_failure_curl(res == CURLE_OK ? CURLE_GOT_NOTHING : (int)res, oserr, errbuf, f,
                        sizeof(f));
    else if (s->status != 200)
        snprintf(f, sizeof(f), "sstp_http_status_%ld", s->status);
    double rtt = f[0] ? -1 : (start > pre ? start - pre : 0);
    vt_json_add_failure(e, "failure", f);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    if (s->status)
        cJSON_AddNumberToObject(e, "status_code", s->status);
    else
        cJSON_AddNullToObject(e, "status_code");
    vt_json_add_string_or_null(e, "server", s->server[0] ? s->server : NULL);
    vt_json_add_time(e, "t0", s->t_sent);
    vt_json_add_time(e, "t", vt_task_elapsed(t));
    curl_easy_cleanup(easy);
    curl_slist_free_all(s->hdrs);
    curl_slist_free_all(s->resolve);
    s->easy = NULL;
    s->hdrs = s->resolve = NULL;
    vt_vpn_job_done(t, s->job, e, "handshake", f, rtt);
}

static void start_sstp(vt_task *t)
{
    tlsvpn *s = t->state;
    const vt_config *cfg = t->env->cfg;
    char url[600], line[400];
    unsigned char g[16];
    make_url(s, SSTP_PATH, url, sizeof(url));
    s->status = 0;
    s->headers_done = 0;
    s->server[0] = 0;
    RAND_bytes(g, sizeof(g));
    snprintf(line, sizeof(line),
             "SSTPCORRELATIONID: {%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
             "%02X%02X%02X%02X%02X%02X}",
             g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
             g[14], g[15]);
    s->hdrs = curl_slist_append(NULL, "Content-Length: 18446744073709551615");
    s->hdrs = curl_slist_append(s->hdrs, line);
    if (s->name[0]) {
        snprintf(line, sizeof(line), strchr(s->job->ip, ':') ? "%s:%d:[%s]" : "%s:%d:%s", s->name,
                 s->job->port, s->job->ip);
        s->resolve = curl_slist_append(NULL, line);
    }
    s->easy = curl_easy_init();
    if (!s->easy || !s->hdrs) {
        curl_slist_free_all(s->hdrs);
        curl_slist_free_all(s->resolve);
        s->hdrs = s->resolve = NULL;
        if (s->easy) curl_easy_cleanup(s->easy);
        s->easy = NULL;
        vt_vpn_job_done(t, s->job, entry(s, "sstp_duplex_post"), "handshake",
                        "unknown_failure: out of memory", -1);
        return;
    }
    CURL *c = s->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "SSTP_DUPLEX_POST");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->hdrs);
    if (s->resolve) curl_easy_setopt(c, CURLOPT_RESOLVE, s->resolve);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sstp_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sstp_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->http_timeout_ms);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "");
    /* The process's shared CA store, not a parse of the CA file per connection. */
    if (!s->no_verify && vt_tls_curl_use_ca(c, cfg->cacert) < 0 && cfg->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->cacert);
    if (s->no_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    s->t_sent = vt_task_elapsed(t);
    if (vt_loop_curl_add(t->env->loop, c, on_sstp, t) < 0) {
        curl_easy_cleanup(c);
        curl_slist_free_all(s->hdrs);
        curl_slist_free_all(s->resolve);
        s->easy = NULL;
        s->hdrs = s->resolve = NULL;
        vt_vpn_job_done(t, s->job, entry(s, "sstp_duplex_post"), "handshake",
                        "unknown_failure: cannot start the request", -1);
    }
}

/* ---- the TLS handshake, then the protocol ---------------------------------------------- */

static void on_tls(const vt_tls_result *r, void *arg)
{
    vt_task *t = arg;
    tlsvpn *s = t->state;
    cJSON *e = entry(s, "tls_handshake");
    double rtt = r->failure[0] ? -1 : r->t - r->tcp.t;
    vt_json_add_failure(e, "failure", r->failure);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    cJSON_AddItemToObject(e, "tcp_connect", vt_tcp_result_json(&r->tcp));
    cJSON_AddItemToObject(e, "tls_handshake", vt_tls_result_json(r));
    vt_json_add_time(e, "t0", r->tcp.t0);
    vt_json_add_time(e, "t", r->t);
    const char *phase =
        r->failed_operation && strcmp(r->failed_operation, "connect") == 0 ? "tcp" : "tls";
    if (r->failure[0] || s->protocol == P_TLS) {
        vt_vpn_job_done(t, s->job, e, phase, r->failure, rtt);
        return;
    }
    /* The handshake worked; the protocol's own answer decides. */
    vt_vpn_record(t, e, "inconclusive", NULL, -1);
    if (s->protocol == P_OPENCONNECT)
        start_openconnect(t);
    else
        start_sstp(t);
}

static void probe(vt_task *t, const vt_vpn_job *job)
{
    tlsvpn *s = t->state;
    const vt_config *cfg = t->env->cfg;
    s->job = job;
    if (s->sni)
        snprintf(s->name, sizeof(s->name), "%s", s->sni);
    else if (!is_ip(job->host))
        snprintf(s->name, sizeof(s->name), "%s", job->host);
    else
        s->name[0] = 0;
    vt_tls_opts o = {.ip = job->ip,
                     .port = job->port,
                     .sni = s->name[0] ? s->name : NULL,
                     .no_verify = s->no_verify,
                     .connect_timeout_ms = cfg->connect_timeout_ms,
                     .tls_timeout_ms = cfg->tls_timeout_ms,
                     .t_base = t->t0};
    if (vt_tls_handshake(t->env->loop, t->env->tls, &o, on_tls, t) < 0)
        vt_vpn_job_done(t, job, entry(s, "tls_handshake"), "tls",
                        "unknown_failure: cannot start the handshake", -1);
}

static const vt_vpn_ops ops = {.protocol = "tlsvpn", .probe = probe};

static int create(vt_task *t, char *err, size_t errlen)
{
    tlsvpn *s = calloc(1, sizeof(*s));
    const char *tcp[1] = {"tcp"}, *proto = NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->state = s;
    if (vt_vpn_opt_string(t->target, "protocol", &proto, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "sni", &s->sni, err, errlen) < 0 ||
        vt_vpn_opt_bool(t->target, "no_verify", &s->no_verify, err, errlen) < 0)
        goto fail;
    if (!proto || strcmp(proto, "tls") == 0)
        s->protocol = P_TLS;
    else if (strcmp(proto, "openconnect") == 0 || strcmp(proto, "anyconnect") == 0)
        s->protocol = P_OPENCONNECT;
    else if (strcmp(proto, "sstp") == 0)
        s->protocol = P_SSTP;
    else {
        snprintf(err, errlen, "\"protocol\": expected \"tls\", \"openconnect\" or \"sstp\"");
        goto fail;
    }
    if (s->sni && (strlen(s->sni) > 253 || strpbrk(s->sni, " /:\r\n"))) {
        snprintf(err, errlen, "\"sni\": expected a host name");
        goto fail;
    }
    if (vt_vpn_init(t, &s->vpn, &ops, tcp, 1, err, errlen) < 0) goto fail;
    return 0;
fail:
    vt_vpn_discard(&s->vpn);
    free(s);
    t->state = NULL;
    return -1;
}

static void finish(vt_task *t)
{
    tlsvpn *s = t->state;
    if (!s) return;
    vt_vpn_finish(t, &s->vpn);
    cJSON_AddStringToObject(t->test_keys, "protocol", proto_name(s->protocol));
    free(s);
    t->state = NULL;
}

const vt_kind vt_kind_tlsvpn = {
    .name = "tlsvpn",
    .test_name = "vantage_tlsvpn",
    .test_version = "0.1.0",
    .create = create,
    .start = vt_vpn_start,
    .finish = finish,
};
