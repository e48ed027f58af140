/* Hourly rollups at ingest, the SQL plumbing shared by the query code, and detection.
 * See rollup.h and docs/methodology.md ("Aggregation and detection"). */
#include "rollup.h"
#include "log.h"
#include "strbuf.h"
#include "vantage/measurement.h"
#include "vantage/loop.h"

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- histograms ---- */

/* The array p (n elements used, *cap allocated, size bytes each) with room for one more: p
 * itself, or p moved by realloc to twice its capacity (first when empty), *cap updated. NULL
 * when out of memory, p and *cap unchanged. */
static void *grow(void *p, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap) return p;
    size_t c = *cap ? *cap * 2 : first;
    void *np = realloc(p, c * size);
    if (np) *cap = c;
    return np;
}

static const double hist_lo[2] = {1.0, 1e3}, hist_hi[2] = {60000.0, 1e10};

int vt_hist_bin(int kind, double v)
{
    double lo = hist_lo[kind], hi = hist_hi[kind];
    if (!(v > lo)) return 0;              /* also NaN */
    if (v >= hi) return VT_HIST_BINS - 1; /* also +inf: never cast a huge double to int */
    int i = (int)floor(log(v / lo) / log(hi / lo) * VT_HIST_BINS);
    if (i < 0) return 0;
    return i >= VT_HIST_BINS ? VT_HIST_BINS - 1 : i;
}

double vt_hist_edge(int kind, int i)
{
    static double edges[2][VT_HIST_BINS + 1];
    static int ready;
    if (!ready) { /* single-threaded collector; the values are the same on every call anyway */
        for (int k = 0; k < 2; k++)
            for (int j = 0; j <= VT_HIST_BINS; j++)
                edges[k][j] = hist_lo[k] * pow(hist_hi[k] / hist_lo[k], (double)j / VT_HIST_BINS);
        ready = 1;
    }
    if (i < 0) i = 0;
    if (i > VT_HIST_BINS) i = VT_HIST_BINS;
    return edges[kind][i];
}

void vt_hist_add(vt_hist *h, int kind, double v)
{
    int i = vt_hist_bin(kind, v);
    if (h->c[i] < UINT32_MAX) h->c[i]++;
}

void vt_hist_merge(vt_hist *into, const vt_hist *h)
{
    for (int i = 0; i < VT_HIST_BINS; i++) {
        uint64_t s = (uint64_t)into->c[i] + h->c[i];
        into->c[i] = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
    }
}

uint64_t vt_hist_total(const vt_hist *h)
{
    uint64_t t = 0;
    for (int i = 0; i < VT_HIST_BINS; i++)
        t += h->c[i];
    return t;
}

double vt_hist_quantile(const vt_hist *h, int kind, double q)
{
    uint64_t total = vt_hist_total(h);
    if (total == 0) return -1;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t k = (uint64_t)ceil(q * (double)total);
    if (k < 1) k = 1;
    uint64_t cum = 0;
    for (int i = 0; i < VT_HIST_BINS; i++) {
        cum += h->c[i];
        if (cum >= k) return sqrt(vt_hist_edge(kind, i) * vt_hist_edge(kind, i + 1));
    }
    return sqrt(vt_hist_edge(kind, VT_HIST_BINS - 1) * vt_hist_edge(kind, VT_HIST_BINS));
}

/* Decimal / 8-digit hex text of v at o, unterminated; the length. The encoders below run for
 * every bucket a batch touches (snprintf there was a twentieth of ingest's CPU). */
static int put_dec(char *o, uint32_t v)
{
    char t[10];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        o[i] = t[n - 1 - i];
    return n;
}

static int put_hex8(char *o, uint32_t v)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, v >>= 4)
        o[i] = hx[v & 15];
    return 8;
}

/* Appends entry e (len bytes) to out (n bytes, off used) with a comma before all but the first;
 * 0 when it does not fit (out then ends before it, as with a truncated snprintf). */
static int put_entry(char *out, size_t n, size_t *off, const char *e, int len)
{
    size_t need = (size_t)len + (*off ? 1 : 0);
    if (*off + need >= n) return 0;
    if (*off) out[(*off)++] = ',';
    memcpy(out + *off, e, (size_t)len);
    *off += (size_t)len;
    out[*off] = 0;
    return 1;
}

void vt_hist_encode(const vt_hist *h, char *out, size_t n)
{
    size_t off = 0;
    out[0] = 0;
    for (int i = 0; i < VT_HIST_BINS; i++) {
        if (!h->c[i]) continue;
        char e[24];
        int w = put_dec(e, (uint32_t)i);
        e[w++] = ':';
        w += put_dec(e + w, h->c[i]);
        if (!put_entry(out, n, &off, e, w)) break;
    }
}

/* Decimal digits at *p, at most 10 of them (< 2^32 checked by the caller): -1 when none. */
static long long fast_dec(const char **p)
{
    const char *s = *p;
    long long v = 0;
    int k = 0;
    while (*s >= '0' && *s <= '9' && k < 11) {
        v = v * 10 + (*s++ - '0');
        k++;
    }
    if (k == 0 || k > 10) return -1;
    *p = s;
    return v;
}

/* Detection and every query decode thousands of these: a strict parser for the text encode
 * writes; anything else goes to the lenient one below. */
static int hist_decode_fast(vt_hist *h, const char *s)
{
    while (*s) {
        long long i = fast_dec(&s);
        if (i < 0 || i >= VT_HIST_BINS || *s++ != ':') return -1;
        long long c = fast_dec(&s);
        if (c < 0 || c > UINT32_MAX) return -1;
        h->c[i] = (uint32_t)c;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return 0;
}

void vt_hist_decode(vt_hist *h, const char *s)
{
    memset(h, 0, sizeof(*h));
    if (!s || hist_decode_fast(h, s) == 0) return;
    memset(h, 0, sizeof(*h));
    while (s && *s) {
        char *end;
        long i = strtol(s, &end, 10);
        if (*end != ':') break;
        unsigned long c = strtoul(end + 1, &end, 10);
        if (i >= 0 && i < VT_HIST_BINS) h->c[i] = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
        if (*end != ',') break;
        s = end + 1;
    }
}

/* ---- report sets ---- */

uint32_t vt_rset_hash(const char *id)
{
    /* FNV-1a 64 folded to 32 bits, then a finaliser so the low values are uniform. */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)(h ^ (h >> 32));
}

void vt_rset_add(vt_rset *s, uint32_t h, uint32_t n, uint32_t a)
{
    int i = 0;
    while (i < s->len && s->e[i].h < h)
        i++;
    if (i < s->len && s->e[i].h == h) {
        s->e[i].n += n;
        s->e[i].a += a;
        return;
    }
    if (i >= VT_RSET_K) return; /* larger than the K smallest: not sampled */
    memmove(&s->e[i + 1], &s->e[i], (size_t)(s->len - i) * sizeof(s->e[0]));
    s->e[i] = (vt_rset_entry){h, n, a};
    if (s->len < VT_RSET_K) s->len++;
}

void vt_rset_merge(vt_rset *into, const vt_rset *s)
{
    /* Both sorted by hash: one linear merge keeping the K smallest. */
    vt_rset_entry out[VT_RSET_K];
    int i = 0, j = 0, k = 0;
    while (k < VT_RSET_K && (i < into->len || j < s->len)) {
        if (j >= s->len || (i < into->len && into->e[i].h < s->e[j].h))
            out[k++] = into->e[i++];
        else if (i >= into->len || s->e[j].h < into->e[i].h)
            out[k++] = s->e[j++];
        else {
            out[k] = into->e[i++];
            out[k].n += s->e[j].n;
            out[k++].a += s->e[j++].a;
        }
    }
    memcpy(into->e, out, (size_t)k * sizeof(out[0]));
    into->len = k;
}

double vt_rset_distinct(const vt_rset *s)
{
    if (s->len < VT_RSET_K) return s->len;
    double kth = ((double)s->e[VT_RSET_K - 1].h + 1.0) / 4294967296.0;
    double est = (VT_RSET_K - 1) / kth;
    return est < VT_RSET_K ? VT_RSET_K : floor(est + 0.5);
}

double vt_rset_runs(const vt_rset *s, int64_t measurements)
{
    double d = vt_rset_distinct(s);
    return measurements >= 0 && d > (double)measurements ? (double)measurements : d;
}

double vt_rset_share(const vt_rset *s)
{
    double sum = 0;
    int k = 0;
    for (int i = 0; i < s->len; i++)
        if (s->e[i].n) {
            sum += (double)s->e[i].a / s->e[i].n;
            k++;
        }
    return k ? sum / k : -1;
}

void vt_rset_encode(const vt_rset *s, char *out, size_t n)
{
    size_t off = 0;
    out[0] = 0;
    for (int i = 0; i < s->len; i++) {
        char e[40];
        int w = put_hex8(e, s->e[i].h);
        e[w++] = ':';
        w += put_dec(e + w, s->e[i].n);
        e[w++] = ':';
        w += put_dec(e + w, s->e[i].a);
        if (!put_entry(out, n, &off, e, w)) break;
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The strict form encode writes: 8 lowercase hex digits, ':', n, ':', a <= n, ascending. */
static int rset_decode_fast(vt_rset *s, const char *t)
{
    while (*t) {
        uint32_t h = 0;
        for (int i = 0; i < 8; i++) {
            int v = hexval(t[i]);
            if (v < 0) return -1;
            h = h << 4 | (uint32_t)v;
        }
        t += 8;
        if (*t++ != ':') return -1;
        long long n = fast_dec(&t);
        if (n < 0 || n > UINT32_MAX || *t++ != ':') return -1;
        long long a = fast_dec(&t);
        if (a < 0 || a > n || s->len >= VT_RSET_K || (s->len && s->e[s->len - 1].h >= h)) return -1;
        s->e[s->len++] = (vt_rset_entry){h, (uint32_t)n, (uint32_t)a};
        if (*t == ',')
            t++;
        else if (*t)
            return -1;
    }
    return 0;
}

void vt_rset_decode(vt_rset *s, const char *t)
{
    memset(s, 0, sizeof(*s));
    if (!t || rset_decode_fast(s, t) == 0) return;
    memset(s, 0, sizeof(*s));
    while (t && *t) {
        char *end;
        unsigned long h = strtoul(t, &end, 16);
        if (*end != ':') break;
        unsigned long n = strtoul(end + 1, &end, 10);
        if (*end != ':') break;
        unsigned long a = strtoul(end + 1, &end, 10);
        if (h <= UINT32_MAX && n <= UINT32_MAX && a <= n) {
            /* Stored sorted: append; anything else goes the slow, checked way. */
            if (s->len < VT_RSET_K && (s->len == 0 || s->e[s->len - 1].h < h))
                s->e[s->len++] = (vt_rset_entry){(uint32_t)h, (uint32_t)n, (uint32_t)a};
            else
                vt_rset_add(s, (uint32_t)h, (uint32_t)n, (uint32_t)a);
        }
        if (*end != ',') break;
        t = end + 1;
    }
}

/* ---- verdicts ---- */

const char *const vt_verdict_names[VT_V_COUNT] = {
    "ok",        "dns_blocking", "tcp_blocking",  "tls_blocking", "http_blocking",
    "throttled", "down",         "probe_offline", "inconclusive", "failure"};
const char *const vt_verdict_columns[VT_V_COUNT] = {
    "n_ok",        "n_dns",  "n_tcp",     "n_tls",          "n_http",
    "n_throttled", "n_down", "n_offline", "n_inconclusive", "n_failure"};

int vt_verdict_index(const char *name)
{
    for (int i = 0; i < VT_V_COUNT; i++)
        if (strcmp(name, vt_verdict_names[i]) == 0) return i;
    return -1;
}

int vt_verdict_is_anomaly(int v)
{
    return v >= VT_V_DNS && v <= VT_V_THROTTLED;
}

int vt_verdict_is_failure(int v)
{
    return v >= VT_V_DOWN;
}

/* ---- time ---- */

static int dig2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

long long vt_rollup_parse_time(const char *s)
{
    /* Hand-rolled (detection parses one per bucket): "YYYY-MM-DD HH:MM:SS", a real date. */
    static const char shape[] = "dddd-dd-dd dd:dd:dd";
    if (!s) return -1;
    for (int i = 0; i < 19; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return -1;
    if (s[19]) return -1;
    int Y = dig2(s) * 100 + dig2(s + 2), M = dig2(s + 5), D = dig2(s + 8), h = dig2(s + 11),
        m = dig2(s + 14), sec = dig2(s + 17);
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] + (M == 2 && leap) || h > 23 ||
        m > 59 || sec > 60)
        return -1;
    /* days from civil (H. Hinnant) */
    int y = Y - (M <= 2);
    int era = y / 400, yoe = y - era * 400;
    int doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = (long long)era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + m * 60 + sec;
}

void vt_rollup_format_time(long long t, char out[20])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

/* ---- one measurement ---- */

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Copies s into dst[n], cut (if it must be) between UTF-8 characters, never inside one. */
static void cpy(char *dst, size_t n, const char *s)
{
    size_t len = s ? strnlen(s, n - 1) : 0;
    if (s && s[len]) /* cut: back off continuation bytes to a character's start */
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    if (len) memcpy(dst, s, len);
    dst[len] = 0;
}

/* The observation of a parsed measurement (vt_obs_from_json without the parse). */
static int obs_from_tree(const cJSON *m, vt_obs *o)
{
    memset(o, 0, sizeof(*o));
    if (!cJSON_IsObject(m)) return -1;
    int rc = -1;
    const char *start = jstr(m, "measurement_start_time");
    const char *cc = jstr(m, "probe_cc"), *asn = jstr(m, "probe_asn"), *test = jstr(m, "test_name");
    if (!start || vt_rollup_parse_time(start) < 0 || !cc || !asn || !test) goto done;
    snprintf(o->hour, sizeof(o->hour), "%.13s:00:00", start);
    cpy(o->cc, sizeof(o->cc), cc);
    cpy(o->asn, sizeof(o->asn), asn);
    cpy(o->test, sizeof(o->test), test);
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
    cpy(o->target, sizeof(o->target), jstr(ann, "target_id"));
    cpy(o->platform, sizeof(o->platform), jstr(ann, "platform"));
    cpy(o->category, sizeof(o->category), jstr(ann, "category"));
    /* Distinct probes: by the device's hourly token when the probe sent one (a device running
     * twice in an hour is one witness, not two), else by run (report id). No report id either:
     * all such measurements count as one probe (never more weight than one). */
    const char *dev = jstr(m, "x_device_hour"), *rid = jstr(m, "report_id");
    char key[64];
    if (vt_hex_lower(dev, VT_DEVICE_HOUR_LEN)) { /* as vt_device_hour writes it */
        snprintf(key, sizeof(key), "device-hour:%s", dev);
        o->report = vt_rset_hash(key);
    } else {
        o->report = vt_rset_hash(rid ? rid : "");
    }
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "test_keys");
    const char *verdict = jstr(tk, "verdict");
    if (verdict) {
        o->verdict = vt_verdict_index(verdict);
        if (o->verdict < 0) o->verdict = VT_V_INCONCLUSIVE;
    } else {
        o->verdict = jstr(tk, "failure") ? VT_V_FAILURE : VT_V_OK;
    }
    o->confirmed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "blocking_confirmed"));
    o->intermittent = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(tk, "evidence"), "intermittent"));
    o->latency_ms = -1;
    o->throughput_bps = -1;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(tk, "tcp_connect");
    const cJSON *c0 = cJSON_IsArray(tc) ? cJSON_GetArrayItem(tc, 0) : NULL;
    if (cJSON_IsObject(c0)) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(c0, "status");
        int failed = jstr(c0, "failure") != NULL || (st && jstr(st, "failure") != NULL) ||
                     (st && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(st, "success")));
        double t = jnum(c0, "t"), t0 = jnum(c0, "t0");
        if (isnan(t0)) t0 = 0;
        if (!failed && isfinite(t) && t >= t0 && t - t0 < 3600) o->latency_ms = (t - t0) * 1000.0;
    }
    double bps = jnum(tk, "throughput_bps");
    if (!(bps > 0)) {
        const cJSON *lr = cJSON_GetObjectItemCaseSensitive(tk, "x_large_resource");
        bps = jnum(lr, "throughput_bps");
    }
    if (bps > 0 && isfinite(bps)) o->throughput_bps = bps;
    rc = 0;
