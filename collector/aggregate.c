/* The read-only query API over the rollups, raw measurements for researchers, and the dashboard's
 * static files. Every query parameter is validated (400 with a JSON error naming it). */
#include "aggregate.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "rollup.h"
#include "textfile.h"
#include "vantage/json.h"
#include "vantage/version.h"

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "             \
    "form-action 'self'"
#define PAGE_MAX 1000
#define PAGE_DEFAULT 100

static void security_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Security-Policy", CSP);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
}

__attribute__((format(printf, 2, 3))) static int bad(struct evhttp_request *req, const char *fmt,
                                                     ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vt_api_reply_error(req, 400, msg, 0);
    return 400;
}

static int unavailable(struct evhttp_request *req, const char *err)
{
    if (vt_db_timed_out(err)) {
        vt_api_reply_error(req, 503,
                           "the query ran over its time limit (--query-timeout): narrow it "
                           "(since/until, probe_cc, probe_asn, platform, target)",
                           5);
        return 503;
    }
    vt_log_msg("vantage-collector: query: %s", err);
    vt_api_reply_error(req, 503, "the collector's database is unavailable; retry later", 5);
    return 503;
}

/* ---- parameters ---- */

int vt_aggregate_parse_date(const char *in, char out[20])
{
    size_t n = strlen(in);
    char buf[20];
    if (n == 10)
        snprintf(buf, sizeof(buf), "%s 00:00:00", in);
    else if ((n == 19 || (n == 20 && in[19] == 'Z')) && (in[10] == 'T' || in[10] == ' '))
        snprintf(buf, sizeof(buf), "%.10s %.8s", in, in + 11);
    else
        return -1;
    for (int i = 0; i < 19; i++) {
        int digit = i != 4 && i != 7 && i != 10 && i != 13 && i != 16;
        if (digit && !isdigit((unsigned char)buf[i])) return -1;
    }
    if (vt_rollup_parse_time(buf) < 0) return -1;
    memcpy(out, buf, 20);
    return 0;
}

int vt_aggregate_name_ok(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (n == 0 || n > max || !vt_utf8_valid((const unsigned char *)v, n)) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) return 0;
    return 1;
}

typedef struct params {
    const char *cc, *asn, *platform, *target, *test, *category, *verdict, *grain, *by, *format,
        *cursor, *kind;
    char since[20], until[20];
    long limit;
} params;

/* Reads the query string into p, allowing only the names in allowed (comma separated). */
static int parse_params(struct evhttp_request *req, struct evkeyvalq *kv, const char *allowed,
                        params *p)
{
    memset(p, 0, sizeof(*p));
    p->limit = PAGE_DEFAULT;
    const char *uri = evhttp_request_get_uri(req);
    const char *q = uri ? strchr(uri, '?') : NULL;
    TAILQ_INIT(kv);
    if (q && evhttp_parse_query_str(q + 1, kv) < 0) return bad(req, "%s", "malformed query string");
    struct evkeyval *e;
    TAILQ_FOREACH(e, kv, next)
    {
        char needle[40];
        if (strlen(e->key) > 20) return bad(req, "%s", "unknown query parameter");
        snprintf(needle, sizeof(needle), ",%s,", e->key);
        char hay[256];
        snprintf(hay, sizeof(hay), ",%s,", allowed);
        if (!strstr(hay, needle)) return bad(req, "unknown query parameter '%s'", e->key);
        for (struct evkeyval *f = TAILQ_NEXT(e, next); f; f = TAILQ_NEXT(f, next))
            if (strcmp(f->key, e->key) == 0)
                return bad(req, "query parameter '%s' given twice", e->key);
        const char *k = e->key, *v = e->value;
        if (strcmp(k, "probe_cc") == 0) {
            if (strlen(v) != 2 || !isupper((unsigned char)v[0]) || !isupper((unsigned char)v[1]))
                return bad(req, "%s", "probe_cc must be two capital letters (ISO 3166), e.g. PK");
            p->cc = v;
        } else if (strcmp(k, "probe_asn") == 0) {
            size_t n = strlen(v);
            int ok = n > 2 && n <= 12 && strncmp(v, "AS", 2) == 0;
            for (size_t i = 2; ok && i < n; i++)
                ok = isdigit((unsigned char)v[i]) != 0;
            if (!ok) return bad(req, "%s", "probe_asn must look like AS12345");
            p->asn = v;
        } else if (strcmp(k, "since") == 0 || strcmp(k, "until") == 0) {
            if (vt_aggregate_parse_date(v, k[0] == 's' ? p->since : p->until) < 0)
                return bad(req,
                           "'%s' must be a real UTC date from 1970 on, YYYY-MM-DD or "
                           "YYYY-MM-DDTHH:MM:SSZ",
                           k);
        } else if (strcmp(k, "limit") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > PAGE_MAX)
                return bad(req, "limit must be 1..%s", "1000");
            p->limit = n;
        } else if (strcmp(k, "grain") == 0) {
            if (strcmp(v, "hour") && strcmp(v, "day") && strcmp(v, "week"))
                return bad(req, "%s", "grain must be hour, day or week");
            p->grain = v;
        } else if (strcmp(k, "format") == 0) {
            if (strcmp(v, "json") && strcmp(v, "csv"))
                return bad(req, "%s", "format must be json or csv");
            p->format = v;
        } else if (strcmp(k, "verdict") == 0) {
            if (vt_verdict_index(v) < 0) return bad(req, "%s", "unknown verdict");
            p->verdict = v;
        } else if (strcmp(k, "kind") == 0) {
            if (strcmp(v, "blocking") && strcmp(v, "slowdown") && strcmp(v, "outage"))
                return bad(req, "%s", "kind must be blocking, slowdown or outage");
            p->kind = v;
        } else if (strcmp(k, "by") == 0) {
            p->by = v; /* checked by the caller */
        } else if (strcmp(k, "cursor") == 0) {
            p->cursor = v; /* checked by the caller */
        } else {
            if (!vt_aggregate_name_ok(v, 128))
                return bad(req, "'%s' must be 1..128 bytes of UTF-8 without control characters", k);
            if (strcmp(k, "platform") == 0) p->platform = v;
            if (strcmp(k, "target") == 0) p->target = v;
            if (strcmp(k, "test") == 0) p->test = v;
            if (strcmp(k, "category") == 0) p->category = v;
        }
    }
    if (p->since[0] && p->until[0] && strcmp(p->since, p->until) >= 0)
        return bad(req, "%s", "since must be before until");
    return 0;
}

