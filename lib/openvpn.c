/* The "openvpn" kind: the client's hard reset to each address over UDP and/or TCP; reachable
 * when a server's hard reset acknowledges our session id. Target keys: docs/targets.md. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vantage/json.h"
#include "vantage/openvpn.h"
#include "vantage/tcp_exchange.h"
#include "vantage/udp.h"
#include "vpn.h"

typedef struct ovpn {
    vt_vpn vpn; /* first */
    vt_openvpn_opts o;
    unsigned char key[VT_OVPN_STATIC_KEY_LEN];
    char digest[16];
    /* the probe in flight */
    const vt_vpn_job *job;
    unsigned char sid[VT_OVPN_SID_LEN];
    vt_openvpn_reply reply;
    int accepted;
} ovpn;

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void add_reply(cJSON *e, ovpn *s)
{
    char h[2 * VT_OVPN_SID_LEN + 1];
    hex(s->sid, VT_OVPN_SID_LEN, h);
    cJSON_AddStringToObject(e, "session_id", h);
    cJSON_AddBoolToObject(e, "tls_auth", s->o.tls_auth != NULL);
    cJSON_AddBoolToObject(e, "tls_crypt", s->o.tls_crypt != NULL);
    if (s->accepted) {
        hex(s->reply.server_sid, VT_OVPN_SID_LEN, h);
        cJSON_AddStringToObject(e, "server_session_id", h);
        cJSON_AddNumberToObject(e, "opcode", s->reply.opcode);
        cJSON_AddBoolToObject(e, "hmac_verified", s->reply.hmac_checked);
    }
}

static int udp_check(const unsigned char *buf, size_t len, void *arg, char *f, size_t flen)
{
    ovpn *s = arg;
    vt_openvpn_reply r;
    if (vt_openvpn_parse_reply(&s->o, s->sid, buf, len, &r, f, flen) != VT_OVPN_OK)
        return VT_UDP_IGNORE; /* maybe spoofed or stray: keep waiting, remember why */
    s->reply = r;
    s->accepted = 1;
    return VT_UDP_ACCEPT;
}

static int tcp_check(const unsigned char *buf, size_t len, void *arg, char *f, size_t flen)
{
    ovpn *s = arg;
    size_t off = 0;
    for (int i = 0; i < 16; i++) {
        vt_openvpn_reply r;
        int rc = vt_openvpn_parse_reply(&s->o, s->sid, buf + off, len - off, &r, f, flen);
        if (rc == VT_OVPN_OK) {
            s->reply = r;
            s->accepted = 1;
            return VT_TCPX_ACCEPT;
        }
        if (rc == VT_OVPN_NEED_MORE) return VT_TCPX_NEED_MORE;
        if (rc == VT_OVPN_BAD) return VT_TCPX_REJECT;
        off += r.consumed; /* an ack alone: read on */
    }
    snprintf(f, flen, "openvpn_no_reset");
    return VT_TCPX_REJECT;
}

static void on_udp(const vt_udp_result *r, void *arg)
{
    vt_task *t = arg;
    ovpn *s = t->state;
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    vt_json_add_failure(e, "failure", r->failure);
    vt_vpn_add_ms(e, "rtt_ms", r->failure[0] ? -1 : r->rtt);
    add_reply(e, s);
    cJSON_AddNumberToObject(e, "sent", r->sends);
    cJSON_AddNumberToObject(e, "received", r->replies);
    cJSON_AddNumberToObject(e, "bytes_sent", (double)r->bytes_sent);
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, "handshake", r->failure, r->rtt);
}

static void on_tcp(const vt_tcpx_result *r, void *arg)
{
    vt_task *t = arg;
    ovpn *s = t->state;
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    const char *phase =
        r->failed_operation && !strcmp(r->failed_operation, "connect") ? "tcp" : "handshake";
    vt_json_add_failure(e, "failure", r->failure);
    vt_json_add_string_or_null(e, "failed_operation", r->failed_operation);
    vt_vpn_add_ms(e, "rtt_ms", r->failure[0] ? -1 : r->rtt);
    cJSON_AddItemToObject(e, "tcp_connect", vt_tcp_result_json(&r->tcp));
    add_reply(e, s);
    cJSON_AddNumberToObject(e, "bytes_sent", (double)r->bytes_sent);
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    vt_json_add_time(e, "t0", r->tcp.t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, phase, r->failure, r->rtt);
}

