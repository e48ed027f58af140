/* `vantage-collector report`: a publishable summary of one country over a time range, from the
 * rollups and detection (the same answers as /api/v1/episodes and /api/v1/aggregation), as
 * Markdown, CSV, JSON or a self-contained HTML page whose charts are SVG drawn here. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aggregate.h"
#include "rollup.h"
#include "store.h"
#include "vantage/json.h"
#include "vantage/version.h"

typedef struct net_plat {
    char asn[16], platform[65];
    int64_t n, anom, conf, fail, intm;
    vt_rset rs;
} net_plat;

typedef struct day_plat {
    char day[11], platform[65];
    int64_t n, anom;
} day_plat;

/* Open addressing over an array's entries (slot: index + 1); the report's rows are found through
 * it (a linear search made a report of 40,000 distinct platforms take 20 s). */
typedef struct row_index {
    size_t *slot;
    size_t cap;
} row_index;

typedef struct report {
    const char *cc;
    char since[20], until[20];
    net_plat *np;
    size_t nnp, np_alloc;
    row_index np_ix;
    day_plat *dp;
    size_t ndp, dp_alloc;
    row_index dp_ix;
    int64_t total, total_anom, total_conf, total_fail, total_intm;
    vt_rset rs;
    vt_episode *e;
    size_t ne;
    int oom;
} report;

static uint64_t key_hash(const char *a, size_t alen, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < alen && a[i]; i++)
        h = (h ^ (unsigned char)a[i]) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

static uint64_t np_hash(const report *r, size_t i)
{
    return key_hash(r->np[i].asn, sizeof(r->np[i].asn), r->np[i].platform);
}

static uint64_t dp_hash(const report *r, size_t i)
{
    return key_hash(r->dp[i].day, 10, r->dp[i].platform);
}

/* Makes room for one more of n entries (rehashing them all when half full); -1 out of memory. */
static int index_room(row_index *ix, size_t n, const report *r,
                      uint64_t (*hash)(const report *, size_t))
{
    if ((n + 1) * 2 <= ix->cap) return 0;
    size_t cap = ix->cap ? ix->cap * 2 : 256;
    size_t *slot = calloc(cap, sizeof(*slot));
    if (!slot) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t h = (size_t)hash(r, i) & (cap - 1);
        while (slot[h])
            h = (h + 1) & (cap - 1);
        slot[h] = i + 1;
    }
    free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    return 0;
}

/* Room for one more entry of size sz in *arr (doubling). */
static int grow_rows(void **arr, size_t n, size_t *alloc, size_t sz)
{
    if (n < *alloc) return 0;
    size_t na = *alloc ? *alloc * 2 : 256;
    void *x = realloc(*arr, na * sz);
    if (!x) return -1;
    *arr = x;
    *alloc = na;
    return 0;
}

