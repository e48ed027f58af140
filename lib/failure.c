/* OONI failure strings (see OONI's df-007-errors), from errno, c-ares, libcurl and OpenSSL. */
#include "vantage/failure.h"

#include <ares.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

static const char *put(char *buf, size_t n, const char *s)
{
    snprintf(buf, n, "%s", s);
    return buf;
}

const char *vt_failure_unknown(const char *msg, char *buf, size_t n)
{
    snprintf(buf, n, "unknown_failure: %s", msg && *msg ? msg : "unknown");
    return buf;
}

const char *vt_failure_errno(int err, char *buf, size_t n)
{
    switch (err) {
    case ECONNREFUSED: return put(buf, n, "connection_refused");
    case ECONNRESET: return put(buf, n, "connection_reset");
    case ECONNABORTED: return put(buf, n, "connection_aborted");
    case ETIMEDOUT: return put(buf, n, "generic_timeout_error");
    case EHOSTUNREACH: return put(buf, n, "host_unreachable");
    case ENETUNREACH: return put(buf, n, "network_unreachable");
    case ENETDOWN: return put(buf, n, "network_down");
    case EADDRNOTAVAIL: return put(buf, n, "address_not_available");
    case EPIPE: return put(buf, n, "broken_pipe");
    case EACCES:
    case EPERM: return put(buf, n, "permission_denied");
    case EPROTO: return put(buf, n, "protocol_error");
    case 0: return put(buf, n, "eof_error");
    default: return vt_failure_unknown(strerror(err), buf, n);
    }
}

const char *vt_failure_ares(int status, char *buf, size_t n)
{
    switch (status) {
    case ARES_SUCCESS: return put(buf, n, "");
    case ARES_ENOTFOUND: return put(buf, n, "dns_nxdomain_error");
    case ARES_ENODATA: return put(buf, n, "dns_no_answer");
    case ARES_ESERVFAIL: return put(buf, n, "dns_servfail_error");
    case ARES_EREFUSED: return put(buf, n, "dns_refused_error");
    case ARES_ETIMEOUT: return put(buf, n, "generic_timeout_error");
    case ARES_EFORMERR:
    case ARES_EBADRESP: return put(buf, n, "dns_bogon_error_bad_response");
    case ARES_ECONNREFUSED: return put(buf, n, "connection_refused");
    case ARES_ENOTIMP: return put(buf, n, "dns_non_recoverable_failure");
    default: return vt_failure_unknown(ares_strerror(status), buf, n);
    }
}

const char *vt_failure_curl(int code, long os_errno, const char *errbuf, char *buf, size_t n)
{
    switch ((CURLcode)code) {
    case CURLE_OK: return put(buf, n, "");
    case CURLE_OPERATION_TIMEDOUT: return put(buf, n, "generic_timeout_error");
    case CURLE_COULDNT_RESOLVE_HOST: return put(buf, n, "dns_nxdomain_error");
    case CURLE_COULDNT_CONNECT:
        if (os_errno)
            return vt_failure_errno((int)os_errno, buf, n);
        return put(buf, n, "connection_refused");
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (os_errno)
            return vt_failure_errno((int)os_errno, buf, n);
        return put(buf, n, "connection_reset");
    case CURLE_GOT_NOTHING: return put(buf, n, "eof_error");
    case CURLE_PARTIAL_FILE: return put(buf, n, "eof_error");
    case CURLE_PEER_FAILED_VERIFICATION:
        if (errbuf && (strstr(errbuf, "does not match") || strstr(errbuf, "no alternative") ||
                       strstr(errbuf, "hostname")))
            return put(buf, n, "ssl_invalid_hostname");
        if (errbuf && (strstr(errbuf, "expired") || strstr(errbuf, "not yet valid")))
            return put(buf, n, "ssl_invalid_certificate");
        return put(buf, n, "ssl_unknown_authority");
    case CURLE_SSL_CONNECT_ERROR:
        if (os_errno == ECONNRESET)
            return put(buf, n, "connection_reset");
        if (errbuf && strstr(errbuf, "SSL_ERROR_SYSCALL"))
            return put(buf, n, os_errno ? "connection_reset" : "eof_error");
        return put(buf, n, "ssl_failed_handshake");
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: return put(buf, n, "ssl_invalid_certificate");
    case CURLE_TOO_MANY_REDIRECTS: return put(buf, n, "http_too_many_redirects");
    case CURLE_WEIRD_SERVER_REPLY: return put(buf, n, "http_invalid_response");
    default: return vt_failure_unknown(errbuf && *errbuf ? errbuf : curl_easy_strerror(code), buf, n);
    }
}

const char *vt_failure_ssl(int ssl_error, long verify_result, int sys_errno, char *buf, size_t n)
{
    if (verify_result != X509_V_OK) {
        switch (verify_result) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH: return put(buf, n, "ssl_invalid_hostname");
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_UNTRUSTED: return put(buf, n, "ssl_unknown_authority");
        default: return put(buf, n, "ssl_invalid_certificate");
        }
    }
    switch (ssl_error) {
    case SSL_ERROR_NONE: return put(buf, n, "");
    case SSL_ERROR_ZERO_RETURN: return put(buf, n, "eof_error");
    case SSL_ERROR_SYSCALL:
        if (sys_errno == 0)
            return put(buf, n, "eof_error");
        return vt_failure_errno(sys_errno, buf, n);
    case SSL_ERROR_SSL: return put(buf, n, "ssl_failed_handshake");
    default: return put(buf, n, "ssl_failed_handshake");
    }
}

int vt_failure_is_timeout(const char *f)
{
    return f && strcmp(f, "generic_timeout_error") == 0;
}
