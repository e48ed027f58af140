/* IP literals to socket addresses, http(s) URLs split as libcurl reads them, and the https rule
 * for URLs (addr.h). */
#include "vantage/addr.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int vt_addr_sockaddr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (!ip || port < 1 || port > 65535) return -1;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
    } else {
        return -1;
    }
    return 0;
}

int vt_url_check_secure(const char *what, const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%s URL '%s' is not a URL", what, url);
        goto done;
    }
    unsigned char v4[4];
    int loopback = (inet_pton(AF_INET, host, v4) == 1 && v4[0] == 127) ||
                   !strcmp(host, "localhost") || !strcmp(host, "[::1]");
    if (!strcmp(scheme, "https"))
        rc = 0;
    else if (!strcmp(scheme, "http") && loopback)
        rc = 0;
    else
        snprintf(err, errlen, "%s URL must be https:// (plain http only for loopback): %s", what,
                 url);
done:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int vt_url_split(const char *url, char *host, size_t hostlen, int *port, int *https)
{
    CURLU *u = curl_url();
    char *h = NULL, *p = NULL, *s = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto done;
    if (strcasecmp(s, "http") != 0 && strcasecmp(s, "https") != 0) goto done;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[') { /* IPv6 literal: without brackets */
        h[hl - 1] = 0;
        memmove(h, h + 1, hl - 1);
    }
    /* a zone id ("%25eth0") stays; inet_pton refuses it, which only costs a DNS lookup */
    if (!h[0] || strlen(h) >= hostlen) goto done;
    snprintf(host, hostlen, "%s", h);
    *port = atoi(p);
    *https = strcasecmp(s, "https") == 0;
    rc = *port > 0 && *port < 65536 ? 0 : -1;
done:
    curl_free(h);
    curl_free(p);
    curl_free(s);
    curl_url_cleanup(u);
    return rc;
}

void vt_addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    out[0] = 0;
    if (!sa) return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)n);
        else
            inet_ntop(AF_INET6, a6, out, (socklen_t)n);
    }
}