static int wants_csv(struct evhttp_request *req, const params *p)
{
    if (p->format) return strcmp(p->format, "csv") == 0;
    const char *acc = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    return acc && strstr(acc, "text/csv") && !strstr(acc, "application/json");
}

static void reply_body(struct evhttp_request *req, const char *type, const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add(b, body, len);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_send_reply(req, 200, "OK", b);
    if (b) evbuffer_free(b);
}

static void reply_cjson(struct evhttp_request *req, cJSON *o)
{
    char *s = vt_json_print(o);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    if (s)
        reply_body(req, "application/json", s, strlen(s));
    else
        vt_api_reply_error(req, 503, "out of memory", 1);
    free(s);
}

/* ---- CSV ---- */

static void csv_field(struct evbuffer *b, const char *v, int first)
{
    if (!first) evbuffer_add(b, ",", 1);
    if (!v) return;
    /* A leading = + - @ makes spreadsheets run a formula: neutralise it. */
    int formula = strchr("=+-@\t\r", v[0]) != NULL && v[0];
    int quote =
        formula || strpbrk(v, ",;\"\t\r\n") != NULL; /* ; and tab: other locales' separators */
    if (!quote) {
        evbuffer_add(b, v, strlen(v));
        return;
    }
    evbuffer_add(b, "\"", 1);
    if (formula) evbuffer_add(b, "'", 1);
    for (const char *c = v; *c; c++) {
        if (*c == '"') evbuffer_add(b, "\"", 1);
        evbuffer_add(b, c, 1);
    }
    evbuffer_add(b, "\"", 1);
}

