/* vantage-probe: measures targets from the volunteer's network and writes OONI-format JSONL. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli.h"
#include "device.h"
#include "committer.h"
#include "config.h"
#include "textfile.h"
#include "upload.h"
#include "vantage/addr.h"
#include "vantage/config.h"
#include "vantage/dns.h"
#include "vantage/fingerprints.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"
#include "vantage/runner.h"
#include "vantage/targets.h"
#include "vantage/task.h"
#include "vantage/tls.h"
#include "vantage/version.h"
#include "sni_checks.h"
#include "volunteer.h"

#define MAX_PATHS 32

static vt_probe_conf g_conf; /* settings point into it until exit */

typedef struct probe_opts {
    const char *targets[MAX_PATHS];
    size_t n_targets;
    const char *citizenlab[MAX_PATHS];
    size_t n_citizenlab;
    const char *only;
    int no_canaries; /* --no-canaries: the canaries are neither added nor kept by a filter */
    const char *output;
    int quiet;
    const char *fingerprints[MAX_PATHS]; /* --fingerprints, after targets/fingerprints.csv */
    size_t n_fingerprints;
    vt_config cfg;
    vt_upload_opts up; /* spool, check-in and upload (upload.c) */
    const char *categories;
    int targets_from_conf; /* targets[] came from probe.conf: a --targets flag replaces them */
    vt_volunteer vol;      /* consent, lock, jitter, last-run (volunteer.c) */
    int sni_test_every;    /* hours between runs' SNI test downloads (sni_test_every); 0: all */
} probe_opts;

typedef struct run_ctx {
    FILE *out;
    vt_summary *summary;
    int progress; /* draw a progress bar on stderr */
    size_t total;
    long written;
    int write_error;
    vt_spool *spool;
    long spool_failed;
    vt_volunteer *vol;
    vt_loop *loop;
    char **pending; /* output lines of staged measurements, written once the spool took them */
    size_t n_pending, cap_pending, pending_bytes;
    struct event *flush_timer;
    vt_committer *committer; /* the batches' fsyncs off the loop (NULL: on it) */
    int flush_wanted;        /* a batch was due while the previous one was being committed */
    /* SIGTERM/SIGINT: the first stops the run early (stop_on_signal), a second one kills */
    struct event *sig_term, *sig_int;
    int stopping;
    int sni_tested; /* a measurement of this run holds SNI test downloads */
} run_ctx;

/* The spool takes measurements in batches (one directory fsync per batch, not per measurement):
 * a batch is committed when it holds RUN_BATCH_MAX measurements or RUN_BATCH_BYTES of them (the
 * lines wait in memory), RUN_BATCH_MS after its first, and at the end of the run. A measurement
 * reaches the output only after its batch is taken. */
#define RUN_BATCH_MAX 64
#define RUN_BATCH_BYTES (256 * 1024)
#define RUN_BATCH_MS 100

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vantage-probe COMMAND [OPTIONS]\n"
            "\n"
            "Measures whether social platforms and VPNs are reachable from this network, and\n"
            "writes one OONI-format JSON measurement per target.\n"
            "\n"
            "commands:\n"
            "  run                 measure the targets (default: the installed target lists)\n"
            "  targets             list the targets that `run` would measure\n"
            "  summary FILE        print the summary table of a JSONL measurement file\n"
            "  upload              send the spooled measurements to --collector\n"
            "  status [--json]     last run, spooled measurements, last upload, next run\n"
            "  consent             what the probe does and the risks of running it\n"
            "\n"
            "run / targets options:\n"
            "  --targets FILE|DIR  target list(s) (JSON); repeatable\n"
            "  --citizenlab FILE   a Citizen Lab test list (CSV); repeatable\n"
            "  --only ID,...       measure only these target ids (and the canaries)\n"
            "  --no-canaries       no canaries: offline is then not told from blocking\n"
            "  --concurrency N     measurements in flight at once (default 8)\n"
            "  --timeout SEC       timeout of each phase: DNS, connect, TLS (HTTP: 3x)\n"
            "  --output FILE       write JSONL here instead of standard output (on a terminal:\n"
            "                      STATE/last-run.jsonl)\n"
            "  --cacert FILE       CA bundle for TLS verification (default: the system's)\n"
            "  --resolver IP[:PORT]  a second DNS resolver to compare answers with (UDP)\n"
            "  --doh URL           a DNS-over-HTTPS resolver to compare answers with\n"
            "  --control URL       a collector's control endpoint (https://.../api/v1/control):\n"
            "                      the site measured from there tells blocking from an outage\n"
            "  --control-cacert FILE  CA bundle for the control endpoint\n"
            "  --sni-test HOST:PORT|no  a collector's SNI test server (default: the one the\n"
            "                      check-in offers): tells throttling by name (2 x 128 KiB\n"
            "                      per HTTPS target); no: none\n"
            "  --sni-test-pin sha256//KEY  the SNI test server's public key\n"
            "  --sni-test-every HOURS  its downloads at most once in HOURS (the state\n"
            "                      directory remembers the last); 0: every run (default)\n"
            "  --fingerprints FILE  more blocking fingerprints (CSV), after the shipped ones\n"
            "  --quiet             no progress bar and no summary\n"
            "  --config FILE       read this probe.conf after /etc/vantage and ~/.config/vantage\n"
            "  --categories C,...  measure only targets of these categories (and the canaries)\n"
            "  --accept-risks      accept the risks (see `consent`) without a prompt\n"
            "  --jitter SEC        wait a random 0..SEC seconds (at most 3600) before measuring\n"
            "\n"
            "spool and upload options (run, upload):\n" VT_UPLOAD_USAGE "  --help, --version\n"
            "\n"
            "exit codes: 0 ok, 1 error, 2 usage or config file, 3 nothing measured,\n"
            "  4 upload pending, 5 locked, 6 risks not accepted, 7 stopped early by a signal\n");
}