static int report_row(void *arg, int nc, const char *const *cols)
{
    report *r = arg;
    vt_cell c;
    if (vt_cell_from_cols(&c, nc, cols) < 0) return 0;
    int64_t an = 0, fail = 0;
    for (int v = 0; v < VT_V_COUNT; v++) {
        if (vt_verdict_is_anomaly(v)) an += c.v[v];
        if (vt_verdict_is_failure(v)) fail += c.v[v];
    }
    r->total += c.n;
    r->total_anom += an;
    r->total_conf += c.confirmed;
    r->total_intm += c.intermittent;
    r->total_fail += fail;
    vt_rset_merge(&r->rs, &c.rs);
    net_plat *p = NULL;
    if (index_room(&r->np_ix, r->nnp, r, np_hash) < 0 ||
        grow_rows((void **)&r->np, r->nnp, &r->np_alloc, sizeof(*r->np)) < 0) {
        r->oom = 1;
        return 1;
    }
    size_t h = (size_t)key_hash(c.asn, sizeof(c.asn), c.platform) & (r->np_ix.cap - 1);
    for (; r->np_ix.slot[h] && !p; h = (h + 1) & (r->np_ix.cap - 1)) {
        net_plat *x = &r->np[r->np_ix.slot[h] - 1];
        if (strcmp(x->asn, c.asn) == 0 && strcmp(x->platform, c.platform) == 0) p = x;
    }
    if (!p) {
        p = &r->np[r->nnp++];
        r->np_ix.slot[h] = r->nnp;
        memset(p, 0, sizeof(*p));
        snprintf(p->asn, sizeof(p->asn), "%s", c.asn);
        snprintf(p->platform, sizeof(p->platform), "%s", c.platform);
    }
    p->n += c.n;
    p->anom += an;
    p->conf += c.confirmed;
    p->intm += c.intermittent;
    p->fail += fail;
    vt_rset_merge(&p->rs, &c.rs);
    day_plat *d = NULL;
    if (index_room(&r->dp_ix, r->ndp, r, dp_hash) < 0 ||
        grow_rows((void **)&r->dp, r->ndp, &r->dp_alloc, sizeof(*r->dp)) < 0) {
        r->oom = 1;
        return 1;
    }
    h = (size_t)key_hash(c.hour, 10, c.platform) & (r->dp_ix.cap - 1);
    for (; r->dp_ix.slot[h] && !d; h = (h + 1) & (r->dp_ix.cap - 1)) {
        day_plat *x = &r->dp[r->dp_ix.slot[h] - 1];
        if (strncmp(x->day, c.hour, 10) == 0 && strcmp(x->platform, c.platform) == 0) d = x;
    }
    if (!d) {
        d = &r->dp[r->ndp++];
        r->dp_ix.slot[h] = r->ndp;
        memset(d, 0, sizeof(*d));
        snprintf(d->day, sizeof(d->day), "%.10s", c.hour);
        snprintf(d->platform, sizeof(d->platform), "%s", c.platform);
    }
    d->n += c.n;
    d->anom += an;
    return 0;
}

static int cmp_np(const void *a, const void *b)
{
    const net_plat *x = a, *y = b;
    int r = strcmp(x->asn, y->asn);
    return r ? r : strcmp(x->platform, y->platform);
}

static const char *how(const vt_episode *e, char *buf, size_t n)
{
    if (strcmp(e->kind, "blocking") == 0) {
        /* The probe tried each failure again: one that worked, then failed again, is a block
         * that lets some connections through (docs/methodology.md, "Intermittent blocking"). */
        char intm[128] = "";
        if (e->intermittent_count > 0)
            snprintf(intm, sizeof(intm),
                     "; intermittent in %lld measurement%s (tried again, it worked, then failed "
                     "again)",
                     (long long)e->intermittent_count, e->intermittent_count == 1 ? "" : "s");
        snprintf(buf, n,
                 "%s in %.0f%% of each probe's measurements, from up to %.0f probes in an hour "
                 "(threshold: %.0f%% from at least %d)%s%s",
                 e->top_verdict[0] ? e->top_verdict : "anomalies", e->share * 100, e->max_probes,
                 VT_DETECT_BLOCK_SHARE * 100, VT_DETECT_MIN_PROBES,
                 e->confirmed ? "; confirmed by a blockpage fingerprint" : "", intm);
    } else if (strcmp(e->kind, "slowdown") == 0) {
        double ratio = -1;
        if (e->latency_ms > 0 && e->baseline_latency_ms > 0)
            ratio = e->latency_ms / e->baseline_latency_ms;
        if (e->throughput_bps > 0 && e->baseline_throughput_bps > 0 &&
            e->baseline_throughput_bps / e->throughput_bps > ratio)
            ratio = e->baseline_throughput_bps / e->throughput_bps;
        char pol[64] = "";
        if (e->policer_bps > 0)
            snprintf(pol, sizeof(pol), "; steady near a %.0f kbit/s policer", e->policer_bps / 1e3);
        snprintf(
            buf, n,
            "throughput %.0f kbit/s vs %.0f kbit/s before, latency %.0f ms vs %.0f ms (x%.1f%s "
            "against the trailing %d-hour baseline)%s; %s",
            e->throughput_bps > 0 ? e->throughput_bps / 1e3 : 0,
            e->baseline_throughput_bps > 0 ? e->baseline_throughput_bps / 1e3 : 0,
            e->latency_ms > 0 ? e->latency_ms : 0,
            e->baseline_latency_ms > 0 ? e->baseline_latency_ms : 0, ratio,
            ratio >= VT_DETECT_EXTREME_RATIO ? ", extreme" : "", VT_DETECT_BASELINE_HOURS, pol,
            strcmp(e->scope, "network") == 0 ? "canaries slowed too (network-wide)"
                                             : "canaries normal (targeted)");
    } else
        snprintf(buf, n,
                 "canary sites failing in at least %.0f%% of measurements: the network or the "
                 "probes were down, so target failures here are not counted as censorship",
                 VT_DETECT_OUTAGE_SHARE * 100);
    return buf;
}

