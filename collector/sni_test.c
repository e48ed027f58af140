/* The SNI test server (sni_test.h): an evconnlistener and one bufferevent_openssl per
 * connection on the collector's loop.
 *
 * A connection goes HEAD (handshake and request headers, VT_SNI_TEST_REQUEST_TIMEOUT_S) -> SEND
 * (the answer, refilled from the write callback so that at most FILL_HIGH bytes wait per
 * connection, never the whole answer) -> LINGER (close_notify and FIN sent, what the client still
 * sends is read and dropped for a moment: closing a socket with unread input sends a reset, which
 * can destroy the answer before the client has read it) -> freed. */
#include "sni_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "log.h"
#include "ratelimit.h"
#include "vantage/addr.h"

#define CHUNK 65536           /* the random block, sent again and again */
#define FILL_LOW (32 * 1024)  /* refill the output when it drains below this */
#define FILL_HIGH (2 * CHUNK) /* and up to this */
#define LINGER_MS 2000

enum { ST_HEAD, ST_SEND, ST_LINGER };

typedef struct sni_conn sni_conn;

struct vt_sni_test {
    vt_loop *loop;
    SSL_CTX *ctx;
    struct evconnlistener *listener;
    vt_ratelimit *rl;
    int port;
    int shut;
    size_t open;
    unsigned long served, refused_cap, limited;
    double accept_err_logged; /* vt_now() of the last accept error logged */
    char pin[64];             /* sha256// and 44 characters of base64 */
    char *endpoint;
    unsigned char block[CHUNK];
    sni_conn *conns;
};

struct sni_conn {
    vt_sni_test *s;
    struct bufferevent *bev;
    struct event *timer;
    int state;
    int limited, retry_after; /* the rate limit refused this client at accept: 429 */
    long remaining;           /* body bytes still to queue */
    sni_conn *next, **pprev;
};

void vt_sni_test_opts_default(vt_sni_test_opts *o)
{
    memset(o, 0, sizeof(*o));
    /* A probe run asks 2 requests per HTTPS target, 4 for one that looks throttled: the 25 of
     * the default lists take 50 to 100 in under a minute, and a few probes may share one
     * address (a household, a CGNAT). */
    o->rate_per_min = 240;
    o->burst = 240;
}

/* ---- the request line ---- */

/* bytes=N: 1..VT_SNI_TEST_MAX_BYTES, decimal digits only; -1 otherwise. */
static long parse_bytes(const char *v, size_t n)
{
    if (n == 0) return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (v[i] - '0');
        if (x > VT_SNI_TEST_MAX_BYTES) return -1; /* also keeps x from overflowing */
    }
    return x >= 1 ? x : -1;
}

/* The query after '?': other parameters are ignored; bytes= given twice is refused rather than
 * one of them chosen, as a proxy in between might choose the other. */
static int parse_query(const char *q, size_t n, long *bytes)
{
    int seen = 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j - i >= 6 && memcmp(q + i, "bytes=", 6) == 0) {
            long v = parse_bytes(q + i + 6, j - i - 6);
            if (v < 0 || seen++) return 400;
            *bytes = v;
        }
        i = j + 1;
    }
    return 200;
}

int vt_sni_test_parse_request(const char *line, size_t len, long *bytes)
{
    *bytes = VT_SNI_TEST_DEFAULT_BYTES;
    /* GET SP target SP HTTP/1.x, nothing else: HEAD and every other method are 400. */
    if (len < 4 || memcmp(line, "GET ", 4) != 0) return 400;
    const char *t = line + 4, *end = line + len;
    const char *sp = memchr(t, ' ', (size_t)(end - t));
    if (!sp || sp == t || t[0] != '/') return 400;
    const char *v = sp + 1;
    if ((size_t)(end - v) != 8 || (memcmp(v, "HTTP/1.1", 8) != 0 && memcmp(v, "HTTP/1.0", 8) != 0))
        return 400;
    for (const char *p = t; p < sp; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 400;
    const char *q = memchr(t, '?', (size_t)(sp - t));
    size_t plen = (size_t)((q ? q : sp) - t);
    if (plen != strlen(VT_SNI_TEST_PATH) || memcmp(t, VT_SNI_TEST_PATH, plen) != 0) return 404;
    return q ? parse_query(q + 1, (size_t)(sp - q - 1), bytes) : 200;
}

/* ---- connections ---- */

static void conn_free(sni_conn *c)
{
    if (c->timer) event_free(c->timer);
    if (c->bev) bufferevent_free(c->bev); /* frees the SSL and closes the socket */
    if (c->next) c->next->pprev = c->pprev;
    *c->pprev = c->next;
    c->s->open--;
    free(c);
}

static void arm(sni_conn *c, double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
    evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg); /* a deadline passed (or the linger ended): no answer, just the close */
}

