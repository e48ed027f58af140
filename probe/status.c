/* `vantage-probe status`: the last run, what waits in the spool, the last upload and the next
 * scheduled run. Reads the state directory tolerantly: anything missing or damaged is reported as
 * such, never fatal. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "spool.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"
#include "textfile.h"
#include "volunteer.h"

#define MAX_VERDICTS 32
#define STATE_FILE_MAX (1u << 20)

struct vt_lastrun {
    double start;      /* epoch seconds */
    double mono_start; /* vt_now(): the duration, whatever the system clock does meanwhile */
    size_t n_targets, measured;
    char error[512]; /* why the run ended without measuring everything; "" when it did not */
    struct {
        char name[32];
        size_t n;
    } v[MAX_VERDICTS];
    size_t n_v;
};

vt_lastrun *vt_lastrun_new(size_t n_targets)
{
    vt_lastrun *r = calloc(1, sizeof(*r));
    if (r) {
        r->start = vt_wall_now();
        r->mono_start = vt_now();
        r->n_targets = n_targets;
    }
    return r;
}

void vt_lastrun_set_clock(vt_lastrun *r, double clock_mono)
{
    if (r && clock_mono != 0) r->start = r->mono_start + clock_mono;
}

void vt_lastrun_set_error(vt_lastrun *r, const char *error)
{
    if (r && error) snprintf(r->error, sizeof(r->error), "%s", error);
}

void vt_lastrun_free(vt_lastrun *r)
{
    free(r);
}

void vt_lastrun_add(vt_lastrun *r, const cJSON *m)
{
    if (!r) return;
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "test_keys");
    const char *v = vt_json_get_string(tk, "verdict");
    if (!v || !*v || strlen(v) >= sizeof(r->v[0].name))
        v = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(tk, "failure")) ? "failed" : "other";
    r->measured++;
    for (size_t i = 0; i < r->n_v; i++)
        if (!strcmp(r->v[i].name, v)) {
            r->v[i].n++;
            return;
        }
    size_t i = r->n_v < MAX_VERDICTS ? r->n_v++ : MAX_VERDICTS - 1;
    if (i == MAX_VERDICTS - 1 && strcmp(r->v[i].name, v)) v = "other";
    snprintf(r->v[i].name, sizeof(r->v[i].name), "%s", v);
    r->v[i].n++;
}

void vt_lastrun_log(const vt_lastrun *r, FILE *f)
{
    fprintf(f, "vantage-probe: measured %zu of %zu targets", r->measured, r->n_targets);
    for (size_t i = 0; i < r->n_v; i++)
        fprintf(f, "%s %s %zu", i ? "," : ":", r->v[i].name, r->v[i].n);
    fputc('\n', f);
}

int vt_lastrun_write(const vt_lastrun *r, const char *state_dir, int exit_code, char *err,
                     size_t errlen)
{
    char path[4096], ts[20];
    if (!r || !state_dir) {
        snprintf(err, errlen, "no run or state directory");
        return -1;
    }
    if (snprintf(path, sizeof(path), "%s/last-run.json", state_dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    cJSON *j = cJSON_CreateObject(), *v = cJSON_CreateObject();
    if (!j || !v) {
        cJSON_Delete(j);
        cJSON_Delete(v);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    vt_format_time(r->start, ts);
    cJSON_AddStringToObject(j, "time", ts);
    cJSON_AddNumberToObject(j, "time_epoch", (double)(long long)r->start);
    cJSON_AddNumberToObject(j, "duration_s",
                            (double)(long long)((vt_now() - r->mono_start) * 10) / 10);
    cJSON_AddNumberToObject(j, "targets", (double)r->n_targets);
    cJSON_AddNumberToObject(j, "measured", (double)r->measured);
    for (size_t i = 0; i < r->n_v; i++)
        cJSON_AddNumberToObject(v, r->v[i].name, (double)r->v[i].n);
    cJSON_AddItemToObject(j, "verdicts", v);
    cJSON_AddNumberToObject(j, "exit_code", exit_code);
    if (r->error[0]) cJSON_AddStringToObject(j, "error", r->error);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = strlen(s);
    s[n] = '\n'; /* cJSON_Print's terminator becomes the final newline */
    int rc = vt_spool_write_file_atomic(path, s, n + 1, err, errlen);
    free(s);
    return rc;
}

double vt_state_read_epoch(const char *state_dir, const char *name)
{
    char path[4200], err[256], *text = NULL, *end;
    size_t len;
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, name) >= (int)sizeof(path) ||
        vt_textfile_read(path, 64, &text, &len, err, sizeof(err)) < 0)
        return 0;
    double t = strtod(text, &end);
    int ok = end != text && t > 0 && t < 1e11;
    free(text);
    return ok ? t : 0;
}

/* ---- status ---- */

/* A JSON object from a state file; NULL when missing, unreadable, too big or not an object
 * (why says which). */
static cJSON *read_state_json(const char *dir, const char *name, const char **why)
{
    char path[4096];
    *why = "none yet";
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) return NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT) *why = "unreadable";
        return NULL;
    }
    char *buf = malloc(STATE_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, STATE_FILE_MAX + 1, f) : 0;
    fclose(f);
    cJSON *j = NULL;
    *why = "damaged";
    if (buf && n <= STATE_FILE_MAX) {
        buf[n] = 0;
        j = cJSON_Parse(buf);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    free(buf);
    return j;
}

