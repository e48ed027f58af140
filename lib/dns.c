/* DNS step: A / AAAA lookups through c-ares on the loop, or DNS-over-HTTPS through libcurl.
 * The answer's rcode and records are parsed from the raw reply, so NXDOMAIN, SERVFAIL, REFUSED
 * and an empty NOERROR answer are told apart. */
#include "vantage/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vantage/addr.h"
#include "vantage/json.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"

enum { DNS_SYSTEM, DNS_UDP, DNS_DOH };

typedef struct dns_op dns_op;

struct vt_dns {
    int type;
    vt_loop *loop;
    const vt_config *cfg;
    struct ares_addr_port_node *servers; /* DNS_SYSTEM, DNS_UDP: for every channel */
    ares_channel shared;  /* the lookups' channel (IGNTC); made at the first lookup */
    char resolver[256];  /* "IP:PORT" or the DoH URL */
    dns_op *pending;     /* immediate and DoH operations, cancelled by vt_dns_free */
    int destroying;
};

struct dns_op {
    dns_op *next, **prevp; /* in d->pending until it completes */
    vt_dns *d;
    vt_loop *loop; /* d's: op_free needs no d (a callback may have freed it) */
    vt_dns_query q;
    vt_dns_cb cb;
    void *arg;
    double t_base;
    ares_channel ch;      /* c-ares: d->shared, or the lookup's own after a retry (own) */
    int own, retried;     /* see retry_alone */
    unsigned char *tc_buf; /* the truncated answer that was asked again, kept */
    int tc_len;
    struct event *timer;  /* immediate answers */
    int starting, deferred; /* c-ares answered from inside ares_query (a name it refuses) */
    CURL *easy;           /* DoH */
    unsigned char *buf;   /* DoH reply */
    size_t len;
    unsigned char *qbuf;  /* DoH query */
    int qlen;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE]; /* DoH: curl's message, which tells a name mismatch apart */
};

static void op_link(dns_op *op)
{
    vt_dns *d = op->d;
    op->next = d->pending;
    if (d->pending)
        d->pending->prevp = &op->next;
    d->pending = op;
    op->prevp = &d->pending;
}

static void op_unlink(dns_op *op)
{
    if (!op->prevp)
        return;
    *op->prevp = op->next;
    if (op->next)
        op->next->prevp = op->prevp;
    op->prevp = NULL;
}

static void op_free(dns_op *op)
{
    if (op->ch) {
        ares_channel ch = op->ch;
        op->ch = NULL; /* on_ares ignores the ARES_EDESTRUCTION this gives */
        if (op->own) vt_loop_ares_destroy(op->loop, ch);
    }
    free(op->q.answers);
    free(op->q.cnames);
    free(op->tc_buf);
    free(op->buf);
    if (op->qbuf)
        ares_free_string(op->qbuf);
    curl_slist_free_all(op->hdrs);
    if (op->easy)
        curl_easy_cleanup(op->easy);
    free(op);
}

static void op_complete(dns_op *op)
{
    op_unlink(op);
    op->q.t = vt_now() - op->t_base;
    op->cb(&op->q, op->arg);
    op_free(op);
}

static int same_name(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na && a[na - 1] == '.') na--;
    if (nb && b[nb - 1] == '.') nb--;
    return na == nb && strncasecmp(a, b, na) == 0;
}

static void free_hops(char *hop[][2], int n)
{
    for (int i = 0; i < n; i++) {
        ares_free_string(hop[i][0]);
        ares_free_string(hop[i][1]);
    }
}

/* The answer's CNAME chain, followed hop by hop from the name asked (a censor's redirect can
 * be a CNAME to its blockpage host, at any hop: c-ares' hostent names only the first hop's
 * target). Every hop goes into q->cnames, its end into q->cname. A hop is kept only when it is
 * a plain host name (the answer is the network's, and goes into measurements); the chain stops
 * at the first one that is not, at a loop, or after VT_DNS_MAX_CNAMES hops. */
