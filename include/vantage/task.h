/* Measurement kinds and the tasks that run them. Every kind implements the same three
 * operations (create from a target, start on the loop, finish with its test_keys), like RIPE
 * Atlas's testops: adding a protocol is adding one file in lib/ and one line in lib/kinds.c. */
#ifndef VANTAGE_TASK_H
#define VANTAGE_TASK_H

#include <cjson/cJSON.h>

#include "config.h"
#include "dns.h"
#include "loop.h"
#include "targets.h"
#include "tls.h"

/* What every task of a run shares. */
typedef struct vt_env {
    vt_loop *loop;
    const vt_config *cfg;
    vt_dns *dns;          /* the system resolver */
    vt_dns *dns_alt;      /* --resolver, or NULL */
    vt_dns *dns_doh;      /* --doh, or NULL */
    vt_tls_ctx *tls;      /* verification against cfg->cacert or the system CAs */
    void *fingerprints;   /* const vt_fingerprints *, or NULL */
} vt_env;

typedef struct vt_task vt_task;

typedef struct vt_kind {
    const char *name;         /* the target's "kind" */
    const char *test_name;    /* OONI test_name written in the measurement */
    const char *test_version;
    /* Checks the target and allocates t->state; -1 with err on a target it cannot measure. */
    int (*create)(vt_task *t, char *err, size_t errlen);
    /* Starts the work on the loop; must end, eventually, with exactly one vt_task_done(t). */
    void (*start)(vt_task *t);
    /* Adds everything measured to t->test_keys and frees t->state. */
    void (*finish)(vt_task *t);
} vt_kind;

struct vt_task {
    const vt_env *env;
    const vt_target *target;
    const vt_kind *kind;
    cJSON *test_keys;     /* created before create(); filled by the kind */
    double t0;            /* vt_now() at start: step times are relative to it */
    double start_epoch;   /* wall clock at start */
    void *state;          /* the kind's */
    void (*on_done)(vt_task *t, void *arg);
    void *on_done_arg;
    int finished;
};

/* Tells the runner the kind's work is over (call once, from the loop). */
void vt_task_done(vt_task *t);
/* Seconds since the task started. */
double vt_task_elapsed(const vt_task *t);

/* The kinds table (lib/kinds.c). */
const vt_kind *vt_kind_find(const char *name);
const vt_kind *const *vt_kinds_all(void);

#endif
