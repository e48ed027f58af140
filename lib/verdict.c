/* Verdicts (include/vantage/verdict.h; the rules are explained in docs/methodology.md).
 *
 * A verdict is never stronger than its evidence: the canaries decide whether the probe's own
 * network works at all; a second resolver and the control decide whether a DNS answer is the
 * real one; an SNI-swap handshake to the same address tells SNI filtering from address
 * blocking; the control (the collector measuring the same input from its own network) tells
 * blocking from a site that is down; fingerprints confirm. Without what a verdict needs, the
 * verdict is inconclusive. */
#include "vantage/verdict.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vantage/http.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"
#include "vantage/vpn_verdict.h"

#define MAX_ADDRS 32
#define CONTROL_TIMEOUT_MS 35000 /* the collector caps a control measurement at 30 s */
#define CONTROL_MAX_BODY (8u << 20)
#define CONTROL_TRIES 3             /* a busy control is asked at most this often */
#define CONTROL_RETRY_MAX_MS 10000  /* a Retry-After beyond this: not asked again */
#define CONTROL_RETRY_ROOM_MS 10000 /* ... nor when the task's deadline is this close */

/* ---- small helpers ---------------------------------------------------------------------- */

typedef struct addrset {
    char a[MAX_ADDRS][INET6_ADDRSTRLEN];
    size_t n;
    int queried;         /* at least one query of this view was made */
    int answered;        /* at least one query of this view answered without failure */
    const char *failure; /* the first failure of this view, when none answered */
} addrset;

static void addrset_add(addrset *s, const char *ip)
{
    if (!ip || !*ip || s->n == MAX_ADDRS) return;
    for (size_t i = 0; i < s->n; i++)
        if (strcasecmp(s->a[i], ip) == 0) return;
    snprintf(s->a[s->n++], INET6_ADDRSTRLEN, "%s", ip);
}

static int addrset_has(const addrset *s, const char *ip)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcasecmp(s->a[i], ip) == 0) return 1;
    return 0;
}

static int addrset_meets(const addrset *x, const addrset *y)
{
    for (size_t i = 0; i < x->n; i++)
        if (addrset_has(y, x->a[i])) return 1;
    return 0;
}

static cJSON *addrset_json(const addrset *s)
{
    if (!s->queried) return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < s->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s->a[i]));
    return a;
}

static const char *str_or_null(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static double num_or(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* An integer field, or dflt when missing, fractional or out of int's range: the control's
 * answer comes over the network, and casting an out-of-range double is undefined. */
static int int_or(const cJSON *o, const char *key, int dflt)
{
    double d = num_or(o, key, dflt);
    return d >= -2147483648.0 && d <= 2147483647.0 && d == (double)(int)d ? (int)d : dflt;
}

int vt_verdict_addr_class(const char *ip)
{
    unsigned char b[16];
    if (!ip) return 0;
    if (inet_pton(AF_INET, ip, b) == 1) {
        if (b[0] == 0 || b[0] == 127 || (b[0] == 169 && b[1] == 254) || b[0] >= 224) return 1;
        if (b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
            (b[0] == 100 && (b[1] & 0xc0) == 64))
            return 2;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, b) == 1) {
        static const unsigned char zero[16];
        if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) /* :: and ::1 */
            return 1;
        if (b[0] == 0xff || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)) /* multicast, fe80::/10 */
            return 1;
        if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 */
            return 2;
        if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) { /* ::ffff:v4 */
            char v4[INET_ADDRSTRLEN];
            if (inet_ntop(AF_INET, b + 12, v4, sizeof(v4))) return vt_verdict_addr_class(v4);
        }
        return 0;
    }
    return 0;
}

int vt_verdict_endpoint_host(const char *ep, char *host, size_t hostlen, int *port, int *https)
{
    int p = 0, tls = 0;
    if (!ep || !host || hostlen == 0) return -1;
    host[0] = 0;
    const char *s = strstr(ep, "://");
    if (s) {
        if (strncasecmp(ep, "https://", 8) == 0) {
            tls = 1;
            p = 443;
        } else if (strncasecmp(ep, "http://", 7) == 0) {
            p = 80;
        }
        s += 3;
        const char *at = s;
        /* userinfo: skip to after the last '@' before the path */
        for (const char *q = s; *q && *q != '/' && *q != '?' && *q != '#'; q++)
            if (*q == '@') at = q + 1;
        s = at;
    } else {
        s = ep;
    }
    const char *end;
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end) return -1;
        size_t n = (size_t)(end - s - 1);
        if (n == 0 || n >= hostlen) return -1;
        memcpy(host, s + 1, n);
        host[n] = 0;
        end++;
    } else {
        end = s;
        while (*end && *end != ':' && *end != '/' && *end != '?' && *end != '#')
            end++;
        size_t n = (size_t)(end - s);
        if (n == 0 || n >= hostlen) return -1;
        memcpy(host, s, n);
        host[n] = 0;
    }
    if (*end == ':') {
        char *e2;
        long v = strtol(end + 1, &e2, 10);
        if (e2 != end + 1 && v > 0 && v < 65536) p = (int)v;
    }
    if (port) *port = p;
    if (https) *https = tls;
    return 0;
}

/* The addresses a view of DNS gave for host: engine "system" (the probe's resolver) or the
 * others ("udp", "doh": the second resolvers). which: 0 system, 1 others, 2 any. */
static int no_such_name(const char *f);

static void dns_view(const cJSON *tk, const char *host, int which, addrset *out)
{
    const cJSON *q;
    memset(out, 0, sizeof(*out));
    cJSON_ArrayForEach(q, cJSON_GetObjectItemCaseSensitive(tk, "queries"))
    {
        const char *h = str_or_null(q, "hostname");
        const char *engine = str_or_null(q, "engine");
        if (!h || !host || strcasecmp(h, host) != 0 || !engine || !*engine) continue;
        int is_system = strcmp(engine, "system") == 0 || strcmp(engine, "getaddrinfo") == 0;
        if ((which == 0 && !is_system) || (which == 1 && is_system)) continue;
        out->queried = 1;
        const char *failure = str_or_null(q, "failure");
        const cJSON *a;
        size_t before = out->n;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(q, "answers"))
        {
            addrset_add(out, str_or_null(a, "ipv4"));
            addrset_add(out, str_or_null(a, "ipv6"));
        }
        /* A resolver says a name does not exist only when every query of it says so: an A
         * query that timed out beside an AAAA that found nothing (a censor dropping A queries)
         * is the timeout's, whichever answered first. */
        int worse = !out->failure || (no_such_name(out->failure) && !no_such_name(failure));
        if (!failure || out->n > before)
            out->answered = 1;
        else if (worse)
            out->failure = failure;
    }
    if (out->n) out->answered = 1;
}

/* The DNS injection check (x_dns_injection, lib/web.c): the addresses an address without a DNS
 * server "answered" for the name. Empty when nothing answered, or when the control gives one of
 * them (a real resolver runs there after all, and answered truthfully). */
static void injected_view(const cJSON *tk, const addrset *ctl, addrset *out, const char **server,
                          int *intercepted)
{
    memset(out, 0, sizeof(*out));
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(tk, "x_dns_injection");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(x, "query");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(x, "unlisted_query");
    *server = str_or_null(q, "resolver_address");
    /* A random name was answered there too (any rcode): every query on UDP 53 is answered on
     * the way, by a transparent DNS proxy (an ISP forcing its resolver), not only the names a
     * censor lists; what it says for the target is its resolver's answer, no proof. */
    *intercepted = cJSON_IsObject(u) &&
                   (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(u, "rcode")) ||
                    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(u, "answers")) > 0);
    if (!cJSON_IsObject(q)) return;
    out->queried = 1;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(q, "answers"))
    {
        addrset_add(out, str_or_null(a, "ipv4"));
        addrset_add(out, str_or_null(a, "ipv6"));
    }
    if (out->n && ctl->n && addrset_meets(out, ctl)) out->n = 0;
    if (*intercepted) out->n = 0;
}

/* Every failed connect failed on this device (no IPv6 route, no usable source address, a local
 * firewall, a socket that could not be made): the probe's own limits, not the network's. */
static int local_connect_failures(const cJSON *tk)
{
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "tcp_connect"))
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
        const char *f = str_or_null(st, "failure");
        if (!f) f = str_or_null(e, "failure");
        if (!f) continue;
        const char *ip = str_or_null(e, "ip");
        int v6 = ip && strchr(ip, ':');
        if (!((v6 && strcmp(f, "network_unreachable") == 0) ||
              strcmp(f, "address_not_available") == 0 || strcmp(f, "permission_denied") == 0 ||
              strncmp(f, "unknown_failure: cannot", 23) == 0))
            return 0;
        n++;
    }
    return n > 0;
}

/* A handshake cut the way censors cut them (methodology.md's SNI-swap rule): reset, timeout,
 * EOF. A server's alert or a certificate refused is the server's own answer. A broken pipe is a
 * reset too: the probe never shuts its sockets for writing, so a write fails with EPIPE only
 * once a reset closed the connection and an earlier read took its ECONNRESET (lab scenario 28:
 * curl's HTTP/2 request reset after the TLS handshake). */
static int is_interference(const char *f)
{
    return f && (strcmp(f, "connection_reset") == 0 || strcmp(f, "generic_timeout_error") == 0 ||
                 strcmp(f, "eof_error") == 0 || strcmp(f, "broken_pipe") == 0);
}

/* Whether a failure in phase is one a repeat can tell from a passing one (start_repeat tries it
 * again, vt_verdict_decide reads the answer): any connect failure but this device's own; a
 * handshake or request cut the way censors and lost packets cut them. */
static int repeat_applies(const cJSON *tk, const char *phase, const char *failure)
{
    if (strcmp(phase, "tcp") == 0) return !local_connect_failures(tk);
    return (strcmp(phase, "tls") == 0 || strcmp(phase, "http") == 0) && is_interference(failure);
}

/* A VPN handshake that failed the way a censor's drop or reset and a passing loss of packets
 * both make it fail (silence, a reset, an EOF), with nothing of the server in the run's
 * evidence that says otherwise: start_repeat measures it once more. Not after an answer that
 * was not the protocol's (replied), a failure inside TLS, an ICMP port unreachable, an OpenVPN
 * handshake without the server's key (each of these repeats as it is, a block or not), nor for
 * the port kind, whose silence proves nothing. ev: tk's vpn_evidence, or the decision's. */
static int vpn_repeat_applies(const cJSON *tk, const cJSON *ev)
{
    if (!cJSON_IsObject(ev) || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")))
        return 0;
    const char *proto = str_or_null(ev, "protocol");
    if (!proto || strcmp(proto, "port") == 0) return 0;
    static const char *const not_passing[] = {"replied", "tls_completed", "refused", "unkeyed"};
    for (size_t i = 0; i < sizeof(not_passing) / sizeof(not_passing[0]); i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, not_passing[i]))) return 0;
    return is_interference(str_or_null(tk, "failure"));
}

static int is_cert_failure(const char *f)
{
    return f &&
           (strcmp(f, "ssl_unknown_authority") == 0 || strcmp(f, "ssl_invalid_hostname") == 0 ||
            strcmp(f, "ssl_invalid_certificate") == 0);
}

/* A TLS handshake with verification that succeeded on an address from the probe's resolver:
 * the address proved it serves host (OONI's rescue of CDN and geo-DNS answers). sys NULL: on
 * any address. */
static int tls_valid_on(const cJSON *tk, const char *host, const addrset *sys)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(tk, "tls_handshakes"))
    {
        const char *sn = str_or_null(h, "server_name");
        const char *addr = str_or_null(h, "address");
        if (str_or_null(h, "failure") || !sn || strcasecmp(sn, host) != 0 || !addr ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "no_tls_verify")))
            continue;
        char ip[INET6_ADDRSTRLEN + 8];
        int port;
        if (!sys) return 1;
        if (vt_verdict_endpoint_host(addr, ip, sizeof(ip), &port, NULL) == 0 &&
            addrset_has(sys, ip))
            return 1;
    }
    return 0;
}

