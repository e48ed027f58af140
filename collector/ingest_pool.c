/* Upload work off the event loop (ingest_pool.h).
 *
 * Threads: the loop thread submits jobs and runs their done callbacks; workers own their
 * vt_store and touch a job only between taking it from a list and putting it on the next one,
 * every list under p->mu. On SQLite, storing runs under vt_store_db_lock (one storer at a time
 * in the process): SQLite has one writer anyway, and rollup.c keeps its SQLite statement cache in
 * a process-wide table. On PostgreSQL the workers store at once, each in its own transaction on
 * its own connection: one batch's insert overlaps another's rollups, which the database
 * serialises with rollup.c's advisory lock as it does for several collectors. One remaining shared
 * write: cJSON_Parse* resets and sets cJSON's global error pointer (libcjson 1.7), so workers
 * parsing at once race on it; nothing here reads it (cJSON_GetErrorPtr is never called), the parse
 * results do not depend on it. tests/tsan.supp names it for ThreadSanitizer. */
#include "ingest_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Ready batches stored in one transaction: at most this many measurements (at least one job). */
#define GROUP_MAX_ROWS 4000

typedef struct worker {
    struct vt_ingest_pool *p;
    vt_store *store;
    pthread_t thread;
    int started;
    int serial; /* stores under vt_store_db_lock (SQLite) */
} worker;

struct vt_ingest_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vt_ingest_job *in, **in_tail;       /* submitted, not yet taken */
    vt_ingest_job *ready, **ready_tail; /* parsed, waiting for a storer */
    vt_ingest_job *done, **done_tail;   /* finished, for the loop */
    int stop;
    int efd;
    struct event *ev;
    vt_ingest_limits lim;
    vt_ingest_done_fn done_fn;
    void *done_arg;
    size_t pending; /* loop thread only */
    worker *w;
    int nw;
};

static void push(vt_ingest_job ***tail, vt_ingest_job *j)
{
    j->next = NULL;
    **tail = j;
    *tail = &j->next;
}

void vt_ingest_job_free(vt_ingest_job *j)
{
    if (!j) return;
    vt_ingest_batch_free(&j->batch);
    free(j->body);
    free(j->answer);
    memset(j->addr, 0, sizeof(j->addr));
    free(j);
}

/* Gunzip, parse and validate: on return j->parsed, or j->status holds the refusal. */
static void stage_parse(const vt_ingest_limits *lim, vt_ingest_job *j)
{
    unsigned char *inflated = NULL;
    const char *data = (const char *)j->body;
    size_t dlen = j->len;
    if (j->gzip) {
        int r = vt_ingest_inflate(j->body, j->len, lim->max_inflated, &inflated, &dlen, j->err,
                                  sizeof(j->err));
        if (r < 0) {
            j->status = r == -2 ? 413 : 400;
            memset(j->addr, 0, sizeof(j->addr));
            return;
        }
        data = (const char *)inflated;
    }
    int code = 400;
    int rc =
        vt_ingest_parse(data, dlen, lim, j->addr, j->now, &j->batch, &code, j->err, sizeof(j->err));
    memset(j->addr, 0, sizeof(j->addr)); /* the address is dropped here */
    free(inflated);
    free(j->body);
    j->body = NULL;
    if (rc < 0) {
        j->status = code;
        return;
    }
    j->parsed = 1;
}

/* After the transaction: the answer, or 503. The parsed batch is freed either way. */
static void finish(vt_ingest_job *j, int store_rc, const char *store_err)
{
    vt_ingest_batch *b = &j->batch;
    if (store_rc < 0) {
        j->status = 503;
        j->retry_after = 5;
        snprintf(j->log_err, sizeof(j->log_err), "%s", store_err);
        snprintf(j->err, sizeof(j->err),
                 "the collector's database is unavailable; nothing of this batch was stored, "
                 "retry later");
    } else {
        j->answer = vt_ingest_answer(b);
        j->accepted = b->accepted;
        j->duplicate = b->duplicate;
        j->rejected = b->rejected;
        if (j->answer) {
            j->status = 200;
        } else {
            /* Stored but the answer cannot be built: the probe retries and gets duplicates. */
            j->status = 503;
            j->retry_after = 1;
            snprintf(j->err, sizeof(j->err), "out of memory building the answer; retry");
        }
    }
    vt_ingest_batch_free(b);
    j->parsed = 0;
}

void vt_ingest_job_run(vt_store *s, const vt_ingest_limits *lim, vt_ingest_job *j)
{
    stage_parse(lim, j);
    if (!j->parsed) return;
    char err[256] = "";
    int rc = vt_ingest_store(s, &j->batch, err, sizeof(err));
    finish(j, rc, err);
}