/* The answer is flushed: close_notify and FIN now; the client's own close ends the linger. */
static void finish(sni_conn *c)
{
    c->state = ST_LINGER;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl) SSL_shutdown(ssl);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0) shutdown(fd, SHUT_WR);
    bufferevent_disable(c->bev, EV_WRITE);
    evtimer_del(c->timer);
    arm(c, LINGER_MS / 1000.0);
}

/* Tops the output up to FILL_HIGH from the random block; the write callback calls it again once
 * the socket has taken the output down to FILL_LOW. */
static void fill(sni_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len;
    while (c->remaining > 0 && (len = evbuffer_get_length(out)) < FILL_HIGH) {
        size_t n = c->remaining < CHUNK ? (size_t)c->remaining : CHUNK;
        if (n > FILL_HIGH - len) n = FILL_HIGH - len;
        if (evbuffer_add(out, c->s->block, n) < 0) break; /* out of memory: the deadline ends it */
        c->remaining -= (long)n;
    }
}

static void reply_error(sni_conn *c, int code, const char *text)
{
    const char *reason = code == 404   ? "Not Found"
                         : code == 429 ? "Too Many Requests"
                                       : "Bad Request";
    char retry[40] = "";
    if (code == 429) snprintf(retry, sizeof(retry), "Retry-After: %d\r\n", c->retry_after);
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n%s",
                        code, reason, strlen(text), retry, text);
}

/* The request is in (or could not be): answer it. Nothing after it is read as a request. */
static void answer(sni_conn *c, int code, long bytes)
{
    c->state = ST_SEND;
    if (c->limited) code = 429;
    if (code == 200) {
        c->s->served++;
        c->remaining = bytes;
        evbuffer_add_printf(bufferevent_get_output(c->bev),
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            "Content-Length: %ld\r\nCache-Control: no-store\r\n"
                            "Connection: close\r\n\r\n",
                            bytes);
        fill(c);
    } else if (code == 404) {
        reply_error(c, 404, "not found: the SNI test is GET " VT_SNI_TEST_PATH "?bytes=N\n");
    } else if (code == 429) {
        c->s->limited++;
        reply_error(c, 429, "too many requests: retry after Retry-After seconds\n");
    } else {
        reply_error(c, 400,
                    "bad request: GET " VT_SNI_TEST_PATH "?bytes=N (1..1048576), "
                    "headers under 8 KiB\n");
    }
}

