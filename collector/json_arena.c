/* cJSON arena allocator (json_arena.h). */
#include "json_arena.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define CHUNK (256u << 10) /* bytes per chunk; bigger requests get a chunk of their own */
#define BIG (CHUNK / 8)
#define ALIGN 16

typedef struct chunk {
    struct chunk *next; /* older */
    size_t size, used;  /* payload bytes */
    _Alignas(ALIGN) unsigned char data[];
} chunk;

struct vt_json_arena {
    chunk *head; /* the newest chunk, bumped into */
    size_t bytes;
};

static int installed;
static _Thread_local vt_json_arena *current;

/* Freed standard chunks wait here for the next batch (up to POOL_MAX of them, 32 MB: two
 * batches of 1,000 measurements): a fresh chunk is memory the kernel must fault in again, which
 * made the first batches after start-up several times slower to parse. */
#define POOL_MAX 128
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static chunk *pool;
static size_t pool_n;

static chunk *chunk_new(vt_json_arena *a, size_t size)
{
    chunk *c = NULL;
    if (size == CHUNK) {
        pthread_mutex_lock(&pool_mu);
        if ((c = pool)) {
            pool = c->next;
            pool_n--;
        }
        pthread_mutex_unlock(&pool_mu);
    }
    if (!c) c = malloc(sizeof(*c) + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    a->bytes += sizeof(*c) + size;
    return c;
}

static void *arena_alloc(vt_json_arena *a, size_t n)
{
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n == 0) n = ALIGN;
    if (n > BIG) { /* its own chunk, behind the head so that the head keeps filling */
        chunk *c = chunk_new(a, n);
        if (!c) return NULL;
        c->used = n;
        if (a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = NULL;
            a->head = c;
        }
        return c->data;
    }
    chunk *h = a->head;
    if (!h || h->size - h->used < n) {
        h = chunk_new(a, CHUNK);
        if (!h) return NULL;
        h->next = a->head;
        a->head = h;
    }
    void *p = h->data + h->used;
    h->used += n;
    return p;
}

/* Whether p lies in one of a's chunks: the newest first (what cJSON frees while parsing, a
 * failed parse's nodes or a replaced item, was allocated last). */
static int arena_owns(const vt_json_arena *a, const void *p)
{
    uintptr_t x = (uintptr_t)p;
    for (const chunk *c = a->head; c; c = c->next)
        if (x >= (uintptr_t)c->data && x < (uintptr_t)c->data + c->size) return 1;
    return 0;
}

static void *hook_malloc(size_t n)
{
    vt_json_arena *a = current;
    return a ? arena_alloc(a, n) : malloc(n);
}

static void hook_free(void *p)
{
    vt_json_arena *a = current;
    if (a && p && arena_owns(a, p)) return;
    free(p);
}

void vt_json_arena_install(void)
{
    if (installed) return;
    cJSON_Hooks h = {hook_malloc, hook_free};
    cJSON_InitHooks(&h);
    installed = 1;
}

vt_json_arena *vt_json_arena_new(void)
{
    if (!installed) return NULL;
    return calloc(1, sizeof(vt_json_arena));
}

vt_json_arena *vt_json_arena_use(vt_json_arena *a)
{
    vt_json_arena *prev = current;
    current = a;
    return prev;
}

void vt_json_arena_free(vt_json_arena *a)
{
    if (!a) return;
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        int keep = 0;
        if (c->size == CHUNK) {
            pthread_mutex_lock(&pool_mu);
            if ((keep = pool_n < POOL_MAX)) {
                c->next = pool;
                pool = c;
                pool_n++;
            }
            pthread_mutex_unlock(&pool_mu);
        }
        if (!keep) free(c);
    }
    free(a);
}

void vt_json_arena_trim(void)
{
    pthread_mutex_lock(&pool_mu);
    while (pool) {
        chunk *c = pool;
        pool = c->next;
        free(c);
    }
    pool_n = 0;
    pthread_mutex_unlock(&pool_mu);
}

size_t vt_json_arena_size(const vt_json_arena *a)
{
    return a ? a->bytes : 0;
}
