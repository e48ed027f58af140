/* cJSON trees allocated from an arena: a batch's trees are parsed into one and freed with it at
 * once, instead of node by node (perf: malloc/free of cJSON's nodes and strings were a fifth of
 * the collector's CPU at ingest, 150,000 of each per batch of 500 measurements).
 *
 * cJSON has one allocator for the process (cJSON_InitHooks). vt_json_arena_install() replaces it,
 * once, before any other thread uses cJSON: allocations go to malloc as before unless the calling
 * thread has an arena in use (vt_json_arena_use), then they come from that arena, and cJSON's
 * frees of memory inside that arena do nothing. Strings cJSON returns (cJSON_Print*) outside an
 * arena are plain malloc'd as before, so free() on them stays right.
 *
 * Rules for a tree parsed into an arena: never cJSON_Delete it (free the arena instead) unless
 * this thread has that arena in use; it may be read from any thread while the arena lives; do
 * not print it while the arena is in use unless the result is to live in the arena. */
#ifndef VANTAGE_COLLECTOR_JSON_ARENA_H
#define VANTAGE_COLLECTOR_JSON_ARENA_H

#include <stddef.h>

typedef struct vt_json_arena vt_json_arena;

/* Installs the hooks (idempotent; call before starting threads). */
void vt_json_arena_install(void);
/* A new empty arena; NULL when out of memory or the hooks are not installed (then callers use
 * the heap as before). */
vt_json_arena *vt_json_arena_new(void);
/* Makes a the calling thread's arena (NULL: the heap); returns the previous one. */
vt_json_arena *vt_json_arena_use(vt_json_arena *a);
/* Frees every tree allocated in it. NULL is fine. */
void vt_json_arena_free(vt_json_arena *a);
/* Frees the chunks that freed arenas left for reuse (at exit; they are kept otherwise). */
void vt_json_arena_trim(void);
/* Bytes taken from the heap for it. */
size_t vt_json_arena_size(const vt_json_arena *a);

#endif
