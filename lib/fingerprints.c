/* Blocking fingerprints: loading (OONI and Citizen Lab CSV formats) and matching. */
#include "vantage/fingerprints.h"

#include "csv.h"
#include "hex.h"
#include "strbuf.h"
#include "textfile.h"
#include "vantage/targets.h"

#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Body "contains" patterns of 4 bytes or more are found in one pass over the body: a hash of each
 * pattern's first 4 bytes selects a bucket of candidates (CSR layout, ascending fingerprint index),
 * so a 64 KiB body against thousands of patterns costs one table look-up per byte. */
typedef struct idx_entry {
    uint32_t key; /* first 4 bytes of the pattern */
    uint32_t fp;  /* index into items */
} idx_entry;

struct vt_fp_index {
    unsigned bits;
    uint32_t *start; /* 2^bits + 1 offsets into entries */
    idx_entry *entries;
    uint32_t *others; /* body fingerprints not in the table, ascending */
    size_t n_others;
    uint32_t *dns, *header; /* fingerprints by location, ascending */
    size_t n_dns, n_header;
};

void vt_fp_init(vt_fp_set *s)
{
    memset(s, 0, sizeof *s);
}

static void index_free(vt_fp_index *x)
{
    if (!x) return;
    free(x->start);
    free(x->entries);
    free(x->others);
    free(x->dns);
    free(x->header);
    free(x);
}

static void fp_free(vt_fp *f)
{
    free(f->name);
    free(f->scope);
    free(f->other_names);
    free(f->header_name);
    free(f->pattern);
    for (size_t i = 0; i < f->n_expected_countries; i++)
        free(f->expected_countries[i]);
    free(f->expected_countries);
    free(f->source);
    free(f->exp_url);
    free(f->notes);
    free(f->origin);
    if (f->re) {
        regfree(f->re);
        free(f->re);
    }
    memset(f, 0, sizeof *f);
}

void vt_fp_free(vt_fp_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        fp_free(&s->items[i]);
    free(s->items);
    for (size_t i = 0; i < s->n_warnings; i++)
        free(s->warnings[i]);
    free(s->warnings);
    index_free(s->index);
    memset(s, 0, sizeof *s);
}

const vt_fp *vt_fp_find(const vt_fp_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0) return &s->items[i];
    return NULL;
}

/* ---- RE2 -> POSIX ERE ------------------------------------------------------------------- */

static const char ere_special[] = ".[]()*+?{}|^$\\";

/* A literal byte outside brackets. */
static void put_literal(vt_strbuf *b, char c)
{
    if (c && strchr(ere_special, c)) vt_strbuf_putc(b, '\\');
    vt_strbuf_putc(b, c);
}

/* "{n}", "{n,}" or "{n,m}" at p: its length, else 0 (RE2 then reads '{' literally). */
static size_t interval_len(const char *p)
{
    const char *q = p + 1;
    if (!isdigit((unsigned char)*q)) return 0;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == ',') {
        q++;
        while (isdigit((unsigned char)*q))
            q++;
    }
    return *q == '}' ? (size_t)(q + 1 - p) : 0;
}

/* glibc's regcomp copies a group once per counted repetition and its epsilon closures grow with
 * the square of the node count: a 3 KB pattern such as "(ab|ab|...){200}" takes gigabytes. The
 * translated pattern's node count, counted repetitions expanded, is capped well above any real
 * fingerprint (the longest in OONI's and Citizen Lab's lists is 100 characters). */
#define ERE_MAX_NODES 1024
#define ERE_MAX_DEPTH 32

