/* The "tor" kind: a TLS handshake with each OR port (Tor's certificates are self-signed: not
 * verified), then the link handshake's VERSIONS exchange inside it, and, with "dir_port", an HTTP
 * GET of a directory document (the consensus by default) from the same address; bridges whose
 * transport we do not speak (obfs4) get a TCP connect, said plainly ("method": "tcp_connect_only").
 * Target keys: docs/targets.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vantage/http.h"
#include "vantage/json.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"
#include "vpn.h"

#define TOR_DIR_DEFAULT "/tor/status-vote/current/consensus.z"
#define TOR_DIR_MAX_DOWNLOAD (64 * 1024)

typedef struct tor {
    vt_vpn vpn; /* first */
    int tcp_only;
    int dir_port;
    const char *dir_path;
    const char *sni;
    const char *bridge_type;
    const vt_vpn_job *job;
} tor;

static cJSON *entry(tor *s, const char *method)
{
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    cJSON_AddStringToObject(e, "method", method);
    if (s->bridge_type) cJSON_AddStringToObject(e, "bridge_type", s->bridge_type);
    return e;
}

static void on_connect(const vt_tcp_result *r, int fd, void *arg)
{
    vt_task *t = arg;
    tor *s = t->state;
    if (fd >= 0) close(fd);
    cJSON *e = entry(s, "tcp_connect_only");
    double rtt = r->failure[0] ? -1 : r->t - r->t0;
    vt_json_add_failure(e, "failure", r->failure);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    cJSON_AddItemToObject(e, "tcp_connect", vt_tcp_result_json(r));
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, "tcp", r->failure, rtt);
}

/* A compressed consensus starts with a zlib header; a plain one with its version line. */
static int looks_like_directory(const unsigned char *b, size_t n)
{
    static const char plain[] = "network-status-version";
    if (n >= 2 && b[0] == 0x78 && ((b[0] << 8) | b[1]) % 31 == 0) return 1;
    if (n >= sizeof(plain) - 1 && memcmp(b, plain, sizeof(plain) - 1) == 0) return 1;
    return n >= 7 && memcmp(b, "router ", 7) == 0; /* a server descriptor */
}

static void on_dir(vt_http_result *r, void *arg)
{
    vt_task *t = arg;
    tor *s = t->state;
    cJSON *e = entry(s, "dir_http");
    char addr[INET6_ADDRSTRLEN + 8], f[VT_FAILURE_MAX] = "";
    snprintf(addr, sizeof(addr), strchr(s->job->ip, ':') ? "[%s]:%d" : "%s:%d", s->job->ip,
             s->dir_port);
    cJSON_ReplaceItemInObject(e, "address", cJSON_CreateString(addr));
    cJSON_ReplaceItemInObject(e, "port", cJSON_CreateNumber(s->dir_port));
    cJSON_AddStringToObject(e, "path", s->dir_path);
    int looks = looks_like_directory(r->body, r->body_len);
    if (r->failure[0])
        snprintf(f, sizeof(f), "%s", r->failure);
    else if (r->status != 200)
        snprintf(f, sizeof(f), "tor_dir_http_status_%ld", r->status);
    else if (!looks)
        snprintf(f, sizeof(f), "tor_dir_unexpected_body");
    double rtt = f[0] ? -1 : r->starttransfer_time - r->connect_time;
    vt_json_add_failure(e, "failure", f);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    if (r->status)
        cJSON_AddNumberToObject(e, "status_code", r->status);
    else
        cJSON_AddNullToObject(e, "status_code");
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    cJSON_AddBoolToObject(e, "body_is_truncated", r->body_truncated);
    cJSON_AddBoolToObject(e, "looks_like_directory", looks);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    const char *phase = "handshake";
    if (r->failure[0] && r->connect_time <= 0) phase = "tcp";
    vt_vpn_job_done(t, s->job, e, phase, f, rtt < 0 && !f[0] ? 0 : rtt);
}

