/* The "ikev2" kind: IKE_SA_INIT to each address over UDP (on ports other than 500: with the non-ESP
 * marker); reachable when a responder answers our SPI with its own SPI or a notify. Target keys:
 * docs/targets.md. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/ikev2.h"
#include "vantage/json.h"
#include "vantage/udp.h"
#include "vpn.h"

typedef struct ike {
    vt_vpn vpn; /* first */
    vt_ikev2_opts o;
    int natt_forced; /* -1: by port (not 500), 0/1: as the target says */
    const vt_vpn_job *job;
    unsigned char spi[VT_IKE_SPI_LEN];
    vt_ikev2_reply reply;
    int accepted;
} ike;

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int check(const unsigned char *buf, size_t len, void *arg, char *f, size_t flen)
{
    ike *s = arg;
    vt_ikev2_reply r;
    if (vt_ikev2_parse_reply(&s->o, s->spi, buf, len, &r, f, flen) != VT_IKE_OK)
        return VT_UDP_IGNORE;
    s->reply = r;
    s->accepted = 1;
    return VT_UDP_ACCEPT;
}

static void add_notify(cJSON *arr, int type)
{
    const char *name = vt_ikev2_notify_name(type);
    char buf[32];
    if (!name) {
        snprintf(buf, sizeof(buf), "%d", type);
        name = buf;
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString(name));
}

static void on_udp(const vt_udp_result *r, void *arg)
{
    vt_task *t = arg;
    ike *s = t->state;
    cJSON *e = vt_vpn_entry(&s->vpn, s->job);
    char h[2 * VT_IKE_SPI_LEN + 1];
    vt_json_add_failure(e, "failure", r->failure);
    vt_vpn_add_ms(e, "rtt_ms", r->failure[0] ? -1 : r->rtt);
    cJSON_AddBoolToObject(e, "natt", s->o.natt);
    cJSON_AddNumberToObject(e, "ke_group", s->o.ke_group);
    hex(s->spi, VT_IKE_SPI_LEN, h);
    cJSON_AddStringToObject(e, "spi_i", h);
    if (s->accepted) {
        const vt_ikev2_reply *p = &s->reply;
        hex(p->spi_r, VT_IKE_SPI_LEN, h);
        cJSON_AddStringToObject(e, "spi_r", h);
        cJSON *n = cJSON_AddArrayToObject(e, "notifies");
        for (int i = 0; i < p->n_notifies; i++)
            add_notify(n, p->notifies[i]);
        if (p->error_notify) {
            const char *nm = vt_ikev2_notify_name(p->error_notify);
            if (nm)
                cJSON_AddStringToObject(e, "error_notify", nm);
            else
                cJSON_AddNumberToObject(e, "error_notify", p->error_notify);
        } else {
            cJSON_AddNullToObject(e, "error_notify");
        }
        if (p->invalid_ke_group)
            cJSON_AddNumberToObject(e, "requested_ke_group", p->invalid_ke_group);
        if (p->has_sa) {
            cJSON *sa = cJSON_AddObjectToObject(e, "chosen_sa");
            cJSON_AddNumberToObject(sa, "encr", p->chosen_encr);
            cJSON_AddNumberToObject(sa, "encr_key_length", p->chosen_encr_keylen);
            cJSON_AddNumberToObject(sa, "prf", p->chosen_prf);
            cJSON_AddNumberToObject(sa, "integ", p->chosen_integ);
            cJSON_AddNumberToObject(sa, "dh", p->chosen_dh);
        }
    }
    cJSON_AddNumberToObject(e, "sent", r->sends);
    cJSON_AddNumberToObject(e, "received", r->replies);
    cJSON_AddNumberToObject(e, "bytes_sent", (double)r->bytes_sent);
    cJSON_AddNumberToObject(e, "bytes_received", (double)r->bytes_received);
    vt_json_add_time(e, "t0", r->t0);
    vt_json_add_time(e, "t", r->t);
    vt_vpn_job_done(t, s->job, e, "handshake", r->failure, r->rtt);
}

static void probe(vt_task *t, const vt_vpn_job *job)
{
    ike *s = t->state;
    unsigned char pkt[1500];
    size_t n = 0;
    char err[160];
    s->job = job;
    s->accepted = 0;
    /* As strongSwan does: IKE on any port but 500 carries the non-ESP marker. */
    s->o.natt = s->natt_forced >= 0 ? s->natt_forced : job->port != 500;
    if (RAND_bytes(s->spi, sizeof(s->spi)) != 1 ||
        vt_ikev2_build_sa_init(&s->o, s->spi, pkt, sizeof(pkt), &n, err, sizeof(err)) < 0) {
        char f[VT_FAILURE_MAX];
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        vt_failure_unknown(err, f, sizeof(f)), -1);
        return;
    }
    int interval = t->env->cfg->connect_timeout_ms / 3;
    vt_udp_opts o = {.ip = job->ip,
                     .port = job->port,
                     .payload = pkt,
                     .payload_len = n,
                     .tries = 3,
                     .interval_ms = interval < 300 ? 300 : interval,
                     .check = check,
                     .check_arg = s,
                     .t_base = t->t0};
    if (vt_udp_exchange(t->env->loop, &o, on_udp, t) < 0)
        vt_vpn_job_done(t, job, vt_vpn_entry(&s->vpn, job), "handshake",
                        "unknown_failure: cannot start the exchange", -1);
}

static const vt_vpn_ops ops = {.protocol = "ikev2", .probe = probe};

static int create(vt_task *t, char *err, size_t errlen)
{
    ike *s = calloc(1, sizeof(*s));
    const char *udp[1] = {"udp"};
    int natt = -1;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->state = s;
    s->o.ke_group = VT_IKE_DH_MODP2048;
    if (vt_vpn_opt_int(t->target, "ke_group", 1, 65535, &s->o.ke_group, err, errlen) < 0 ||
        vt_vpn_opt_bool(t->target, "natt", &natt, err, errlen) < 0)
        goto fail;
    if (s->o.ke_group != VT_IKE_DH_MODP2048 && s->o.ke_group != VT_IKE_DH_ECP256 &&
        s->o.ke_group != VT_IKE_DH_CURVE25519) {
        snprintf(err, errlen, "\"ke_group\": %d is not 14, 19 or 31", s->o.ke_group);
        goto fail;
    }
    s->natt_forced = natt;
    if (vt_vpn_init(t, &s->vpn, &ops, udp, 1, err, errlen) < 0) goto fail;
    return 0;
fail:
    vt_vpn_discard(&s->vpn);
    free(s);
    t->state = NULL;
    return -1;
}

static void finish(vt_task *t)
{
    ike *s = t->state;
    if (!s) return;
    vt_vpn_finish(t, &s->vpn);
    free(s);
    t->state = NULL;
}

const vt_kind vt_kind_ikev2 = {
    .name = "ikev2",
    .test_name = "vantage_ikev2",
    .test_version = "0.1.0",
    .create = create,
    .start = vt_vpn_start,
    .finish = finish,
};
