/* What the VPN and circumvention kinds share (internal): endpoints resolved once, one probe per
 * address and transport, run one after another, and the summary keys every kind writes:
 * "queries", "handshakes", "failure_phase", "failure", "reachable", "rtt_ms". A kind's state
 * struct starts with a vt_vpn. */
#ifndef VANTAGE_LIB_VPN_H
#define VANTAGE_LIB_VPN_H

#include <cjson/cJSON.h>
#include <netinet/in.h>

#include "vantage/task.h"

#define VT_VPN_MAX_JOBS 64
#define VT_VPN_MAX_CHECKS 4

typedef struct vt_vpn_job {
    char host[256]; /* as in the target */
    char ip[INET6_ADDRSTRLEN];
    int port;
    const char *transport; /* "udp" or "tcp" */
    size_t endpoint;       /* index in the target's endpoints */
} vt_vpn_job;

typedef struct vt_vpn_ops {
    const char *protocol; /* "openvpn", "wireguard", ... */
    /* Probes one address; ends, from the loop, with exactly one vt_vpn_job_done. */
    void (*probe)(vt_task *t, const vt_vpn_job *job);
} vt_vpn_ops;

typedef struct vt_vpn {
    const vt_vpn_ops *ops;
    const char *transports[2];
    size_t n_transports;
    vt_vpn_job jobs[VT_VPN_MAX_JOBS];
    size_t n_jobs, next_job, dns_pending;
    cJSON *queries, *handshakes;
    char failure[VT_FAILURE_MAX];
    const char *failure_phase;
    int reachable, started_jobs;
    double best_rtt;                 /* seconds, -1 without */
    const char *inconclusive_reason; /* a kind may set it */
    /* "address_check": TCP ports of the same address connected to after a failed handshake
     * (evidence that the host is up; lib/vpn_verdict.c) */
    int check_ports[VT_VPN_MAX_CHECKS];
    size_t n_check_ports, check_k;
    const vt_vpn_job *check_job;
    cJSON *address_checks;
} vt_vpn;

/* Checks the target's endpoints ("host:port", at most VT_VPN_MAX_JOBS) and sets up v.
 * transports: what each address is probed over. */
int vt_vpn_init(vt_task *t, vt_vpn *v, const vt_vpn_ops *ops, const char *const *transports,
                size_t n_transports, char *err, size_t errlen);
/* Resolves names, then runs the probes; ends with vt_task_done. */
void vt_vpn_start(vt_task *t);
/* Frees what vt_vpn_init allocated, for a create() that fails after it. */
void vt_vpn_discard(vt_vpn *v);
/* A probe's outcome: entry (owned) gets the common keys added; phase "tcp", "tls" or
 * "handshake" when it failed, "inconclusive" when the silence proves nothing (no failure, not
 * reachable); rtt in seconds (< 0: none). */
void vt_vpn_job_done(vt_task *t, const vt_vpn_job *job, cJSON *entry, const char *phase,
                     const char *failure, double rtt);
/* Records one more entry of the probe in flight without ending it (same arguments). */
void vt_vpn_record(vt_task *t, cJSON *entry, const char *phase, const char *failure, double rtt);
/* Writes the keys into t->test_keys and frees v's JSON. */
void vt_vpn_finish(vt_task *t, vt_vpn *v);

/* A handshake entry with address, ip, port, transport and protocol filled. */
cJSON *vt_vpn_entry(const vt_vpn *v, const vt_vpn_job *job);
/* Milliseconds with microsecond precision, or null when s < 0. */
void vt_vpn_add_ms(cJSON *o, const char *key, double s);

/* Target option helpers: -1 with err when present but of the wrong type. */
int vt_vpn_opt_string(const vt_target *tg, const char *key, const char **out, char *err,
                      size_t errlen);
int vt_vpn_opt_int(const vt_target *tg, const char *key, int min, int max, int *out, char *err,
                   size_t errlen);
int vt_vpn_opt_bool(const vt_target *tg, const char *key, int *out, char *err, size_t errlen);
/* A secret-valued option: absent (0, out untouched), resolved (1), or -1 with err. */
int vt_vpn_opt_secret(const vt_target *tg, const char *key, char *out, size_t outlen, char *err,
                      size_t errlen);
/* "transport": "udp" | "tcp" | ["udp","tcp"]; dflt when absent. */
int vt_vpn_opt_transports(const vt_target *tg, const char *dflt, const char **out, size_t *n,
                          char *err, size_t errlen);

#endif
