/* TLS handshake step: a TCP connect, then a non-blocking OpenSSL handshake driven by the loop,
 * optionally followed by one request/reply exchange inside the session. The chain is verified
 * during the handshake (SSL_VERIFY_NONE + SSL_get_verify_result) so a bad certificate still yields
 * the version, cipher and certificate it came with. */
#include "vantage/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vantage/json.h"

struct vt_tls_ctx {
    SSL_CTX *ctx;
};

/* The process's CA stores, one per CA source (NULL: the system's), made once and shared by the
 * TLS step's SSL_CTX and every libcurl transfer (vt_tls_curl_use_ca).
 *
 * A CA file named with --cacert is parsed at once. The system's store is lazy: OpenSSL's hashed
 * directory (/etc/ssl/certs, kept by update-ca-certificates) is searched for the issuer a chain
 * needs, and only if it has no such certificate is the system's bundle file parsed, once, so the
 * trust is still that of both, as with SSL_CTX_set_default_verify_paths. Parsing Debian's bundle
 * of 144 CAs up front costs about 1 MB of heap and 25 ms of CPU here (several times that on a
 * Raspberry Pi) for the handful of CAs a run meets. */
typedef struct ca_store {
    struct ca_store *next;
    char *path;             /* NULL: the system's */
    X509_STORE *store;      /* the TLS step's */
    X509_STORE *curl_store; /* libcurl's: its own flags; the file's certificates shared */
} ca_store;
static ca_store *ca_stores; /* one per CA file named in the process's configuration */

static ca_store *find_store(const char *cacert)
{
    for (ca_store *c = ca_stores; c; c = c->next)
        if ((!cacert && !c->path) || (cacert && c->path && strcmp(cacert, c->path) == 0)) return c;
    return NULL;
}

/* The system's bundle, parsed into the store the first time the hashed directory lacks an
 * issuer; a lookup method after the directory's, so it is asked only on a miss. */
static const char *system_file(void)
{
    const char *f = getenv(X509_get_default_cert_file_env());
    return f && *f ? f : X509_get_default_cert_file();
}

static const char *system_dir(void)
{
    const char *d = getenv(X509_get_default_cert_dir_env());
    return d && *d ? d : X509_get_default_cert_dir();
}

static int bundle_init(X509_LOOKUP *lu)
{
    X509_LOOKUP_set_method_data(lu, NULL); /* NULL: not loaded yet */
    return 1;
}

static int bundle_by_subject(X509_LOOKUP *lu, X509_LOOKUP_TYPE type, const X509_NAME *name,
                             X509_OBJECT *ret)
{
    X509_STORE *st = X509_LOOKUP_get_store(lu);
    if (!X509_LOOKUP_get_method_data(lu)) {
        X509_LOOKUP_set_method_data(lu, (void *)1);
        /* Certificates already in the store (from the directory) are skipped as duplicates. */
        X509_load_cert_crl_file(lu, system_file(), X509_FILETYPE_PEM);
        ERR_clear_error();
    }
    if (type != X509_LU_X509 || !st) return 0;
    if (!X509_STORE_lock(st)) return 0;
    X509_OBJECT *o = X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(st), type, name);
    X509 *x = o ? X509_OBJECT_get0_X509(o) : NULL;
    X509_STORE_unlock(st);
    if (!x) return 0;
    /* As the directory's lookup does: the caller takes its own reference, the store keeps its. */
    if (X509_OBJECT_set1_X509(ret, x) != 1) return 0;
    X509_free(x);
    return 1;
}

static X509_LOOKUP_METHOD *bundle_method(void)
{
    static X509_LOOKUP_METHOD *m;
    if (!m && (m = X509_LOOKUP_meth_new("vantage system bundle on demand"))) {
        if (X509_LOOKUP_meth_set_init(m, bundle_init) != 1 ||
            X509_LOOKUP_meth_set_get_by_subject(m, bundle_by_subject) != 1) {
            X509_LOOKUP_meth_free(m);
            m = NULL;
        }
    }
    return m;
}