static void cname_chain(vt_dns_query *q, const unsigned char *abuf, int alen)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789-._";
    char *hop[VT_DNS_MAX_CNAMES][2]; /* owner, target */
    int used[VT_DNS_MAX_CNAMES] = {0};
    int n = 0;
    q->cname[0] = 0;
    q->n_cnames = 0;
    if (!abuf || alen < 12)
        return;
    int qd = abuf[4] << 8 | abuf[5], an = abuf[6] << 8 | abuf[7];
    const unsigned char *p = abuf + 12, *end = abuf + alen;
    char *name;
    long len;
    for (int i = 0; i < qd; i++) {
        if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
            return;
        ares_free_string(name);
        if (len > end - p || end - p - len < 4)
            return;
        p += len + 4;
    }
    for (int i = 0; i < an && n < VT_DNS_MAX_CNAMES; i++) {
        char *owner = NULL, *target = NULL;
        if (ares_expand_name(p, abuf, alen, &owner, &len) != ARES_SUCCESS)
            break;
        if (len > end - p || end - p - len < 10) {
            ares_free_string(owner);
            break;
        }
        p += len;
        int type = p[0] << 8 | p[1], rdlen = p[8] << 8 | p[9];
        p += 10;
        if (rdlen > end - p) {
            ares_free_string(owner);
            break;
        }
        if (type == 5 /* CNAME */ &&
            ares_expand_name(p, abuf, alen, &target, &len) == ARES_SUCCESS) {
            hop[n][0] = owner;
            hop[n++][1] = target;
        } else {
            ares_free_string(owner);
        }
        p += rdlen;
    }
    const char *cur = q->hostname;
    for (;;) {
        int j = 0;
        while (j < n && (used[j] || !same_name(hop[j][0], cur)))
            j++;
        if (j == n)
            break;
        used[j] = 1;
        const char *c = hop[j][1];
        size_t clen = strlen(c);
        int seen = same_name(c, q->hostname); /* a loop: back to a name already in the chain */
        for (size_t k = 0; k < q->n_cnames && !seen; k++)
            seen = same_name(c, q->cnames[k]);
        if (!clen || clen >= sizeof(q->cname) || strspn(c, name_chars) != clen || seen)
            break;
        char (*more)[256] = realloc(q->cnames, (q->n_cnames + 1) * sizeof(*q->cnames));
        if (!more)
            break;
        q->cnames = more;
        memcpy(q->cnames[q->n_cnames++], c, clen + 1);
        memcpy(q->cname, c, clen + 1);
        cur = q->cnames[q->n_cnames - 1];
    }
    free_hops(hop, n);
}

/* Fills q->rcode, q->answers and the CNAME chain from a raw reply; returns the ares status it
 * means. */
