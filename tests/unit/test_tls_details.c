/* What the TLS handshake step records against loopback servers with certificates from
 * tests/servers/mkca.sh (tests/servers/tlsserver.py): SNI and ALPN as sent, version and IANA
 * cipher names, the leaf certificate in the OONI entry, names checked against IP SANs,
 * handshakes without verification, and the optional exchange inside the session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "spawn_server.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/tls.h"

static test_server sni_srv, ip_srv, old_srv, nosni_srv, pong_srv, close_srv;
static int sni_port, ip_port, old_port, nosni_port, pong_port, close_port;
static char cadir[64], cacert[128];

static int port_of(const test_server *s)
{
    cJSON *j = cJSON_Parse(s->line);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "tls");
    int p = cJSON_IsNumber(v) ? v->valueint : 0;
    cJSON_Delete(j);
    return p;
}

static int start(test_server *s, const char *src, const char *cert, const char *extra1,
                 const char *extra2, const char *extra3, const char *extra4)
{
    char script[600], pair[300];
    snprintf(script, sizeof(script), "%s/tests/servers/tlsserver.py", src);
    snprintf(pair, sizeof(pair), "%s/%s.pem,%s/%s.key", cadir, cert, cadir, cert);
    char *argv[] = {"python3",      script,         "--lifetime",   "60",           "--cert", pair,
                    (char *)extra1, (char *)extra2, (char *)extra3, (char *)extra4, NULL};
    if (test_server_start(s, argv) < 0) return -1;
    return port_of(s);
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    snprintf(cadir, sizeof(cadir), "/tmp/vt-tls-XXXXXX");
    if (!mkdtemp(cadir)) return -1;
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/servers/mkca.sh' '%s' name=good.test ip=127.0.0.1",
             src, cadir);
    if (system(cmd) != 0) return -1;
    snprintf(cacert, sizeof(cacert), "%s/ca.pem", cadir);
    sni_port = start(&sni_srv, src, "name", "--alpn", "h2,http/1.1", "--require-sni", "good.test");
    ip_port = start(&ip_srv, src, "ip", NULL, NULL, NULL, NULL);
    nosni_port = start(&nosni_srv, src, "ip", "--require-sni", "", NULL, NULL);
    old_port = start(&old_srv, src, "name", "--max-version", "1.2", NULL, NULL);
    pong_port = start(&pong_srv, src, "ip", "--reply", "706f6e67", NULL, NULL); /* "pong" */
    close_port = start(&close_srv, src, "ip", "--reply", "close", NULL, NULL);
    return sni_port > 0 && ip_port > 0 && old_port > 0 && nosni_port > 0 && pong_port > 0 &&
                   close_port > 0
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    test_server_stop(&sni_srv);
    test_server_stop(&ip_srv);
    test_server_stop(&old_srv);
    test_server_stop(&nosni_srv);
    test_server_stop(&pong_srv);
    test_server_stop(&close_srv);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cadir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct got {
    int calls, after_tried;
    char after_failure[VT_FAILURE_MAX], after_op[16], reply[64];
    size_t after_sent;
    double after_rtt;
    char failure[VT_FAILURE_MAX];
    char failed_operation[32];
    char version[16], cipher[64], alpn[32];
    long verify_result;
    cJSON *json;
} got;

static void on_tls(const vt_tls_result *r, void *arg)
{
    got *g = arg;
    g->calls++;
    snprintf(g->failure, sizeof(g->failure), "%s", r->failure);
    snprintf(g->failed_operation, sizeof(g->failed_operation), "%s",
             r->failed_operation ? r->failed_operation : "");
    snprintf(g->version, sizeof(g->version), "%s", r->tls_version);
    snprintf(g->cipher, sizeof(g->cipher), "%s", r->cipher_suite);
    snprintf(g->alpn, sizeof(g->alpn), "%s", r->negotiated_protocol);
    g->verify_result = r->verify_result;
    g->json = vt_tls_result_json(r);
    g->after_tried = r->after_tried;
    snprintf(g->after_failure, sizeof(g->after_failure), "%s", r->after_failure);
    snprintf(g->after_op, sizeof(g->after_op), "%s",
             r->after_failed_operation ? r->after_failed_operation : "");
    snprintf(g->reply, sizeof(g->reply), "%.*s", (int)r->reply_len, (const char *)r->reply);
    g->after_sent = r->after_sent;
    g->after_rtt = r->after_rtt;
}