done:
    return rc;
}

int vt_obs_from_json(const char *body, vt_obs *o)
{
    cJSON *m = cJSON_Parse(body);
    int rc = obs_from_tree(m, o);
    cJSON_Delete(m);
    return rc;
}

/* ---- SQL plumbing ---- */

/* Prepared statements kept per connection: ingest runs the same two statements per bucket. One
 * table for the process: every user holds vt_store_db_lock while ingest threads run (the storing
 * worker, and the loop's SQLite queries and episode refresh); vt_db_forget drops a connection's
 * statements before it closes. */
#define STMT_CACHE 24
static struct {
    sqlite3 *db;
    char *sql;
    sqlite3_stmt *st;
} stmt_cache[STMT_CACHE];
static unsigned stmt_next;

void vt_db_forget(void *native)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (stmt_cache[i].db == native && native) {
            sqlite3_finalize(stmt_cache[i].st);
            free(stmt_cache[i].sql);
            memset(&stmt_cache[i], 0, sizeof(stmt_cache[i]));
        }
}

static sqlite3_stmt *stmt_get(sqlite3 *db, const char *sql, int *cached)
{
    *cached = 0;
    for (int i = 0; i < STMT_CACHE; i++)
        if (stmt_cache[i].db == db && strcmp(stmt_cache[i].sql, sql) == 0) {
            if (sqlite3_stmt_busy(stmt_cache[i].st)) break; /* in use by an outer query */
            *cached = 1;
            return stmt_cache[i].st;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    char *copy = strdup(sql);
    if (!copy) return st;
    unsigned slot = stmt_next++ % STMT_CACHE;
    for (int i = 0; i < STMT_CACHE; i++) /* never evict a statement being stepped */
        if (!stmt_cache[slot].st || !sqlite3_stmt_busy(stmt_cache[slot].st))
            break;
        else
            slot = stmt_next++ % STMT_CACHE;
    if (stmt_cache[slot].st && sqlite3_stmt_busy(stmt_cache[slot].st)) {
        free(copy);
        return st;
    }
    sqlite3_finalize(stmt_cache[slot].st);
    free(stmt_cache[slot].sql);
    stmt_cache[slot].db = db;
    stmt_cache[slot].sql = copy;
    stmt_cache[slot].st = st;
    *cached = 1;
    return st;
}

static int sqlite_query(sqlite3 *db, const char *sql, const char *const *params, int np,
                        vt_db_row_fn fn, void *arg, char *err, size_t errlen)
{
    int cached;
    sqlite3_stmt *st = stmt_get(db, sql, &cached);
    if (!st) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    for (int i = 0; i < np; i++)
        if (params[i])
            sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    int rc, nc = sqlite3_column_count(st), out = 0;
    const char *cols[64];
    if (nc > 64) nc = 64;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < nc; i++)
            cols[i] = (const char *)sqlite3_column_text(st, i);
        if (fn && fn(arg, nc, cols)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        out = -1;
    }
    if (cached) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        sqlite3_finalize(st);
    }
    return out;
}

static int pg_query(PGconn *c, const char *sql, const char *const *params, int np, vt_db_row_fn fn,
                    void *arg, char *err, size_t errlen)
{
    size_t len = strlen(sql);
    char *q = malloc(len * 4 + 1);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t o = 0;
    int k = 0;
    for (size_t i = 0; i < len; i++) {
        if (sql[i] == '?')
            o += (size_t)sprintf(q + o, "$%d", ++k);
        else
            q[o++] = sql[i];
    }
    q[o] = 0;
    PGresult *r = PQexecParams(c, q, np, NULL, params, NULL, NULL, 0);
    free(q);
    int st = PQresultStatus(r), out = 0;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int nr = PQntuples(r), nc = PQnfields(r);
    const char *cols[64];
    if (nc > 64) nc = 64;
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nc; j++)
            cols[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
        if (fn && fn(arg, nc, cols)) break;
    }
    PQclear(r);
    return out;
}

static int is_pg(vt_store *s)
{
    return strcmp(vt_store_name(s), "sqlite") != 0;
}

/* The deadline of the loop's queries on SQLite (vt_db_time_limit): only the loop sets it and only
 * its connection's progress handler reads it. */
static double query_deadline;

static int past_deadline(void *arg)
{
    (void)arg;
    return vt_now() > query_deadline;
}

void vt_db_time_limit(vt_store *s, int ms)
{
    void *h = vt_store_native(s);
    if (!h) return;
    if (!is_pg(s)) {
        if (ms > 0) {
            query_deadline = vt_now() + ms / 1000.0;
            sqlite3_progress_handler(h, 10000, past_deadline, NULL);
        } else {
            sqlite3_progress_handler(h, 0, NULL, NULL);
        }
        return;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), ms > 0 ? "SET statement_timeout = %d" : "RESET statement_timeout",
             ms);
    PQclear(PQexec(h, sql));
}

int vt_db_timed_out(const char *err)
{
    return err && (strstr(err, "interrupted") || strstr(err, "statement timeout"));
}

int vt_db_query(vt_store *s, const char *sql, const char *const *params, int np, vt_db_row_fn fn,
                void *arg, char *err, size_t errlen)
{
    void *h = vt_store_native(s);
    if (!is_pg(s)) return sqlite_query(h, sql, params, np, fn, arg, err, errlen);
    return pg_query(h, sql, params, np, fn, arg, err, errlen);
}

/* ---- buckets ---- */

const char *const vt_cell_select =
    "hour, probe_cc, probe_asn, target_id, test_name, platform, category, n, n_ok, n_dns, n_tcp, "
    "n_tls, n_http, n_throttled, n_down, n_offline, n_inconclusive, n_failure, n_confirmed, "
    "lat_hist, tput_hist, reports, probes, share_pm, n_intermittent";
#define CELL_COLS 25
/* Detection needs each bucket's run count and per-run share, not the sketch itself: the same
 * columns with an empty sketch, so a detection query reads a fraction of the bytes. */
static const char *const detect_select =
    "hour, probe_cc, probe_asn, target_id, test_name, platform, category, n, n_ok, n_dns, n_tcp, "
    "n_tls, n_http, n_throttled, n_down, n_offline, n_inconclusive, n_failure, n_confirmed, "
    "lat_hist, tput_hist, '' AS reports, probes, share_pm, n_intermittent";

#define ROLLUP_COLUMNS                                                                             \
    " hour TEXT NOT NULL, probe_cc TEXT NOT NULL, probe_asn TEXT NOT NULL,"                        \
    " target_id TEXT NOT NULL, test_name TEXT NOT NULL,"                                           \
    " platform TEXT NOT NULL, category TEXT NOT NULL,"                                             \
    " n BIGINT NOT NULL, n_ok BIGINT NOT NULL, n_dns BIGINT NOT NULL, n_tcp BIGINT NOT NULL,"      \
    " n_tls BIGINT NOT NULL, n_http BIGINT NOT NULL, n_throttled BIGINT NOT NULL,"                 \
    " n_down BIGINT NOT NULL, n_offline BIGINT NOT NULL, n_inconclusive BIGINT NOT NULL,"          \
    " n_failure BIGINT NOT NULL, n_confirmed BIGINT NOT NULL,"                                     \
    " lat_hist TEXT NOT NULL, tput_hist TEXT NOT NULL, reports TEXT NOT NULL,"                     \
    " probes BIGINT NOT NULL, share_pm BIGINT NOT NULL,"                                           \
    " n_intermittent BIGINT NOT NULL DEFAULT 0,"                                                   \
    " PRIMARY KEY (hour, probe_cc, probe_asn, target_id, test_name)"

static const char *schema =
    "CREATE TABLE IF NOT EXISTS rollup_hourly (" ROLLUP_COLUMNS ");"
    "CREATE INDEX IF NOT EXISTS rollup_hourly_cc_hour ON rollup_hourly (probe_cc, hour);"
    /* Ranges of hours alone use the primary key, which starts with hour: the (hour) indexes
     * of earlier versions cost every new bucket an index insert and served nothing. */
    "DROP INDEX IF EXISTS rollup_hourly_hour;"
    /* A network's series in detection order (the episode refresh reads one at a time). */
    "CREATE INDEX IF NOT EXISTS rollup_hourly_series ON rollup_hourly"
    " (probe_cc, probe_asn, target_id, test_name, hour);"
    /* The same buckets per day ("hour" holds the day's 00:00:00) for long ranges. */
    "CREATE TABLE IF NOT EXISTS rollup_daily (" ROLLUP_COLUMNS ");"
    "CREATE INDEX IF NOT EXISTS rollup_daily_cc_hour ON rollup_daily (probe_cc, hour);"
    "DROP INDEX IF EXISTS rollup_daily_hour;"
    /* Per country: all networks of a country merged (probe_asn ''), for the queries that neither
     * filter nor group by network: the country list, a target's series in a country. */
    "CREATE TABLE IF NOT EXISTS rollup_cc_hourly (" ROLLUP_COLUMNS ");"
    "CREATE INDEX IF NOT EXISTS rollup_cc_hourly_cc_hour ON rollup_cc_hourly (probe_cc, hour);"
    "CREATE INDEX IF NOT EXISTS rollup_cc_hourly_target ON rollup_cc_hourly"
    " (probe_cc, target_id, hour);"
    "CREATE TABLE IF NOT EXISTS rollup_cc_daily (" ROLLUP_COLUMNS ");"
    "CREATE INDEX IF NOT EXISTS rollup_cc_daily_cc_hour ON rollup_cc_daily (probe_cc, hour);"
    /* Per country and day, all targets merged too (target_id, test_name and the labels ''):
     * the country list and a country's daily totals. */
    "CREATE TABLE IF NOT EXISTS rollup_cc_all_daily (" ROLLUP_COLUMNS ");"
    /* Detected episodes, kept up to date by vt_episodes_refresh for the series marked dirty at
     * ingest (whole = 1: the network's canaries changed, every series of it is redone). */
    "CREATE TABLE IF NOT EXISTS episodes_dirty ("
    " probe_cc TEXT NOT NULL, probe_asn TEXT NOT NULL, target_id TEXT NOT NULL,"
    " test_name TEXT NOT NULL, whole BIGINT NOT NULL,"
    " PRIMARY KEY (probe_cc, probe_asn, target_id, test_name, whole));"
    /* The refresh's next few in its order: without it each round sorted the whole table, which
     * grows by ~300 series per upload while uploads keep coming (PostgreSQL: rounds of 50-110
     * ms with the rollup lock held at 200,000 measurements). */
    "DROP INDEX IF EXISTS episodes_dirty_next;"
    /* ... one country at a time, in turn (episodes_refresh). */
    "CREATE INDEX IF NOT EXISTS episodes_dirty_cc_next ON episodes_dirty"
    " (probe_cc, whole DESC, probe_asn);"
    /* The VT_DETECT_RULES the stored episodes were detected under (one row). */
    "CREATE TABLE IF NOT EXISTS episodes_rules (version BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS episodes ("
    " kind TEXT NOT NULL, scope TEXT NOT NULL, probe_cc TEXT NOT NULL, probe_asn TEXT NOT NULL,"
    " target_id TEXT NOT NULL, test_name TEXT NOT NULL, platform TEXT NOT NULL,"
    " category TEXT NOT NULL, start_hour TEXT NOT NULL, end_hour TEXT NOT NULL,"
    " hours BIGINT NOT NULL, measurements BIGINT NOT NULL, anomalies BIGINT NOT NULL,"
    " confirmed_count BIGINT NOT NULL, failures BIGINT NOT NULL, max_probes TEXT NOT NULL,"
    " anomaly_share TEXT NOT NULL, top_verdict TEXT NOT NULL, latency_ms TEXT NOT NULL,"
    " baseline_latency_ms TEXT NOT NULL, throughput_bps TEXT NOT NULL,"
    " baseline_throughput_bps TEXT NOT NULL, policer_bps TEXT NOT NULL,"
    " intermittent_count BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS episodes_series ON episodes"
    " (probe_cc, probe_asn, target_id, test_name);"
    "CREATE INDEX IF NOT EXISTS episodes_end ON episodes (end_hour)";

static long long num(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

int vt_cell_from_cols(vt_cell *c, int ncols, const char *const *cols)
{
    memset(c, 0, sizeof(*c));
    if (ncols < CELL_COLS) return -1;
    cpy(c->hour, sizeof(c->hour), cols[0]);
    cpy(c->cc, sizeof(c->cc), cols[1]);
    cpy(c->asn, sizeof(c->asn), cols[2]);
    cpy(c->target, sizeof(c->target), cols[3]);
    cpy(c->test, sizeof(c->test), cols[4]);
    cpy(c->platform, sizeof(c->platform), cols[5]);
    cpy(c->category, sizeof(c->category), cols[6]);
    c->n = num(cols[7]);
    for (int i = 0; i < VT_V_COUNT; i++)
        c->v[i] = num(cols[8 + i]);
    c->confirmed = num(cols[18]);
    vt_hist_decode(&c->lat, cols[19]);
    vt_hist_decode(&c->tput, cols[20]);
    vt_rset_decode(&c->rs, cols[21]);
    /* Distinct runs and per-run anomaly share (per mille, -1 none), kept at upsert. */
    c->probes = (double)num(cols[22]);
    if (c->probes > (double)c->n) /* an estimate (above VT_RSET_K runs) past what it counts */
        c->probes = (double)c->n;
    c->share = cols[23] && num(cols[23]) >= 0 ? (double)num(cols[23]) / 1000.0 : -1;
    c->intermittent = num(cols[24]);
    return 0;
}

static void cell_merge(vt_cell *into, const vt_cell *c)
{
    into->n += c->n;
    for (int i = 0; i < VT_V_COUNT; i++)
        into->v[i] += c->v[i];
    into->confirmed += c->confirmed;
    into->intermittent += c->intermittent;
    vt_hist_merge(&into->lat, &c->lat);
    vt_hist_merge(&into->tput, &c->tput);
    vt_rset_merge(&into->rs, &c->rs);
}

/* The buckets a batch touches, found by key through an open-addressing hash table: O(1) per
 * measurement however many buckets the batch spans (a rebuild flushes every 20,000). */
typedef struct cellset {
    vt_cell *c;
    size_t n, cap;
    size_t *slots; /* index + 1; 0 empty */
    size_t nslots;
} cellset;

static uint64_t key_hash(const char *hour, const char *cc, const char *asn, const char *target,
                         const char *test)
{
    const char *parts[5] = {hour, cc, asn, target, test};
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 5; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL; /* separator: ("ab","c") != ("a","bc") */
    }
    return h ^ (h >> 29);
}

static void cells_reset(cellset *cs)
{
    cs->n = 0;
    if (cs->slots) memset(cs->slots, 0, cs->nslots * sizeof(*cs->slots));
}

static void cells_free(cellset *cs)
{
    free(cs->c);
    free(cs->slots);
    memset(cs, 0, sizeof(*cs));
}

/* The coarser sets a flush fills, and the batch's own hourly set, kept with the store between
 * batches (s->rollup_scratch): a bucket is 1.7 KB, a batch of 500 touches ~1,200 over the five
 * tables, and growing those arrays afresh every batch (realloc copies, new pages faulted in) was
 * a tenth of SQLite ingest's CPU. Sets that grew past SCRATCH_KEEP cells (a rebuild) are freed
 * after use. */
typedef struct scratch {
    cellset hour, day, cch, ccd, cca;
    cellset seen; /* the episode series a flush marks dirty, once each */
} scratch;
#define SCRATCH_KEEP 8192

