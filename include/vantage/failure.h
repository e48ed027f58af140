/* OONI failure strings, mapped in one place from every error source we meet. */
#ifndef VANTAGE_FAILURE_H
#define VANTAGE_FAILURE_H

#include <curl/curl.h>
#include <stddef.h>

#define VT_FAILURE_MAX 160

/* Each returns buf, filled with the OONI failure string ("connection_refused", ...), or
 * "unknown_failure: <message>" when no OONI string fits. */
const char *vt_failure_errno(int err, char *buf, size_t n);
const char *vt_failure_ares(int ares_status, char *buf, size_t n);
/* os_errno: CURLINFO_OS_ERRNO; ssl_verify: the result of certificate verification if known (-1). */
const char *vt_failure_curl(int curlcode, long os_errno, const char *errbuf, char *buf, size_t n);
/* OpenSSL: the SSL_get_error code, the X509 verify result (X509_V_OK when none), and errno. */
const char *vt_failure_ssl(int ssl_error, long verify_result, int sys_errno, char *buf, size_t n);
const char *vt_failure_unknown(const char *msg, char *buf, size_t n);

/* True when the failure string names a timeout, a reset, a DNS answer failure, ... */
int vt_failure_is_timeout(const char *failure);

#endif
