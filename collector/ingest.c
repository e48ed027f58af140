/* Ingest: JSONL parsing, df-000 validation, privacy scrubbing, in-batch duplicates. */
#include "ingest.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "json_arena.h"
#include "vantage/json.h"
#include "vantage/measurement.h"

void vt_ingest_limits_default(vt_ingest_limits *l)
{
    l->max_body = 16u << 20;
    l->max_inflated = 64u << 20;
    l->max_measurement = 1u << 20;
    l->max_string = 256u << 10;
    l->max_depth = 64;
    l->max_batch = 1000;
    l->max_values = 50000;
    l->max_batch_values = 1000000;
}

int vt_ingest_inflate(const unsigned char *in, size_t len, size_t cap, unsigned char **out,
                      size_t *outlen, char *err, size_t errlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    *out = NULL;
    *outlen = 0;
    if (inflateInit2(&z, 15 + 32) != Z_OK) { /* +32: gzip or zlib header, detected */
        snprintf(err, errlen, "cannot start gzip decoder");
        return -1;
    }
    size_t size = len * 4 + 1024, used = 0;
    if (size > cap + 1) size = cap + 1;
    unsigned char *buf = malloc(size + 1);
    int rc = -1, zr = Z_OK;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    if (len > 0xffffffffu) {
        snprintf(err, errlen, "body too large");
        rc = -2;
        goto done;
    }
    for (;;) {
        if (used == size) {
            if (size > cap) {
                snprintf(err, errlen, "inflated body is over the limit of %zu bytes", cap);
                rc = -2;
                goto done;
            }
            size_t ns = size * 2 > cap + 1 ? cap + 1 : size * 2;
            unsigned char *nb = realloc(buf, ns + 1);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                goto done;
            }
            buf = nb;
            size = ns;
        }
        z.next_out = buf + used;
        z.avail_out = (uInt)(size - used);
        zr = inflate(&z, Z_NO_FLUSH);
        used = size - z.avail_out;
        if (zr == Z_STREAM_END) {
            /* Zero bytes after a member (block padding, as tar and some writers leave it) end
             * the body; gzip(1) ignores them too. Anything else must be another member. */
            while (z.avail_in > 0 && *z.next_in == 0) {
                z.next_in++;
                z.avail_in--;
            }
            if (z.avail_in == 0) break;
            /* Concatenated gzip members (as gzip(1) makes them) are valid gzip. */
            if (inflateReset(&z) != Z_OK) {
                snprintf(err, errlen, "body is not valid gzip");
                goto done;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            snprintf(err, errlen, "gzip body is truncated (stream ends early)");
            goto done;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            snprintf(err, errlen, "body is not valid gzip: %s", z.msg ? z.msg : "corrupt data");
            goto done;
        }
    }
    if (used > cap) {
        snprintf(err, errlen, "inflated body is over the limit of %zu bytes", cap);
        rc = -2;
        goto done;
    }
    buf[used] = 0;
    *out = buf;
    *outlen = used;
    buf = NULL;
    rc = 0;
done:
    inflateEnd(&z);
    free(buf);
    return rc;
}

/* One pass over JSON text: maximum nesting depth, and an upper bound of its values (commas
 * and colons outside strings, plus one). */
static int json_scan(const char *s, size_t len, size_t *values)
{
    int depth = 0, max = 0, in_str = 0;
    size_t n = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' || c == ':') {
            n++;
        }
    }
    if (values) *values = n;
    return max;
}

/* Whether JSON text that cJSON parsed whole is already what storing it would print, up to
 * spacing and number spelling: strict JSON (no control characters, numbers in JSON's grammar
 * and well inside a double's range) whose strings decode to their own text but for the
 * two-character escapes (no \u: a \u0000 ends a string for cJSON, so the scrubber would
 * not see what follows it). Such a line is stored as received, not re-printed. */