static const char *what(const vt_episode *e, char *buf, size_t n)
{
    if (!e->target[0])
        snprintf(buf, n, "all targets");
    else
        snprintf(buf, n, "%s (%s)", e->platform[0] ? e->platform : "-", e->target);
    return buf;
}

/* ---- Markdown ---- */

static void md_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '&') { /* "&lt;" from a probe would render as "<" */
            fputs("&amp;", f);
            continue;
        }
        if (strchr("\\`*_[]<>|~", *s)) fputc('\\', f); /* ~: GFM's strikethrough */
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
}

/* Nothing detected is only news when there were measurements: with none, the report knows
 * nothing about blocking in the range and must not read as an all-clear. */
static const char *none_text(const report *r)
{
    return r->total ? "No blocking, slowdown or outage was detected."
                    : "No measurements in this range: nothing can be said about blocking here "
                      "(no data is not evidence that nothing was blocked).";
}

/* An episode that reaches an --until in the past was still going when the range ended, which
 * is not the same as going on now; without --until, "ongoing" means the network's newest hour
 * of data still shows it, however old that hour is (its end says which). */
static const char *ongoing_text(const report *r, const vt_episode *e)
{
    if (!e->ongoing) return "";
    return r->until[0] ? " (still going at the end of the range)" : " (ongoing in the newest data)";
}

static void out_md(FILE *f, const report *r)
{
    char b1[512], b2[256];
    fprintf(f, "# Internet censorship in %s: %s to %s (UTC)\n\n", r->cc, r->since,
            r->until[0] ? r->until : "now");
    fprintf(f,
            "%lld measurements from about %.0f probe-hours; %lld anomalous, %lld confirmed by "
            "blockpage fingerprints; %lld failed (down, offline or inconclusive: not counted as "
            "censorship). %zu episode%s detected.\n\n",
            (long long)r->total, vt_rset_runs(&r->rs, r->total), (long long)r->total_anom,
            (long long)r->total_conf, (long long)r->total_fail, r->ne, r->ne == 1 ? "" : "s");
    fprintf(f, "## Episodes\n\n");
    if (!r->ne) fprintf(f, "%s\n\n", none_text(r));
    if (r->ne) {
        fprintf(f, "| What | Network | Platform (target) | From (UTC) | To (UTC) | "
                   "Most probes in an hour | "
                   "Measurements | How it was detected |\n|---|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < r->ne; i++) {
            const vt_episode *e = &r->e[i];
            fprintf(f, "| %s%s | %s | ", e->kind, e->confirmed ? " (confirmed)" : "", e->asn);
            md_text(f, what(e, b2, sizeof(b2)));
            fprintf(f, " | %s | %s%s | %.0f | %lld | ", e->start, e->end, ongoing_text(r, e),
                    e->max_probes, (long long)e->measurements);
            md_text(f, how(e, b1, sizeof(b1)));
            fprintf(f, " |\n");
        }
        fprintf(f, "\n");
    }
    fprintf(
        f, "## Networks and platforms\n\n| Network | Platform | Measurements | Anomalous | "
           "Confirmed | Intermittent | Failed | Probe-hours |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->nnp; i++) {
        const net_plat *p = &r->np[i];
        fprintf(f, "| %s | ", p->asn);
        md_text(f, p->platform[0] ? p->platform : "-");
        fprintf(f, " | %lld | %lld (%.0f%%) | %lld | %lld | %lld | %.0f |\n", (long long)p->n,
                (long long)p->anom, p->n ? 100.0 * p->anom / p->n : 0, (long long)p->conf,
                (long long)p->intm, (long long)p->fail, vt_rset_runs(&p->rs, p->n));
    }
    fprintf(f,
            "\n## Method\n\nMeasurements by volunteer vantage probes, rolled up per hour, network "
            "and target. A block needs at least %.0f%% anomalous measurements per probe (each "
            "device counts once an hour, however much it sends) from at least %d distinct probes "
            "in an hour; a probe-hour is one device in one hour; a slowdown needs the median latency %.0fx higher or throughput %.0fx lower "
            "than the target's own trailing %d-hour baseline (%.0fx is extreme); when the "
            "network's canary sites fail too it is an outage, not censorship. Details: "
            "docs/methodology.md. Generated by vantage-collector %s.\n",
            VT_DETECT_BLOCK_SHARE * 100, VT_DETECT_MIN_PROBES, VT_DETECT_SLOW_RATIO,
            VT_DETECT_SLOW_RATIO, VT_DETECT_BASELINE_HOURS, VT_DETECT_EXTREME_RATIO, VT_VERSION);
}

