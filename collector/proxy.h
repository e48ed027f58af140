/* Trusted reverse proxies (--trusted-proxy): which caller's address an upload, check-in or rate
 * limit uses when the collector runs behind a TLS-terminating proxy. Only a connection from a
 * trusted proxy may name its client in X-Forwarded-For; from anyone else the header is ignored,
 * so a probe cannot claim another network's address. */
#ifndef VANTAGE_COLLECTOR_PROXY_H
#define VANTAGE_COLLECTOR_PROXY_H

#include <stddef.h>

typedef struct vt_proxies vt_proxies;

/* "ADDR[/PREFIX],..." (IPv4 or IPv6; no prefix: that address alone). NULL with err on a bad
 * entry, an empty list or more than 64 entries. */
vt_proxies *vt_proxies_parse(const char *list, char *err, size_t errlen);
void vt_proxies_free(vt_proxies *p);

/* 1 when addr (text, IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is one of the proxies. */
int vt_proxies_contains(const vt_proxies *p, const char *addr);

/* The client's address, in canonical text, into out: the peer's, unless the peer is a trusted
 * proxy and xff (the X-Forwarded-For values in order, joined by commas; NULL: none) names one.
 * Then the rightmost entry that is not itself a trusted proxy (the proxies' own hops are
 * skipped; entries left of it may have been written by the client and are not believed); the
 * leftmost when every entry is a proxy. An entry that is not an address stops the walk at the
 * nearest trusted hop to its right. Returns 1 when the address came from the header. */
int vt_proxies_client(const vt_proxies *p, const char *peer, const char *xff, char *out, size_t n);

#endif