static void probe(vt_task *t, const vt_vpn_job *job)
{
    ovpn *s = t->state;
    const vt_config *cfg = t->env->cfg;
    unsigned char pkt[256];
    size_t n = 0;
    char err[160];
    s->job = job;
    s->accepted = 0;
    memset(&s->reply, 0, sizeof(s->reply));
    s->o.tcp = strcmp(job->transport, "tcp") == 0;
    s->o.packet_id = 1;
    s->o.net_time = (uint32_t)time(NULL);
    if (RAND_bytes(s->sid, sizeof(s->sid)) != 1 ||
        vt_openvpn_build_reset(&s->o, s->sid, pkt, sizeof(pkt), &n, err, sizeof(err)) < 0) {
        char f[VT_FAILURE_MAX];
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        vt_failure_unknown(err, f, sizeof(f)), -1);
        return;
    }
    int rc;
    if (s->o.tcp) {
        vt_tcpx_opts o = {.ip = job->ip,
                          .port = job->port,
                          .payload = pkt,
                          .payload_len = n,
                          .connect_timeout_ms = cfg->connect_timeout_ms,
                          .timeout_ms = cfg->connect_timeout_ms,
                          .check = tcp_check,
                          .check_arg = s,
                          .t_base = t->t0};
        rc = vt_tcpx_exchange(t->env->loop, &o, on_tcp, t);
    } else {
        int interval = cfg->connect_timeout_ms / 3;
        vt_udp_opts o = {.ip = job->ip,
                         .port = job->port,
                         .payload = pkt,
                         .payload_len = n,
                         .tries = 3,
                         .interval_ms = interval < 300 ? 300 : interval,
                         .check = udp_check,
                         .check_arg = s,
                         .t_base = t->t0};
        rc = vt_udp_exchange(t->env->loop, &o, on_udp, t);
    }
    if (rc < 0)
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        "unknown_failure: cannot start the exchange", -1);
}

static const vt_vpn_ops ops = {.protocol = "openvpn", .probe = probe};

static int create(vt_task *t, char *err, size_t errlen)
{
    ovpn *s = calloc(1, sizeof(*s));
    const char *tr[2];
    size_t ntr = 0;
    char keytext[8192];
    int dir = VT_OVPN_KEYDIR_NONE, have_key = 0, have_crypt = 0;
    const char *digest = "SHA1";
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->state = s;
    s->o.key_direction = VT_OVPN_KEYDIR_NONE;
    if (vt_vpn_opt_transports(t->target, "udp", tr, &ntr, err, errlen) < 0 ||
        vt_vpn_opt_int(t->target, "key_direction", 0, 1, &dir, err, errlen) < 0 ||
        vt_vpn_opt_string(t->target, "auth", &digest, err, errlen) < 0 ||
        (have_key = vt_vpn_opt_secret(t->target, "tls_auth_key", keytext, sizeof(keytext), err,
                                      errlen)) < 0)
        goto fail;
    if (!have_key) {
        have_crypt =
            vt_vpn_opt_secret(t->target, "tls_crypt_key", keytext, sizeof(keytext), err, errlen);
        if (have_crypt < 0) goto fail;
    } else if (cJSON_HasObjectItem(t->target->options, "tls_crypt_key")) {
        snprintf(err, errlen, "\"tls_auth_key\" and \"tls_crypt_key\" exclude each other");
        goto fail;
    }
    if (!vt_openvpn_digest_len(digest)) {
        snprintf(err, errlen, "\"auth\": \"%.32s\" is not SHA1, SHA256 or SHA512", digest);
        goto fail;
    }
    snprintf(s->digest, sizeof(s->digest), "%s", digest);
    s->o.auth_digest = s->digest;
    s->o.key_direction = dir;
    if (have_key || have_crypt) {
        char e[200];
        int rc = vt_openvpn_parse_static_key(keytext, strlen(keytext), s->key, e, sizeof(e));
        OPENSSL_cleanse(keytext, sizeof(keytext));
        if (rc < 0) {
            snprintf(err, errlen, "\"%s\": %s", have_key ? "tls_auth_key" : "tls_crypt_key", e);
            goto fail;
        }
        if (have_key)
            s->o.tls_auth = s->key;
        else
            s->o.tls_crypt = s->key;
    }
    if (vt_vpn_init(t, &s->vpn, &ops, tr, ntr, err, errlen) < 0) goto fail;
    return 0;
fail:
    OPENSSL_cleanse(keytext, sizeof(keytext));
    vt_vpn_discard(&s->vpn);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
    t->state = NULL;
    return -1;
}

static void finish(vt_task *t)
{
    ovpn *s = t->state;
    if (!s) return;
    vt_vpn_finish(t, &s->vpn);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
    t->state = NULL;
}

const vt_kind vt_kind_openvpn = {
    .name = "openvpn",
    .test_name = "vantage_openvpn",
    .test_version = "0.1.0",
    .create = create,
    .start = vt_vpn_start,
    .finish = finish,
};