/* The system's lookups on a store: the hashed directory, then the bundle on a miss. */
static int add_system_lookups(X509_STORE *st)
{
    X509_LOOKUP *dir = X509_STORE_add_lookup(st, X509_LOOKUP_hash_dir());
    if (!dir || X509_LOOKUP_add_dir(dir, system_dir(), X509_FILETYPE_PEM) != 1) return 0;
    X509_LOOKUP_METHOD *m = bundle_method();
    return m && X509_STORE_add_lookup(st, m) != NULL;
}

static ca_store *get_store(const char *cacert, char *err, size_t errlen)
{
    ca_store *c = find_store(cacert);
    if (c) return c;
    X509_STORE *st = X509_STORE_new();
    char *path = cacert ? strdup(cacert) : NULL;
    c = calloc(1, sizeof(*c));
    if (!st || !c || (cacert && !path)) {
        snprintf(err, errlen, "cannot create a CA store: out of memory");
        goto fail;
    }
    int ok = cacert ? X509_STORE_load_locations(st, cacert, NULL) : add_system_lookups(st);
    if (ok != 1) {
        unsigned long e = ERR_peek_last_error();
        const char *why = e ? ERR_reason_error_string(e) : NULL;
        snprintf(err, errlen, "cannot load CA certificates from %s: %s",
                 cacert ? cacert : "the system store", why ? why : "unknown error");
        goto fail;
    }
    ERR_clear_error();
    c->path = path;
    c->store = st;
    c->next = ca_stores;
    ca_stores = c;
    return c;
fail:
    ERR_clear_error();
    X509_STORE_free(st);
    free(path);
    free(c);
    return NULL;
}

X509_STORE *vt_tls_ca_store(const char *cacert, char *err, size_t errlen)
{
    ca_store *c = get_store(cacert, err, errlen);
    return c ? c->store : NULL;
}

/* A second store for libcurl, which sets its verification flags on the store it is given: for a
 * CA file the same parsed certificates (X509_STORE_add_cert takes a reference, it does not
 * copy), for the system's the same lazy lookups. */
static X509_STORE *curl_store(ca_store *c)
{
    if (c->curl_store) return c->curl_store;
    X509_STORE *st = X509_STORE_new();
    if (!st) return NULL;
    int ok = 1;
    if (c->path) {
        STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(c->store);
        for (int i = 0; ok && i < sk_X509_OBJECT_num(objs); i++) {
            X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);
            X509 *x = X509_OBJECT_get0_X509(o);
            X509_CRL *crl = X509_OBJECT_get0_X509_CRL(o);
            if (x)
                ok = X509_STORE_add_cert(st, x) == 1;
            else if (crl)
                ok = X509_STORE_add_crl(st, crl) == 1;
        }
    } else {
        ok = add_system_lookups(st);
    }
    ERR_clear_error();
    if (!ok) {
        X509_STORE_free(st);
        return NULL;
    }
    return c->curl_store = st;
}

/* libcurl 7.88 makes a new SSL_CTX for every connection and calls this before it fills the
 * context's store from CURLOPT_CAINFO / CURLOPT_CAPATH (NULL here: it loads nothing) and sets
 * its verification flags on it (X509_V_FLAG_TRUSTED_FIRST, X509_V_FLAG_PARTIAL_CHAIN): on the
 * store installed here, libcurl's copy of the shared certificates, as it would on its own.
 * Newer libcurl fills the store before the callback; then its flags move to the context's
 * parameters (OpenSSL ORs them into every verification). Either way libcurl verifies as before. */