/* The first failed handshake with host as SNI: its address for the SNI-swap control. */
static int failed_handshake(const cJSON *tk, const char *host, char *ip, size_t iplen, int *port)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(tk, "tls_handshakes"))
    {
        const char *sn = str_or_null(h, "server_name");
        const char *addr = str_or_null(h, "address");
        if (!str_or_null(h, "failure") || !sn || strcasecmp(sn, host) != 0 || !addr) continue;
        if (vt_verdict_endpoint_host(addr, ip, iplen, port, NULL) == 0 && *port > 0) return 0;
    }
    return -1;
}

/* Where the page was redirected before it failed, when that is another host than host and the
 * control's requests never went there: the host of the request that failed with failure, or,
 * when the failure came before any request to the new host (its name did not resolve), of the
 * newest 3xx's Location. A censor answering a request with a redirect to its own blockpage host,
 * which then does not resolve or answer (Pakistan's and Indonesia's ISPs redirect so), makes the
 * page fail at that hop in whatever way; a site's own redirect (to www., to https) the control
 * follows too. */
static int redirected_away(const cJSON *tk, const cJSON *control, const char *host,
                           const char *failure, char *to, size_t tolen)
{
    const cJSON *req, *reqs = cJSON_GetObjectItemCaseSensitive(tk, "requests");
    const char *url = NULL;
    if (!failure || !host || int_or(tk, "x_redirects", 0) <= 0) return 0;
    cJSON_ArrayForEach(req, reqs)
    {
        const char *f = str_or_null(req, "failure");
        if (f && strcmp(f, failure) == 0) {
            url = str_or_null(cJSON_GetObjectItemCaseSensitive(req, "request"), "url");
            break;
        }
    }
    if (!url) {
        cJSON_ArrayForEach(req, reqs)
        {
            const cJSON *rs = cJSON_GetObjectItemCaseSensitive(req, "response");
            int code = int_or(rs, "code", 0);
            if (code >= 300 && code < 400) {
                /* header names as the server sent them: cJSON_GetObjectItem ignores case */
                const cJSON *l = cJSON_GetObjectItem(
                    cJSON_GetObjectItemCaseSensitive(rs, "headers"), "Location");
                url = cJSON_IsString(l) ? l->valuestring : NULL;
                break;
            }
        }
    }
    /* a relative Location has no "://": the same host */
    if (!url || !strstr(url, "://") || vt_verdict_endpoint_host(url, to, tolen, NULL, NULL) < 0 ||
        strcasecmp(to, host) == 0)
        return 0;
    char h[256];
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(control, "requests"))
    {
        const char *u = str_or_null(cJSON_GetObjectItemCaseSensitive(req, "request"), "url");
        if (u && vt_verdict_endpoint_host(u, h, sizeof(h), NULL, NULL) == 0 &&
            strcasecmp(h, to) == 0)
            return 0;
    }
    return 1;
}

/* Body bytes of an OONI body value (string, or {format: base64, data}); malloc'd. */
static unsigned char *body_bytes(const cJSON *b, size_t *len)
{
    *len = 0;
    if (cJSON_IsString(b) && b->valuestring) {
        size_t n = strlen(b->valuestring);
        unsigned char *p = malloc(n + 1);
        if (p) {
            memcpy(p, b->valuestring, n + 1);
            *len = n;
        }
        return p;
    }
    const char *data = str_or_null(b, "data");
    const char *fmt = str_or_null(b, "format");
    if (!data || !fmt || strcmp(fmt, "base64") != 0) return NULL;
    size_t n = strlen(data);
    if (n > (64u << 20)) return NULL;
    unsigned char *p = malloc(n / 4 * 3 + 4);
    if (!p) return NULL;
    int got = EVP_DecodeBlock(p, (const unsigned char *)data, (int)n);
    if (got < 0) {
        free(p);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes */
    while (n > 0 && data[n - 1] == '=' && got > 0) {
        n--;
        got--;
    }
    p[got] = 0; /* in the +4 slack: regexec (even with REG_STARTEND, under ASan) sees a string */
    *len = (size_t)got;
    return p;
}

/* The probe's resolver answered host with a CNAME that a DNS fingerprint names: the name. */
static const char *dns_cname_fingerprint(const cJSON *tk, const char *host, const vt_fp_set *fps,
                                         const vt_fp **fp)
{
    const cJSON *q, *a;
    if (!host) return NULL;
    cJSON_ArrayForEach(q, cJSON_GetObjectItemCaseSensitive(tk, "queries"))
    {
        const char *h = str_or_null(q, "hostname"), *engine = str_or_null(q, "engine");
        if (!h || strcasecmp(h, host) != 0 || !engine ||
            (strcmp(engine, "system") != 0 && strcmp(engine, "getaddrinfo") != 0))
            continue;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(q, "answers"))
        {
            const char *type = str_or_null(a, "answer_type");
            const char *name = str_or_null(a, "hostname");
            if (type && strcmp(type, "CNAME") == 0 && name && (*fp = vt_fp_match_dns(fps, name)))
                return name;
        }
    }
    return NULL;
}

/* An https URL whose host is host: "https://HOST[:port][/...]". */
static int https_url_of(const char *url, const char *host)
{
    if (!url || strncasecmp(url, "https://", 8) != 0) return 0;
    const char *h = url + 8;
    size_t n = strcspn(h, ":/?#");
    return strlen(host) == n && strncasecmp(h, host, n) == 0;
}

/* The first blockpage fingerprint (body, or a response header) in the responses. */
static const vt_fp *http_fingerprint(const cJSON *tk, const vt_fp_set *fps, const char *host)
{
    const cJSON *rq;
    if (!fps) return NULL;
    int verified = host && tls_valid_on(tk, host, NULL);
    cJSON_ArrayForEach(rq, cJSON_GetObjectItemCaseSensitive(tk, "requests"))
    {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(rq, "response");
        if (!cJSON_IsObject(resp)) continue;
        /* A page the site itself served over verified TLS is the site's, whatever it quotes (an
         * article about censorship may well show "http://warning.or.kr"): a blockpage there
         * would need the site's own certificate. */
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(rq, "request");
        if (verified && https_url_of(str_or_null(req, "url"), host)) continue;
        size_t len;
        unsigned char *b = body_bytes(cJSON_GetObjectItemCaseSensitive(resp, "body"), &len);
        const vt_fp *fp = b && len ? vt_fp_match_body(fps, b, len) : NULL;
        free(b);
        if (fp) return fp;
        const cJSON *hl;
        cJSON_ArrayForEach(hl, cJSON_GetObjectItemCaseSensitive(resp, "headers_list"))
        {
            const cJSON *n = cJSON_GetArrayItem(hl, 0), *v = cJSON_GetArrayItem(hl, 1);
            if (cJSON_IsString(n) && cJSON_IsString(v) &&
                (fp = vt_fp_match_header(fps, n->valuestring, v->valuestring)))
                return fp;
        }
    }
    return NULL;
}

/* Where a fingerprint matched: an address of the system resolver's, a CNAME it answered, or
 * an HTTP response. */
enum { FP_IN_ADDRESS, FP_IN_CNAME, FP_IN_HTTP };

/* The first blocking fingerprint in that order, given the system resolver's addresses sys for
 * host; *where and *what (the address or alias, NULL for HTTP) say where. */
static const vt_fp *fingerprint_in(const cJSON *tk, const vt_fp_set *fps, const char *host,
                                   const addrset *sys, int *where, const char **what)
{
    const vt_fp *fp = NULL;
    for (size_t i = 0; i < sys->n; i++)
        if ((fp = vt_fp_match_dns(fps, sys->a[i]))) {
            *where = FP_IN_ADDRESS;
            *what = sys->a[i];
            return fp;
        }
    if ((*what = dns_cname_fingerprint(tk, host, fps, &fp))) {
        *where = FP_IN_CNAME;
        return fp;
    }
    *where = FP_IN_HTTP;
    return http_fingerprint(tk, fps, host);
}

const vt_fp *vt_verdict_fingerprint(const cJSON *tk, const vt_fp_set *fps, const char *host,
                                    int *in_dns)
{
    *in_dns = 0;
    if (!fps || !cJSON_IsObject(tk)) return NULL;
    addrset sys;
    dns_view(tk, host, 0, &sys);
    int where;
    const char *what;
    const vt_fp *fp = fingerprint_in(tk, fps, host, &sys, &where, &what);
    *in_dns = fp && where != FP_IN_HTTP;
    return fp;
}

/* The rate (bits/s) from the bytes_received_cumulative samples of one transaction: the slope
 * from the first sample to the last. The first sample's bytes are left out: they arrived before
 * the clock could start (a whole TLS record of up to 16 KiB is delivered at once), which biases
 * bytes / (total - starttransfer) upwards on slow links. 0 without samples or when they span
 * under 50 ms (fast: the summary rate is as good), -1 when they span under 16 KiB. */
static double sampled_rate(const cJSON *events, double tid)
{
    const cJSON *e;
    double t_first = -1, b_first = 0, t_last = -1, b_last = 0;
    cJSON_ArrayForEach(e, events)
    {
        const char *op = str_or_null(e, "operation");
        if (!op || strcmp(op, "bytes_received_cumulative") != 0 ||
            num_or(e, "transaction_id", -1) != tid)
            continue;
        double t = num_or(e, "t", -1), b = num_or(e, "num_bytes", -1);
        if (t < 0 || b < 0) continue;
        if (t_first < 0 || t < t_first) {
            t_first = t;
            b_first = b;
        }
        if (t >= t_last) {
            t_last = t;
            b_last = b;
        }
    }
    if (t_first < 0) return 0;
    /* The rule's 16 KiB inside the slope itself: a slope over a few kilobytes (the tail after
     * one large first delivery) measures a round trip, not a rate. */
    if (t_last - t_first < 0.05) return 0; /* too fast to time: the summary rate will do */
    if (b_last - b_first < VT_VERDICT_THROTTLE_MIN_BYTES) return -1;
    return (b_last - b_first) * 8.0 / (t_last - t_first);
}

/* The target's download rate (bits/s) from its large resource, or 0 when not measured well. A
 * download cut by the timeout still gives a rate (bytes over the time spent). */
static double large_rate(const cJSON *tk, double *bytes_out)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(tk, "x_large_resource");
    *bytes_out = 0;
    if (!cJSON_IsObject(x)) return 0;
    double bytes = num_or(x, "bytes_received", 0);
    *bytes_out = bytes;
    if (bytes < VT_VERDICT_THROTTLE_MIN_BYTES) return 0;
    /* the final request (newest first: after a redirect, the 3xx comes after it) */
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(x, "requests"), 0);
    double tid = num_or(last, "transaction_id", -1);
    double r =
        tid >= 0 ? sampled_rate(cJSON_GetObjectItemCaseSensitive(tk, "network_events"), tid) : 0;
    if (r > 0) return r;
    if (r < 0) return 0; /* sampled, too little: the summary rate would be worse */
    double bps = num_or(x, "throughput_bps", 0);
    if (bps > 0) return bps;
    const char *f = str_or_null(x, "failure");
    double rt = num_or(x, "x_http_runtime", 0) / 1e9;
    if (f && strcmp(f, "generic_timeout_error") == 0 && rt > 0) return bytes * 8.0 / rt;
    return 0;
}

/* One download of the SNI test (x_sni_test.target / .control, lib/web.c): its rate in bits/s
 * as large_rate measures one, or 0 when too little came to say. */