static scratch *scratch_of(vt_store *s, char *err, size_t errlen)
{
    if (!s->rollup_scratch) s->rollup_scratch = calloc(1, sizeof(scratch));
    if (!s->rollup_scratch) snprintf(err, errlen, "out of memory");
    return s->rollup_scratch;
}

static void cells_done(cellset *cs)
{
    if (cs->cap > SCRATCH_KEEP)
        cells_free(cs);
    else
        cells_reset(cs);
}

void vt_rollup_forget(vt_store *s)
{
    scratch *sc = s->rollup_scratch;
    if (!sc) return;
    cells_free(&sc->hour);
    cells_free(&sc->day);
    cells_free(&sc->cch);
    cells_free(&sc->ccd);
    cells_free(&sc->cca);
    cells_free(&sc->seen);
    free(sc);
    s->rollup_scratch = NULL;
}

/* The bucket with this key, created empty (labels from the arguments) when new; NULL on OOM. */
static vt_cell *cells_get(cellset *cs, const char *hour, const char *cc, const char *asn,
                          const char *target, const char *test)
{
    if ((cs->n + 1) * 2 > cs->nslots) {
        size_t ns = cs->nslots ? cs->nslots * 2 : 256;
        size_t *sl = calloc(ns, sizeof(*sl));
        if (!sl) return NULL;
        for (size_t i = 0; i < cs->n; i++) {
            const vt_cell *c = &cs->c[i];
            size_t h = (size_t)key_hash(c->hour, c->cc, c->asn, c->target, c->test) & (ns - 1);
            while (sl[h])
                h = (h + 1) & (ns - 1);
            sl[h] = i + 1;
        }
        free(cs->slots);
        cs->slots = sl;
        cs->nslots = ns;
    }
    size_t h = (size_t)key_hash(hour, cc, asn, target, test) & (cs->nslots - 1);
    while (cs->slots[h]) {
        vt_cell *c = &cs->c[cs->slots[h] - 1];
        if (strcmp(c->hour, hour) == 0 && strcmp(c->target, target) == 0 &&
            strcmp(c->asn, asn) == 0 && strcmp(c->cc, cc) == 0 && strcmp(c->test, test) == 0)
            return c;
        h = (h + 1) & (cs->nslots - 1);
    }
    vt_cell *nc = grow(cs->c, cs->n, &cs->cap, sizeof(*nc), 64);
    if (!nc) return NULL;
    cs->c = nc;
    vt_cell *c = &cs->c[cs->n];
    memset(c, 0, sizeof(*c));
    cpy(c->hour, sizeof(c->hour), hour);
    cpy(c->cc, sizeof(c->cc), cc);
    cpy(c->asn, sizeof(c->asn), asn);
    cpy(c->target, sizeof(c->target), target);
    cpy(c->test, sizeof(c->test), test);
    cs->slots[h] = ++cs->n;
    return c;
}

static int cells_add(cellset *cs, const vt_obs *o)
{
    vt_cell *c = cells_get(cs, o->hour, o->cc, o->asn, o->target, o->test);
    if (!c) return -1;
    if (c->n == 0) { /* the batch's first labels, as the stored bucket's are replaced by them */
        memcpy(c->platform, o->platform, sizeof(c->platform));
        memcpy(c->category, o->category, sizeof(c->category));
    }
    c->n++;
    c->v[o->verdict]++;
    if (o->confirmed) c->confirmed++;
    if (o->intermittent) c->intermittent++;
    if (o->latency_ms >= 0) vt_hist_add(&c->lat, VT_HIST_LATENCY, o->latency_ms);
    if (o->throughput_bps > 0) vt_hist_add(&c->tput, VT_HIST_THROUGHPUT, o->throughput_bps);
    vt_rset_add(&c->rs, o->report, 1, vt_verdict_is_anomaly(o->verdict) ? 1 : 0);
    return 0;
}

/* Merges a whole bucket into the bucket of cs with the given key (a coarser one: the day, ""
 * for the network in the per-country tables, and "" for the target too when all is set, whose
 * labels are then "" as well). */
static int cells_add_cell(cellset *cs, const vt_cell *x, const char *hour, const char *asn, int all)
{
    vt_cell *c = cells_get(cs, hour, x->cc, asn, all ? "" : x->target, all ? "" : x->test);
    if (!c) return -1;
    if (!all) {
        memcpy(c->platform, x->platform, sizeof(c->platform));
        memcpy(c->category, x->category, sizeof(c->category));
    }
    cell_merge(c, x);
    return 0;
}

/* A bucket's upsert: its columns, and what a conflict updates. */
static const char *const upsert_cols =
    " (hour, probe_cc, probe_asn, target_id, test_name, platform, category, n, n_ok, n_dns, "
    "n_tcp, n_tls, n_http, n_throttled, n_down, n_offline, n_inconclusive, n_failure, "
    "n_confirmed, lat_hist, tput_hist, reports, probes, share_pm, n_intermittent) ";
static const char *const upsert_conflict =
    " ON CONFLICT (hour, probe_cc, probe_asn, target_id, test_name) DO UPDATE SET platform = "
    "excluded.platform, category = excluded.category, n = excluded.n, n_ok = excluded.n_ok, "
    "n_dns = excluded.n_dns, n_tcp = excluded.n_tcp, n_tls = excluded.n_tls, n_http = "
    "excluded.n_http, n_throttled = excluded.n_throttled, n_down = excluded.n_down, n_offline = "
    "excluded.n_offline, n_inconclusive = excluded.n_inconclusive, n_failure = "
    "excluded.n_failure, n_confirmed = excluded.n_confirmed, lat_hist = excluded.lat_hist, "
    "tput_hist = excluded.tput_hist, reports = excluded.reports, probes = excluded.probes, "
    "share_pm = excluded.share_pm, n_intermittent = excluded.n_intermittent";

/* The texts of a bucket's numbers, histograms and sketch, for its upsert's parameters. */
typedef struct cell_text {
    char nums[VT_V_COUNT + 2][24], lat[1024], tput[1024], rs[2048], pr[24], sh[24], it[24];
} cell_text;

/* What a bucket stores besides its sketch: the distinct runs, and the per-run anomaly share per
 * mille (-1: none), rounded as "%.0f" prints them. The upserts on both stores and SQLite's merge
 * functions store these. */
static void rset_stored(const vt_rset *rs, long long *probes, long long *share_pm)
{
    double share = vt_rset_share(rs);
    *probes = (long long)nearbyint(vt_rset_distinct(rs));
    *share_pm = share < 0 ? -1 : (long long)nearbyint(share * 1000.0);
}

/* Fills p[CELL_COLS] (in upsert_cols' order) from c, the texts in t. */
static void cell_params(const vt_cell *c, cell_text *t, const char **p)
{
    snprintf(t->nums[0], 24, "%lld", (long long)c->n);
    for (int v = 0; v < VT_V_COUNT; v++)
        snprintf(t->nums[1 + v], 24, "%lld", (long long)c->v[v]);
    snprintf(t->nums[VT_V_COUNT + 1], 24, "%lld", (long long)c->confirmed);
    vt_hist_encode(&c->lat, t->lat, sizeof(t->lat));
    vt_hist_encode(&c->tput, t->tput, sizeof(t->tput));
    vt_rset_encode(&c->rs, t->rs, sizeof(t->rs));
    long long probes, share_pm;
    rset_stored(&c->rs, &probes, &share_pm);
    snprintf(t->pr, sizeof(t->pr), "%lld", probes);
    snprintf(t->sh, sizeof(t->sh), "%lld", share_pm);
    snprintf(t->it, sizeof(t->it), "%lld", (long long)c->intermittent);
    p[0] = c->hour;
    p[1] = c->cc;
    p[2] = c->asn;
    p[3] = c->target;
    p[4] = c->test;
    p[5] = c->platform;
    p[6] = c->category;
    for (int j = 0; j < VT_V_COUNT + 2; j++)
        p[7 + j] = t->nums[j];
    p[19] = t->lat;
    p[20] = t->tput;
    p[21] = t->rs;
    p[22] = t->pr;
    p[23] = t->sh;
    p[24] = t->it;
}

/* ---- PostgreSQL: ingest's statements, prepared once per server session ---- */

/* A round trip and a statement's parse and plan cost more than the work, so each rollup table is
 * read with one statement and written with one upsert per transaction, whatever the number of
 * buckets: the keys and values travel as text arrays (unnest), so the statements have a fixed
 * text and are prepared once per connection (the dirty marks likewise). Before this, a chunk of
 * 200 buckets was a statement of up to 4,800 parameters, parsed and planned every time. */
static const char *const rollup_tables[] = {"rollup_hourly", "rollup_daily", "rollup_cc_hourly",
                                            "rollup_cc_daily", "rollup_cc_all_daily"};
#define PG_NTABLES 5
/* select and upsert per table, the dirty marks, then the large sets' lookup per table */
#define PG_NSTMTS (3 * PG_NTABLES + 1)
#define PG_PROBE_STMT(table) (2 * PG_NTABLES + 1 + (table))
/* A lookup of more keys than this probes the primary key once per key (PG_PROBE_STMT). */
#define PG_PROBE_MIN_KEYS 2000

/* Connections whose session has the statements, by backend pid (a reset connection is a new
 * session). The ingest threads store on PostgreSQL concurrently: pg_prep_mu guards the table. */
#define PG_PREP_CONNS 16
static struct {
    PGconn *c;
    int pid;
} pg_prep[PG_PREP_CONNS];
static unsigned pg_prep_next;
static pthread_mutex_t pg_prep_mu = PTHREAD_MUTEX_INITIALIZER;

static void pg_stmt_name(char *out, size_t n, int k)
{
    snprintf(out, n, "vt_rollup_%d", k);
}

static int pg_stmt_sql(char *out, size_t n, int k)
{
    if (k == 2 * PG_NTABLES)
        return snprintf(out, n,
                        "INSERT INTO episodes_dirty (probe_cc, probe_asn, target_id, test_name, "
                        "whole) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
                        "$4::text[], $5::bigint[]) ON CONFLICT DO NOTHING");
    /* A large set of keys (a rebuild flushes 20,000 buckets at a time): one primary-key probe
     * per key, whatever the statistics say. The plain join let the planner merge on
     * (probe_cc, hour) by the rollup_hourly_cc_hour index, which compares every key with every
     * bucket of that country and hour: a rebuild's lookup of 12,000 keys in one hour ran 17 s
     * (144 million comparisons). LIMIT 1 keeps the subquery from being flattened back into
     * such a join; a key has at most one bucket. Ingest's few hundred keys keep the plain join,
     * the plan every ingest round of docs/performance.md measured. */
    if (k > 2 * PG_NTABLES)
        return snprintf(out, n,
                        "SELECT b.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                        "$5::text[]) AS k(k_hour, k_cc, k_asn, k_target, k_test) CROSS JOIN "
                        "LATERAL (SELECT %s FROM %s WHERE hour = k_hour AND probe_cc = k_cc AND "
                        "probe_asn = k_asn AND target_id = k_target AND test_name = k_test "
                        "LIMIT 1) AS b",
                        vt_cell_select, rollup_tables[k - 2 * PG_NTABLES - 1]);
    const char *table = rollup_tables[k / 2];
    if (k % 2 == 0)
        return snprintf(out, n,
                        "SELECT %s FROM %s JOIN unnest($1::text[], $2::text[], $3::text[], "
                        "$4::text[], $5::text[]) AS k(k_hour, k_cc, k_asn, k_target, k_test) ON "
                        "hour = k_hour AND probe_cc = k_cc AND probe_asn = k_asn AND target_id = "
                        "k_target AND test_name = k_test",
                        vt_cell_select, table);
    /* upsert_cols' order: 7 texts, the counters, 3 texts, 3 numbers */
    return snprintf(out, n,
                    "INSERT INTO %s%sSELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
                    "$4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], "
                    "$10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], "
                    "$15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], "
                    "$20::text[], $21::text[], $22::text[], $23::bigint[], $24::bigint[], "
                    "$25::bigint[])%s",
                    table, upsert_cols, upsert_conflict);
}

static int pg_prep_slot(PGconn *c)
{
    for (int i = 0; i < PG_PREP_CONNS; i++)
        if (pg_prep[i].c == c) return i;
    return -1;
}

/* Prepares the statements on this connection's session unless it has them. */
static int pg_prepared(PGconn *c)
{
    pthread_mutex_lock(&pg_prep_mu);
    int slot = pg_prep_slot(c);
    int ok = slot >= 0 && pg_prep[slot].pid == PQbackendPID(c);
    pthread_mutex_unlock(&pg_prep_mu);
    return ok;
}

static void pg_prep_set(PGconn *c, int pid)
{
    pthread_mutex_lock(&pg_prep_mu);
    int slot = pg_prep_slot(c);
    if (slot < 0 && pid) slot = (int)(pg_prep_next++ % PG_PREP_CONNS);
    if (slot >= 0) {
        pg_prep[slot].c = c;
        pg_prep[slot].pid = pid;
    }
    pthread_mutex_unlock(&pg_prep_mu);
}

static int pg_prepare(PGconn *c, char *err, size_t errlen)
{
    if (pg_prepared(c)) return 0;
    char name[32], sql[2400];
    for (int k = 0; k < PG_NSTMTS; k++) {
        pg_stmt_name(name, sizeof(name), k);
        pg_stmt_sql(sql, sizeof(sql), k);
        PGresult *r = PQprepare(c, name, sql, 0, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) { /* already prepared on this session is fine */
            const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            ok = code && strcmp(code, "42P05") == 0;
            if (!ok) snprintf(err, errlen, "postgresql: prepare: %s", PQerrorMessage(c));
        }
        PQclear(r);
        if (!ok) return -1;
    }
    pg_prep_set(c, PQbackendPID(c));
    return 0;
}

