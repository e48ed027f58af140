/* Runs a list of targets on the loop, at most cfg->concurrency at a time: canaries first (the
 * probe's own connectivity is evidence for every later verdict), then the rest in list order. */
#ifndef VANTAGE_RUNNER_H
#define VANTAGE_RUNNER_H

#include <cjson/cJSON.h>

#include "task.h"

/* Called from the loop as each measurement completes; measurement is owned by the callee. */
typedef void (*vt_result_fn)(cJSON *measurement, const vt_target *t, void *arg);
/* Called when a measurement starts (for progress); may be NULL. */
typedef void (*vt_progress_fn)(size_t done, size_t total, const vt_target *t, void *arg);

typedef struct vt_runner_hooks {
    vt_result_fn on_result;
    vt_progress_fn on_progress;
    void *arg;
} vt_runner_hooks;

/* Measures every target; returns the number of measurements produced, or -1 with err when the
 * run could not start. Targets a kind refuses are reported in err_each (called with a message)
 * and skipped. */
long vt_run_targets(const vt_env *env, const vt_target_list *targets, const vt_runner_hooks *h,
                    char *err, size_t errlen);

/* Builds the measurement of a finished task (envelope, annotations, test_keys). */
cJSON *vt_task_measurement(vt_task *t);

#endif