/* The headers end at the first empty line; -1 while it has not arrived. */
static ssize_t header_end(struct evbuffer *in)
{
    struct evbuffer_ptr crlf = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    struct evbuffer_ptr lf = evbuffer_search(in, "\n\n", 2, NULL);
    if (crlf.pos >= 0 && (lf.pos < 0 || crlf.pos + 2 <= lf.pos)) return crlf.pos + 4;
    return lf.pos >= 0 ? lf.pos + 2 : -1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    sni_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->state != ST_HEAD) { /* one request per connection: the rest is dropped */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    ssize_t end = header_end(in);
    if (end < 0 && evbuffer_get_length(in) <= VT_SNI_TEST_MAX_HEADER) return; /* more to come */
    long bytes = 0;
    int code = 400;
    if (end >= 0 && end <= VT_SNI_TEST_MAX_HEADER) {
        size_t len = 0;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (line) code = vt_sni_test_parse_request(line, len, &bytes);
        free(line);
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    answer(c, code, bytes);
    /* The whole connection's deadline from here (the headers' one has served its purpose). */
    evtimer_del(c->timer);
    arm(c, VT_SNI_TEST_TOTAL_TIMEOUT_S - VT_SNI_TEST_REQUEST_TIMEOUT_S);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    sni_conn *c = arg;
    if (c->state != ST_SEND) return;
    fill(c);
    if (c->remaining == 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0) finish(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    sni_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) return; /* the handshake is done; the request comes next */
    /* EOF, a TLS or socket error (a vanished client, bytes that are not TLS): the errors are the
     * client's, and they say nothing about the server, so they are not logged. */
    while (bufferevent_get_openssl_error(bev))
        ;
    conn_free(c);
}

/* The client's rate limit key: its address, an IPv6 client as its /64 (as api.c's). */
static int rate_take(vt_sni_test *s, const struct sockaddr *sa, int *retry)
{
    char addr[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN] = "";
    vt_addr_text(sa, addr, sizeof(addr));
    int ok = vt_ratelimit_take(s->rl, vt_ratelimit_client(addr, net), vt_now(), retry);
    memset(addr, 0, sizeof(addr)); /* the address is dropped here */
    memset(net, 0, sizeof(net));
    return ok;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)salen;
    vt_sni_test *s = arg;
    /* Over the cap: closed at once, before any TLS work, so that a flood costs only accepts. */
    if (s->shut || s->open >= VT_SNI_TEST_MAX_CONNS) {
        s->refused_cap++;
        evutil_closesocket(fd);
        return;
    }
    sni_conn *c = calloc(1, sizeof(*c));
    SSL *ssl = c ? SSL_new(s->ctx) : NULL;
    if (!ssl) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->s = s;
    c->retry_after = 1;
    c->limited = !rate_take(s, sa, &c->retry_after);
    c->bev = bufferevent_openssl_socket_new(vt_loop_base(s->loop), fd, ssl,
                                            BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(vt_loop_base(s->loop), on_timer, c);
    c->next = s->conns;
    if (s->conns) s->conns->pprev = &c->next;
    c->pprev = &s->conns;
    s->conns = c;
    s->open++;
    if (!c->bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
    }
    if (!c->bev || !c->timer) {
        conn_free(c);
        return;
    }
    /* A client that closes without close_notify reports EOF, not a TLS error. */
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, FILL_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm(c, VT_SNI_TEST_REQUEST_TIMEOUT_S);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    vt_sni_test *s = arg;
    /* EMFILE and the like: the listener keeps going, and tries again as long as the condition
     * lasts, so the cause (never an address) is logged at most every 10 s. */
    int e = errno;
    double now = vt_now();
    if (s->accept_err_logged > 0 && now - s->accept_err_logged < 10) return;
    s->accept_err_logged = now;
    vt_log_msg("vantage-collector: SNI test: accept: %s", strerror(e));
}

/* ---- certificate and TLS context ---- */

/* ALPN: http/1.1 when offered; otherwise no ALPN at all rather than a failed handshake, since
 * what matters is that the handshake with that name goes through. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A self-signed certificate for an EC P-256 key, CN vantage-sni-test, valid from a day ago
 * (clients with a slow clock) for a year. Probes pin its key (the check-in's pin), not a CA. */
static int self_signed(SSL_CTX *ctx, char *err, size_t errlen)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char serial[8];
    BIGNUM *bn = NULL;
    int ok = pkey && x && name && RAND_bytes(serial, sizeof(serial)) == 1;
    if (ok) {
        serial[0] &= 0x7f; /* positive */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        ok = bn && X509_set_version(x, 2) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -86400L) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400L) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"vantage-sni-test", -1, -1, 0) &&
             X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
             X509_set_pubkey(x, pkey) && X509_sign(x, pkey, EVP_sha256()) > 0 &&
             SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, pkey) == 1;
    }
    if (!ok) snprintf(err, errlen, "SNI test: cannot make a certificate");
    BN_free(bn);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ok ? 0 : -1;
}

static int load_cert(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "--sni-test-cert %s: not a readable PEM certificate", cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "--sni-test-key %s: not a readable PEM key of that certificate", key);
        return -1;
    }
    return 0;
}

/* sha256//BASE64(SHA-256(DER SubjectPublicKeyInfo)), as libcurl's pinned public key. */
static int make_pin(SSL_CTX *ctx, char *pin, size_t pinlen)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
    unsigned char *der = NULL, md[32], b64[48];
    int n = pk ? i2d_PUBKEY(pk, &der) : -1;
    unsigned int mdlen = 0;
    int ok = n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    if (!ok || mdlen != 32) return -1;
    EVP_EncodeBlock(b64, md, 32);
    snprintf(pin, pinlen, "sha256//%s", (const char *)b64);
    return 0;
}

