/* IP literals to socket addresses, in one place. */
#ifndef VANTAGE_ADDR_H
#define VANTAGE_ADDR_H

#include <sys/socket.h>

/* Fills *ss and *len from an IPv4 or IPv6 literal (no brackets) and a port 1..65535.
 * Returns 0, or -1 when ip is not a literal or the port is out of range. */
int vt_addr_sockaddr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len);

#endif
