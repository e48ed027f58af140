/* TLS handshake measurement step: its own TCP connection, then an OpenSSL handshake with SNI,
 * non-blocking on the loop. Certificate verification against the system CAs or a given CA file. */
#ifndef VANTAGE_TLS_H
#define VANTAGE_TLS_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/x509.h>

#include "failure.h"
#include "loop.h"
#include "tcp.h"
#include "tcp_exchange.h"

typedef struct vt_tls_ctx vt_tls_ctx;

/* cacert: PEM CA bundle, NULL for the system's. One SSL_CTX per process and CA source; its CA
 * store is the shared one of vt_tls_ca_store. */
vt_tls_ctx *vt_tls_ctx_new(const char *cacert, char *err, size_t errlen);

/* The process's parsed CA store for cacert (NULL: the system's, OpenSSL's default file and
 * directory), loaded on first use and kept for the life of the process: borrowed, never free it.
 * Not thread-safe (the probe has one loop). NULL and err when the file cannot be loaded. */
X509_STORE *vt_tls_ca_store(const char *cacert, char *err, size_t errlen);
/* Makes a libcurl transfer verify against that shared store instead of loading and parsing the CA
 * file for every connection (libcurl 7.88 does, with Debian's default CA path): an SSL_CTX
 * callback installs the store, CURLOPT_CAINFO and CURLOPT_CAPATH become NULL. libcurl's own
 * verification (its flags, host name check, error codes) is unchanged. -1 (nothing changed on
 * the handle) when the store cannot be loaded: the caller keeps CURLOPT_CAINFO then. */
int vt_tls_curl_use_ca(CURL *easy, const char *cacert);
void vt_tls_ctx_free(vt_tls_ctx *c);

typedef struct vt_tls_result {
    char address[INET6_ADDRSTRLEN + 8]; /* "ip:port" / "[ip]:port" */
    char ip[INET6_ADDRSTRLEN];
    int port;
    char server_name[256];
    char failure[VT_FAILURE_MAX]; /* "" when the handshake and verification succeeded */
    const char *failed_operation; /* OONI: "connect", "tls_handshake_start" / "_done", or NULL */
    char tls_version[16];         /* "TLSv1.3" */
    char cipher_suite[64];        /* IANA name, "TLS_AES_128_GCM_SHA256" */
    char negotiated_protocol[32]; /* ALPN, "" when none */
    long verify_result;           /* X509_V_OK (0) or the X509 error code */
    int no_tls_verify;            /* 1 when verification was off */
    unsigned char *leaf_der;      /* the server's certificate (DER), or NULL */
    size_t leaf_der_len;
    double t0, t;      /* seconds since the measurement's start */
    vt_tcp_result tcp; /* the connect this handshake ran on */
    /* The first exchange inside the session (vt_tls_opts.after_payload), when one was asked for
     * and the handshake succeeded: */
    int after_tried;
    char after_failure[VT_FAILURE_MAX]; /* "" when the reply was accepted */
    const char *after_failed_operation; /* "write" or "read", or NULL */
    double after_t0, after_t;           /* write start, end */
    double after_rtt;                   /* written to accepted, seconds; -1 without */
    size_t after_sent, after_received;  /* application bytes */
    const unsigned char *reply;         /* valid during the callback */
    size_t reply_len;
} vt_tls_result;

/* The ALPN list the web kind's TLS step offers (lib/web.c); its repeat offers the same. */
#define VT_WEB_ALPN "h2,http/1.1"

typedef struct vt_tls_opts {
    const char *ip;
    int port;
    const char *sni;         /* NULL: no SNI */
    const char *verify_name; /* name the certificate must match (default: sni) */
    const char *alpn;        /* comma list, "h2,http/1.1"; NULL: none */
    int no_verify;
    int connect_timeout_ms;
    int tls_timeout_ms;
    double t_base;
    /* Optional: after a successful handshake, write after_payload (copied) and read until
     * after_check accepts or rejects the reply (at most VT_TCPX_MAX_REPLY bytes, after_timeout_ms
     * from the handshake's end, default 10000): a protocol's first exchange inside TLS (Tor's
     * VERSIONS cells). */
    const unsigned char *after_payload;
    size_t after_payload_len;
    vt_tcpx_check_fn after_check;
    void *after_check_arg;
    int after_timeout_ms;
} vt_tls_opts;

typedef void (*vt_tls_cb)(const vt_tls_result *r, void *arg);
/* Connects to o->ip:o->port and shakes hands. Returns -1 only when it cannot even start (bad
 * address or arguments); otherwise cb is called exactly once, from the loop. An IP address as
 * sni is recorded as server_name but not sent (RFC 6066). Like every socket step, it expects
 * the process to ignore SIGPIPE (a peer may reset while close_notify is written). */
int vt_tls_handshake(vt_loop *loop, vt_tls_ctx *ctx, const vt_tls_opts *o, vt_tls_cb cb, void *arg);

/* OONI "tls_handshakes" entry: {address, server_name, failure, tls_version, cipher_suite,
 * negotiated_protocol, no_tls_verify, peer_certificates:[{format:"base64",data}], t0, t}. */
cJSON *vt_tls_result_json(const vt_tls_result *r);

#endif