static void handshake(const char *ca, vt_tls_opts o, got *g)
{
    char err[256];
    memset(g, 0, sizeof(*g));
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    vt_tls_ctx *ctx = vt_tls_ctx_new(ca, err, sizeof(err));
    assert_non_null(ctx);
    o.ip = "127.0.0.1";
    o.connect_timeout_ms = 2000;
    o.tls_timeout_ms = 3000;
    o.t_base = vt_now();
    assert_int_equal(vt_tls_handshake(loop, ctx, &o, on_tls, g), 0);
    assert_int_equal(g->calls, 0);
    vt_loop_run(loop);
    vt_tls_ctx_free(ctx);
    vt_loop_free(loop);
    assert_int_equal(g->calls, 1);
}

/* Base64 of the DER of DIR/name.pem, as OONI's peer_certificates hold it. */
static char *cert_b64(const char *name)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/%s.pem", cadir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    X509_free(x);
    assert_true(n > 0);
    char *b64 = malloc(4 * ((size_t)n + 2) / 3 + 4);
    EVP_EncodeBlock((unsigned char *)b64, der, n);
    OPENSSL_free(der);
    return b64;
}

static void tls_sni_alpn_version_cipher_and_leaf_are_recorded(void **state)
{
    (void)state;
    got g;
    handshake(cacert, (vt_tls_opts){.port = sni_port, .sni = "good.test", .alpn = "h2,http/1.1"},
              &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(g.failed_operation, "");
    assert_string_equal(g.version, "TLSv1.3");
    assert_true(strncmp(g.cipher, "TLS_", 4) == 0);
    assert_string_equal(g.alpn, "h2");
    assert_int_equal(g.verify_result, 0);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", sni_port);
    assert_string_equal(vt_json_get_string(g.json, "address"), want);
    assert_string_equal(vt_json_get_string(g.json, "server_name"), "good.test");
    assert_string_equal(vt_json_get_string(g.json, "negotiated_protocol"), "h2");
    assert_string_equal(vt_json_get_string(g.json, "cipher_suite"), g.cipher);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(g.json, "failure")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(g.json, "no_tls_verify")));
    cJSON *certs = cJSON_GetObjectItemCaseSensitive(g.json, "peer_certificates");
    assert_int_equal(cJSON_GetArraySize(certs), 1);
    char *b64 = cert_b64("name");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(certs, 0), "format"), "base64");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(certs, 0), "data"), b64);
    free(b64);
    cJSON_Delete(g.json);
}

static void tls_without_sni_sends_none(void **state)
{
    (void)state;
    got g;
    /* The server refuses any SNI but good.test, none included. */
    handshake(cacert, (vt_tls_opts){.port = sni_port, .verify_name = "good.test"}, &g);
    assert_true(g.failure[0] != 0);
    assert_string_equal(g.failed_operation, "tls_handshake_done");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(g.json, "server_name")) ||
                strcmp(vt_json_get_string(g.json, "server_name"), "") == 0);
    cJSON_Delete(g.json);
}

static void tls_ip_address_as_sni_is_recorded_but_not_sent(void **state)
{
    (void)state;
    got g;
    /* This server refuses every handshake that carries an SNI. */
    handshake(cacert, (vt_tls_opts){.port = nosni_port, .sni = "127.0.0.1"}, &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(vt_json_get_string(g.json, "server_name"), "127.0.0.1");
    cJSON_Delete(g.json);
    handshake(cacert,
              (vt_tls_opts){.port = nosni_port, .sni = "good.test", .verify_name = "127.0.0.1"},
              &g);
    assert_true(g.failure[0] != 0);
    cJSON_Delete(g.json);
}

static void tls_tls12_server_gives_tls12_and_an_iana_cipher_name(void **state)
{
    (void)state;
    got g;
    handshake(cacert, (vt_tls_opts){.port = old_port, .sni = "good.test"}, &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(g.version, "TLSv1.2");
    assert_true(strncmp(g.cipher, "TLS_ECDHE_", 10) == 0); /* IANA, not OpenSSL's ECDHE-RSA-... */
    assert_string_equal(g.alpn, "");
    cJSON_Delete(g.json);
}

static void tls_ip_address_name_is_checked_against_ip_sans(void **state)
{
    (void)state;
    got g;
    handshake(cacert, (vt_tls_opts){.port = ip_port, .verify_name = "127.0.0.1"}, &g);
    assert_string_equal(g.failure, "");
    cJSON_Delete(g.json);
    /* A certificate with only DNS names does not vouch for an address. */
    handshake(cacert,
              (vt_tls_opts){.port = sni_port, .sni = "good.test", .verify_name = "127.0.0.1"}, &g);
    assert_string_equal(g.failure, "ssl_invalid_hostname");
    assert_string_equal(g.version, "TLSv1.3"); /* the handshake itself completed */
    cJSON_Delete(g.json);
}

static void tls_without_verification_accepts_any_certificate(void **state)
{
    (void)state;
    got g;
    /* No test CA: verification would say ssl_unknown_authority. */
    handshake(NULL, (vt_tls_opts){.port = sni_port, .sni = "good.test", .no_verify = 1}, &g);
    assert_string_equal(g.failure, "");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g.json, "no_tls_verify")));
    cJSON_Delete(g.json);
    handshake(NULL, (vt_tls_opts){.port = sni_port, .sni = "good.test"}, &g);
    assert_string_equal(g.failure, "ssl_unknown_authority");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g.json, "peer_certificates")) ==
                1); /* the certificate that failed is kept as evidence */
    cJSON_Delete(g.json);
}

