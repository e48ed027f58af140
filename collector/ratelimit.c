/* Token-bucket rate limiting over a bounded 4-way set-associative table. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define WAYS 4

typedef struct slot {
    uint64_t key; /* 0: empty */
    double tokens, last;
} slot;

struct vt_ratelimit {
    double rate, burst;
    size_t nsets;
    uint64_t seed;
    slot *slots;
};

vt_ratelimit *vt_ratelimit_new(double rate, double burst, size_t slots)
{
    vt_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl) return NULL;
    if (slots < 64) slots = 64;
    rl->nsets = (slots + WAYS - 1) / WAYS;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    rl->slots = calloc(rl->nsets * WAYS, sizeof(slot));
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    if (getrandom(&rl->seed, sizeof(rl->seed), 0) != sizeof(rl->seed))
        rl->seed = (uint64_t)(uintptr_t)rl ^ 0x9e3779b97f4a7c15ull;
    return rl;
}

void vt_ratelimit_free(vt_ratelimit *rl)
{
    if (!rl) return;
    free(rl->slots);
    free(rl);
}

/* FNV-1a with a per-process seed, finished with a 64-bit mixer. */
static uint64_t hash(uint64_t seed, const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

uint64_t vt_ratelimit_key(const vt_ratelimit *rl, const char *key)
{
    return hash(rl ? rl->seed : 0, key ? key : "");
}

int vt_ratelimit_take(vt_ratelimit *rl, const char *key, double now, int *retry_after)
{
    if (!rl || rl->rate <= 0) return 1;
    uint64_t h = hash(rl->seed, key ? key : "");
    slot *set = &rl->slots[(h % rl->nsets) * WAYS];
    slot *s = NULL, *victim = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (set[i].key == h) {
            s = &set[i];
            break;
        }
        if (set[i].key == 0) {
            if (victim->key != 0) victim = &set[i]; /* an empty slot beats any used one */
        } else if (victim->key != 0 && set[i].last < victim->last) {
            victim = &set[i]; /* else the least recently seen */
        }
    }
    if (!s) {
        s = victim;
        s->key = h;
        s->tokens = rl->burst;
        s->last = now;
    }
    double dt = now - s->last;
    if (dt > 0) {
        s->tokens = fmin(rl->burst, s->tokens + dt * rl->rate);
        s->last = now;
    }
    if (s->tokens >= 1) {
        s->tokens -= 1;
        return 1;
    }
    if (retry_after) {
        int r = (int)ceil((1 - s->tokens) / rl->rate);
        *retry_after = r < 1 ? 1 : r;
    }
    return 0;
}

size_t vt_ratelimit_size(const vt_ratelimit *rl)
{
    size_t n = 0;
    for (size_t i = 0; i < rl->nsets * WAYS; i++)
        n += rl->slots[i].key != 0;
    return n;
}

const char *vt_ratelimit_client(const char *addr, char *net)
{
    unsigned char a6[16];
    if (inet_pton(AF_INET6, addr, a6) != 1) return addr;
    memset(a6 + 8, 0, 8);
    if (!inet_ntop(AF_INET6, a6, net, INET6_ADDRSTRLEN)) return addr;
    memset(a6, 0, sizeof(a6));
    return net;
}