static double sni_side_rate(const cJSON *side)
{
    if (!cJSON_IsObject(side)) return 0;
    double bytes = num_or(side, "bytes_received", 0);
    if (bytes < VT_VERDICT_THROTTLE_MIN_BYTES) return 0;
    const char *f = str_or_null(side, "failure");
    /* cut by its time limit or finished: anything else (a reset midway) is no rate */
    if (f && strcmp(f, "generic_timeout_error") != 0) return 0;
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(side, "network_events"), *e;
    double tid = -1;
    cJSON_ArrayForEach(e, events)
    {
        const char *op = str_or_null(e, "operation");
        if (op && strcmp(op, "bytes_received_cumulative") == 0) {
            tid = num_or(e, "transaction_id", -1);
            break;
        }
    }
    double r = tid >= 0 ? sampled_rate(events, tid) : 0;
    if (r > 0) return r;
    if (r < 0) return 0;
    double bps = num_or(side, "throughput_bps", 0);
    if (bps > 0) return bps;
    double rt = num_or(side, "x_http_runtime", 0) / 1e9;
    return f && rt > 0 ? bytes * 8.0 / rt : 0;
}

static int sni_pair_slowed(double named, double neutral)
{
    return named > 0 && neutral > 0 && named < VT_VERDICT_THROTTLE_RATIO * neutral &&
           named < VT_VERDICT_THROTTLE_MAX_BPS;
}

/* The SNI test's two rates: the download naming the target (*named) and the one naming a
 * neutral site (*neutral), run at once from the same server. 1 when both were measured.
 * *slowed: the named one was far slower, and again in the repeated pair (lib/web.c runs it
 * only then; without it, as when the task's time ran out, a single pair is not enough), at a
 * similar rate. */
static int sni_test_rates(const cJSON *tk, double *named, double *neutral, int *slowed)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(tk, "x_sni_test");
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(x, "repeat");
    *named = sni_side_rate(cJSON_GetObjectItemCaseSensitive(x, "target"));
    *neutral = sni_side_rate(cJSON_GetObjectItemCaseSensitive(x, "control"));
    double named2 = sni_side_rate(cJSON_GetObjectItemCaseSensitive(rep, "target"));
    double neutral2 = sni_side_rate(cJSON_GetObjectItemCaseSensitive(rep, "control"));
    /* and at about the same rate both times (within a factor of 2): a policer holds its rate,
     * a flow starved by chance gets whatever it gets */
    *slowed = sni_pair_slowed(*named, *neutral) && sni_pair_slowed(named2, neutral2) &&
              named2 <= 2 * *named && *named <= 2 * named2;
    return *named > 0 && *neutral > 0;
}

/* The large resource's transfer cut off once its connection was up: a reset, an EOF before the
 * end, or a silence that lasted to the timeout (nothing for half the download's time and at least
 * a second: a body stopped after its first bytes, or a response that never came, as when a
 * censor drops everything after the first 16 KB and the first TLS record is never complete).
 * Returns 1 with *bytes (body bytes received) and *how (the failure) when it was cut so; 0 when
 * the download ended otherwise (finished, capped, never connected, or slow to the end: the
 * throttling rule's case). */
static int large_cut(const cJSON *tk, double *bytes, const char **how)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(tk, "x_large_resource");
    const char *f = str_or_null(x, "failure"), *url = str_or_null(x, "url");
    *bytes = num_or(x, "bytes_received", 0);
    *how = f;
    if (!f || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "download_capped"))) return 0;
    int reset = strcmp(f, "connection_reset") == 0 || strcmp(f, "eof_error") == 0;
    if (!reset && strcmp(f, "generic_timeout_error") != 0) return 0;
    /* the final request (newest first: after a redirect, the 3xx comes after it) */
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(x, "requests"), 0);
    const cJSON *tim = cJSON_GetObjectItemCaseSensitive(last, "x_timings");
    /* up: the TLS handshake (or, over plain http, the TCP connect) of this request was done */
    double up =
        num_or(tim, url && strncasecmp(url, "https:", 6) == 0 ? "appconnect" : "connect", -1);
    if (*bytes <= 0 && !(up > 0)) return 0; /* never connected: not a cut transfer */
    if (reset) return 1;
    double tid = num_or(last, "transaction_id", -1), t0 = num_or(last, "t0", -1),
           t1 = num_or(last, "t", -1), t_byte = -1;
    if (t0 < 0 || t1 <= t0) return 0;
    /* When the count last grew: the earliest sample that already holds the final count (the
     * transfer's end writes one more sample with the same count, at the end) */
    const cJSON *e;
    double most = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "network_events"))
    {
        const char *op = str_or_null(e, "operation");
        double b = num_or(e, "num_bytes", 0), t = num_or(e, "t", -1);
        if (tid < 0 || !op || strcmp(op, "bytes_received_cumulative") != 0 ||
            num_or(e, "transaction_id", -1) != tid || b <= 0 || t < 0)
            continue;
        if (b > most || (b == most && t < t_byte)) {
            most = b;
            t_byte = t;
        }
    }
    if (t_byte < 0) {
        if (*bytes > 0) return 0; /* bytes came, but when is not known */
        t_byte = t0 + up;
    }
    double silence = t1 - t_byte;
    return silence >= VT_VERDICT_CUT_SILENCE_MIN_S &&
           silence >= VT_VERDICT_CUT_SILENCE_SHARE * (t1 - t0);
}

/* ---- the canaries ----------------------------------------------------------------------- */

void vt_verdict_ctx_init(vt_verdict_ctx *c)
{
    memset(c, 0, sizeof(*c));
}

static int keys_ok(const cJSON *tk)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(tk, "failure_phase");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(tk, "failure");
    if (ph && !cJSON_IsNull(ph)) return 0;
    return !f || cJSON_IsNull(f);
}

void vt_verdict_note_canary(vt_verdict_ctx *c, const vt_target *t, const cJSON *tk)
{
    c->n_canaries++;
    if (!tk || !keys_ok(tk)) return;
    c->n_canaries_ok++;
    double bytes, bps = large_rate(tk, &bytes);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(tk, "x_large_resource");
    if (bps > c->canary_bps && !str_or_null(x, "failure")) c->canary_bps = bps;
    char host[256];
    int https = 0;
    if (!c->swap_sni[0] && t && t->n_endpoints &&
        vt_verdict_endpoint_host(t->endpoints[0], host, sizeof(host), NULL, &https) == 0 &&
        vt_verdict_addr_class(host) == 0 && !strchr(host, ':')) {
        unsigned char b[4];
        int tls = https || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t->options, "tls"));
        if (tls && inet_pton(AF_INET, host, b) != 1)
            snprintf(c->swap_sni, sizeof(c->swap_sni), "%s", host);
    }
}

/* ---- the decision ----------------------------------------------------------------------- */

typedef struct decision {
    const char *verdict;
    const char *phase;
    char reason[768];
    const vt_fp *fp;
} decision;

static void set(decision *d, const char *verdict, const char *phase, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set(decision *d, const char *verdict, const char *phase, const char *fmt, ...)
{
    va_list ap;
    d->verdict = verdict;
    d->phase = phase;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

typedef struct control_view {
    int have;
    const char *phase; /* the control's failure_phase, NULL when it worked */
    const char *failure;
    int tcp_ok; /* the control connected */
    int tls_ok; /* the control completed a verified TLS handshake (or had no TLS) */
    long status;
    const char *title;
} control_view;

static void control_read(const cJSON *c, control_view *v)
{
    memset(v, 0, sizeof(*v));
    if (!cJSON_IsObject(c)) return;
    v->have = 1;
    v->phase = str_or_null(c, "failure_phase");
    v->failure = str_or_null(c, "failure");
    v->status = (long)int_or(c, "http_status", 0);
    v->title = str_or_null(c, "title");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "tcp_connect"))
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "success"))) v->tcp_ok = 1;
    }
    if (!v->phase || strcmp(v->phase, "tls") == 0 || strcmp(v->phase, "http") == 0) v->tcp_ok = 1;
    v->tls_ok = !v->phase || strcmp(v->phase, "http") == 0;
}

/* A DNS failure that says the name does not exist (not one that merely failed). */
static int no_such_name(const char *f)
{
    return f && (strcmp(f, "dns_nxdomain_error") == 0 || strcmp(f, "dns_no_answer") == 0);
}

/* A failure to reach the resolver at all (its port closed: an ICMP port unreachable, or DNS
 * over TCP refused; no route to it): about the resolver or the path to it, not about the name.
 * A censor that blocks a name makes the resolver answer (NXDOMAIN, an address of its own,
 * SERVFAIL) or drops the query (a timeout); those stay evidence. */
static int resolver_unreachable(const char *f)
{
    return f && (strcmp(f, "connection_refused") == 0 || strcmp(f, "network_unreachable") == 0 ||
                 strcmp(f, "host_unreachable") == 0);
}

static int says_no_such_name(const addrset *v)
{
    return v->queried && !v->n && no_such_name(v->failure);
}

/* Every connect the probe made to an address of sys failed (and it made one). */
static int connects_failed_on(const cJSON *tk, const addrset *sys)
{
    const cJSON *e;
    int tried = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "tcp_connect"))
    {
        const char *ip = str_or_null(e, "ip");
        if (!ip || !addrset_has(sys, ip)) continue;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(e, "status"), "success")))
            return 0;
        tried = 1;
    }
    return tried;
}

static const char *dns_consistency(const cJSON *tk, const vt_verdict_inputs *in, addrset *sys,
                                   addrset *alt, addrset *ctl, int *bogon)
{
    dns_view(tk, in->host, 0, sys);
    dns_view(tk, in->host, 1, alt);
    dns_view(in->control, in->host, 2, ctl);
    *bogon = 0;
    if (!sys->queried) return NULL;
    /* The reference view: the control's when it resolved, else the second resolver's (which
     * the censor may tamper with too). */
    const addrset *ref = ctl->n ? ctl : alt->n ? alt : NULL;
    int ref_private = 0, sys_strict_bogon = 0, sys_private = 0;
    for (size_t i = 0; ref && i < ref->n; i++)
        ref_private |= vt_verdict_addr_class(ref->a[i]) != 0;
    for (size_t i = 0; i < sys->n; i++) {
        int c = vt_verdict_addr_class(sys->a[i]);
        sys_strict_bogon |= c == 1;
        sys_private |= c == 2;
        if (c == 1 && !(ref && addrset_has(ref, sys->a[i]))) *bogon = 1;
        if (c == 2 && ref && !ref_private) *bogon = 1;
    }
    if (!alt->queried && !ctl->queried) return NULL; /* nothing to compare with */
    if (!ref) {
        if (!sys->n) return "both_failed";
        /* No reference resolved the name. A valid certificate proves the address anyway; a
         * reference that says the name does not exist makes the answer here suspect; one that
         * merely failed (a timeout, SERVFAIL, a blocked DoH server) says nothing. */
        if (tls_valid_on(tk, in->host, sys)) return "consistent_by_tls";
        if (says_no_such_name(ctl) || says_no_such_name(alt)) return "inconsistent";
        return NULL;
    }
    if (!sys->n) return resolver_unreachable(sys->failure) ? NULL : "inconsistent";
    if (addrset_meets(sys, ref)) return "consistent";
    /* Local resolvers agree; the control may see another CDN node. Not when they agree on an
     * address no public site has (both intercepted, e.g. all of port 53 redirected): then the
     * control's answer decides. Nor when that address cannot be connected to while the control
     * connected to its own: a CDN's other node serves the site, and an on-path injector (the
     * GFW's) forges the same answer for every resolver the query crosses the border to, with an
     * address that does not answer (lab scenario 32). */
    control_view cv;
    control_read(in->control, &cv);
    if (ref == ctl && addrset_meets(sys, alt) && !sys_strict_bogon &&
        !(sys_private && !ref_private) && !(cv.tcp_ok && connects_failed_on(tk, sys)))
        return "consistent";
    if (tls_valid_on(tk, in->host, sys)) return "consistent_by_tls";
    return "inconsistent";
}

