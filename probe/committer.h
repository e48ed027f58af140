/* The spool's commits on a thread of their own, so that the fsyncs (up to seconds on a
 * Raspberry Pi's SD card) never stall the event loop while measurements are in flight: a stalled
 * loop would read its clocks late and add the stall to every timing being measured.
 *
 * One batch at a time: vt_committer_submit hands a detached batch (vt_spool_detach) to the
 * worker, which runs vt_spool_batch_commit; when it is durable, done(batch, job, arg) runs on the
 * loop (a pipe wakes it), where the caller finishes the batch (vt_spool_batch_finish) and writes
 * its output. */
#ifndef VANTAGE_PROBE_COMMITTER_H
#define VANTAGE_PROBE_COMMITTER_H

#include "spool.h"
#include "vantage/loop.h"

typedef struct vt_committer vt_committer;
typedef void (*vt_committer_done_fn)(vt_spool_batch *b, void *job, void *arg);

/* NULL (and err) when no thread or pipe can be had: the caller commits on the loop instead. */
vt_committer *vt_committer_new(vt_loop *loop, vt_spool *sp, vt_committer_done_fn done, void *arg,
                               char *err, size_t errlen);
/* A batch is being committed (done has not run yet). */
int vt_committer_busy(const vt_committer *c);
/* Only when not busy. job is the caller's, handed back to done. 0, or -1 (busy). */
int vt_committer_submit(vt_committer *c, vt_spool_batch *b, void *job);
/* Blocks until the batch in flight, if any, is committed, and runs its done (which may submit
 * the next one: call again while busy). For the end of a run, off the loop's callbacks. */
void vt_committer_wait(vt_committer *c);
/* Waits for the batch in flight (its done runs), stops the thread. */
void vt_committer_free(vt_committer *c);

#endif