/* ---- CSV ---- */

static void csv(FILE *f, const char *s, int last)
{
    int formula = s[0] && strchr("=+-@\t\r", s[0]);
    if (formula || strpbrk(s, ",;\"\t\r\n")) { /* ; and tab: other locales' separators */
        fputc('"', f);
        if (formula) fputc('\'', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

static void out_csv(FILE *f, const report *r)
{
    /* max_probe_runs_per_hour: the evidence's max_probes, the most runs in one hour of the
     * episode (a 12-hour block seen by 4 probes an hour is 4 here, from 48 runs in all). */
    fputs("kind,scope,probe_cc,probe_asn,platform,target,start,end,ongoing,confirmed,"
          "max_probe_runs_per_hour,measurements,anomalies,failures,intermittent,how_detected\r\n",
          f);
    char b[512], n1[32], n2[32], n3[32], n4[32], n5[32];
    for (size_t i = 0; i < r->ne; i++) {
        const vt_episode *e = &r->e[i];
        snprintf(n1, sizeof(n1), "%.0f", e->max_probes);
        snprintf(n2, sizeof(n2), "%lld", (long long)e->measurements);
        snprintf(n3, sizeof(n3), "%lld", (long long)e->anomalies);
        snprintf(n4, sizeof(n4), "%lld", (long long)e->failures);
        snprintf(n5, sizeof(n5), "%lld", (long long)e->intermittent_count);
        const char *v[] = {e->kind,
                           e->scope,
                           e->cc,
                           e->asn,
                           e->platform,
                           e->target,
                           e->start,
                           e->end,
                           e->ongoing ? "true" : "false",
                           e->confirmed ? "true" : "false",
                           n1,
                           n2,
                           n3,
                           n4,
                           n5,
                           how(e, b, sizeof(b))};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
            csv(f, v[k], k + 1 == sizeof(v) / sizeof(v[0]));
    }
}

/* ---- JSON ---- */

static int out_json(FILE *f, const report *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "probe_cc", r->cc);
    cJSON_AddStringToObject(o, "since", r->since);
    vt_json_add_string_or_null(o, "until", r->until[0] ? r->until : NULL);
    cJSON *s = cJSON_AddObjectToObject(o, "summary");
    cJSON_AddNumberToObject(s, "measurement_count", (double)r->total);
    cJSON_AddNumberToObject(s, "anomaly_count", (double)r->total_anom);
    cJSON_AddNumberToObject(s, "confirmed_count", (double)r->total_conf);
    cJSON_AddNumberToObject(s, "failure_count", (double)r->total_fail);
    cJSON_AddNumberToObject(s, "intermittent_count", (double)r->total_intm);
    cJSON_AddNumberToObject(s, "probes", vt_rset_runs(&r->rs, r->total));
    cJSON *eps = cJSON_AddArrayToObject(o, "episodes");
    char b[512];
    for (size_t i = 0; i < r->ne; i++) {
        cJSON *e = vt_episode_json(&r->e[i]);
        cJSON_AddStringToObject(e, "how_detected", how(&r->e[i], b, sizeof(b)));
        cJSON_AddItemToArray(eps, e);
    }
    cJSON *nets = cJSON_AddArrayToObject(o, "networks");
    for (size_t i = 0; i < r->nnp; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "probe_asn", r->np[i].asn);
        cJSON_AddStringToObject(x, "platform", r->np[i].platform);
        cJSON_AddNumberToObject(x, "measurement_count", (double)r->np[i].n);
        cJSON_AddNumberToObject(x, "anomaly_count", (double)r->np[i].anom);
        cJSON_AddNumberToObject(x, "confirmed_count", (double)r->np[i].conf);
        cJSON_AddNumberToObject(x, "failure_count", (double)r->np[i].fail);
        cJSON_AddNumberToObject(x, "intermittent_count", (double)r->np[i].intm);
        cJSON_AddNumberToObject(x, "probes", vt_rset_runs(&r->np[i].rs, r->np[i].n));
        cJSON_AddItemToArray(nets, x);
    }
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) return -1;
    fprintf(f, "%s\n", txt);
    free(txt);
    return 0;
}

