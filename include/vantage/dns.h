/* DNS measurement step: A / AAAA lookups through c-ares on the loop (system resolver or a given
 * UDP resolver), or DNS-over-HTTPS through libcurl. Each lookup is one OONI "queries" entry. */
#ifndef VANTAGE_DNS_H
#define VANTAGE_DNS_H

#include <cjson/cJSON.h>
#include <netinet/in.h>

#include "config.h"
#include "failure.h"
#include "loop.h"

#define VT_DNS_A 1
#define VT_DNS_AAAA 28
#define VT_DNS_MAX_CNAMES 64

typedef struct vt_dns_answer {
    int qtype;             /* VT_DNS_A or VT_DNS_AAAA */
    char addr[INET6_ADDRSTRLEN];
    unsigned ttl;
} vt_dns_answer;

typedef struct vt_dns_query {
    const char *engine;    /* "system", "udp" or "doh" (OONI's engine names) */
    char resolver[256];    /* "IP:PORT" of the server asked, or the DoH URL */
    char hostname[256];
    int qtype;
    int rcode;             /* DNS rcode of the answer, -1 when no answer came */
    char failure[VT_FAILURE_MAX]; /* "" on success (at least one address) */
    vt_dns_answer *answers;
    size_t n_answers;
    char (*cnames)[256];   /* the answer's CNAME chain from hostname, hop by hop (heap) */
    size_t n_cnames;       /* at most VT_DNS_MAX_CNAMES */
    char cname[256];       /* the name the chain ends at (its last hop), "" when none */
    double t0, t;          /* seconds since the measurement's start */
} vt_dns_query;

typedef struct vt_dns vt_dns;

/* The system resolver (resolv.conf, with c-ares). */
vt_dns *vt_dns_new_system(vt_loop *loop, const vt_config *cfg, char *err, size_t errlen);
/* A given resolver "IP[:PORT]" over UDP. */
vt_dns *vt_dns_new_udp(vt_loop *loop, const vt_config *cfg, const char *server, char *err,
                       size_t errlen);
/* A DNS-over-HTTPS resolver (RFC 8484, POST application/dns-message) at url. */
vt_dns *vt_dns_new_doh(vt_loop *loop, const vt_config *cfg, const char *url, char *err,
                       size_t errlen);
/* Frees d. Lookups still pending are dropped: their callbacks are never called (their owners
 * are usually going away too; c-ares' ARES_EDESTRUCTION never reaches a user). Free d before
 * the loop, and not from inside one of d's own callbacks. */
void vt_dns_free(vt_dns *d);

/* Called once from the loop, never from inside vt_dns_lookup (also when c-ares refuses the name
 * at once); q is valid only during the call. */
typedef void (*vt_dns_cb)(const vt_dns_query *q, void *arg);
/* Looks up host (qtype A or AAAA). t_base: the monotonic time (vt_now) the measurement started.
 * If host is an IP literal of the asked family the answer is immediate and engine-less.
 * Returns -1 (and never calls cb) for an empty name, one that is not valid UTF-8 or holds
 * spaces or control characters, so every "queries" entry is valid JSON text. */
int vt_dns_lookup(vt_dns *d, const char *host, int qtype, double t_base, vt_dns_cb cb, void *arg);

/* OONI "queries" entry: {answers:[CNAME answers {answer_type,hostname}, one per hop of the
 * chain, then {answer_type,ipv4|ipv6,ttl}], engine, failure, hostname,
 * query_type, resolver_address, rcode (extension), t0, t}. */
cJSON *vt_dns_query_json(const vt_dns_query *q);

#endif
