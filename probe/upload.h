/* Upload of the spool to a collector, and check-in. Blocking (libcurl easy): call it outside the
 * measuring loop, before or after measuring, never during. */
#ifndef VANTAGE_PROBE_UPLOAD_H
#define VANTAGE_PROBE_UPLOAD_H

#include <stddef.h>
#include <stdio.h>

#include "spool.h"
#include "vantage/config.h"

typedef struct vt_upload_opts {
    const char *state_dir;  /* --state-dir, NULL: the default */
    int disabled;           /* --no-upload: neither check-in nor upload */
    const char *collector;  /* base URL, e.g. https://collector.example.org */
    const char *cacert;     /* CA bundle for the collector's certificate, NULL: system */
    const char *token;      /* upload token (Authorization: Bearer), NULL: none */
    int batch_size;         /* measurements per request (default 100) */
    int max_attempts;       /* tries per request (default 6) */
    int backoff_base_ms;    /* first retry waits up to this (default 1000) */
    int backoff_max_ms;     /* cap of one wait (default 60000) */
    int total_timeout_ms;   /* whole upload, waits included (default 600000) */
    int request_timeout_ms; /* one request (default 60000) */
    FILE *log;              /* progress and problems, NULL: silent */
    int quiet; /* --quiet: no line per retry, no result line when everything was acknowledged */
    /* The run's clock, set by vt_upload_run_begin when the system clock was found wrong: now is
     * vt_now() + clock_mono (as a measurement's time). 0: the system clock. */
    double clock_mono;
} vt_upload_opts;

typedef struct vt_upload_result {
    size_t spooled;   /* valid measurements found in the spool */
    size_t accepted;  /* stored by the collector now */
    size_t duplicate; /* the collector had them already */
    size_t rejected;  /* refused: moved to spool/rejected/ */
    size_t corrupt;   /* spool files that could not be read now, left in place */
    size_t set_aside; /* damaged spool files found and moved to spool/damaged/ */
    size_t left;      /* still spooled afterwards */
    size_t inferred;  /* sent with the network of the check-ins around them (checkins.h) */
    int requests;     /* HTTP requests made, retries included */
    int config_error; /* no or unusable collector URL: nothing was tried */
    int answered;     /* the collector itself answered a request (not only errors of the path) */
    char error[512];  /* empty when everything acknowledged */
} vt_upload_result;

#define VT_UPLOAD_MAX_ALTERNATES 4
#define VT_UPLOAD_URL_MAX 416 /* an alternate collector URL, its NUL included */

typedef struct vt_checkin_result {
    char probe_cc[3];
    char probe_asn[16];
    char probe_network_name[256];
    char targets_version[128];
    int clock_checked;     /* the answer had a Date: the collector's clock is known */
    double collector_time; /* that Date (epoch seconds) */
    double clock_offset;   /* seconds to add to the system clock: 0 unless it is more than
                            * VT_CLOCK_SKEW_MAX off the collector's */
    char sni_test[300];     /* its SNI test server "HOST:PORT" ("": none offered) ... */
    char sni_test_pin[64];  /* ... and that server's key, "sha256//BASE64" ("": none) */
    int clock_implausible; /* the answer's Date was outside [VT_CLOCK_FLOOR, VT_CLOCK_CEILING]
                            * (a proxy's wrong clock, a year 99999): ignored, as if absent */
    /* Other addresses of the collector that it announced ("alternate_urls"), each one a
     * collector URL the probe accepts (https, plain http only to loopback). */
    char alternates[VT_UPLOAD_MAX_ALTERNATES][VT_UPLOAD_URL_MAX];
    int n_alternates;
    int unanswered; /* the check-in failed without an answer from the collector itself (no
                     * connection, TLS, timeout, a page that is not its JSON): another address of
                     * it may do */
} vt_checkin_result;

/* A system clock further than this from the collector's is wrong: measurements are then dated by
 * the collector's clock (x_clock_offset). */
#define VT_CLOCK_SKEW_MAX 60
/* No measurement of this probe can be older than its release (2026-11-01 00:00:00 UTC): a system
 * clock before it is wrong, and without a collector's clock to correct it `run` measures
 * nothing. */
#define VT_CLOCK_FLOOR 1793491200.0
/* A collector's Date after this (30 years after VT_CLOCK_FLOOR) is not believed either: it
 * would date every measurement where a collector refuses them all. */