static int has_suffix(const char *name, const char *suffix)
{
    size_t l = strlen(name), k = strlen(suffix);
    return l > k && !strcmp(name + l - k, suffix);
}

/* Regular files in dir whose names end in suffix (want 1) or do not (want 0); -1 unreadable. */
static long count_files(const char *dir, const char *suffix, int want)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && has_suffix(e->d_name, suffix) == want &&
            (e->d_type == DT_REG || e->d_type == DT_UNKNOWN))
            n++;
    closedir(d);
    return n;
}

static double num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void ago(char *out, size_t n, double then)
{
    double d = vt_wall_now() - then;
    if (then <= 0)
        snprintf(out, n, "?");
    else if (d < 0)
        snprintf(out, n, "in the future");
    else if (d < 120)
        snprintf(out, n, "%.0f s ago", d);
    else if (d < 7200)
        snprintf(out, n, "%.0f min ago", d / 60);
    else if (d < 172800)
        snprintf(out, n, "%.0f h ago", d / 3600);
    else
        snprintf(out, n, "%.0f days ago", d / 86400);
}

/* The timer's next elapse, from systemctl (system, then user); "" when unknown. */
static void next_timer_run(char *out, size_t n)
{
    static const char *const cmds[] = {
        "timeout 3 systemctl show vantage-probe.timer --property=LoadState "
        "--property=NextElapseUSecRealtime 2>/dev/null",
        "timeout 3 systemctl --user show vantage-probe.timer --property=LoadState "
        "--property=NextElapseUSecRealtime 2>/dev/null",
    };
    out[0] = 0;
    /* Only when systemctl is on PATH; never fail on it. */
    const char *path = getenv("PATH");
    int found = 0;
    char buf[4096], dir[4096];
    for (const char *p = path; p && *p && !found;) {
        size_t l = strcspn(p, ":");
        if (l > 0 && l < sizeof(dir)) {
            memcpy(dir, p, l);
            dir[l] = 0;
            if (snprintf(buf, sizeof(buf), "%s/systemctl", dir) < (int)sizeof(buf) &&
                access(buf, X_OK) == 0)
                found = 1;
        }
        p += l;
        if (*p == ':') p++;
    }
    if (!found) return;
    for (size_t c = 0; c < 2 && !out[0]; c++) {
        FILE *f = popen(cmds[c], "r");
        if (!f) return;
        char line[512], next[256] = "";
        int loaded = 0;
        for (int i = 0; i < 16 && fgets(line, sizeof(line), f); i++) {
            line[strcspn(line, "\r\n")] = 0;
            if (!strcmp(line, "LoadState=loaded"))
                loaded = 1;
            else if (!strncmp(line, "NextElapseUSecRealtime=", 23))
                vt_cli_clean(next, sizeof(next), line + 23);
        }
        while (fgets(line, sizeof(line), f))
            ;
        pclose(f);
        if (loaded) snprintf(out, n, "%s", next[0] ? next : "not scheduled (timer inactive)");
    }
}