static unsigned long ere_nodes(const char *p)
{
    unsigned long stack[ERE_MAX_DEPTH], size = 0, last = 0;
    int depth = 0;
    while (*p) {
        unsigned long atom = 1;
        if (*p == '\\' && p[1]) {
            p += 2;
        } else if (*p == '[') {
            p++;
            if (*p == '^') p++;
            if (*p == ']') p++;
            while (*p && *p != ']') {
                const char *end = p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')
                                      ? strstr(p + 2, (char[]){p[1], ']', 0})
                                      : NULL;
                p = end ? end + 2 : p + 1;
            }
            if (*p) p++;
        } else if (*p == '(') {
            if (depth == ERE_MAX_DEPTH) return ULONG_MAX;
            stack[depth++] = size;
            size = 0;
            p++;
            continue;
        } else if (*p == ')' && depth > 0) {
            atom = size + 2;
            size = stack[--depth];
            p++;
        } else if (*p == '{' && isdigit((unsigned char)p[1])) {
            char *q;
            unsigned long m = strtoul(p + 1, &q, 10), n = m + 1;
            if (*q == ',' && isdigit((unsigned char)q[1])) n = strtoul(q + 1, &q, 10);
            if (*q == ',') q++;
            p = *q == '}' ? q + 1 : q;
            if (n < m) n = m;
            if (n > ERE_MAX_NODES) return ULONG_MAX;
            size += last * n; /* the atom already counted once stands for the copy a star adds */
            last *= n + 1;
            if (size > ERE_MAX_NODES || last > ERE_MAX_NODES) return ULONG_MAX;
            continue;
        } else if (*p == '+' || *p == '*' || *p == '?') {
            /* glibc builds "a+" as "aa*": a copy of the operand. */
            size += *p == '+' ? last + 1 : 1;
            last = *p == '+' ? 2 * last + 1 : last + 1;
            p++;
            if (size > ERE_MAX_NODES || last > ERE_MAX_NODES) return ULONG_MAX;
            continue;
        } else {
            p++;
        }
        size += atom;
        last = atom;
        if (size > ERE_MAX_NODES) return ULONG_MAX;
    }
    return size;
}