static SSL_CTX *make_ctx(const vt_sni_test_opts *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "SNI test: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Every connection the same full handshake, so that both of a probe's pair cost the same;
     * and no tickets sent after the handshake that a client would leave unread. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    /* No servername callback: every name, and none, gets the same certificate. */
    int r = o->cert ? load_cert(ctx, o->cert, o->key, err, errlen) : self_signed(ctx, err, errlen);
    if (r < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- listening ---- */

/* The wildcard address (0.0.0.0, ::, in any spelling), or none: no address to announce. */
static int is_any(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!*host) return 1;
    if (inet_pton(AF_INET, host, &a4) == 1) return a4.s_addr == htonl(INADDR_ANY);
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6);
}

/* HOST:PORT, IPv6 in brackets. */
static char *host_port(const char *host, int port)
{
    char buf[160];
    snprintf(buf, sizeof(buf), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return strdup(buf);
}

static int bind_listen(vt_sni_test *s, const char *listen, char host[128], char *err, size_t errlen)
{
    int port;
    if (vt_api_parse_listen(listen, host, &port, err, errlen) < 0) {
        snprintf(err, errlen,
                 "--sni-test-listen '%s': expected ADDR:PORT ([ADDR6]:PORT), port "
                 "0..65535",
                 listen);
        return -1;
    }
    char ps[8];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gr = getaddrinfo(*host ? host : NULL, ps, &hints, &ai);
    if (gr != 0) {
        snprintf(err, errlen, "--sni-test-listen %s: %s", listen, gai_strerror(gr));
        return -1;
    }
    errno = 0;
    s->listener =
        evconnlistener_new_bind(vt_loop_base(s->loop), on_accept, s,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                128, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!s->listener) {
        snprintf(err, errlen, "cannot listen on %s (SNI test): %s", listen,
                 errno ? strerror(errno) : "not a local address");
        return -1;
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

vt_sni_test *vt_sni_test_new(vt_loop *loop, const vt_sni_test_opts *o, char *err, size_t errlen)
{
    char host[128];
    int pport;
    if (!o->cert != !o->key) {
        snprintf(err, errlen, "--sni-test-cert and --sni-test-key go together");
        return NULL;
    }
    if (o->public_addr && (vt_api_parse_listen(o->public_addr, host, &pport, err, errlen) < 0 ||
                           !*host || pport == 0)) {
        snprintf(err, errlen, "--sni-test-public '%s': expected HOST:PORT ([ADDR6]:PORT)",
                 o->public_addr);
        return NULL;
    }
    vt_sni_test *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->rl = vt_ratelimit_new(o->rate_per_min / 60.0, o->burst, 4096);
    if (!s->rl || RAND_bytes(s->block, sizeof(s->block)) != 1) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->ctx = make_ctx(o, err, errlen);
    if (!s->ctx || make_pin(s->ctx, s->pin, sizeof(s->pin)) < 0 ||
        bind_listen(s, o->listen, host, err, errlen) < 0) {
        if (s->ctx && !*err) snprintf(err, errlen, "SNI test: cannot read the certificate's key");
        goto fail;
    }
    if (o->public_addr)
        s->endpoint = strdup(o->public_addr);
    else if (!is_any(host))
        s->endpoint = host_port(host, s->port);
    if ((o->public_addr || !is_any(host)) && !s->endpoint) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return s;
fail:
    vt_sni_test_free(s);
    return NULL;
}

int vt_sni_test_port(const vt_sni_test *s)
{
    return s->port;
}

const char *vt_sni_test_pin(const vt_sni_test *s)
{
    return s->pin;
}

const char *vt_sni_test_endpoint(const vt_sni_test *s)
{
    return s->endpoint;
}

void vt_sni_test_shutdown(vt_sni_test *s)
{
    if (!s || s->shut) return;
    s->shut = 1;
    if (s->listener) evconnlistener_free(s->listener);
    s->listener = NULL;
    /* Downloads are measurements the probe repeats; none is worth holding the shutdown for. */
    while (s->conns)
        conn_free(s->conns);
    vt_log_msg("vantage-collector: SNI test: stopped (%lu served, %lu refused over the connection "
               "cap, %lu rate limited)",
               s->served, s->refused_cap, s->limited);
}

void vt_sni_test_free(vt_sni_test *s)
{
    if (!s) return;
    if (s->listener) evconnlistener_free(s->listener);
    while (s->conns)
        conn_free(s->conns);
    SSL_CTX_free(s->ctx);
    vt_ratelimit_free(s->rl);
    free(s->endpoint);
    free(s);
}
