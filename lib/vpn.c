/* Shared run of the VPN kinds: DNS once per name, then probes one at a time. */
#include "vpn.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vantage/json.h"
#include "vantage/secrets.h"
#include "vantage/tcp.h"

static vt_vpn *vpn_of(vt_task *t)
{
    return (vt_vpn *)t->state;
}

static int is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

void vt_vpn_add_ms(cJSON *o, const char *key, double s)
{
    if (s < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, round(s * 1e6) / 1e3);
}

int vt_vpn_init(vt_task *t, vt_vpn *v, const vt_vpn_ops *ops, const char *const *transports,
                size_t n_transports, char *err, size_t errlen)
{
    const vt_target *tg = t->target;
    v->ops = ops;
    v->best_rtt = -1;
    v->n_transports = n_transports > 2 ? 2 : n_transports;
    for (size_t i = 0; i < v->n_transports; i++)
        v->transports[i] = transports[i];
    if (!tg->n_endpoints) {
        snprintf(err, errlen, "no endpoints");
        return -1;
    }
    if (tg->n_endpoints * v->n_transports > VT_VPN_MAX_JOBS) {
        snprintf(err, errlen, "too many endpoints (at most %d probes per target)", VT_VPN_MAX_JOBS);
        return -1;
    }
    for (size_t i = 0; i < tg->n_endpoints; i++) {
        char host[256];
        int port;
        if (vt_split_host_port(tg->endpoints[i], host, sizeof(host), &port) < 0 || port < 1 ||
            port > 65535) {
            snprintf(err, errlen, "endpoint \"%.200s\" is not host:port", tg->endpoints[i]);
            return -1;
        }
    }
    const cJSON *ac = cJSON_GetObjectItemCaseSensitive(tg->options, "address_check");
    if (ac) {
        if (!cJSON_IsArray(ac) || cJSON_GetArraySize(ac) < 1 ||
            cJSON_GetArraySize(ac) > VT_VPN_MAX_CHECKS)
            goto bad_check;
        const cJSON *p;
        cJSON_ArrayForEach(p, ac)
        {
            int port = 0;
            if (cJSON_IsNumber(p) && p->valuedouble >= 1 && p->valuedouble <= 65535 &&
                p->valuedouble == (double)(int)p->valuedouble)
                port = (int)p->valuedouble;
            else if (cJSON_IsString(p) && p->valuestring) {
                char *end;
                long l = strtol(p->valuestring, &end, 10);
                if (end != p->valuestring && strcmp(end, "/tcp") == 0 && l >= 1 && l <= 65535)
                    port = (int)l;
            }
            if (port < 1 || port > 65535) goto bad_check;
            v->check_ports[v->n_check_ports++] = port;
        }
        v->address_checks = cJSON_CreateArray();
    }
    v->queries = cJSON_CreateArray();
    v->handshakes = cJSON_CreateArray();
    if (!v->queries || !v->handshakes || (v->n_check_ports && !v->address_checks)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
bad_check:
    snprintf(err, errlen, "\"address_check\": expected 1 to %d TCP ports (numbers or \"PORT/tcp\")",
             VT_VPN_MAX_CHECKS);
    return -1;
}

static void add_job(vt_vpn *v, const char *host, const char *ip, int port, size_t ep)
{
    for (size_t k = 0; k < v->n_transports && v->n_jobs < VT_VPN_MAX_JOBS; k++) {
        vt_vpn_job *j = &v->jobs[v->n_jobs++];
        snprintf(j->host, sizeof(j->host), "%s", host);
        /* An address that does not fit is not an address: callers pass inet_ntop output. */
        snprintf(j->ip, sizeof(j->ip), "%.*s", (int)sizeof(j->ip) - 1, ip);
        j->port = port;
        j->transport = v->transports[k];
        j->endpoint = ep;
    }
}

static void set_failure(vt_vpn *v, const char *phase, const char *failure)
{
    if (v->failure[0] || !failure || !*failure) return;
    snprintf(v->failure, sizeof(v->failure), "%s", failure);
    v->failure_phase = phase;
}

static void run_next(vt_task *t)
{
    vt_vpn *v = vpn_of(t);
    if (v->next_job >= v->n_jobs) {
        vt_task_done(t);
        return;
    }
    v->started_jobs++;
    v->ops->probe(t, &v->jobs[v->next_job++]);
}

typedef struct dns_ctx {
    vt_task *t;
    size_t ep;
    int port;
} dns_ctx;

static void on_dns(const vt_dns_query *q, void *arg)
{
    dns_ctx *c = arg;
    vt_task *t = c->t;
    vt_vpn *v = vpn_of(t);
    cJSON *qj = vt_dns_query_json(q);
    if (qj) cJSON_AddItemToArray(v->queries, qj);
    int max = t->env->cfg->max_addrs_per_family > 0 ? t->env->cfg->max_addrs_per_family : 2;
    int used = 0;
    for (size_t i = 0; i < q->n_answers && used < max; i++) {
        if (q->answers[i].qtype != VT_DNS_A && q->answers[i].qtype != VT_DNS_AAAA) continue;
        add_job(v, q->hostname, q->answers[i].addr, c->port, c->ep);
        used++;
    }
    if (!used) set_failure(v, "dns", q->failure[0] ? q->failure : "dns_no_answer");
    free(c);
    if (--v->dns_pending == 0) run_next(t);
}

void vt_vpn_start(vt_task *t)
{
    vt_vpn *v = vpn_of(t);
    const vt_target *tg = t->target;
    v->dns_pending = 1; /* held until every lookup is started */
    for (size_t i = 0; i < tg->n_endpoints; i++) {
        char host[256];
        int port = 0;
        vt_split_host_port(tg->endpoints[i], host, sizeof(host), &port);
        if (is_ip(host)) {
            add_job(v, host, host, port, i);
            continue;
        }
        dns_ctx *c = calloc(1, sizeof(*c));
        if (!c || !t->env->dns) {
            free(c);
            set_failure(v, "dns", "unknown_failure: no resolver");
            continue;
        }
        c->t = t;
        c->ep = i;
        c->port = port;
        v->dns_pending++;
        if (vt_dns_lookup(t->env->dns, host, VT_DNS_A, t->t0, on_dns, c) < 0) {
            v->dns_pending--;
            free(c);
            set_failure(v, "dns", "unknown_failure: lookup did not start");
        }
    }
    if (--v->dns_pending == 0) run_next(t);
}

cJSON *vt_vpn_entry(const vt_vpn *v, const vt_vpn_job *job)
{
    cJSON *o = cJSON_CreateObject();
    char addr[INET6_ADDRSTRLEN + 8];
    if (strchr(job->ip, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%d", job->ip, job->port);
    else
        snprintf(addr, sizeof(addr), "%s:%d", job->ip, job->port);
    cJSON_AddStringToObject(o, "address", addr);
    cJSON_AddStringToObject(o, "hostname", job->host);
    cJSON_AddStringToObject(o, "ip", job->ip);
    cJSON_AddNumberToObject(o, "port", job->port);
    cJSON_AddStringToObject(o, "transport", job->transport);
    cJSON_AddStringToObject(o, "protocol", v->ops->protocol);
    return o;
}

void vt_vpn_record(vt_task *t, cJSON *entry, const char *phase, const char *failure, double rtt)
{
    vt_vpn *v = vpn_of(t);
    int inconclusive = phase && strcmp(phase, "inconclusive") == 0;
    int ok = !inconclusive && (!failure || !*failure);
    if (entry) {
        if (!cJSON_HasObjectItem(entry, "failure")) vt_json_add_failure(entry, "failure", failure);
        if (!cJSON_HasObjectItem(entry, "rtt_ms")) vt_vpn_add_ms(entry, "rtt_ms", ok ? rtt : -1);
        cJSON_AddItemToArray(v->handshakes, entry);
    }
    if (inconclusive) {
        /* neither reachable nor a failure */
    } else if (ok) {
        v->reachable = 1;
        if (rtt >= 0 && (v->best_rtt < 0 || rtt < v->best_rtt)) v->best_rtt = rtt;
    } else {
        set_failure(v, phase ? phase : "handshake", failure);
    }
}

static void check_next(vt_task *t);

static void on_check(const vt_tcp_result *r, int fd, void *arg)
{
    vt_task *t = arg;
    vt_vpn *v = vpn_of(t);
    if (fd >= 0) close(fd);
    const vt_vpn_job *job = v->check_job;
    vt_vpn_job j = *job;
    j.port = v->check_ports[v->check_k];
    j.transport = "tcp";
    cJSON *e = vt_vpn_entry(v, &j);
    if (e) {
        cJSON_ReplaceItemInObject(e, "protocol", cJSON_CreateNull());
        cJSON_AddStringToObject(e, "method", "tcp_connect_only");
        vt_json_add_failure(e, "failure", r->failure);
        vt_vpn_add_ms(e, "rtt_ms", r->failure[0] ? -1 : r->t - r->t0);
        vt_json_add_time(e, "t0", r->t0);
        vt_json_add_time(e, "t", r->t);
        cJSON_AddItemToArray(v->address_checks, e);
    }
    v->check_k++;
    check_next(t);
}

/* The address checks of the failed job in check_job, one after another, then the next job. */
static void check_next(vt_task *t)
{
    vt_vpn *v = vpn_of(t);
    const vt_vpn_job *job = v->check_job;
    while (v->check_k < v->n_check_ports) {
        int port = v->check_ports[v->check_k];
        if (!(port == job->port && strcmp(job->transport, "tcp") == 0) &&
            vt_tcp_connect(t->env->loop, job->ip, port, t->env->cfg->connect_timeout_ms, t->t0,
                           on_check, t) == 0)
            return;
        v->check_k++; /* the job itself, or it could not start: no evidence */
    }
    run_next(t);
}

/* 1 when this job's address was already checked (several jobs per address: transports). */
static int checked_before(const vt_vpn *v, const vt_vpn_job *job)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, v->address_checks)
    {
        const cJSON *ip = cJSON_GetObjectItemCaseSensitive(e, "ip");
        if (cJSON_IsString(ip) && strcmp(ip->valuestring, job->ip) == 0) return 1;
    }
    return 0;
}

void vt_vpn_job_done(vt_task *t, const vt_vpn_job *job, cJSON *entry, const char *phase,
                     const char *failure, double rtt)
{
    vt_vpn *v = vpn_of(t);
    int failed = !(phase && strcmp(phase, "inconclusive") == 0) && failure && *failure;
    vt_vpn_record(t, entry, phase, failure, rtt);
    if (failed && v->n_check_ports && v->address_checks && !checked_before(v, job)) {
        v->check_job = job;
        v->check_k = 0;
        check_next(t);
        return;
    }
    run_next(t);
}

void vt_vpn_finish(vt_task *t, vt_vpn *v)
{
    cJSON *tk = t->test_keys;
    if (v->queries) cJSON_AddItemToObject(tk, "queries", v->queries);
    if (v->handshakes) cJSON_AddItemToObject(tk, "handshakes", v->handshakes);
    v->queries = v->handshakes = NULL;
    if (v->address_checks) cJSON_AddItemToObject(tk, "address_checks", v->address_checks);
    v->address_checks = NULL;
    int ok = v->reachable;
    if (ok || !v->failure[0]) {
        cJSON_AddNullToObject(tk, "failure_phase");
        cJSON_AddNullToObject(tk, "failure");
    } else {
        cJSON_AddStringToObject(tk, "failure_phase", v->failure_phase);
        cJSON_AddStringToObject(tk, "failure", v->failure);
    }
    cJSON_AddBoolToObject(tk, "reachable", ok);
    vt_vpn_add_ms(tk, "rtt_ms", v->best_rtt);
    if (v->inconclusive_reason && !ok)
        cJSON_AddStringToObject(tk, "inconclusive_reason", v->inconclusive_reason);
}

/* ---- target options ---------------------------------------------------------------------- */

int vt_vpn_opt_string(const vt_target *tg, const char *key, const char **out, char *err,
                      size_t errlen)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(tg->options, key);
    if (!o) return 0;
    if (!cJSON_IsString(o) || !o->valuestring) {
        snprintf(err, errlen, "\"%s\": expected a string", key);
        return -1;
    }
    *out = o->valuestring;
    return 1;
}