int vt_ingest_json_plain(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        unsigned char c = *p;
        if (c == '"') {
            for (p++; p < e && *p != '"'; p++) {
                if (*p < 0x20) return 0;
                if (*p == '\\' && (++p == e || *p == 'u')) return 0;
            }
            if (p == e) return 0;
            p++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (c == '-') p++;
            const unsigned char *d = p;
            while (p < e && *p >= '0' && *p <= '9')
                p++;
            if (p == d || p - d > 100 || (*d == '0' && p - d > 1)) return 0;
            if (p < e && *p == '.') {
                d = ++p;
                while (p < e && *p >= '0' && *p <= '9')
                    p++;
                if (p == d) return 0;
            }
            if (p < e && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < e && (*p == '+' || *p == '-')) p++;
                d = p;
                while (p < e && *p >= '0' && *p <= '9')
                    p++;
                if (p == d || p - d > 2) return 0;
            }
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '{' || c == '}' || c == '[' ||
                   c == ']' || c == ',' || c == ':' || (c >= 'a' && c <= 'z')) {
            p++; /* letters: true, false, null (cJSON checked them) */
        } else {
            return 0;
        }
    }
    return 1;
}

int vt_ingest_json_depth(const char *s, size_t len)
{
    return json_scan(s, len, NULL);
}

size_t vt_ingest_json_values(const char *s, size_t len)
{
    size_t n;
    json_scan(s, len, &n);
    return n;
}

int vt_ingest_parse_time(const char *s, double *epoch)
{
    if (!s || strlen(s) != 19) return -1;
    static const char shape[] = "dddd-dd-dd dd:dd:dd";
    for (int i = 0; i < 19; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i]) return -1;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    struct tm want = tm;
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -1;
    time_t t = timegm(&tm);
    /* timegm normalises 2026-02-30 to March 2: a real date comes back unchanged. */
    if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday)
        return -1;
    *epoch = (double)t;
    return 0;
}

static int is_uid(const char *s)
{
    return vt_hex_lower(s, VT_UID_LEN);
}