static void complete(vt_ingest_pool *p, vt_ingest_job *j)
{
    pthread_mutex_lock(&p->mu);
    push(&p->done_tail, j);
    pthread_mutex_unlock(&p->mu);
    uint64_t one = 1;
    while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Every ready batch (up to the cap) in one transaction (SQLite: under vt_store_db_lock, held
 * for the transaction only: answers are built and parsed trees freed after it, a tenth of a
 * batch's CPU time that the next group's commit need not wait for). */
static void store_ready(worker *w)
{
    vt_ingest_pool *p = w->p;
    vt_ingest_job *group[64];
    vt_ingest_batch *bs[64];
    size_t n = 0, rows = 0;
    if (w->serial) vt_store_db_lock(); /* before taking: batches ready meanwhile join the group */
    pthread_mutex_lock(&p->mu);
    while (p->ready && n < 64 && (n == 0 || rows + p->ready->batch.n <= GROUP_MAX_ROWS)) {
        vt_ingest_job *j = p->ready;
        p->ready = j->next;
        if (!p->ready) p->ready_tail = &p->ready;
        rows += j->batch.n;
        bs[n] = &j->batch;
        group[n++] = j;
    }
    pthread_mutex_unlock(&p->mu);
    char err[256] = "";
    int rc = n ? vt_ingest_store_many(w->store, bs, n, err, sizeof(err)) : 0;
    if (w->serial) vt_store_db_unlock();
    for (size_t i = 0; i < n; i++) {
        finish(group[i], rc, err);
        complete(p, group[i]);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    vt_ingest_pool *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->in && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        vt_ingest_job *j = p->in;
        if (!j) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        p->in = j->next;
        if (!p->in) p->in_tail = &p->in;
        pthread_mutex_unlock(&p->mu);

        stage_parse(&p->lim, j);
        if (!j->parsed) {
            complete(p, j);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        push(&p->ready_tail, j);
        pthread_mutex_unlock(&p->mu);
        /* Every job put on ready is followed by one storer turn of the thread that put it, so
         * no batch is left behind; that turn may find its batch already taken by another. */
        store_ready(w);
        /* SQLite: the WAL is copied into the database here, while another thread may already
         * be committing the next group. */
        vt_store_upkeep(w->store);
    }
    return NULL;
}

/* Loop thread: the workers' finished jobs. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    vt_ingest_pool *p = arg;
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&p->mu);
    vt_ingest_job *list = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        vt_ingest_job *j = list;
        list = j->next;
        p->pending--;
        p->done_fn(j, p->done_arg);
    }
}

vt_ingest_pool *vt_ingest_pool_new(struct event_base *base, const char *db_url, int nthreads,
                                   const vt_ingest_limits *lim, vt_ingest_done_fn done, void *arg,
                                   char *err, size_t errlen)
{
    if (nthreads < 1) nthreads = 1;
    vt_ingest_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->in_tail = &p->in;
    p->ready_tail = &p->ready;
    p->done_tail = &p->done;
    p->lim = *lim;
    p->done_fn = done;
    p->done_arg = arg;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->w = calloc((size_t)nthreads, sizeof(*p->w));
    if (p->efd < 0 || !p->w) {
        snprintf(err, errlen, "cannot set up the ingest threads: %s", strerror(errno));
        goto fail;
    }
    p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_done, p);
    if (!p->ev || event_add(p->ev, NULL) < 0) {
        snprintf(err, errlen, "cannot set up the ingest threads");
        goto fail;
    }
    /* The connections are opened here, one after the other, before any thread runs. */
    for (int i = 0; i < nthreads; i++) {
        p->w[i].p = p;
        p->w[i].store = vt_store_open_quick(db_url, err, errlen);
        p->nw = i + 1;
        if (!p->w[i].store) goto fail;
        vt_store_defer_checkpoints(p->w[i].store);
        p->w[i].serial = vt_store_one_writer(p->w[i].store);
    }
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start an ingest thread: %s", strerror(rc));
            goto fail;
        }
        p->w[i].started = 1;
    }
    return p;
fail:
    vt_ingest_pool_free(p);
    return NULL;
}

void vt_ingest_pool_submit(vt_ingest_pool *p, vt_ingest_job *j)
{
    p->pending++;
    pthread_mutex_lock(&p->mu);
    push(&p->in_tail, j);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

size_t vt_ingest_pool_pending(const vt_ingest_pool *p)
{
    return p ? p->pending : 0;
}

void vt_ingest_pool_free(vt_ingest_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nw; i++)
        if (p->w[i].started) pthread_join(p->w[i].thread, NULL);
    for (int i = 0; i < p->nw; i++)
        vt_store_close(p->w[i].store);
    /* Finished after the loop stopped: their requests may be gone, nobody is answered. */
    while (p->done) {
        vt_ingest_job *j = p->done;
        p->done = j->next;
        vt_ingest_job_free(j);
    }
    if (p->ev) event_free(p->ev);
    if (p->efd >= 0) close(p->efd);
    free(p->w);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