static int status_print(const char *state, int json, const char *conf_accept)
{
    char spool_dir[4200], rej_dir[4200], dmg_dir[4200], when[64] = "", t[64], a[64];
    const char *run_why, *up_why;
    snprintf(spool_dir, sizeof(spool_dir), "%s/spool", state);
    snprintf(rej_dir, sizeof(rej_dir), "%s/spool/rejected", state);
    snprintf(dmg_dir, sizeof(dmg_dir), "%s/spool/damaged", state);
    /* A state directory that exists but cannot be read (the systemd unit's is private to
     * root): nothing in it can be told, and "not accepted" or "0 waiting" would be wrong. */
    struct stat st;
    int sr = stat(state, &st), serr = sr < 0 ? errno : 0;
    int exists = sr == 0 && S_ISDIR(st.st_mode);
    if (serr == ENOENT || serr == ENOTDIR) serr = 0; /* not made yet: said below */
    if (exists && access(state, R_OK | X_OK) < 0) serr = errno;
    if (serr) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            char *s = NULL;
            if (o && cJSON_AddStringToObject(o, "state_dir", state) &&
                cJSON_AddStringToObject(o, "error", strerror(serr)))
                s = cJSON_Print(o);
            cJSON_Delete(o);
            if (!s) goto oom_early;
            printf("%s\n", s);
            free(s);
        } else {
            printf("state directory: %s (cannot be read: %s%s)\n", state, strerror(serr),
                   serr == EACCES ? "; try with sudo" : "");
        }
        return VT_EXIT_FAILURE;
    }
    int consent = vt_consent_recorded(state, when, sizeof(when));
    const vt_consent_opts co = {.accepted = conf_accept != NULL, .how = conf_accept};
    conf_accept = vt_consent_accepted_by(&co); /* as a run decides it */
    cJSON *run = read_state_json(state, "last-run.json", &run_why);
    cJSON *up = read_state_json(state, "last-upload.json", &up_why);
    /* measurements are <uid>.json; a damaged file is any name beside its <name>.reason */
    long spooled = count_files(spool_dir, ".json", 1), rejected = count_files(rej_dir, ".json", 1),
         damaged = count_files(dmg_dir, ".reason", 0);
    char next[256];
    next_timer_run(next, sizeof(next));
    /* The collector's other addresses kept from a check-in (upload.c), and when the SNI test's
     * downloads were last done (main.c, sni_test_every). */
    const char *alt_why;
    cJSON *alt = read_state_json(state, "collector-alternates.json", &alt_why);
    const cJSON *alt_urls = cJSON_GetObjectItemCaseSensitive(alt, "alternate_urls");
    int n_alt = cJSON_IsArray(alt_urls) ? cJSON_GetArraySize(alt_urls) : 0;
    double sni_last = vt_state_read_epoch(state, "sni-test.last");

    if (json) {
        cJSON *o = cJSON_CreateObject();
        if (!o) goto oom;
        cJSON_AddStringToObject(o, "state_dir", state);
        cJSON_AddBoolToObject(o, "state_dir_exists", exists);
        cJSON *c = cJSON_AddObjectToObject(o, "consent");
        cJSON_AddBoolToObject(c, "accepted", consent);
        vt_json_add_string_or_null(c, "date", when[0] ? when : NULL);
        vt_json_add_string_or_null(c, "accepted_by", consent ? NULL : conf_accept);
        cJSON_AddNumberToObject(c, "version_required", VT_CONSENT_VERSION);
        if (run)
            cJSON_AddItemToObject(o, "last_run", cJSON_Duplicate(run, 1));
        else
            cJSON_AddNullToObject(o, "last_run");
        cJSON *sp = cJSON_AddObjectToObject(o, "spool");
        cJSON_AddNumberToObject(sp, "waiting", spooled < 0 ? -1 : (double)spooled);
        cJSON_AddNumberToObject(sp, "rejected", rejected < 0 ? -1 : (double)rejected);
        cJSON_AddNumberToObject(sp, "damaged", damaged < 0 ? -1 : (double)damaged);
        if (up)
            cJSON_AddItemToObject(o, "last_upload", cJSON_Duplicate(up, 1));
        else
            cJSON_AddNullToObject(o, "last_upload");
        vt_json_add_string_or_null(o, "next_run", next[0] ? next : NULL);
        cJSON *ca = cJSON_AddArrayToObject(o, "collector_alternates");
        for (int i = 0; ca && i < n_alt; i++) {
            const cJSON *u = cJSON_GetArrayItem(alt_urls, i);
            if (cJSON_IsString(u)) cJSON_AddItemToArray(ca, cJSON_CreateString(u->valuestring));
        }
        if (sni_last > 0)
            cJSON_AddNumberToObject(o, "sni_test_last_epoch", (double)(long long)sni_last);
        else
            cJSON_AddNullToObject(o, "sni_test_last_epoch");
        char *s = cJSON_Print(o);
        cJSON_Delete(o);
        if (!s) goto oom;
        printf("%s\n", s);
        free(s);
    } else {
        printf("state directory: %s%s\n", state, exists ? "" : " (does not exist yet)");
        if (consent)
            printf("consent:         accepted %s\n", when[0] ? when : "(date unknown)");
        else if (conf_accept)
            printf("consent:         not recorded yet; runs accept by %s\n", conf_accept);
        else
            printf("consent:         not accepted yet (runs refuse; see `vantage-probe "
                   "consent`)\n");
        if (run) {
            vt_cli_clean(t, sizeof(t), vt_json_get_string(run, "time"));
            ago(a, sizeof(a), num(run, "time_epoch", 0));
            printf("last run:        %s UTC (%s), %.0f targets, %.0f measured, exit code %.0f\n",
                   t[0] ? t : "?", a, num(run, "targets", 0), num(run, "measured", 0),
                   num(run, "exit_code", -1));
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(run, "verdicts"), *e;
            int first = 1;
            cJSON_ArrayForEach(e, v)
            {
                char name[48];
                if (!cJSON_IsNumber(e) || !e->string) continue;
                vt_cli_clean(name, sizeof(name), e->string);
                printf("%s%s %.0f", first ? "  verdicts:      " : ", ", name, e->valuedouble);
                first = 0;
            }
            if (!first) printf("\n");
            char why[512];
            vt_cli_clean(why, sizeof(why), vt_json_get_string(run, "error"));
            if (why[0]) printf("  error:         %s\n", why);
        } else {
            printf("last run:        %s\n", run_why);
        }
        if (spooled < 0)
            printf("spool:           unreadable (%s)\n", spool_dir);
        else
            printf("spool:           %ld measurement%s waiting to be uploaded", spooled,
                   spooled == 1 ? "" : "s");
        if (spooled >= 0 && rejected > 0)
            printf(", %ld rejected by the collector (kept in spool/rejected)", rejected);
        if (spooled >= 0 && damaged > 0)
            printf(", %ld damaged (kept in spool/damaged, never sent)", damaged);
        if (spooled >= 0) printf("\n");
        if (up) {
            char err[256], coll[256];
            vt_cli_clean(t, sizeof(t), vt_json_get_string(up, "time"));
            vt_cli_clean(err, sizeof(err), vt_json_get_string(up, "error"));
            vt_cli_clean(coll, sizeof(coll), vt_json_get_string(up, "collector"));
            ago(a, sizeof(a), num(up, "time_epoch", 0));
            int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(up, "ok"));
            printf("last upload:     %s UTC (%s) to %s: %s, %.0f accepted, %.0f already there, "
                   "%.0f rejected, %.0f left%s%s\n",
                   t[0] ? t : "?", a, coll[0] ? coll : "?", ok ? "ok" : "FAILED",
                   num(up, "accepted", 0), num(up, "duplicate", 0), num(up, "rejected", 0),
                   num(up, "left", 0), err[0] ? ": " : "", err);
        } else {
            printf("last upload:     %s\n", up_why);
        }
        if (n_alt > 0) {
            char coll[256];
            vt_cli_clean(coll, sizeof(coll), vt_json_get_string(alt, "collector"));
            printf("collector:       %d other address%s known for %s (tried when it does not "
                   "answer)\n",
                   n_alt, n_alt == 1 ? "" : "es", coll[0] ? coll : "?");
        }
        if (sni_last > 0) {
            vt_format_time(sni_last, t);
            ago(a, sizeof(a), sni_last);
            printf("SNI test:        last done %s UTC (%s)\n", t, a);
        }
        printf("next run:        %s\n",
               next[0] ? next : "unknown (no vantage-probe.timer; cron runs are not shown)");
    }
    cJSON_Delete(run);
    cJSON_Delete(up);
    cJSON_Delete(alt);
    return VT_EXIT_OK;