__attribute__((format(printf, 3, 4))) static int bad(char *reason, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* How much of a key to quote in a reason: at most 64 bytes, cut between characters (a reason
 * cut inside one would make the whole answer invalid UTF-8 for a strict client). */
static int quoted_len(const char *k)
{
    size_t l = strnlen(k, 65);
    if (l <= 64) return (int)l;
    l = 64;
    while (l > 0 && ((unsigned char)k[l] & 0xC0) == 0x80)
        l--;
    return (int)l;
}

/* Checks every string and key: valid UTF-8 (after escapes are decoded) and length. */
static int check_strings(const cJSON *v, size_t max, char *reason, size_t n)
{
    for (; v; v = v->next) {
        if (v->string) {
            size_t l = strlen(v->string);
            if (l > max) return bad(reason, n, "a key is longer than the limit");
            if (!vt_utf8_valid((const unsigned char *)v->string, l))
                return bad(reason, n, "a key is not valid UTF-8");
        }
        if (cJSON_IsString(v) && v->valuestring) {
            size_t l = strlen(v->valuestring);
            const char *key = v->string ? v->string : "(array item)";
            if (l > max)
                return bad(reason, n, "string value of '%.*s' is longer than the limit",
                           quoted_len(key), key);
            if (!vt_utf8_valid((const unsigned char *)v->valuestring, l))
                return bad(reason, n, "string value of '%.*s' is not valid UTF-8", quoted_len(key),
                           key);
        }
        if (v->child && check_strings(v->child, max, reason, n) < 0) return -1;
    }
    return 0;
}

static int need_string(const cJSON *m, const char *key, size_t maxlen, const char **out,
                       char *reason, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    if (!v) return bad(reason, n, "missing required field '%s'", key);
    if (!cJSON_IsString(v) || !v->valuestring)
        return bad(reason, n, "field '%s' must be a string", key);
    size_t l = strlen(v->valuestring);
    if (l == 0 || l > maxlen) return bad(reason, n, "field '%s' is empty or too long", key);
    *out = v->valuestring;
    return 0;
}

/* The first key of o's members that another member repeats, or NULL (quadratic: objects that
 * are checked hold tens of keys). */
static const char *repeated_key(const cJSON *o)
{
    for (const cJSON *a = o->child; a; a = a->next)
        for (const cJSON *b = a->next; a->string && b; b = b->next)
            if (b->string && strcmp(a->string, b->string) == 0) return a->string;
    return NULL;
}

static const char *opt_string(const cJSON *obj, const char *key);

int vt_ingest_validate(const cJSON *m, double now, const vt_ingest_limits *lim, char *reason,
                       size_t n)
{
    const char *s;
    if (!cJSON_IsObject(m)) return bad(reason, n, "a measurement must be a JSON object");
    if (need_string(m, "measurement_uid", 64, &s, reason, n) < 0) return -1;
    if (!is_uid(s)) return bad(reason, n, "measurement_uid must be 32 lowercase hex characters");
    if (need_string(m, "data_format_version", 16, &s, reason, n) < 0) return -1;
    if (need_string(m, "measurement_start_time", 19, &s, reason, n) < 0) return -1;
    double t;
    if (vt_ingest_parse_time(s, &t) < 0)
        return bad(reason, n, "measurement_start_time must be a UTC date 'YYYY-MM-DD HH:MM:SS'");
    if (t < 1325376000.0) /* 2012-01-01 00:00:00 */
        return bad(reason, n, "measurement_start_time is before 2012");
    if (t > now + 86400.0)
        return bad(reason, n,
                   "measurement_start_time is more than a day in the future (check the probe's "
                   "clock)");
    if (need_string(m, "probe_cc", 2, &s, reason, n) < 0) return -1;
    if (!(strlen(s) == 2 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]) &&
          s[0] <= 'Z' && s[1] <= 'Z'))
        return bad(reason, n, "probe_cc must match ^[A-Z]{2}$");
    if (need_string(m, "probe_asn", 12, &s, reason, n) < 0) return -1;
    int ok = strncmp(s, "AS", 2) == 0 && s[2];
    for (const char *p = s + 2; ok && *p; p++)
        ok = *p >= '0' && *p <= '9';
    if (!ok) return bad(reason, n, "probe_asn must match ^AS[0-9]+$");
    if (need_string(m, "test_name", 64, &s, reason, n) < 0 ||
        need_string(m, "software_name", 64, &s, reason, n) < 0 ||
        need_string(m, "software_version", 64, &s, reason, n) < 0)
        return -1;
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "test_keys");
    if (!tk) return bad(reason, n, "missing required field '%s'", "test_keys");
    if (!cJSON_IsObject(tk)) return bad(reason, n, "field '%s' must be an object", "test_keys");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(m, "input");
    if (in && !cJSON_IsNull(in)) {
        if (!cJSON_IsString(in))
            return bad(reason, n, "field '%s' must be a string or null", "input");
        if (strlen(in->valuestring) > 8192)
            return bad(reason, n, "field '%s' is longer than 8 KiB", "input");
    }
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
    if (ann && !cJSON_IsObject(ann) && !cJSON_IsNull(ann))
        return bad(reason, n, "field '%s' must be an object", "annotations");
    /* The annotations that name a rollup bucket fit its columns whole (rollup.h): cut, two
     * targets would share a bucket, and a cut inside a character made every answer that
     * quotes it invalid UTF-8. */
    static const struct {
        const char *key;
        size_t max;
    } named[] = {{"target_id", 128}, {"platform", 64}, {"category", 64}};
    for (size_t i = 0; cJSON_IsObject(ann) && i < sizeof(named) / sizeof(named[0]); i++) {
        const char *v = opt_string(ann, named[i].key);
        if (v && strlen(v) > named[i].max)
            return bad(reason, n, "annotation '%s' is longer than %zu bytes", named[i].key,
                       named[i].max);
    }
    /* A repeated key: this check and the probe_ip rule read the first, most JSON readers
     * (PostgreSQL's jsonb, Python, JavaScript) the last, so a second "probe_cc" or "probe_ip"
     * would be what everyone else sees. */
    const char *dup = repeated_key(m);
    if (!dup && cJSON_IsObject(tk)) dup = repeated_key(tk);
    if (!dup && cJSON_IsObject(ann)) dup = repeated_key(ann);
    if (dup) return bad(reason, n, "key '%.*s' appears twice in one object", quoted_len(dup), dup);
    return check_strings(m->child, lim->max_string, reason, n);
}

