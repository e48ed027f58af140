/* The scheduler: a bounded number of tasks in flight on one loop. */
#include "vantage/runner.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/measurement.h"
#include "vantage/verdict.h"
#include "vantage/vpn_verdict.h"

/* VPN verdicts in flight at once: each may ask the collector's control endpoint, which serves
 * every probe with a few slots (8 by default). */
#define RUN_VPN_VERDICTS_MAX 4

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
    /* The VPN kinds' measurements are parked too, until the last of them is over: each one's
     * verdict uses what the others found (vt_vpn_gather). */
    size_t n_vpn, vpn_finished;
    vt_task **vparked;
    size_t n_vparked;
    /* after the last: their verdicts, within the concurrency (each may ask the control) */
    int vpn_released;
    size_t vpn_next, vpn_applying;
    /* vt_run_start: the run lives on the heap and ends with done(); busy counts the runner's
     * frames on the stack, so only the outermost one may finish (and free) the run. */
    int async, busy, finished;
    /* hooks->should_stop said so: no target starts any more (stop_early) */
    int stopped;
    vt_run_done_fn done_cb;
    void *done_arg;
} run;

static void start_next(run *r);
static void run_free(run *r);

static void enter(run *r)
{
    r->busy++;
}

/* Leaves a runner frame; the last frame of an async run whose targets are all over ends it. */
static void leave(run *r)
{
    if (--r->busy > 0 || !r->async || r->finished)
        return;
    if (r->next < r->n || r->in_flight > 0 || r->n_parked > 0 || r->vpn_next < r->n_vparked)
        return;
    r->finished = 1;
    if (r->h->on_progress)
        r->h->on_progress(r->done, r->n, NULL, r->h->arg);
    vt_run_done_fn done = r->done_cb;
    void *arg = r->done_arg;
    long produced = r->produced;
    run_free(r);
    free(r);
    if (done)
        done(produced, arg);
}

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
    cJSON *m = vt_measurement_new(t->env->cfg, t->kind->test_name, t->kind->test_version, input,
                                  t->start_epoch, runtime, ann, tk);
    /* A hostile server must not make the measurement too large for a collector to take: that
     * would hide the evidence of what it did. */
    if (m) vt_measurement_fit(m, VT_MEASUREMENT_MAX_BYTES, VT_MEASUREMENT_MAX_VALUES);
    return m;
}

static int is_canary(const vt_target *tg)
{
    return tg->category && strcmp(tg->category, "canary") == 0;
}

static int is_vpn(const vt_target *tg)
{
    return !is_canary(tg) && vt_vpn_verdict_kind(tg->kind);
}

/* Every target is measured (or skipped) and written. */
static int all_done(const run *r)
{
    return r->done >= r->n && r->in_flight == 0 && r->n_parked == 0 && r->vpn_next >= r->n_vparked;
}

/* The verdict is in test_keys: build the measurement and hand it on. */
static void emit(vt_task *t, void *arg)
{
    run *r = arg;
    enter(r);
    if (r->vpn_released && is_vpn(t->target) && r->vpn_applying > 0)
        r->vpn_applying--;
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
    /* vt_run_targets: idle resolver sockets and timers may keep the loop alive; the run ends
     * with its last measurement. */
    if (!r->async && all_done(r))
        vt_loop_break(r->env->loop);
    leave(r);
}

