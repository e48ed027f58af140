/* Token buckets per key (an upload token's id, a client address), in memory only. The table has
 * a fixed number of slots; keys are kept only as a keyed 64-bit hash (never the address itself),
 * and when a set of slots is full the least recently seen key is forgotten (a forgotten key starts
 * again with a full bucket, which is the safe direction for users). */
#ifndef VANTAGE_COLLECTOR_RATELIMIT_H
#define VANTAGE_COLLECTOR_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct vt_ratelimit vt_ratelimit;

/* rate: tokens per second (<= 0 disables: every request passes); burst: bucket size;
 * slots: table size (rounded up to a multiple of 4, at least 64). */
vt_ratelimit *vt_ratelimit_new(double rate, double burst, size_t slots);
void vt_ratelimit_free(vt_ratelimit *rl);
/* Takes one token for key at time now (seconds, monotonic). 1 allowed; 0 refused, and
 * *retry_after (may be NULL) gets the seconds until a token is back (at least 1). */
/* key's hash under this limiter's per-process seed (never 0): an address's stand-in for
 * counting per client elsewhere without keeping the address itself. */
uint64_t vt_ratelimit_key(const vt_ratelimit *rl, const char *key);
int vt_ratelimit_take(vt_ratelimit *rl, const char *key, double now, int *retry_after);
/* The bucket key of a client address (canonical text): an IPv6 address stands for its /64, since
 * one host holds one (or more) and can use every address in it, so that a bucket per address
 * would be no limit at all; anything else is itself. Returns addr or net (INET6_ADDRSTRLEN). */
const char *vt_ratelimit_client(const char *addr, char *net);
/* Keys currently tracked (for tests). */
size_t vt_ratelimit_size(const vt_ratelimit *rl);

#endif