/* Case-insensitive (ASCII) search. */
static const char *find_ci(const char *hay, const char *needle, size_t nl)
{
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, nl) == 0) return p;
    return NULL;
}

static char *replace_all(const char *s, const char *addr, size_t al)
{
    static const char rep[] = "[scrubbed]";
    size_t count = 0;
    for (const char *p = s; (p = find_ci(p, addr, al)); p += al)
        count++;
    if (!count) return NULL;
    size_t n = strlen(s) + count * (sizeof(rep) - 1) + 1;
    char *out = cJSON_malloc(n), *o = out; /* the tree's allocator: it may live in an arena */
    if (!out) return NULL;
    const char *p = s, *q;
    while ((q = find_ci(p, addr, al))) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, rep, sizeof(rep) - 1);
        o += sizeof(rep) - 1;
        p = q + al;
    }
    strcpy(o, p);
    return out;
}

static int scrub_one(cJSON *v, const char *addr, size_t al)
{
    int changed = 0;
    for (; v; v = v->next) {
        if (v->string && !(v->type & cJSON_StringIsConst)) {
            char *r = replace_all(v->string, addr, al);
            if (r) {
                cJSON_free(v->string);
                v->string = r;
                changed++;
            }
        }
        if (cJSON_IsString(v) && v->valuestring && !(v->type & cJSON_IsReference)) {
            char *r = replace_all(v->valuestring, addr, al);
            if (r) {
                cJSON_free(v->valuestring);
                v->valuestring = r;
                changed++;
            }
        }
        if (v->child) changed += scrub_one(v->child, addr, al);
    }
    return changed;
}

int vt_ingest_scrub(cJSON *v, const char *addr)
{
    if (!v || !addr || !*addr) return 0;
    /* scrub_one walks siblings: scrub the root alone, then its children. */
    cJSON *next = v->next;
    v->next = NULL;
    int n = scrub_one(v, addr, strlen(addr));
    v->next = next;
    /* An IPv4-mapped IPv6 peer (::ffff:1.2.3.4) is also scrubbed in its IPv4 form. */
    if (strncasecmp(addr, "::ffff:", 7) == 0 && strchr(addr, '.'))
        n += vt_ingest_scrub(v, addr + 7);
    return n;
}

static const char *opt_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The caller's address is scrubbed unless it is the loopback value probe_ip is forced to
 * anyway: scrubbing "127.0.0.1" would only damage lab measurements of local servers. */
static int must_scrub(const char *addr)
{
    return addr && *addr && strcmp(addr, "127.0.0.1") != 0 && strcmp(addr, "::1") != 0 &&
           strcasecmp(addr, "::ffff:127.0.0.1") != 0;
}

static void reject(vt_ingest_item *it, const char *reason)
{
    it->status = VT_INGEST_REJECTED;
    snprintf(it->reason, sizeof(it->reason), "line %zu: %s", it->line, reason);
    cJSON_Delete(it->m);
    it->m = NULL;
}