/* Turns {"results":[{...}]} into CSV with the given columns. */
static void reply_csv(struct evhttp_request *req, cJSON *results, const char *const *cols, int nc)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        vt_api_reply_error(req, 503, "out of memory", 1);
        return;
    }
    for (int i = 0; i < nc; i++)
        csv_field(b, cols[i], i == 0);
    evbuffer_add(b, "\r\n", 2);
    cJSON *r;
    cJSON_ArrayForEach(r, results)
    {
        for (int i = 0; i < nc; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(r, cols[i]);
            char num[64];
            const char *s = NULL;
            if (cJSON_IsString(v))
                s = v->valuestring;
            else if (cJSON_IsNumber(v)) {
                snprintf(num, sizeof(num), "%.15g", v->valuedouble);
                s = num;
            } else if (cJSON_IsBool(v))
                s = cJSON_IsTrue(v) ? "true" : "false";
            csv_field(b, s, i == 0);
        }
        evbuffer_add(b, "\r\n", 2);
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/csv; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* ---- aggregation ---- */

enum { D_NONE = -1, D_DAY, D_CC, D_ASN, D_PLATFORM, D_TARGET, D_VERDICT, D_COUNT };
static const char *const dim_names[D_COUNT] = {"day",      "probe_cc", "probe_asn",
                                               "platform", "target",   "verdict"};

typedef struct group {
    char key[2][160];
    int64_t n, v[VT_V_COUNT], confirmed, intermittent;
    vt_hist lat, tput;
    vt_rset rs;
} group;

typedef struct agg_ctx {
    int dims[2], ndims, grain; /* grain 0 hour, 1 day, 2 week */
    group *g;
    size_t n, cap;
    size_t *slots; /* open addressing: index + 1 */
    size_t nslots;
    int oom;
    size_t max_groups;
    int too_many; /* a new group beyond max_groups: the query stops, the caller is told */
} agg_ctx;

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static void time_key(const char *hour, int grain, char *out, size_t n)
{
    if (grain == 0) {
        snprintf(out, n, "%s", hour);
        return;
    }
    if (grain == 1) {
        snprintf(out, n, "%.10s", hour);
        return;
    }
    long long t = vt_rollup_parse_time(hour);
    if (t < 0) {
        snprintf(out, n, "%.10s", hour);
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int back = (tm.tm_wday + 6) % 7; /* days since Monday */
    tt -= (time_t)back * 86400 + tm.tm_hour * 3600;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%d", &tm);
}

static group *agg_find(agg_ctx *a, const char *k0, const char *k1)
{
    if (a->n * 2 >= a->nslots) {
        size_t ns = a->nslots ? a->nslots * 2 : 1024;
        size_t *sl = calloc(ns, sizeof(*sl));
        if (!sl) return NULL;
        for (size_t i = 0; i < a->n; i++) {
            size_t h = (size_t)hash2(a->g[i].key[0], a->g[i].key[1]) & (ns - 1);
            while (sl[h])
                h = (h + 1) & (ns - 1);
            sl[h] = i + 1;
        }
        free(a->slots);
        a->slots = sl;
        a->nslots = ns;
    }
    size_t h = (size_t)hash2(k0, k1) & (a->nslots - 1);
    while (a->slots[h]) {
        group *g = &a->g[a->slots[h] - 1];
        if (strcmp(g->key[0], k0) == 0 && strcmp(g->key[1], k1) == 0) return g;
        h = (h + 1) & (a->nslots - 1);
    }
    if (a->n >= a->max_groups) {
        a->too_many = 1;
        return NULL;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        group *ng = realloc(a->g, cap * sizeof(*ng));
        if (!ng) return NULL;
        a->g = ng;
        a->cap = cap;
    }
    group *g = &a->g[a->n];
    memset(g, 0, sizeof(*g));
    snprintf(g->key[0], sizeof(g->key[0]), "%s", k0);
    snprintf(g->key[1], sizeof(g->key[1]), "%s", k1);
    a->slots[h] = ++a->n;
    return g;
}

static void dim_value(const vt_cell *c, int dim, int grain, char *out, size_t n)
{
    switch (dim) {
    case D_DAY:
        time_key(c->hour, grain, out, n);
        break;
    case D_CC:
        snprintf(out, n, "%s", c->cc);
        break;
    case D_ASN:
        snprintf(out, n, "%s", c->asn);
        break;
    case D_PLATFORM:
        snprintf(out, n, "%s", c->platform);
        break;
    case D_TARGET:
        snprintf(out, n, "%s", c->target);
        break;
    default:
        out[0] = 0;
    }
}

static int agg_row(void *arg, int nc, const char *const *cols)
{
    agg_ctx *a = arg;
    vt_cell c;
    if (vt_cell_from_cols(&c, nc, cols) < 0) return 0;
    char k[2][160] = {"", ""};
    for (int i = 0; i < a->ndims; i++)
        if (a->dims[i] != D_VERDICT) dim_value(&c, a->dims[i], a->grain, k[i], sizeof(k[i]));
    group *g = agg_find(a, k[0], k[1]);
    if (!g) {
        a->oom = !a->too_many;
        return 1;
    }
    g->n += c.n;
    for (int v = 0; v < VT_V_COUNT; v++)
        g->v[v] += c.v[v];
    g->confirmed += c.confirmed;
    g->intermittent += c.intermittent;
    vt_hist_merge(&g->lat, &c.lat);
    vt_hist_merge(&g->tput, &c.tput);
    vt_rset_merge(&g->rs, &c.rs);
    return 0;
}

static int cmp_group(const void *x, const void *y)
{
    const group *a = x, *b = y;
    int r = strcmp(a->key[0], b->key[0]);
    return r ? r : strcmp(a->key[1], b->key[1]);
}

static void add_q(cJSON *o, const char *name, const vt_hist *h, int kind, double q)
{
    double v = vt_hist_quantile(h, kind, q);
    if (v < 0)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, kind == VT_HIST_LATENCY ? round(v * 10) / 10 : round(v));
}

/* Builds the WHERE clause over rollup_hourly for the filters; returns the number of params. */
static int rollup_where(const params *p, char *sql, size_t n, const char **pv, char hs[20],
                        char hu[20])
{
    int np = 0;
    size_t off = strlen(sql);
    struct {
        const char *col, *v;
    } f[] = {{"probe_cc", p->cc},      {"probe_asn", p->asn},  {"platform", p->platform},
             {"target_id", p->target}, {"test_name", p->test}, {"category", p->category}};
    off += (size_t)snprintf(sql + off, n - off, " WHERE 1=1");
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].v) {
            off += (size_t)snprintf(sql + off, n - off, " AND %s = ?", f[i].col);
            pv[np++] = f[i].v;
        }
    if (p->since[0]) {
        snprintf(hs, 20, "%.13s:00:00", p->since);
        off += (size_t)snprintf(sql + off, n - off, " AND hour >= ?");
        pv[np++] = hs;
    }
    if (p->until[0]) {
        snprintf(hu, 20, "%s", p->until);
        off += (size_t)snprintf(sql + off, n - off, " AND hour < ?");
        pv[np++] = hu;
    }
    return np;
}

