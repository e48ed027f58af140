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

/* Asked before each new target starts; may be NULL. Once it answers nonzero, no target starts
 * any more: those in flight finish and are handed on (parked canary and VPN measurements too,
 * their verdicts from what was measured), and the run ends. For a graceful SIGTERM/SIGINT. */
typedef int (*vt_stop_fn)(void *arg);

typedef struct vt_runner_hooks {
    vt_result_fn on_result;
    vt_progress_fn on_progress;
    vt_stop_fn should_stop;
    void *arg;
} vt_runner_hooks;

/* Measures every target; returns the number of measurements produced, or -1 with err when the
 * run could not start. Targets a kind refuses are reported in err_each (called with a message)
 * and skipped. */
long vt_run_targets(const vt_env *env, const vt_target_list *targets, const vt_runner_hooks *h,
                    char *err, size_t errlen);

/* Called once from the loop when every target of a vt_run_start run is over. */
typedef void (*vt_run_done_fn)(long produced, void *arg);
/* Like vt_run_targets, but returns at once (0, or -1 with err) and leaves the loop to its
 * owner: for a process whose loop already runs (the collector's control endpoint). on_result
 * and done are called from the loop; targets and h must stay valid until done. */
int vt_run_start(const vt_env *env, const vt_target_list *targets, const vt_runner_hooks *h,
                 vt_run_done_fn done, void *arg, char *err, size_t errlen);

/* Builds the measurement of a finished task (envelope, annotations, test_keys). */
cJSON *vt_task_measurement(vt_task *t);

#endif