static void process_line(vt_ingest_batch *b, vt_ingest_item *it, const char *s, size_t len,
                         const vt_ingest_limits *lim, const char *client_addr, double now)
{
    char reason[160];
    if (len > lim->max_measurement) {
        snprintf(reason, sizeof(reason), "measurement is over the limit of %zu bytes",
                 lim->max_measurement);
        return reject(it, reason);
    }
    if (!vt_utf8_valid((const unsigned char *)s, len))
        return reject(it, "not valid UTF-8 (or contains a NUL byte)");
    size_t values;
    int depth = json_scan(s, len, &values);
    b->values += values;
    if (values > lim->max_values) {
        snprintf(reason, sizeof(reason), "measurement has over %zu JSON values", lim->max_values);
        return reject(it, reason);
    }
    if (depth > lim->max_depth) {
        snprintf(reason, sizeof(reason), "JSON nesting depth %d is over the limit of %d", depth,
                 lim->max_depth);
        return reject(it, reason);
    }
    const char *end = NULL;
    it->m = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (!it->m) return reject(it, "not valid JSON");
    while (end < s + len && (*end == ' ' || *end == '\t' || *end == '\r'))
        end++;
    /* One measurement per line: anything after the value (a second measurement whose newline
     * was lost, garbage) would otherwise be dropped without a word. */
    if (end != s + len)
        return reject(it, "not valid JSON: text after the measurement (one per line)");
    int plain = vt_ingest_json_plain(s, len);
    const char *uid = opt_string(it->m, "measurement_uid");
    if (is_uid(uid)) memcpy(it->uid, uid, VT_UID_LEN + 1);
    if (vt_ingest_validate(it->m, now, lim, reason, sizeof(reason)) < 0) return reject(it, reason);
    /* Privacy: the caller's address goes nowhere; probe_ip is always the placeholder. */
    if (must_scrub(client_addr) && vt_ingest_scrub(it->m, client_addr) > 0) plain = 0;
    /* Case-sensitive, as the replace: "Probe_IP" is another key (and ip would leak). */
    const cJSON *pip = cJSON_GetObjectItemCaseSensitive(it->m, "probe_ip");
    if (!cJSON_IsString(pip) || strcmp(pip->valuestring, "127.0.0.1") != 0) {
        plain = 0;
        cJSON *ip = cJSON_CreateString("127.0.0.1");
        if (!ip) return reject(it, "out of memory");
        if (pip)
            cJSON_ReplaceItemInObjectCaseSensitive(it->m, "probe_ip", ip);
        else
            cJSON_AddItemToObject(it->m, "probe_ip", ip);
    }
    /* Unchanged plain text is stored as received (printing it again was a tenth of ingest's
     * CPU); otherwise the tree is printed. Outside the arena: the body is the row's, free()d. */
    if (plain) {
        it->body = malloc(len + 1);
        if (it->body) {
            memcpy(it->body, s, len);
            it->body[len] = 0;
        }
    } else {
        vt_json_arena *in = vt_json_arena_use(NULL);
        it->body = vt_json_print(it->m);
        vt_json_arena_use(in);
    }
    if (!it->body) return reject(it, "out of memory");
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(it->m, "annotations");
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(it->m, "test_keys");
    const char *col[9] = {
        opt_string(it->m, "measurement_start_time"),
        opt_string(it->m, "probe_cc"),
        opt_string(it->m, "probe_asn"),
        opt_string(it->m, "test_name"),
        opt_string(it->m, "input"),
        opt_string(ann, "target_id"),
        opt_string(ann, "platform"),
        opt_string(ann, "category"),
        opt_string(tk, "verdict"),
    };
    /* The columns are copied out; the tree is kept for the rollups (vt_store_row.parsed) while
     * the batch's trees stay small enough, else it goes now (a tree is many times its text). */
    size_t total = 1;
    for (int i = 0; i < 9; i++)
        total += col[i] ? strlen(col[i]) + 1 : 0;
    it->cols = malloc(total);
    if (!it->cols) return reject(it, "out of memory");
    char *w = it->cols;
    const char *copy[9];
    for (int i = 0; i < 9; i++) {
        copy[i] = NULL;
        if (!col[i]) continue;
        size_t l = strlen(col[i]) + 1;
        memcpy(w, col[i], l);
        copy[i] = w;
        w += l;
    }
    vt_store_row *r = &it->row;
    r->uid = it->uid;
    r->received_at = b->received_at;
    r->measurement_start_time = copy[0];
    r->probe_cc = copy[1];
    r->probe_asn = copy[2];
    r->test_name = copy[3];
    r->input = copy[4];
    r->target_id = copy[5];
    r->platform = copy[6];
    r->category = copy[7];
    r->verdict = copy[8];
    r->body = it->body;
    if (b->values > VT_INGEST_KEEP_VALUES) {
        cJSON_Delete(it->m);
        it->m = NULL;
    }
    r->parsed = it->m;
    it->status = VT_INGEST_ACCEPTED;
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static int cmp_uid_line(const void *a, const void *b)
{
    const vt_ingest_item *x = *(const vt_ingest_item *const *)a;
    const vt_ingest_item *y = *(const vt_ingest_item *const *)b;
    int c = strcmp(x->uid, y->uid);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Duplicates inside the batch: sorted by (uid, line), every one but the first of a uid. */
static void mark_batch_duplicates(vt_ingest_batch *b)
{
    vt_ingest_item **v = malloc((b->n ? b->n : 1) * sizeof(*v));
    size_t n = 0;
    if (!v) { /* fall back to the quadratic scan */
        for (size_t i = 0; i < b->n; i++)
            for (size_t k = 0; k < i && b->items[i].status == VT_INGEST_ACCEPTED; k++)
                if (b->items[k].status == VT_INGEST_ACCEPTED &&
                    strcmp(b->items[k].uid, b->items[i].uid) == 0)
                    b->items[i].status = VT_INGEST_DUPLICATE;
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].status == VT_INGEST_ACCEPTED) v[n++] = &b->items[i];
    qsort(v, n, sizeof(*v), cmp_uid_line);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i]->uid, v[i - 1]->uid) == 0) v[i]->status = VT_INGEST_DUPLICATE;
    free(v);
}