int vt_vpn_opt_int(const vt_target *tg, const char *key, int min, int max, int *out, char *err,
                   size_t errlen)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(tg->options, key);
    if (!o) return 0;
    /* Range first: converting a double outside int's range to int is undefined. */
    if (!cJSON_IsNumber(o) || !(o->valuedouble >= min && o->valuedouble <= max) ||
        o->valuedouble != (double)(int)o->valuedouble) {
        snprintf(err, errlen, "\"%s\": expected an integer %d..%d", key, min, max);
        return -1;
    }
    *out = (int)o->valuedouble;
    return 1;
}

int vt_vpn_opt_bool(const vt_target *tg, const char *key, int *out, char *err, size_t errlen)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(tg->options, key);
    if (!o) return 0;
    if (!cJSON_IsBool(o)) {
        snprintf(err, errlen, "\"%s\": expected true or false", key);
        return -1;
    }
    *out = cJSON_IsTrue(o);
    return 1;
}

int vt_vpn_opt_secret(const vt_target *tg, const char *key, char *out, size_t outlen, char *err,
                      size_t errlen)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(tg->options, key);
    if (!o) return 0;
    if (!vt_secrets_is_ref(o)) {
        snprintf(err, errlen,
                 "\"%s\": secrets are not written in target files; use {\"secret\": \"name\"} "
                 "and put the value in the secrets file",
                 key);
        return -1;
    }
    char e[300];
    if (vt_secrets_resolve(o, out, outlen, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "\"%s\": %s", key, e);
        return -1;
    }
    return 1;
}