static int parse_reply(vt_dns_query *q, const unsigned char *abuf, int alen)
{
    if (!abuf || alen < 12)
        return ARES_EBADRESP;
    q->rcode = abuf[3] & 0x0F;
    switch (q->rcode) {
    case 0: break;
    case 1: return ARES_EFORMERR;
    case 2: return ARES_ESERVFAIL;
    case 3: return ARES_ENOTFOUND;
    case 4: return ARES_ENOTIMP;
    case 5: return ARES_EREFUSED;
    default: return ARES_EBADRESP;
    }
    int n = 64, rc;
    struct hostent *he = NULL;
    if (q->qtype == VT_DNS_A) {
        struct ares_addrttl t[64];
        rc = ares_parse_a_reply(abuf, alen, &he, t, &n);
        if (he)
            ares_free_hostent(he);
        cname_chain(q, abuf, alen);
        if (rc != ARES_SUCCESS)
            return rc;
        q->answers = calloc((size_t)n ? (size_t)n : 1, sizeof(*q->answers));
        if (!q->answers)
            return ARES_ENOMEM;
        for (int i = 0; i < n; i++) {
            q->answers[i].qtype = VT_DNS_A;
            q->answers[i].ttl = t[i].ttl > 0 ? (unsigned)t[i].ttl : 0;
            inet_ntop(AF_INET, &t[i].ipaddr, q->answers[i].addr, sizeof(q->answers[i].addr));
        }
    } else {
        struct ares_addr6ttl t[64];
        rc = ares_parse_aaaa_reply(abuf, alen, &he, t, &n);
        if (he)
            ares_free_hostent(he);
        cname_chain(q, abuf, alen);
        if (rc != ARES_SUCCESS)
            return rc;
        q->answers = calloc((size_t)n ? (size_t)n : 1, sizeof(*q->answers));
        if (!q->answers)
            return ARES_ENOMEM;
        for (int i = 0; i < n; i++) {
            q->answers[i].qtype = VT_DNS_AAAA;
            q->answers[i].ttl = t[i].ttl > 0 ? (unsigned)t[i].ttl : 0;
            inet_ntop(AF_INET6, &t[i].ip6addr, q->answers[i].addr, sizeof(q->answers[i].addr));
        }
    }
    q->n_answers = (size_t)n;
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

static void set_status(vt_dns_query *q, int status)
{
    if (status == ARES_SUCCESS)
        q->failure[0] = 0;
    else
        vt_failure_ares(status, q->failure, sizeof(q->failure));
}

/* c-ares reports every failure to send a query as ARES_ECONNREFUSED, including "no route to
 * the resolver" (a probe whose network is down). Connecting a UDP socket sends nothing and
 * tells the two apart: a resolver that cannot be reached at all is network_unreachable (or
 * host_unreachable), not a resolver that refused us. */
static void refine_refused(vt_dns_query *q)
{
    char ip[INET6_ADDRSTRLEN + 2];
    const char *r = q->resolver, *colon = strrchr(r, ':');
    if (!colon || (size_t)(colon - r) >= sizeof(ip)) return;
    memcpy(ip, r, (size_t)(colon - r));
    ip[colon - r] = 0;
    char *host = ip;
    if (host[0] == '[') {
        host++;
        char *rb = strchr(host, ']');
        if (!rb) return;
        *rb = 0;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (vt_addr_sockaddr(host, atoi(colon + 1), &ss, &sl) < 0) return;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 &&
        (errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EADDRNOTAVAIL))
        vt_failure_errno(errno == EADDRNOTAVAIL ? ENETUNREACH : errno, q->failure,
                         sizeof(q->failure));
    close(fd);
}

/* ---- c-ares ---- */

static int lookup_channel(vt_dns *d, ares_channel *ch, int flags);
static void on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static void on_immediate(void *arg);

/* Asks op's question again on a channel of its own, which falls back to TCP on a truncated
 * answer (lookup_channel). From the shared channel's callback. 0: asked again (or to be
 * answered from the loop); -1: no channel, op goes on with what it has. */
static int retry_alone(dns_op *op)
{
    ares_channel ch;
    op->retried = 1;
    if (op->d->destroying || lookup_channel(op->d, &ch, 0) < 0)
        return -1;
    op->ch = ch;
    op->own = 1;
    /* c-ares may call back from inside ares_query (a query it cannot send): on_ares then
     * leaves the answer to the loop (deferred), from here or, when the first query itself was
     * answered from inside vt_dns_lookup's ares_query, from there. */
    int outer = op->starting;
    op->starting = 1;
    ares_query(ch, op->q.hostname, 1 /* C_IN */, op->q.qtype, on_ares, op);
    op->starting = outer;
    if (outer)
        return 0;
    if (op->deferred) {
        op->timer = vt_timer_start(op->d->loop, 0, on_immediate, op);
        if (!op->timer)
            op_complete(op);
        return 0;
    }
    vt_loop_ares_kick(op->d->loop, ch);
    return 0;
}

static void on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_op *op = arg;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        /* op_free destroying the lookup's channel (op->ch already NULL), or the loop freed
         * before the resolver: its users are going away too. */
        if (op->ch) {
            op->ch = NULL;
            op_unlink(op);
            op_free(op);
        }
        return;
    }
    /* Truncated (the shared channel ignores TC) or refused: once more, alone. */
    int truncated = abuf && alen >= 3 && (abuf[2] & 0x02);
    if (!op->own && !op->retried && (truncated || status == ARES_ECONNREFUSED)) {
        if (truncated && (op->tc_buf = malloc((size_t)alen))) {
            memcpy(op->tc_buf, abuf, (size_t)alen);
            op->tc_len = alen;
        }
        if (retry_alone(op) == 0)
            return;
    }
    if (op->own && op->tc_buf && !(abuf && alen > 0)) {
        /* The retry over TCP got no answer at all: the truncated one's addresses are still the
         * resolver's answer (an injector's forged one too, then reset over TCP: evidence). With
         * none in it, the failure of the retry stands (a router without DNS over TCP is not
         * the name's problem). */
        int st = parse_reply(&op->q, op->tc_buf, op->tc_len);
        if (op->q.n_answers > 0) {
            status = st;
            goto parsed;
        }
        free(op->q.answers);
        op->q.answers = NULL;
        op->q.n_answers = 0;
        op->q.n_cnames = 0;
        op->q.cname[0] = 0;
        op->q.rcode = -1;
    }
    if (abuf && alen > 0) {
        int st = parse_reply(&op->q, abuf, alen);
        /* ares_query converts rcodes itself; the raw parse is the more precise one */
        status = st;
    }
