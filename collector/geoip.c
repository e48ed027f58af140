/* ip-location-db CSV ranges in sorted arrays. Every address is kept as 16 bytes, IPv4 as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d), so one array and memcmp order serve both families.
 * Ranges may nest or overlap (a /24 of one file inside a /8 of another, two files of the same
 * family): after each load the ranges as loaded are cut into disjoint intervals, each answered
 * by the narrowest range holding it (of equal ones, the one loaded last), so that a lookup stays
 * one binary search. MaxMind DB files (MMDB) are read with libmaxminddb, memory-mapped. */
#include "geoip.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <maxminddb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/json.h"

typedef struct range {
    unsigned char start[16], end[16];
    char *value; /* "AS13335\tCloudflare" for ASN ranges, "AU" for countries */
} range;

typedef struct table {
    range *raw; /* as loaded, in load order; owns the values */
    size_t nraw, cap;
    range *r; /* disjoint, sorted, values borrowed from raw: what lookups search */
    size_t n;
} table;

#define MAX_MMDB 8

struct vt_geoip {
    table asn, country;
    MMDB_s mmdb[MAX_MMDB];
    int n_mmdb;
};

vt_geoip *vt_geoip_new(void)
{
    return calloc(1, sizeof(vt_geoip));
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nraw; i++)
        free(t->raw[i].value);
    free(t->raw);
    free(t->r);
    memset(t, 0, sizeof(*t));
}

void vt_geoip_free(vt_geoip *g)
{
    if (!g) return;
    table_free(&g->asn);
    table_free(&g->country);
    for (int i = 0; i < g->n_mmdb; i++)
        MMDB_close(&g->mmdb[i]);
    free(g);
}

size_t vt_geoip_count(const vt_geoip *g, int country)
{
    return country ? g->country.nraw : g->asn.nraw;
}

size_t vt_geoip_mmdb_count(const vt_geoip *g)
{
    return g ? (size_t)g->n_mmdb : 0;
}

/* A country code as answered: two ASCII letters, upper case; 0 when s is not one. */
static int country_code(const char *s, size_t len, char out[3])
{
    if (len != 2 || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1])) return 0;
    out[0] = (char)toupper((unsigned char)s[0]);
    out[1] = (char)toupper((unsigned char)s[1]);
    out[2] = 0;
    return 1;
}

/* An organisation name as answered: control characters left out, at most cap - 1 bytes, cut
 * at a character boundary; "" when the name is not valid UTF-8. */
static void org_name(const char *s, size_t len, char *out, size_t cap)
{
    size_t j = 0;
    out[0] = 0;
    if (!vt_utf8_valid((const unsigned char *)s, len)) return;
    for (size_t i = 0; i < len && j + 1 < cap; i++)
        if ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f) out[j++] = s[i];
    out[j] = 0;
    while (j > 0 && !vt_utf8_valid((const unsigned char *)out, j)) /* cut in a character */
        out[--j] = 0;
}

/* Text address, or a decimal number (IPv4 when it fits 32 bits and v4hint, else IPv6). */
static int parse_addr(const char *s, unsigned char out[16], int v4hint)
{
    struct in_addr a4;
    struct in6_addr a6;
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, &a4) == 1) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        memcpy(out, &a6, 16);
        return 0;
    }
    if (!*s || strlen(s) > 39) return -1;
    /* Decimal: multiply-add into a 16-byte big-endian number. */
    unsigned char v[16] = {0};
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        unsigned carry = (unsigned)(*p - '0');
        for (int i = 15; i >= 0; i--) {
            unsigned x = v[i] * 10u + carry;
            v[i] = (unsigned char)(x & 0xff);
            carry = x >> 8;
        }
        if (carry) return -1;
    }
    int small = 1;
    for (int i = 0; i < 12; i++)
        small &= v[i] == 0;
    if (small && v4hint) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, v + 12, 4);
    } else {
        memcpy(out, v, 16);
    }
    return 0;
}