int vt_vpn_opt_transports(const vt_target *tg, const char *dflt, const char **out, size_t *n,
                          char *err, size_t errlen)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(tg->options, "transport");
    *n = 0;
    if (!o) {
        out[(*n)++] = dflt;
        return 0;
    }
    const cJSON *items[2];
    size_t k = 0;
    if (cJSON_IsString(o)) {
        items[k++] = o;
    } else if (cJSON_IsArray(o) && cJSON_GetArraySize(o) >= 1 && cJSON_GetArraySize(o) <= 2) {
        for (int i = 0; i < cJSON_GetArraySize(o); i++)
            items[k++] = cJSON_GetArrayItem(o, i);
    } else {
        snprintf(err, errlen, "\"transport\": expected \"udp\", \"tcp\" or [\"udp\", \"tcp\"]");
        return -1;
    }
    for (size_t i = 0; i < k; i++) {
        const char *s = cJSON_IsString(items[i]) ? items[i]->valuestring : NULL;
        if (s && strcmp(s, "udp") == 0)
            out[(*n)++] = "udp";
        else if (s && strcmp(s, "tcp") == 0)
            out[(*n)++] = "tcp";
        else {
            snprintf(err, errlen, "\"transport\": expected \"udp\" or \"tcp\"");
            return -1;
        }
    }
    if (*n == 2 && strcmp(out[0], out[1]) == 0) *n = 1;
    return 0;
}

void vt_vpn_discard(vt_vpn *v)
{
    cJSON_Delete(v->queries);
    cJSON_Delete(v->handshakes);
    cJSON_Delete(v->address_checks);
    v->queries = v->handshakes = v->address_checks = NULL;
}