/* ---- HTML with inline SVG ---- */

static void h(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
}

static const char *const colours[] = {"#c62828", "#ef6c00", "#6a1b9a",
                                      "#1565c0", "#2e7d32", "#00838f"};

/* Episodes on a time axis: one bar per episode. */
static void svg_timeline(FILE *f, const report *r, long long t0, long long t1)
{
    int W = 900, left = 260, rowh = 22, H = 40 + rowh * (int)(r->ne ? r->ne : 1);
    double span = (double)(t1 - t0 > 0 ? t1 - t0 : 1);
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"Episodes over time\" class=\"chart\">\n",
            W, H);
    for (int k = 0; k <= 4; k++) {
        long long t = t0 + (long long)(span * k / 4);
        char ts[20];
        vt_rollup_format_time(t, ts);
        int x = left + (W - left - 20) * k / 4;
        fprintf(f,
                "<line x1=\"%d\" y1=\"20\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/><text x=\"%d\" "
                "y=\"14\" font-size=\"11\" text-anchor=\"%s\">%.10s</text>\n",
                x, x, H - 10, x, k == 4 ? "end" : "middle", ts);
    }
    for (size_t i = 0; i < r->ne; i++) {
        const vt_episode *e = &r->e[i];
        long long s = vt_rollup_parse_time(e->start), en = vt_rollup_parse_time(e->end);
        double x0 = left + (W - left - 20) * (double)(s - t0) / span;
        double x1 = left + (W - left - 20) * (double)(en - t0) / span;
        if (x0 < left) x0 = left;
        if (x1 > W - 20) x1 = W - 20;
        if (x1 - x0 < 2) x1 = x0 + 2;
        int y = 26 + rowh * (int)i;
        const char *col = strcmp(e->kind, "blocking") == 0   ? colours[0]
                          : strcmp(e->kind, "slowdown") == 0 ? colours[1]
                                                             : colours[2];
        fprintf(f, "<text x=\"4\" y=\"%d\" font-size=\"12\">", y + 13);
        h(f, e->asn);
        fputs(" ", f);
        h(f, e->target[0] ? (e->platform[0] ? e->platform : e->target) : "(network)");
        fprintf(f, " %s</text>\n", e->kind);
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"%s\"><title>", x0,
                y, x1 - x0, col);
        h(f, e->start);
        fputs(" to ", f);
        h(f, e->end);
        fputs("</title></rect>\n", f);
    }
    fputs("</svg>\n", f);
}