static int pg_run(vt_store *s, int k, int np, const char *const *v, vt_db_row_fn fn, void *arg,
                  char *err, size_t errlen)
{
    PGconn *c = vt_store_native(s);
    if (pg_prepare(c, err, errlen) < 0) return -1;
    char name[32];
    pg_stmt_name(name, sizeof(name), k);
    PGresult *r = PQexecPrepared(c, name, np, v, NULL, NULL, 0);
    int st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (code && strcmp(code, "26000") == 0) /* the session lost them: prepare again */
            pg_prep_set(c, 0);
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int nr = PQntuples(r), nc = PQnfields(r);
    const char *cols[64];
    if (nc > 64) nc = 64;
    for (int i = 0; i < nr && fn; i++) {
        for (int j = 0; j < nc; j++)
            cols[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
        if (fn(arg, nc, cols)) break;
    }
    PQclear(r);
    return 0;
}

/* One statement for pg_run_all. */
typedef struct pg_q {
    int k, np;
    const char *v[CELL_COLS];
    vt_db_row_fn fn;
    void *arg;
} pg_q;

static void pg_rows(PGresult *r, vt_db_row_fn fn, void *arg)
{
    int nr = PQntuples(r), nc = PQnfields(r);
    const char *cols[64];
    if (nc > 64) nc = 64;
    for (int i = 0; i < nr && fn; i++) {
        for (int j = 0; j < nc; j++)
            cols[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
        if (fn(arg, nc, cols)) break;
    }
}

/* The statements in order in one round trip (libpq's pipeline mode) instead of one each: the
 * transaction's rollup statements run while the ingest threads wait for the rollup lock, so a
 * round trip (two context switches on a busy machine) costs every batch queued behind it.
 * The caller keeps the lookups, whose answers are large, small enough for the socket buffers
 * (PG_PIPE_MAX_BYTES), a margin against a server blocked writing answers while the blocking
 * client is still writing the rest of the pipeline (libpq reads while a write would block, but
 * the margin does not rely on it). */
#define PG_PIPE_MAX_BYTES (96 * 1024)

static int pg_run_all(vt_store *s, pg_q *q, int nq, char *err, size_t errlen)
{
    PGconn *c = vt_store_native(s);
    if (nq == 0) return 0;
    if (pg_prepare(c, err, errlen) < 0) return -1;
    if (!PQenterPipelineMode(c)) {
        snprintf(err, errlen, "postgresql: pipeline: %s", PQerrorMessage(c));
        return -1;
    }
    int rc = 0;
    char name[32];
    for (int i = 0; i < nq && rc == 0; i++) {
        pg_stmt_name(name, sizeof(name), q[i].k);
        if (!PQsendQueryPrepared(c, name, q[i].np, q[i].v, NULL, NULL, 0)) rc = -1;
    }
    if (!PQpipelineSync(c)) rc = -1;
    if (rc < 0) snprintf(err, errlen, "postgresql: %s", PQerrorMessage(c));
    /* Every statement's results end with NULL; after an error the rest come back aborted. */
    for (int i = 0; i < nq && PQstatus(c) == CONNECTION_OK; i++) {
        PGresult *r;
        while ((r = PQgetResult(c)) != NULL) {
            int st = PQresultStatus(r);
            if (st == PGRES_TUPLES_OK && rc == 0) {
                pg_rows(r, q[i].fn, q[i].arg);
            } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                if (code && strcmp(code, "26000") == 0) pg_prep_set(c, 0);
                if (rc == 0 && st != PGRES_PIPELINE_ABORTED)
                    snprintf(err, errlen, "postgresql: %s", PQresultErrorMessage(r));
                rc = -1;
            }
            PQclear(r);
        }
    }
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQgetResult(c) : NULL;
    if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        if (rc == 0) snprintf(err, errlen, "postgresql: pipeline: %s", PQerrorMessage(c));
        rc = -1;
    }
    PQclear(r);
    if (!PQexitPipelineMode(c)) {
        /* Results left over (a broken exchange): read them so that the connection leaves
         * pipeline mode and the caller's ROLLBACK can run. */
        for (int k = 0; k < 2 * nq + 4 && PQstatus(c) == CONNECTION_OK; k++)
            PQclear(PQgetResult(c));
        if (!PQexitPipelineMode(c) && rc == 0)
            snprintf(err, errlen, "postgresql: pipeline: %s", PQerrorMessage(c));
        rc = -1;
    }
    return rc;
}

/* A text[] literal under construction: {"a","b"} with " and \ escaped. */
typedef struct pgarr {
    vt_strbuf b;
    int any;
} pgarr;

static void pgarr_start(pgarr *a)
{
    a->b.n = 0;
    a->any = 0;
    vt_strbuf_putc(&a->b, '{');
}

static void pgarr_add(pgarr *a, const char *v)
{
    vt_strbuf_put(&a->b, a->any ? ",\"" : "\"", a->any ? 2 : 1);
    a->any = 1;
    for (const char *r = v; *r;) {
        size_t l = strcspn(r, "\"\\");
        vt_strbuf_put(&a->b, r, l);
        r += l;
        if (!*r) break;
        char esc[2] = {'\\', *r++};
        vt_strbuf_put(&a->b, esc, 2);
    }
    vt_strbuf_put(&a->b, "\"", 1);
}

/* The bucket of cs with this key, or NULL. */
static vt_cell *cells_find(const cellset *cs, const char *hour, const char *cc, const char *asn,
                           const char *target, const char *test)
{
    if (!cs->nslots) return NULL;
    size_t h = (size_t)key_hash(hour, cc, asn, target, test) & (cs->nslots - 1);
    while (cs->slots[h]) {
        vt_cell *c = &cs->c[cs->slots[h] - 1];
        if (strcmp(c->hour, hour) == 0 && strcmp(c->target, target) == 0 &&
            strcmp(c->asn, asn) == 0 && strcmp(c->cc, cc) == 0 && strcmp(c->test, test) == 0)
            return c;
        h = (h + 1) & (cs->nslots - 1);
    }
    return NULL;
}

/* A stored bucket merged into the batch's bucket of the same key. */
typedef struct pg_merge {
    cellset *cs;
    size_t found;
} pg_merge;

static int pg_merge_row(void *arg, int nc, const char *const *cols)
{
    pg_merge *m = arg;
    vt_cell old;
    vt_cell_from_cols(&old, nc, cols);
    vt_cell *c = cells_find(m->cs, old.hour, old.cc, old.asn, old.target, old.test);
    if (!c) return 0;
    m->found++;
    if (old.n < 0) old.n = 0;
    /* keep the newest platform/category labels */
    memcpy(old.platform, c->platform, sizeof(c->platform));
    memcpy(old.category, c->category, sizeof(c->category));
    cell_merge(&old, c);
    *c = old;
    return 0;
}

/* Statistics for the planner. The lookup above has a good plan (the primary key) only once the
 * table has statistics: without them (a new database), the planner estimates one row for every
 * index and takes the smallest, (probe_cc, hour), filtering hundreds of rows per bucket (perf
 * and EXPLAIN: the SELECT was most of the rollups' time), and the plan prepared then is kept.
 * Autovacuum analyses a table only after a minute or more, so this process analyses each table
 * once, after it has added 1,000 buckets to it, unless the table's statistics already count at
 * least half as many rows. ANALYZE invalidates the prepared plans. It runs after the batch's
 * commit (vt_rollup_maintain, from the ingest thread's vt_store_upkeep), not inside it:
 * there it held the rollup lock, and every other storing thread, for the five tables' ANALYZE
 * (the slowest batches after start-up waited for it). */
#define PG_ANALYZE_AFTER 1000
static struct {
    size_t added;
    int done, pending;
} pg_growth[PG_NTABLES];

static int reltuples_row(void *arg, int nc, const char *const *cols)
{
    *(double *)arg = nc > 0 && cols[0] ? strtod(cols[0], NULL) : -1;
    return 1;
}

static void pg_note_growth(int table, size_t added)
{
    pthread_mutex_lock(&pg_prep_mu);
    if (!pg_growth[table].done && (pg_growth[table].added += added) >= PG_ANALYZE_AFTER)
        pg_growth[table].done = pg_growth[table].pending = 1;
    pthread_mutex_unlock(&pg_prep_mu);
}