static const char *const agg_cols[] = {
    "measurement_count",  "ok_count",           "anomaly_count",
    "confirmed_count",    "failure_count",      "probes",
    "anomaly_share",      "latency_ms_p50",     "latency_ms_p90",
    "throughput_bps_p50", "throughput_bps_p90", "intermittent_count"};

static void group_json(cJSON *o, const group *g, int verdict)
{
    int64_t ok = 0, an = 0, fail = 0, n = 0;
    for (int v = 0; v < VT_V_COUNT; v++) {
        if (verdict >= 0 && v != verdict) continue;
        n += g->v[v];
        if (v == VT_V_OK) ok += g->v[v];
        if (vt_verdict_is_anomaly(v)) an += g->v[v];
        if (vt_verdict_is_failure(v)) fail += g->v[v];
    }
    cJSON_AddNumberToObject(o, "measurement_count", (double)(verdict >= 0 ? n : g->n));
    cJSON_AddNumberToObject(o, "ok_count", (double)ok);
    cJSON_AddNumberToObject(o, "anomaly_count", (double)an);
    if (verdict >= 0) {
        cJSON_AddNullToObject(o, "confirmed_count");
        cJSON_AddNumberToObject(o, "failure_count", (double)fail);
        cJSON_AddNullToObject(o, "intermittent_count");
        return;
    }
    cJSON_AddNumberToObject(o, "confirmed_count", (double)g->confirmed);
    cJSON_AddNumberToObject(o, "failure_count", (double)fail);
    cJSON_AddNumberToObject(o, "probes", vt_rset_runs(&g->rs, g->n));
    double sh = vt_rset_share(&g->rs);
    if (sh < 0)
        cJSON_AddNullToObject(o, "anomaly_share");
    else
        cJSON_AddNumberToObject(o, "anomaly_share", round(sh * 1000) / 1000);
    add_q(o, "latency_ms_p50", &g->lat, VT_HIST_LATENCY, 0.5);
    add_q(o, "latency_ms_p90", &g->lat, VT_HIST_LATENCY, 0.9);
    add_q(o, "throughput_bps_p50", &g->tput, VT_HIST_THROUGHPUT, 0.5);
    add_q(o, "throughput_bps_p90", &g->tput, VT_HIST_THROUGHPUT, 0.9);
    cJSON_AddNumberToObject(o, "intermittent_count", (double)g->intermittent);
}