static CURLcode curl_ssl_ctx_cb(CURL *easy, void *sslctx, void *arg)
{
    (void)easy;
    SSL_CTX *ctx = sslctx;
    X509_STORE *shared = arg;
    X509_STORE *own = SSL_CTX_get_cert_store(ctx);
    /* Memory: a transfer waiting on the network holds no 17 KB read and write buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (own == shared) return CURLE_OK;
    unsigned long flags = own ? X509_VERIFY_PARAM_get_flags(X509_STORE_get0_param(own)) : 0;
    SSL_CTX_set1_cert_store(ctx, shared);
    if (flags && X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), flags) != 1)
        return CURLE_SSL_CACERT_BADFILE;
    return CURLE_OK;
}

int vt_tls_curl_use_ca(CURL *easy, const char *cacert)
{
    char err[256];
    ca_store *c = get_store(cacert, err, sizeof(err));
    X509_STORE *st = c ? curl_store(c) : NULL;
    if (!st) return -1;
    if (curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, curl_ssl_ctx_cb) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, st) != CURLE_OK) {
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, NULL);
        return -1;
    }
    curl_easy_setopt(easy, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);
    /* libcurl's own store cache is keyed by CURLOPT_CAINFO, NULL for every source here: off, so
     * that transfers with different CA files on one multi handle never swap stores. */
    curl_easy_setopt(easy, CURLOPT_CA_CACHE_TIMEOUT, 0L);
    return 0;
}