static void start_dir(vt_task *t)
{
    tor *s = t->state;
    const vt_config *cfg = t->env->cfg;
    char url[INET6_ADDRSTRLEN + 600];
    snprintf(url, sizeof(url), strchr(s->job->ip, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s",
             s->job->ip, s->dir_port, s->dir_path);
    const char *addrs[2] = {s->job->ip, NULL};
    vt_http_opts o = {.url = url,
                      .method = "GET",
                      .addrs = addrs,
                      .timeout_ms = cfg->http_timeout_ms,
                      .max_body = 64,
                      .max_download = TOR_DIR_MAX_DOWNLOAD,
                      .user_agent = NULL,
                      .t_base = t->t0};
    if (vt_http_request(t->env->loop, &o, on_dir, t) < 0)
        vt_vpn_job_done(t, s->job, entry(s, "dir_http"), "handshake",
                        "unknown_failure: cannot start the request", -1);
}

/* The link handshake's first message (tor-spec section 4): a VERSIONS cell (circuit id 0 in two
 * bytes, command 7, a two-byte length) offering link protocols 3, 4 and 5, the ones a client
 * that shakes hands inside TLS may offer. A relay answers with its own VERSIONS cell, then
 * CERTS, AUTH_CHALLENGE and NETINFO; its VERSIONS is the proof that a Tor relay, not merely some
 * TLS server, answered. */
static const unsigned char versions_cell[] = {0, 0, 7, 0, 6, 0, 3, 0, 4, 0, 5};
#define TOR_VERSIONS_MAX 1024 /* a VERSIONS payload longer than this is not a relay's */

/* The highest link protocol both sides speak (3..5), 0 when none, -1 when not VERSIONS. */
static int link_version(const unsigned char *b, size_t n, size_t *need)
{
    *need = 5;
    if (n < 5) return 0;
    size_t len = (size_t)b[3] << 8 | b[4];
    if (b[0] || b[1] || b[2] != 7 || len % 2 || len > TOR_VERSIONS_MAX) return -1;
    *need = 5 + len;
    int best = 0;
    for (size_t i = 5; i + 1 < 5 + len && i + 1 < n; i += 2) {
        int v = b[i] << 8 | b[i + 1];
        if (v >= 3 && v <= 5 && v > best) best = v;
    }
    return best;
}

static int check_versions(const unsigned char *b, size_t n, void *arg, char *f, size_t flen)
{
    (void)arg;
    size_t need;
    int v = link_version(b, n, &need);
    if (v < 0) {
        snprintf(f, flen, "tor_unexpected_link_reply");
        return VT_TCPX_REJECT;
    }
    if (n < need) return VT_TCPX_NEED_MORE;
    if (v == 0) {
        snprintf(f, flen, "tor_no_common_link_protocol");
        return VT_TCPX_REJECT;
    }
    return VT_TCPX_ACCEPT;
}

static cJSON *link_json(const vt_tls_result *r)
{
    cJSON *l = cJSON_CreateObject();
    size_t need;
    int v = r->reply_len ? link_version(r->reply, r->reply_len, &need) : 0;
    if (r->after_failure[0] || v <= 0)
        cJSON_AddNullToObject(l, "link_protocol");
    else
        cJSON_AddNumberToObject(l, "link_protocol", v);
    vt_json_add_failure(l, "failure", r->after_failure);
    vt_json_add_string_or_null(l, "failed_operation", r->after_failed_operation);
    cJSON_AddNumberToObject(l, "bytes_sent", (double)r->after_sent);
    cJSON_AddNumberToObject(l, "bytes_received", (double)r->after_received);
    vt_vpn_add_ms(l, "rtt_ms", r->after_failure[0] ? -1 : r->after_rtt);
    vt_json_add_time(l, "t0", r->after_t0);
    vt_json_add_time(l, "t", r->after_t);
    return l;
}

static void on_tls(const vt_tls_result *r, void *arg)
{
    vt_task *t = arg;
    tor *s = t->state;
    cJSON *e = entry(s, "or_tls");
    /* TLS worked but the relay did not answer the link handshake: that is the failure, in the
     * "handshake" phase; the bytes that came back inside TLS (a wrong answer) are counted. */
    const char *failure = r->failure[0] ? r->failure : r->after_failure;
    double rtt = failure[0] ? -1 : r->t - r->tcp.t;
    vt_json_add_failure(e, "failure", failure);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    if (!r->failure[0] && r->after_tried) {
        cJSON_AddNumberToObject(e, "bytes_received", (double)r->after_received);
        cJSON_AddItemToObject(e, "link_handshake", link_json(r));
    }
    cJSON_AddItemToObject(e, "tcp_connect", vt_tcp_result_json(&r->tcp));
    cJSON_AddItemToObject(e, "tls_handshake", vt_tls_result_json(r));
    vt_json_add_time(e, "t0", r->tcp.t0);
    vt_json_add_time(e, "t", r->after_tried ? r->after_t : r->t);
    const char *phase = !r->failure[0] && r->after_failure[0] ? "handshake"
                        : r->failed_operation && strcmp(r->failed_operation, "connect") == 0
                            ? "tcp"
                            : "tls";
    if (s->dir_port) {
        vt_vpn_record(t, e, phase, failure, rtt);
        start_dir(t);
        return;
    }
    vt_vpn_job_done(t, s->job, e, phase, failure, rtt);
}

static void probe(vt_task *t, const vt_vpn_job *job)
{
    tor *s = t->state;
    const vt_config *cfg = t->env->cfg;
    s->job = job;
    if (s->tcp_only) {
        if (vt_tcp_connect(t->env->loop, job->ip, job->port, cfg->connect_timeout_ms, t->t0,
                           on_connect, t) < 0)
            vt_vpn_job_done(t, job, entry(s, "tcp_connect_only"), "tcp",
                            "unknown_failure: cannot start the connect", -1);
        return;
    }
    vt_tls_opts o = {.ip = job->ip,
                     .port = job->port,
                     .sni = s->sni,
                     .no_verify = 1,
                     .connect_timeout_ms = cfg->connect_timeout_ms,
                     .tls_timeout_ms = cfg->tls_timeout_ms,
                     .t_base = t->t0,
                     .after_payload = versions_cell,
                     .after_payload_len = sizeof(versions_cell),
                     .after_check = check_versions,
                     .after_timeout_ms = cfg->tls_timeout_ms};
    if (vt_tls_handshake(t->env->loop, t->env->tls, &o, on_tls, t) < 0)
        vt_vpn_job_done(t, job, entry(s, "or_tls"), "tls",
                        "unknown_failure: cannot start the handshake", -1);
}

static const vt_vpn_ops ops = {.protocol = "tor", .probe = probe};

static int create(vt_task *t, char *err, size_t errlen)
{
    tor *s = calloc(1, sizeof(*s));
    const char *tcp[1] = {"tcp"}, *method = NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->state = s;
    s->dir_path = TOR_DIR_DEFAULT;
    if (vt_vpn_opt_string(t->target, "method", &method, err, errlen) < 0 ||
        vt_vpn_opt_int(t->target, "dir_port", 1, 65535, &s->dir_port, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "dir_path", &s->dir_path, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "sni", &s->sni, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "bridge_type", &s->bridge_type, err, errlen) < 0)
        goto fail;
    if (method && strcmp(method, "or_tls") && strcmp(method, "tcp_connect_only")) {
        snprintf(err, errlen, "\"method\": expected \"or_tls\" or \"tcp_connect_only\"");
        goto fail;
    }
    /* A pluggable transport we do not speak: only the TCP connect is honest. */
    s->tcp_only = method ? strcmp(method, "tcp_connect_only") == 0
                         : s->bridge_type && strcmp(s->bridge_type, "vanilla") != 0;
    if (s->dir_path[0] != '/' || strlen(s->dir_path) > 512 || strpbrk(s->dir_path, " \r\n")) {
        snprintf(err, errlen, "\"dir_path\": expected a path starting with /");
        goto fail;
    }
    if (s->tcp_only && s->dir_port) {
        snprintf(err, errlen, "\"dir_port\" needs \"method\": \"or_tls\"");
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
    tor *s = t->state;
    if (!s) return;
    vt_vpn_finish(t, &s->vpn);
    cJSON_AddStringToObject(t->test_keys, "method", s->tcp_only ? "tcp_connect_only" : "or_tls");
    free(s);
    t->state = NULL;
}

const vt_kind vt_kind_tor = {
    .name = "tor",
    .test_name = "vantage_tor",
    .test_version = "0.1.0",
    .create = create,
    .start = vt_vpn_start,
    .finish = finish,
};
