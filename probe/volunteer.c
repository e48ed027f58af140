/* What `run` does around measuring on a volunteer's machine: consent, lock, jitter, last-run. */
#include "volunteer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"

/* Sleeps ms, or less when SIGTERM or SIGINT comes: returns the signal then, else 0. The signals
 * are blocked and waited for, so that a service stopped (or a cron run killed) during the wait
 * ends as a stopped run, with last-run.json, instead of dying of the signal. */
static int wait_ms_or_stop(long ms)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop, &old) < 0) return 0;
    double end = vt_now() + (double)ms / 1000;
    int sig = 0;
    for (;;) {
        double left = end - vt_now();
        if (left <= 0) break;
        struct timespec ts = {.tv_sec = (time_t)left,
                              .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
        int r = sigtimedwait(&stop, NULL, &ts);
        if (r > 0) {
            sig = r;
            break;
        }
        if (r < 0 && errno != EINTR && errno != EAGAIN) break;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return sig;
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
        int sig = wait_ms_or_stop(ms);
        if (sig) {
            fprintf(stderr,
                    "vantage-probe: stopped by %s during the --jitter wait, before "
                    "measuring\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
            v->lastrun = vt_lastrun_new(n_targets);
            vt_volunteer_set_error(v, "stopped by a signal during the --jitter wait, before "
                                      "measuring");
            vt_volunteer_end(v, VT_EXIT_STOPPED);
            return VT_EXIT_STOPPED;
        }
    }
    v->lastrun = vt_lastrun_new(n_targets);
    return VT_EXIT_OK;
}

void vt_volunteer_set_error(vt_volunteer *v, const char *error)
{
    if (error && *error) vt_lastrun_set_error(v->lastrun, error);
}

void vt_volunteer_failed_early(const char *state_dir_opt, int exit_code, const char *error)
{
    char dir[4096], err[1024];
    struct stat st;
    if (vt_state_dir_resolve(state_dir_opt, dir, sizeof(dir), err, sizeof(err)) < 0) return;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) return; /* never ran here: nothing to make */
    int fd = vt_lock_acquire(dir, err, sizeof(err));
    if (fd < 0) return; /* a run holds it (and writes its own), or the lock cannot be had */
    vt_lastrun *r = vt_lastrun_new(0);
    vt_lastrun_set_error(r, error);
    if (r && vt_lastrun_write(r, dir, exit_code, err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-probe: warning: %s\n", err);
    vt_lastrun_free(r);
    vt_lock_release(fd);
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
