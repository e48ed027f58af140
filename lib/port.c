/* The "port" kind: plain reachability, labelled as such. TCP: a connect ("method":
 * "tcp_connect_only"). UDP: a datagram and any answer ("method": "udp_probe"); silence from a
 * UDP port proves nothing (open services often say nothing), so it is inconclusive, while an
 * ICMP port unreachable is connection_refused. Target keys: docs/targets.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "vantage/json.h"
#include "vantage/tcp.h"
#include "vantage/udp.h"
#include "vpn.h"

#define PORT_MAX_PAYLOAD 1024

typedef struct port {
    vt_vpn vpn; /* first */
    unsigned char payload[PORT_MAX_PAYLOAD];
    size_t payload_len;
    const vt_vpn_job *job;
    const char *mimics; /* the protocol whose first message the payload imitates, or NULL */
} port;

static void on_connect(const vt_tcp_result *r, int fd, void *arg)
{
    vt_task *t = arg;
    port *s = t->state;
    if (fd >= 0) close(fd);
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    cJSON_ReplaceItemInObject(e, "protocol", cJSON_CreateNull());
    cJSON_AddStringToObject(e, "method", "tcp_connect_only");
    double rtt = r->failure[0] ? -1 : r->t - r->t0;
    vt_json_add_failure(e, "failure", r->failure);
    vt_vpn_add_ms(e, "rtt_ms", rtt);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, "tcp", r->failure, rtt);
}

static void on_udp(const vt_udp_result *r, void *arg)
{
    vt_task *t = arg;
    port *s = t->state;
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    cJSON_ReplaceItemInObject(e, "protocol", cJSON_CreateNull());
    cJSON_AddStringToObject(e, "method", "udp_probe");
    if (s->mimics) cJSON_AddStringToObject(e, "mimics", s->mimics);
    const char *phase = "handshake";
    int silent = r->replies == 0 && strcmp(r->failure, "generic_timeout_error") == 0;
    if (silent) {
        phase = "inconclusive";
        cJSON_AddNullToObject(e, "failure");
        cJSON_AddStringToObject(e, "inconclusive_reason", "udp_no_reply");
        s->vpn.inconclusive_reason = "udp_no_reply";
    } else {
        vt_json_add_failure(e, "failure", r->failure);
    }
    vt_vpn_add_ms(e, "rtt_ms", r->failure[0] ? -1 : r->rtt);
    cJSON_AddNumberToObject(e, "sent", r->sends);
    cJSON_AddNumberToObject(e, "received", r->replies);
    cJSON_AddNumberToObject(e, "bytes_sent", (double)r->bytes_sent);
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, phase, r->failure, r->rtt);
}

static void probe(vt_task *t, const vt_vpn_job *job)
{
    port *s = t->state;
    const vt_config *cfg = t->env->cfg;
    int rc;
    s->job = job;
    if (strcmp(job->transport, "tcp") == 0) {
        rc = vt_tcp_connect(t->env->loop, job->ip, job->port, cfg->connect_timeout_ms, t->t0,
                            on_connect, t);
    } else {
        int interval = cfg->connect_timeout_ms / 3;
        vt_udp_opts o = {.ip = job->ip,
                         .port = job->port,
                         .payload = s->payload,
                         .payload_len = s->payload_len,
                         .tries = 3,
                         .interval_ms = interval < 300 ? 300 : interval,
                         .t_base = t->t0};
        rc = vt_udp_exchange(t->env->loop, &o, on_udp, t);
    }
    if (rc < 0)
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        "unknown_failure: cannot start", -1);
}

static const vt_vpn_ops ops = {.protocol = "port", .probe = probe};

static int create(vt_task *t, char *err, size_t errlen)
{
    port *s = calloc(1, sizeof(*s));
    const char *tr[2], *hex = NULL;
    size_t ntr = 0;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->state = s;
    if (vt_vpn_opt_transports(t->target, "tcp", tr, &ntr, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "payload_hex", &hex, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "mimics", &s->mimics, err, errlen) < 0)
        goto fail;
    if (hex) {
        size_t n = strlen(hex);
        if (n % 2 || n / 2 > PORT_MAX_PAYLOAD) {
            snprintf(err, errlen, "\"payload_hex\": an even number of hex digits, at most %d bytes",
                     PORT_MAX_PAYLOAD);
            goto fail;
        }
        for (size_t i = 0; i < n; i += 2) {
            int hi = vt_hex_digit((unsigned char)hex[i]),
                lo = vt_hex_digit((unsigned char)hex[i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "\"payload_hex\": not hex");
                goto fail;
            }
            s->payload[i / 2] = (unsigned char)(hi << 4 | lo);
        }
        s->payload_len = n / 2;
    }
    if (vt_vpn_init(t, &s->vpn, &ops, tr, ntr, err, errlen) < 0) goto fail;
    return 0;
fail:
    vt_vpn_discard(&s->vpn);
    free(s);
    t->state = NULL;
    return -1;
}

static void finish(vt_task *t)
{
    port *s = t->state;
    if (!s) return;
    vt_vpn_finish(t, &s->vpn);
    free(s);
    t->state = NULL;
}

const vt_kind vt_kind_port = {
    .name = "port",
    .test_name = "vantage_port",
    .test_version = "0.1.0",
    .create = create,
    .start = vt_vpn_start,
    .finish = finish,
};