vt_tls_ctx *vt_tls_ctx_new(const char *cacert, char *err, size_t errlen)
{
    X509_STORE *st = vt_tls_ca_store(cacert, err, errlen);
    if (!st) return NULL;
    vt_tls_ctx *c = calloc(1, sizeof(*c));
    if (!c || !(c->ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, errlen, "cannot create a TLS context");
        free(c);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set1_cert_store(c->ctx, st);
    return c;
}

void vt_tls_ctx_free(vt_tls_ctx *c)
{
    if (!c) return;
    SSL_CTX_free(c->ctx);
    free(c);
}

typedef struct tls_op {
    vt_loop *loop;
    vt_tls_ctx *ctx;
    vt_tls_result r;
    vt_tls_cb cb;
    void *arg;
    double t_base, deadline;
    int tls_timeout_ms, no_verify;
    char *verify_name, *alpn;
    int fd;
    SSL *ssl;
    struct event *ev;
    /* the optional first exchange after the handshake */
    unsigned char *payload, *reply;
    size_t payload_len, reply_len;
    vt_tcpx_check_fn check;
    void *check_arg;
    int after_timeout_ms, exchanging;
} tls_op;

static void finish(tls_op *op)
{
    if (!op->exchanging) op->r.t = vt_now() - op->t_base;
    if (op->ev) event_free(op->ev);
    if (op->ssl) {
        if (!op->r.failure[0] || op->r.verify_result != X509_V_OK)
            SSL_shutdown(op->ssl); /* best effort close_notify; non-blocking */
        SSL_free(op->ssl);
    }
    if (op->fd >= 0) close(op->fd);
    ERR_clear_error();
    op->r.reply = op->reply;
    op->r.reply_len = op->reply_len;
    op->cb(&op->r, op->arg);
    free(op->r.leaf_der);
    free(op->verify_name);
    free(op->alpn);
    free(op->payload);
    free(op->reply);
    free(op);
}

/* Ends the first exchange: failure NULL or "" when the reply was accepted. */
static void after_done(tls_op *op, const char *failed_operation, const char *failure)
{
    op->r.after_t = vt_now() - op->t_base;
    snprintf(op->r.after_failure, sizeof(op->r.after_failure), "%s", failure ? failure : "");
    op->r.after_failed_operation = failure && *failure ? failed_operation : NULL;
    finish(op);
}

/* An OpenSSL error as an OONI failure string. OpenSSL 3 reports a peer's FIN mid-record as an
 * SSL error (unexpected EOF): that is eof_error, as a FIN between records is. */
static const char *ssl_failure(int e, int sys, long verify, char *f, size_t n)
{
    unsigned long ossl = ERR_peek_error();
    if (e == SSL_ERROR_SSL && ERR_GET_LIB(ossl) == ERR_LIB_SSL &&
        ERR_GET_REASON(ossl) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        e = SSL_ERROR_SYSCALL;
        sys = 0;
    }
    return vt_failure_ssl(e, verify, sys, f, n);
}

/* A failed SSL_write / SSL_read of the exchange. */
static const char *io_failure(tls_op *op, int rc, char *f, size_t n)
{
    int sys = errno;
    return ssl_failure(SSL_get_error(op->ssl, rc), sys, X509_V_OK, f, n);
}

static void wait_for(tls_op *op, short what);

/* Writes the payload, then reads until the check decides; returns when it must wait. */
static void exchange(tls_op *op)
{
    char f[VT_FAILURE_MAX];
    while (op->r.after_sent < op->payload_len) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write(op->ssl, op->payload + op->r.after_sent,
                           (int)(op->payload_len - op->r.after_sent));
        if (rc > 0) {
            op->r.after_sent += (size_t)rc;
            continue;
        }
        int e = SSL_get_error(op->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            wait_for(op, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE);
            return;
        }
        after_done(op, "write", io_failure(op, rc, f, sizeof(f)));
        return;
    }
    /* Acknowledge at once what arrives while waiting for the reply: a TLS 1.3 server's session
     * tickets come first, and a server with Nagle on holds its reply until they are acknowledged
     * (a real Tor relay: 45-50 ms on loopback with delayed ACKs, under 1 ms with this). Linux
     * clears the flag by itself, hence each time. */
    int one = 1;
    setsockopt(op->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    for (;;) {
        if (op->reply_len >= VT_TCPX_MAX_REPLY) {
            after_done(op, "read", "unknown_failure: reply too long");
            return;
        }
        ERR_clear_error();
        errno = 0;
        int rc =
            SSL_read(op->ssl, op->reply + op->reply_len, (int)(VT_TCPX_MAX_REPLY - op->reply_len));
        if (rc <= 0) {
            int e = SSL_get_error(op->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                wait_for(op, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE);
                return;
            }
            after_done(op, "read", io_failure(op, rc, f, sizeof(f)));
            return;
        }
        op->reply_len += (size_t)rc;
        op->r.after_received = op->reply_len;
        f[0] = 0;
        int verdict = op->check(op->reply, op->reply_len, op->check_arg, f, sizeof(f));
        if (verdict == VT_TCPX_ACCEPT) {
            op->r.after_rtt = vt_now() - op->t_base - op->r.after_t0;
            after_done(op, NULL, NULL);
            return;
        }
        if (verdict == VT_TCPX_REJECT) {
            after_done(op, "read", f[0] ? f : "unknown_failure: unexpected reply");
            return;
        }
    }
}

static void start_exchange(tls_op *op)
{
    op->reply = malloc(VT_TCPX_MAX_REPLY);
    if (!op->reply) {
        vt_failure_unknown("out of memory", op->r.after_failure, sizeof(op->r.after_failure));
        op->r.after_failed_operation = "write";
        finish(op);
        return;
    }
    /* The request follows the handshake's last flight at once: without this, Nagle holds it
     * until that flight is acknowledged (a delayed ACK, ~40 ms) and the RTT measures that. */
    int one = 1;
    setsockopt(op->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    op->exchanging = 1;
    op->r.after_tried = 1;
    op->r.after_t0 = vt_now() - op->t_base;
    op->deadline = vt_now() + op->after_timeout_ms / 1000.0;
    exchange(op);
}

static void record_session(tls_op *op)
{
    SSL *ssl = op->ssl;
    snprintf(op->r.tls_version, sizeof(op->r.tls_version), "%s", SSL_get_version(ssl));
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    const char *name = c ? SSL_CIPHER_standard_name(c) : NULL;
    snprintf(op->r.cipher_suite, sizeof(op->r.cipher_suite), "%s", name ? name : "");
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    if (alen >= sizeof(op->r.negotiated_protocol)) alen = sizeof(op->r.negotiated_protocol) - 1;
    memcpy(op->r.negotiated_protocol, alpn ? (const char *)alpn : "", alen);
    op->r.negotiated_protocol[alen] = 0;
    X509 *leaf = SSL_get1_peer_certificate(ssl);
    if (leaf) {
        int n = i2d_X509(leaf, NULL);
        if (n > 0 && (op->r.leaf_der = malloc((size_t)n))) {
            unsigned char *p = op->r.leaf_der;
            i2d_X509(leaf, &p);
            op->r.leaf_der_len = (size_t)n;
        }
        X509_free(leaf);
    }
    op->r.verify_result = op->no_verify ? X509_V_OK : SSL_get_verify_result(ssl);
    if (!op->no_verify && !leaf)
        op->r.verify_result = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT; /* anonymous: untrusted */
}

static void step(evutil_socket_t fd, short what, void *arg);

static void wait_for(tls_op *op, short what)
{
    double left = op->deadline - vt_now();
    if (left < 0) left = 0;
    struct timeval tv = {(long)left, (long)((left - (long)left) * 1e6)};
    if (op->ev) event_free(op->ev);
    op->ev = event_new(vt_loop_base(op->loop), op->fd, what, step, op);
    if (!op->ev || event_add(op->ev, &tv) < 0) {
        vt_failure_unknown("cannot watch the socket", op->r.failure, sizeof(op->r.failure));
        finish(op);
    }
}

static void step(evutil_socket_t fd, short what, void *arg)
{
    tls_op *op = arg;
    if (op->exchanging) {
        if (what & EV_TIMEOUT)
            after_done(op, op->r.after_sent < op->payload_len ? "write" : "read",
                       "generic_timeout_error");
        else
            exchange(op);
        return;
    }
    if (what & EV_TIMEOUT) {
        snprintf(op->r.failure, sizeof(op->r.failure), "generic_timeout_error");
        op->r.failed_operation = "tls_handshake_done";
        finish(op);
        return;
    }
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(op->ssl);
    if (rc == 1) {
        record_session(op);
        if (op->r.verify_result != X509_V_OK) {
            vt_failure_ssl(SSL_ERROR_NONE, op->r.verify_result, 0, op->r.failure,
                           sizeof(op->r.failure));
            op->r.failed_operation = "tls_handshake_done";
        } else if (op->payload) {
            op->r.t = vt_now() - op->t_base;
            start_exchange(op);
            return;
        }
        finish(op);
        return;
    }
    int e = SSL_get_error(op->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        wait_for(op, EV_READ);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        wait_for(op, EV_WRITE);
        return;
    }
    int sys = errno;
    ssl_failure(e, sys, op->no_verify ? X509_V_OK : SSL_get_verify_result(op->ssl), op->r.failure,
                sizeof(op->r.failure));
    op->r.failed_operation = "tls_handshake_done";
    finish(op);
}

/* "h2,http/1.1" -> ALPN wire format. */
static int set_alpn(SSL *ssl, const char *list)
{
    unsigned char wire[256];
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > 255 || n + 1 + len > sizeof(wire)) return -1;
        wire[n++] = (unsigned char)len;
        memcpy(wire + n, p, len);
        n += len;
        p += len + (comma ? 1 : 0);
    }
    return n ? (SSL_set_alpn_protos(ssl, wire, (unsigned)n) == 0 ? 0 : -1) : 0;
}

