/* The "wireguard" kind: a real handshake initiation to each address over UDP. With a client key
 * the server knows, reachable means an authenticated handshake response. Without one, no server
 * answers (by design): silence is inconclusive, never blocked. Target keys: docs/targets.md. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/json.h"
#include "vantage/udp.h"
#include "vantage/wireguard.h"
#include "vpn.h"

typedef struct wg {
    vt_vpn vpn; /* first */
    unsigned char server_pub[VT_WG_KEY_LEN];
    unsigned char client_priv[VT_WG_KEY_LEN];
    unsigned char psk[VT_WG_KEY_LEN];
    int provisioned, has_psk;
    const vt_vpn_job *job;
    vt_wg_handshake hs;
    vt_wg_reply reply;
    int verdict; /* VT_WG_OK, VT_WG_COOKIE, or VT_WG_BAD before a reply */
} wg;

static int check(const unsigned char *buf, size_t len, void *arg, char *f, size_t flen)
{
    wg *s = arg;
    vt_wg_reply r;
    int rc = vt_wg_parse_reply(&s->hs, buf, len, &r, f, flen);
    if (rc == VT_WG_BAD) return VT_UDP_IGNORE;
    s->reply = r;
    s->verdict = rc;
    return VT_UDP_ACCEPT;
}

static void on_udp(const vt_udp_result *r, void *arg)
{
    vt_task *t = arg;
    wg *s = t->state;
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    const char *failure = r->failure[0] ? r->failure : NULL, *phase = "handshake";
    int silent = failure && strcmp(failure, "generic_timeout_error") == 0 && r->replies == 0;
    cJSON_AddBoolToObject(e, "provisioned_key", s->provisioned);
    cJSON_AddBoolToObject(e, "preshared_key", s->has_psk);
    cJSON_AddNumberToObject(e, "sender_index", s->hs.sender_index);
    if (!failure) {
        cJSON_AddStringToObject(e, "reply",
                                s->verdict == VT_WG_OK ? "handshake_response" : "cookie_reply");
        cJSON_AddBoolToObject(e, "authenticated", s->reply.authenticated);
    }
    if (silent && !s->provisioned) {
        /* No server answers a peer it does not know: this silence says nothing. */
        phase = "inconclusive";
        cJSON_AddNullToObject(e, "failure");
        cJSON_AddStringToObject(e, "inconclusive_reason", "no_provisioned_key");
        s->vpn.inconclusive_reason = "no_provisioned_key";
    } else {
        vt_json_add_failure(e, "failure", failure);
    }
    vt_vpn_add_ms(e, "rtt_ms", failure ? -1 : r->rtt);
    cJSON_AddNumberToObject(e, "sent", r->sends);
    cJSON_AddNumberToObject(e, "received", r->replies);
    cJSON_AddNumberToObject(e, "bytes_sent", (double)r->bytes_sent);
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_wg_handshake_clear(&s->hs);
    vt_vpn_job_done(t, s->job, e, phase, failure, r->rtt);
}

static void probe(vt_task *t, const vt_vpn_job *job)
{
    wg *s = t->state;
    char err[160];
    uint32_t index = 0;
    unsigned char eph_client[VT_WG_KEY_LEN];
    const unsigned char *client = s->client_priv;
    s->job = job;
    s->verdict = VT_WG_BAD;
    if (!s->provisioned) {
        /* A fresh key per probe: the server cannot know it, but mac1 is valid. */
        if (vt_wg_generate_private(eph_client) < 0) {
            vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                            "unknown_failure: no random bytes", -1);
            return;
        }
        client = eph_client;
    }
    if (RAND_bytes((unsigned char *)&index, sizeof(index)) != 1 ||
        vt_wg_build_initiation(&s->hs, client, s->server_pub, s->has_psk ? s->psk : NULL, index,
                               NULL, err, sizeof(err)) < 0) {
        OPENSSL_cleanse(eph_client, sizeof(eph_client));
        char f[VT_FAILURE_MAX];
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        vt_failure_unknown(err, f, sizeof(f)), -1);
        return;
    }
    OPENSSL_cleanse(eph_client, sizeof(eph_client));
    int interval = t->env->cfg->connect_timeout_ms / 3;
    vt_udp_opts o = {.ip = job->ip,
                     .port = job->port,
                     .payload = s->hs.msg,
                     .payload_len = VT_WG_INIT_LEN,
                     .tries = 3,
                     .interval_ms = interval < 300 ? 300 : interval,
                     .check = check,
                     .check_arg = s,
                     .t_base = t->t0};
    if (vt_udp_exchange(t->env->loop, &o, on_udp, t) < 0)
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        "unknown_failure: cannot start the exchange", -1);
}

static const vt_vpn_ops ops = {.protocol = "wireguard", .probe = probe};

static int secret_key(vt_task *t, const char *name, unsigned char out[VT_WG_KEY_LEN], char *err,
                      size_t errlen)
{
    char text[128];
    int rc = vt_vpn_opt_secret(t->target, name, text, sizeof(text), err, errlen);
    if (rc == 1) {
        char e[120];
        if (vt_wg_key_from_base64(text, out, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "\"%s\": %s", name, e);
            rc = -1;
        }
    }
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

static int create(vt_task *t, char *err, size_t errlen)
{
    wg *s = calloc(1, sizeof(*s));
    const char *pub = NULL;
    const char *udp[1] = {"udp"};
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->state = s;
    if (vt_vpn_opt_string(t->target, "server_public_key", &pub, err, errlen) < 0) goto fail;
    if (!pub) {
        snprintf(err, errlen, "\"server_public_key\" (base64) is required");
        goto fail;
    }
    char e[120];
    if (vt_wg_key_from_base64(pub, s->server_pub, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "\"server_public_key\": %s", e);
        goto fail;
    }
    if ((s->provisioned = secret_key(t, "client_private_key", s->client_priv, err, errlen)) < 0 ||
        (s->has_psk = secret_key(t, "preshared_key", s->psk, err, errlen)) < 0)
        goto fail;
    if (vt_vpn_init(t, &s->vpn, &ops, udp, 1, err, errlen) < 0) goto fail;
    return 0;
fail:
    vt_vpn_discard(&s->vpn);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
    t->state = NULL;
    return -1;
}

static void finish(vt_task *t)
{
    wg *s = t->state;
    if (!s) return;
    vt_vpn_finish(t, &s->vpn);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
    t->state = NULL;
}

const vt_kind vt_kind_wireguard = {
    .name = "wireguard",
    .test_name = "vantage_wireguard",
    .test_version = "0.1.0",
    .create = create,
    .start = vt_vpn_start,
    .finish = finish,
};