/* The canaries (category "canary") tell a dead network from blocking: without them an offline
 * probe reports "unclear", not probe_offline. They come with the default lists; a run of Citizen
 * Lab lists only gets the default canaries too, and --only and --categories keep them, unless
 * --no-canaries. With --targets, the canaries are those of the files named. */
static int load_targets(const probe_opts *o, vt_target_list *l, char *why, size_t whylen)
{
    char err[512];
    vt_targets_init(l);
    for (size_t i = 0; i < o->n_targets; i++)
        if (vt_targets_load_path(l, o->targets[i], err, sizeof(err)) < 0) goto fail;
    if (o->n_targets == 0 && o->n_citizenlab > 0 && !o->no_canaries) {
        char path[4200];
        struct stat st;
        snprintf(path, sizeof(path), "%s/canaries.json", vt_targets_default_dir());
        if (stat(path, &st) == 0) {
            if (vt_targets_load_file(l, path, err, sizeof(err)) < 0) goto fail;
        } else {
            fprintf(stderr,
                    "vantage-probe: warning: no %s: without canaries an offline network is not "
                    "told from blocking\n",
                    path);
        }
    }
    for (size_t i = 0; i < o->n_citizenlab; i++)
        if (vt_targets_load_citizenlab(l, o->citizenlab[i], err, sizeof(err)) < 0) goto fail;
    if (o->n_targets == 0 && o->n_citizenlab == 0) {
        const char *dir = vt_targets_default_dir();
        if (vt_targets_load_dir(l, dir, err, sizeof(err)) < 0) goto fail;
    }
    const char *canary = o->no_canaries ? NULL : "canary";
    if (o->only && vt_targets_filter(l, o->only, canary, err, sizeof(err)) < 0) goto fail;
    if (o->categories &&
        vt_probe_filter_categories(l, o->categories, canary != NULL, err, sizeof(err)) < 0)
        goto fail;
    if (o->no_canaries && !o->only && !o->categories) {
        unsigned char *keep = malloc(l->n ? l->n : 1);
        if (!keep) {
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < l->n; i++)
            keep[i] = strcmp(l->items[i].category, "canary") != 0;
        vt_targets_keep(l, keep);
        free(keep);
    }
    return 0;
fail:
    fprintf(stderr, "vantage-probe: %s\n", err);
    if (why) snprintf(why, whylen, "%s", err);
    vt_targets_free(l);
    return -1;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_opts(int argc, char **argv, probe_opts *o)
{
    enum {
        O_TARGETS = 256,
        O_CITIZENLAB,
        O_ONLY,
        O_CONC,
        O_TIMEOUT,
        O_OUTPUT,
        O_CACERT,
        O_RESOLVER,
        O_DOH,
        O_QUIET,
        O_HELP,
        O_UPLOAD,
        O_NO_CANARIES
    };
    enum {
        O_CONTROL = 420,
        O_CONTROL_CACERT,
        O_FINGERPRINTS,
        O_SNI_TEST,
        O_SNI_TEST_PIN,
        O_SNI_TEST_EVERY
    };
    enum { O_VOL_CONFIG = 400, O_VOL_CATEGORIES, O_VOL_ACCEPT, O_VOL_JITTER };
    static const struct option longopts[] = {
        {"targets", required_argument, 0, O_TARGETS},
        {"citizenlab", required_argument, 0, O_CITIZENLAB},
        {"only", required_argument, 0, O_ONLY},
        {"no-canaries", no_argument, 0, O_NO_CANARIES},
        {"concurrency", required_argument, 0, O_CONC},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"output", required_argument, 0, O_OUTPUT},
        {"cacert", required_argument, 0, O_CACERT},
        {"resolver", required_argument, 0, O_RESOLVER},
        {"doh", required_argument, 0, O_DOH},
        {"control", required_argument, 0, O_CONTROL},
        {"control-cacert", required_argument, 0, O_CONTROL_CACERT},
        {"fingerprints", required_argument, 0, O_FINGERPRINTS},
        {"sni-test", required_argument, 0, O_SNI_TEST},
        {"sni-test-pin", required_argument, 0, O_SNI_TEST_PIN},
        {"sni-test-every", required_argument, 0, O_SNI_TEST_EVERY},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {"config", required_argument, 0, O_VOL_CONFIG},
        {"categories", required_argument, 0, O_VOL_CATEGORIES},
        {"accept-risks", no_argument, 0, O_VOL_ACCEPT},
        {"jitter", required_argument, 0, O_VOL_JITTER},
        VT_UPLOAD_LONGOPTS(O_UPLOAD),
        {0, 0, 0, 0},
    };
    int c, v, li = 0;
    char uerr[256];
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        switch (c) {
        case O_TARGETS:
            if (o->targets_from_conf) /* flags override the config file */
                o->n_targets = 0, o->targets_from_conf = 0;
            if (o->n_targets == MAX_PATHS) goto too_many;
            o->targets[o->n_targets++] = optarg;
            break;
        case O_CITIZENLAB:
            if (o->n_citizenlab == MAX_PATHS) goto too_many;
            o->citizenlab[o->n_citizenlab++] = optarg;
            break;
        case O_ONLY:
            o->only = optarg;
            break;
        case O_NO_CANARIES:
            o->no_canaries = 1;
            break;
        case O_CONC:
            if (parse_int(optarg, 1, 1000, &v) < 0) {
                fprintf(stderr, "vantage-probe: --concurrency wants 1..1000, not '%s'\n", optarg);
                return -1;
            }
            o->cfg.concurrency = v;
            break;
        case O_TIMEOUT:
            if (parse_int(optarg, 1, 600, &v) < 0) {
                fprintf(stderr, "vantage-probe: --timeout wants seconds 1..600, not '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.dns_timeout_ms = o->cfg.connect_timeout_ms = o->cfg.tls_timeout_ms = v * 1000;
            o->cfg.http_timeout_ms = 3 * v * 1000;
            break;
        case O_OUTPUT:
            o->output = optarg;
            break;
        case O_CACERT:
            o->cfg.cacert = optarg;
            break;
        case O_RESOLVER:
            /* Refused here, before the lock and last-run.json: a run would fail at its start. */
            if (vt_probe_resolver_check(optarg) < 0) {
                fprintf(stderr,
                        "vantage-probe: --resolver wants IP or IP:PORT ([IPv6]:PORT), not '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.resolver = optarg;
            break;
        case O_DOH:
            /* Its answers are the reference the system resolver's are judged by: over plain
             * http the network being measured could rewrite them. */
            if (vt_url_check_secure("--doh", optarg, uerr, sizeof(uerr)) < 0) {
                fprintf(stderr, "vantage-probe: %s\n", uerr);
                return -1;
            }
            o->cfg.doh_url = optarg;
            break;
        case O_CONTROL:
            /* The control's answer decides between blocked and down: over plain http the
             * network being measured could forge it (and would see every site asked about). */
            if (vt_url_check_secure("--control", optarg, uerr, sizeof(uerr)) < 0) {
                fprintf(stderr, "vantage-probe: %s\n", uerr);
                return -1;
            }
            o->cfg.control_url = optarg;
            break;
        case O_CONTROL_CACERT:
            o->cfg.control_cacert = optarg;
            break;
        case O_SNI_TEST:
            if (!strcmp(optarg, "no")) {
                o->cfg.sni_test = ""; /* not the check-in's either */
            } else if (vt_probe_sni_test_check(optarg) < 0) {
                fprintf(stderr, "vantage-probe: --sni-test wants HOST:PORT or no, not '%s'\n",
                        optarg);
                return -1;
            } else {
                o->cfg.sni_test = optarg;
            }
            break;
        case O_SNI_TEST_PIN:
            if (vt_probe_pin_check(optarg) < 0) {
                fprintf(stderr,
                        "vantage-probe: --sni-test-pin wants sha256//BASE64 (44 characters), "
                        "not '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.sni_test_pin = optarg;
            break;
        case O_SNI_TEST_EVERY:
            if (parse_int(optarg, 0, VT_CONF_MAX_SNI_EVERY, &v) < 0) {
                fprintf(stderr, "vantage-probe: --sni-test-every wants hours 0..%d, not '%s'\n",
                        VT_CONF_MAX_SNI_EVERY, optarg);
                return -1;
            }
            o->sni_test_every = v;
            break;
        case O_FINGERPRINTS:
            if (o->n_fingerprints == MAX_PATHS) goto too_many;
            o->fingerprints[o->n_fingerprints++] = optarg;
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_HELP:
            usage(stdout);
            exit(VT_EXIT_OK);
        case O_UPLOAD:
            if (vt_upload_option(&o->up, longopts[li].name, optarg, uerr, sizeof(uerr)) < 0) {
                fprintf(stderr, "vantage-probe: %s\n", uerr);
                return -1;
            }
            break;
        case O_VOL_CONFIG:
            break; /* read before parsing (main) */
        case O_VOL_CATEGORIES:
            o->categories = optarg;
            break;
        case O_VOL_ACCEPT:
            o->vol.accept_risks = 1;
            snprintf(o->vol.accept_how, sizeof(o->vol.accept_how), "--accept-risks");
            break;
        case O_VOL_JITTER:
            if (parse_int(optarg, 0, VT_CONF_MAX_JITTER, &v) < 0) {
                fprintf(stderr, "vantage-probe: --jitter wants seconds 0..%d, not '%s'\n",
                        VT_CONF_MAX_JITTER, optarg);
                return -1;
            }
            o->vol.jitter = v;
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vantage-probe: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
too_many:
    fprintf(stderr, "vantage-probe: at most %d target files\n", MAX_PATHS);
    return -1;
}

static void draw_progress(run_ctx *r, size_t done, const vt_target *t)
{
    int width = 30, fill = r->total ? (int)(done * (size_t)width / r->total) : width;
    fprintf(stderr, "\r\033[K[%.*s%*s] %zu/%zu %s", fill, "##############################",
            width - fill, "", done, r->total, t ? t->id : "");
    if (!t) fputc('\n', stderr);
    fflush(stderr);
}

static void on_progress(size_t done, size_t total, const vt_target *t, void *arg)
{
    run_ctx *r = arg;
    if (r->progress) draw_progress(r, done, t);
}

static int should_stop(void *arg)
{
    return ((run_ctx *)arg)->stopping;
}

/* The first SIGTERM or SIGINT (systemd stopping the service, a shutdown, Ctrl-C): no target
 * starts any more; those in flight finish within their timeouts and are spooled with the rest,
 * so a stopped run loses nothing it measured. The handlers go away, so a second signal kills at
 * once (libevent puts the default disposition back). */
static void stop_on_signal(evutil_socket_t sig, short what, void *arg)
{
    run_ctx *r = arg;
    (void)what;
    r->stopping = 1;
    event_free(r->sig_term);
    event_free(r->sig_int);
    r->sig_term = r->sig_int = NULL;
    fprintf(stderr,
            "%svantage-probe: %s: stopping; the measurements in flight finish first (a "
            "second signal stops at once)\n",
            r->progress ? "\n" : "", sig == SIGINT ? "interrupted" : "terminated");
}

static int watch_signals(run_ctx *r)
{
    struct event_base *base = vt_loop_base(r->loop);
    r->sig_term = evsignal_new(base, SIGTERM, stop_on_signal, r);
    r->sig_int = evsignal_new(base, SIGINT, stop_on_signal, r);
    if (!r->sig_term || !r->sig_int || evsignal_add(r->sig_term, NULL) < 0 ||
        evsignal_add(r->sig_int, NULL) < 0)
        return -1;
    return 0;
}

static void unwatch_signals(run_ctx *r)
{
    if (r->sig_term) event_free(r->sig_term);
    if (r->sig_int) event_free(r->sig_int);
    r->sig_term = r->sig_int = NULL;
}

static void write_line(run_ctx *r, const char *line)
{
    if (fputs(line, r->out) == EOF || fputc('\n', r->out) == EOF)
        r->write_error = errno ? errno : EIO;
    else
        r->written++;
}

static void on_committed(const char *uid, int rc, const char *err, void *arg)
{
    run_ctx *r = arg;
    (void)uid;
    if (rc != 0 && r->spool_failed++ == 0) fprintf(stderr, "vantage-probe: %s\n", err);
}

static void write_lines(run_ctx *r, char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        write_line(r, lines[i]);
        free(lines[i]);
    }
}

/* The output lines of a batch being committed by the committer's thread. */
typedef struct flush_job {
    char **lines;
    size_t n;
} flush_job;

static void flush_pending(run_ctx *r);

/* On the loop: a batch is durable; its measurements count as taken and are written out. */
static void on_batch_done(vt_spool_batch *b, void *job, void *arg)
{
    run_ctx *r = arg;
    flush_job *j = job;
    vt_spool_batch_finish(r->spool, b, on_committed, r);
    write_lines(r, j->lines, j->n);
    free(j->lines);
    free(j);
    if (r->flush_wanted) {
        r->flush_wanted = 0;
        flush_pending(r);
    }
}

/* Commits the staged batch, then writes its measurements out: whatever reaches the output has
 * been taken (or its spooling failure was counted and reported). With a committer the fsyncs run
 * on its thread and the lines are written when it is done (on_batch_done); while it commits one
 * batch, the next one waits. */
static void flush_pending(run_ctx *r)
{
    if (r->flush_timer) {
        vt_timer_cancel(r->flush_timer);
        r->flush_timer = NULL;
    }
    if (r->committer) {
        if (vt_committer_busy(r->committer)) {
            r->flush_wanted = 1;
            return;
        }
        flush_job *j = malloc(sizeof(*j));
        vt_spool_batch *b = j ? vt_spool_detach(r->spool) : NULL;
        if (b) {
            j->lines = r->pending;
            j->n = r->n_pending;
            r->pending = NULL;
            r->n_pending = r->cap_pending = r->pending_bytes = 0;
            vt_committer_submit(r->committer, b, j); /* not busy: cannot fail */
            return;
        }
        free(j); /* nothing staged (only lines whose spooling failed), or out of memory */
    }
    vt_spool_commit(r->spool, on_committed, r);
    write_lines(r, r->pending, r->n_pending);
    r->n_pending = 0;
    r->pending_bytes = 0;
}

/* Everything staged taken and written, now: at the end of the run (blocks on the fsyncs). */
static void flush_all(run_ctx *r)
{
    while (r->committer && vt_committer_busy(r->committer))
        vt_committer_wait(r->committer); /* its done may start the next batch */
    r->flush_wanted = 0;
    vt_committer *c = r->committer;
    r->committer = NULL; /* the rest on this thread */
    flush_pending(r);
    r->committer = c;
}

static void on_flush_timer(void *arg)
{
    run_ctx *r = arg;
    r->flush_timer = NULL; /* the loop freed it */
    flush_pending(r);
}

static int add_pending(run_ctx *r, char *line)
{
    if (r->n_pending == r->cap_pending) {
        size_t nc = r->cap_pending ? r->cap_pending * 2 : RUN_BATCH_MAX;
        char **np = realloc(r->pending, nc * sizeof(*np));
        if (!np) return -1;
        r->pending = np;
        r->cap_pending = nc;
    }
    r->pending[r->n_pending++] = line;
    r->pending_bytes += strlen(line);
    return 0;
}

static void on_result(cJSON *m, const vt_target *t, void *arg)
{
    run_ctx *r = arg;
    /* One serialisation for both the spool file and the output line. */
    char *line = vt_json_print(m);
    if (r->spool) {
        char err[1024];
        const char *uid = vt_json_get_string(m, "measurement_uid");
        int rc = VT_SPOOL_ERR;
        if (!uid)
            snprintf(err, sizeof(err), "spool: measurement has no measurement_uid: not stored");
        else if (!line)
            snprintf(err, sizeof(err), "spool: out of memory: measurement %s not stored", uid);
        else
            rc = vt_spool_stage(r->spool, uid, line, strlen(line), err, sizeof(err));
        if (rc < 0 && r->spool_failed++ == 0) fprintf(stderr, "vantage-probe: %s\n", err);
    }
    if (line && add_pending(r, line) < 0) {
        flush_all(r); /* out of memory: this one's batch now */
        write_line(r, line);
        free(line);
    }
    vt_summary_add(r->summary, m);
    if (r->vol) vt_volunteer_result(r->vol, m);
    const cJSON *sni = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "test_keys"), "x_sni_test");
    if (cJSON_IsObject(sni) && !cJSON_GetObjectItemCaseSensitive(sni, "skipped")) r->sni_tested = 1;
    cJSON_Delete(m);
    if (r->committer &&
        (r->n_pending >= 4 * RUN_BATCH_MAX || r->pending_bytes >= 4 * RUN_BATCH_BYTES))
        flush_all(r); /* the disk is slower than the measurements: memory stays bounded */
    else if (!r->spool || r->n_pending >= RUN_BATCH_MAX || r->pending_bytes >= RUN_BATCH_BYTES)
        flush_pending(r);
    else if (!r->flush_timer && r->n_pending &&
             !(r->loop &&
               (r->flush_timer = vt_timer_start(r->loop, RUN_BATCH_MS, on_flush_timer, r))))
        flush_pending(r);
}

static int cmd_targets(probe_opts *o)
{
    vt_target_list l;
    if (load_targets(o, &l, NULL, 0) < 0) return VT_EXIT_FAILURE;
    printf("%-28s %-12s %-10s %-10s %s\n", "ID", "PLATFORM", "CATEGORY", "KIND", "ENDPOINTS");
    for (size_t i = 0; i < l.n; i++) {
        const vt_target *t = &l.items[i];
        printf("%-28s %-12s %-10s %-10s %s%s\n", t->id, t->platform, t->category, t->kind,
               t->n_endpoints ? t->endpoints[0] : "", t->n_endpoints > 1 ? " (+more)" : "");
    }
    fprintf(stderr, "%zu targets\n", l.n);
    vt_targets_free(&l);
    return VT_EXIT_OK;
}

/* The measurements' JSON goes nowhere: --output (or stdout without it, off a terminal) is a
 * character device that is not a terminal, such as /dev/null. */
static int output_discarded(const char *output)
{
    struct stat st;
    if (output) {
        if (stat(output, &st) < 0 || !S_ISCHR(st.st_mode)) return 0;
        int fd = open(output, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        int tty = fd >= 0 && isatty(fd);
        if (fd >= 0) close(fd);
        return !tty;
    }
    if (isatty(STDOUT_FILENO)) return 0; /* the state directory's last-run.jsonl */
    return fstat(STDOUT_FILENO, &st) == 0 && S_ISCHR(st.st_mode);
}

/* sni_test_every: the SNI test's downloads (two of 128 KiB per HTTPS target, about 6 MiB a run)
 * in at most one run in so many hours. The state directory's sni-test.last holds when the last
 * run that did them finished (epoch seconds, by the measurements' clock). */
#define SNI_TEST_LAST "sni-test.last"

static void sni_test_schedule(probe_opts *o)
{
    if (!o->cfg.sni_test || !*o->cfg.sni_test || o->sni_test_every <= 0 || !o->vol.state_dir[0])
        return;
    double last = vt_state_read_epoch(o->vol.state_dir, SNI_TEST_LAST);
    double age = vt_measurement_now(&o->cfg) - last;
    /* none, unreadable, or in the future (the clock went back): due */
    if (last <= 0 || age < 0 || age >= o->sni_test_every * 3600.0) return;
    o->cfg.sni_test_not_due = 1;
    if (!o->quiet)
        fprintf(stderr,
                "vantage-probe: SNI test not due: the last was %.1f h ago (sni_test_every %d)\n",
                age / 3600, o->sni_test_every);
}

static void sni_test_done(const probe_opts *o)
{
    char path[4200], buf[32], err[512];
    if (!o->vol.state_dir[0] ||
        snprintf(path, sizeof(path), "%s/" SNI_TEST_LAST, o->vol.state_dir) >= (int)sizeof(path))
        return;
    int n = snprintf(buf, sizeof(buf), "%.0f\n", vt_measurement_now(&o->cfg));
    if (vt_spool_write_file_atomic(path, buf, (size_t)n, err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-probe: warning: %s\n", err);
}

static int cmd_run(probe_opts *o)
{
    char err[512] = "";
    int rc = VT_EXIT_FAILURE;
    vt_target_list l;
    vt_env env = {0};
    vt_fp_set fps;
    vt_fp_init(&fps);
    run_ctx r = {0};
    char report_id[128];
    vt_checkin_result checkin;

    /* A run that cannot start (a target file broken by an edit, a filter that keeps nothing)
     * says so in last-run.json too: from cron, `status` is where a volunteer looks. */
    if (load_targets(o, &l, err, sizeof(err)) < 0) {
        vt_volunteer_failed_early(o->up.state_dir, VT_EXIT_FAILURE, err);
        return VT_EXIT_FAILURE;
    }
    if (l.n == 0) {
        fprintf(stderr, "vantage-probe: no targets to measure\n");
        vt_volunteer_failed_early(o->up.state_dir, VT_EXIT_NOTHING, "no targets to measure");
        vt_targets_free(&l);
        return VT_EXIT_NOTHING;
    }
    /* From the check-in on: with --quiet, its retries are not cron mail either. */
    o->vol.quiet = o->up.quiet = o->quiet;
    int vrc = vt_volunteer_begin(&o->vol, o->up.state_dir, l.n); /* before any traffic */
    if (vrc != VT_EXIT_OK) {
        vt_targets_free(&l);
        return vrc;
    }
    /* No collector, and no word that none is meant: the measurements would pile up in the
     * spool, run after run, with exit 0 and nothing said (a forgotten collector_url, or a
     * probe.conf this run did not read: sudo reads root's ~/.config). */
    if (!o->up.collector && !o->up.disabled) {
        char files[1200];
        if (g_conf.files_read[0])
            snprintf(files, sizeof(files), "not in %s", g_conf.files_read);
        else
            snprintf(files, sizeof(files), "no config file found: looked for %s",
                     g_conf.files_looked);
        fprintf(stderr,
                "vantage-probe: warning: no collector is set (collector_url in probe.conf, or "
                "--collector; %s): the measurements stay in the spool and nothing is uploaded; "
                "--no-upload (upload = no) if that is meant\n",
                files);
    }
    r.vol = &o->vol;
    /* A stop during the check-in ends the run there, with last-run.json saying so. */
    vt_upload_watch_signals(1);
    int begun = vt_upload_run_begin(&o->up, &o->cfg, &checkin, &r.spool);
    vt_upload_watch_signals(0);
    /* last-run.json dated like the measurements: by the collector's clock when ours is wrong */
    vt_lastrun_set_clock(o->vol.lastrun, o->up.clock_mono);
    if (begun < 0 || vt_upload_stopped()) {
        int src = begun < 0 ? VT_EXIT_FAILURE : VT_EXIT_STOPPED;
        if (src == VT_EXIT_STOPPED)
            fprintf(stderr, "vantage-probe: stopped by a signal before measuring\n");
        vt_volunteer_set_error(&o->vol, src == VT_EXIT_STOPPED
                                            ? "stopped by a signal during the check-in, before "
                                              "measuring"
                                            : "the spool in the state directory could not be "
                                              "opened: not measured (the run's output says why)");
        vt_spool_close(r.spool);
        vt_volunteer_end(&o->vol, src);
        vt_targets_free(&l);
        return src;
    }
    /* A clock set before this probe existed (a board without a battery-backed clock, run before
     * NTP) would date every measurement wrongly, and a collector refuses such dates: nothing is
     * measured unless the check-in brought the collector's clock to correct it. */
    if (vt_measurement_now(&o->cfg) < VT_CLOCK_FLOOR) {
        char ts[20];
        vt_format_time(vt_measurement_now(&o->cfg), ts);
        fprintf(stderr,
                "vantage-probe: the system clock says %s UTC, before this probe was released: "
                "not measuring, the measurements could not be dated; set the clock (NTP)%s\n",
                ts,
                !o->up.collector ? " or give a --collector to check in"
                : o->up.disabled ? " or let the run check in (without --no-upload or upload = no)"
                                 : "");
        char why[128];
        snprintf(why, sizeof(why), "the system clock said %s UTC: not measured (set the clock)",
                 ts);
        vt_volunteer_set_error(&o->vol, why);
        vt_spool_close(r.spool);
        vt_volunteer_end(&o->vol, VT_EXIT_FAILURE);
        vt_targets_free(&l);
        return VT_EXIT_FAILURE;
    }
    /* Still full (the collector unreachable, or no upload): this run's measurements would be
     * lost to the cap. When their output is thrown away too (the cron line's --output
     * /dev/null), measuring would only put the volunteer's traffic on record for nothing. */
    if (r.spool && vt_spool_cap_warning(r.spool) && output_discarded(o->output)) {
        fprintf(stderr,
                "vantage-probe: not measuring: the spool is full (see above) and the output is "
                "discarded, so nothing this run measured could be kept\n");
        vt_volunteer_set_error(&o->vol, "the spool is full and the output is discarded: not "
                                        "measured");
        vt_spool_close(r.spool);
        vt_volunteer_end(&o->vol, VT_EXIT_FAILURE);
        vt_targets_free(&l);
        return VT_EXIT_FAILURE;
    }
    sni_test_schedule(o);
    vt_report_id_new(report_id, sizeof(report_id), vt_measurement_now(&o->cfg), "vantage",
                     o->cfg.probe_cc, o->cfg.probe_asn);
    o->cfg.report_id = report_id;
    /* The device's hourly token in every measurement (device.h): without a key, none. */
    static unsigned char device_key[VT_DEVICE_KEY_LEN];
    char kerr[512];
    if (r.spool) {
        if (vt_device_key_load(vt_spool_state_dir(r.spool), device_key, kerr, sizeof(kerr)) == 0)
            o->cfg.device_key = device_key;
        else
            fprintf(stderr, "vantage-probe: warning: %s; measurements carry no device token\n",
                    kerr);
    }
    /* A target's whole measurement within twice its steps' timeouts: a chain of slow redirects
     * (each hop a fresh HTTP timeout) would otherwise hold a run for minutes per target. */
    if (o->cfg.task_deadline_ms <= 0)
        o->cfg.task_deadline_ms = 2 * (o->cfg.dns_timeout_ms + o->cfg.connect_timeout_ms +
                                       o->cfg.tls_timeout_ms + o->cfg.http_timeout_ms);
    env.cfg = &o->cfg;
    if (!(env.loop = vt_loop_new(err, sizeof(err)))) goto done;
    if (!(env.dns = vt_dns_new_system(env.loop, &o->cfg, err, sizeof(err)))) goto done;
    if (o->cfg.resolver &&
        !(env.dns_alt = vt_dns_new_udp(env.loop, &o->cfg, o->cfg.resolver, err, sizeof(err))))
        goto done;
    if (o->cfg.doh_url &&
        !(env.dns_doh = vt_dns_new_doh(env.loop, &o->cfg, o->cfg.doh_url, err, sizeof(err))))
        goto done;
    if (!(env.tls = vt_tls_ctx_new(o->cfg.cacert, err, sizeof(err)))) goto done;
    /* Blocking fingerprints for the verdicts: the shipped list, then --fingerprints files. */
    if (vt_fp_load_shipped(&fps, err, sizeof(err)) < 0) goto done;
    for (size_t i = 0; i < o->n_fingerprints; i++)
        if (vt_fp_load(&fps, o->fingerprints[i], err, sizeof(err)) < 0) goto done;
    env.fingerprints = &fps;

    r.out = stdout;
    /* On a terminal, kilobytes of JSON per measurement would bury the progress bar and the
     * summary: without --output they go to the state directory's last-run.jsonl then. */
    char last_run[PATH_MAX];
    const char *output = o->output;
    if (!output && r.spool && isatty(STDOUT_FILENO) &&
        snprintf(last_run, sizeof(last_run), "%s/last-run.jsonl", vt_spool_state_dir(r.spool)) <
            (int)sizeof(last_run)) {
        output = last_run;
        if (!o->quiet)
            fprintf(stderr, "vantage-probe: measurements go to %s (--output FILE to choose)\n",
                    output);
    }
    if (output && !(r.out = fopen(output, "w"))) {
        snprintf(err, sizeof(err), "cannot write %.300s: %s", output, strerror(errno));
        goto done;
    }
    r.summary = vt_summary_new();
    r.total = l.n;
    r.progress = !o->quiet && isatty(STDERR_FILENO);
    vt_runner_hooks hooks = {
        .on_result = on_result, .on_progress = on_progress, .should_stop = should_stop, .arg = &r};
    r.loop = env.loop;
    if (watch_signals(&r) < 0) {
        snprintf(err, sizeof(err), "cannot watch for signals");
        goto done;
    }
    if (r.spool) {
        char cerr[256];
        if (!(r.committer =
                  vt_committer_new(env.loop, r.spool, on_batch_done, &r, cerr, sizeof(cerr))))
            fprintf(stderr, "vantage-probe: %s: the spool commits on the loop\n", cerr);
    }
    long n = vt_run_targets(&env, &l, &hooks, err, sizeof(err));
    /* The last batch with SIGTERM/SIGINT held back: the default action would kill the process
     * with measurements half committed, and the loop that would see libevent's handler no longer
     * runs. A signal that came meanwhile is taken as the first one: the run stops early (exit
     * 7, no upload). The committer's thread blocks them (committer.c). */
    sigset_t stop_sigs, old_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_sigs, &old_mask);
    flush_all(&r);
    const struct timespec now_ts = {0, 0};
    int pending = sigtimedwait(&stop_sigs, NULL, &now_ts);
    if (pending > 0 && r.sig_term) stop_on_signal(pending, 0, &r);
    unwatch_signals(&r);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    vt_committer_free(r.committer);
    r.committer = NULL;
    if (n < 0) goto done;
    if (fflush(r.out) == EOF && !r.write_error) r.write_error = errno;
    if (r.write_error) {
        snprintf(err, sizeof(err), "writing measurements to %.300s failed: %s",
                 output ? output : "standard output", strerror(r.write_error));
        goto done;
    }
    if (!o->quiet && isatty(STDERR_FILENO)) {
        vt_summary_print(r.summary, stderr, 1);
    } else {
        /* Without the table (cron, --quiet), a run that judged nothing because this device was
         * offline is news: with no collector to fail at, it would pass in silence, exit 0. */
        size_t off = vt_summary_count_verdict(r.summary, "probe_offline");
        if (off > 0 && off == vt_summary_count(r.summary))
            fprintf(stderr,
                    "vantage-probe: this device's connection was offline: none of the %zu "
                    "targets could be judged (probe_offline)\n",
                    off);
    }
    rc = n > 0 ? VT_EXIT_OK : VT_EXIT_NOTHING;
    if (r.stopping) {
        /* Stopped early: what was measured waits in the spool for the next run's upload (a
         * service being stopped should not start a transfer now). */
        fprintf(stderr, "vantage-probe: stopped early: %ld of %zu targets measured%s\n", n, l.n,
                r.spool && !r.spool_failed ? "; they wait in the spool for the next upload" : "");
        rc = r.spool_failed ? VT_EXIT_FAILURE : VT_EXIT_STOPPED;
        snprintf(err, sizeof(err), "stopped by a signal after %ld of %zu targets", n, l.n);
        vt_volunteer_set_error(&o->vol, err);
        err[0] = 0;
        goto done;
    }
    if (r.sni_tested) sni_test_done(o); /* a whole run's: not when it stopped early */
    /* The loop has finished: uploading now holds back no measurement. A stop signal ends the
     * upload (what was not acknowledged waits in the spool) and the run with exit 7. */
    vt_upload_watch_signals(1);
    int urc = vt_upload_run_end(&o->up, r.spool, r.spool_failed);
    vt_upload_watch_signals(0);
    r.spool = NULL;
    if (rc == VT_EXIT_OK && urc != VT_EXIT_OK) rc = urc;
    if (vt_upload_stopped() && rc != VT_EXIT_FAILURE) {
        fprintf(stderr, "vantage-probe: stopped by a signal during the upload: what was not "
                        "acknowledged waits in the spool for the next one\n");
        rc = VT_EXIT_STOPPED;
        vt_volunteer_set_error(&o->vol, "stopped by a signal during the upload");
    }
    /* Measurements that could not be spooled are lost (disk full): cron and systemd must see a
     * failure, even when everything else was uploaded (the message is vt_upload_run_end's). */
    if (r.spool_failed) {
        char why[128];
        snprintf(why, sizeof(why), "%ld measurement(s) could not be kept in the spool (full?)",
                 r.spool_failed);
        vt_volunteer_set_error(&o->vol, why);
        rc = VT_EXIT_FAILURE;
    }
done:
    if (r.out) flush_all(&r);
    unwatch_signals(&r);
    vt_committer_free(r.committer);
    free(r.pending);
    vt_spool_close(r.spool);
    if (rc == VT_EXIT_FAILURE && *err) {
        fprintf(stderr, "vantage-probe: %s\n", err);
        vt_volunteer_set_error(&o->vol, err);
    }
    vt_volunteer_end(&o->vol, rc);
    if (r.out && r.out != stdout) fclose(r.out);
    vt_summary_free(r.summary);
    vt_tls_ctx_free(env.tls);
    vt_fp_free(&fps);
    vt_dns_free(env.dns_doh);
    vt_dns_free(env.dns_alt);
    vt_dns_free(env.dns);
    vt_loop_free(env.loop);
    vt_targets_free(&l);
    return rc;
}

/* Prints the summary of a JSONL file (used by `make run`). */
static int cmd_summary(const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "vantage-probe: cannot read %s: %s\n", path, strerror(errno));
        return VT_EXIT_FAILURE;
    }
    vt_summary *s = vt_summary_new();
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, bad = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        cJSON *m = cJSON_Parse(line);
        if (!cJSON_IsObject(m) ||
            !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "test_keys"))) {
            if (bad++ < 3)
                fprintf(stderr, "vantage-probe: %s:%ld: not a JSON measurement, skipped\n", path,
                        lineno);
        } else {
            vt_summary_add(s, m);
        }
        cJSON_Delete(m);
    }
    free(line);
    if (f != stdin) fclose(f);
    vt_summary_print(s, stdout, isatty(STDOUT_FILENO));
    int rc = vt_summary_count(s) ? VT_EXIT_OK : VT_EXIT_NOTHING;
    vt_summary_free(s);
    return rc;
}

/* probe.conf: /etc/vantage, then ~/.config/vantage, then --config; flags parsed later win. */
static int apply_config(probe_opts *o, int argc, char **argv)
{
    char err[1024];
    const char *path = vt_probe_conf_arg(argc, argv);
    vt_probe_conf_init(&g_conf);
    if (path && !*path) {
        fprintf(stderr, "vantage-probe: --config wants a FILE\n");
        return VT_EXIT_USAGE;
    }
    if (vt_probe_conf_load(&g_conf, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-probe: %s\n", err);
        return VT_EXIT_USAGE;
    }
    vt_probe_conf_apply(&g_conf, &o->cfg, &o->up);
    for (size_t i = 0; i < g_conf.n_targets && o->n_targets < MAX_PATHS; i++)
        o->targets[o->n_targets++] = g_conf.targets[i];
    o->targets_from_conf = g_conf.n_targets > 0;
    if (g_conf.categories) o->categories = g_conf.categories;
    if (g_conf.quiet >= 0) o->quiet = g_conf.quiet;
    if (g_conf.jitter >= 0) o->vol.jitter = g_conf.jitter;
    if (g_conf.sni_test_every >= 0) o->sni_test_every = g_conf.sni_test_every;
    if (g_conf.accept_risks > 0) {
        o->vol.accept_risks = 1;
        snprintf(o->vol.accept_how, sizeof(o->vol.accept_how), "accept_risks in %s",
                 g_conf.accept_risks_from);
    }
    return VT_EXIT_OK;
}

/* Debian's libcurl links GnuTLS (for librtmp and libldap), which the probe never uses, and
 * GnuTLS initialises itself from its constructor when it loads: the system's crypto policy,
 * PKCS#11 through p11-kit, ASN.1 trees. That is 0.6-0.9 MiB resident (measured with
 * bench/footprint --lab) of a probe that aims at 16 MB on a Raspberry Pi. GnuTLS skips it when
 * GNUTLS_NO_IMPLICIT_INIT is set as it loads, so the probe executes itself once more with it set,
 * before anything else happens (no thread, no file, no output yet). Not when the variable is
 * already set (to anything: also the way to opt out), when GnuTLS is not loaded, or under
 * valgrind (its preload in LD_PRELOAD: the new image would run outside valgrind); a failed exec
 * just goes on as before. */
static void skip_gnutls_init(char **argv)
{
    if (getenv("GNUTLS_NO_IMPLICIT_INIT")) return;
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return;
    void *h = dlopen("libgnutls.so.30", RTLD_LAZY | RTLD_NOLOAD);
    if (!h) return;
    dlclose(h);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1) return;
    self[n] = 0;
    if (setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 1) != 0) return;
    execv(self, argv);
    unsetenv("GNUTLS_NO_IMPLICIT_INIT");
}

