/* The VPN kinds' evidence across a run (include/vantage/vpn_verdict.h): every handshake entry,
 * port probe and address check of the run becomes an observation (who, where, what came
 * back); each failed measurement's evidence is what the others say about its address, its port
 * and its protocol. The decision itself is in lib/verdict.c (vt_verdict_decide). */
#include "vantage/vpn_verdict.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vantage/json.h"

static const char *const vpn_kinds[] = {"openvpn", "wireguard", "ikev2", "tor", "tlsvpn", "port"};

int vt_vpn_verdict_kind(const char *kind)
{
    if (!kind) return 0;
    for (size_t i = 0; i < sizeof(vpn_kinds) / sizeof(vpn_kinds[0]); i++)
        if (strcmp(kind, vpn_kinds[i]) == 0) return 1;
    return 0;
}

typedef struct obs {
    size_t item;
    const char *id;
    char ip[INET6_ADDRSTRLEN];
    int port;
    int tcp;              /* transport */
    const char *protocol; /* "openvpn", ..., "port", "address_check" */
    int answered;         /* something came back from ip:port (an answer, a TCP connect) */
    int got_bytes;        /* bytes came back (the protocol's answer or anything else) */
    int connected;        /* TCP connected */
    int failed;           /* a probe that expects an answer got none (timeout, refused, ...) */
    int refused;          /* UDP, an ICMP port unreachable: nothing listens there (or a filter
                             says so in its name): neither an answer nor a silent path */
    int tls_done;         /* the TLS handshake completed: what failed after it was inside TLS */
    int unkeyed;          /* OpenVPN without a tls-auth/tls-crypt key: a server that requires
                             one drops the reset without a word */
    int silent_probe;     /* a UDP port probe that got nothing (proves nothing by itself) */
    const char *payload;  /* port kind, UDP: payload_hex ("" when none) */
    const char *mimics;   /* port kind: the protocol its payload imitates */
    const char *failure;  /* the entry's failure string, or NULL */
} obs;

typedef struct obs_set {
    obs *o;
    size_t n, cap;
} obs_set;

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int is_addr(const char *s)
{
    unsigned char b[16];
    return s && (inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1);
}

static obs *obs_new(obs_set *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        if (cap > 1u << 20) return NULL;
        obs *no = realloc(s->o, cap * sizeof(*no));
        if (!no) return NULL;
        s->o = no;
        s->cap = cap;
    }
    obs *o = &s->o[s->n++];
    memset(o, 0, sizeof(*o));
    return o;
}

/* One handshake entry (or address check) as an observation; 0 when it is not one. */
static int obs_read(const cJSON *e, obs *o)
{
    const char *ip = str_of(e, "ip");
    const char *tr = str_of(e, "transport");
    double port = num_of(e, "port", -1);
    if (!is_addr(ip) || strlen(ip) >= sizeof(o->ip) || port < 1 || port > 65535 || !tr ||
        (strcmp(tr, "tcp") != 0 && strcmp(tr, "udp") != 0))
        return 0;
    snprintf(o->ip, sizeof(o->ip), "%s", ip);
    o->port = (int)port;
    o->tcp = strcmp(tr, "tcp") == 0;
    const char *failure = str_of(e, "failure");
    const char *inc = str_of(e, "inconclusive_reason");
    o->failure = failure;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(e, "tcp_connect");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(tc, "status");
    const char *failed_op = str_of(e, "failed_operation");
    o->connected =
        o->tcp && (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "success")) ||
                   (failed_op && strcmp(failed_op, "connect") != 0) || (!failure && !inc));
    /* a certificate refused is the server's answer too (interception is the web rules' and
     * the control's question, not this one's) */
    int cert = failure && (strcmp(failure, "ssl_unknown_authority") == 0 ||
                           strcmp(failure, "ssl_invalid_hostname") == 0 ||
                           strcmp(failure, "ssl_invalid_certificate") == 0);
    o->got_bytes = num_of(e, "received", 0) > 0 || num_of(e, "bytes_received", 0) > 0 ||
                   cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "status_code")) || cert;
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(e, "tls_handshake");
    const char *tls_version = str_of(tls, "tls_version");
    o->tls_done = cJSON_IsObject(tls) && !str_of(tls, "failure") && tls_version && *tls_version;
    o->unkeyed = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "tls_auth")) &&
                 cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "tls_crypt"));
    o->answered = (!failure && !inc) || o->connected || o->got_bytes;
    o->refused = !o->tcp && failure && strcmp(failure, "connection_refused") == 0;
    o->failed = failure && !o->answered && !o->refused;
    o->silent_probe = inc && strcmp(inc, "udp_no_reply") == 0 && !o->answered;
    return 1;
}