int vt_rollup_maintain(vt_store *s, char *err, size_t errlen)
{
    if (!is_pg(s)) return 0;
    for (int k = 0; k < PG_NTABLES; k++) {
        pthread_mutex_lock(&pg_prep_mu);
        int due = pg_growth[k].pending;
        pg_growth[k].pending = 0;
        pthread_mutex_unlock(&pg_prep_mu);
        if (!due) continue;
        const char *p[1] = {rollup_tables[k]};
        double tuples = -1;
        if (vt_db_query(s, "SELECT reltuples FROM pg_class WHERE oid = CAST(? AS regclass)", p, 1,
                        reltuples_row, &tuples, err, errlen) < 0)
            return -1;
        if (tuples >= PG_ANALYZE_AFTER / 2) continue;
        char sql[64];
        snprintf(sql, sizeof(sql), "ANALYZE %s", rollup_tables[k]);
        if (vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    }
    return 0;
}

/* The key arrays of cs's buckets (a[5]) or their upsert's value arrays (a[CELL_COLS], t for the
 * texts); v[] points at them. Returns the bytes, or 0 when out of memory. */
static size_t pg_key_arrays(const cellset *cs, pgarr *a, const char **v)
{
    size_t bytes = 0;
    int oom = 0;
    for (int j = 0; j < 5; j++)
        pgarr_start(&a[j]);
    for (size_t i = 0; i < cs->n; i++) {
        const vt_cell *c = &cs->c[i];
        const char *key[5] = {c->hour, c->cc, c->asn, c->target, c->test};
        for (int j = 0; j < 5; j++)
            pgarr_add(&a[j], key[j]);
    }
    for (int j = 0; j < 5; j++) {
        vt_strbuf_putc(&a[j].b, '}');
        oom |= a[j].b.oom;
        v[j] = a[j].b.p;
        bytes += a[j].b.n;
    }
    return oom ? 0 : bytes;
}

static size_t pg_value_arrays(const cellset *cs, pgarr *a, const char **v, cell_text *t)
{
    size_t bytes = 0;
    int oom = 0;
    for (int j = 0; j < CELL_COLS; j++)
        pgarr_start(&a[j]);
    for (size_t i = 0; i < cs->n; i++) {
        const char *p[CELL_COLS];
        cell_params(&cs->c[i], t, p);
        for (int j = 0; j < CELL_COLS; j++)
            pgarr_add(&a[j], p[j]);
    }
    for (int j = 0; j < CELL_COLS; j++) {
        vt_strbuf_putc(&a[j].b, '}');
        oom |= a[j].b.oom;
        v[j] = a[j].b.p;
        bytes += a[j].b.n;
    }
    return oom ? 0 : bytes;
}

/* Bucket c's dirty mark for the episode refresh, once per flush (seen holds those made): p[5]
 * gets its columns (cc, asn, target, test, whole). A canary makes the whole network dirty (its
 * outages and every target's outage hours depend on it). 1 when new, 0 when made already, -1
 * when out of memory. */
static int dirty_mark(cellset *seen, const vt_cell *c, const char *p[5])
{
    int whole = strcmp(c->platform, "canary") == 0;
    const char *t = whole ? "" : c->target, *test = whole ? "" : c->test;
    vt_cell *d = cells_get(seen, whole ? "w" : "", c->cc, c->asn, t, test);
    if (!d) return -1;
    if (d->n++) return 0;
    p[0] = c->cc;
    p[1] = c->asn;
    p[2] = t;
    p[3] = test;
    p[4] = whole ? "1" : "0";
    return 1;
}

/* The dirty marks of cs's buckets (dirty_mark) as the arrays a[5]; *n of them. */
static int pg_dirty_arrays(const cellset *cs, cellset *seen, pgarr *a, const char **v, size_t *n)
{
    int oom = 0;
    cells_reset(seen);
    for (int j = 0; j < 5; j++)
        pgarr_start(&a[j]);
    for (size_t i = 0; i < cs->n && !oom; i++) {
        const char *p[5];
        int k = dirty_mark(seen, &cs->c[i], p);
        oom = k < 0;
        for (int j = 0; j < 5 && k > 0; j++)
            pgarr_add(&a[j], p[j]);
    }
    *n = seen->n;
    cells_done(seen);
    for (int j = 0; j < 5; j++) {
        vt_strbuf_putc(&a[j].b, '}');
        oom |= a[j].b.oom;
        v[j] = a[j].b.p;
    }
    return oom ? -1 : 0;
}

static void pgarr_free(pgarr *a, int n)
{
    for (int j = 0; j < n; j++)
        free(a[j].b.p);
}

/* PostgreSQL: one table's buckets (the rebuild). */
static int cells_flush_table_pg(vt_store *s, cellset *cs, int table, char *err, size_t errlen)
{
    if (cs->n == 0) return 0;
    pg_merge m = {cs, 0};
    pgarr a[CELL_COLS];
    const char *v[CELL_COLS];
    memset(a, 0, sizeof(a));
    int rc = -1;
    cell_text *t = malloc(sizeof(*t));
    if (!t || !pg_key_arrays(cs, a, v)) {
        snprintf(err, errlen, "out of memory");
    } else if (pg_run(s, cs->n > PG_PROBE_MIN_KEYS ? PG_PROBE_STMT(table) : 2 * table, 5, v,
                      pg_merge_row, &m, err, errlen) == 0) {
        if (!pg_value_arrays(cs, a, v, t))
            snprintf(err, errlen, "out of memory");
        else if (pg_run(s, 2 * table + 1, CELL_COLS, v, NULL, NULL, err, errlen) == 0) {
            pg_note_growth(table, cs->n - m.found);
            rc = vt_rollup_maintain(s, err, errlen); /* a rebuild: its next lookups need it */
        }
    }
    free(t);
    pgarr_free(a, CELL_COLS);
    return rc;
}

/* PostgreSQL at ingest: the five tables' lookups in one round trip (or one each when their keys
 * are too many to pipeline), then their upserts and the dirty marks in another. */
static int cells_flush_all_pg(vt_store *s, cellset **sets, const cellset *dirty, char *err,
                              size_t errlen)
{
    pgarr keys[PG_NTABLES][5], vals[PG_NTABLES][CELL_COLS], dk[5];
    pg_merge m[PG_NTABLES];
    pg_q *q = calloc(PG_NTABLES + 1, sizeof(*q));
    cell_text *t = malloc(sizeof(*t));
    memset(keys, 0, sizeof(keys));
    memset(vals, 0, sizeof(vals));
    memset(dk, 0, sizeof(dk));
    int rc = 0, nq = 0;
    size_t bytes = 0, nd = 0;
    if (!q || !t) rc = -1;
    for (int k = 0; k < PG_NTABLES; k++)
        m[k] = (pg_merge){sets[k], 0};
    for (int k = 0; k < PG_NTABLES && rc == 0; k++) {
        if (!sets[k]->n) continue;
        size_t b = pg_key_arrays(sets[k], keys[k], q[nq].v);
        if (!b) rc = -1;
        bytes += b;
        q[nq].k = sets[k]->n > PG_PROBE_MIN_KEYS ? PG_PROBE_STMT(k) : 2 * k;
        q[nq].np = 5;
        q[nq].fn = pg_merge_row;
        q[nq++].arg = &m[k];
    }
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
    } else if (bytes <= PG_PIPE_MAX_BYTES) {
        rc = pg_run_all(s, q, nq, err, errlen);
    } else {
        for (int i = 0; i < nq && rc == 0; i++)
            rc = pg_run(s, q[i].k, q[i].np, q[i].v, q[i].fn, q[i].arg, err, errlen);
    }
    /* The answers to the upserts and marks are a few bytes: any size pipelines. */
    nq = 0;
    for (int k = 0; k < PG_NTABLES && rc == 0; k++) {
        if (!sets[k]->n) continue;
        if (!pg_value_arrays(sets[k], vals[k], q[nq].v, t)) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        q[nq].k = 2 * k + 1;
        q[nq].np = CELL_COLS;
        q[nq].fn = NULL;
        q[nq++].arg = NULL;
    }
    if (rc == 0 && dirty) {
        scratch *sc = scratch_of(s, err, errlen);
        if (!sc) {
            rc = -1;
        } else if (pg_dirty_arrays(dirty, &sc->seen, dk, q[nq].v, &nd) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        if (nd) {
            q[nq].k = 2 * PG_NTABLES;
            q[nq].np = 5;
            q[nq].fn = NULL;
            q[nq++].arg = NULL;
        }
    }
    if (rc == 0) rc = pg_run_all(s, q, nq, err, errlen);
    for (int k = 0; k < PG_NTABLES && rc == 0; k++)
        pg_note_growth(k, sets[k]->n - m[k].found);
    for (int k = 0; k < PG_NTABLES; k++) {
        pgarr_free(keys[k], 5);
        pgarr_free(vals[k], CELL_COLS);
    }
    pgarr_free(dk, 5);
    free(q);
    free(t);
    return rc;
}

/* SQLite merges a bucket into its stored row inside the upsert, with these functions over the
 * stored texts (registered on every store connection, vt_rollup_sqlite_functions): one statement
 * per bucket instead of a SELECT and an upsert, and no read-modify-write across statements. */
static void sql_hist_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    vt_hist a, b;
    char out[1024];
    vt_hist_decode(&a, (const char *)sqlite3_value_text(argv[0]));
    vt_hist_decode(&b, (const char *)sqlite3_value_text(argv[1]));
    vt_hist_merge(&a, &b);
    vt_hist_encode(&a, out, sizeof(out));
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* vt_rset_merge(a, b): the merged sketch's text; vt_rset_probes(a, b) and vt_rset_share(a, b):
 * what the merged bucket stores besides it (rset_stored). */
static void sql_rset(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    vt_rset a, b;
    vt_rset_decode(&a, (const char *)sqlite3_value_text(argv[0]));
    vt_rset_decode(&b, (const char *)sqlite3_value_text(argv[1]));
    vt_rset_merge(&a, &b);
    int what = (int)(intptr_t)sqlite3_user_data(ctx);
    if (what == 0) {
        char out[2048];
        vt_rset_encode(&a, out, sizeof(out));
        sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
        return;
    }
    long long probes, share_pm;
    rset_stored(&a, &probes, &share_pm);
    sqlite3_result_int64(ctx, what == 1 ? probes : share_pm);
}

int vt_rollup_sqlite_functions(void *db)
{
    const int f = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    if (sqlite3_create_function(db, "vt_hist_merge", 2, f, NULL, sql_hist_merge, NULL, NULL) ||
        sqlite3_create_function(db, "vt_rset_merge", 2, f, (void *)0, sql_rset, NULL, NULL) ||
        sqlite3_create_function(db, "vt_rset_probes", 2, f, (void *)1, sql_rset, NULL, NULL) ||
        sqlite3_create_function(db, "vt_rset_share", 2, f, (void *)2, sql_rset, NULL, NULL))
        return -1;
    return 0;
}

/* What a conflict does on SQLite: add the counters, merge histograms and sketch, keep the
 * newest labels (as the merge in C on PostgreSQL). */
static const char *const sq_upsert_merge =
    " ON CONFLICT (hour, probe_cc, probe_asn, target_id, test_name) DO UPDATE SET platform = "
    "excluded.platform, category = excluded.category, n = n + excluded.n, n_ok = n_ok + "
    "excluded.n_ok, n_dns = n_dns + excluded.n_dns, n_tcp = n_tcp + excluded.n_tcp, n_tls = "
    "n_tls + excluded.n_tls, n_http = n_http + excluded.n_http, n_throttled = n_throttled + "
    "excluded.n_throttled, n_down = n_down + excluded.n_down, n_offline = n_offline + "
    "excluded.n_offline, n_inconclusive = n_inconclusive + excluded.n_inconclusive, n_failure = "
    "n_failure + excluded.n_failure, n_confirmed = n_confirmed + excluded.n_confirmed, "
    "n_intermittent = n_intermittent + excluded.n_intermittent, lat_hist "
    "= vt_hist_merge(lat_hist, excluded.lat_hist), tput_hist = vt_hist_merge(tput_hist, "
    "excluded.tput_hist), reports = vt_rset_merge(reports, excluded.reports), probes = "
    "vt_rset_probes(reports, excluded.reports), share_pm = vt_rset_share(reports, "
    "excluded.reports)";

static int cells_flush_table(vt_store *s, cellset *cs, const char *table, char *err, size_t errlen)
{
    if (is_pg(s)) {
        for (int k = 0; k < PG_NTABLES; k++)
            if (strcmp(table, rollup_tables[k]) == 0)
                return cells_flush_table_pg(s, cs, k, err, errlen);
        snprintf(err, errlen, "no rollup table %s", table);
        return -1;
    }
    if (!cs->n) return 0;
    char upsert[2000];
    snprintf(upsert, sizeof(upsert),
             "INSERT INTO %s%sVALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)%s", table,
             upsert_cols, sq_upsert_merge);
    /* One statement for the table's buckets, numbers bound as integers (vt_db_query would
     * look the statement up and bind the texts cell_params prints, per bucket). */
    sqlite3 *db = vt_store_native(s);
    int cached;
    sqlite3_stmt *st = stmt_get(db, upsert, &cached);
    if (!st) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    char lat[1024], tput[1024], rs[2048];
    for (size_t i = 0; i < cs->n && rc == 0; i++) {
        const vt_cell *c = &cs->c[i];
        const char *txt[7] = {c->hour, c->cc, c->asn, c->target, c->test, c->platform, c->category};
        for (int j = 0; j < 7; j++)
            sqlite3_bind_text(st, j + 1, txt[j], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, c->n);
        for (int v = 0; v < VT_V_COUNT; v++)
            sqlite3_bind_int64(st, 9 + v, c->v[v]);
        sqlite3_bind_int64(st, 9 + VT_V_COUNT, c->confirmed);
        vt_hist_encode(&c->lat, lat, sizeof(lat));
        vt_hist_encode(&c->tput, tput, sizeof(tput));
        vt_rset_encode(&c->rs, rs, sizeof(rs));
        sqlite3_bind_text(st, 20, lat, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 21, tput, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 22, rs, -1, SQLITE_STATIC);
        long long probes, share_pm;
        rset_stored(&c->rs, &probes, &share_pm);
        sqlite3_bind_int64(st, 23, probes);
        sqlite3_bind_int64(st, 24, share_pm);
        sqlite3_bind_int64(st, 25, c->intermittent);
        if (sqlite3_step(st) != SQLITE_DONE) {
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
            rc = -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_clear_bindings(st);
    if (!cached) sqlite3_finalize(st);
    return rc;
}

/* Marks the touched series for the episode refresh (vt_episodes_refresh, dirty_mark). */
static int mark_dirty(vt_store *s, const cellset *cs, char *err, size_t errlen)
{
    static const char *sql = "INSERT INTO episodes_dirty (probe_cc, probe_asn, target_id, "
                             "test_name, whole) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING";
    scratch *sc = scratch_of(s, err, errlen);
    if (!sc) return -1;
    cellset *seen = &sc->seen;
    int rc = 0;
    cells_reset(seen);
    for (size_t i = 0; i < cs->n && rc == 0; i++) {
        const char *p[5];
        int k = dirty_mark(seen, &cs->c[i], p);
        if (k < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else if (k > 0 && vt_db_query(s, sql, p, 5, NULL, NULL, err, errlen) < 0) {
            rc = -1;
        }
    }
    cells_done(seen);
    return rc;
}

/* Flushes the hourly buckets, then the same merged per day, per country (all networks of a
 * country in one bucket: the answer for queries without a network) and per country and day. */
static int cells_flush_opt(vt_store *s, cellset *cs, int dirty, char *err, size_t errlen)
{
    scratch *sc = scratch_of(s, err, errlen);
    if (!sc) return -1;
    cellset *day = &sc->day, *cch = &sc->cch, *ccd = &sc->ccd, *cca = &sc->cca;
    int rc = 0;
    for (size_t i = 0; i < cs->n && rc == 0; i++) {
        const vt_cell *c = &cs->c[i];
        char d[20];
        snprintf(d, sizeof(d), "%.10s 00:00:00", c->hour);
        if (cells_add_cell(day, c, d, c->asn, 0) < 0 ||
            cells_add_cell(cch, c, c->hour, "", 0) < 0 || cells_add_cell(ccd, c, d, "", 0) < 0 ||
            cells_add_cell(cca, c, d, "", 1) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && is_pg(s)) {
        cellset *sets[PG_NTABLES] = {cs, day, cch, ccd, cca};
        rc = cells_flush_all_pg(s, sets, dirty ? cs : NULL, err, errlen);
    } else {
        if (rc == 0) rc = cells_flush_table(s, cs, "rollup_hourly", err, errlen);
        if (rc == 0) rc = cells_flush_table(s, day, "rollup_daily", err, errlen);
        if (rc == 0) rc = cells_flush_table(s, cch, "rollup_cc_hourly", err, errlen);
        if (rc == 0) rc = cells_flush_table(s, ccd, "rollup_cc_daily", err, errlen);
        if (rc == 0) rc = cells_flush_table(s, cca, "rollup_cc_all_daily", err, errlen);
        if (rc == 0 && dirty) rc = mark_dirty(s, cs, err, errlen);
    }
    cells_reset(cs);
    cells_done(day);
    cells_done(cch);
    cells_done(ccd);
    cells_done(cca);
    return rc;
}

static int cells_flush(vt_store *s, cellset *cs, char *err, size_t errlen)
{
    return cells_flush_opt(s, cs, 1, err, errlen);
}

int vt_rollup_apply(vt_store *s, const vt_store_row *rows, size_t n, char *err, size_t errlen)
{
    int rc = 0;
    size_t any = 0;
    for (size_t i = 0; i < n; i++)
        any += rows[i].inserted ? 1 : 0;
    if (!any) return 0;
    scratch *sc = scratch_of(s, err, errlen);
    if (!sc) return -1;
    cellset *cs = &sc->hour;
    cells_reset(cs);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!rows[i].inserted || !rows[i].body) continue;
        vt_obs o;
        /* ingest validated it already, and usually kept its parsed tree */
        if ((rows[i].parsed ? obs_from_tree(rows[i].parsed, &o)
                            : vt_obs_from_json(rows[i].body, &o)) < 0)
            continue;
        if (cells_add(cs, &o) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    /* Several collectors (and, on PostgreSQL, the ingest threads) may store at once: bucket
     * updates are read-modify-write, so they take one transaction-scoped lock (released at
     * COMMIT/ROLLBACK), once the batch's buckets are known. */
    if (rc == 0 && is_pg(s) &&
        vt_db_query(s, "SELECT pg_advisory_xact_lock(7413002)", NULL, 0, NULL, NULL, err, errlen) <
            0)
        rc = -1;
    if (rc == 0) rc = cells_flush(s, cs, err, errlen);
    cells_done(cs);
    return rc;
}

typedef struct rebuild_ctx {
    vt_store *s;
    cellset cs;
    size_t pending, rows, fetched; /* rows: the measurements counted; fetched: every row read */
    int rc;
    char *err;
    size_t errlen;
} rebuild_ctx;

static int rebuild_row(void *arg, int nc, const char *const *cols)
{
    rebuild_ctx *r = arg;
    vt_obs o;
    r->fetched++;
    if (nc < 1 || !cols[0] || vt_obs_from_json(cols[0], &o) < 0) return 0;
    r->rows++;
    if (cells_add(&r->cs, &o) < 0) {
        snprintf(r->err, r->errlen, "out of memory");
        r->rc = -1;
        return 1;
    }
    if (++r->pending >= 20000) {
        r->pending = 0;
        if (cells_flush_opt(r->s, &r->cs, 0, r->err, r->errlen) < 0) {
            r->rc = -1;
            return 1;
        }
    }
    return 0;
}

/* The per-country tables from the per-network ones (a database from before them): the same
 * merge as at ingest, from rows instead of measurements. */
typedef struct ccbuild_ctx {
    vt_store *s;
    cellset cs;
    const char *table;
    int all, rc;
    char *err;
    size_t errlen;
} ccbuild_ctx;

static int ccbuild_row(void *arg, int nc, const char *const *cols)
{
    ccbuild_ctx *r = arg;
    vt_cell *c = malloc(sizeof(*c));
    if (!c || vt_cell_from_cols(c, nc, cols) < 0 ||
        cells_add_cell(&r->cs, c, c->hour, "", r->all) < 0) {
        free(c);
        snprintf(r->err, r->errlen, "out of memory");
        r->rc = -1;
        return 1;
    }
    free(c);
    if (r->cs.n >= 20000) {
        if (cells_flush_table(r->s, &r->cs, r->table, r->err, r->errlen) < 0) {
            r->rc = -1;
            return 1;
        }
        cells_reset(&r->cs);
    }
    return 0;
}

static int count_row(void *arg, int nc, const char *const *cols)
{
    *(long long *)arg = nc > 0 ? num(cols[0]) : 0;
    return 1;
}

static int exists(vt_store *s, const char *table)
{
    char sql[160], e[256];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 0", table);
    return vt_db_query(s, sql, NULL, 0, NULL, NULL, e, sizeof(e)) == 0;
}

static long long nonempty(vt_store *s, const char *table, char *err, size_t errlen)
{
    char sql[160];
    long long have = 0;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM (SELECT 1 FROM %s LIMIT 1) x", table);
    if (vt_db_query(s, sql, NULL, 0, count_row, &have, err, errlen) < 0) return -1;
    return have;
}

static int init_locked(vt_store *s, const char *p, char *buf, size_t bufsz, int refresh_ms,
                       char *err, size_t errlen);

int vt_rollup_init(vt_store *s, int refresh_ms, char *err, size_t errlen)
{
    /* One statement at a time: the PostgreSQL path uses the extended protocol. */
    char buf[2048];
    const char *p = schema;
    /* PostgreSQL: no statement timeout (store_pg.c: 30 s) for the wait for the lock, which a
     * delete holds for as long as it takes, nor for a rebuild: cut, the collector would not
     * start at all. Until the end of the start (RESET: the connection's default again). */
    if (is_pg(s) &&
        (vt_db_query(s, "SET statement_timeout = 0", NULL, 0, NULL, NULL, err, errlen) < 0 ||
         vt_db_query(s, "SELECT pg_advisory_lock(7413002)", NULL, 0, NULL, NULL, err, errlen) < 0))
        return -1;
    /* Tables from before the probes/share_pm columns, or (schema version 2) the intermittent
     * counts: dropped, then rebuilt below from the measurements, whose bodies hold what the
     * new columns count. Episodes without their intermittent count: dropped, detected again. */
    char e2[256];
    int old = 0, rc = 0;
    for (int k = 0; k < PG_NTABLES && !old; k++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT probes, share_pm, n_intermittent FROM %s LIMIT 0",
                 rollup_tables[k]);
        old = exists(s, rollup_tables[k]) &&
              vt_db_query(s, sql, NULL, 0, NULL, NULL, e2, sizeof(e2)) < 0;
    }
    for (int k = 0; k < PG_NTABLES && old && rc == 0; k++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", rollup_tables[k]);
        rc = vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen);
    }
    if (rc == 0 && exists(s, "episodes") &&
        vt_db_query(s, "SELECT intermittent_count FROM episodes LIMIT 0", NULL, 0, NULL, NULL, e2,
                    sizeof(e2)) < 0)
        rc = vt_db_query(s, "DROP TABLE episodes", NULL, 0, NULL, NULL, err, errlen);
    if (rc == 0) rc = init_locked(s, p, buf, sizeof(buf), refresh_ms, err, errlen);
    if (is_pg(s)) {
        vt_db_query(s, "SELECT pg_advisory_unlock(7413002)", NULL, 0, NULL, NULL, e2, sizeof(e2));
        vt_db_query(s, "RESET statement_timeout", NULL, 0, NULL, NULL, e2, sizeof(e2));
    }
    return rc;
}

static int rebuild_cc(vt_store *s, const char *from, const char *to, int all, char *err,
                      size_t errlen)
{
    char sql[512];
    ccbuild_ctx r = {.s = s, .table = to, .all = all, .err = err, .errlen = errlen};
    snprintf(sql, sizeof(sql), "DELETE FROM %s", to);
    if (vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY hour", vt_cell_select, from);
    if (vt_db_query(s, sql, NULL, 0, ccbuild_row, &r, err, errlen) < 0) r.rc = -1;
    if (r.rc == 0) r.rc = cells_flush_table(s, &r.cs, to, err, errlen);
    cells_free(&r.cs);
    return r.rc;
}

/* Records that the episodes are (being) detected under VT_DETECT_RULES; by a serving collector
 * only (see init_locked). */
static int set_rules(vt_store *s, int refresh_ms, char *err, size_t errlen)
{
    char sql[96];
    if (refresh_ms <= 0) return 0;
    snprintf(sql, sizeof(sql), "INSERT INTO episodes_rules (version) VALUES (%d)", VT_DETECT_RULES);
    if (vt_db_query(s, "DELETE FROM episodes_rules", NULL, 0, NULL, NULL, err, errlen) < 0 ||
        vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen) < 0)
        return -1;
    return 0;
}

/* Empties the five rollup tables and fills them again from the stored measurements, inside the
 * caller's transaction; *rows: the measurements read. */
static int rebuild_all(vt_store *s, size_t *rows, char *err, size_t errlen)
{
    rebuild_ctx r = {.s = s, .err = err, .errlen = errlen};
    for (int i = 0; i < PG_NTABLES && r.rc == 0; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "DELETE FROM %s", rollup_tables[i]);
        if (vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen) < 0) r.rc = -1;
    }
    if (r.rc == 0 && !is_pg(s) &&
        vt_db_query(s, "SELECT body FROM measurements", NULL, 0, rebuild_row, &r, err, errlen) < 0)
        r.rc = -1;
    /* PostgreSQL sends a whole result at once: through a cursor, a few thousand bodies at a
     * time, not every stored measurement in memory. */
    if (r.rc == 0 && is_pg(s) &&
        vt_db_query(s, "DECLARE vt_rebuild NO SCROLL CURSOR FOR SELECT body FROM measurements",
                    NULL, 0, NULL, NULL, err, errlen) < 0)
        r.rc = -1;
    for (size_t before = (size_t)-1; r.rc == 0 && is_pg(s) && r.fetched != before;) {
        before = r.fetched;
        if (vt_db_query(s, "FETCH 5000 FROM vt_rebuild", NULL, 0, rebuild_row, &r, err, errlen) < 0)
            r.rc = -1;
    }
    if (r.rc == 0 && is_pg(s) &&
        vt_db_query(s, "CLOSE vt_rebuild", NULL, 0, NULL, NULL, err, errlen) < 0)
        r.rc = -1;
    if (r.rc == 0) r.rc = cells_flush_opt(s, &r.cs, 0, err, errlen);
    cells_free(&r.cs);
    *rows = r.rows;
    return r.rc;
}

/* Forgets every stored episode and marks every network for detection again (the collector's
 * refresh, or vt_rollup_init's at start, redoes them); inside the caller's transaction. */
static int redo_episodes(vt_store *s, char *err, size_t errlen)
{
    if (vt_db_query(s, "DELETE FROM episodes", NULL, 0, NULL, NULL, err, errlen) < 0 ||
        vt_db_query(s, "DELETE FROM episodes_dirty", NULL, 0, NULL, NULL, err, errlen) < 0 ||
        vt_db_query(s,
                    "INSERT INTO episodes_dirty (probe_cc, probe_asn, target_id, test_name, "
                    "whole) SELECT DISTINCT probe_cc, probe_asn, '', '', 1 FROM rollup_hourly",
                    NULL, 0, NULL, NULL, err, errlen) < 0)
        return -1;
    return 0;
}

/* lock 0 (a dry run, which only counts): a transaction without the write lock, so that the
 * scan holds up no upload. */
static int begin_tx(vt_store *s, int lock, char *err, size_t errlen)
{
    /* PostgreSQL: none of the store's 30 s statement timeout (store_pg.c) until COMMIT: the
     * lock may be another delete's for longer, a delete by report id reads every body (about
     * 5 s per million here), a rebuild every measurement. Cut at 30 s, the delete of a large
     * database could never be done. */
    if (is_pg(s)) {
        if (vt_db_query(s, "BEGIN", NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
        if (vt_db_query(s, "SET LOCAL statement_timeout = 0", NULL, 0, NULL, NULL, err, errlen) <
                0 ||
            (lock && vt_db_query(s, "SELECT pg_advisory_xact_lock(7413002)", NULL, 0, NULL, NULL,
                                 err, errlen) < 0)) {
            char e2[64];
            vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
            return -1;
        }
        return 0;
    }
    /* SQLite: the write lock now, not at the first DELETE; a serving collector's batch holds it
     * for a fraction of a second at a time (each try waits the store's busy timeout, 1 s). */
    for (int tries = 0;; tries++) {
        if (vt_db_query(s, lock ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0, NULL, NULL, err, errlen) ==
            0)
            return 0;
        if (tries >= 30 || !strstr(err, "locked")) return -1;
    }
}

static int init_locked(vt_store *s, const char *p, char *buf, size_t bufsz, int refresh_ms,
                       char *err, size_t errlen)
{
    int had_episodes = exists(s, "episodes");
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len >= bufsz) return -1;
        memcpy(buf, p, len);
        buf[len] = 0;
        if (vt_db_query(s, buf, NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
        p += len + (semi ? 1 : 0);
    }
    /* PostgreSQL: room in each page for a bucket's next version, so that its update stays HOT
     * (no new index entries): in bench/collector-ingest 81% of the per-country buckets'
     * updates were HOT with it, 10% without, their upserts 35-40% faster and the tables half
     * the size. Set once (new pages only; an ALTER takes a lock). */
    for (int k = 0; is_pg(s) && k < PG_NTABLES; k++) {
        char sql[256];
        long long set = 0;
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM pg_class WHERE oid = '%s'::regclass AND "
                 "'fillfactor=70' = ANY(coalesce(reloptions, '{}'))",
                 rollup_tables[k]);
        if (vt_db_query(s, sql, NULL, 0, count_row, &set, err, errlen) < 0) return -1;
        snprintf(sql, sizeof(sql), "ALTER TABLE %s SET (fillfactor = 70)", rollup_tables[k]);
        if (!set && vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    }
    long long have = nonempty(s, "rollup_hourly", err, errlen),
              have_d = nonempty(s, "rollup_daily", err, errlen),
              have_ch = nonempty(s, "rollup_cc_hourly", err, errlen),
              have_cd = nonempty(s, "rollup_cc_daily", err, errlen),
              have_ca = nonempty(s, "rollup_cc_all_daily", err, errlen),
              meas = nonempty(s, "measurements", err, errlen);
    if (have < 0 || have_d < 0 || have_ch < 0 || have_cd < 0 || have_ca < 0 || meas < 0) return -1;
    /* Only a serving collector (refresh_ms > 0) judges the rules: a report or token command of a
     * newer version, next to an older collector still serving, would have the episodes redone
     * by rules that collector does not apply, and marked as done under the new ones. */
    long long same_rules = 1;
    if (refresh_ms > 0) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM episodes_rules WHERE version = %d",
                 VT_DETECT_RULES);
        if (vt_db_query(s, sql, NULL, 0, count_row, &same_rules, err, errlen) < 0) return -1;
    }
    if (!meas) return same_rules ? 0 : set_rules(s, refresh_ms, err, errlen);
    int rebuilt = 0, rc = 0;
    /* Something to write: the write lock, waited for (SQLite: a delete or another collector's
     * rebuild holds it for longer than the busy timeout, and a start that gave up after it
     * would leave the collector down). Nothing: no transaction (a report on a read-only copy). */
    int work = !have || !have_d || !have_ch || !have_cd || !have_ca || !had_episodes || !same_rules;
    if (work && begin_tx(s, 1, err, errlen) < 0) return -1;
    if (!have || !have_d) {
        /* Minutes for millions of measurements, before the collector listens: say so. */
        vt_log_msg("vantage-collector: the rollup tables are empty or from an older version: "
                   "rebuilding them from the stored measurements");
        double t0 = vt_now();
        size_t rows = 0;
        rc = rebuild_all(s, &rows, err, errlen);
        rebuilt = 1;
        if (rc == 0)
            vt_log_msg("vantage-collector: rollups rebuilt from %zu measurements in %.1f s", rows,
                       vt_now() - t0);
    } else {
        if (!have_ch) rc = rebuild_cc(s, "rollup_hourly", "rollup_cc_hourly", 0, err, errlen);
        if (rc == 0 && !have_cd)
            rc = rebuild_cc(s, "rollup_daily", "rollup_cc_daily", 0, err, errlen);
        if (rc == 0 && !have_ca)
            rc = rebuild_cc(s, "rollup_daily", "rollup_cc_all_daily", 1, err, errlen);
    }
    /* Episodes: every network again when the table is new, the buckets were rebuilt, or the
     * episodes were detected under other rules (an upgrade that changed a threshold: a series
     * without new uploads would keep what the old rules found). */
    if (rc == 0 && (rebuilt || !had_episodes || !same_rules) &&
        (set_rules(s, refresh_ms, err, errlen) < 0 || redo_episodes(s, err, errlen) < 0))
        rc = -1;
    if (rc < 0) {
        char e2[64];
        vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
        return -1;
    }
    if (work && vt_db_query(s, "COMMIT", NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    /* Whatever is dirty (just marked, or left by a collector that stopped before its refresh):
     * detected now, so the first answers are complete; but for a while only: a backlog of
     * hours (a flood of new series) would keep the collector from starting at all. */
    double until = vt_now() + refresh_ms / 1000.0;
    for (;;) {
        if (vt_now() >= until) return 0;
        int k = vt_episodes_refresh(s, 64, err, errlen);
        /* SQLite, another writer past the busy timeout (a delete): the refresh timer detects
         * them once it is done; no reason not to serve meanwhile. */
        if (k < 0 && !is_pg(s) && strstr(err, "locked")) {
            vt_log_msg("vantage-collector: episodes: the database is busy (%s); they are "
                       "detected once it is free",
                       err);
            return 0;
        }
        if (k < 0) return -1;
        if (k == 0) return 0;
    }
}

/* ---- deleting measurements ---- */

static int wal_row(void *arg, int nc, const char *const *cols)
{
    *(int *)arg = nc > 0 && cols[0] && strcmp(cols[0], "0") != 0; /* busy */
    return 1;
}

int vt_rollup_delete(vt_store *s, const char *where, const char *const *params, int np, int dry_run,
                     long long *matched, size_t *rows, int *copies_left, char *err, size_t errlen)
{
    *copies_left = 0;
    /* SQLite: the pages this connection frees are overwritten with zeros, so that the deleted
     * bodies do not stay readable in the file's free pages until they are reused. */
    if (!is_pg(s) && !dry_run &&
        vt_db_query(s, "PRAGMA secure_delete = ON", NULL, 0, NULL, NULL, err, errlen) < 0)
        return -1;
    size_t n = strlen(where) + 64;
    char *sql = malloc(n);
    *matched = 0;
    *rows = 0;
    if (!sql) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (begin_tx(s, !dry_run, err, errlen) < 0) {
        free(sql);
        return -1;
    }
    snprintf(sql, n, "SELECT COUNT(*) FROM measurements WHERE %s", where);
    int rc = vt_db_query(s, sql, params, np, count_row, matched, err, errlen);
    if (rc == 0 && *matched > 0 && !dry_run) {
        snprintf(sql, n, "DELETE FROM measurements WHERE %s", where);
        rc = vt_db_query(s, sql, params, np, NULL, NULL, err, errlen);
        if (rc == 0) rc = rebuild_all(s, rows, err, errlen);
        if (rc == 0) rc = redo_episodes(s, err, errlen);
        if (rc == 0) rc = vt_db_query(s, "COMMIT", NULL, 0, NULL, NULL, err, errlen);
        if (rc == 0) {
            free(sql);
            /* ... and the write-ahead log, which holds earlier versions of those pages (the
             * insert's among them) until it is checkpointed and restarted: emptied now, unless
             * a reader (a serving collector's query) is in the way. PostgreSQL keeps dead rows
             * in the table's files until their space is reused (docs/operator.md). */
            char e2[256];
            *copies_left = 1; /* wal_row clears it when the checkpoint was not kept busy */
            if (!is_pg(s))
                vt_db_query(s, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, wal_row, copies_left, e2,
                            sizeof(e2));
            return 0;
        }
    }
    char e2[64];
    vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
    free(sql);
    return rc < 0 ? -1 : 0;
}

/* ---- detection ---- */

typedef struct cells {
    vt_cell *c;
    size_t n, cap;
    int oom;
} cells;

static int load_cell(void *arg, int nc, const char *const *cols)
{
    cells *l = arg;
    vt_cell *p = grow(l->c, l->n, &l->cap, sizeof(*p), 256);
    if (!p) {
        l->oom = 1;
        return 1;
    }
    l->c = p;
    if (vt_cell_from_cols(&l->c[l->n], nc, cols) == 0) l->n++;
    return 0;
}

/* The network's own health per hour, from its canaries. */
typedef struct net_hour {
    long long t;
    int64_t n, bad;
    int64_t v[VT_V_COUNT]; /* the canaries' verdicts, for the outage's top_verdict */
    double probes;
    vt_hist lat;
    int slow;
} net_hour;

static int is_canary(const vt_cell *c)
{
    return strcmp(c->platform, "canary") == 0;
}

static int64_t anomalies(const vt_cell *c)
{
    int64_t a = 0;
    for (int v = 0; v < VT_V_COUNT; v++)
        if (vt_verdict_is_anomaly(v)) a += c->v[v];
    return a;
}

static int64_t failures(const vt_cell *c)
{
    int64_t a = 0;
    for (int v = 0; v < VT_V_COUNT; v++)
        if (vt_verdict_is_failure(v)) a += c->v[v];
    return a;
}

static net_hour *net_find(net_hour *h, size_t n, long long t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && h[lo].t == t ? &h[lo] : NULL;
}

static int cmp_net(const void *a, const void *b)
{
    long long x = ((const net_hour *)a)->t, y = ((const net_hour *)b)->t;
    return x < y ? -1 : x > y;
}

/* A trailing baseline: the sum of the histograms of "normal" hours in the last window. */
typedef struct baseline {
    vt_hist lat, tput;
    struct {
        long long t;
        const vt_hist *lat, *tput;
    } * q;
    size_t head, len, cap;
} baseline;

static void base_evict(baseline *b, long long now)
{
    while (b->head < b->len && b->q[b->head].t < now - VT_DETECT_BASELINE_HOURS * 3600LL) {
        for (int i = 0; i < VT_HIST_BINS; i++) {
            b->lat.c[i] -= b->q[b->head].lat->c[i];
            if (b->q[b->head].tput) b->tput.c[i] -= b->q[b->head].tput->c[i];
        }
        b->head++;
    }
}

static int base_push(baseline *b, long long t, const vt_hist *lat, const vt_hist *tput)
{
    void *q = grow(b->q, b->len, &b->cap, sizeof(*b->q), 64);
    if (!q) return -1;
    b->q = q;
    b->q[b->len].t = t;
    b->q[b->len].lat = lat;
    b->q[b->len].tput = tput;
    b->len++;
    for (int i = 0; i < VT_HIST_BINS; i++) {
        b->lat.c[i] += lat->c[i];
        if (tput) b->tput.c[i] += tput->c[i];
    }
    return 0;
}

static void base_reset(baseline *b)
{
    free(b->q);
    memset(b, 0, sizeof(*b));
}

/* Hour classes. */
enum { H_OK, H_BLOCK, H_SLOW, H_OUTAGE, H_UNKNOWN };

typedef struct eplist {
    vt_episode *e;
    size_t n, cap;
    int oom;
} eplist;

static vt_episode *ep_new(eplist *l)
{
    vt_episode *p = grow(l->e, l->n, &l->cap, sizeof(*p), 16);
    if (!p) {
        l->oom = 1;
        return NULL;
    }
    l->e = p;
    vt_episode *e = &l->e[l->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* Running evidence of one open episode. */
typedef struct ep_acc {
    int open, kind;
    long long start, last;
    int64_t n, anom, conf, intm, fail, v[VT_V_COUNT];
    double max_probes, share_sum;
    int hours, net_slow_hours;
    vt_hist lat, tput, base_lat, base_tput;
} ep_acc;

static const double policers[] = {64e3, 128e3, 256e3, 512e3, 1e6, 2e6};

static void ep_close(eplist *l, ep_acc *a, const vt_cell *key, long long from, long long to,
                     long long data_end)
{
    if (!a->open) return;
    a->open = 0;
    long long end = a->last + 3600;
    if (end <= from || (to > 0 && a->start >= to)) return; /* outside the asked range */
    /* Noise: a lone hour where two probe runs happened to fail, or one slow hour. */
    if (a->kind == H_BLOCK && a->anom < VT_DETECT_MIN_ANOMALIES) return;
    if (a->kind == H_SLOW && a->hours < VT_DETECT_MIN_SLOW_HOURS) return;
    vt_episode *e = ep_new(l);
    if (!e) return;
    snprintf(e->kind, sizeof(e->kind), "%s",
             a->kind == H_BLOCK  ? "blocking"
             : a->kind == H_SLOW ? "slowdown"
                                 : "outage");
    snprintf(e->scope, sizeof(e->scope), "%s",
             a->kind == H_OUTAGE || (a->kind == H_SLOW && a->net_slow_hours * 2 > a->hours)
                 ? "network"
                 : "targeted");
    memcpy(e->cc, key->cc, sizeof(e->cc));
    memcpy(e->asn, key->asn, sizeof(e->asn));
    if (a->kind != H_OUTAGE) {
        memcpy(e->target, key->target, sizeof(e->target));
        memcpy(e->test, key->test, sizeof(e->test));
        memcpy(e->platform, key->platform, sizeof(e->platform));
        memcpy(e->category, key->category, sizeof(e->category));
    }
    vt_rollup_format_time(a->start, e->start);
    vt_rollup_format_time(end, e->end);
    e->ongoing = a->last >= data_end;
    e->hours = a->hours;
    e->measurements = a->n;
    e->anomalies = a->anom;
    e->confirmed_count = a->conf;
    e->confirmed = a->conf > 0;
    e->intermittent_count = a->intm;
    e->failures = a->fail;
    e->max_probes = a->max_probes;
    e->share = a->hours ? a->share_sum / a->hours : 0;
    int top = -1;
    for (int v = 0; v < VT_V_COUNT; v++)
        if ((a->kind == H_OUTAGE ? v != VT_V_OK : vt_verdict_is_anomaly(v)) && a->v[v] > 0 &&
            (top < 0 || a->v[v] > a->v[top]))
            top = v;
    snprintf(e->top_verdict, sizeof(e->top_verdict), "%s", top >= 0 ? vt_verdict_names[top] : "");
    e->latency_ms = vt_hist_quantile(&a->lat, VT_HIST_LATENCY, 0.5);
    e->baseline_latency_ms = vt_hist_quantile(&a->base_lat, VT_HIST_LATENCY, 0.5);
    e->throughput_bps = vt_hist_quantile(&a->tput, VT_HIST_THROUGHPUT, 0.5);
    e->baseline_throughput_bps = vt_hist_quantile(&a->base_tput, VT_HIST_THROUGHPUT, 0.5);
    if (e->throughput_bps > 0) {
        double p25 = vt_hist_quantile(&a->tput, VT_HIST_THROUGHPUT, 0.25);
        double p75 = vt_hist_quantile(&a->tput, VT_HIST_THROUGHPUT, 0.75);
        for (size_t i = 0; i < sizeof(policers) / sizeof(policers[0]); i++)
            if (e->throughput_bps > policers[i] * 0.75 && e->throughput_bps < policers[i] * 1.33 &&
                p75 / p25 < 1.7)
                e->policer_bps = policers[i];
    }
}

static void ep_add(eplist *l, ep_acc *a, int kind, const vt_cell *c, long long t, const baseline *b,
                   int net_slow, const vt_cell *key, long long from, long long to,
                   long long data_end)
{
    if (a->open && (a->kind != kind || t - a->last > (VT_DETECT_GAP_HOURS + 1) * 3600LL))
        ep_close(l, a, key, from, to, data_end);
    if (!a->open) {
        memset(a, 0, sizeof(*a));
        a->open = 1;
        a->kind = kind;
        a->start = t;
        if (b) {
            a->base_lat = b->lat;
            a->base_tput = b->tput;
        }
    }
    a->last = t;
    a->hours++;
    a->n += c->n;
    a->anom += anomalies(c);
    a->conf += c->confirmed;
    a->intm += c->intermittent;
    a->fail += failures(c);
    for (int v = 0; v < VT_V_COUNT; v++)
        a->v[v] += c->v[v];
    double p = c->probes;
    if (p > a->max_probes) a->max_probes = p;
    double sh = c->share;
    a->share_sum += sh > 0 ? sh : 0;
    a->net_slow_hours += net_slow;
    vt_hist_merge(&a->lat, &c->lat);
    vt_hist_merge(&a->tput, &c->tput);
}

static int slow_vs(const vt_hist *lat, const vt_hist *tput, const vt_hist *blat,
                   const vt_hist *btput)
{
    /* The hour's lower quartile of latency (upper quartile of throughput) against the baseline
     * median: most of the hour's measurements must be slow, not one unlucky download. */
    if (vt_hist_total(blat) >= VT_DETECT_BASELINE_MIN && vt_hist_total(lat) > 0) {
        double m = vt_hist_quantile(lat, VT_HIST_LATENCY, 0.25);
        double bm = vt_hist_quantile(blat, VT_HIST_LATENCY, 0.5);
        if (m >= bm * VT_DETECT_SLOW_RATIO) return 1;
    }
    if (btput && vt_hist_total(btput) >= VT_DETECT_BASELINE_MIN && vt_hist_total(tput) > 0) {
        double m = vt_hist_quantile(tput, VT_HIST_THROUGHPUT, 0.75);
        double bm = vt_hist_quantile(btput, VT_HIST_THROUGHPUT, 0.5);
        if (m * VT_DETECT_SLOW_RATIO <= bm) return 1;
    }
    return 0;
}

static int detect_group(const vt_cell *c, size_t n, eplist *out, const vt_detect_query *q,
                        long long from, long long to)
{
    /* c[0..n) share cc and asn, sorted by target, test, hour. */
    net_hour *nh = NULL;
    size_t nn = 0;
    long long data_end = 0;
    for (size_t i = 0; i < n; i++) {
        long long t = vt_rollup_parse_time(c[i].hour);
        if (t > data_end) data_end = t;
        if (!is_canary(&c[i])) continue;
        net_hour *p = realloc(nh, (nn + 1) * sizeof(*nh));
        if (!p) {
            free(nh);
            return -1;
        }
        nh = p;
        memset(&nh[nn], 0, sizeof(nh[nn]));
        nh[nn].t = t;
        nh[nn].n = c[i].n;
        nh[nn].bad = c[i].n - c[i].v[VT_V_OK];
        memcpy(nh[nn].v, c[i].v, sizeof(nh[nn].v));
        nh[nn].lat = c[i].lat;
        nh[nn].probes = c[i].probes;
        nn++;
    }
    if (nn) qsort(nh, nn, sizeof(*nh), cmp_net);
    size_t w = 0; /* merge canary targets of the same hour */
    for (size_t i = 0; i < nn; i++) {
        if (w && nh[w - 1].t == nh[i].t) {
            nh[w - 1].n += nh[i].n;
            nh[w - 1].bad += nh[i].bad;
            for (int v = 0; v < VT_V_COUNT; v++)
                nh[w - 1].v[v] += nh[i].v[v];
            if (nh[i].probes > nh[w - 1].probes) nh[w - 1].probes = nh[i].probes;
            vt_hist_merge(&nh[w - 1].lat, &nh[i].lat);
        } else {
            nh[w++] = nh[i];
        }
    }
    nn = w;
    /* Canaries' own slowdowns against their own trailing baseline. */
    baseline cb = {0};
    for (size_t i = 0; i < nn; i++) {
        base_evict(&cb, nh[i].t);
        nh[i].slow = slow_vs(&nh[i].lat, NULL, &cb.lat, NULL);
        if (!nh[i].slow && (double)nh[i].bad < VT_DETECT_OUTAGE_SHARE * nh[i].n)
            base_push(&cb, nh[i].t, &nh[i].lat, NULL);
    }
    base_reset(&cb);

    /* Outages: the network's canaries failing. */
    ep_acc oa = {0};
    for (size_t i = 0; i < nn && !q->target && !q->platform; i++) {
        if (nh[i].bad >= VT_DETECT_OUTAGE_MIN &&
            (double)nh[i].bad >= VT_DETECT_OUTAGE_SHARE * nh[i].n) {
            vt_cell tmp;
            memset(&tmp, 0, sizeof(tmp));
            tmp.n = nh[i].n;
            tmp.v[VT_V_OFFLINE] = nh[i].bad;
            tmp.v[VT_V_OK] = nh[i].n - nh[i].bad;
            ep_add(out, &oa, H_OUTAGE, &tmp, nh[i].t, NULL, 0, &c[0], from, to, data_end);
            if (nh[i].probes > oa.max_probes) oa.max_probes = nh[i].probes;
            /* The counts above call every failing canary measurement a failure; the verdict
             * tally (read only for top_verdict) gets what the canaries really said ("down",
             * a blocking verdict...), not a probe_offline nobody reported. */
            for (int v = 0; v < VT_V_COUNT; v++)
                oa.v[v] += nh[i].v[v] - tmp.v[v];
        } else if (oa.open) {
            ep_close(out, &oa, &c[0], from, to, data_end);
        }
    }
    ep_close(out, &oa, &c[0], from, to, data_end);

    /* Each target's series. */
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && strcmp(c[j].target, c[i].target) == 0 && strcmp(c[j].test, c[i].test) == 0)
            j++;
        int want = !is_canary(&c[i]) && (!q->target || strcmp(q->target, c[i].target) == 0) &&
                   (!q->platform || strcmp(q->platform, c[j - 1].platform) == 0);
        if (want) {
            baseline b = {0};
            ep_acc a = {0};
            const vt_cell *key = &c[j - 1]; /* newest labels */
            for (size_t k = i; k < j; k++) {
                const vt_cell *x = &c[k];
                long long t = vt_rollup_parse_time(x->hour);
                base_evict(&b, t);
                net_hour *h = net_find(nh, nn, t);
                double probes = x->probes, share = x->share;
                int cls;
                if ((h && h->bad >= VT_DETECT_OUTAGE_MIN &&
                     (double)h->bad >= VT_DETECT_OUTAGE_SHARE * h->n) ||
                    (double)x->v[VT_V_OFFLINE] >= VT_DETECT_OUTAGE_SHARE * x->n)
                    cls = H_OUTAGE;
                else if (share >= VT_DETECT_BLOCK_SHARE)
                    cls = probes < VT_DETECT_MIN_PROBES             ? H_UNKNOWN
                          : x->v[VT_V_THROTTLED] * 2 > anomalies(x) ? H_SLOW
                                                                    : H_BLOCK;
                else if (slow_vs(&x->lat, &x->tput, &b.lat, &b.tput))
                    cls = probes < VT_DETECT_MIN_PROBES ? H_UNKNOWN : H_SLOW;
                else
                    cls = H_OK;
                if (cls == H_BLOCK || cls == H_SLOW)
                    ep_add(out, &a, cls, x, t, &b, h ? h->slow : 0, key, from, to, data_end);
                else if (cls != H_UNKNOWN)
                    ep_close(out, &a, key, from, to, data_end);
                if (cls == H_OK && base_push(&b, t, &x->lat, &x->tput) < 0) out->oom = 1;
            }
            ep_close(out, &a, key, from, to, data_end);
            base_reset(&b);
        }
        i = j;
    }
    free(nh);
    return out->oom ? -1 : 0;
}

static int cmp_ep(const void *a, const void *b)
{
    const vt_episode *x = a, *y = b;
    int r = strcmp(x->start, y->start);
    if (r) return r;
    r = strcmp(x->cc, y->cc);
    if (r) return r;
    r = strcmp(x->asn, y->asn);
    return r ? r : strcmp(x->target, y->target);
}

int vt_detect(vt_store *s, const vt_detect_query *q, vt_episode **out, size_t *nout, char *err,
              size_t errlen)
{
    *out = NULL;
    *nout = 0;
    long long from = q->since[0] ? vt_rollup_parse_time(q->since) : 0;
    long long to = q->until[0] ? vt_rollup_parse_time(q->until) : 0;
    if (from < 0 || to < 0) {
        snprintf(err, errlen, "bad time range");
        return -1;
    }
    char sql[1024], lo[20] = "";
    const char *p[4];
    int np = 0;
    int off = snprintf(sql, sizeof(sql), "SELECT %s FROM rollup_hourly WHERE 1=1", detect_select);
    if (from > 0) {
        vt_rollup_format_time(from - VT_DETECT_BASELINE_HOURS * 3600LL, lo);
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND hour >= ?");
        p[np++] = lo;
    }
    if (to > 0) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND hour < ?");
        p[np++] = q->until;
    }
    if (q->cc) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND probe_cc = ?");
        p[np++] = q->cc;
    }
    if (q->asn) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND probe_asn = ?");
        p[np++] = q->asn;
    }
    snprintf(sql + off, sizeof(sql) - (size_t)off,
             " ORDER BY probe_cc, probe_asn, target_id, test_name, hour");
    cells l = {0};
    if (vt_db_query(s, sql, p, np, load_cell, &l, err, errlen) < 0 || l.oom) {
        if (l.oom) snprintf(err, errlen, "out of memory");
        free(l.c);
        return -1;
    }
    eplist el = {0};
    int rc = 0;
    size_t i = 0;
    while (i < l.n && rc == 0) {
        size_t j = i;
        while (j < l.n && strcmp(l.c[j].cc, l.c[i].cc) == 0 && strcmp(l.c[j].asn, l.c[i].asn) == 0)
            j++;
        if (detect_group(&l.c[i], j - i, &el, q, from, to) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        i = j;
    }
    free(l.c);
    if (rc < 0) {
        free(el.e);
        return -1;
    }
    if (el.n) qsort(el.e, el.n, sizeof(*el.e), cmp_ep);
    *out = el.e;
    *nout = el.n;
    return 0;
}

/* ---- episodes kept in a table ---- */

typedef struct dkey {
    char cc[3], asn[16], target[129], test[65];
    int whole;
} dkey;

typedef struct dlist {
    dkey *k;
    size_t n, cap;
    int oom;
} dlist;

/* A new zeroed key at the end of l, or NULL (l->oom set). */
static dkey *dlist_add(dlist *l)
{
    dkey *p = grow(l->k, l->n, &l->cap, sizeof(*p), 64);
    if (!p) {
        l->oom = 1;
        return NULL;
    }
    l->k = p;
    dkey *k = &l->k[l->n++];
    memset(k, 0, sizeof(*k));
    return k;
}

static int load_dirty(void *arg, int nc, const char *const *cols)
{
    if (nc < 5) return 0;
    dkey *k = dlist_add(arg);
    if (!k) return 1;
    cpy(k->cc, sizeof(k->cc), cols[0]);
    cpy(k->asn, sizeof(k->asn), cols[1]);
    cpy(k->target, sizeof(k->target), cols[2]);
    cpy(k->test, sizeof(k->test), cols[3]);
    k->whole = num(cols[4]) != 0;
    return 0;
}

#define EPISODE_COLS                                                                               \
    "kind, scope, probe_cc, probe_asn, target_id, test_name, platform, category, start_hour, "     \
    "end_hour, hours, measurements, anomalies, confirmed_count, failures, max_probes, "            \
    "anomaly_share, top_verdict, latency_ms, baseline_latency_ms, throughput_bps, "                \
    "baseline_throughput_bps, policer_bps, intermittent_count"
#define EPISODE_NCOLS 24

static int episode_insert(vt_store *s, const vt_episode *e, char *err, size_t errlen)
{
    static const char *sql = "INSERT INTO episodes (" EPISODE_COLS ") VALUES "
                             "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    char ints[6][24], dbl[7][32];
    snprintf(ints[0], 24, "%d", e->hours);
    snprintf(ints[1], 24, "%lld", (long long)e->measurements);
    snprintf(ints[2], 24, "%lld", (long long)e->anomalies);
    snprintf(ints[3], 24, "%lld", (long long)e->confirmed_count);
    snprintf(ints[4], 24, "%lld", (long long)e->failures);
    snprintf(ints[5], 24, "%lld", (long long)e->intermittent_count);
    const double d[7] = {e->max_probes,          e->share,          e->latency_ms,
                         e->baseline_latency_ms, e->throughput_bps, e->baseline_throughput_bps,
                         e->policer_bps};
    for (int i = 0; i < 7; i++)
        snprintf(dbl[i], sizeof(dbl[i]), "%.17g", d[i]); /* exact round trip */
    const char *p[EPISODE_NCOLS] = {
        e->kind,  e->scope,       e->cc,   e->asn,  e->target, e->test, e->platform, e->category,
        e->start, e->end,         ints[0], ints[1], ints[2],   ints[3], ints[4],     dbl[0],
        dbl[1],   e->top_verdict, dbl[2],  dbl[3],  dbl[4],    dbl[5],  dbl[6],      ints[5]};
    return vt_db_query(s, sql, p, EPISODE_NCOLS, NULL, NULL, err, errlen);
}

/* Loads buckets with sql (detection order) and appends what detect_group finds for q. */
static int detect_rows(vt_store *s, const char *sql, const char *const *p, int np,
                       const vt_detect_query *q, eplist *el, char *err, size_t errlen)
{
    cells l = {0};
    if (vt_db_query(s, sql, p, np, load_cell, &l, err, errlen) < 0 || l.oom) {
        if (l.oom) snprintf(err, errlen, "out of memory");
        free(l.c);
        return -1;
    }
    int rc = 0;
    if (l.n && detect_group(l.c, l.n, el, q, 0, 0) < 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    free(l.c);
    return rc;
}

/* One series over its whole history: its buckets and the network's canaries (outage hours). */
static int detect_series(vt_store *s, const char *cc, const char *asn, const char *target,
                         const char *test, eplist *el, char *err, size_t errlen)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM rollup_hourly WHERE probe_cc = ? AND probe_asn = ? AND "
             "((target_id = ? AND test_name = ?) OR platform = 'canary') "
             "ORDER BY target_id, test_name, hour",
             detect_select);
    const char *p[4] = {cc, asn, target, test};
    vt_detect_query q = {.target = target};
    return detect_rows(s, sql, p, 4, &q, el, err, errlen);
}