static int aggregation(vt_store *s, struct evhttp_request *req, int max_groups)
{
    struct evkeyvalq kv;
    params p;
    int rc = parse_params(req, &kv,
                          "probe_cc,probe_asn,platform,target,test,category,since,until,grain,by,"
                          "format",
                          &p);
    if (rc) {
        evhttp_clear_headers(&kv);
        return rc;
    }
    agg_ctx a = {.dims = {D_NONE, D_NONE}, .grain = 1, .max_groups = (size_t)max_groups};
    if (p.grain) a.grain = strcmp(p.grain, "hour") == 0 ? 0 : strcmp(p.grain, "day") == 0 ? 1 : 2;
    if (p.by) {
        char tmp[64];
        if (strlen(p.by) >= sizeof(tmp)) {
            evhttp_clear_headers(&kv);
            return bad(req, "%s",
                       "by: at most two of day, probe_cc, probe_asn, platform, target, "
                       "verdict");
        }
        snprintf(tmp, sizeof(tmp), "%s", p.by);
        char *save = NULL;
        for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int d = -1;
            for (int i = 0; i < D_COUNT; i++)
                if (strcmp(t, dim_names[i]) == 0) d = i;
            if (d < 0 || a.ndims == 2 || (a.ndims == 1 && a.dims[0] == d)) {
                evhttp_clear_headers(&kv);
                return bad(req, "%s",
                           "by: one or two distinct of day, probe_cc, probe_asn, platform, "
                           "target, verdict");
            }
            a.dims[a.ndims++] = d;
        }
    }
    int csv = wants_csv(req, &p);
    char sql[1024], hs[20], hu[20];
    const char *pv[16];
    /* Whole days and no hourly series: the daily buckets give the same answer from 24x fewer
     * rows. */
    int hourly = a.grain == 0 && (a.dims[0] == D_DAY || a.dims[1] == D_DAY);
    int whole_days = (!p.since[0] || strcmp(p.since + 11, "00:00:00") == 0) &&
                     (!p.until[0] || strcmp(p.until + 11, "00:00:00") == 0);
    /* Neither a network filter nor a network dimension: the per-country buckets (all networks
     * of a country merged, the same sums and sketches) answer from a fraction of the rows. */
    int per_cc = !p.asn && a.dims[0] != D_ASN && a.dims[1] != D_ASN;
    /* Nor anything about targets: the per-country daily totals. */
    int all = per_cc && !p.target && !p.platform && !p.category && !p.test;
    for (int i = 0; i < a.ndims; i++)
        all = all && (a.dims[i] == D_DAY || a.dims[i] == D_CC || a.dims[i] == D_VERDICT);
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s", vt_cell_select,
             !hourly && whole_days ? (all      ? "rollup_cc_all_daily"
                                      : per_cc ? "rollup_cc_daily"
                                               : "rollup_daily")
                                   : (per_cc ? "rollup_cc_hourly" : "rollup_hourly"));
    int np = rollup_where(&p, sql, sizeof(sql), pv, hs, hu);
    char err[256];
    if (vt_db_query(s, sql, pv, np, agg_row, &a, err, sizeof(err)) < 0 || a.oom || a.too_many) {
        free(a.g);
        free(a.slots);
        evhttp_clear_headers(&kv);
        if (a.too_many)
            return bad(req,
                       "the answer would have over %zu groups: narrow it (since/until, probe_cc, "
                       "probe_asn, platform, target) or group by less",
                       a.max_groups);
        return a.oom ? (vt_api_reply_error(req, 503, "out of memory", 1), 503)
                     : unavailable(req, err);
    }
    if (a.n) qsort(a.g, a.n, sizeof(*a.g), cmp_group);
    cJSON *o = cJSON_CreateObject(), *res = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "grain", a.grain == 0 ? "hour" : a.grain == 1 ? "day" : "week");
    cJSON *by = cJSON_AddArrayToObject(o, "by");
    for (int i = 0; i < a.ndims; i++)
        cJSON_AddItemToArray(by, cJSON_CreateString(dim_names[a.dims[i]]));
    /* The hours counted: buckets are whole hours, so since is rounded down and until up (an
     * until of 03:30 counts the 03:00 bucket whole); null when open. */
    char eu[20] = "";
    if (p.until[0]) {
        long long t = vt_rollup_parse_time(p.until);
        vt_rollup_format_time(t % 3600 ? t - t % 3600 + 3600 : t, eu);
    }
    if (p.since[0])
        cJSON_AddStringToObject(o, "since", hs);
    else
        cJSON_AddNullToObject(o, "since");
    if (eu[0])
        cJSON_AddStringToObject(o, "until", eu);
    else
        cJSON_AddNullToObject(o, "until");
    int vdim = a.dims[0] == D_VERDICT ? 0 : a.dims[1] == D_VERDICT ? 1 : -1;
    for (size_t i = 0; i < a.n; i++) {
        for (int v = vdim >= 0 ? 0 : -1; v < (vdim >= 0 ? VT_V_COUNT : 0); v++) {
            if (v >= 0 && a.g[i].v[v] == 0) continue;
            cJSON *r = cJSON_CreateObject();
            for (int d = 0; d < a.ndims; d++)
                cJSON_AddStringToObject(r, dim_names[a.dims[d]],
                                        d == vdim ? vt_verdict_names[v] : a.g[i].key[d]);
            group_json(r, &a.g[i], v);
            cJSON_AddItemToArray(res, r);
        }
    }
    cJSON_AddItemToObject(o, "results", res);
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(res));
    if (csv) {
        const char *cols[2 + sizeof(agg_cols) / sizeof(agg_cols[0])];
        int nc = 0;
        for (int d = 0; d < a.ndims; d++)
            cols[nc++] = dim_names[a.dims[d]];
        for (size_t i = 0; i < sizeof(agg_cols) / sizeof(agg_cols[0]); i++)
            cols[nc++] = agg_cols[i];
        reply_csv(req, res, cols, nc);
    } else {
        reply_cjson(req, o);
    }
    cJSON_Delete(o);
    free(a.g);
    free(a.slots);
    evhttp_clear_headers(&kv);
    return 200;
}

/* ---- episodes ---- */

