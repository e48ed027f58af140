/* Ingest: from an upload body (JSONL, maybe gzip) to validated, scrubbed rows for the store. */
#ifndef VANTAGE_COLLECTOR_INGEST_H
#define VANTAGE_COLLECTOR_INGEST_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "store.h"

typedef struct vt_ingest_limits {
    size_t max_body;         /* bytes as sent (default 16 MiB) */
    size_t max_inflated;     /* bytes after gunzip (default 64 MiB) */
    size_t max_measurement;  /* one line (default 1 MiB) */
    size_t max_string;       /* one string value or key (default 256 KiB) */
    int max_depth;           /* JSON nesting (default 64) */
    size_t max_batch;        /* measurements per upload (default 1000) */
    size_t max_values;       /* JSON values in one measurement (default 50000) */
    size_t max_batch_values; /* JSON values in one upload (default 1000000) */
} vt_ingest_limits;

void vt_ingest_limits_default(vt_ingest_limits *l);

/* Parsed trees are kept for the store (vt_store_row.parsed) until a batch has seen this many
 * JSON values (about 20 MB of trees); later measurements of the batch keep only their text. */
#define VT_INGEST_KEEP_VALUES 200000

enum { VT_INGEST_ACCEPTED = 0, VT_INGEST_DUPLICATE = 1, VT_INGEST_REJECTED = 2 };

typedef struct vt_ingest_item {
    size_t line;      /* 1-based line of the body */
    char uid[33];     /* "" when the line had no readable uid */
    int status;       /* VT_INGEST_*; before storing, ACCEPTED means "valid, to store" */
    char reason[192]; /* for REJECTED */
    cJSON *m;         /* the parsed measurement (row.parsed), NULL when rejected or not kept */
    int in_arena;     /* m lives in the batch's arena (freed with it, never cJSON_Delete'd) */
    char *cols;       /* the row's column strings (row points into it) */
    char *body;       /* compact JSON as stored */
    vt_store_row row; /* points into cols and body */
} vt_ingest_item;

typedef struct vt_ingest_batch {
    vt_ingest_item *items;
    size_t n;
    size_t accepted, duplicate, rejected;
    size_t values; /* JSON values seen (bound: commas and colons) */
    struct vt_json_arena *arena; /* the kept trees' memory (json_arena.h); NULL: the heap */
    char received_at[20];
} vt_ingest_batch;

/* Gunzips (gzip or zlib framing) at most cap bytes. 0 ok (*out malloc'd, NUL-terminated),
 * -1 not valid/complete gzip, -2 inflated size over cap; err says which. */
int vt_ingest_inflate(const unsigned char *in, size_t len, size_t cap, unsigned char **out,
                      size_t *outlen, char *err, size_t errlen);

/* Splits and validates a JSONL body. client_addr (may be NULL) is scrubbed from every string.
 * now: the wall clock (bounds on measurement_start_time). 0 ok: b holds one item per non-empty
 * line; -1: the whole body is refused (nothing to store); *http_status and err say why. */
int vt_ingest_parse(const char *data, size_t len, const vt_ingest_limits *lim,
                    const char *client_addr, double now, vt_ingest_batch *b, int *http_status,
                    char *err, size_t errlen);

/* Stores the batch's valid items in one transaction and marks each accepted or duplicate
 * (duplicates inside the batch are already marked by vt_ingest_parse). -1 with err when the
 * store failed: nothing stored. */
int vt_ingest_store(vt_store *s, vt_ingest_batch *b, char *err, size_t errlen);
/* The same for several batches in one transaction (group commit): a uid in more than one of
 * them is stored once, for the first batch in bs order; the others get duplicate. */
int vt_ingest_store_many(vt_store *s, vt_ingest_batch *const *bs, size_t nb, char *err,
                         size_t errlen);

/* The answer: {"results":[...],"accepted":N,"duplicate":N,"rejected":N}; malloc'd. */
char *vt_ingest_answer(const vt_ingest_batch *b);
void vt_ingest_batch_free(vt_ingest_batch *b);

/* Pieces, exposed for the unit tests. */
/* Maximum nesting depth of JSON text (brackets outside strings). */
int vt_ingest_json_depth(const char *s, size_t len);
/* 1 when JSON text (that cJSON parsed whole) can be stored as received: strict JSON, no \u
 * escapes, numbers well inside a double's range (ingest.c). */
int vt_ingest_json_plain(const char *s, size_t len);
/* Upper bound of the number of values in JSON text (commas and colons outside strings + 1). */
size_t vt_ingest_json_values(const char *s, size_t len);
/* 0 when m is a valid df-000 measurement; else -1 and a reason. */
int vt_ingest_validate(const cJSON *m, double now, const vt_ingest_limits *lim, char *reason,
                       size_t n);
/* "YYYY-MM-DD HH:MM:SS" to epoch seconds; -1 when not that shape or not a real date. */
int vt_ingest_parse_time(const char *s, double *epoch);
/* Replaces every occurrence (ASCII case-insensitive) of addr in every string and key of v by
 * "[scrubbed]"; returns the number of strings changed. */
int vt_ingest_scrub(cJSON *v, const char *addr);

#endif
