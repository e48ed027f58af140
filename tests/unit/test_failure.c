/* Failure strings: every error source maps to OONI's names in one place. */
#include <ares.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "vantage/failure.h"

static void errno_values_map_to_ooni_strings(void **state)
{
    char b[VT_FAILURE_MAX];
    assert_string_equal(vt_failure_errno(ECONNREFUSED, b, sizeof b), "connection_refused");
    assert_string_equal(vt_failure_errno(ECONNRESET, b, sizeof b), "connection_reset");
    assert_string_equal(vt_failure_errno(ETIMEDOUT, b, sizeof b), "generic_timeout_error");
    assert_string_equal(vt_failure_errno(EHOSTUNREACH, b, sizeof b), "host_unreachable");
    assert_string_equal(vt_failure_errno(ENETUNREACH, b, sizeof b), "network_unreachable");
    assert_string_equal(vt_failure_errno(0, b, sizeof b), "eof_error");
}

static void unknown_errno_keeps_the_message(void **state)
{
    char b[VT_FAILURE_MAX];
    vt_failure_errno(ENOSPC, b, sizeof b);
    assert_memory_equal(b, "unknown_failure: ", 17);
    assert_true(strlen(b) > 17);
}

static void ares_statuses_map_to_dns_failures(void **state)
{
    char b[VT_FAILURE_MAX];
    assert_string_equal(vt_failure_ares(ARES_ENOTFOUND, b, sizeof b), "dns_nxdomain_error");
    assert_string_equal(vt_failure_ares(ARES_ESERVFAIL, b, sizeof b), "dns_servfail_error");
    assert_string_equal(vt_failure_ares(ARES_EREFUSED, b, sizeof b), "dns_refused_error");
    assert_string_equal(vt_failure_ares(ARES_ENODATA, b, sizeof b), "dns_no_answer");
    assert_string_equal(vt_failure_ares(ARES_ETIMEOUT, b, sizeof b), "generic_timeout_error");
}

static void curl_codes_use_the_os_error(void **state)
{
    char b[VT_FAILURE_MAX];
    assert_string_equal(vt_failure_curl(CURLE_COULDNT_CONNECT, ECONNREFUSED, "", b, sizeof b),
                        "connection_refused");
    assert_string_equal(vt_failure_curl(CURLE_RECV_ERROR, ECONNRESET, "", b, sizeof b),
                        "connection_reset");
    assert_string_equal(vt_failure_curl(CURLE_OPERATION_TIMEDOUT, 0, "", b, sizeof b),
                        "generic_timeout_error");
    assert_string_equal(vt_failure_curl(CURLE_GOT_NOTHING, 0, "", b, sizeof b), "eof_error");
    assert_string_equal(
        vt_failure_curl(CURLE_PEER_FAILED_VERIFICATION, 0,
                        "SSL: no alternative certificate subject name matches target host name",
                        b, sizeof b),
        "ssl_invalid_hostname");
    assert_string_equal(vt_failure_curl(CURLE_PEER_FAILED_VERIFICATION, 0,
                                        "SSL certificate problem: unable to get local issuer",
                                        b, sizeof b),
                        "ssl_unknown_authority");
}

static void ssl_verification_errors_come_first(void **state)
{
    char b[VT_FAILURE_MAX];
    assert_string_equal(vt_failure_ssl(SSL_ERROR_SSL, X509_V_ERR_HOSTNAME_MISMATCH, 0, b, sizeof b),
                        "ssl_invalid_hostname");
    assert_string_equal(
        vt_failure_ssl(SSL_ERROR_SSL, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0, b, sizeof b),
        "ssl_unknown_authority");
    assert_string_equal(vt_failure_ssl(SSL_ERROR_SSL, X509_V_ERR_CERT_HAS_EXPIRED, 0, b, sizeof b),
                        "ssl_invalid_certificate");
    assert_string_equal(vt_failure_ssl(SSL_ERROR_SYSCALL, X509_V_OK, ECONNRESET, b, sizeof b),
                        "connection_reset");
    assert_string_equal(vt_failure_ssl(SSL_ERROR_SYSCALL, X509_V_OK, 0, b, sizeof b), "eof_error");
    assert_string_equal(vt_failure_ssl(SSL_ERROR_SSL, X509_V_OK, 0, b, sizeof b),
                        "ssl_failed_handshake");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errno_values_map_to_ooni_strings),
        cmocka_unit_test(unknown_errno_keeps_the_message),
        cmocka_unit_test(ares_statuses_map_to_dns_failures),
        cmocka_unit_test(curl_codes_use_the_os_error),
        cmocka_unit_test(ssl_verification_errors_come_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
