/* Verdicts: what a measurement means for a volunteer and a rights group. After a kind's finish
 * and before output, the runner asks for a verdict; the verdict module runs the controls the
 * measurement needs (an SNI-swap handshake, the collector's control endpoint) on the loop, then
 * adds to test_keys:
 *   verdict            ok | dns_blocking | tcp_blocking | tls_blocking | http_blocking |
 *                      throttled | down | probe_offline | inconclusive
 *   verdict_phase      dns | tcp | tls | http | handshake (VPN kinds) | null (where the
 *                      interference happened)
 *   blocking           VPN kinds only: address | port | protocol | null (vpn_verdict.h)
 *   verdict_reason     one sentence a volunteer understands
 *   evidence           {canaries_ok, control, dns_consistency, dns_bogon, sni_swap, fingerprint,
 *                       throughput_ratio, ...}: which controls agreed or disagreed
 *   blocking_confirmed true only when a blocking fingerprint matched and confirms (OONI's rule)
 * The rules, thresholds and their false-positive risks are in docs/methodology.md. */
#ifndef VANTAGE_VERDICT_H
#define VANTAGE_VERDICT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "fingerprints.h"
#include "task.h"

/* Throttling: the target's download rate is below this share of the best canary's ... */
#define VT_VERDICT_THROTTLE_RATIO 0.25
/* ... and below this absolute rate (bits/s): a slow site on a fast link is not throttling. */
#define VT_VERDICT_THROTTLE_MAX_BPS 2000000.0
/* ... unless the run's own downloads filled the link: while it ran, they received together at
 * least this share of the canary's rate (which downloaded alone): the slowness is the sharing. */
#define VT_VERDICT_SHARED_BUSY 0.5
/* A download rate is only trusted when at least this many body bytes came. */
#define VT_VERDICT_THROTTLE_MIN_BYTES 16384.0
/* A large download that stopped (reset, EOF, or a timeout after a silence) once at least one byte
 * came counts as cut when the silence before a timeout lasted this share of the download ... */
#define VT_VERDICT_CUT_SILENCE_SHARE 0.5
/* ... and at least this long (seconds): a server pausing for a moment is not a censor. */
#define VT_VERDICT_CUT_SILENCE_MIN_S 1.0
/* The innocuous SNI for the swap handshake when no canary gave one. */
#define VT_VERDICT_SWAP_SNI_DEFAULT "example.com"

/* What the canaries (phase 1 of a run) tell every later verdict. */
typedef struct vt_verdict_ctx {
    size_t n_canaries;    /* canaries measured */
    size_t n_canaries_ok; /* of which worked end to end (no failure) */
    double canary_bps;    /* the best canary download rate, bits/s; 0: none measured */
    char swap_sni[256];   /* a working canary's host name, for the SNI swap; "": none */
} vt_verdict_ctx;

void vt_verdict_ctx_init(vt_verdict_ctx *c);
/* Records the outcome of a finished canary (its test_keys after the kind's finish). */
void vt_verdict_note_canary(vt_verdict_ctx *c, const vt_target *t, const cJSON *test_keys);

/* Runs the controls t's verdict needs, then adds the verdict keys to t->test_keys and calls
 * done(t, arg) exactly once (possibly before returning). ctx must outlive the call. */
typedef void (*vt_verdict_done_fn)(vt_task *t, void *arg);
void vt_verdict_apply(vt_task *t, const vt_verdict_ctx *ctx, vt_verdict_done_fn done, void *arg);

/* The pure decision, for vt_verdict_apply and tests: everything it may use. */
typedef struct vt_verdict_inputs {
    const vt_verdict_ctx *ctx; /* NULL: the run had no canaries */
    const char *host;          /* the measured host (of the target's first endpoint) */
    int https;                 /* the first endpoint is an https URL (or TLS endpoint) */
    const cJSON *sni_swap;     /* {server_name, address, failure} or NULL when not run */
    const cJSON *repeat;       /* the failed connect or handshake tried again: {address,
                                  server_name (TLS) or null, failure}, or NULL when not run */
    const cJSON *control;      /* the control measurement's test_keys, or NULL */
    const char *control_error; /* why a configured control gave nothing, or NULL */
    const vt_fp_set *fps;      /* NULL: no fingerprints */
    const char *probe_cc;
} vt_verdict_inputs;

/* Adds verdict, verdict_phase, verdict_reason, evidence and blocking_confirmed to tk. */
void vt_verdict_decide(cJSON *tk, const vt_verdict_inputs *in);

/* The first blocking fingerprint in the measurement of host whose test keys are tk (OONI's
 * shapes: queries, requests, tls_handshakes), as vt_verdict_decide looks for one: an address or
 * CNAME the system resolver answered (*in_dns = 1), else a response body or header (*in_dns =
 * 0; not a page fetched over TLS verified for host). NULL when none matches or fps is NULL. */
const vt_fp *vt_verdict_fingerprint(const cJSON *tk, const vt_fp_set *fps, const char *host,
                                    int *in_dns);

/* Host name of an endpoint: "https://h:1/p" -> "h", "h:443" -> "h", "[::1]:443" -> "::1".
 * Returns 0, or -1 when there is none. *port gets the port (scheme default), may be NULL. */
int vt_verdict_endpoint_host(const char *endpoint, char *host, size_t hostlen, int *port,
                             int *https);

/* 1 for addresses that never answer for a public name: loopback, unspecified, link-local,
 * multicast, reserved (OONI's bogons minus private ranges); 2 for private / shared ranges
 * (RFC 1918, RFC 6598, ULA); 0 otherwise or when not an address. */
int vt_verdict_addr_class(const char *ip);

#endif