static int load_canaries(vt_store *s, const char *cc, const char *asn, cells *can, char *err,
                         size_t errlen)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM rollup_hourly WHERE probe_cc = ? AND probe_asn = ? AND "
             "platform = 'canary' ORDER BY target_id, test_name, hour",
             detect_select);
    const char *p[2] = {cc, asn};
    if (vt_db_query(s, sql, p, 2, load_cell, can, err, errlen) < 0 || can->oom) {
        if (can->oom) snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The same as detect_series with the canaries already loaded: only the series' own buckets are
 * read (through the index rollup_hourly_series). A series with canary-labelled buckets of its
 * own goes the way above so no bucket is counted twice. */
static int detect_series_with(vt_store *s, const char *cc, const char *asn, const char *target,
                              const char *test, const cells *can, eplist *el, char *err,
                              size_t errlen)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM rollup_hourly WHERE probe_cc = ? AND probe_asn = ? AND "
             "target_id = ? AND test_name = ? ORDER BY hour",
             detect_select);
    const char *p[4] = {cc, asn, target, test};
    cells l = {0};
    if (vt_db_query(s, sql, p, 4, load_cell, &l, err, errlen) < 0 || l.oom) {
        if (l.oom) snprintf(err, errlen, "out of memory");
        free(l.c);
        return -1;
    }
    int mixed = 0;
    for (size_t i = 0; i < l.n && !mixed; i++)
        mixed = is_canary(&l.c[i]);
    if (mixed) {
        free(l.c);
        return detect_series(s, cc, asn, target, test, el, err, errlen);
    }
    int rc = 0;
    vt_cell *all = l.n ? malloc((can->n + l.n) * sizeof(*all)) : NULL;
    if (l.n && !all) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else if (l.n) {
        if (can->n) memcpy(all, can->c, can->n * sizeof(*all));
        memcpy(all + can->n, l.c, l.n * sizeof(*all));
        vt_detect_query q = {.target = target};
        if (detect_group(all, can->n + l.n, el, &q, 0, 0) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    free(all);
    free(l.c);
    return rc;
}

/* The (target, test) series of a network, as dkeys. */
static int load_series(void *arg, int nc, const char *const *cols)
{
    if (nc < 2) return 0;
    dkey *k = dlist_add(arg);
    if (!k) return 1;
    cpy(k->target, sizeof(k->target), cols[0]);
    cpy(k->test, sizeof(k->test), cols[1]);
    return 0;
}

static int insert_all(vt_store *s, eplist *el, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < el->n && rc == 0; i++)
        rc = episode_insert(s, &el->e[i], err, errlen);
    el->n = 0;
    return rc;
}