/* After the last canary: their verdicts. */
static void canaries_release(run *r)
{
    if (r->canaries_finished < r->n_canaries || r->n_parked == 0)
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

/* One more canary is over (measured or skipped). */
static void canary_finished(run *r)
{
    r->canaries_finished++;
    canaries_release(r);
}

/* After the last VPN measurement: the run's evidence; start_next then hands them to their
 * verdicts. */
static void vpn_release(run *r)
{
    if (r->vpn_released || r->vpn_finished < r->n_vpn)
        return;
    size_t n = r->n_vparked;
    vt_vpn_item *items = calloc(n ? n : 1, sizeof(*items));
    if (items) {
        for (size_t i = 0; i < n; i++) {
            items[i].target = r->vparked[i]->target;
            items[i].test_keys = r->vparked[i]->test_keys;
        }
        vt_vpn_gather(items, n);
        free(items);
    }
    r->vpn_released = 1;
}

/* One more VPN measurement is over (measured or skipped). */
static void vpn_finished(run *r)
{
    r->vpn_finished++;
    vpn_release(r);
}

/* The run stops early (a signal, say): the targets not started yet are left out, and what the
 * parked measurements wait for shrinks to the ones started; those in flight finish as usual
 * (each within its timeouts), so nothing measured is lost. */
static void stop_early(run *r)
{
    r->stopped = 1;
    r->n = r->next;
    if (r->n_canaries > r->next)
        r->n_canaries = r->next;
    size_t vpn = 0;
    for (size_t i = r->n_canaries; i < r->next; i++)
        if (is_vpn(r->order[i]))
            vpn++;
    r->n_vpn = vpn;
    canaries_release(r);
    vpn_release(r);
}

static void task_done(vt_task *t, void *arg)
{
    run *r = arg;
    enter(r);
    t->kind->finish(t);
    if (is_canary(t->target) && r->canaries_finished < r->n_canaries) {
        vt_verdict_note_canary(&r->vctx, t->target, t->test_keys);
        r->parked[r->n_parked++] = t;
        r->in_flight--; /* a parked canary holds no slot */
        canary_finished(r);
        start_next(r);
    } else if (is_vpn(t->target) && !r->vpn_released) {
        r->vparked[r->n_vparked++] = t;
        r->in_flight--; /* a parked measurement holds no slot */
        vpn_finished(r);
        start_next(r);
    } else {
        vt_verdict_apply(t, &r->vctx, emit, r);
    }
    leave(r);
}

static void start_next(run *r)
{
    if (!r->stopped && r->h->should_stop && r->h->should_stop(r->h->arg))
        stop_early(r);
    while (r->in_flight < (size_t)r->env->cfg->concurrency) {
        if (r->vpn_released && r->vpn_next < r->n_vparked &&
            r->vpn_applying < RUN_VPN_VERDICTS_MAX) {
            vt_task *t = r->vparked[r->vpn_next++];
            r->in_flight++; /* emit() releases it */
            r->vpn_applying++;
            vt_verdict_apply(t, &r->vctx, emit, r);
            continue;
        }
        if (r->next >= r->n)
            break;
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
            else if (is_vpn(tg))
                vpn_finished(r);
            continue;
        }
        t->env = r->env;
        t->target = tg;
        t->kind = k;
        t->test_keys = cJSON_CreateObject();
        t->on_done = task_done;
        t->on_done_arg = r;
        t->t0 = vt_now();
        t->start_epoch = vt_measurement_now(r->env->cfg);
        if (!k || !t->test_keys || k->create(t, err, sizeof(err)) < 0) {
            /* the binary's own prefix (vantage-probe: every line of its output starts so) */
            fprintf(stderr, "%s: %s: skipped: %s\n", program_invocation_short_name, tg->id,
                    k ? err : "no measurement of this kind");
            cJSON_Delete(t->test_keys);
            free(t);
            r->done++;
            if (canary)
                canary_finished(r);
            else if (is_vpn(tg))
                vpn_finished(r);
            continue;
        }
        r->in_flight++;
        if (r->h->on_progress)
            r->h->on_progress(r->done, r->n, tg, r->h->arg);
        k->start(t);
    }
}

static int run_init(run *r, const vt_env *env, const vt_target_list *targets,
                    const vt_runner_hooks *h, char *err, size_t errlen)
{
    r->env = env;
    r->h = h;
    r->n = targets->n;
    vt_verdict_ctx_init(&r->vctx);
    r->order = calloc(targets->n ? targets->n : 1, sizeof(*r->order));
    r->parked = calloc(targets->n ? targets->n : 1, sizeof(*r->parked));
    r->vparked = calloc(targets->n ? targets->n : 1, sizeof(*r->vparked));
    if (!r->order || !r->parked || !r->vparked) {
        free(r->order);
        free(r->parked);
        free(r->vparked);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t j = 0;
    for (size_t i = 0; i < targets->n; i++)
        if (is_canary(&targets->items[i]))
            r->order[j++] = &targets->items[i];
    r->n_canaries = j;
    for (size_t i = 0; i < targets->n; i++)
        if (is_vpn(&targets->items[i]))
            r->n_vpn++;
    for (size_t i = 0; i < targets->n; i++)
        if (!is_canary(&targets->items[i]))
            r->order[j++] = &targets->items[i];
    return 0;
}

static void run_free(run *r)
{
    free(r->order);
    free(r->parked);
    free(r->vparked);
}

long vt_run_targets(const vt_env *env, const vt_target_list *targets, const vt_runner_hooks *h,
                    char *err, size_t errlen)
{
    run r;
    memset(&r, 0, sizeof(r));
    if (run_init(&r, env, targets, h, err, errlen) < 0)
        return -1;
    start_next(&r);
    if (!all_done(&r))
        vt_loop_run(env->loop);
    if (h->on_progress)
        h->on_progress(r.done, r.n, NULL, h->arg);
    long produced = r.produced;
    run_free(&r);
    return produced;
}

/* The first frame of an async run ends on the loop, so done() never runs inside
 * vt_run_start. */
static void start_frame_over(void *arg)
{
    leave(arg);
}

int vt_run_start(const vt_env *env, const vt_target_list *targets, const vt_runner_hooks *h,
                 vt_run_done_fn done, void *arg, char *err, size_t errlen)
{
    run *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (run_init(r, env, targets, h, err, errlen) < 0) {
        free(r);
        return -1;
    }
    r->async = 1;
    r->done_cb = done;
    r->done_arg = arg;
    r->busy = 1;
    if (!vt_timer_start(env->loop, 0, start_frame_over, r)) {
        run_free(r);
        free(r);
        snprintf(err, errlen, "cannot start a timer on the loop");
        return -1;
    }
    start_next(r);
    return 0;
}
