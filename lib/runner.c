/* The scheduler: a bounded number of tasks in flight on one loop. */
#include "vantage/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/measurement.h"
#include "vantage/verdict.h"

typedef struct run {
    const vt_env *env;
    const vt_runner_hooks *h;
    const vt_target **order; /* canaries first */
    size_t n, next, done, in_flight;
    long produced;
    /* Phase 1: the canaries run to completion (their measurements are parked until the last
     * one ends), so that every verdict, theirs included, knows whether the probe's own network
     * works; phase 2, the other targets, starts only then. */
    size_t n_canaries, canaries_finished;
    vt_task **parked;
    size_t n_parked;
    vt_verdict_ctx vctx;
} run;

static void start_next(run *r);

cJSON *vt_task_measurement(vt_task *t)
{
    const vt_target *tg = t->target;
    double runtime = vt_task_elapsed(t);
    cJSON *ann = cJSON_CreateObject();
    cJSON_AddStringToObject(ann, "target_id", tg->id);
    cJSON_AddStringToObject(ann, "target_name", tg->name);
    cJSON_AddStringToObject(ann, "platform", tg->platform);
    cJSON_AddStringToObject(ann, "category", tg->category);
    cJSON_AddStringToObject(ann, "kind", tg->kind);
    cJSON_AddStringToObject(ann, "engine_name", "libvantage");
    const char *input = tg->n_endpoints ? tg->endpoints[0] : NULL;
    cJSON *tk = t->test_keys;
    t->test_keys = NULL;
    return vt_measurement_new(t->env->cfg, t->kind->test_name, t->kind->test_version, input,
                              t->start_epoch, runtime, ann, tk);
}

static int is_canary(const vt_target *tg)
{
    return tg->category && strcmp(tg->category, "canary") == 0;
}

/* The verdict is in test_keys: build the measurement and hand it on. */
static void emit(vt_task *t, void *arg)
{
    run *r = arg;
    cJSON *m = vt_task_measurement(t);
    r->in_flight--;
    r->done++;
    if (m) {
        r->produced++;
        r->h->on_result(m, t->target, r->h->arg);
    }
    cJSON_Delete(t->test_keys);
    free(t);
    start_next(r);
}

/* One more canary is over (measured or skipped): after the last, their verdicts. */
static void canary_finished(run *r)
{
    if (++r->canaries_finished < r->n_canaries)
        return;
    vt_task **parked = r->parked;
    size_t n = r->n_parked;
    r->parked = NULL;
    r->n_parked = 0;
    r->in_flight += n; /* emit() releases their slots again */
    for (size_t i = 0; i < n; i++)
        vt_verdict_apply(parked[i], &r->vctx, emit, r);
    free(parked);
}

static void task_done(vt_task *t, void *arg)
{
    run *r = arg;
    t->kind->finish(t);
    if (is_canary(t->target) && r->canaries_finished < r->n_canaries) {
        vt_verdict_note_canary(&r->vctx, t->target, t->test_keys);
        r->parked[r->n_parked++] = t;
        r->in_flight--; /* a parked canary holds no slot */
        canary_finished(r);
        start_next(r);
        return;
    }
    vt_verdict_apply(t, &r->vctx, emit, r);
}

static void start_next(run *r)
{
    while (r->in_flight < (size_t)r->env->cfg->concurrency && r->next < r->n) {
        if (r->next >= r->n_canaries && r->canaries_finished < r->n_canaries)
            break; /* phase 2 waits for every canary */
        int canary = r->next < r->n_canaries;
        const vt_target *tg = r->order[r->next++];
        const vt_kind *k = vt_kind_find(tg->kind);
        char err[256] = "";
        vt_task *t = calloc(1, sizeof(*t));
        if (!t) {
            r->done++;
            if (canary)
                canary_finished(r);
            continue;
        }
        t->env = r->env;
        t->target = tg;
        t->kind = k;
        t->test_keys = cJSON_CreateObject();
        t->on_done = task_done;
        t->on_done_arg = r;
        t->t0 = vt_now();
        t->start_epoch = vt_wall_now();
        if (!k || !t->test_keys || k->create(t, err, sizeof(err)) < 0) {
            fprintf(stderr, "vantage: %s: skipped: %s\n", tg->id,
                    k ? err : "no measurement of this kind");
            cJSON_Delete(t->test_keys);
            free(t);
            r->done++;
            if (canary)
                canary_finished(r);
            continue;
        }
        r->in_flight++;
        if (r->h->on_progress)
            r->h->on_progress(r->done, r->n, tg, r->h->arg);
        k->start(t);
    }
}

long vt_run_targets(const vt_env *env, const vt_target_list *targets, const vt_runner_hooks *h,
                    char *err, size_t errlen)
{
    run r = {.env = env, .h = h, .n = targets->n};
    vt_verdict_ctx_init(&r.vctx);
    r.order = calloc(targets->n ? targets->n : 1, sizeof(*r.order));
    r.parked = calloc(targets->n ? targets->n : 1, sizeof(*r.parked));
    if (!r.order || !r.parked) {
        free(r.order);
        free(r.parked);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t j = 0;
    for (size_t i = 0; i < targets->n; i++)
        if (is_canary(&targets->items[i]))
            r.order[j++] = &targets->items[i];
    r.n_canaries = j;
    for (size_t i = 0; i < targets->n; i++)
        if (!is_canary(&targets->items[i]))
            r.order[j++] = &targets->items[i];
    start_next(&r);
    vt_loop_run(env->loop);
    if (h->on_progress)
        h->on_progress(r.done, r.n, NULL, h->arg);
    free(r.order);
    free(r.parked);
    return r.produced;
}