int vt_ingest_parse(const char *data, size_t len, const vt_ingest_limits *lim,
                    const char *client_addr, double now, vt_ingest_batch *b, int *http_status,
                    char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    vt_format_time(now, b->received_at);
    /* Count the measurements first: an oversized batch is refused whole. */
    size_t count = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        if (!is_blank(data + i, e - i)) count++;
        i = e + 1;
    }
    if (count == 0) {
        *http_status = 400;
        snprintf(err, errlen, "empty upload: send one JSON measurement per line");
        return -1;
    }
    if (count > lim->max_batch) {
        *http_status = 400;
        snprintf(err, errlen, "%zu measurements in one upload; at most %zu per batch", count,
                 lim->max_batch);
        return -1;
    }
    b->items = calloc(count, sizeof(*b->items));
    if (!b->items) {
        *http_status = 413;
        snprintf(err, errlen, "upload too large to process");
        return -1;
    }
    b->arena = vt_json_arena_new(); /* NULL (the heap) when the collector did not install it */
    size_t line = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        line++;
        size_t l = e - i;
        if (!is_blank(data + i, l)) {
            if (l && data[i + l - 1] == '\r') l--;
            vt_ingest_item *it = &b->items[b->n++];
            it->line = line;
            /* Trees go into the batch's arena while it keeps them (below KEEP_VALUES). */
            it->in_arena = b->arena && b->values < VT_INGEST_KEEP_VALUES;
            vt_json_arena *prev = vt_json_arena_use(it->in_arena ? b->arena : NULL);
            process_line(b, it, data + i, l, lim, client_addr, now);
            vt_json_arena_use(prev);
            /* Parsing and printing cost per value, on the loop everyone shares. */
            if (b->values > lim->max_batch_values) {
                vt_ingest_batch_free(b);
                *http_status = 413;
                snprintf(err, errlen,
                         "over %zu JSON values in one upload: send fewer measurements per batch",
                         lim->max_batch_values);
                return -1;
            }
        }
        i = e + 1;
    }
    /* The first occurrence of a uid wins. */
    mark_batch_duplicates(b);
    for (size_t i = 0; i < b->n; i++) {
        b->duplicate += b->items[i].status == VT_INGEST_DUPLICATE;
        b->rejected += b->items[i].status == VT_INGEST_REJECTED;
    }
    return 0;
}

static int cmp_row_uid(const void *a, const void *b)
{
    const vt_store_row *x = *(const vt_store_row *const *)a;
    const vt_store_row *y = *(const vt_store_row *const *)b;
    int c = strcmp(x->uid, y->uid);
    /* Same uid: the earlier row (batch order, then line order) first; rows is one array. */
    return c ? c : (x > y) - (x < y);
}

