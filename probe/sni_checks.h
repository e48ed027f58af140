/* Checks of the SNI test settings, shared by probe.conf (config.c) and the check-in's offer
 * (upload.c), each of which is also built alone (tests/fuzz, tests/unit). */
#ifndef VANTAGE_PROBE_SNI_CHECKS_H
#define VANTAGE_PROBE_SNI_CHECKS_H

#include <ctype.h>
#include <string.h>

#include "vantage/tcp.h"

/* 0 when s is an SNI test server's "HOST:PORT" ("[IPv6]:PORT"): a name or an address, a port
 * 1..65535; else -1. */
static inline int vt_probe_sni_test_check(const char *s)
{
    char host[256];
    int port;
    if (!s || strlen(s) >= 300 || vt_split_host_port(s, host, sizeof(host), &port) < 0 ||
        !host[0] || port < 1 || port > 65535)
        return -1;
    for (const char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != ':' && *p != '_')
            return -1;
    return 0;
}

/* 0 when s is one "sha256//" + base64 public-key pin (libcurl's CURLOPT_PINNEDPUBLICKEY). */
static inline int vt_probe_pin_check(const char *s)
{
    if (!s || strncmp(s, "sha256//", 8) != 0) return -1;
    const char *b = s + 8;
    size_t n = strlen(b);
    if (n != 44 || b[43] != '=') return -1; /* 32 bytes in base64 */
    for (size_t i = 0; i < 43; i++)
        if (!isalnum((unsigned char)b[i]) && b[i] != '+' && b[i] != '/') return -1;
    return 0;
}

#endif