/* Daily anomalous share per platform (the platforms with the most anomalies, at most six). */
static void svg_share(FILE *f, const report *r)
{
    char days[400][11];
    int nd = 0;
    for (size_t i = 0; i < r->ndp; i++) {
        int seen = 0;
        for (int k = 0; k < nd && !seen; k++)
            seen = strcmp(days[k], r->dp[i].day) == 0;
        if (!seen && nd < 400) snprintf(days[nd++], 11, "%s", r->dp[i].day);
    }
    qsort(days, (size_t)nd, sizeof(days[0]), (int (*)(const void *, const void *))strcmp);
    /* platforms by anomalies */
    const char *plats[6];
    int np = 0;
    int64_t used_anom[6] = {0};
    for (size_t i = 0; i < r->nnp; i++) {
        if (!r->np[i].anom || strcmp(r->np[i].platform, "canary") == 0) continue;
        int dup = 0;
        for (int k = 0; k < np; k++)
            if (strcmp(plats[k], r->np[i].platform) == 0) {
                used_anom[k] += r->np[i].anom;
                dup = 1;
            }
        if (!dup && np < 6) {
            used_anom[np] = r->np[i].anom;
            plats[np++] = r->np[i].platform;
        }
    }
    int W = 900, H = 260, left = 50, bottom = 30, top = 20;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"Daily anomalous share\" class=\"chart\">\n",
            W, H + 20 * ((np + 2) / 3));
    for (int k = 0; k <= 4; k++) {
        int y = top + (H - top - bottom) * (4 - k) / 4;
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%d\" "
                "y=\"%d\" font-size=\"11\" text-anchor=\"end\">%d%%</text>\n",
                left, y, W - 10, y, left - 4, y + 4, k * 25);
    }
    for (int d = 0; d<nd; d += nd> 10 ? nd / 10 : 1) {
        double x = left + (W - left - 10) * (nd > 1 ? (double)d / (nd - 1) : 0.5);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"%s\">%s</text>\n", x,
                H - 10, d == nd - 1 && nd > 1 ? "end" : "middle", days[d] + 5);
    }
    for (int p = 0; p < np; p++) {
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"",
                colours[p % 6]);
        for (int d = 0; d < nd; d++) {
            int64_t n = 0, a = 0;
            for (size_t i = 0; i < r->ndp; i++)
                if (strcmp(r->dp[i].day, days[d]) == 0 &&
                    strcmp(r->dp[i].platform, plats[p]) == 0) {
                    n += r->dp[i].n;
                    a += r->dp[i].anom;
                }
            if (!n) continue;
            double x = left + (W - left - 10) * (nd > 1 ? (double)d / (nd - 1) : 0.5);
            double y = top + (H - top - bottom) * (1.0 - (double)a / (double)n);
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fputs("\"/>\n", f);
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" "
                "y=\"%d\" font-size=\"12\">",
                left + 280 * (p % 3), H + 4 + 20 * (p / 3), colours[p % 6],
                left + 280 * (p % 3) + 16, H + 14 + 20 * (p / 3));
        h(f, plats[p]);
        fputs("</text>\n", f);
    }
    if (!np)
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"13\">No anomalies.</text>\n", left + 10,
                H / 2);
    fputs("</svg>\n", f);
}

