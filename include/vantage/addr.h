/* IP literals to socket addresses, http(s) URLs split, and which URLs may be plain http. */
#ifndef VANTAGE_ADDR_H
#define VANTAGE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Fills *ss and *len from an IPv4 or IPv6 literal (no brackets) and a port 1..65535.
 * Returns 0, or -1 when ip is not a literal or the port is out of range. */
int vt_addr_sockaddr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len);

/* The canonical text of a socket's address into out (INET6_ADDRSTRLEN): IPv4, an IPv4-mapped
 * IPv6 address as IPv4, IPv6; "" for any other family. */
void vt_addr_text(const struct sockaddr *sa, char *out, size_t n);

/* Splits an http(s) URL as libcurl reads it (so 2130706433, 0x7f.1 and 127.1 are 127.0.0.1): the
 * host without an IPv6 literal's brackets, the port (the scheme's default when none), https or
 * not. -1 when it is not an http(s) URL with a host and a port 1..65535. */
int vt_url_split(const char *url, char *host, size_t hostlen, int *port, int *https);

/* A URL whose answers decide or carry evidence (a collector, the control, a DoH resolver; what
 * names it in err): https, or plain http to this machine only (an IPv4 loopback address,
 * localhost or [::1]: by address, "127.example.org" is a remote host). 0 when acceptable, else -1
 * with a message in err. */
int vt_url_check_secure(const char *what, const char *url, char *err, size_t errlen);

#endif