static void collect(const vt_vpn_item *items, size_t n, obs_set *s)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *tk = items[i].test_keys;
        const vt_target *tg = items[i].target;
        const char *kind = tg ? tg->kind : NULL;
        const char *id = tg && tg->id ? tg->id : "?";
        int is_port = kind && strcmp(kind, "port") == 0;
        const char *payload = NULL, *mimics = NULL;
        if (tg && is_port) {
            payload = str_of(tg->options, "payload_hex");
            mimics = str_of(tg->options, "mimics");
            if (!payload) payload = "";
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "handshakes"))
        {
            obs tmp;
            memset(&tmp, 0, sizeof(tmp));
            if (!obs_read(e, &tmp)) continue;
            obs *o = obs_new(s);
            if (!o) return;
            *o = tmp;
            o->item = i;
            o->id = id;
            const char *p = str_of(e, "protocol");
            o->protocol = is_port ? "port" : p ? p : kind ? kind : "?";
            if (is_port && !o->tcp) {
                o->payload = payload;
                o->mimics = mimics;
            }
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "address_checks"))
        {
            obs tmp;
            memset(&tmp, 0, sizeof(tmp));
            if (!obs_read(e, &tmp)) continue;
            obs *o = obs_new(s);
            if (!o) return;
            *o = tmp;
            o->item = i;
            o->id = id;
            o->protocol = "address_check";
        }
    }
}

static int same_ip(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static void add_ref(cJSON *arr, const obs *o)
{
    if (!arr || cJSON_GetArraySize(arr) >= VT_VPN_EVIDENCE_MAX) return;
    char buf[512];
    if (strchr(o->ip, ':'))
        snprintf(buf, sizeof(buf), "%.200s [%s]:%d/%s", o->id, o->ip, o->port,
                 o->tcp ? "tcp" : "udp");
    else
        snprintf(buf, sizeof(buf), "%.200s %s:%d/%s", o->id, o->ip, o->port,
                 o->tcp ? "tcp" : "udp");
    if (strcmp(o->protocol, "address_check") == 0)
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " (address_check)");
    /* one line per observation: the same target may have several entries there */
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        if (cJSON_IsString(x) && strcmp(x->valuestring, buf) == 0) return;
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
}

/* Something at ip answered in this run. */
/* Something at ip answered on another port or transport than port/tcp, while nothing answered
 * there on port/tcp itself (where that port works, its failure for other traffic is no
 * evidence that the port is blocked). */
static int live_on_other_ports(const obs_set *s, const char *ip, int port, int tcp)
{
    int other = 0;
    for (size_t i = 0; i < s->n; i++) {
        const obs *x = &s->o[i];
        if (!x->answered || !same_ip(x->ip, ip)) continue;
        if (x->port == port && x->tcp == tcp && !x->mimics) return 0;
        other = 1;
    }
    return other;
}

/* A silent UDP port probe whose payload the same address answered on another port: that
 * address runs a responder for it, so its silence on this port is the path's. */