parsed:
    set_status(&op->q, status);
    if (status == ARES_ECONNREFUSED) refine_refused(&op->q);
    if (op->starting) {
        op->deferred = 1; /* vt_dns_lookup hands it to the loop */
        return;
    }
    op_complete(op);
}

static void resolver_of(vt_dns *d)
{
    const struct ares_addr_port_node *servers = d->servers;
    char ip[INET6_ADDRSTRLEN] = "";
    inet_ntop(servers->family, &servers->addr, ip, sizeof(ip));
    int port = servers->udp_port ? servers->udp_port : 53;
    if (servers->family == AF_INET6)
        snprintf(d->resolver, sizeof(d->resolver), "[%s]:%d", ip, port);
    else
        snprintf(d->resolver, sizeof(d->resolver), "%s:%d", ip, port);
}

/* c-ares' per-try timeout: two tries wait t then 2t, so a silent resolver costs about
 * cfg->dns_timeout_ms in all, not three times it. */
static int try_timeout_ms(const vt_config *cfg)
{
    int total = cfg && cfg->dns_timeout_ms > 0 ? cfg->dns_timeout_ms : 5000;
    return total / 3 > 100 ? total / 3 : 100;
}

/* The lookups share one channel that never falls back to TCP (IGNTC): in c-ares 1.18 a
 * truncated answer whose TCP retry fails (a resolver or home router without DNS over TCP)
 * closes all the channel's sockets and uses up a try of every query pending on it, so
 * unrelated names ended in connection_refused. A lookup answered truncated, or refused, is
 * asked again alone, on a channel of its own that does fall back to TCP (retry_alone): one
 * name's trouble stays its own. (A channel per lookup would do the same at ~75 KB of c-ares
 * tables per lookup in flight: +5 MiB peak RSS over the default targets.) The servers are read
 * once (resolv.conf, or --resolver) into d->servers, so every channel asks the same resolver. */
static int lookup_channel(vt_dns *d, ares_channel *ch, int flags)
{
    char err[256];
    if (vt_loop_ares_channel(d->loop, NULL, try_timeout_ms(d->cfg), 2, flags, ch, err,
                             sizeof(err)) < 0)
        return -1;
    if (ares_set_servers_ports(*ch, d->servers) != ARES_SUCCESS) {
        vt_loop_ares_destroy(d->loop, *ch);
        *ch = NULL;
        return -1;
    }
    return 0;
}

