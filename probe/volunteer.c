/* What `run` does around measuring on a volunteer's machine: consent, lock, jitter, last-run. */
#include "volunteer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Another run holds the lock. From cron (--quiet) that is no news while it is young: a crontab
 * starting runs more often than they take (every 10 minutes with --jitter 1800) mailed this line
 * for nearly every one. A run holding it for hours may be stuck: that is said even then. */
static void locked(const char *state, int quiet)
{
    long pid;
    double since;
    char ts[20], who[4200];
    int known = vt_lock_holder(state, &pid, &since) == 0 && pid > 0 && since > 0;
    double age = known ? vt_wall_now() - since : 0;
    int stuck = known && age > VT_LOCK_STUCK_S;
    if (quiet && known && !stuck) return;
    if (known) {
        vt_format_time(since, ts);
        snprintf(who, sizeof(who), "pid %ld since %s UTC, holding %s/run.lock", pid, ts, state);
    } else {
        snprintf(who, sizeof(who), "it holds %s/run.lock", state);
    }
    fprintf(stderr, "vantage-probe: another run is in progress (%s); not starting a second one",
            who);
    if (stuck)
        fprintf(stderr,
                "; it has been going for %.1f hours and may be stuck: `kill %ld` stops it (what it "
                "measured stays in the spool)",
                age / 3600, pid);
    fputc('\n', stderr);
}

int vt_volunteer_begin(vt_volunteer *v, const char *state_dir_opt, size_t n_targets)
{
    char err[1024];
    v->lock_fd = -1;
    v->lastrun = NULL;
    v->state_dir[0] = 0;
    if (vt_state_dir_resolve(state_dir_opt, v->state_dir, sizeof(v->state_dir), err, sizeof(err)) <
        0) {
        if (state_dir_opt) {
            fprintf(stderr, "vantage-probe: %s\n", err);
            return VT_EXIT_FAILURE;
        }
        fprintf(stderr, "vantage-probe: warning: %s; runs are not locked against each other\n",
                err);
        v->state_dir[0] = 0;
    }
    const char *state = v->state_dir[0] ? v->state_dir : NULL;
    vt_consent_opts co = {.accepted = v->accept_risks,
                          .how = v->accept_how[0] ? v->accept_how : NULL,
                          .quiet = v->quiet};
    int rc = vt_consent_check(state, &co);
    if (rc != VT_EXIT_OK) return rc;
    if (state) {
        v->lock_fd = vt_lock_acquire(state, err, sizeof(err));
        if (v->lock_fd == -2) {
            v->lock_fd = -1;
            locked(state, v->quiet);
            return VT_EXIT_LOCKED;
        }
        if (v->lock_fd < 0) {
            fprintf(stderr, "vantage-probe: %s\n", err);
            return VT_EXIT_FAILURE;
        }
    }
    if (v->jitter > 0) {
        long ms = vt_jitter_pick_ms(v->jitter);
        if (!v->quiet)
            fprintf(stderr,
                    "vantage-probe: waiting %.1f s (random, at most %d s) before measuring\n",
                    (double)ms / 1000, v->jitter);
        sleep_ms(ms);
    }
    v->lastrun = vt_lastrun_new(n_targets);
    return VT_EXIT_OK;
}

void vt_volunteer_result(vt_volunteer *v, const cJSON *m)
{
    vt_lastrun_add(v->lastrun, m);
}

void vt_volunteer_end(vt_volunteer *v, int exit_code)
{
    char err[1024];
    if (v->lastrun && v->state_dir[0] &&
        vt_lastrun_write(v->lastrun, v->state_dir, exit_code, err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-probe: warning: %s\n", err);
    if (v->lastrun && !v->quiet && !isatty(STDERR_FILENO)) vt_lastrun_log(v->lastrun, stderr);
    vt_lastrun_free(v->lastrun);
    v->lastrun = NULL;
    vt_lock_release(v->lock_fd);
    v->lock_fd = -1;
}