static void num_or_null(cJSON *o, const char *k, double v, double scale)
{
    if (v < 0 || !isfinite(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, round(v * scale) / scale);
}

cJSON *vt_episode_json(const vt_episode *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", e->kind);
    cJSON_AddStringToObject(o, "scope", e->scope);
    cJSON_AddStringToObject(o, "probe_cc", e->cc);
    cJSON_AddStringToObject(o, "probe_asn", e->asn);
    vt_json_add_string_or_null(o, "target", e->target[0] ? e->target : NULL);
    vt_json_add_string_or_null(o, "test_name", e->test[0] ? e->test : NULL);
    vt_json_add_string_or_null(o, "platform", e->platform[0] ? e->platform : NULL);
    vt_json_add_string_or_null(o, "category", e->category[0] ? e->category : NULL);
    cJSON_AddStringToObject(o, "start", e->start);
    cJSON_AddStringToObject(o, "end", e->end);
    cJSON_AddBoolToObject(o, "ongoing", e->ongoing);
    cJSON_AddBoolToObject(o, "confirmed", e->confirmed);
    cJSON *ev = cJSON_AddObjectToObject(o, "evidence");
    cJSON_AddNumberToObject(ev, "hours", e->hours);
    cJSON_AddNumberToObject(ev, "measurements", (double)e->measurements);
    cJSON_AddNumberToObject(ev, "anomalies", (double)e->anomalies);
    cJSON_AddNumberToObject(ev, "confirmed", (double)e->confirmed_count);
    cJSON_AddNumberToObject(ev, "intermittent", (double)e->intermittent_count);
    cJSON_AddNumberToObject(ev, "failures", (double)e->failures);
    cJSON_AddNumberToObject(ev, "max_probes", e->max_probes);
    cJSON_AddNumberToObject(ev, "anomaly_share", round(e->share * 1000) / 1000);
    vt_json_add_string_or_null(ev, "top_verdict", e->top_verdict[0] ? e->top_verdict : NULL);
    num_or_null(ev, "latency_ms_p50", e->latency_ms, 10);
    num_or_null(ev, "baseline_latency_ms_p50", e->baseline_latency_ms, 10);
    num_or_null(ev, "throughput_bps_p50", e->throughput_bps, 1);
    num_or_null(ev, "baseline_throughput_bps_p50", e->baseline_throughput_bps, 1);
    double ratio = -1;
    if (e->latency_ms > 0 && e->baseline_latency_ms > 0)
        ratio = e->latency_ms / e->baseline_latency_ms;
    if (e->throughput_bps > 0 && e->baseline_throughput_bps > 0 &&
        e->baseline_throughput_bps / e->throughput_bps > ratio)
        ratio = e->baseline_throughput_bps / e->throughput_bps;
    num_or_null(ev, "slowdown_ratio", ratio, 10);
    cJSON_AddBoolToObject(ev, "extreme", ratio >= VT_DETECT_EXTREME_RATIO);
    if (e->policer_bps > 0)
        cJSON_AddNumberToObject(ev, "policer_bps", e->policer_bps);
    else
        cJSON_AddNullToObject(ev, "policer_bps");
    return o;
}

static void default_range(params *p)
{
    if (!p->until[0] && !p->since[0]) {
        /* The last 30 days. */
        time_t now = time(NULL);
        vt_rollup_format_time((long long)now - 30 * 86400LL, p->since);
    }
}

static int episodes(vt_store *s, struct evhttp_request *req, int max_groups)
{
    (void)max_groups;
    struct evkeyvalq kv;
    params p;
    int rc =
        parse_params(req, &kv, "probe_cc,probe_asn,platform,target,since,until,kind,format", &p);
    if (rc) {
        evhttp_clear_headers(&kv);
        return rc;
    }
    default_range(&p);
    vt_detect_query q = {.cc = p.cc, .asn = p.asn, .target = p.target, .platform = p.platform};
    memcpy(q.since, p.since, 20);
    memcpy(q.until, p.until, 20);
    vt_episode *e = NULL;
    size_t n = 0;
    char err[256];
    if (vt_episodes_load(s, &q, &e, &n, err, sizeof(err)) < 0) {
        evhttp_clear_headers(&kv);
        return unavailable(req, err);
    }
    cJSON *o = cJSON_CreateObject();
    /* The range asked about (since defaults to 30 days back, so say which); null when open. */
    if (p.since[0])
        cJSON_AddStringToObject(o, "since", p.since);
    else
        cJSON_AddNullToObject(o, "since");
    if (p.until[0])
        cJSON_AddStringToObject(o, "until", p.until);
    else
        cJSON_AddNullToObject(o, "until");
    cJSON *res = cJSON_AddArrayToObject(o, "results");
    for (size_t i = 0; i < n; i++) {
        if (p.kind && strcmp(p.kind, e[i].kind) != 0) continue;
        cJSON_AddItemToArray(res, vt_episode_json(&e[i]));
    }
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(res));
    if (wants_csv(req, &p)) {
        /* Flatten the evidence for CSV. */
        cJSON *r;
        cJSON_ArrayForEach(r, res)
        {
            /* The evidence's count "confirmed" would collide with the episode's boolean of
             * that name (a CSV column reads the first): it is confirmed_measurements here. */
            cJSON *ev = cJSON_DetachItemFromObject(r, "evidence"), *x;
            cJSON_ArrayForEach(x, ev)
            {
                const char *name =
                    strcmp(x->string, "confirmed") == 0 ? "confirmed_measurements" : x->string;
                cJSON_AddItemToObject(r, name, cJSON_Duplicate(x, 1));
            }
            cJSON_Delete(ev);
        }
        static const char *const cols[] = {"kind",
                                           "scope",
                                           "probe_cc",
                                           "probe_asn",
                                           "target",
                                           "platform",
                                           "category",
                                           "test_name",
                                           "start",
                                           "end",
                                           "ongoing",
                                           "confirmed",
                                           "hours",
                                           "measurements",
                                           "anomalies",
                                           "confirmed_measurements",
                                           "intermittent",
                                           "failures",
                                           "max_probes",
                                           "anomaly_share",
                                           "top_verdict",
                                           "latency_ms_p50",
                                           "baseline_latency_ms_p50",
                                           "throughput_bps_p50",
                                           "baseline_throughput_bps_p50",
                                           "slowdown_ratio",
                                           "extreme",
                                           "policer_bps"};
        reply_csv(req, res, cols, (int)(sizeof(cols) / sizeof(cols[0])));
    } else {
        reply_cjson(req, o);
    }
    cJSON_Delete(o);
    free(e);
    evhttp_clear_headers(&kv);
    return 200;
}