int main(int argc, char **argv)
{
    skip_gnutls_init(argv);
    probe_opts o;
    memset(&o, 0, sizeof(o));
    vt_config_defaults(&o.cfg);
    vt_upload_cli_defaults(&o.up);
    signal(SIGPIPE, SIG_IGN);
    /* Footprint: blocks of 64 KiB and more (each HTTP request's body buffer, sized for the body it
     * may keep) come from mmap, so only the pages a body fills become resident and a freed one
     * goes back to the system, instead of every buffer's full size staying in the heap. */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);

    if (argc < 2) {
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return VT_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("vantage-probe %s\n", VT_VERSION);
        return VT_EXIT_OK;
    }
    if (!strcmp(cmd, "summary")) {
        if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            printf("usage: vantage-probe summary FILE   (JSONL measurements; - for standard "
                   "input)\n");
            return VT_EXIT_OK;
        }
        if (argc != 3) {
            fprintf(stderr, "usage: vantage-probe summary FILE\n");
            return VT_EXIT_USAGE;
        }
        return cmd_summary(argv[2]);
    }
    if (!strcmp(cmd, "consent")) {
        vt_consent_print_notice(stdout);
        return VT_EXIT_OK;
    }
    if (strcmp(cmd, "run") && strcmp(cmd, "targets") && strcmp(cmd, "upload") &&
        strcmp(cmd, "status")) {
        fprintf(stderr, "vantage-probe: unknown command '%s' (try --help)\n", cmd);
        return VT_EXIT_USAGE;
    }
    int crc = apply_config(&o, argc - 1, argv + 1);
    if (crc != VT_EXIT_OK) return crc;
    if (!strcmp(cmd, "status"))
        return vt_status_command(argc - 1, argv + 1, o.up.state_dir,
                                 o.vol.accept_risks ? o.vol.accept_how : NULL);
    if (parse_opts(argc - 1, argv + 1, &o) < 0) return VT_EXIT_USAGE;
    if (!strcmp(cmd, "targets")) return cmd_targets(&o);
    if (!strcmp(cmd, "upload")) {
        o.up.quiet = o.quiet;
        vt_upload_watch_signals(1);
        int urc = vt_upload_command(&o.up);
        vt_upload_watch_signals(0);
        if (vt_upload_stopped() && urc != VT_EXIT_FAILURE && urc != VT_EXIT_USAGE) {
            fprintf(stderr, "vantage-probe: stopped by a signal: what was not acknowledged "
                            "waits in the spool\n");
            urc = VT_EXIT_STOPPED;
        }
        return urc;
    }
    return cmd_run(&o);
}