/* Splits one CSV line in place (quotes with "" escapes). Returns the number of fields. The last
 * of max fields, unquoted, runs to the end of the line: an organisation named "Example, Inc."
 * without quotes is kept whole. */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {
            char *w = ++p;
            f[n++] = w;
            while (*p) {
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            char *rest = strchr(p, ',');
            *w = 0;
            if (!rest) break;
            p = rest + 1;
        } else {
            f[n++] = p;
            if (n == max) break;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = 0;
            p = c + 1;
        }
    }
    return n;
}

/* Addresses as numbers, for the interval arithmetic of flatten(). */
__extension__ typedef unsigned __int128 u128;

static u128 num(const unsigned char a[16])
{
    u128 v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 8) | a[i];
    return v;
}

static void bytes(u128 v, unsigned char a[16])
{
    for (int i = 15; i >= 0; i--) {
        a[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* A loaded range in the sweep: its bounds as numbers and its place in load order. */
typedef struct span {
    u128 start, end;
    size_t i; /* index in raw: later loaded, larger */
} span;

static int cmp_span_start(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_u128(const void *a, const void *b)
{
    u128 x = *(const u128 *)a, y = *(const u128 *)b;
    return x < y ? -1 : x > y;
}

/* 1 when x answers before y: narrower, or as wide and loaded later. */
static int better(const span *x, const span *y)
{
    u128 wx = x->end - x->start, wy = y->end - y->start;
    return wx != wy ? wx < wy : x->i > y->i;
}

static void heap_push(span *h, size_t *n, span v)
{
    size_t k = (*n)++;
    while (k > 0 && better(&v, &h[(k - 1) / 2])) {
        h[k] = h[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    h[k] = v;
}

static void heap_pop(span *h, size_t *n)
{
    span v = h[--*n];
    size_t k = 0;
    for (;;) {
        size_t c = 2 * k + 1;
        if (c >= *n) break;
        if (c + 1 < *n && better(&h[c + 1], &h[c])) c++;
        if (!better(&h[c], &v)) break;
        h[k] = h[c];
        k = c;
    }
    if (*n) h[k] = v;
}

/* Rebuilds t->r from t->raw: a sweep over every range's start and end + 1; between two such
 * bounds the ranges holding an address are the same, and the best of them (a heap: narrowest,
 * then loaded last) answers; neighbours with the same answer are joined. -1 out of memory. */
static int flatten(table *t)
{
    size_t n = t->nraw, nb = 0, nh = 0, no = 0;
    span *sp = malloc((n ? n : 1) * sizeof(*sp)), *heap = malloc((n ? n : 1) * sizeof(*heap));
    u128 *b = malloc((2 * n + 1) * sizeof(*b));
    range *out = malloc((2 * n + 1) * sizeof(*out));
    if (!sp || !heap || !b || !out) {
        free(sp);
        free(heap);
        free(b);
        free(out);
        return -1;
    }
    const u128 max = ~(u128)0;
    for (size_t i = 0; i < n; i++) {
        sp[i] = (span){num(t->raw[i].start), num(t->raw[i].end), i};
        b[nb++] = sp[i].start;
        if (sp[i].end != max) b[nb++] = sp[i].end + 1;
    }
    qsort(sp, n, sizeof(*sp), cmp_span_start);
    qsort(b, nb, sizeof(*b), cmp_u128);
    size_t next = 0;
    for (size_t k = 0; k < nb; k++) {
        if (k > 0 && b[k] == b[k - 1]) continue;
        while (next < n && sp[next].start <= b[k])
            heap_push(heap, &nh, sp[next++]);
        while (nh && heap[0].end < b[k])
            heap_pop(heap, &nh);
        if (!nh) continue;
        size_t k2 = k + 1;
        while (k2 < nb && b[k2] == b[k])
            k2++;
        u128 end = k2 < nb ? b[k2] - 1 : max;
        const range *src = &t->raw[heap[0].i];
        if (no && out[no - 1].value == src->value && num(out[no - 1].end) + 1 == b[k]) {
            bytes(end, out[no - 1].end);
            continue;
        }
        bytes(b[k], out[no].start);
        bytes(end, out[no].end);
        out[no++].value = src->value;
    }
    free(sp);
    free(heap);
    free(b);
    free(t->r);
    t->r = out;
    t->n = no;
    return 0;
}

static int load(table *t, const char *path, int country, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t first = t->nraw, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = -1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        /* A UTF-8 byte order mark (a file saved by a spreadsheet or a Windows editor) would
         * make the first line look like a header, and its range be skipped without a word. */
        char *ln = line;
        if (lineno == 1 && len >= 3 && memcmp(ln, "\xef\xbb\xbf", 3) == 0) {
            ln += 3;
            len -= 3;
        }
        if (len == 0 || ln[0] == '#') continue;
        char *fl[4];
        int nf = csv_split(ln, fl, 4);
        range r;
        memset(&r, 0, sizeof(r));
        if (nf < 3) {
            snprintf(err, errlen, "%s:%zu: expected ip_start,ip_end,%s", path, lineno,
                     country ? "country" : "asn,org");
            goto done;
        }
        int v4 = strchr(fl[0], ':') == NULL;
        if (parse_addr(fl[0], r.start, v4) < 0 || parse_addr(fl[1], r.end, v4) < 0) {
            if (lineno == 1) /* a header line */
                continue;
            snprintf(err, errlen, "%s:%zu: not an IP address range", path, lineno);
            goto done;
        }
        /* An IPv4 start (held as ::ffff:a.b.c.d) with an IPv6 end would cover everything
         * between them in IPv6's space; the other way round it would read as backwards. The
         * family as written: "::,::ffff:255.255.255.255" is one IPv6 range. */
        if ((strchr(fl[0], ':') == NULL) != (strchr(fl[1], ':') == NULL)) {
            snprintf(err, errlen,
                     "%s:%zu: the range's start and end are not the same address family", path,
                     lineno);
            goto done;
        }
        if (memcmp(r.start, r.end, 16) > 0) {
            snprintf(err, errlen, "%s:%zu: range ends before it starts", path, lineno);
            goto done;
        }
        char buf[200];
        if (country) {
            if (!country_code(fl[2], strlen(fl[2]), buf)) {
                snprintf(err, errlen, "%s:%zu: country must be two letters", path, lineno);
                goto done;
            }
        } else {
            const char *a = fl[2];
            if (strncasecmp(a, "AS", 2) == 0) a += 2;
            char *e;
            errno = 0;
            unsigned long asn = strtoul(a, &e, 10);
            if (!*a || *e || errno || asn > 4294967295ul) {
                snprintf(err, errlen, "%s:%zu: asn must be a number", path, lineno);
                goto done;
            }
            char org[121];
            org_name(nf > 3 ? fl[3] : "", nf > 3 ? strlen(fl[3]) : 0, org, sizeof(org));
            snprintf(buf, sizeof(buf), "AS%lu\t%s", asn, org);
        }
        if (t->nraw == t->cap) {
            size_t nc = t->cap ? t->cap * 2 : 1024;
            range *nr = realloc(t->raw, nc * sizeof(*nr));
            if (!nr) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto done;
            }
            t->raw = nr;
            t->cap = nc;
        }
        r.value = strdup(buf);
        if (!r.value) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto done;
        }
        t->raw[t->nraw++] = r;
    }
    if (flatten(t) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    rc = 0;
done:
    if (rc < 0) {
        for (size_t i = first; i < t->nraw; i++)
            free(t->raw[i].value);
        t->nraw = first;
    }
    free(line);
    fclose(f);
    return rc;
}

int vt_geoip_load_asn(vt_geoip *g, const char *path, char *err, size_t errlen)
{
    return load(&g->asn, path, 0, err, errlen);
}

int vt_geoip_load_country(vt_geoip *g, const char *path, char *err, size_t errlen)
{
    return load(&g->country, path, 1, err, errlen);
}

int vt_geoip_load_mmdb(vt_geoip *g, const char *path, char *err, size_t errlen)
{
    if (g->n_mmdb == MAX_MMDB) {
        snprintf(err, errlen, "at most %d MMDB files", MAX_MMDB);
        return -1;
    }
    MMDB_s *m = &g->mmdb[g->n_mmdb];
    errno = 0;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, m);
    if (rc != MMDB_SUCCESS) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path,
                 (rc == MMDB_IO_ERROR || rc == MMDB_FILE_OPEN_ERROR) && e ? strerror(e)
                                                                          : MMDB_strerror(rc));
        return -1;
    }
    g->n_mmdb++;
    return 0;
}

/* The string at path in entry, or NULL (len set). */
static const char *mmdb_string(MMDB_entry_s *e, const char *const *path, uint32_t *len)
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING)
        return NULL;
    *len = d.data_size;
    return d.utf8_string;
}