static int same_page(const cJSON *tk, const control_view *cv)
{
    long st = (long)int_or(tk, "http_status", 0);
    const char *title = str_or_null(tk, "title");
    if (st && cv->status && st != cv->status) return 0;
    if (title && cv->title && strcmp(title, cv->title) != 0) return 0;
    /* A title on one side only is a difference too (a frameset or script blockpage has none),
     * an empty one the same as none. */
    if ((title && *title) != (cv->title && *cv->title)) return 0;
    return 1;
}

/* tcp_connect[].status.blocked of the failed connects (lib/tcp.c writes false for a connect that
 * worked and null for a failure), in OONI's meaning (web_connectivity's ComputeTCPBlocking):
 * true when the control connected to the same IP and port, false when its connect there failed
 * too. OONI's control connects to the probe's own addresses; ours resolves for itself, so where
 * it has no entry for that address the verdict decides for the measured host's addresses: true
 * under tcp_blocking, false under down. Otherwise, and always under probe_offline ("this says
 * nothing"), null: unknown, as OONI leaves it without a control. Under down no entry is true. */
static void mark_tcp_blocked(cJSON *tk, const cJSON *control, const char *verdict, const char *host,
                             const addrset *sys)
{
    cJSON *e;
    int offline = strcmp(verdict, "probe_offline") == 0;
    int down = strcmp(verdict, "down") == 0;
    int tcp_blocking = strcmp(verdict, "tcp_blocking") == 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "tcp_connect"))
    {
        cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
        const char *ip = str_or_null(e, "ip");
        double port = num_or(e, "port", -1);
        if (!cJSON_IsObject(st) || !ip) continue;
        if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(st, "success"))) continue;
        int known = 0, blocked = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(control, "tcp_connect"))
        {
            const char *cip = str_or_null(c, "ip");
            if (!cip || strcasecmp(cip, ip) != 0 || num_or(c, "port", -2) != port) continue;
            const cJSON *cst = cJSON_GetObjectItemCaseSensitive(c, "status");
            known = 1;
            blocked |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cst, "success"));
        }
        int of_host = addrset_has(sys, ip) || (host && strcasecmp(host, ip) == 0);
        cJSON *v;
        if (offline)
            v = cJSON_CreateNull();
        else if (down)
            v = cJSON_CreateFalse();
        else if (known)
            v = cJSON_CreateBool(blocked);
        else if (of_host && tcp_blocking)
            v = cJSON_CreateTrue();
        else
            v = cJSON_CreateNull();
        if (!v) continue;
        if (cJSON_GetObjectItemCaseSensitive(st, "blocked"))
            cJSON_ReplaceItemInObjectCaseSensitive(st, "blocked", v);
        else
            cJSON_AddItemToObject(st, "blocked", v);
    }
}

/* A VPN measurement's failed handshake, with the run's evidence (lib/vpn_verdict.c) and the
 * control's connect to a TCP port of that address: address, port or protocol blocking, down,
 * or inconclusive. The order and the reasons are in docs/methodology.md. */
static void vpn_decide(decision *d, const cJSON *tk, const cJSON *ev, const control_view *cv,
                       const char **blocking, const char **reason)
{
    const char *phase = str_or_null(tk, "failure_phase");
    const char *failure = str_or_null(tk, "failure");
    const char *addr = str_or_null(ev, "address");
    const char *proto = str_or_null(ev, "protocol");
    const char *tr = str_or_null(ev, "transport");
    const char *cin = str_or_null(ev, "control_input");
    int port = int_or(ev, "port", 0);
    int replied = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "replied"));
    int connected = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "connected"));
    int tls_completed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "tls_completed"));
    int refused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "refused"));
    int unkeyed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "unkeyed"));
    int silent = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "address_silent"));
    int n_same = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "same_port"));
    int n_up = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "address_up"));
    int n_else = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "port_elsewhere"));
    int n_mimic = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "mimic_blocked"));
    int n_failed_at = int_or(ev, "port_failed_up_addresses", 0);
    int tried = int_or(ev, "ports_tried_at_address", 0);
    int ctl_up = cin && cv->have && cv->tcp_ok, ctl_down = cin && cv->have && !cv->tcp_ok;
    int tcp = tr && strcmp(tr, "tcp") == 0;
    *blocking = *reason = NULL;
    if (!addr || !proto || !tr) return;
    if (!failure) failure = "failure";
    if (strcmp(proto, "port") == 0) proto = "the port probe";
    if (replied) {
        set(d, "inconclusive", NULL,
            "%s:%d answered the %s handshake, but not with a valid reply (%s): the server "
            "does not speak the protocol as expected, which is not blocking.",
            addr, port, proto, failure);
        return;
    }
    if (tls_completed) {
        set(d, "inconclusive", NULL,
            "%s:%d completed the TLS handshake, then the %s exchange inside it failed (%s): a "
            "censor on the path cannot read inside TLS, so this is the server's answer (not a "
            "%s server, or misconfigured), not blocking.",
            addr, port, proto, failure, proto);
        *reason = "failed_inside_tls";
        return;
    }
    if (refused) {
        /* An ICMP port unreachable: nothing listens there, or a filter says so in the host's
         * name. Never blocking evidence; down when the control cannot reach the host either. */
        if (ctl_down && silent) {
            set(d, "down", phase,
                "%s:%d/%s answered with an ICMP port unreachable (%s), nothing else at %s "
                "answers from here, and the control cannot reach it either (%s): the server is "
                "down, not blocked.",
                addr, port, tr, failure, addr, cin);
            return;
        }
        set(d, "inconclusive", NULL,
            "%s:%d/%s answered with an ICMP port unreachable (%s): nothing listens on that port, "
            "or a filter answered in the host's name; the two cannot be told apart from here.",
            addr, port, tr, failure);
        *reason = "udp_port_refused";
        return;
    }
    if (n_mimic) {
        set(d, "tls_blocking", phase,
            "The %s handshake with %s:%d/%s got no answer (%s), and in the same run a datagram "
            "shaped like it went unanswered on that port where other datagrams were answered: "
            "the protocol is filtered (deep packet inspection).",
            proto, addr, port, tr, failure);
        *blocking = "protocol";
        return;
    }
    if ((connected || n_same) && unkeyed) {
        set(d, "inconclusive", NULL,
            "%s:%d/%s accepts connections from here, but the %s handshake, sent without a "
            "tls-auth or tls-crypt key, failed with nothing back (%s): a server that requires "
            "such a key drops it or closes, so this cannot be told from protocol filtering; a "
            "target with the server's key can tell.",
            addr, port, tr, proto, failure);
        *reason = "no_tls_auth_key";
        return;
    }
    if (connected || n_same) {
        set(d, "tls_blocking", phase,
            "%s:%d/%s carries other traffic from here (%s), but the %s handshake fails (%s): "
            "the protocol is filtered (deep packet inspection), or the server no longer speaks "
            "it.",
            addr, port, tr, connected ? "the connection was made" : "another probe was answered",
            proto, failure);
        *blocking = "protocol";
        return;
    }
    if (n_failed_at >= 2 || (n_up && n_failed_at >= 1)) {
        set(d, "tcp_blocking", phase,
            "Nothing came back from %s:%d/%s (%s); the same port also fails from here at %d "
            "other address%s that answer%s on other ports%s: the port is blocked.",
            addr, port, tr, failure, n_failed_at, n_failed_at == 1 ? "" : "es",
            n_failed_at == 1 ? "s" : "", n_up ? ", and this address answers on other ports" : "");
        *blocking = "port";
        return;
    }
    if (n_up) {
        if (tcp && ctl_up) {
            set(d, "tcp_blocking", phase,
                "Connections to %s:%d fail from here (%s) while the control connects, and this "
                "address answers here on other ports: the port is blocked.",
                addr, port, failure);
            *blocking = "port";
            return;
        }
        if (tcp && ctl_down) {
            set(d, "down", phase,
                "%s:%d cannot be reached from here (%s), nor from the control, while the "
                "address answers on other ports: the service is down, not blocked.",
                addr, port, failure);
            return;
        }
        set(d, "inconclusive", NULL,
            "%s answers from here on other ports, but not on %d/%s (%s): the port may be "
            "blocked or the service down; nothing in this run tells which.",
            addr, port, tr, failure);
        *reason = "port_unanswered_host_up";
        return;
    }
    if (!silent) {
        /* the same protocol answered at this address:port to another measurement */
        set(d, "inconclusive", NULL,
            "The %s handshake with %s:%d/%s failed (%s), but the same server answered it to "
            "another measurement of this run: not blocking, possibly a transient failure or a "
            "setting of this target.",
            proto, addr, port, tr, failure);
        *reason = "answered_in_run";
        return;
    }
    /* Nothing at the address answered in this run. */
    if (ctl_up && (n_else || tried >= 2)) {
        set(d, "tcp_blocking", phase,
            "Nothing at %s answers from here (%s; %d port%s tried%s), while the control "
            "connects to it (%s): the address is blocked.",
            addr, failure, tried, tried == 1 ? "" : "s",
            n_else ? ", and the same port works at other addresses" : "", cin);
        *blocking = "address";
        return;
    }
    if (ctl_up) {
        set(d, "tcp_blocking", phase,
            "%s:%d/%s fails from here (%s) while the control connects (%s): it is blocked; "
            "with one port tried, by address or by port cannot be told.",
            addr, port, tr, failure, cin);
        return;
    }
    if (ctl_down) {
        set(d, "down", phase,
            "Nothing at %s answers from here (%s), nor from the control (%s): the server is "
            "down, not blocked.",
            addr, failure, cin);
        return;
    }
    set(d, "inconclusive", NULL,
        "Nothing at %s answers from here (%s)%s; without a control that reaches it, a blocked "
        "address cannot be told from a server that is down.",
        addr, failure, n_else ? ", though the same port works at other addresses" : "");
    *reason = "address_unreachable_no_control";
    return;
}

/* The repeats of a failed connect, handshake or request (start_repeat): how many ran and how
 * many of them failed. "failures" lists each one's failure (null: it worked), the first
 * included; without it (a measurement from before the list, or out of memory building it) the
 * repeat object is the one repeat. */
static void repeat_counts(const cJSON *rp, int *n, int *failed)
{
    *n = *failed = 0;
    if (!cJSON_IsObject(rp)) return;
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(rp, "failures"), *f;
    if (cJSON_IsArray(fs) && cJSON_GetArraySize(fs) > 0) {
        cJSON_ArrayForEach(f, fs)
        {
            if (*n >= 1000) break; /* a hostile list: enough to count */
            (*n)++;
            *failed += cJSON_IsString(f) && f->valuestring[0];
        }
        return;
    }
    *n = 1;
    *failed = str_or_null(rp, "failure") != NULL;
}

/* The first repeat worked: the failure did not repeat at once. */
static int first_repeat_worked(const cJSON *rp)
{
    return cJSON_IsObject(rp) && !str_or_null(rp, "failure");
}

/* How often repeats worked, for a reason: "a moment later", "4 times in a row". */
static void repeat_times(char *out, size_t n, int rep_n)
{
    if (rep_n > 1)
        snprintf(out, n, "%d times in a row", rep_n);
    else
        snprintf(out, n, "a moment later");
}