#define VT_CLOCK_CEILING (VT_CLOCK_FLOOR + 30 * 365.25 * 86400)

void vt_upload_opts_defaults(vt_upload_opts *o);

/* Sends every spooled measurement, deletes what the collector acknowledged (accepted or
 * duplicate), moves what it rejected to spool/rejected/, keeps the rest. Returns 0 when the spool
 * was emptied of valid measurements, -1 otherwise (r->error says why; never loses one). */
int vt_upload_spool(vt_spool *sp, const vt_upload_opts *o, vt_upload_result *r);

/* Writes <state>/last-upload.json from r (for `status`). */
int vt_upload_write_last(const char *state_dir, const vt_upload_opts *o, const vt_upload_result *r,
                         char *err, size_t errlen);

/* POST /api/v1/check-in: what the collector sees as this probe's country and network.
 * Retries as an upload request does. */
int vt_upload_checkin(const vt_upload_opts *o, vt_checkin_result *out, char *err, size_t errlen);

/* ---- The probe's command line (used by probe/main.c). ---- */

/* Entries for a getopt_long table; every one returns val, and the option's name goes to
 * vt_upload_option. */
/* clang-format off */
#define VT_UPLOAD_LONGOPTS(val)                                                                    \
    {"state-dir", required_argument, 0, (val)}, {"collector", required_argument, 0, (val)},       \
    {"collector-cacert", required_argument, 0, (val)},                                             \
    {"upload-token", required_argument, 0, (val)}, {"no-upload", no_argument, 0, (val)},           \
    {"upload-batch", required_argument, 0, (val)},                                                 \
    {"upload-attempts", required_argument, 0, (val)},                                              \
    {"upload-backoff-ms", required_argument, 0, (val)},                                            \
    {"upload-max-time", required_argument, 0, (val)}
/* clang-format on */

#define VT_UPLOAD_USAGE                                                                            \
    "  --state-dir DIR     spool and state (default $XDG_STATE_HOME/vantage)\n"                    \
    "  --collector URL     check in and upload to this collector (https://...)\n"                  \
    "  --collector-cacert FILE  CA bundle for the collector's certificate\n"                       \
    "  --upload-token TOKEN  upload token; other local users see it in ps: prefer the\n"          \
    "                      environment variable VANTAGE_UPLOAD_TOKEN\n"                            \
    "  --no-upload         keep measurements in the spool, contact no collector\n"                 \
    "  --upload-batch N    measurements per request (default 100)\n"                               \
    "  --upload-attempts N  tries per request (default 6)\n"                                       \
    "  --upload-backoff-ms MS  first retry waits up to MS, doubling (default 1000)\n"              \
    "  --upload-max-time SEC  give up uploading after SEC (default 600)\n"

/* Defaults, then VANTAGE_UPLOAD_TOKEN from the environment. */
void vt_upload_cli_defaults(vt_upload_opts *o);
/* Applies option name (without "--") with arg; -1 with a message on a bad value. */
int vt_upload_option(vt_upload_opts *o, const char *name, const char *arg, char *err,
                     size_t errlen);

/* Before measuring in `run`: checks in (when a collector is set and uploads are on) and puts the
 * answer into cfg (pointing into *ci), then opens the spool. Returns 0, or -1 after printing why
 * (the spool is required when a collector is set; otherwise a warning and *sp = NULL). */
int vt_upload_run_begin(vt_upload_opts *o, vt_config *cfg, vt_checkin_result *ci, vt_spool **sp);
/* After measuring: uploads (when configured), writes last-upload.json, says what happened.
 * Returns a VT_EXIT_* code: OK, UPLOAD_PENDING or FAILURE. Closes sp. */
int vt_upload_run_end(vt_upload_opts *o, vt_spool *sp, long spool_failed);
/* `vantage-probe upload`: flushes the spool alone. Returns a VT_EXIT_* code. */
int vt_upload_command(vt_upload_opts *o);

/* on: a first SIGTERM/SIGINT ends the check-in or upload in progress instead of the process
 * (a second one kills); off: the handlers before. vt_upload_stopped: the signal that came, or 0. */
void vt_upload_watch_signals(int on);
int vt_upload_stopped(void);

#endif