oom:
    cJSON_Delete(run);
    cJSON_Delete(up);
    cJSON_Delete(alt);
oom_early:
    fprintf(stderr, "vantage-probe: out of memory\n");
    return VT_EXIT_FAILURE;
}

int vt_status_command(int argc, char **argv, const char *conf_state_dir, const char *conf_accept)
{
    enum { O_JSON = 256, O_STATE, O_CONFIG, O_HELP };
    static const struct option longopts[] = {
        {"json", no_argument, 0, O_JSON},
        {"state-dir", required_argument, 0, O_STATE},
        {"config", required_argument, 0, O_CONFIG},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c, json = 0;
    const char *state_dir = conf_state_dir;
    char dir[4096], err[512];
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON:
            json = 1;
            break;
        case O_STATE:
            state_dir = optarg;
            break;
        case O_CONFIG:
            break; /* read by main */
        case O_HELP:
            printf("usage: vantage-probe status [--json] [--state-dir DIR] [--config FILE]\n");
            return VT_EXIT_OK;
        default:
            fprintf(stderr, "usage: vantage-probe status [--json] [--state-dir DIR] "
                            "[--config FILE]\n");
            return VT_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vantage-probe: unexpected argument '%s'\n", argv[optind]);
        return VT_EXIT_USAGE;
    }
    if (vt_state_dir_resolve(state_dir, dir, sizeof(dir), err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-probe: %s\n", err);
        return VT_EXIT_FAILURE;
    }
    return status_print(dir, json, conf_accept);
}