void vt_verdict_decide(cJSON *tk, const vt_verdict_inputs *in)
{
    decision d = {0};
    int rep_n, rep_failed, intermittent = 0, vpn_intermittent = 0;
    repeat_counts(in->repeat, &rep_n, &rep_failed);
    control_view cv;
    addrset sys, alt, ctl;
    int bogon = 0;
    const char *host = in->host ? in->host : "the site";
    const char *phase = str_or_null(tk, "failure_phase");
    const char *failure = str_or_null(tk, "failure");
    const cJSON *fph = cJSON_GetObjectItemCaseSensitive(tk, "failure_phase");
    int has_phase_key = fph != NULL;
    if (!phase && !has_phase_key && failure) phase = "unknown";
    control_read(in->control, &cv);
    /* VPN kinds write "reachable"; their verdict also says what is blocked ("blocking") */
    int is_vpn = cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(tk, "reachable"));
    cJSON *vpn_ev = cJSON_DetachItemFromObjectCaseSensitive(tk, "vpn_evidence");
    const char *vpn_blocking = NULL, *vpn_reason = NULL;
    const char *cons = dns_consistency(tk, in, &sys, &alt, &ctl, &bogon);
    const char *swap_failure = NULL;
    int swap_run = cJSON_IsObject(in->sni_swap);
    if (swap_run) swap_failure = str_or_null(in->sni_swap, "failure");
    double target_bytes = 0, target_bps = large_rate(tk, &target_bytes);
    double ratio = 0;
    double sni_named = 0, sni_neutral = 0;
    int sni_slowed = 0;
    int sni_measured = sni_test_rates(tk, &sni_named, &sni_neutral, &sni_slowed);
    addrset inj;
    const char *inj_server = NULL;
    int inj_intercepted = 0;
    injected_view(tk, &ctl, &inj, &inj_server, &inj_intercepted);

    /* Canaries: when none reached its site, the probe's own network is down. */
    int canaries_known = in->ctx && in->ctx->n_canaries > 0;
    if (canaries_known && in->ctx->n_canaries_ok == 0) {
        set(&d, "probe_offline", NULL,
            "None of the %zu reference sites could be reached either, so this device's own "
            "connection was not working: this says nothing about %s.",
            in->ctx->n_canaries, host);
        goto out;
    }

    /* DNS injection: an answer from an address where no DNS server runs was forged on the
     * path, and the network's resolver gave (one of) the same addresses: whatever happened
     * after, on that address, is the forgery's doing (the GFW's forged addresses are often
     * real, unrelated services, which answer with a certificate for another name). Unless an
     * HTTPS site worked on the address: its certificate proved it the site's. A plain-HTTP
     * page proves nothing, whoever served it. */
    if (inj.n && (phase || !in->https) && addrset_meets(&sys, &inj)) {
        set(&d, "dns_blocking", "dns",
            "DNS answers for %s are forged on the way: the name, asked of an address where no "
            "DNS server runs (%s), was answered with %s, an address this network's resolver "
            "gave too.",
            host, inj_server ? inj_server : "the collector's", inj.a[0]);
        goto out;
    }

    /* VPN kinds: a silence that proves nothing, said so by the kind itself (a WireGuard server
     * does not answer a key it does not know; many UDP services answer nothing). */
    const char *inc = str_or_null(tk, "inconclusive_reason");
    if (inc && !phase && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable"))) {
        if (strcmp(inc, "no_provisioned_key") == 0)
            set(&d, "inconclusive", NULL,
                "%s did not answer the WireGuard handshake, which is what a WireGuard server "
                "does for a key it does not know: without a key provisioned on that server, "
                "blocking cannot be told from normal behaviour.",
                host);
        else
            set(&d, "inconclusive", NULL,
                "%s did not answer (%s); its silence cannot tell blocking from normal "
                "behaviour.",
                host, inc);
        goto out;
    }

    /* VPN kinds: a failed handshake with the run's evidence (lib/vpn_verdict.c). Measured again
     * once the run was over (start_repeat_vpn): when that worked each time, a passing failure;
     * when it worked and then failed again, intermittent, decided as a failure that repeats. */
    if (is_vpn && cJSON_IsObject(vpn_ev)) {
        int vrep_first_ok = vpn_repeat_applies(tk, vpn_ev) && first_repeat_worked(in->repeat);
        if (vrep_first_ok && !rep_failed) {
            char times[40];
            repeat_times(times, sizeof(times), rep_n);
            set(&d, "inconclusive", phase,
                "The handshake with %s failed (%s), but the same measurement worked when tried "
                "again %s: a passing failure of the network, not a block.",
                str_or_null(in->repeat, "address") ? str_or_null(in->repeat, "address") : host,
                failure ? failure : "failure", times);
            goto out;
        }
        intermittent = vrep_first_ok && rep_failed > 0;
        vpn_decide(&d, tk, vpn_ev, &cv, &vpn_blocking, &vpn_reason);
        if (d.verdict) {
            /* the reason says it comes and goes whatever vpn_decide's phase */
            vpn_intermittent = intermittent;
            goto out;
        }
        intermittent = 0;
    }

    /* Fingerprints: a known censor's DNS answer or blockpage. */
    int fp_where;
    const char *fp_what;
    if (in->fps && (d.fp = fingerprint_in(tk, in->fps, in->host, &sys, &fp_where, &fp_what))) {
        if (fp_where == FP_IN_ADDRESS)
            set(&d, "dns_blocking", "dns",
                "The network's DNS answered %s for %s, an address known to belong to "
                "censorship equipment (%s).",
                fp_what, host, d.fp->name);
        else if (fp_where == FP_IN_CNAME)
            set(&d, "dns_blocking", "dns",
                "The network's DNS answered %s with an alias for %s, a host known to serve "
                "censorship blockpages (%s).",
                host, fp_what, d.fp->name);
        else
            set(&d, "http_blocking", "http", "The page received for %s is a known blockpage (%s).",
                host, d.fp->name);
        goto out;
    }

    if (cons && strcmp(cons, "inconsistent") == 0) {
        if (!phase && !in->https && cv.have && !cv.phase && same_page(tk, &cv)) {
            set(&d, "ok", NULL,
                "%s loaded normally; its DNS answer differs from the control's, as is usual for "
                "sites served from many places.",
                host);
        } else if (!phase && !in->https && !(cv.have && !cv.phase)) {
            set(&d, "inconclusive", NULL,
                "%s loaded, but from an address other resolvers do not give, and no control "
                "page was available to compare it with.",
                host);
        } else {
            const char *f = sys.failure ? sys.failure : failure;
            set(&d, "dns_blocking", "dns",
                sys.n ? "The network's DNS gave %s an address (%s) that other resolvers do not "
                        "give%s: the name is redirected."
                : no_such_name(f) ? "The network's DNS said %s does not exist (%s), while other "
                                    "resolvers found it%s."
                                  : "The network's DNS failed for %s (%s), while other resolvers "
                                    "found it%s.",
                host, sys.n ? sys.a[0] : (f ? f : "no answer"),
                bogon ? ", and that address cannot be a public site" : "");
        }
        goto out;
    }
    if (cons && strcmp(cons, "both_failed") == 0 && phase && strcmp(phase, "dns") == 0) {
        const char *f = sys.failure ? sys.failure : failure;
        /* Down only when every resolver asked says the name does not exist: a reference that
         * timed out leaves an injected NXDOMAIN and a gone site looking the same. */
        if (no_such_name(f) && (!alt.queried || says_no_such_name(&alt)) &&
            (!ctl.queried || says_no_such_name(&ctl)))
            set(&d, "down", "dns",
                "The name %s does not resolve anywhere (%s): the site is gone "
                "or the name is wrong, not blocked.",
                host, f);
        else
            set(&d, "inconclusive", "dns",
                "No resolver could answer for %s (%s), so blocking "
                "and an outage cannot be told apart.",
                host, f ? f : "no answer");
        goto out;
    }

    if (!phase) {
        /* A transfer cut once it passed a few kilobytes, while a reference site's large
         * download completed in the same run (Russia's TSPU has frozen connections to some
         * hosting networks after 16-20 KB since 2024): the site cannot be used, however well
         * its first page loads. */
        const char *how = NULL;
        double cut_bytes = 0;
        if (in->ctx && in->ctx->canary_bps > 0 && large_cut(tk, &cut_bytes, &how)) {
            set(&d, "http_blocking", "http",
                "%s answers, but its large download stopped after %.1f kB of content (%s) "
                "while a reference site's download completed from here in the same run: "
                "transfers from it are cut off once they begin.",
                host, cut_bytes / 1000, how);
            goto out;
        }
        if (target_bps > 0 && in->ctx && in->ctx->canary_bps > 0) {
            ratio = target_bps / in->ctx->canary_bps;
            /* The canary's download ran alone; this one may have shared the link with other
             * targets' downloads (x_concurrent_downloads: their mean number while it ran;
             * x_concurrent_bps: what they received together meanwhile). When together they
             * reached half the canary's rate, the link was full and each got its share (TCP
             * shares unevenly: one of eight got 118 kbit/s of a full 2 Mbit/s in the lab), which
             * is no throttling. A policer keeps the sum low (4 downloads held to 128 kbit/s on a
             * 2 Mbit/s link: a quarter of it) and stays throttled. Without the sum (older
             * measurements), this one's rate times their number stands in for it. */
            const cJSON *lr = cJSON_GetObjectItemCaseSensitive(tk, "x_large_resource");
            double shared = num_or(lr, "x_concurrent_downloads", 1);
            if (!(shared >= 1)) shared = 1;
            double together = num_or(lr, "x_concurrent_bps", target_bps * shared);
            int link_full = shared > 1 && together >= VT_VERDICT_SHARED_BUSY * in->ctx->canary_bps;
            if (ratio < VT_VERDICT_THROTTLE_RATIO && target_bps < VT_VERDICT_THROTTLE_MAX_BPS &&
                !link_full) {
                set(&d, "throttled", "http",
                    "%s works but downloads at only %.0f kbit/s, while a reference site "
                    "reached %.0f kbit/s from here in the same run (%.0f times faster): it is "
                    "slowed down.",
                    host, target_bps / 1000, in->ctx->canary_bps / 1000, 1 / ratio);
                goto out;
            }
        }
        /* The SNI test: the same download from the collector's server at the same moment,
         * once naming the target and once a neutral site. Only the name differs, so a named
         * download far slower than the neutral one is the network slowing that name (a link
         * shared by the two gives each about half, far from a quarter), when a second pair
         * says the same (one flow of two stalled by a loss does not repeat). */
        if (sni_slowed) {
            set(&d, "throttled", "tls",
                "%s works, but a download whose TLS handshake named it ran at only %.0f kbit/s, "
                "while the same download from the same server at the same time, naming another "
                "site, reached %.0f kbit/s (%.0f times faster): traffic naming %s is slowed "
                "down.",
                host, sni_named / 1000, sni_neutral / 1000, sni_neutral / sni_named, host);
            goto out;
        }
        if (!in->https && cv.have && !cv.phase && !same_page(tk, &cv)) {
            set(&d, "http_blocking", "http",
                "%s answered here with a different page than the control saw (status %ld, "
                "title differs or status differs): possibly a blockpage not yet known.",
                host, (long)int_or(tk, "http_status", 0));
            goto out;
        }
        set(&d, "ok", NULL, "%s works from this network.", host);
        goto out;
    }

    if (strcmp(phase, "dns") == 0) {
        const char *f = sys.failure ? sys.failure : failure;
        if (resolver_unreachable(f))
            set(&d, "inconclusive", "dns",
                "The network's resolver could not be reached to look up %s (%s): a failure of "
                "the resolver or of the way to it, which says nothing about the name.",
                host, f);
        else if (sys.n)
            /* its lookups failed, but another lookup of the name here answered (the large
             * resource's, a later one): not the "nothing to compare with" case below */
            set(&d, "inconclusive", "dns",
                "The network's DNS failed for %s (%s), but another lookup of the name from here "
                "answered: a passing failure of the resolver, not a block.",
                host, failure ? failure : "no answer");
        else
            set(&d, "inconclusive", "dns",
                "The network's DNS failed for %s (%s) and there was no second resolver or control "
                "to compare with.",
                host, failure ? failure : "no answer");
        goto out;
    }

    /* From here DNS was consistent (or could not be checked): a later phase failed. */
    /* The failed connect, handshake or request, tried again once the measurement was over
     * (start_repeat), worked: a passing failure (packets lost for a while, a server's hiccup);
     * a block fails again. */
    /* the first repeat worked (the failure did not repeat at once) */
    int rep_first_ok = first_repeat_worked(in->repeat) && repeat_applies(tk, phase, failure);
    if (rep_first_ok && !rep_failed) {
        char times[40];
        repeat_times(times, sizeof(times), rep_n);
        set(&d, "inconclusive", phase,
            "The %s %s failed (%s), but the same %s worked when tried again %s: "
            "a passing failure of the network, not a block.",
            strcmp(phase, "tcp") == 0   ? "connection to"
            : strcmp(phase, "tls") == 0 ? "secure connection to"
                                        : "request for",
            host, failure ? failure : "failure",
            strcmp(phase, "tcp") == 0   ? "connection"
            : strcmp(phase, "tls") == 0 ? "handshake, with the same name,"
                                        : "request",
            times);
        goto out;
    }
    /* The first repeat worked and a later one failed: the failure comes and goes. Decided
     * below as a failure that repeats, and said so at the end. */
    intermittent = rep_first_ok && rep_failed > 0;
    if (strcmp(phase, "tcp") == 0) {
        if (local_connect_failures(tk))
            set(&d, "inconclusive", "tcp",
                "This device cannot connect to %s's addresses at all (%s): no route of its own "
                "to them (an IPv6 address without IPv6 here, a local firewall), which says "
                "nothing about the network.",
                host, failure ? failure : "failure");
        else if (cv.have && cv.tcp_ok)
            set(&d, "tcp_blocking", "tcp",
                "Connections to %s fail from here (%s) while the control connects: its "
                "address is blocked.",
                host, failure ? failure : "failure");
        else if (cv.have)
            set(&d, "down", "tcp",
                "%s cannot be reached from here (%s), nor from the control: the site is down, "
                "not blocked.",
                host, failure ? failure : "failure");
        else
            set(&d, "inconclusive", "tcp",
                "Connections to %s fail (%s), but without a control it cannot be told whether "
                "the site is blocked or down.",
                host, failure ? failure : "failure");
        goto out;
    }
    if (strcmp(phase, "tls") == 0) {
        if (is_cert_failure(failure)) {
            if (cv.have && cv.tls_ok)
                set(&d, "tls_blocking", "tls",
                    "The connection to %s presented a certificate this device does not trust "
                    "(%s), while the control got the real one: the connection is intercepted.",
                    host, failure);
            else if (cv.have)
                set(&d, "down", "tls",
                    "%s's certificate is refused here (%s) and from the control too: the site "
                    "is misconfigured, not blocked.",
                    host, failure);
            else
                set(&d, "inconclusive", "tls",
                    "%s presented a certificate that is not trusted (%s); without a control it "
                    "cannot be told whether the connection is intercepted or the site is "
                    "misconfigured.",
                    host, failure);
            goto out;
        }
        if (swap_run && !swap_failure && is_interference(failure)) {
            if (cv.have && !cv.tls_ok)
                set(&d, "down", "tls",
                    "The secure connection to %s fails (%s), also from the control: the site "
                    "is broken, not blocked.",
                    host, failure ? failure : "failure");
            else
                set(&d, "tls_blocking", "tls",
                    "The secure connection to %s fails (%s), but the same server answers when "
                    "another name is asked for: the name %s is filtered (SNI filtering).",
                    host, failure ? failure : "failure", host);
            goto out;
        }
        if (cv.have && cv.tls_ok)
            set(&d, "tls_blocking", "tls",
                "Secure connections to %s fail from here (%s)%s while the control connects: "
                "the address is blocked at the TLS stage.",
                host, failure ? failure : "failure", swap_run ? ", even with another name," : "");
        else if (cv.have)
            set(&d, "down", "tls",
                "Secure connections to %s fail (%s), also from the control: the site is down, "
                "not blocked.",
                host, failure ? failure : "failure");
        else
            set(&d, "inconclusive", "tls",
                "Secure connections to %s fail (%s)%s; without a control it cannot be told "
                "whether the site is blocked or down.",
                host, failure ? failure : "failure", swap_run ? ", also with another name" : "");
        goto out;
    }
    if (strcmp(phase, "http") == 0) {
        char to[256];
        if (cv.have && !cv.phase &&
            redirected_away(tk, in->control, in->host, failure, to, sizeof(to)))
            set(&d, "http_blocking", "http",
                "The request for %s was redirected here to %s, where the control was not sent "
                "(it loaded the page), and following the redirect failed (%s): the network "
                "answers for the site.",
                host, to, failure);
        else if (cv.have && !cv.phase && !is_interference(failure))
            set(&d, "inconclusive", "http",
                "The request for %s fails here (%s) while the control loads the page, but not "
                "the way requests are cut (a reset, a timeout, the connection closed): this "
                "device's or the site's own trouble cannot be ruled out.",
                host, failure ? failure : "failure");
        else if (cv.have && !cv.phase)
            set(&d, "http_blocking", "http",
                "The request for %s fails here (%s) while the control loads the page: the "
                "request is blocked.",
                host, failure ? failure : "failure");
        else if (cv.have)
            set(&d, "down", "http",
                "The request for %s fails (%s), also from the control: the site is down, not "
                "blocked.",
                host, failure ? failure : "failure");
        else
            set(&d, "inconclusive", "http",
                "The request for %s fails (%s); without a control it cannot be told whether "
                "the site is blocked or down.",
                host, failure ? failure : "failure");
        goto out;
    }
    if (strcmp(phase, "handshake") == 0) {
        set(&d, "inconclusive", NULL,
            "The VPN handshake with %s failed (%s); without a control it cannot be told "
            "whether the protocol is blocked or the server is down.",
            host, failure ? failure : "failure");
        goto out;
    }
    set(&d, "inconclusive", NULL,
        "%s failed (%s); there is no rule yet to tell blocking from "
        "an outage for this kind of measurement.",
        host, failure ? failure : "failure");

