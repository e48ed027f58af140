/* What running the probe unattended on a volunteer's machine needs: informed consent, one run at a
 * time, a random start delay, and a record of the last run for `vantage-probe status`. */
#ifndef VANTAGE_PROBE_VOLUNTEER_H
#define VANTAGE_PROBE_VOLUNTEER_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* Bump when the notice changes in substance: everyone is asked again. */
#define VT_CONSENT_VERSION 1

/* ---- volunteer.c: what `run` does before and after measuring ---- */

typedef struct vt_volunteer {
    int accept_risks;     /* --accept-risks or accept_risks = yes */
    char accept_how[600]; /* where the acceptance came from, for the record */
    int jitter;           /* --jitter SECONDS (0: none) */
    int quiet;
    /* filled by vt_volunteer_begin */
    char state_dir[4096]; /* "" when there is none (no HOME and no --state-dir) */
    int lock_fd;
    struct vt_lastrun *lastrun;
} vt_volunteer;

/* Before measuring (and before any network traffic): consent, the run lock, the jitter sleep.
 * Returns VT_EXIT_OK or the code to exit with (NO_CONSENT, LOCKED, FAILURE) after saying why; or
 * STOPPED when SIGTERM/SIGINT came during the jitter wait (last-run.json then says so, and the
 * lock is released). */
int vt_volunteer_begin(vt_volunteer *v, const char *state_dir_opt, size_t n_targets);
/* Each measurement of the run. */
void vt_volunteer_result(vt_volunteer *v, const cJSON *m);
/* After the run: writes <state>/last-run.json, a plain one-line tally when stderr is not a
 * terminal (logs, cron mail), releases the lock. */
void vt_volunteer_end(vt_volunteer *v, int exit_code);
/* Why the run failed or stopped (a line of its own in `status`); "" or NULL: nothing. */
void vt_volunteer_set_error(vt_volunteer *v, const char *error);
/* A run that failed before vt_volunteer_begin (a broken target file): last-run.json says so, for
 * `status`, when the state directory already exists and no other run holds the lock (that run
 * writes its own); nothing is created. */
void vt_volunteer_failed_early(const char *state_dir_opt, int exit_code, const char *error);

/* ---- consent.c ---- */

/* How the risks were accepted for this run (without a recorded consent). */
typedef struct vt_consent_opts {
    int accepted;    /* --accept-risks or accept_risks = yes */
    const char *how; /* "--accept-risks", "config /etc/vantage/probe.conf:3", ... */
    int quiet;
} vt_consent_opts;

/* The notice a volunteer reads before the first run. */
void vt_consent_print_notice(FILE *f);
/* Returns 0 when the probe may measure: a consent of the current version is recorded in
 * state_dir, or o accepts (then it is recorded), or a person on a terminal typed "yes" (then it
 * is recorded). Otherwise prints why and returns VT_EXIT_NO_CONSENT. state_dir NULL: nothing can
 * be recorded (a warning), the rules are the same. */
int vt_consent_check(const char *state_dir, const vt_consent_opts *o);
/* How o, or else VANTAGE_ACCEPT_RISKS, accepts the risks without a prompt; NULL: neither does. */
const char *vt_consent_accepted_by(const vt_consent_opts *o);
/* 1 when state_dir holds a consent of the current version (date into when, may be NULL). */
int vt_consent_recorded(const char *state_dir, char *when, size_t whenlen);

/* ---- lock.c ---- */

/* Takes <state_dir>/run.lock (flock, non-blocking), creating state_dir 0700 as needed. Returns the
 * fd to keep open for the run, -2 when another run holds it, -1 on an error (err says which). */
int vt_lock_acquire(const char *state_dir, char *err, size_t errlen);
void vt_lock_release(int fd);
/* Who holds <state_dir>/run.lock: the pid written in it and when it was taken (the file's mtime,
 * epoch seconds). 0, or -1 when the file cannot be read. */
int vt_lock_holder(const char *state_dir, long *pid, double *since);
/* A run holding the lock longer than this may be stuck: said even with --quiet. The systemd
 * unit's TimeoutStartSec; a run from cron (jitter at most 1 h, the upload at most 10 min by
 * default) takes far less. */
#define VT_LOCK_STUCK_S (2 * 3600)
/* mkdir -p with mode 0700. */
int vt_state_dir_make(const char *dir, char *err, size_t errlen);

/* A uniformly random delay in [0, max_s] seconds, in milliseconds (getrandom). */
long vt_jitter_pick_ms(int max_s);

/* ---- status.c ---- */

/* Verdict tallies of a run, written to <state>/last-run.json at its end. */
typedef struct vt_lastrun vt_lastrun;
vt_lastrun *vt_lastrun_new(size_t n_targets);
void vt_lastrun_add(vt_lastrun *r, const cJSON *measurement);
/* The run is dated by the collector's clock (the system clock was wrong): its start is then
 * vt_now() + clock_mono at the time it began, as its measurements are dated. */
void vt_lastrun_set_clock(vt_lastrun *r, double clock_mono);
/* Why the run failed or stopped, for `status` (last-run.json's "error"). */
void vt_lastrun_set_error(vt_lastrun *r, const char *error);
/* Writes <state_dir>/last-run.json (atomically); exit_code is the run's. */
int vt_lastrun_write(const vt_lastrun *r, const char *state_dir, int exit_code, char *err,
                     size_t errlen);
void vt_lastrun_free(vt_lastrun *r);
/* One plain line: "vantage-probe: measured 12 of 12 targets: ok 10, dns_blocking 2". */
void vt_lastrun_log(const vt_lastrun *r, FILE *f);

/* The epoch seconds a small state file holds (sni-test.last); 0 when it is missing, unreadable
 * or not a plausible time. */
double vt_state_read_epoch(const char *state_dir, const char *name);

/* `vantage-probe status [--json] [--state-dir DIR]`; conf_state_dir is the config file's. */
/* conf_accept: how probe.conf accepts the risks ("accept_risks in FILE"), NULL: it does not. */
int vt_status_command(int argc, char **argv, const char *conf_state_dir, const char *conf_accept);

/* The state directory a run uses: explicit, else the default (vt_spool_default_state_dir). */
int vt_state_dir_resolve(const char *explicit_dir, char *out, size_t n, char *err, size_t errlen);

#endif