/* The exchange's check: "pong" accepted, a prefix of it waits for more, anything else refused. */
static int want_pong(const unsigned char *b, size_t n, void *arg, char *f, size_t flen)
{
    const char *want = arg;
    size_t wl = strlen(want);
    if (memcmp(b, want, n < wl ? n : wl) != 0) {
        snprintf(f, flen, "test_unexpected_reply");
        return VT_TCPX_REJECT;
    }
    return n < wl ? VT_TCPX_NEED_MORE : VT_TCPX_ACCEPT;
}

static vt_tls_opts ping(int port, const char *want)
{
    return (vt_tls_opts){.port = port,
                         .no_verify = 1,
                         .after_payload = (const unsigned char *)"ping",
                         .after_payload_len = 4,
                         .after_check = want_pong,
                         .after_check_arg = (void *)want,
                         .after_timeout_ms = 700};
}

static void tls_exchange_after_the_handshake(void **state)
{
    (void)state;
    got g;
    handshake(NULL, ping(pong_port, "pong"), &g);
    assert_string_equal(g.failure, "");
    assert_int_equal(g.after_tried, 1);
    assert_string_equal(g.after_failure, "");
    assert_string_equal(g.after_op, "");
    assert_string_equal(g.reply, "pong");
    assert_int_equal(g.after_sent, 4);
    assert_true(g.after_rtt >= 0 && g.after_rtt < 5);
    cJSON_Delete(g.json);
    /* A reply the check refuses: its failure, the bytes kept. */
    handshake(NULL, ping(pong_port, "PONG"), &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(g.after_failure, "test_unexpected_reply");
    assert_string_equal(g.after_op, "read");
    assert_string_equal(g.reply, "pong");
    assert_true(g.after_rtt < 0);
    cJSON_Delete(g.json);
    /* A server that never answers: the exchange's own timeout, after a good handshake. */
    double t0 = vt_now();
    handshake(NULL, ping(ip_port, "pong"), &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(g.after_failure, "generic_timeout_error");
    assert_string_equal(g.after_op, "read");
    assert_true(vt_now() - t0 < 2.5);
    cJSON_Delete(g.json);
    /* One that closes the connection: eof_error. */
    handshake(NULL, ping(close_port, "pong"), &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(g.after_failure, "eof_error");
    assert_string_equal(g.reply, "");
    cJSON_Delete(g.json);
    /* A failed handshake (no test CA) never tries the exchange. */
    vt_tls_opts o = ping(pong_port, "pong");
    o.no_verify = 0;
    handshake(NULL, o, &g);
    assert_string_equal(g.failure, "ssl_unknown_authority");
    assert_int_equal(g.after_tried, 0);
    assert_int_equal(g.after_sent, 0);
    cJSON_Delete(g.json);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_sni_alpn_version_cipher_and_leaf_are_recorded),
        cmocka_unit_test(tls_without_sni_sends_none),
        cmocka_unit_test(tls_ip_address_as_sni_is_recorded_but_not_sent),
        cmocka_unit_test(tls_tls12_server_gives_tls12_and_an_iana_cipher_name),
        cmocka_unit_test(tls_ip_address_name_is_checked_against_ip_sans),
        cmocka_unit_test(tls_without_verification_accepts_any_certificate),
        cmocka_unit_test(tls_exchange_after_the_handshake),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
