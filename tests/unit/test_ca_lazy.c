/* The system's CA store is lazy (lib/tls.c): OpenSSL's hashed directory is searched for the
 * issuers a chain needs, and the system's bundle file is parsed only when the directory lacks
 * one, so a run pays for the CAs it meets, not for all of Debian's 144, while trusting exactly
 * what the directory and the bundle together trust. Here the "system" is made of test CAs through
 * SSL_CERT_DIR and SSL_CERT_FILE (OpenSSL's own variables): one CA in the directory (and the
 * bundle), one only in the bundle, one in neither. Checked for the TLS step's store (X509 verify)
 * and for libcurl through the shared store (a loopback HTTPS server per CA). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "https_fixture.h"
#include "vantage/tls.h"

static https_fixture fx;
static int port_dir, port_bundle;

static char *path_of(const char *name)
{
    return fixture_path(fx.dir, name);
}

static int setup(void **state)
{
    (void)state;
    char a[700], b[700], cmd[3000];
    if (fixture_begin(&fx, "vt-test-calazy") < 0) return -1;
    /* dir/: "Vantage Test CA" (hashed directory and bundle), bundle/: "Vantage Bundle CA"
     * (bundle only), unknown/: "Vantage Unknown CA" (neither). */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sh '%s' dir a=a.test,127.0.0.1 >/dev/null 2>&1 && "
             "VT_CA_CN='Vantage Bundle CA' sh '%s' bundle b=b.test,127.0.0.1 >/dev/null 2>&1 && "
             "VT_CA_CN='Vantage Unknown CA' sh '%s' unknown u.test >/dev/null 2>&1 && "
             "mkdir sys && ln -s ../dir/ca.pem sys/$(openssl x509 -hash -noout -in dir/ca.pem).0 "
             "&& cat bundle/ca.pem dir/ca.pem > sys/bundle.pem",
             fx.dir, fx.mkca, fx.mkca, fx.mkca);
    if (system(cmd) != 0) return -1;
    setenv("SSL_CERT_DIR", path_of("sys"), 1);
    setenv("SSL_CERT_FILE", path_of("sys/bundle.pem"), 1);
    snprintf(a, sizeof a, "%s,%s", path_of("dir/a.pem"), path_of("dir/a.key"));
    snprintf(b, sizeof b, "%s,%s", path_of("bundle/b.pem"), path_of("bundle/b.key"));
    char *certs[] = {a, b};
    int ports[2];
    if (https_server_start(&fx.srv, certs, 2, ports) < 0) return -1;
    port_dir = ports[0];
    port_bundle = ports[1];
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_end(&fx);
}

static int verify(X509_STORE *st, const char *leaf_file)
{
    FILE *f = fopen(leaf_file, "r");
    assert_non_null(f);
    X509 *leaf = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(leaf);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
    X509_verify_cert(ctx);
    int e = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_free(leaf);
    return e;
}

static int n_objects(X509_STORE *st)
{
    return sk_X509_OBJECT_num(X509_STORE_get0_objects(st));
}

static void the_tls_step_store_reads_only_what_chains_need(void **state)
{
    (void)state;
    char err[256];
    X509_STORE *st = vt_tls_ca_store(NULL, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(n_objects(st), 0); /* nothing parsed up front */
    assert_int_equal(verify(st, path_of("dir/a.pem")), X509_V_OK);
    assert_int_equal(n_objects(st), 1); /* the directory's CA; the bundle still unread */
    assert_int_equal(verify(st, path_of("dir/a.pem")), X509_V_OK);
    assert_int_equal(n_objects(st), 1);
    /* A CA only the bundle has: the bundle is parsed once, the duplicate CA skipped. */
    assert_int_equal(verify(st, path_of("bundle/b.pem")), X509_V_OK);
    assert_int_equal(n_objects(st), 2);
    assert_int_equal(verify(st, path_of("unknown/u.test.pem")),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_int_equal(n_objects(st), 2);
    assert_int_equal(verify(st, path_of("bundle/b.pem")), X509_V_OK);
    assert_int_equal(verify(st, path_of("dir/a.pem")), X509_V_OK);
}

static CURLcode fetch(const char *host, int port, long *verify_result)
{
    fetch_result r = https_fetch(host, port, NULL, 1);
    *verify_result = r.verify;
    return r.code;
}

/* libcurl's store is a second lazy store: here its first lookup is a miss in the directory. */
static void libcurl_trusts_the_directory_and_the_bundle(void **state)
{
    (void)state;
    long v = -1;
    assert_int_equal(fetch("b.test", port_bundle, &v), CURLE_OK);
    assert_int_equal(v, X509_V_OK);
    assert_int_equal(fetch("a.test", port_dir, &v), CURLE_OK);
    assert_int_equal(v, X509_V_OK);
    assert_int_equal(fetch("b.test", port_bundle, &v), CURLE_OK);
    /* The name is still checked: a.test's certificate for b.test fails. */
    assert_int_equal(fetch("b.test", port_dir, &v), CURLE_PEER_FAILED_VERIFICATION);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_tls_step_store_reads_only_what_chains_need),
        cmocka_unit_test(libcurl_trusts_the_directory_and_the_bundle),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