static void out_html(FILE *f, const report *r)
{
    char b1[512], b2[256];
    /* Escaping is the first defence of a file published anywhere; the policy the second. */
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta "
          "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
          "'unsafe-inline'\">\n<meta "
          "name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    fprintf(f, "Internet censorship in %s</title>\n", r->cc);
    fputs("<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:1rem auto;padding:"
          "0 1rem;color:#1b1b1b}table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}"
          "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
          "th{background:#eceff1}.chart{width:100%;height:auto;border:1px solid #ddd;margin:.5rem"
          " 0}.scroll{overflow-x:auto}</style>\n</head><body>\n",
          f);
    fprintf(f, "<h1>Internet censorship in %s</h1>\n<p>%s to %s (UTC). ", r->cc, r->since,
            r->until[0] ? r->until : "now");
    fprintf(f,
            "%lld measurements from about %.0f probe-hours; %lld anomalous, %lld confirmed by "
            "blockpage fingerprints; %lld failed (down, offline or inconclusive: not counted as "
            "censorship). %zu episode%s detected.</p>\n",
            (long long)r->total, vt_rset_runs(&r->rs, r->total), (long long)r->total_anom,
            (long long)r->total_conf, (long long)r->total_fail, r->ne, r->ne == 1 ? "" : "s");
    long long t0 = vt_rollup_parse_time(r->since),
              t1 = r->until[0] ? vt_rollup_parse_time(r->until) : (long long)time(NULL);
    fputs("<h2>Episodes</h2>\n", f);
    if (r->ne) svg_timeline(f, r, t0, t1);
    fputs("<div class=\"scroll\"><table><tr><th>What</th><th>Network</th><th>Platform "
          "(target)</th><th>From (UTC)</th><th>To (UTC)</th><th>Most probes in an hour</th>"
          "<th>Measurements</th><th>How it was detected</th></tr>\n",
          f);
    for (size_t i = 0; i < r->ne; i++) {
        const vt_episode *e = &r->e[i];
        fprintf(f, "<tr><td>%s%s</td><td>", e->kind, e->confirmed ? " (confirmed)" : "");
        h(f, e->asn);
        fputs("</td><td>", f);
        h(f, what(e, b2, sizeof(b2)));
        fprintf(f, "</td><td>%s</td><td>%s%s</td><td>%.0f</td><td>%lld</td><td>", e->start, e->end,
                ongoing_text(r, e), e->max_probes, (long long)e->measurements);
        h(f, how(e, b1, sizeof(b1)));
        fputs("</td></tr>\n", f);
    }
    if (!r->ne) fprintf(f, "<tr><td colspan=\"8\">%s</td></tr>\n", none_text(r));
    fputs("</table></div>\n<h2>Anomalous share per day</h2>\n", f);
    svg_share(f, r);
    fputs("<h2>Networks and platforms</h2>\n<div class=\"scroll\"><table><tr><th>Network</th>"
          "<th>Platform</th><th>Measurements</th><th>Anomalous</th><th>Confirmed</th>"
          "<th>Intermittent</th><th>Failed</th><th>Probe-hours</th></tr>\n",
          f);
    for (size_t i = 0; i < r->nnp; i++) {
        const net_plat *p = &r->np[i];
        fputs("<tr><td>", f);
        h(f, p->asn);
        fputs("</td><td>", f);
        h(f, p->platform[0] ? p->platform : "-");
        fprintf(f,
                "</td><td>%lld</td><td>%lld (%.0f%%)</td><td>%lld</td><td>%lld</td><td>%lld</td>"
                "<td>%.0f</td></tr>\n",
                (long long)p->n, (long long)p->anom, p->n ? 100.0 * p->anom / p->n : 0,
                (long long)p->conf, (long long)p->intm, (long long)p->fail,
                vt_rset_runs(&p->rs, p->n));
    }
    fprintf(f,
            "</table></div>\n<h2>Method</h2>\n<p>Measurements by volunteer vantage probes, rolled "
            "up per hour, network and target. A block needs at least %.0f%% anomalous "
            "measurements per probe (each device counts once an hour) from at least %d distinct "
            "probes in an hour (a probe-hour is one device in one hour); a slowdown needs the median latency %.0fx higher or throughput "
            "%.0fx lower than the target's own trailing %d-hour baseline (%.0fx is extreme); when "
            "the network's canary sites fail too it is an outage, not censorship. Generated by "
            "vantage-collector %s.</p>\n</body></html>\n",
            VT_DETECT_BLOCK_SHARE * 100, VT_DETECT_MIN_PROBES, VT_DETECT_SLOW_RATIO,
            VT_DETECT_SLOW_RATIO, VT_DETECT_BASELINE_HOURS, VT_DETECT_EXTREME_RATIO, VT_VERSION);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vantage-collector report --db URL --cc CC --since DATE [--until DATE] "
               "[--asn ASN] [--format md|csv|json|html] [--output FILE]\n"
               "  DATE: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC; counted in whole hours: since\n"
               "        rounded down, until up)\n"
               "  ASN: AS17557 (or 17557)\n"
               "  --db must name an existing collector database (report never creates one)\n");
}

