/* The spool's commits on a worker thread (committer.h). */
#include "committer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

struct vt_committer {
    vt_spool *sp;
    vt_committer_done_fn done;
    void *arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job to do, a job done, or quit */
    int pipe[2];       /* the worker writes a byte when a job is done: wakes the loop */
    struct event *ev;
    /* under mu */
    vt_spool_batch *job_batch;
    void *job;
    int busy, committed, quit;
};

static void *worker(void *arg)
{
    vt_committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && !(c->busy && !c->committed))
            pthread_cond_wait(&c->cv, &c->mu);
        if (!(c->busy && !c->committed)) break; /* quit, nothing left to do */
        vt_spool_batch *b = c->job_batch;
        pthread_mutex_unlock(&c->mu);
        vt_spool_batch_commit(c->sp, b); /* the fsyncs: the loop goes on meanwhile */
        pthread_mutex_lock(&c->mu);
        c->committed = 1;
        pthread_cond_broadcast(&c->cv);
        ssize_t w;
        do
            w = write(c->pipe[1], "c", 1);
        while (w < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* On the loop's thread: the committed job, if there is one, goes to done. */
static void complete(vt_committer *c)
{
    pthread_mutex_lock(&c->mu);
    if (!(c->busy && c->committed)) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    vt_spool_batch *b = c->job_batch;
    void *job = c->job;
    c->job_batch = NULL;
    c->job = NULL;
    c->busy = c->committed = 0;
    pthread_mutex_unlock(&c->mu);
    c->done(b, job, c->arg); /* may submit the next batch */
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    complete(arg);
}

/* What vt_committer_new made, but the thread. */
static void free_parts(vt_committer *c)
{
    if (c->ev) event_free(c->ev);
    close(c->pipe[0]);
    close(c->pipe[1]);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

vt_committer *vt_committer_new(vt_loop *loop, vt_spool *sp, vt_committer_done_fn done, void *arg,
                               char *err, size_t errlen)
{
    vt_committer *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->sp = sp;
    c->done = done;
    c->arg = arg;
    c->pipe[0] = c->pipe[1] = -1;
    if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->ev = event_new(vt_loop_base(loop), c->pipe[0], EV_READ | EV_PERSIST, on_pipe, c);
    /* The thread takes no signals: SIGTERM/SIGINT go to the loop's thread, which may hold them
     * back around its last commit (main.c) and must then find them pending there. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc =
        c->ev && event_add(c->ev, NULL) == 0 ? pthread_create(&c->thread, NULL, worker, c) : EAGAIN;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the spool's thread: %s", strerror(rc));
        free_parts(c);
        return NULL;
    }
    return c;
}

int vt_committer_busy(const vt_committer *c)
{
    vt_committer *m = (vt_committer *)c;
    pthread_mutex_lock(&m->mu);
    int busy = m->busy;
    pthread_mutex_unlock(&m->mu);
    return busy;
}

int vt_committer_submit(vt_committer *c, vt_spool_batch *b, void *job)
{
    pthread_mutex_lock(&c->mu);
    if (c->busy) {
        pthread_mutex_unlock(&c->mu);
        return -1;
    }
    c->job_batch = b;
    c->job = job;
    c->busy = 1;
    c->committed = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void vt_committer_wait(vt_committer *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->busy && !c->committed)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    complete(c);
}

void vt_committer_free(vt_committer *c)
{
    if (!c) return;
    while (vt_committer_busy(c))
        vt_committer_wait(c);
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    free_parts(c);
}