/* Detects one dirty entry over its whole history and replaces its stored episodes. A whole
 * network goes series by series (memory: one series and the canaries at a time), then its
 * outages from the canaries alone: the same as detecting the network at once. */
static int refresh_one(vt_store *s, const dkey *k, char *err, size_t errlen)
{
    const char *p[4] = {k->cc, k->asn, k->target, k->test};
    eplist el = {0};
    int rc = 0;
    if (k->whole) {
        dlist sl = {0};
        rc = vt_db_query(s, "DELETE FROM episodes WHERE probe_cc = ? AND probe_asn = ?", p, 2, NULL,
                         NULL, err, errlen);
        if (rc == 0 && (vt_db_query(s,
                                    "SELECT DISTINCT target_id, test_name FROM rollup_hourly "
                                    "WHERE probe_cc = ? AND probe_asn = ? AND platform <> 'canary'",
                                    p, 2, load_series, &sl, err, errlen) < 0 ||
                        sl.oom)) {
            if (sl.oom) snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        cells can = {0};
        vt_detect_query all = {0};
        if (rc == 0) rc = load_canaries(s, k->cc, k->asn, &can, err, errlen);
        /* outages: the canaries alone */
        if (rc == 0 && can.n && detect_group(can.c, can.n, &el, &all, 0, 0) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        if (rc == 0) rc = insert_all(s, &el, err, errlen);
        for (size_t i = 0; i < sl.n && rc == 0; i++) {
            rc = detect_series_with(s, k->cc, k->asn, sl.k[i].target, sl.k[i].test, &can, &el, err,
                                    errlen);
            if (rc == 0) rc = insert_all(s, &el, err, errlen);
        }
        free(can.c);
        free(sl.k);
        free(el.e);
        if (rc == 0)
            rc = vt_db_query(s, "DELETE FROM episodes_dirty WHERE probe_cc = ? AND probe_asn = ?",
                             p, 2, NULL, NULL, err, errlen);
        return rc;
    }
    cells can = {0};
    rc = load_canaries(s, k->cc, k->asn, &can, err, errlen);
    if (rc == 0)
        rc = detect_series_with(s, k->cc, k->asn, k->target, k->test, &can, &el, err, errlen);
    free(can.c);
    if (rc == 0)
        rc = vt_db_query(s,
                         "DELETE FROM episodes WHERE probe_cc = ? AND probe_asn = ? AND "
                         "target_id = ? AND test_name = ? AND kind <> 'outage'",
                         p, 4, NULL, NULL, err, errlen);
    if (rc == 0) rc = insert_all(s, &el, err, errlen);
    free(el.e);
    if (rc == 0)
        rc = vt_db_query(s,
                         "DELETE FROM episodes_dirty WHERE probe_cc = ? AND probe_asn = ? AND "
                         "target_id = ? AND test_name = ? AND whole = 0",
                         p, 4, NULL, NULL, err, errlen);
    return rc;
}

/* The first character of the first column. */
static int first_col(void *arg, int nc, const char *const *cols)
{
    char *out = arg;
    out[0] = nc > 0 && cols[0] ? cols[0][0] : 0;
    return 1;
}

/* The country whose series the last round took: rounds take the countries in turn, so that a
 * flood of new series in one country (or one name) delays no other country's detection by more
 * than a round per country. In memory; the event loop's thread only (and the start's). */
static char refresh_cc[3];

static int copy_cc(void *arg, int nc, const char *const *cols)
{
    snprintf(arg, 3, "%s", nc > 0 && cols[0] ? cols[0] : "");
    return 1;
}

static int episodes_refresh(vt_store *s, int max, int wait, char *err, size_t errlen)
{
    char lim[24], e2[64], cc[3] = "";
    snprintf(lim, sizeof(lim), "%d", max > 0 ? max : 1);
    const char *pl[2] = {cc, lim};
    /* One writer at a time: ingest takes the same locks for its read-modify-write. */
    if (vt_db_query(s, is_pg(s) ? "BEGIN" : "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, err, errlen) <
        0)
        return -1;
    dlist l = {0};
    int rc = 0;
    /* PostgreSQL without wait (the event loop's refresh): no waiting for a storing ingest
     * thread (or another collector) to commit; -2 when the lock is taken. */
    char got[2] = "t";
    if (is_pg(s) && vt_db_query(s,
                                wait ? "SELECT pg_advisory_xact_lock(7413002)"
                                     : "SELECT pg_try_advisory_xact_lock(7413002)",
                                NULL, 0, wait ? NULL : first_col, got, err, errlen) < 0)
        rc = -1;
    if (rc == 0 && got[0] != 't') {
        vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
        return -2;
    }
    /* The next country after the last round's, wrapping around. */
    const char *after[1] = {refresh_cc};
    if (rc == 0 &&
        vt_db_query(s,
                    "SELECT probe_cc FROM episodes_dirty WHERE probe_cc > ? ORDER BY probe_cc "
                    "LIMIT 1",
                    after, 1, copy_cc, cc, err, errlen) < 0)
        rc = -1;
    if (rc == 0 && !cc[0] &&
        vt_db_query(s, "SELECT probe_cc FROM episodes_dirty ORDER BY probe_cc LIMIT 1", NULL, 0,
                    copy_cc, cc, err, errlen) < 0)
        rc = -1;
    if (rc == 0 && cc[0]) memcpy(refresh_cc, cc, sizeof(cc));
    if (rc == 0 && cc[0] &&
        (vt_db_query(s,
                     "SELECT probe_cc, probe_asn, target_id, test_name, whole FROM episodes_dirty "
                     "WHERE probe_cc = ? ORDER BY whole DESC, probe_asn LIMIT CAST(? AS BIGINT)",
                     pl, 2, load_dirty, &l, err, errlen) < 0 ||
         l.oom)) {
        if (l.oom) snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        int done = 0; /* the whole network was redone in this round already */
        for (size_t j = 0; j < i && !done; j++)
            done = l.k[j].whole && strcmp(l.k[j].cc, l.k[i].cc) == 0 &&
                   strcmp(l.k[j].asn, l.k[i].asn) == 0;
        if (!done) rc = refresh_one(s, &l.k[i], err, errlen);
    }
    free(l.k);
    if (rc < 0) {
        vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
        return -1;
    }
    if (vt_db_query(s, "COMMIT", NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    return (int)l.n;
}

int vt_episodes_refresh(vt_store *s, int max, char *err, size_t errlen)
{
    return episodes_refresh(s, max, 1, err, errlen);
}

int vt_episodes_refresh_nowait(vt_store *s, int max, char *err, size_t errlen)
{
    return episodes_refresh(s, max, 0, err, errlen);
}

static int load_episode(void *arg, int nc, const char *const *cols)
{
    eplist *l = arg;
    if (nc < EPISODE_NCOLS) return 0;
    vt_episode *e = ep_new(l);
    if (!e) return 1;
    cpy(e->kind, sizeof(e->kind), cols[0]);
    cpy(e->scope, sizeof(e->scope), cols[1]);
    cpy(e->cc, sizeof(e->cc), cols[2]);
    cpy(e->asn, sizeof(e->asn), cols[3]);
    cpy(e->target, sizeof(e->target), cols[4]);
    cpy(e->test, sizeof(e->test), cols[5]);
    cpy(e->platform, sizeof(e->platform), cols[6]);
    cpy(e->category, sizeof(e->category), cols[7]);
    cpy(e->start, sizeof(e->start), cols[8]);
    cpy(e->end, sizeof(e->end), cols[9]);
    e->hours = (int)num(cols[10]);
    e->measurements = num(cols[11]);
    e->anomalies = num(cols[12]);
    e->confirmed_count = num(cols[13]);
    e->confirmed = e->confirmed_count > 0;
    e->failures = num(cols[14]);
    double *d[7] = {&e->max_probes,          &e->share,          &e->latency_ms,
                    &e->baseline_latency_ms, &e->throughput_bps, &e->baseline_throughput_bps,
                    &e->policer_bps};
    for (int i = 0; i < 7; i++)
        *d[i] = cols[15 + i + (i >= 2)] ? strtod(cols[15 + i + (i >= 2)], NULL) : -1;
    cpy(e->top_verdict, sizeof(e->top_verdict), cols[17]);
    e->intermittent_count = num(cols[23]);
    return 0;
}

static int load_hour(void *arg, int nc, const char *const *cols)
{
    cpy(arg, 20, nc > 0 ? cols[0] : NULL);
    return 1;
}

int vt_episodes_load(vt_store *s, const vt_detect_query *q, vt_episode **out, size_t *nout,
                     char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    if ((q->since[0] && vt_rollup_parse_time(q->since) < 0) ||
        (q->until[0] && vt_rollup_parse_time(q->until) < 0)) {
        snprintf(err, errlen, "bad time range");
        return -1;
    }
    char sql[1024];
    const char *p[6];
    int np = 0;
    int off = snprintf(sql, sizeof(sql), "SELECT %s FROM episodes WHERE 1=1", EPISODE_COLS);
    if (q->since[0]) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND end_hour > ?");
        p[np++] = q->since;
    }
    if (q->until[0]) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND start_hour < ?");
        p[np++] = q->until;
    }
    if (q->cc) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND probe_cc = ?");
        p[np++] = q->cc;
    }
    if (q->asn) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, " AND probe_asn = ?");
        p[np++] = q->asn;
    }
    if (q->target) { /* outages belong to no target */
        off += snprintf(sql + off, sizeof(sql) - (size_t)off,
                        " AND target_id = ? AND kind <> 'outage'");
        p[np++] = q->target;
    }
    if (q->platform)
        snprintf(sql + off, sizeof(sql) - (size_t)off, " AND platform = ? AND kind <> 'outage'");
    if (q->platform) p[np++] = q->platform;
    eplist el = {0};
    if (vt_db_query(s, sql, p, np, load_episode, &el, err, errlen) < 0 || el.oom) {
        if (el.oom) snprintf(err, errlen, "out of memory");
        free(el.e);
        return -1;
    }
    if (el.n) qsort(el.e, el.n, sizeof(*el.e), cmp_ep);
    /* Ongoing: the episode's last hour is its network's newest (before until), as vt_detect
     * says. One look-up per network in the answer. */
    struct netend {
        char cc[3], asn[16];
        long long end;
    } *ne = NULL;
    size_t nne = 0;
    for (size_t i = 0; i < el.n; i++) {
        vt_episode *e = &el.e[i];
        size_t j = 0;
        while (j < nne && (strcmp(ne[j].cc, e->cc) || strcmp(ne[j].asn, e->asn)))
            j++;
        if (j == nne) {
            struct netend *np2 = realloc(ne, (nne + 1) * sizeof(*ne));
            char data_end[20] = "";
            const char *pq[3] = {e->cc, e->asn, q->until};
            if (!np2 ||
                vt_db_query(s,
                            q->until[0] ? "SELECT MAX(hour) FROM rollup_hourly WHERE probe_cc = ? "
                                          "AND probe_asn = ? AND hour < ?"
                                        : "SELECT MAX(hour) FROM rollup_hourly WHERE probe_cc = ? "
                                          "AND probe_asn = ?",
                            pq, q->until[0] ? 3 : 2, load_hour, data_end, err, errlen) < 0) {
                if (!np2) snprintf(err, errlen, "out of memory");
                free(np2 ? np2 : ne);
                free(el.e);
                return -1;
            }
            ne = np2;
            memcpy(ne[j].cc, e->cc, sizeof(ne[j].cc));
            memcpy(ne[j].asn, e->asn, sizeof(ne[j].asn));
            ne[j].end = data_end[0] ? vt_rollup_parse_time(data_end) : -1;
            nne++;
        }
        e->ongoing = vt_rollup_parse_time(e->end) - 3600 >= ne[j].end;
    }
    free(ne);
    *out = el.e;
    *nout = el.n;
    return 0;
}
