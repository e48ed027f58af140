/* Upload work off the event loop: --ingest-threads worker threads, each with its own database
 * connection, gunzip, parse, validate and store uploads; the loop only reads requests and sends
 * answers.
 *
 * A job goes: loop (vt_ingest_pool_submit) -> a worker parses it (any number at once) -> the
 * parsed batch waits in a "ready" list -> one worker at a time (vt_store_db_lock) takes every
 * ready batch, up to a cap, and stores them in one transaction (group commit: one fsync for
 * several uploads) -> each job goes back to the loop through an eventfd and its answer is sent.
 * An answer is only built after its transaction committed, as without threads. */
#ifndef VANTAGE_COLLECTOR_INGEST_POOL_H
#define VANTAGE_COLLECTOR_INGEST_POOL_H

#include <event2/event.h>
#include <stddef.h>

#include "ingest.h"
#include "store.h"

typedef struct vt_ingest_job {
    /* in (owned by the job) */
    unsigned char *body;
    size_t len;
    int gzip;
    char addr[64]; /* the caller's address, for scrubbing only; zeroed once parsed */
    double now;    /* wall clock at arrival (timestamp bounds, received_at) */
    /* out */
    int status;        /* HTTP status: 200, 4xx (the body was refused) or 503 (store failed) */
    char *answer;      /* 200: the JSON answer (malloc'd) */
    char err[256];     /* otherwise: the message for the client */
    int retry_after;   /* seconds, for 503 */
    char log_err[256]; /* a store error to log ("" none); never holds the client address */
    size_t accepted, duplicate, rejected;
    /* the caller's */
    void *arg;
    /* internal */
    vt_ingest_batch batch;
    int parsed;
    struct vt_ingest_job *next;
} vt_ingest_job;

/* Called on the loop thread for every finished job; it owns the job (vt_ingest_job_free). */
typedef void (*vt_ingest_done_fn)(vt_ingest_job *j, void *arg);

typedef struct vt_ingest_pool vt_ingest_pool;

/* Opens nthreads (>= 1) store connections to db_url and starts the workers. */
vt_ingest_pool *vt_ingest_pool_new(struct event_base *base, const char *db_url, int nthreads,
                                   const vt_ingest_limits *lim, vt_ingest_done_fn done, void *arg,
                                   char *err, size_t errlen);
/* Loop thread. Takes ownership of j. */
void vt_ingest_pool_submit(vt_ingest_pool *p, vt_ingest_job *j);
/* Jobs submitted whose done callback has not run yet (loop thread). */
size_t vt_ingest_pool_pending(const vt_ingest_pool *p);
/* Lets the workers finish every submitted job (stored, committed), joins them and closes their
 * connections. Jobs finished after the loop stopped are freed without their callback. */
void vt_ingest_pool_free(vt_ingest_pool *p);

/* One job, synchronously, on store s (the path without worker threads). */
void vt_ingest_job_run(vt_store *s, const vt_ingest_limits *lim, vt_ingest_job *j);
void vt_ingest_job_free(vt_ingest_job *j);

#endif