out:
    if (intermittent && (vpn_intermittent || (d.phase && strcmp(d.phase, phase) == 0))) {
        /* the original attempt and the repeats that failed, of all attempts */
        int tries = 1 + rep_n, fails = 1 + rep_failed;
        size_t len = strlen(d.reason);
        int blocked = d.verdict && strstr(d.verdict, "_blocking") != NULL;
        snprintf(d.reason + len, sizeof(d.reason) - len,
                 " Tried again, it worked, then failed again: %d of %d attempts failed. %s", fails,
                 tries,
                 blocked ? "The block is intermittent, as when a censor lets a share of "
                           "connections through."
                         : "The failure comes and goes.");
    }
    cJSON *ev = cJSON_CreateObject();
    if (canaries_known)
        cJSON_AddBoolToObject(ev, "canaries_ok", in->ctx->n_canaries_ok > 0);
    else
        cJSON_AddNullToObject(ev, "canaries_ok");
    if (cv.have) {
        cJSON *c = cJSON_AddObjectToObject(ev, "control");
        vt_json_add_string_or_null(c, "failure_phase", cv.phase);
        vt_json_add_failure(c, "failure", cv.failure);
        if (cv.status)
            cJSON_AddNumberToObject(c, "http_status", (double)cv.status);
        else
            cJSON_AddNullToObject(c, "http_status");
        vt_json_add_string_or_null(c, "title", cv.title);
    } else {
        cJSON_AddNullToObject(ev, "control");
    }
    if (in->control_error) cJSON_AddStringToObject(ev, "control_error", in->control_error);
    vt_json_add_string_or_null(ev, "dns_consistency", cons);
    cJSON_AddBoolToObject(ev, "dns_bogon", bogon);
    cJSON *da = cJSON_AddObjectToObject(ev, "dns_answers");
    if (da) {
        cJSON_AddItemToObject(da, "probe", addrset_json(&sys));
        cJSON_AddItemToObject(da, "resolver", addrset_json(&alt));
        cJSON_AddItemToObject(da, "control", addrset_json(&ctl));
    }
    if (swap_run)
        cJSON_AddItemToObject(ev, "sni_swap", cJSON_Duplicate(in->sni_swap, 1));
    else
        cJSON_AddNullToObject(ev, "sni_swap");
    if (cJSON_IsObject(in->repeat))
        cJSON_AddItemToObject(ev, "repeat", cJSON_Duplicate(in->repeat, 1));
    else
        cJSON_AddNullToObject(ev, "repeat");
    cJSON_AddBoolToObject(ev, "intermittent", intermittent);
    vt_json_add_string_or_null(ev, "fingerprint", d.fp ? d.fp->name : NULL);
    if (target_bps > 0)
        cJSON_AddNumberToObject(ev, "throughput_bps", target_bps);
    else
        cJSON_AddNullToObject(ev, "throughput_bps");
    if (in->ctx && in->ctx->canary_bps > 0)
        cJSON_AddNumberToObject(ev, "canary_throughput_bps", in->ctx->canary_bps);
    else
        cJSON_AddNullToObject(ev, "canary_throughput_bps");
    if (inj.queried) {
        cJSON *di = cJSON_AddObjectToObject(ev, "dns_injection");
        vt_json_add_string_or_null(di, "server", inj_server);
        /* the forged addresses: none when nothing answered there */
        cJSON_AddItemToObject(di, "answers", addrset_json(&inj));
        /* a random name was answered there too: a transparent DNS proxy, no proof either way */
        cJSON_AddBoolToObject(di, "intercepted", inj_intercepted);
    } else {
        cJSON_AddNullToObject(ev, "dns_injection");
    }
    if (sni_measured) {
        cJSON *st = cJSON_AddObjectToObject(ev, "sni_test");
        cJSON_AddNumberToObject(st, "named_bps", (double)(long long)(sni_named + 0.5));
        cJSON_AddNumberToObject(st, "neutral_bps", (double)(long long)(sni_neutral + 0.5));
        /* the repeated pair said the same */
        cJSON_AddBoolToObject(st, "slowed_twice", sni_slowed);
    } else {
        cJSON_AddNullToObject(ev, "sni_test");
    }

    mark_tcp_blocked(tk, in->control, d.verdict ? d.verdict : "inconclusive", in->host, &sys);
    if (cJSON_IsObject(vpn_ev) && ev) {
        cJSON_AddItemToObject(ev, "vpn", vpn_ev);
        vpn_ev = NULL;
    } else if (ev && is_vpn) {
        cJSON_AddNullToObject(ev, "vpn");
    }
    cJSON_Delete(vpn_ev);
    if (is_vpn) {
        cJSON_DeleteItemFromObjectCaseSensitive(tk, "blocking");
        if (vpn_blocking && *vpn_blocking)
            cJSON_AddStringToObject(tk, "blocking", vpn_blocking);
        else
            cJSON_AddNullToObject(tk, "blocking");
        if (vpn_reason) {
            cJSON_DeleteItemFromObjectCaseSensitive(tk, "inconclusive_reason");
            cJSON_AddStringToObject(tk, "inconclusive_reason", vpn_reason);
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "verdict");
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "verdict_phase");
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "verdict_reason");
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "evidence");
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "blocking_confirmed");
    cJSON_AddStringToObject(tk, "verdict", d.verdict ? d.verdict : "inconclusive");
    vt_json_add_string_or_null(tk, "verdict_phase", d.phase);
    cJSON_AddStringToObject(tk, "verdict_reason", d.reason);
    if (ev) cJSON_AddItemToObject(tk, "evidence", ev);
    cJSON_AddBoolToObject(tk, "blocking_confirmed", d.fp && vt_fp_confirms(d.fp, in->probe_cc));
}

/* ---- the controls, on the loop ---------------------------------------------------------- */