/* Translates what RE2 and POSIX ERE share or can express; -1 with why for the rest. */
static int re2_to_ere(const char *src, vt_strbuf *out, int *cflags, char *why, size_t whylen)
{
    const char *p = src;
    int dotall = 0, last_quant = 0;
    unsigned long counted = 0;
    *cflags = REG_EXTENDED | REG_NOSUB;
    /* Leading flags: (?i) (?s) (?is) ... */
    if (p[0] == '(' && p[1] == '?' && p[2] != ':' && strchr(p, ')')) {
        const char *q = p + 2;
        for (; *q && *q != ')'; q++) {
            if (*q == 'i')
                *cflags |= REG_ICASE;
            else if (*q == 's')
                dotall = 1;
            else
                break;
        }
        if (*q == ')') p = q + 1;
    }
    while (*p) {
        char c = *p;
        int quant = 0;
        if (c == '\\') {
            char e = p[1];
            if (!e) {
                snprintf(why, whylen, "trailing backslash");
                return -1;
            }
            p += 2;
            switch (e) {
            case 'd':
                vt_strbuf_puts(out, "[0-9]");
                break;
            case 'D':
                vt_strbuf_puts(out, "[^0-9]");
                break;
            case 's':
                vt_strbuf_puts(out, "[[:space:]]");
                break;
            case 'S':
                vt_strbuf_puts(out, "[^[:space:]]");
                break;
            case 'w':
                vt_strbuf_puts(out, "[[:alnum:]_]");
                break;
            case 'W':
                vt_strbuf_puts(out, "[^[:alnum:]_]");
                break;
            case 'b':
                vt_strbuf_puts(out, "\\b");
                break;
            case 'B':
                vt_strbuf_puts(out, "\\B");
                break;
            case 'A':
                vt_strbuf_putc(out, '^');
                break;
            case 'z':
                vt_strbuf_putc(out, '$');
                break;
            case 'n':
                vt_strbuf_putc(out, '\n');
                break;
            case 't':
                vt_strbuf_putc(out, '\t');
                break;
            case 'r':
                vt_strbuf_putc(out, '\r');
                break;
            case 'f':
                vt_strbuf_putc(out, '\f');
                break;
            case 'v':
                vt_strbuf_putc(out, '\v');
                break;
            case 'x':
                if (vt_hex_digit(p[0]) >= 0 && vt_hex_digit(p[1]) >= 0 &&
                    (p[0] != '0' || p[1] != '0')) {
                    put_literal(out, (char)(vt_hex_digit(p[0]) * 16 + vt_hex_digit(p[1])));
                    p += 2;
                    break;
                }
                snprintf(why, whylen, "unsupported \\x escape");
                return -1;
            default:
                if (ispunct((unsigned char)e)) {
                    put_literal(out, e);
                    break;
                }
                snprintf(why, whylen, "unsupported escape \\%c", e);
                return -1;
            }
        } else if (c == '.') {
            vt_strbuf_puts(out, dotall ? "." : "[^\n]");
            p++;
        } else if (c == '(') {
            if (p[1] == '?') {
                if (p[2] == ':') {
                    p += 3;
                } else if (p[2] == 'P' && p[3] == '<' && strchr(p, '>')) {
                    p = strchr(p, '>') + 1;
                } else {
                    snprintf(why, whylen, "unsupported group syntax \"(?%c\"", p[2] ? p[2] : ' ');
                    return -1;
                }
            } else {
                p++;
            }
            vt_strbuf_putc(out, '(');
        } else if ((c == '*' || c == '+' || c == '?') && !last_quant) {
            vt_strbuf_putc(out, c);
            p++;
            quant = 1;
        } else if (c == '?' && last_quant == 1) {
            p++; /* lazy quantifier: the same language, which is all a match needs */
            last_quant = 2;
            continue;
        } else if ((c == '*' || c == '+' || c == '?' || (c == '{' && interval_len(p))) &&
                   last_quant) {
            /* RE2 refuses "a**" too; glibc would copy the operand per operator, exponentially. */
            snprintf(why, whylen, "bad repetition operator");
            return -1;
        } else if (c == '{') {
            size_t n = interval_len(p);
            if (n) {
                /* Counted repetition multiplies the automaton: keep it small and rare. */
                const char *q = p + 1;
                while (q < p + n) {
                    unsigned long v = strtoul(q, (char **)&q, 10);
                    counted += v < 100000 ? v : 100000;
                    q++;
                }
                if (counted > 256) {
                    snprintf(why, whylen, "counted repetitions above 256 in total");
                    return -1;
                }
                vt_strbuf_put(out, p, n);
                p += n;
                quant = 1;
            } else {
                vt_strbuf_puts(out, "\\{");
                p++;
            }
        } else if (c == '}') {
            vt_strbuf_puts(out, "\\}");
            p++;
        } else if (c == '[') {
            int dash = 0, count = 0;
            vt_strbuf_putc(out, '[');
            p++;
            if (*p == '^') {
                vt_strbuf_putc(out, '^');
                p++;
            }
            if (*p == ']') {
                vt_strbuf_putc(out, ']');
                p++;
                count++;
            }
            while (*p && *p != ']') {
                if (p[0] == '[' && p[1] == ':') {
                    const char *end = strstr(p + 2, ":]");
                    if (!end) {
                        snprintf(why, whylen, "unterminated character class");
                        return -1;
                    }
                    vt_strbuf_put(out, p, (size_t)(end + 2 - p));
                    p = end + 2;
                } else if (p[0] == '\\') {
                    char e = p[1];
                    p += 2;
                    switch (e) {
                    case 'd':
                        vt_strbuf_puts(out, "[:digit:]");
                        break;
                    case 's':
                        vt_strbuf_puts(out, "[:space:]");
                        break;
                    case 'w':
                        vt_strbuf_puts(out, "[:alnum:]_");
                        break;
                    case 'n':
                        vt_strbuf_putc(out, '\n');
                        break;
                    case 't':
                        vt_strbuf_putc(out, '\t');
                        break;
                    case 'r':
                        vt_strbuf_putc(out, '\r');
                        break;
                    case '-':
                        dash = 1;
                        break;
                    case '^':
                        if (count == 0) {
                            snprintf(why, whylen, "escaped ^ first in a bracket expression");
                            return -1;
                        }
                        vt_strbuf_putc(out, '^');
                        break;
                    case ']':
                        snprintf(why, whylen, "escaped ] inside a bracket expression");
                        return -1;
                    default:
                        if (e && ispunct((unsigned char)e)) {
                            vt_strbuf_putc(out, e);
                            break;
                        }
                        snprintf(why, whylen, "unsupported escape \\%c in brackets", e ? e : ' ');
                        return -1;
                    }
                } else {
                    vt_strbuf_putc(out, *p++);
                }
                count++;
            }
            if (*p != ']') {
                snprintf(why, whylen, "unterminated bracket expression");
                return -1;
            }
            if (dash) vt_strbuf_putc(out, '-');
            vt_strbuf_putc(out, ']');
            p++;
        } else {
            vt_strbuf_putc(out, c);
            p++;
        }
        last_quant = quant;
    }
    if (out->oom) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (!out->p) vt_strbuf_puts(out, "");
    return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef enum { FMT_OONI, FMT_CL_HTTP, FMT_CL_DNS } fp_format;

typedef struct cols {
    fp_format format;
    int name, scope, other_names, location, pattern_type, pattern, confidence, countries, source,
        exp_url, notes;
} cols;

static int detect(const vt_csv *c, cols *k)
{
    k->name = vt_csv_column(c, "name");
    k->scope = vt_csv_column(c, "scope");
    k->other_names = vt_csv_column(c, "other_names");
    k->location = vt_csv_column(c, "location_found");
    k->pattern_type = vt_csv_column(c, "pattern_type");
    k->pattern = vt_csv_column(c, "pattern");
    k->confidence = vt_csv_column(c, "confidence_no_fp");
    k->countries = vt_csv_column(c, "expected_countries");
    k->source = vt_csv_column(c, "source");
    k->exp_url = vt_csv_column(c, "exp_url");
    k->notes = vt_csv_column(c, "notes");
    if (k->name < 0 || k->scope < 0) return -1;
    if (k->location >= 0 && k->pattern >= 0) {
        k->format = k->pattern_type >= 0 ? FMT_OONI : FMT_CL_HTTP;
        return 0;
    }
    k->pattern = vt_csv_column(c, "response");
    if (k->pattern >= 0) {
        k->format = FMT_CL_DNS;
        return 0;
    }
    return -1;
}

static const char *col(const vt_csv *c, int i)
{
    return i >= 0 && (size_t)i < c->n_fields ? c->fields[i] : "";
}

__attribute__((format(printf, 4, 5))) static int row_error(char *err, size_t errlen,
                                                           const vt_csv *c, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%zu: %s", c->name, c->rec_line, what);
    return -1;
}

/* "PK", "AE,SA", "ID RU", "['RU']", "[]", "['']" */
static int parse_countries(vt_fp *f, const char *s, char *why, size_t whylen)
{
    char tok[8];
    size_t tl = 0;
    for (const char *p = s;; p++) {
        char ch = *p;
        if (ch && strchr("[]'\"", ch)) continue;
        if (!ch || ch == ',' || isspace((unsigned char)ch)) {
            if (tl) {
                if (tl != 2) {
                    tok[tl < sizeof tok ? tl : sizeof tok - 1] = 0;
                    snprintf(why, whylen, "expected_countries: \"%s\" is not a country code", s);
                    return -1;
                }
                tok[2] = 0;
                char **nc =
                    realloc(f->expected_countries, (f->n_expected_countries + 1) * sizeof *nc);
                if (!nc) goto oom;
                f->expected_countries = nc;
                if (!(nc[f->n_expected_countries] = strdup(tok))) goto oom;
                f->n_expected_countries++;
                tl = 0;
            }
            if (!ch) break;
            continue;
        }
        if (!isalpha((unsigned char)ch) || tl >= 2) {
            snprintf(why, whylen, "expected_countries: \"%.60s\" is not a list of country codes",
                     s);
            return -1;
        }
        tok[tl++] = (char)toupper((unsigned char)ch);
    }
    return 0;
oom:
    snprintf(why, whylen, "out of memory");
    return -1;
}

static int add_warning(vt_fp_set *s, const char *msg)
{
    char **nw = realloc(s->warnings, (s->n_warnings + 1) * sizeof *nw);
    if (!nw) return -1;
    s->warnings = nw;
    if (!(nw[s->n_warnings] = strdup(msg))) return -1;
    s->n_warnings++;
    return 0;
}

/* 1: added; 0: skipped with a warning; -1: error. */
static int load_row(vt_fp_set *s, const vt_csv *c, const cols *k, size_t ncols, char *err,
                    size_t errlen)
{
    char why[200];
    vt_fp f;
    memset(&f, 0, sizeof f);
    if (c->n_fields != ncols)
        return row_error(err, errlen, c, "expected %zu fields (as in the header), got %zu", ncols,
                         c->n_fields);
    const char *name = col(c, k->name), *pattern = col(c, k->pattern);
    const char *loc = k->format == FMT_CL_DNS ? "dns" : col(c, k->location);
    if (!*name) return row_error(err, errlen, c, "name is empty");
    if (!*pattern)
        return row_error(err, errlen, c, "%s: %s is empty", name,
                         k->format == FMT_CL_DNS ? "response" : "pattern");
    if (strcmp(loc, "dns") == 0) {
        f.location = VT_FP_DNS;
    } else if (strcmp(loc, "body") == 0) {
        f.location = VT_FP_BODY;
    } else if (strcmp(loc, "header") == 0) {
        f.location = VT_FP_HEADER; /* Citizen Lab: any header */
    } else if (strncmp(loc, "header.", 7) == 0 && loc[7]) {
        f.location = VT_FP_HEADER;
        for (const char *p = loc + 7; *p; p++)
            if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
                return row_error(err, errlen, c, "%s: location_found \"%s\": bad header name", name,
                                 loc);
    } else {
        return row_error(err, errlen, c,
                         "%s: location_found \"%s\": expected dns, body or header.<name>", name,
                         loc);
    }
    if (k->format == FMT_OONI) {
        const char *pt = col(c, k->pattern_type);
        if (strcmp(pt, "full") == 0)
            f.pattern_type = VT_FP_FULL;
        else if (strcmp(pt, "prefix") == 0)
            f.pattern_type = VT_FP_PREFIX;
        else if (strcmp(pt, "contains") == 0)
            f.pattern_type = VT_FP_CONTAINS;
        else if (strcmp(pt, "regexp") == 0)
            f.pattern_type = VT_FP_REGEXP;
        else
            return row_error(err, errlen, c,
                             "%s: pattern_type \"%s\": expected full, prefix, contains or regexp",
                             name, pt);
    } else {
        f.pattern_type = k->format == FMT_CL_DNS ? VT_FP_FULL : VT_FP_CONTAINS;
    }
    const char *conf = col(c, k->confidence);
    if (*conf) {
        char *end;
        long v = strtol(conf, &end, 10);
        if (*end || v < 0 || v > 1000000)
            return row_error(err, errlen, c, "%s: confidence_no_fp \"%s\": expected an integer",
                             name, conf);
        f.confidence_no_fp = (int)v;
    }
    if (f.pattern_type == VT_FP_REGEXP) {
        vt_strbuf ere = {0};
        int cflags;
        int rc = re2_to_ere(pattern, &ere, &cflags, why, sizeof why);
        if (rc == 0 && ere_nodes(ere.p) > ERE_MAX_NODES) {
            snprintf(why, sizeof why, "too complex: above %d nodes with repetitions expanded",
                     ERE_MAX_NODES);
            rc = -1;
        }
        if (rc == 0) {
            f.re = malloc(sizeof(regex_t));
            if (!f.re) {
                free(ere.p);
                return row_error(err, errlen, c, "out of memory");
            }
            int e = regcomp(f.re, ere.p, cflags);
            if (e != 0) {
                char msg[120];
                regerror(e, f.re, msg, sizeof msg);
                snprintf(why, sizeof why, "regcomp: %s", msg);
                free(f.re);
                f.re = NULL;
                rc = -1;
            }
        }
        free(ere.p);
        if (rc < 0) {
            char w[600];
            snprintf(w, sizeof w, "%s:%zu: %s: regexp \"%.200s\" skipped: %s", c->name, c->rec_line,
                     name, pattern, why);
            s->n_skipped++;
            if (add_warning(s, w) < 0) return row_error(err, errlen, c, "out of memory");
            return 0;
        }
    }
    if (parse_countries(&f, col(c, k->countries), why, sizeof why) < 0) {
        fp_free(&f);
        return row_error(err, errlen, c, "%s: %s", name, why);
    }
    int named_header = f.location == VT_FP_HEADER && strncmp(loc, "header.", 7) == 0;
    char origin[512];
    snprintf(origin, sizeof origin, "%s:%zu", vt_textfile_basename(c->name), c->rec_line);
    f.name = strdup(name);
    f.scope = strdup(col(c, k->scope));
    f.other_names = strdup(col(c, k->other_names));
    f.pattern = strdup(pattern);
    f.pattern_len = strlen(pattern);
    f.source = strdup(col(c, k->source));
    f.exp_url = strdup(col(c, k->exp_url));
    f.notes = strdup(col(c, k->notes));
    f.origin = strdup(origin);
    if (named_header) {
        f.header_name = strdup(loc + 7);
        if (f.header_name)
            for (char *p = f.header_name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
    }
    if (!f.name || !f.scope || !f.other_names || !f.pattern || !f.source || !f.exp_url ||
        !f.notes || !f.origin || (named_header && !f.header_name))
        goto oom;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        vt_fp *ni = realloc(s->items, ncap * sizeof *ni);
        if (!ni) goto oom;
        s->items = ni;
        s->cap = ncap;
    }
    s->items[s->n++] = f;
    return 1;
oom:
    fp_free(&f);
    return row_error(err, errlen, c, "out of memory");
}

static uint32_t load4(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t bucket(uint32_t key, unsigned bits)
{
    return (key * 2654435761u) >> (32 - bits);
}

static int indexed(const vt_fp *f)
{
    return f->location == VT_FP_BODY && f->pattern_type == VT_FP_CONTAINS && f->pattern_len >= 4;
}

static int build_index(vt_fp_set *s)
{
    vt_fp_index *x = calloc(1, sizeof *x);
    size_t n_idx = 0;
    if (!x) return -1;
    for (size_t i = 0; i < s->n; i++)
        n_idx += indexed(&s->items[i]);
    x->bits = 10;
    while (((size_t)1 << x->bits) < n_idx * 2 && x->bits < 24)
        x->bits++;
    size_t nb = (size_t)1 << x->bits;
    x->start = calloc(nb + 1, sizeof *x->start);
    x->entries = calloc(n_idx ? n_idx : 1, sizeof *x->entries);
    x->others = calloc(s->n ? s->n : 1, sizeof *x->others);
    x->dns = calloc(s->n ? s->n : 1, sizeof *x->dns);
    x->header = calloc(s->n ? s->n : 1, sizeof *x->header);
    if (!x->start || !x->entries || !x->others || !x->dns || !x->header) {
        index_free(x);
        return -1;
    }
    /* Counting sort into buckets keeps each bucket in ascending fingerprint order. */
    for (size_t i = 0; i < s->n; i++)
        if (indexed(&s->items[i]))
            x->start[bucket(load4((const unsigned char *)s->items[i].pattern), x->bits) + 1]++;
    for (size_t b = 0; b < nb; b++)
        x->start[b + 1] += x->start[b];
    uint32_t *fill = calloc(nb, sizeof *fill);
    if (!fill) {
        index_free(x);
        return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        const vt_fp *f = &s->items[i];
        if (indexed(f)) {
            uint32_t key = load4((const unsigned char *)f->pattern);
            uint32_t b = bucket(key, x->bits);
            x->entries[x->start[b] + fill[b]++] = (idx_entry){key, (uint32_t)i};
        } else if (f->location == VT_FP_BODY) {
            x->others[x->n_others++] = (uint32_t)i;
        } else if (f->location == VT_FP_DNS) {
            x->dns[x->n_dns++] = (uint32_t)i;
        } else {
            x->header[x->n_header++] = (uint32_t)i;
        }
    }
    free(fill);
    index_free(s->index);
    s->index = x;
    return 0;
}

int vt_fp_load_csv(vt_fp_set *s, const char *data, size_t len, const char *name, char *err,
                   size_t errlen)
{
    int rc = -1, added = 0;
    size_t n0 = s->n, skipped0 = s->n_skipped, warn0 = s->n_warnings;
    vt_csv c;
    cols k;
    vt_csv_init(&c, data, len, name);
    int r = vt_csv_next(&c, err, errlen);
    if (r < 0) goto done;
    if (r == 0) {
        snprintf(err, errlen, "%s:1: empty file, expected a fingerprint CSV header", name);
        goto done;
    }
    size_t ncols = c.n_fields;
    if (detect(&c, &k) < 0) {
        snprintf(err, errlen,
                 "%s:%zu: not a fingerprint file: expected OONI's header (name,scope,other_names,"
                 "location_found,pattern_type,pattern,...) or Citizen Lab's (name,...,pattern,"
                 "location_found,... or name,response,...)",
                 name, c.rec_line);
        goto done;
    }
    while ((r = vt_csv_next(&c, err, errlen)) == 1) {
        int a = load_row(s, &c, &k, ncols, err, errlen);
        if (a < 0) goto done;
        added += a;
    }
    if (r < 0) goto done;
    if (build_index(s) < 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto done;
    }
    rc = added;
done:
    if (rc < 0) {
        while (s->n > n0)
            fp_free(&s->items[--s->n]);
        while (s->n_warnings > warn0)
            free(s->warnings[--s->n_warnings]);
        s->n_skipped = skipped0;
    }
    vt_csv_free(&c);
    return rc;
}

int vt_fp_load(vt_fp_set *s, const char *path, char *err, size_t errlen)
{
    char *data;
    size_t len;
    if (vt_textfile_read(path, VT_TEXTFILE_MAX, &data, &len, err, errlen) < 0) return -1;
    int rc = vt_fp_load_csv(s, data, len, path, err, errlen);
    free(data);
    return rc;
}

int vt_fp_load_shipped(vt_fp_set *s, char *err, size_t errlen)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/fingerprints.csv", vt_targets_default_dir());
    return stat(path, &st) == 0 ? vt_fp_load(s, path, err, errlen) : 0;
}

/* ---- matching ----------------------------------------------------------------------------- */

static int match_bytes(const vt_fp *f, const char *v, size_t n, int icase)
{
    switch (f->pattern_type) {
    case VT_FP_FULL:
        return n == f->pattern_len &&
               (icase ? strncasecmp(v, f->pattern, n) == 0 : memcmp(v, f->pattern, n) == 0);
    case VT_FP_PREFIX:
        return n >= f->pattern_len && (icase ? strncasecmp(v, f->pattern, f->pattern_len) == 0
                                             : memcmp(v, f->pattern, f->pattern_len) == 0);
    case VT_FP_CONTAINS:
        if (icase) {
            for (size_t i = 0; i + f->pattern_len <= n; i++)
                if (strncasecmp(v + i, f->pattern, f->pattern_len) == 0) return 1;
            return 0;
        }
        return memmem(v, n, f->pattern, f->pattern_len) != NULL;
    case VT_FP_REGEXP: {
        if (!f->re) return 0;
        regmatch_t m[1];
        m[0].rm_so = 0;
        m[0].rm_eo = (regoff_t)n;
        return regexec(f->re, v, 1, m, REG_STARTEND) == 0;
    }
    }
    return 0;
}

const vt_fp *vt_fp_match_dns(const vt_fp_set *s, const char *addr)
{
    if (!s->index || !addr) return NULL;
    size_t n = strlen(addr);
    /* A trailing dot (a name from a DNS answer) does not make a difference. */
    if (n > 1 && addr[n - 1] == '.') n--;
    for (size_t i = 0; i < s->index->n_dns; i++) {
        const vt_fp *f = &s->items[s->index->dns[i]];
        if (match_bytes(f, addr, n, 1)) return f;
    }
    return NULL;
}

const vt_fp *vt_fp_match_body(const vt_fp_set *s, const void *body, size_t len)
{
    const vt_fp_index *x = s->index;
    const unsigned char *b = body;
    size_t best = SIZE_MAX;
    if (!x || (!body && len)) return NULL;
    if (x->entries && len >= 4) {
        for (size_t i = 0; i + 4 <= len; i++) {
            uint32_t key = load4(b + i);
            uint32_t bk = bucket(key, x->bits);
            for (uint32_t j = x->start[bk]; j < x->start[bk + 1]; j++) {
                const idx_entry *e = &x->entries[j];
                if (e->fp >= best) break;
                if (e->key != key) continue;
                const vt_fp *f = &s->items[e->fp];
                if (len - i >= f->pattern_len && memcmp(b + i, f->pattern, f->pattern_len) == 0) {
                    best = e->fp;
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < x->n_others && x->others[i] < best; i++) {
        const vt_fp *f = &s->items[x->others[i]];
        if (match_bytes(f, (const char *)(len ? body : ""), len, 0)) {
            best = x->others[i];
            break;
        }
    }
    return best == SIZE_MAX ? NULL : &s->items[best];
}

const vt_fp *vt_fp_match_header(const vt_fp_set *s, const char *name, const char *value)
{
    if (!s->index || !name || !value) return NULL;
    size_t n = strlen(value);
    for (size_t i = 0; i < s->index->n_header; i++) {
        const vt_fp *f = &s->items[s->index->header[i]];
        if (f->header_name && strcasecmp(f->header_name, name) != 0) continue;
        if (match_bytes(f, value, n, 0)) return f;
    }
    return NULL;
}

int vt_fp_confirms(const vt_fp *fp, const char *probe_cc)
{
    if (!fp) return 0;
    if (strcmp(fp->scope, "nat") == 0 || strcmp(fp->scope, "isp") == 0) return 1;
    if (!probe_cc) return 0;
    for (size_t i = 0; i < fp->n_expected_countries; i++)
        if (strcasecmp(fp->expected_countries[i], probe_cc) == 0) return 1;
    return 0;
}