int vt_ingest_store_many(vt_store *s, vt_ingest_batch *const *bs, size_t nb, char *err,
                         size_t errlen)
{
    size_t n = 0;
    for (size_t k = 0; k < nb; k++) {
        bs[k]->accepted = 0;
        for (size_t i = 0; i < bs[k]->n; i++)
            n += bs[k]->items[i].status == VT_INGEST_ACCEPTED;
    }
    if (n == 0) return 0;
    vt_store_row *rows = malloc(n * sizeof(*rows));
    vt_store_row **byuid = nb > 1 ? malloc(n * sizeof(*byuid)) : NULL;
    if (!rows || (nb > 1 && !byuid)) {
        free(rows);
        free(byuid);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t j = 0;
    for (size_t k = 0; k < nb; k++)
        for (size_t i = 0; i < bs[k]->n; i++)
            if (bs[k]->items[i].status == VT_INGEST_ACCEPTED) rows[j++] = bs[k]->items[i].row;
    /* Batches committed together may share a uid (a probe retrying on another connection
     * while its first upload is still queued): the store needs distinct uids, so every
     * occurrence after the first is a duplicate before it reaches the database. */
    size_t m = n;
    if (byuid) {
        for (size_t i = 0; i < n; i++)
            byuid[i] = &rows[i];
        qsort(byuid, n, sizeof(*byuid), cmp_row_uid);
        for (size_t i = 1; i < n; i++)
            if (strcmp(byuid[i]->uid, byuid[i - 1]->uid) == 0) byuid[i]->inserted = -1;
        free(byuid);
        /* The rows to send, in order; the marked ones stay duplicates. */
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (rows[i].inserted != -1) m++;
    }
    vt_store_row *send = rows;
    if (m != n) {
        send = malloc(m * sizeof(*send));
        if (!send) {
            free(rows);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0, w = 0; i < n; i++)
            if (rows[i].inserted != -1) send[w++] = rows[i];
    }
    int rc = vt_store_insert_batch(s, send, m, err, errlen);
    if (rc == 0) {
        size_t w = 0;
        j = 0;
        for (size_t k = 0; k < nb; k++) {
            vt_ingest_batch *b = bs[k];
            for (size_t i = 0; i < b->n; i++) {
                vt_ingest_item *it = &b->items[i];
                if (it->status != VT_INGEST_ACCEPTED) continue;
                int ins = rows[j].inserted != -1 && send[w++].inserted;
                j++;
                if (ins) {
                    b->accepted++;
                } else {
                    it->status = VT_INGEST_DUPLICATE;
                    b->duplicate++;
                }
            }
        }
    }
    if (send != rows) free(send);
    free(rows);
    return rc;
}

int vt_ingest_store(vt_store *s, vt_ingest_batch *b, char *err, size_t errlen)
{
    return vt_ingest_store_many(s, &b, 1, err, errlen);
}

char *vt_ingest_answer(const vt_ingest_batch *b)
{
    static const char *names[] = {"accepted", "duplicate", "rejected"};
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "results");
    for (size_t i = 0; i < b->n; i++) {
        const vt_ingest_item *it = &b->items[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "line", (double)it->line);
        vt_json_add_string_or_null(r, "uid", it->uid[0] ? it->uid : NULL);
        cJSON_AddStringToObject(r, "status", names[it->status]);
        if (it->status == VT_INGEST_REJECTED) cJSON_AddStringToObject(r, "reason", it->reason);
        cJSON_AddItemToArray(arr, r);
    }
    cJSON_AddNumberToObject(o, "accepted", (double)b->accepted);
    cJSON_AddNumberToObject(o, "duplicate", (double)b->duplicate);
    cJSON_AddNumberToObject(o, "rejected", (double)b->rejected);
    char *s = vt_json_print(o);
    cJSON_Delete(o);
    return s;
}

void vt_ingest_batch_free(vt_ingest_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!b->items[i].in_arena) cJSON_Delete(b->items[i].m);
        free(b->items[i].body);
        free(b->items[i].cols);
    }
    vt_json_arena_free(b->arena);
    free(b->items);
    memset(b, 0, sizeof(*b));
}