static int silence_meaningful(const obs_set *s, const obs *o)
{
    if (!o->silent_probe || !o->payload || o->mimics) return 0;
    for (size_t i = 0; i < s->n; i++) {
        const obs *x = &s->o[i];
        if (x->answered && !x->tcp && x->payload && !x->mimics && same_ip(x->ip, o->ip) &&
            x->port != o->port && strcmp(x->payload, o->payload) == 0)
            return 1;
    }
    return 0;
}

static int mimic_of(const obs *o, const char *protocol)
{
    return o->mimics && protocol && strcasecmp(o->mimics, protocol) == 0;
}

static int wants_evidence(const cJSON *tk)
{
    const char *phase = str_of(tk, "failure_phase");
    if (!phase || !str_of(tk, "failure")) return 0;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable"))) return 0;
    if (str_of(tk, "inconclusive_reason")) return 0;
    return strcmp(phase, "tcp") == 0 || strcmp(phase, "tls") == 0 ||
           strcmp(phase, "handshake") == 0;
}

/* The entry that failed: the one whose failure is the measurement's (for a kind with several
 * steps on one address, TLS then the protocol, the failed step), else its first failure. */
static const obs *failed_entry(const obs_set *s, size_t item, const cJSON *tk)
{
    const char *failure = str_of(tk, "failure");
    const obs *first = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const obs *o = &s->o[i];
        if (o->item != item || !o->failure || strcmp(o->protocol, "address_check") == 0) continue;
        if (failure && strcmp(o->failure, failure) == 0) return o;
        if (!first) first = o;
    }
    return first;
}