static void on_connected(const vt_tcp_result *tr, int fd, void *arg)
{
    tls_op *op = arg;
    op->r.tcp = *tr;
    op->fd = fd;
    if (fd < 0) {
        snprintf(op->r.failure, sizeof(op->r.failure), "%s", tr->failure);
        op->r.failed_operation = "connect";
        finish(op);
        return;
    }
    op->ssl = SSL_new(op->ctx->ctx);
    if (!op->ssl || SSL_set_fd(op->ssl, fd) != 1) {
        vt_failure_unknown("cannot create a TLS session", op->r.failure, sizeof(op->r.failure));
        op->r.failed_operation = "tls_handshake_start";
        finish(op);
        return;
    }
    /* No SNI for an address (RFC 6066; Go's crypto/tls, which OONI uses, does the same). */
    unsigned char addr[16];
    if (op->r.server_name[0] && inet_pton(AF_INET, op->r.server_name, addr) != 1 &&
        inet_pton(AF_INET6, op->r.server_name, addr) != 1)
        SSL_set_tlsext_host_name(op->ssl, op->r.server_name);
    if (!op->no_verify && op->verify_name) {
        SSL_set_hostflags(op->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(op->ssl, op->verify_name);
    }
    if (op->alpn && set_alpn(op->ssl, op->alpn) < 0) {
        vt_failure_unknown("bad ALPN list", op->r.failure, sizeof(op->r.failure));
        op->r.failed_operation = "tls_handshake_start";
        finish(op);
        return;
    }
    SSL_set_connect_state(op->ssl);
    op->deadline = vt_now() + op->tls_timeout_ms / 1000.0;
    op->r.t0 = vt_now() - op->t_base;
    step(fd, EV_WRITE, op);
}

int vt_tls_handshake(vt_loop *loop, vt_tls_ctx *ctx, const vt_tls_opts *o, vt_tls_cb cb, void *arg)
{
    if (!loop || !ctx || !o || !cb || !o->ip || o->port < 1 || o->port > 65535) return -1;
    tls_op *op = calloc(1, sizeof(*op));
    if (!op) return -1;
    op->loop = loop;
    op->ctx = ctx;
    op->cb = cb;
    op->arg = arg;
    op->fd = -1;
    op->t_base = o->t_base;
    op->no_verify = o->no_verify;
    op->tls_timeout_ms = o->tls_timeout_ms > 0 ? o->tls_timeout_ms : 10000;
    op->r.no_tls_verify = o->no_verify;
    op->r.port = o->port;
    snprintf(op->r.ip, sizeof(op->r.ip), "%s", o->ip);
    if (strchr(o->ip, ':'))
        snprintf(op->r.address, sizeof(op->r.address), "[%s]:%d", o->ip, o->port);
    else
        snprintf(op->r.address, sizeof(op->r.address), "%s:%d", o->ip, o->port);
    snprintf(op->r.server_name, sizeof(op->r.server_name), "%s", o->sni ? o->sni : "");
    const char *vn = o->verify_name ? o->verify_name : o->sni;
    op->verify_name = vn ? strdup(vn) : NULL;
    op->alpn = o->alpn ? strdup(o->alpn) : NULL;
    op->r.after_rtt = -1;
    if (o->after_payload) {
        if (!o->after_check || !o->after_payload_len ||
            !(op->payload = malloc(o->after_payload_len))) {
            free(op->verify_name);
            free(op->alpn);
            free(op);
            return -1;
        }
        memcpy(op->payload, o->after_payload, o->after_payload_len);
        op->payload_len = o->after_payload_len;
        op->check = o->after_check;
        op->check_arg = o->after_check_arg;
        op->after_timeout_ms = o->after_timeout_ms > 0 ? o->after_timeout_ms : 10000;
    }
    op->r.t0 = vt_now() - o->t_base;
    int cto = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    if (vt_tcp_connect(loop, o->ip, o->port, cto, o->t_base, on_connected, op) < 0) {
        free(op->verify_name);
        free(op->alpn);
        free(op->payload);
        free(op);
        return -1;
    }
    return 0;
}

cJSON *vt_tls_result_json(const vt_tls_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "address", r->address);
    cJSON_AddStringToObject(o, "cipher_suite", r->cipher_suite);
    vt_json_add_failure(o, "failure", r->failure);
    vt_json_add_string_or_null(o, "failed_operation", r->failed_operation);
    cJSON_AddStringToObject(o, "negotiated_protocol", r->negotiated_protocol);
    cJSON_AddBoolToObject(o, "no_tls_verify", r->no_tls_verify);
    cJSON *certs = cJSON_AddArrayToObject(o, "peer_certificates");
    if (r->leaf_der && r->leaf_der_len) {
        cJSON *c = cJSON_CreateObject();
        size_t outlen = 4 * ((r->leaf_der_len + 2) / 3) + 1;
        unsigned char *b64 = malloc(outlen);
        if (b64) {
            EVP_EncodeBlock(b64, r->leaf_der, (int)r->leaf_der_len);
            cJSON_AddStringToObject(c, "data", (char *)b64);
            cJSON_AddStringToObject(c, "format", "base64");
            free(b64);
        }
        cJSON_AddItemToArray(certs, c);
    }
    cJSON_AddStringToObject(o, "server_name", r->server_name);
    vt_json_add_time(o, "t0", r->t0);
    vt_json_add_time(o, "t", r->t);
    cJSON_AddItemToObject(o, "tags", cJSON_CreateArray());
    cJSON_AddStringToObject(o, "tls_version", r->tls_version);
    return o;
}