/* The servers of a channel made with servers (NULL: resolv.conf), kept in d->servers. */
static int read_servers(vt_dns *d, const char *servers, char *err, size_t errlen)
{
    ares_channel ch;
    if (vt_loop_ares_channel(d->loop, servers, try_timeout_ms(d->cfg), 2, 0, &ch, err, errlen) < 0)
        return -1;
    int rc = ares_get_servers_ports(ch, &d->servers);
    vt_loop_ares_destroy(d->loop, ch);
    if (rc != ARES_SUCCESS || !d->servers) {
        snprintf(err, errlen, "cannot read the DNS resolver's address: %s",
                 rc != ARES_SUCCESS ? ares_strerror(rc) : "none");
        return -1;
    }
    return 0;
}

static vt_dns *dns_new(vt_loop *loop, const vt_config *cfg, int type)
{
    vt_dns *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->type = type;
    d->loop = loop;
    d->cfg = cfg;
    return d;
}

vt_dns *vt_dns_new_system(vt_loop *loop, const vt_config *cfg, char *err, size_t errlen)
{
    vt_dns *d = dns_new(loop, cfg, DNS_SYSTEM);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (read_servers(d, NULL, err, errlen) < 0) {
        free(d);
        return NULL;
    }
    resolver_of(d);
    return d;
}

vt_dns *vt_dns_new_udp(vt_loop *loop, const vt_config *cfg, const char *server, char *err,
                       size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2], csv[INET6_ADDRSTRLEN + 16];
    int port = 53;
    struct in6_addr a6;
    struct in_addr a4;
    /* Accept "IP", "IP:PORT", "[IPv6]:PORT" and a bare IPv6 address. */
    if (inet_pton(AF_INET, server, &a4) == 1) {
        snprintf(csv, sizeof(csv), "%s:53", server);
    } else if (inet_pton(AF_INET6, server, &a6) == 1) {
        snprintf(csv, sizeof(csv), "[%s]:53", server);
    } else if (vt_split_host_port(server, host, sizeof(host), &port) == 0 &&
               (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)) {
        if (strchr(host, ':'))
            snprintf(csv, sizeof(csv), "[%s]:%d", host, port);
        else
            snprintf(csv, sizeof(csv), "%s:%d", host, port);
    } else {
        snprintf(err, errlen, "bad resolver address '%s': want IP or IP:PORT ([IPv6]:PORT)",
                 server);
        return NULL;
    }
    vt_dns *d = dns_new(loop, cfg, DNS_UDP);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (read_servers(d, csv, err, errlen) < 0) {
        free(d);
        return NULL;
    }
    snprintf(d->resolver, sizeof(d->resolver), "%s", csv);
    return d;
}

vt_dns *vt_dns_new_doh(vt_loop *loop, const vt_config *cfg, const char *url, char *err,
                       size_t errlen)
{
    if (vt_url_check_secure("DNS-over-HTTPS", url, err, errlen) < 0)
        return NULL;
    if (strlen(url) >= 256) {
        snprintf(err, errlen, "DNS-over-HTTPS URL too long");
        return NULL;
    }
    vt_dns *d = dns_new(loop, cfg, DNS_DOH);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(d->resolver, sizeof(d->resolver), "%s", url);
    return d;
}

void vt_dns_free(vt_dns *d)
{
    if (!d)
        return;
    d->destroying = 1;
    while (d->pending) {
        dns_op *op = d->pending;
        op_unlink(op);
        if (op->timer)
            vt_timer_cancel(op->timer);
        if (op->easy)
            vt_loop_curl_cancel(d->loop, op->easy);
        /* A query pending on the shared channel is freed by its ARES_EDESTRUCTION callback,
         * when the channel goes (at once, or after c-ares returns when this runs from one of
         * its callbacks): on_ares touches neither d nor the loop for it. */
        if (op->ch && !op->own && !op->timer)
            continue;
        op_free(op);
    }
    if (d->shared) {
        ares_channel ch = d->shared;
        d->shared = NULL;
        vt_loop_ares_destroy(d->loop, ch);
    }
    if (d->servers)
        ares_free_data(d->servers);
    free(d);
}