/* What the MMDB files know of a (as parsed: IPv4 as ::ffff:a.b.c.d), for what the CSV files
 * did not answer (have_cc, have_asn): the first file with an answer wins. Field names of
 * GeoLite2 / DB-IP (country.iso_code, autonomous_system_number, autonomous_system_organization)
 * and of ip-location-db's MMDB files (country_code). */
static void mmdb_lookup(const vt_geoip *g, const unsigned char a[16], int have_cc, int have_asn,
                        vt_geoip_result *r)
{
    static const char *const iso[] = {"country", "iso_code", NULL};
    static const char *const code[] = {"country_code", NULL};
    static const char *const *const cc_paths[] = {iso, code};
    static const char *const num[] = {"autonomous_system_number", NULL};
    static const char *const org[] = {"autonomous_system_organization", NULL};
    /* IPv4 as IPv4: MMDB files keep it under ::/96, and only some alias ::ffff:0:0/96. */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    const struct sockaddr *sa = (const struct sockaddr *)&sin6;
    if (memcmp(a, mapped, 12) == 0) {
        memcpy(&sin.sin_addr, a + 12, 4);
        sa = (const struct sockaddr *)&sin;
    } else {
        memcpy(&sin6.sin6_addr, a, 16);
    }
    for (int i = 0; i < g->n_mmdb && (!have_cc || !have_asn); i++) {
        int merr = 0;
        MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&g->mmdb[i], sa, &merr);
        if (merr != MMDB_SUCCESS || !res.found_entry) continue;
        uint32_t len = 0;
        const char *s;
        for (int k = 0; !have_cc && k < 2; k++)
            if ((s = mmdb_string(&res.entry, cc_paths[k], &len)) && country_code(s, len, r->cc))
                have_cc = 1;
        MMDB_entry_data_s d;
        if (!have_asn && MMDB_aget_value(&res.entry, &d, num) == MMDB_SUCCESS && d.has_data) {
            uint64_t v = d.type == MMDB_DATA_TYPE_UINT32   ? d.uint32
                         : d.type == MMDB_DATA_TYPE_UINT16 ? d.uint16
                         : d.type == MMDB_DATA_TYPE_UINT64 ? d.uint64
                                                           : 0;
            if (v > 0 && v <= 4294967295u) {
                snprintf(r->asn, sizeof(r->asn), "AS%lu", (unsigned long)v);
                if ((s = mmdb_string(&res.entry, org, &len)))
                    org_name(s, len, r->org, sizeof(r->org));
                have_asn = 1;
            }
        }
    }
}

