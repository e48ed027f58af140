/* The process's shared CA store (lib/tls.c vt_tls_ca_store, vt_tls_curl_use_ca): loaded once,
 * and libcurl's verification through it gives exactly what libcurl gives loading the same CA file
 * itself (CURLOPT_CAINFO with Debian's default CA path): same CURLcode, same X509 verify result,
 * for a good chain, a wrong name, an unknown authority, a leaf trusted on its own (libcurl's
 * X509_V_FLAG_PARTIAL_CHAIN) and the system store. The TLS step's view of the store is unchanged
 * by libcurl's flags. Loopback server: tests/servers/httpserver.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "https_fixture.h"
#include "vantage/http.h"
#include "vantage/tls.h"

static https_fixture fx;
static int https_port, https_wrong_port;

static char *path_of(const char *name)
{
    return fixture_path(fx.dir, name);
}

static int setup(void **state)
{
    (void)state;
    char good[700], wrong[700], cmd[2000];
    if (fixture_begin(&fx, "vt-test-castore") < 0) return -1;
    /* other/ca.pem: a second CA that signed nothing the server shows. */
    snprintf(cmd, sizeof cmd,
             "sh '%s' '%s' good=good.test,127.0.0.1 wrong=wrong.test >/dev/null 2>&1 && "
             "sh '%s' '%s/other' x.test >/dev/null 2>&1",
             fx.mkca, fx.dir, fx.mkca, fx.dir);
    if (system(cmd) != 0) return -1;
    snprintf(good, sizeof good, "%s,%s", path_of("good.pem"), path_of("good.key"));
    snprintf(wrong, sizeof wrong, "%s,%s", path_of("wrong.pem"), path_of("wrong.key"));
    char *certs[] = {good, wrong};
    int ports[2];
    if (https_server_start(&fx.srv, certs, 2, ports) < 0) return -1;
    https_port = ports[0];
    https_wrong_port = ports[1];
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_end(&fx);
}

/* One blocking fetch of https://good.test:PORT/ pinned to 127.0.0.1, verified against cacert
 * (NULL: the system's), either by libcurl itself or through the shared store. */
static fetch_result fetch(int port, const char *cacert, int shared)
{
    return https_fetch("good.test", port, cacert, shared);
}

static void same_as_libcurl(int port, const char *cacert, CURLcode expect)
{
    fetch_result own = fetch(port, cacert, 0), shared = fetch(port, cacert, 1);
    if (own.code != shared.code || own.verify != shared.verify)
        fail_msg("CA %s, port %d: libcurl alone %d/%ld, shared store %d/%ld",
                 cacert ? cacert : "(system)", port, own.code, own.verify, shared.code,
                 shared.verify);
    assert_int_equal(shared.code, expect);
}

static void libcurl_verifies_the_same_through_the_shared_store(void **state)
{
    (void)state;
    same_as_libcurl(https_port, path_of("ca.pem"), CURLE_OK);
    same_as_libcurl(https_wrong_port, path_of("ca.pem"), CURLE_PEER_FAILED_VERIFICATION);
    same_as_libcurl(https_port, path_of("other/ca.pem"), CURLE_PEER_FAILED_VERIFICATION);
    same_as_libcurl(https_port, NULL, CURLE_PEER_FAILED_VERIFICATION);
    /* libcurl sets X509_V_FLAG_PARTIAL_CHAIN: a trusted leaf is an anchor on its own. */
    same_as_libcurl(https_port, path_of("good.pem"), CURLE_OK);
    same_as_libcurl(https_port, path_of("wrong.pem"), CURLE_PEER_FAILED_VERIFICATION);
}

static void the_store_is_loaded_once_and_kept(void **state)
{
    (void)state;
    char err[256];
    char copy[512], cmd[1200];
    snprintf(copy, sizeof copy, "%s/once.pem", fx.dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path_of("ca.pem"), copy);
    assert_int_equal(system(cmd), 0);
    X509_STORE *a = vt_tls_ca_store(copy, err, sizeof err);
    assert_non_null(a);
    assert_ptr_equal(vt_tls_ca_store(copy, err, sizeof err), a);
    assert_ptr_not_equal(vt_tls_ca_store(path_of("other/ca.pem"), err, sizeof err), a);
    /* Gone from disk: a transfer still verifies, from the store parsed before. */
    assert_int_equal(unlink(copy), 0);
    assert_int_equal(fetch(https_port, copy, 1).code, CURLE_OK);
    /* The TLS step's SSL_CTX shares it too. */
    vt_tls_ctx *t = vt_tls_ctx_new(copy, err, sizeof err);
    assert_non_null(t);
    vt_tls_ctx_free(t);
    /* A file that is not there and never was: an error naming it, nothing cached. */
    assert_null(vt_tls_ca_store(path_of("missing.pem"), err, sizeof err));
    assert_non_null(strstr(err, "missing.pem"));
    assert_null(vt_tls_ctx_new(path_of("missing.pem"), err, sizeof err));
}

/* libcurl's flags go to each transfer's SSL_CTX, not into the shared store: the TLS step does
 * not start treating a trusted leaf as an anchor because libcurl does. */
static void libcurl_flags_do_not_leak_into_the_shared_store(void **state)
{
    (void)state;
    char err[256];
    X509_STORE *st = vt_tls_ca_store(path_of("good.pem"), err, sizeof err);
    assert_non_null(st);
    unsigned long before = X509_VERIFY_PARAM_get_flags(X509_STORE_get0_param(st));
    assert_int_equal(fetch(https_port, path_of("good.pem"), 1).code, CURLE_OK);
    assert_int_equal(X509_VERIFY_PARAM_get_flags(X509_STORE_get0_param(st)), before);
    assert_false(before & X509_V_FLAG_PARTIAL_CHAIN);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libcurl_verifies_the_same_through_the_shared_store),
        cmocka_unit_test(the_store_is_loaded_once_and_kept),
        cmocka_unit_test(libcurl_flags_do_not_leak_into_the_shared_store),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