int vt_report_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"cc", required_argument, NULL, 'c'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"asn", required_argument, NULL, 'a'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *cc = NULL, *since = NULL, *until = NULL, *asn = NULL, *fmt = "md",
               *output = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'c':
            cc = optarg;
            break;
        case 's':
            since = optarg;
            break;
        case 'u':
            until = optarg;
            break;
        case 'a':
            asn = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    report r = {0};
    if (!db || !cc || !since || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
        fprintf(stderr, "vantage-collector: --cc must be two capital letters, e.g. PK\n");
        return 2;
    }
    if (vt_aggregate_parse_date(since, r.since) < 0 ||
        (until && vt_aggregate_parse_date(until, r.until) < 0)) {
        fprintf(stderr, "vantage-collector: dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ\n");
        return 2;
    }
    if (r.until[0] && strcmp(r.since, r.until) >= 0) {
        fprintf(stderr, "vantage-collector: --since must be before --until\n");
        return 2;
    }
    /* The rollups are hourly: the report covers whole hours, since rounded down and until up,
     * and says so (its heading shows the hours it counted). */
    long long ts = vt_rollup_parse_time(r.since);
    vt_rollup_format_time(ts - ts % 3600, r.since);
    if (r.until[0]) {
        long long tu = vt_rollup_parse_time(r.until);
        vt_rollup_format_time(tu % 3600 ? tu - tu % 3600 + 3600 : tu, r.until);
    }
    if (strcmp(fmt, "md") && strcmp(fmt, "csv") && strcmp(fmt, "json") && strcmp(fmt, "html")) {
        fprintf(stderr, "vantage-collector: --format is md, csv, json or html\n");
        return 2;
    }
    /* As the API's probe_asn: AS and digits; bare digits are the same network (AS added), so
     * that `--asn 17557` does not report on a network no probe names. */
    char asnbuf[16];
    if (asn) {
        const char *d = strncasecmp(asn, "AS", 2) == 0 ? asn + 2 : asn; /* as17557 too */
        size_t n = strlen(d);
        int ok = n >= 1 && n <= 10;
        for (size_t i = 0; ok && i < n; i++)
            ok = d[i] >= '0' && d[i] <= '9';
        if (!ok) {
            fprintf(stderr, "vantage-collector: --asn must look like AS17557 (or 17557)\n");
            return 2;
        }
        snprintf(asnbuf, sizeof(asnbuf), "AS%s", d);
        asn = asnbuf;
    }
    char err[512];
    if (vt_store_url_check(db, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        return 2;
    }
    r.cc = cc;
    int rc = 1;
    FILE *out = NULL;
    /* A report of a database that does not exist would say that nothing was blocked. */
    vt_store *s = vt_store_open_existing(db, err, sizeof(err));
    if (!s) goto fail;
    vt_detect_query q = {.cc = cc, .asn = asn};
    memcpy(q.since, r.since, 20);
    memcpy(q.until, r.until, 20);
    if (vt_detect(s, &q, &r.e, &r.ne, err, sizeof(err)) < 0) goto fail;
    char sql[512], hs[20];
    const char *p[4] = {cc, hs};
    int np = 2;
    snprintf(hs, sizeof(hs), "%.13s:00:00", r.since);
    snprintf(sql, sizeof(sql), "SELECT %s FROM rollup_hourly WHERE probe_cc = ? AND hour >= ?%s%s",
             vt_cell_select, r.until[0] ? " AND hour < ?" : "", asn ? " AND probe_asn = ?" : "");
    if (r.until[0]) p[np++] = r.until;
    if (asn) p[np++] = asn;
    if (vt_db_query(s, sql, p, np, report_row, &r, err, sizeof(err)) < 0) goto fail;
    if (r.oom) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (r.nnp) qsort(r.np, r.nnp, sizeof(*r.np), cmp_np);
    out = output ? fopen(output, "w") : stdout;
    if (!out) {
        snprintf(err, sizeof(err), "cannot write %s: %s", output, strerror(errno));
        goto fail;
    }
    if (strcmp(fmt, "md") == 0) out_md(out, &r);
    if (strcmp(fmt, "csv") == 0) out_csv(out, &r);
    if (strcmp(fmt, "html") == 0) out_html(out, &r);
    if (strcmp(fmt, "json") == 0 && out_json(out, &r) < 0) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (fflush(out) != 0 || ferror(out)) {
        snprintf(err, sizeof(err), "cannot write %s: %s", output ? output : "the report",
                 errno ? strerror(errno) : "write error");
        goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "vantage-collector: %s\n", err);
done:
    if (out && out != stdout) fclose(out);
    vt_store_close(s);
    free(r.np);
    free(r.dp);
    free(r.np_ix.slot);
    free(r.dp_ix.slot);
    free(r.e);
    return rc;
}