/* ---- raw measurements ---- */

#define PAGE_MAX_BYTES (16u << 20) /* a page stops early past this much measurement JSON */

typedef struct meas_ctx {
    cJSON *res;
    size_t bytes;
    long count, limit;
    char last_start[20], last_uid[40];
    int more;
} meas_ctx;

static int meas_row(void *arg, int nc, const char *const *cols)
{
    meas_ctx *m = arg;
    if (nc < 3 || !cols[0] || !cols[1] || !cols[2]) return 0;
    size_t len = strlen(cols[2]);
    if (m->count == m->limit || (m->count > 0 && m->bytes + len > PAGE_MAX_BYTES)) {
        m->more = 1;
        return 1;
    }
    m->bytes += len;
    cJSON *b = cJSON_Parse(cols[2]);
    if (!b) return 0;
    cJSON_AddItemToArray(m->res, b);
    m->count++;
    snprintf(m->last_start, sizeof(m->last_start), "%s", cols[0]);
    snprintf(m->last_uid, sizeof(m->last_uid), "%s", cols[1]);
    return 0;
}

static int measurements(vt_store *s, struct evhttp_request *req, int max_groups)
{
    (void)max_groups;
    struct evkeyvalq kv;
    params p;
    int rc = parse_params(req, &kv,
                          "probe_cc,probe_asn,platform,target,test,category,verdict,since,until,"
                          "limit,cursor",
                          &p);
    if (rc) {
        evhttp_clear_headers(&kv);
        return rc;
    }
    char cstart[20] = "", cuid[33] = "";
    if (p.cursor) {
        /* "YYYYMMDDHHMMSS-<32 hex uid>" as given in next_cursor */
        const char *c = p.cursor;
        int ok = strlen(c) == 14 + 1 + 32 && c[14] == '-';
        for (int i = 0; ok && i < 14; i++)
            ok = isdigit((unsigned char)c[i]) != 0;
        for (int i = 15; ok && i < 47; i++)
            ok = isxdigit((unsigned char)c[i]) && !isupper((unsigned char)c[i]);
        if (ok) {
            snprintf(cstart, sizeof(cstart), "%.4s-%.2s-%.2s %.2s:%.2s:%.2s", c, c + 4, c + 6,
                     c + 8, c + 10, c + 12);
            ok = vt_rollup_parse_time(cstart) >= 0;
            memcpy(cuid, c + 15, 32);
        }
        if (!ok) {
            evhttp_clear_headers(&kv);
            return bad(req, "%s", "cursor is not one this API gave (use next_cursor as is)");
        }
    }
    char sql[1024] = "SELECT measurement_start_time, uid, body FROM measurements WHERE 1=1";
    const char *pv[16];
    int np = 0;
    size_t off = strlen(sql);
    struct {
        const char *col, *v;
    } f[] = {{"probe_cc", p.cc},      {"probe_asn", p.asn},  {"platform", p.platform},
             {"target_id", p.target}, {"test_name", p.test}, {"category", p.category},
             {"verdict", p.verdict}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].v) {
            off += (size_t)snprintf(sql + off, sizeof(sql) - off, " AND %s = ?", f[i].col);
            pv[np++] = f[i].v;
        }
    if (p.since[0]) {
        off += (size_t)snprintf(sql + off, sizeof(sql) - off, " AND measurement_start_time >= ?");
        pv[np++] = p.since;
    }
    if (p.until[0]) {
        off += (size_t)snprintf(sql + off, sizeof(sql) - off, " AND measurement_start_time < ?");
        pv[np++] = p.until;
    }
    if (cstart[0]) {
        off += (size_t)snprintf(sql + off, sizeof(sql) - off,
                                " AND (measurement_start_time < ? OR (measurement_start_time = ? "
                                "AND uid < ?))");
        pv[np++] = cstart;
        pv[np++] = cstart;
        pv[np++] = cuid;
    }
    char lim[24];
    snprintf(lim, sizeof(lim), "%ld", p.limit + 1);
    snprintf(sql + off, sizeof(sql) - off,
             " ORDER BY measurement_start_time DESC, uid DESC LIMIT %s", lim);
    cJSON *o = cJSON_CreateObject();
    meas_ctx m = {.res = cJSON_AddArrayToObject(o, "results"), .limit = p.limit};
    char err[256];
    if (vt_db_query(s, sql, pv, np, meas_row, &m, err, sizeof(err)) < 0) {
        cJSON_Delete(o);
        evhttp_clear_headers(&kv);
        return unavailable(req, err);
    }
    cJSON_AddNumberToObject(o, "count", (double)m.count);
    if (m.more) {
        char cur[64];
        const char *t = m.last_start;
        snprintf(cur, sizeof(cur), "%.4s%.2s%.2s%.2s%.2s%.2s-%s", t, t + 5, t + 8, t + 11, t + 14,
                 t + 17, m.last_uid);
        cJSON_AddStringToObject(o, "next_cursor", cur);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    reply_cjson(req, o);
    cJSON_Delete(o);
    evhttp_clear_headers(&kv);
    return 200;
}