/* ---- IP literals ---- */

static void on_immediate(void *arg)
{
    dns_op *op = arg;
    op->timer = NULL;
    op_complete(op);
}

/* ---- DoH ---- */

static size_t doh_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    dns_op *op = userdata;
    size_t n = size * nmemb;
    if (op->len + n > 65535)
        return 0; /* a DNS message is at most 64 KiB */
    unsigned char *nb = realloc(op->buf, op->len + n);
    if (!nb)
        return 0;
    memcpy(nb + op->len, ptr, n);
    op->buf = nb;
    op->len += n;
    return n;
}

/* Same name and type and class at the question of query and reply (12 bytes in). */
static int same_question(const unsigned char *a, int alen, const unsigned char *b, int blen)
{
    char *na = NULL, *nb = NULL;
    long la, lb;
    int same = ares_expand_name(a + 12, a, alen, &na, &la) == ARES_SUCCESS &&
               ares_expand_name(b + 12, b, blen, &nb, &lb) == ARES_SUCCESS &&
               12 + la + 4 <= alen && 12 + lb + 4 <= blen && strcasecmp(na, nb) == 0 &&
               memcmp(a + 12 + la, b + 12 + lb, 4) == 0;
    ares_free_string(na);
    ares_free_string(nb);
    return same;
}

/* A DoH reply is evidence only when it is a DNS response to the query sent (RFC 8484):
 * Content-Type application/dns-message, the query's ID (0), QR set, opcode 0, and the one
 * question asked. A blockpage or a captive portal's page (whose 4th byte parsed as an rcode
 * would be an NXDOMAIN), an echoed query (an empty answer) or an answer to another name is a
 * failure of the DoH server, never NXDOMAIN or NODATA evidence. */
static const char *doh_bad_reply(dns_op *op, CURL *easy)
{
    char *ct = NULL;
    const unsigned char *r = op->buf, *s = op->qbuf;
    curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct);
    if (!ct || strncasecmp(ct, "application/dns-message", 23) != 0 ||
        (ct[23] && ct[23] != ';' && ct[23] != ' '))
        return "not application/dns-message";
    if (!r || op->len < 12 || op->len > 65535 || r[0] != s[0] || r[1] != s[1] ||
        !(r[2] & 0x80) || (r[2] & 0x78) || r[4] != 0 || r[5] != 1 ||
        !same_question(r, (int)op->len, s, op->qlen))
        return "not an answer to the query";
    return NULL;
}

static void on_doh(CURL *easy, CURLcode res, void *arg)
{
    dns_op *op = arg;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (res != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);
        vt_failure_curl(res, oserr, op->errbuf, op->q.failure, sizeof(op->q.failure));
    } else if (code != 200) {
        snprintf(op->q.failure, sizeof(op->q.failure), "unknown_failure: DoH HTTP status %ld",
                 code);
    } else {
        const char *bad = doh_bad_reply(op, easy);
        if (bad)
            snprintf(op->q.failure, sizeof(op->q.failure),
                     "unknown_failure: DoH bad response: %s", bad);
        else
            set_status(&op->q, parse_reply(&op->q, op->buf, (int)op->len));
    }
    op_complete(op);
}