typedef struct vapply {
    vt_task *t;
    const vt_verdict_ctx *ctx;
    vt_verdict_done_fn done;
    void *arg;
    int pending;
    char host[256];
    int port, https;
    cJSON *swap;
    cJSON *repeat;   /* the first repeat's object; "failures" lists every repeat's failure */
    cJSON *rep_list; /* that list, inside repeat */
    int rep_n, rep_failed;
    /* what start_repeat tries again: a connect (tcp phase) or handshake (tls) to rep_ip and
     * rep_port, or (http phase) the request for rep_url at rep_addr */
    char rep_ip[INET6_ADDRSTRLEN + 8];
    int rep_port, rep_tls;
    char *rep_url;
    char rep_addr[MAX_ADDRS][INET6_ADDRSTRLEN];
    size_t rep_naddr;
    /* a VPN kind's repeat: the whole measurement again (its kind's create, start, finish), of
     * rep_target: the target, or a copy with only the endpoint that failed (rep_ep) */
    int rep_vpn;
    vt_target rep_target;
    cJSON *rep_options; /* the target's, without its address_check */
    char *rep_ep[1];
    char rep_ep_buf[INET6_ADDRSTRLEN + 16];
    /* the repeat's "ADDRESS:PORT/TRANSPORT" */
    char rep_vpn_addr[INET6_ADDRSTRLEN + 24];
    cJSON *control_body; /* the whole control answer; test_keys inside */
    const cJSON *control_tk;
    char control_error[256];
    char *request;
    int control_tries; /* requests sent to the control (a busy one is asked again) */
} vapply;

static void finish(vapply *va)
{
    vt_task *t = va->t;
    const vt_env *env = t->env;
    vt_verdict_inputs in = {
        .ctx = va->ctx && va->ctx->n_canaries ? va->ctx : NULL,
        .host = va->host[0] ? va->host : NULL,
        .https = va->https,
        .sni_swap = va->swap,
        .repeat = va->repeat,
        .control = va->control_tk,
        .control_error = va->control_error[0] ? va->control_error : NULL,
        .fps = env->fingerprints,
        .probe_cc = env->cfg ? env->cfg->probe_cc : NULL,
    };
    if (t->test_keys) vt_verdict_decide(t->test_keys, &in);
    vt_verdict_done_fn done = va->done;
    void *arg = va->arg;
    cJSON_Delete(va->swap);
    cJSON_Delete(va->repeat);
    cJSON_Delete(va->rep_options);
    free(va->rep_url);
    cJSON_Delete(va->control_body);
    free(va->request);
    free(va);
    done(t, arg);
}

static void step_done(vapply *va)
{
    if (--va->pending == 0) finish(va);
}

static void swap_cb(const vt_tls_result *r, void *arg)
{
    vapply *va = arg;
    cJSON *s = cJSON_CreateObject();
    if (s) {
        cJSON_AddStringToObject(s, "server_name", r->server_name);
        cJSON_AddStringToObject(s, "address", r->address);
        vt_json_add_failure(s, "failure", r->failure);
        vt_json_add_time(s, "t0", r->t0);
        vt_json_add_time(s, "t", r->t);
    }
    va->swap = s;
    step_done(va);
}

static cJSON *repeat_json(const char *address, const char *server_name, const char *failure,
                          double t0, double t)
{
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
    cJSON_AddStringToObject(s, "address", address);
    vt_json_add_string_or_null(s, "server_name", server_name);
    vt_json_add_failure(s, "failure", failure);
    vt_json_add_time(s, "t0", t0);
    vt_json_add_time(s, "t", t);
    return s;
}

/* A failed connect, handshake or request is tried again up to this often, one after the other,
 * while every repeat works (start_repeat): one that fails again ends them. */
#define REPEAT_TRIES 4
/* A request's repeats after the first read at most this much of the page. */
#define REPEAT_LATER_BODY (16u << 10)

static int repeat_launch(vapply *va);

/* One repeat of the connect, handshake or request done: its outcome joins the list, and the next
 * one starts while every repeat so far worked and there is time. A block that lets a share of
 * connections through fails again within a few tries; a passing loss of packets does not. */
static void repeat_record(vapply *va, cJSON *one)
{
    const char *f = str_or_null(one, "failure");
    int got = one != NULL;
    if (!va->repeat) {
        va->repeat = one;
        va->rep_list = one ? cJSON_AddArrayToObject(one, "failures") : NULL;
    }
    if (one && va->rep_list)
        cJSON_AddItemToArray(va->rep_list, f ? cJSON_CreateString(f) : cJSON_CreateNull());
    va->rep_n++;
    va->rep_failed += f != NULL;
    if (one != va->repeat) cJSON_Delete(one);
    if (got && va->rep_list && !va->rep_failed && va->rep_n < REPEAT_TRIES &&
        repeat_launch(va) == 0)
        return;
    step_done(va);
}

static void repeat_tls_cb(const vt_tls_result *r, void *arg)
{
    vapply *va = arg;
    repeat_record(va, repeat_json(r->address, r->server_name, r->failure, r->t0, r->t));
}

static void repeat_tcp_cb(const vt_tcp_result *r, int fd, void *arg)
{
    vapply *va = arg;
    if (fd >= 0) close(fd);
    char addr[INET6_ADDRSTRLEN + 8];
    snprintf(addr, sizeof(addr), strchr(r->ip, ':') ? "[%s]:%d" : "%s:%d", r->ip, r->port);
    repeat_record(va, repeat_json(addr, NULL, r->failure, r->t0, r->t));
}

static void repeat_http_cb(vt_http_result *r, void *arg)
{
    vapply *va = arg;
    char addr[INET6_ADDRSTRLEN + 8] = "";
    if (r->primary_ip[0])
        snprintf(addr, sizeof(addr), strchr(r->primary_ip, ':') ? "[%s]:%ld" : "%s:%ld",
                 r->primary_ip, r->primary_port);
    cJSON *one = repeat_json(addr, NULL, r->failure, r->t0, r->t);
    if (one) {
        cJSON_AddNumberToObject(one, "status", (double)r->status);
        cJSON_AddNumberToObject(one, "bytes_received", (double)r->bytes_received);
    }
    repeat_record(va, one);
}

static int send_control(vapply *va);

static void control_again(void *arg)
{
    vapply *va = arg;
    if (send_control(va) < 0) {
        snprintf(va->control_error, sizeof(va->control_error), "control request could not start");
        step_done(va);
    }
}

/* A busy control (429: its --control-max runs in flight; 503 with a short Retry-After) is asked
 * again after its Retry-After, at most CONTROL_TRIES times in all, and only while the task's
 * deadline leaves room for a control run: in a country where much is blocked, many probes ask
 * at once, and each answer the probe goes without leaves a verdict less certain. */
static int control_retry(vapply *va, const vt_http_result *r)
{
    const vt_config *cfg = va->t->env->cfg;
    if (r->failure[0] || (r->status != 429 && r->status != 503)) return 0;
    if (va->control_tries >= CONTROL_TRIES) return 0;
    int ms = r->retry_after_s > 0 ? (int)r->retry_after_s * 1000 : 2000; /* none: 2 s */
    if (ms > CONTROL_RETRY_MAX_MS) return 0; /* "not soon": an outage or a turned-off control */
    if (cfg && cfg->task_deadline_ms > 0 &&
        cfg->task_deadline_ms - (vt_now() - va->t->t0) * 1000.0 < ms + CONTROL_RETRY_ROOM_MS)
        return 0;
    return vt_timer_start(va->t->env->loop, ms, control_again, va) != NULL;
}

static void control_cb(vt_http_result *r, void *arg)
{
    vapply *va = arg;
    if (control_retry(va, r)) return; /* still pending: control_again sends it */
    if (r->failure[0]) {
        snprintf(va->control_error, sizeof(va->control_error), "control not reached: %s",
                 r->failure);
    } else if (r->status != 200) {
        snprintf(va->control_error, sizeof(va->control_error), "control answered HTTP %ld",
                 r->status);
    } else if (r->body_truncated) {
        snprintf(va->control_error, sizeof(va->control_error), "control answer too large");
    } else {
        va->control_body = cJSON_ParseWithLength((const char *)r->body, r->body_len);
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(va->control_body, "test_keys");
        if (cJSON_IsObject(tk))
            va->control_tk = tk;
        else
            snprintf(va->control_error, sizeof(va->control_error),
                     "control answer has no test_keys");
    }
    step_done(va);
}

static int wants_control(const vt_task *t, const vapply *va)
{
    const vt_config *cfg = t->env->cfg;
    const char *kind = t->target->kind;
    if (!cfg || !cfg->control_url || !*cfg->control_url || !t->target->n_endpoints) return 0;
    if (!kind || (strcmp(kind, "web") != 0 && strcmp(kind, "endpoint") != 0)) return 0;
    const cJSON *tk = t->test_keys;
    if (str_or_null(tk, "failure_phase") || str_or_null(tk, "failure") || !va->https) return 1;
    /* It worked: the control is only needed when the DNS answer looks odd. */
    addrset sys, alt;
    dns_view(tk, va->host, 0, &sys);
    dns_view(tk, va->host, 1, &alt);
    if (sys.n && alt.n && !addrset_meets(&sys, &alt) && !tls_valid_on(tk, va->host, &sys)) return 1;
    return 0;
}

/* A VPN measurement whose run evidence could not decide: the control connects to the TCP port
 * of that address the evidence names (kind "endpoint"). */
static const char *vpn_control_input(const vt_task *t)
{
    const vt_config *cfg = t->env->cfg;
    if (!cfg || !cfg->control_url || !*cfg->control_url) return NULL;
    if (!vt_vpn_verdict_kind(t->target->kind)) return NULL;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(t->test_keys, "vpn_evidence");
    return str_or_null(ev, "control_input");
}

static int send_control(vapply *va)
{
    vt_task *t = va->t;
    const vt_config *cfg = t->env->cfg;
    vt_http_opts o = {
        .url = cfg->control_url,
        .method = "POST",
        .body = (const unsigned char *)va->request,
        .body_len = strlen(va->request),
        .content_type = "application/json",
        .cacert = cfg->control_cacert ? cfg->control_cacert : cfg->cacert,
        .timeout_ms = CONTROL_TIMEOUT_MS,
        .max_body = CONTROL_MAX_BODY,
        .max_download = CONTROL_MAX_BODY,
        .user_agent = cfg->user_agent,
        .t_base = t->t0,
    };
    va->control_tries++;
    return vt_http_request(t->env->loop, &o, control_cb, va);
}

static void start_control(vapply *va, const char *input, const char *kind)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) goto fail;
    cJSON_AddStringToObject(req, "input", input);
    cJSON_AddStringToObject(req, "kind", kind);
    va->request = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!va->request) goto fail;
    va->pending++;
    if (send_control(va) < 0) {
        va->pending--;
        goto fail;
    }
    return;
fail:
    snprintf(va->control_error, sizeof(va->control_error), "control request could not start");
}

static void start_swap(vapply *va)
{
    vt_task *t = va->t;
    const cJSON *tk = t->test_keys;
    const char *phase = str_or_null(tk, "failure_phase");
    const char *failure = str_or_null(tk, "failure");
    char ip[INET6_ADDRSTRLEN + 8];
    int port = 0;
    if (!phase || strcmp(phase, "tls") != 0 || !is_interference(failure) || !t->env->tls) return;
    if (failed_handshake(tk, va->host, ip, sizeof(ip), &port) < 0) return;
    const char *sni =
        va->ctx && va->ctx->swap_sni[0] ? va->ctx->swap_sni : VT_VERDICT_SWAP_SNI_DEFAULT;
    if (strcasecmp(sni, va->host) == 0) return;
    const vt_config *cfg = t->env->cfg;
    vt_tls_opts o = {
        .ip = ip,
        .port = port,
        .sni = sni,
        .no_verify = 1, /* the question is whether the handshake completes, not whose it is */
        .connect_timeout_ms = cfg ? cfg->connect_timeout_ms : 10000,
        .tls_timeout_ms = cfg ? cfg->tls_timeout_ms : 10000,
        .t_base = t->t0,
    };
    va->pending++;
    if (vt_tls_handshake(t->env->loop, t->env->tls, &o, swap_cb, va) < 0) va->pending--;
}