static void evidence_for(const obs_set *s, size_t item, const vt_vpn_item *it)
{
    cJSON *tk = it->test_keys;
    const obs *h = failed_entry(s, item, tk);
    if (!h) return;
    cJSON *ev = cJSON_CreateObject();
    if (!ev) return;
    cJSON_AddStringToObject(ev, "address", h->ip);
    cJSON_AddNumberToObject(ev, "port", h->port);
    cJSON_AddStringToObject(ev, "transport", h->tcp ? "tcp" : "udp");
    cJSON_AddStringToObject(ev, "protocol", h->protocol);
    int replied = h->got_bytes;
    int connected = 0, tls_completed = 0;
    for (size_t i = 0; i < s->n; i++) {
        const obs *o = &s->o[i];
        if (o->item != item || o->tcp != h->tcp || o->port != h->port || !same_ip(o->ip, h->ip))
            continue;
        connected |= o->connected;
        tls_completed |= o->tls_done;
    }
    int unkeyed = h->unkeyed && h->tcp && strcmp(h->protocol, "openvpn") == 0;
    cJSON_AddBoolToObject(ev, "replied", replied);
    cJSON_AddBoolToObject(ev, "connected", connected);
    cJSON_AddBoolToObject(ev, "tls_completed", tls_completed);
    cJSON_AddBoolToObject(ev, "refused", h->refused);
    cJSON_AddBoolToObject(ev, "unkeyed", unkeyed);
    cJSON *same_port = cJSON_AddArrayToObject(ev, "same_port");
    cJSON *addr_up = cJSON_AddArrayToObject(ev, "address_up");
    cJSON *port_else = cJSON_AddArrayToObject(ev, "port_elsewhere");
    cJSON *port_failed = cJSON_AddArrayToObject(ev, "port_failed_up");
    cJSON *mimic = cJSON_AddArrayToObject(ev, "mimic_blocked");
    int address_silent = 1;
    /* distinct ports tried at the address, and distinct live addresses where the port failed */
    int tried[16][2], n_tried = 0;
    const char *failed_at[16];
    int n_failed_at = 0, tcp_port_at_addr = 0;
    for (size_t i = 0; i < s->n; i++) {
        const obs *o = &s->o[i];
        int here = same_ip(o->ip, h->ip);
        int same_pt = o->port == h->port && o->tcp == h->tcp;
        if (here && o->answered) address_silent = 0;
        if (here && o->tcp && !tcp_port_at_addr) tcp_port_at_addr = o->port;
        if (here && !same_pt && o->answered) add_ref(addr_up, o);
        /* other traffic: another protocol, or a port probe; the same protocol failing or
         * passing elsewhere says nothing about port against protocol */
        int other = strcmp(o->protocol, h->protocol) != 0 && !o->mimics;
        if (here && same_pt && o->item != item && o->answered && other) add_ref(same_port, o);
        if (here && (o->failed || o->silent_probe)) {
            int seen = 0;
            for (int k = 0; k < n_tried; k++)
                if (tried[k][0] == o->port && tried[k][1] == o->tcp) seen = 1;
            if (!seen && n_tried < 16) {
                tried[n_tried][0] = o->port;
                tried[n_tried][1] = o->tcp;
                n_tried++;
            }
        }
        if (!here && same_pt && o->answered && !o->mimics) add_ref(port_else, o);
        if (!here && same_pt && other && (o->failed || silence_meaningful(s, o)) &&
            live_on_other_ports(s, o->ip, o->port, o->tcp)) {
            int seen = 0;
            for (int k = 0; k < n_failed_at; k++)
                if (same_ip(failed_at[k], o->ip)) seen = 1;
            if (!seen && n_failed_at < 16) failed_at[n_failed_at++] = o->ip;
            add_ref(port_failed, o);
        }
        /* a look-alike of this protocol unanswered where another payload was answered, on
         * the same port and transport */
        if (same_pt && mimic_of(o, h->protocol) && (o->silent_probe || o->failed)) {
            for (size_t j = 0; j < s->n; j++) {
                const obs *x = &s->o[j];
                if (x->answered && !x->mimics && x->tcp == o->tcp && x->port == o->port &&
                    same_ip(x->ip, o->ip) && x->payload) {
                    add_ref(mimic, o);
                    break;
                }
            }
        }
    }
    cJSON_AddBoolToObject(ev, "address_silent", address_silent);
    cJSON_AddNumberToObject(ev, "ports_tried_at_address", n_tried);
    cJSON_AddNumberToObject(ev, "port_failed_up_addresses", n_failed_at);
    /* The control (the collector connecting from its own network) is asked only when the run
     * cannot decide: nothing came back from the address:port, and no other evidence. */
    int decided = replied || connected || cJSON_GetArraySize(same_port) > 0 ||
                  cJSON_GetArraySize(mimic) > 0 ||
                  (cJSON_GetArraySize(addr_up) > 0 && n_failed_at >= 1) || n_failed_at >= 2 ||
                  /* a live host and a silent UDP port: the control only connects over TCP */
                  (!h->tcp && cJSON_GetArraySize(addr_up) > 0) ||
                  /* the same protocol answered at this address:port */
                  (!address_silent && cJSON_GetArraySize(addr_up) == 0);
    int cport = h->tcp ? h->port : tcp_port_at_addr;
    if (!decided && cport > 0) {
        char in[INET6_ADDRSTRLEN + 24];
        if (strchr(h->ip, ':'))
            snprintf(in, sizeof(in), "[%s]:%d", h->ip, cport);
        else
            snprintf(in, sizeof(in), "%s:%d", h->ip, cport);
        cJSON_AddStringToObject(ev, "control_input", in);
    } else {
        cJSON_AddNullToObject(ev, "control_input");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "vpn_evidence");
    cJSON_AddItemToObject(tk, "vpn_evidence", ev);
}

void vt_vpn_gather(vt_vpn_item *items, size_t n)
{
    obs_set s = {0};
    if (!items || !n) return;
    collect(items, n, &s);
    for (size_t i = 0; i < n; i++) {
        cJSON *tk = items[i].test_keys;
        if (!cJSON_IsObject(tk) || !wants_evidence(tk)) continue;
        evidence_for(&s, i, &items[i]);
    }
    free(s.o);
}