/* ---- static files ---- */

const char *vt_aggregate_web_dir(void)
{
    static char buf[4096];
    /* the source tree's collector/web (tests, a build directory), a relocated install's
     * X/share/vantage/web for X/bin/vantage-collector, or the configured prefix's */
    return vt_data_dir(getenv("VANTAGE_WEB_DIR"), "collector/web", "web", "index.html", 4,
                       VT_DATADIR, buf, sizeof(buf));
}

static int send_file(struct evhttp_request *req, const char *path, const char *type, int cache)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vt_api_reply_error(req, 404, "not found (is the dashboard installed?)", 0);
        return 404;
    }
    struct evbuffer *b = evbuffer_new();
    char chunk[16384];
    size_t n, total = 0;
    while (b && (n = fread(chunk, 1, sizeof(chunk), f)) > 0 && total < (8u << 20)) {
        evbuffer_add(b, chunk, n);
        total += n;
    }
    fclose(f);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", cache ? "public, max-age=86400" : "no-cache");
    evhttp_send_reply(req, 200, "OK", b);
    if (b) evbuffer_free(b);
    return 200;
}

static const char *chartjs_path(void)
{
    const char *env = getenv("VANTAGE_CHARTJS");
    return env && *env ? env : "/usr/share/javascript/chart.js/chart.min.js";
}

int vt_aggregate_is_query(const char *uri)
{
    static const char *const q[] = {"/api/v1/aggregation", "/api/v1/episodes",
                                    "/api/v1/measurements"};
    size_t len = strcspn(uri, "?#");
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        if (strlen(q[i]) == len && strncmp(uri, q[i], len) == 0) return 1;
    return 0;
}

int vt_aggregate_is_page(const char *uri)
{
    static const char *const q[] = {"/", "/index.html", "/static/app.js", "/static/app.css",
                                    "/static/vendor/chart.js"};
    size_t len = strcspn(uri, "?#");
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        if (strlen(q[i]) == len && strncmp(uri, q[i], len) == 0) return 1;
    return 0;
}

int vt_aggregate_handle(vt_store *s, struct evhttp_request *req, char *route, size_t routelen,
                        int timeout_ms, int groups)
{
    const char *uri = evhttp_request_get_uri(req);
    if (!uri) return 0;
    size_t len = strcspn(uri, "?#");
    char path[128];
    if (len >= sizeof(path)) return 0;
    memcpy(path, uri, len);
    path[len] = 0;
    static const struct {
        const char *path, *file, *type;
    } files[] = {
        {"/", "index.html", "text/html; charset=utf-8"},
        {"/index.html", "index.html", "text/html; charset=utf-8"},
        {"/static/app.js", "app.js", "text/javascript; charset=utf-8"},
        {"/static/app.css", "app.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (strcmp(path, files[i].path) == 0) {
            char full[4300];
            snprintf(route, routelen, "%s", path);
            snprintf(full, sizeof(full), "%s/%s", vt_aggregate_web_dir(), files[i].file);
            security_headers(req);
            return send_file(req, full, files[i].type, 0);
        }
    if (strcmp(path, "/static/vendor/chart.js") == 0) {
        snprintf(route, routelen, "%s", path);
        security_headers(req);
        return send_file(req, chartjs_path(), "text/javascript; charset=utf-8", 1);
    }
    int (*fn)(vt_store *, struct evhttp_request *, int max_groups) = NULL;
    if (strcmp(path, "/api/v1/aggregation") == 0) fn = aggregation;
    if (strcmp(path, "/api/v1/episodes") == 0) fn = episodes;
    if (strcmp(path, "/api/v1/measurements") == 0) fn = measurements;
    if (!fn) return 0;
    snprintf(route, routelen, "%s", path);
    security_headers(req);
    /* Queries run on the event loop (and, on SQLite with ingest threads, under the store lock):
     * one that reads too much is stopped rather than holding up everyone else. */
    /* PostgreSQL: a connection the server closed (a restart) would fail this query with a 503
     * although the server is back. */
    vt_store_revive(s);
    vt_db_time_limit(s, timeout_ms);
    int status = fn(s, req, groups > 0 ? groups : 10000);
    vt_db_time_limit(s, 0);
    return status;
}