/* The first failed connect of the measured host (tcp phase): its address and port. */
static int failed_connect(const cJSON *tk, char *ip, size_t iplen, int *port)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tk, "tcp_connect"))
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
        const char *a = str_or_null(e, "ip");
        int p = (int)num_or(e, "port", 0);
        if (!a || p <= 0 || !str_or_null(st, "failure")) continue;
        snprintf(ip, iplen, "%s", a);
        *port = p;
        return 0;
    }
    return -1;
}

/* A repeat's timeout: ms, cut to what is left of the task's deadline (cfg->task_deadline_ms,
 * as the kind's own steps are: the collector's control caps its run so), 0 when none is left. */
static int repeat_timeout(const vt_task *t, int ms)
{
    const vt_config *cfg = t->env->cfg;
    if (ms <= 0) ms = 10000;
    if (!cfg || cfg->task_deadline_ms <= 0) return ms;
    double left = cfg->task_deadline_ms - (vt_now() - t->t0) * 1000.0;
    if (left < 1) return 0;
    return left < ms ? (int)left : ms;
}

/* The http phase: the request that failed, when its host is the measured one, asked again of
 * the addresses the probe's resolver gave (none other is known here). */
static void start_repeat_http(vapply *va, const char *failure)
{
    vt_task *t = va->t;
    const cJSON *tk = t->test_keys;
    /* The request that failed: each endpoint's requests are stored newest first, so neither
     * end of the array is it in general (a redirect's 3xx, another endpoint's request). */
    const cJSON *req;
    const char *url = NULL;
    char h[256];
    addrset sys;
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(tk, "requests"))
    {
        const char *f = str_or_null(req, "failure");
        const char *u = str_or_null(cJSON_GetObjectItemCaseSensitive(req, "request"), "url");
        if (f && strcmp(f, failure) == 0 && u &&
            vt_verdict_endpoint_host(u, h, sizeof(h), NULL, NULL) == 0 &&
            strcasecmp(h, va->host) == 0) {
            url = u;
            break;
        }
    }
    if (!url) return;
    dns_view(tk, va->host, 0, &sys);
    size_t n = 0;
    unsigned char b[16];
    size_t hl = strlen(h);
    if ((inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1) &&
        hl < sizeof(va->rep_addr[0]))
        memcpy(va->rep_addr[n++], h, hl + 1); /* an address literal: it fits */
    for (size_t i = 0; i < sys.n && n < MAX_ADDRS; i++)
        snprintf(va->rep_addr[n++], sizeof(va->rep_addr[0]), "%s", sys.a[i]);
    va->rep_naddr = n;
    if (!n || !(va->rep_url = strdup(url))) return;
    va->pending++;
    if (repeat_launch(va) < 0) va->pending--;
}

/* A VPN kind's repeat finished: reachable is a handshake that worked. */
static void repeat_vpn_done(vt_task *st, void *arg)
{
    vapply *va = arg;
    st->kind->finish(st);
    const cJSON *tk = st->test_keys;
    const char *f = NULL;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable"))) {
        f = str_or_null(tk, "failure");
        if (!f) f = "unknown_failure";
    }
    cJSON *one = repeat_json(va->rep_vpn_addr, NULL, f, st->t0 - va->t->t0, vt_now() - va->t->t0);
    cJSON_Delete(st->test_keys);
    free(st);
    repeat_record(va, one);
}

static int repeat_launch_vpn(vapply *va)
{
    vt_task *t = va->t, *st = calloc(1, sizeof(*st));
    if (!st) return -1;
    st->env = t->env;
    st->target = &va->rep_target;
    st->kind = t->kind;
    st->test_keys = cJSON_CreateObject();
    st->on_done = repeat_vpn_done;
    st->on_done_arg = va;
    st->t0 = vt_now();
    st->start_epoch = vt_measurement_now(t->env->cfg);
    char err[256];
    if (!st->kind || !st->test_keys || st->kind->create(st, err, sizeof(err)) < 0) {
        cJSON_Delete(st->test_keys);
        free(st);
        return -1;
    }
    st->kind->start(st);
    return 0;
}

/* The connect, handshake or request of start_repeat, once more (0: started, repeat_*_cb
 * follows). */
static int repeat_launch(vapply *va)
{
    vt_task *t = va->t;
    const vt_config *cfg = t->env->cfg;
    const char *kind = t->target->kind;
    if (va->rep_vpn) return repeat_launch_vpn(va);
    if (va->rep_url) {
        int timeout = repeat_timeout(t, cfg ? cfg->http_timeout_ms : 0);
        if (!timeout) return -1;
        const char *addrs[MAX_ADDRS + 1];
        for (size_t i = 0; i < va->rep_naddr; i++)
            addrs[i] = va->rep_addr[i];
        addrs[va->rep_naddr] = NULL;
        size_t page = cfg && cfg->max_body_bytes ? cfg->max_body_bytes : 1u << 20;
        vt_http_opts o = {
            .url = va->rep_url,
            .addrs = addrs,
            .cacert = cfg ? cfg->cacert : NULL,
            .timeout_ms = timeout,
            /* the first: the page request's own limit (a repeat that stopped reading early
             * would "work" against a censor cutting every response after a few kilobytes);
             * once that one worked, the others are asked whether the request passes at all,
             * and read a little of the page */
            .max_body = va->rep_n == 0 || page < REPEAT_LATER_BODY ? page : REPEAT_LATER_BODY,
            .user_agent = cfg ? cfg->user_agent : NULL,
            .t_base = t->t0,
        };
        return vt_http_request(t->env->loop, &o, repeat_http_cb, va) < 0 ? -1 : 0;
    }
    int ct = repeat_timeout(t, cfg ? cfg->connect_timeout_ms : 0);
    if (!ct) return -1;
    if (!va->rep_tls)
        return vt_tcp_connect(t->env->loop, va->rep_ip, va->rep_port, ct, t->t0, repeat_tcp_cb,
                              va) < 0
                   ? -1
                   : 0;
    int tt = repeat_timeout(t, cfg ? cfg->tls_timeout_ms : 0);
    if (!tt || !t->env->tls) return -1;
    vt_tls_opts o = {
        .ip = va->rep_ip,
        .port = va->rep_port,
        .sni = va->host,
        /* the ClientHello the measurement sent: a censor may match more than the name */
        .alpn =
            strcmp(kind, "web") == 0 ? VT_WEB_ALPN : vt_json_get_string(t->target->options, "alpn"),
        .no_verify = 1, /* whether the handshake completes; its certificate was not the issue */
        .connect_timeout_ms = ct,
        .tls_timeout_ms = tt,
        .t_base = t->t0,
    };
    return vt_tls_handshake(t->env->loop, t->env->tls, &o, repeat_tls_cb, va) < 0 ? -1 : 0;
}

/* A VPN kind's failed handshake (vpn_repeat_applies), measured again: the target's endpoint that
 * the run's evidence names (address and port, when the target lists it so: a bridge line's
 * address), else the whole target (an endpoint by name: its address is the name's, and a TLS
 * VPN's handshake names it). */
static void start_repeat_vpn(vapply *va)
{
    vt_task *t = va->t;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(t->test_keys, "vpn_evidence");
    if (!t->kind || !vpn_repeat_applies(t->test_keys, ev)) return;
    const char *addr = str_or_null(ev, "address");
    int port = int_or(ev, "port", 0);
    if (!addr) return;
    unsigned char b[16];
    int v6 = inet_pton(AF_INET6, addr, b) == 1;
    const char *tr = str_or_null(ev, "transport");
    if (strlen(addr) >= INET6_ADDRSTRLEN || port < 0 || port > 65535) return;
    snprintf(va->rep_vpn_addr, sizeof(va->rep_vpn_addr), v6 ? "[%s]:%d/%.4s" : "%s:%d/%.4s", addr,
             port, tr ? tr : "?");
    va->rep_target = *t->target;
    /* whether the handshake works, nothing more: the address check (TCP ports known open at
     * the address, tried after a failure) would only add its timeout to a blocked address's */
    if (cJSON_GetObjectItemCaseSensitive(t->target->options, "address_check")) {
        va->rep_options = cJSON_Duplicate(t->target->options, 1);
        if (!va->rep_options) return;
        cJSON_DeleteItemFromObjectCaseSensitive(va->rep_options, "address_check");
        va->rep_target.options = va->rep_options;
    }
    snprintf(va->rep_ep_buf, sizeof(va->rep_ep_buf), v6 ? "[%s]:%d" : "%s:%d", addr, port);
    for (size_t i = 0; i < t->target->n_endpoints; i++)
        if (strcmp(t->target->endpoints[i], va->rep_ep_buf) == 0) {
            va->rep_ep[0] = va->rep_ep_buf;
            va->rep_target.endpoints = va->rep_ep;
            va->rep_target.n_endpoints = 1;
            break;
        }
    va->rep_vpn = 1;
    va->pending++;
    if (repeat_launch(va) < 0) va->pending--;
}

/* A web or endpoint measurement that failed at connecting, at the TLS handshake or at the
 * request the way packet loss makes them fail too (a timeout, a reset, an EOF; any connect
 * failure but this device's own): the same connect, handshake (with the same name) or request
 * again, up to REPEAT_TRIES times while each works. A censor's block repeats, at once or, when
 * it blocks only a share of connections, within a few tries; a passing loss of packets does
 * not. */
static void start_repeat(vapply *va)
{
    vt_task *t = va->t;
    const cJSON *tk = t->test_keys;
    const char *phase = str_or_null(tk, "failure_phase");
    const char *failure = str_or_null(tk, "failure");
    const char *kind = t->target->kind;
    if (kind && vt_vpn_verdict_kind(kind)) {
        start_repeat_vpn(va);
        return;
    }
    if (!phase || !kind || (strcmp(kind, "web") != 0 && strcmp(kind, "endpoint") != 0) ||
        !repeat_applies(tk, phase, failure))
        return;
    if (strcmp(phase, "http") == 0) {
        start_repeat_http(va, failure);
        return;
    }
    va->rep_tls = strcmp(phase, "tcp") != 0; /* else the tls phase */
    if (va->rep_tls && !t->env->tls) return;
    if ((va->rep_tls ? failed_handshake(tk, va->host, va->rep_ip, sizeof(va->rep_ip), &va->rep_port)
                     : failed_connect(tk, va->rep_ip, sizeof(va->rep_ip), &va->rep_port)) < 0)
        return;
    va->pending++;
    if (repeat_launch(va) < 0) va->pending--;
}

void vt_verdict_apply(vt_task *t, const vt_verdict_ctx *ctx, vt_verdict_done_fn done, void *arg)
{
    vapply *va = calloc(1, sizeof(*va));
    if (!va) {
        done(t, arg);
        return;
    }
    va->t = t;
    va->ctx = ctx;
    va->done = done;
    va->arg = arg;
    va->pending = 1; /* held until every control has started */
    if (t->target && t->target->n_endpoints &&
        vt_verdict_endpoint_host(t->target->endpoints[0], va->host, sizeof(va->host), &va->port,
                                 &va->https) == 0) {
        if (!va->https)
            va->https = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t->target->options, "tls"));
    } else {
        va->host[0] = 0;
    }
    int offline = ctx && ctx->n_canaries > 0 && ctx->n_canaries_ok == 0;
    if (!offline && t->test_keys && va->host[0] && t->env) {
        start_swap(va);
        start_repeat(va);
        const char *vin = vpn_control_input(t);
        if (vin)
            start_control(va, vin, "endpoint");
        else if (wants_control(t, va))
            start_control(va, t->target->endpoints[0], t->target->kind);
    }
    step_done(va);
}