/* The range holding a, or NULL: the last range starting at or before a (t->r is disjoint). */
static const range *find(const table *t, const unsigned char a[16])
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(t->r[mid].start, a, 16) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return NULL;
    const range *r = &t->r[lo - 1];
    return memcmp(a, r->end, 16) <= 0 ? r : NULL;
}

void vt_geoip_lookup(const vt_geoip *g, const char *addr, vt_geoip_result *r)
{
    snprintf(r->cc, sizeof(r->cc), "ZZ");
    snprintf(r->asn, sizeof(r->asn), "AS0");
    r->org[0] = 0;
    unsigned char a[16];
    if (!g || !addr || strspn(addr, "0123456789") == strlen(addr) || parse_addr(addr, a, 1) < 0)
        return;
    const range *c = find(&g->country, a);
    if (c) snprintf(r->cc, sizeof(r->cc), "%s", c->value);
    const range *s = find(&g->asn, a);
    if (s) {
        const char *tab = strchr(s->value, '\t');
        snprintf(r->asn, sizeof(r->asn), "%.*s", (int)(tab - s->value), s->value);
        snprintf(r->org, sizeof(r->org), "%s", tab + 1);
    }
    if (g->n_mmdb && (!c || !s)) mmdb_lookup(g, a, c != NULL, s != NULL, r);
}