static int doh_start(dns_op *op, const char *host)
{
    vt_dns *d = op->d;
    int qlen = 0;
    if (ares_create_query(host, 1 /* IN */, op->q.qtype, 0, 1, &op->qbuf, &qlen, 0) !=
        ARES_SUCCESS || qlen < 12)
        return -1;
    op->qlen = qlen;
    op->easy = curl_easy_init();
    if (!op->easy)
        return -1;
    op->hdrs = curl_slist_append(NULL, "Content-Type: application/dns-message");
    op->hdrs = curl_slist_append(op->hdrs, "Accept: application/dns-message");
    curl_easy_setopt(op->easy, CURLOPT_URL, d->resolver);
    curl_easy_setopt(op->easy, CURLOPT_POSTFIELDS, op->qbuf);
    curl_easy_setopt(op->easy, CURLOPT_POSTFIELDSIZE, (long)qlen);
    curl_easy_setopt(op->easy, CURLOPT_HTTPHEADER, op->hdrs);
    curl_easy_setopt(op->easy, CURLOPT_WRITEFUNCTION, doh_write);
    curl_easy_setopt(op->easy, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(op->easy, CURLOPT_TIMEOUT_MS, (long)try_timeout_ms(d->cfg) * 3);
    curl_easy_setopt(op->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(op->easy, CURLOPT_ERRORBUFFER, op->errbuf);
    curl_easy_setopt(op->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(op->easy, CURLOPT_FOLLOWLOCATION, 0L);
    /* The process's shared CA store, as for the HTTP step (one parse of the CA file). */
    if (vt_tls_curl_use_ca(op->easy, d->cfg->cacert) < 0 && d->cfg->cacert)
        curl_easy_setopt(op->easy, CURLOPT_CAINFO, d->cfg->cacert);
    if (vt_loop_curl_add(d->loop, op->easy, on_doh, op) < 0)
        return -1;
    return 0;
}

/* A name we can put in a measurement: valid UTF-8 without spaces or control characters (a
 * redirect from a hostile server could name anything). */
static int printable_name(const char *host)
{
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return vt_utf8_valid((const unsigned char *)host, strlen(host));
}

int vt_dns_lookup(vt_dns *d, const char *host, int qtype, double t_base, vt_dns_cb cb, void *arg)
{
    if (!d || !cb || !host || strlen(host) >= sizeof(((vt_dns_query *)0)->hostname) ||
        (qtype != VT_DNS_A && qtype != VT_DNS_AAAA) || !*host || !printable_name(host))
        return -1;
    dns_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -1;
    op->d = d;
    op->loop = d->loop;
    op->cb = cb;
    op->arg = arg;
    op->t_base = t_base;
    op->q.qtype = qtype;
    op->q.rcode = -1;
    op->q.engine = d->type == DNS_DOH ? "doh" : d->type == DNS_UDP ? "udp" : "system";
    snprintf(op->q.resolver, sizeof(op->q.resolver), "%s", d->resolver);
    snprintf(op->q.hostname, sizeof(op->q.hostname), "%s", host);
    op->q.t0 = vt_now() - t_base;

    unsigned char buf[sizeof(struct in6_addr)];
    int is4 = inet_pton(AF_INET, host, buf) == 1, is6 = !is4 && inet_pton(AF_INET6, host, buf) == 1;
    if (is4 || is6) {
        /* An address needs no lookup: answer it (or nothing, for the other family) from the
         * loop, so callers are never called back from inside this call. */
        if ((is4 && qtype == VT_DNS_A) || (is6 && qtype == VT_DNS_AAAA)) {
            op->q.answers = calloc(1, sizeof(*op->q.answers));
            if (!op->q.answers) {
                free(op);
                return -1;
            }
            op->q.answers[0].qtype = qtype;
            snprintf(op->q.answers[0].addr, sizeof(op->q.answers[0].addr), "%s", host);
            op->q.n_answers = 1;
        } else {
            snprintf(op->q.failure, sizeof(op->q.failure), "dns_no_answer");
        }
        op->q.engine = NULL; /* no resolver was asked: engine and rcode are null */
        op->q.resolver[0] = 0;
        op->timer = vt_timer_start(d->loop, 0, on_immediate, op);
        if (!op->timer) {
            op_free(op);
            return -1;
        }
        op_link(op);
        return 0;
    }
    if (d->type == DNS_DOH) {
        op_link(op);
        if (doh_start(op, host) < 0) {
            op_unlink(op);
            op_free(op);
            return -1;
        }
        return 0;
    }
    if (!d->shared && lookup_channel(d, &d->shared, ARES_FLAG_IGNTC) < 0) {
        op_free(op);
        return -1;
    }
    op->ch = d->shared;
    op_link(op);
    op->starting = 1;
    ares_query(op->ch, host, 1 /* C_IN */, qtype, on_ares, op);
    op->starting = 0;
    if (op->deferred) {
        /* c-ares called back at once (a malformed name): answer from the loop instead. */
        op->timer = vt_timer_start(d->loop, 0, on_immediate, op);
        if (!op->timer) {
            op_unlink(op);
            op_free(op);
            return -1;
        }
        return 0;
    }
    vt_loop_ares_kick(d->loop, d->shared);
    if (op->ch != d->shared) /* asked again alone from inside ares_query (retry_alone) */
        vt_loop_ares_kick(d->loop, op->ch);
    return 0;
}

cJSON *vt_dns_query_json(const vt_dns_query *q)
{
    cJSON *o = cJSON_CreateObject();
    /* df-002: answers is a list, [] when there is none (a failed query too). asn/as_org_name:
     * the probe has no IP-to-ASN data, so 0 and "" (AS0 is reserved: "unknown"). */
    cJSON *arr = cJSON_AddArrayToObject(o, "answers");
    for (size_t i = 0; arr && i < q->n_cnames; i++) { /* OONI's CNAME answers, in chain order */
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "asn", 0);
        cJSON_AddStringToObject(a, "as_org_name", "");
        cJSON_AddStringToObject(a, "answer_type", "CNAME");
        cJSON_AddStringToObject(a, "hostname", q->cnames[i]);
        cJSON_AddNumberToObject(a, "ttl", 0);
        cJSON_AddItemToArray(arr, a);
    }
    for (size_t i = 0; arr && i < q->n_answers; i++) {
        cJSON *a = cJSON_CreateObject();
        int v4 = q->answers[i].qtype == VT_DNS_A;
        cJSON_AddNumberToObject(a, "asn", 0);
        cJSON_AddStringToObject(a, "as_org_name", "");
        cJSON_AddStringToObject(a, "answer_type", v4 ? "A" : "AAAA");
        cJSON_AddStringToObject(a, v4 ? "ipv4" : "ipv6", q->answers[i].addr);
        cJSON_AddNumberToObject(a, "ttl", q->answers[i].ttl);
        cJSON_AddItemToArray(arr, a);
    }
    vt_json_add_string_or_null(o, "engine", q->engine);
    vt_json_add_failure(o, "failure", q->failure);
    cJSON_AddStringToObject(o, "hostname", q->hostname);
    cJSON_AddStringToObject(o, "query_type", q->qtype == VT_DNS_A ? "A" : "AAAA");
    cJSON_AddStringToObject(o, "resolver_address", q->resolver);
    cJSON_AddNullToObject(o, "resolver_hostname");
    cJSON_AddNullToObject(o, "resolver_port");
    if (q->rcode >= 0)
        cJSON_AddNumberToObject(o, "rcode", q->rcode);
    else
        cJSON_AddNullToObject(o, "rcode");
    vt_json_add_time(o, "t0", q->t0);
    vt_json_add_time(o, "t", q->t);
    cJSON_AddNullToObject(o, "tags"); /* as OONI's web_connectivity: null */
    return o;
}

/* Test seam for tests/fuzz/fuzz_dns.c: the reply parser on raw bytes (answers freed). */
int vt_dns_parse_reply_for_fuzz(int qtype, const unsigned char *abuf, int alen);
int vt_dns_parse_reply_for_fuzz(int qtype, const unsigned char *abuf, int alen)
{
    vt_dns_query q;
    memset(&q, 0, sizeof(q));
    q.qtype = qtype;
    int rc = parse_reply(&q, abuf, alen);
    free(q.answers);
    free(q.cnames);
    return rc;
}
