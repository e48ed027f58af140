/* RFC 4180 CSV reader. */
#include "csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vt_csv_init(vt_csv *c, const char *data, size_t len, const char *name)
{
    memset(c, 0, sizeof *c);
    c->data = data;
    c->len = len;
    c->name = name;
    c->line = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) c->pos = 3;
}

void vt_csv_free(vt_csv *c)
{
    free(c->buf);
    free(c->offs);
    free(c->fields);
    c->buf = NULL;
    c->offs = NULL;
    c->fields = NULL;
    c->n_fields = 0;
}

static int put(vt_csv *c, char ch)
{
    if (c->buf_len == c->buf_cap) {
        size_t ncap = c->buf_cap ? c->buf_cap * 2 : 256;
        char *nb = realloc(c->buf, ncap);
        if (!nb) return -1;
        c->buf = nb;
        c->buf_cap = ncap;
    }
    c->buf[c->buf_len++] = ch;
    return 0;
}

/* Ends the current field: NUL-terminates it and records where the next one starts. */
static int end_field(vt_csv *c, size_t *start)
{
    if (put(c, 0) < 0) return -1;
    if (c->n_fields == c->offs_cap) {
        size_t ncap = c->offs_cap ? c->offs_cap * 2 : 16;
        size_t *no = realloc(c->offs, ncap * sizeof *no);
        if (!no) return -1;
        c->offs = no;
        c->offs_cap = ncap;
    }
    c->offs[c->n_fields++] = *start;
    *start = c->buf_len;
    return 0;
}

int vt_csv_next(vt_csv *c, char *err, size_t errlen)
{
    const char *d = c->data;
    size_t start = 0;
    c->buf_len = 0;
    c->n_fields = 0;
    /* Blank lines between records carry nothing (Python's csv gives an empty row). */
    while (c->pos < c->len && (d[c->pos] == '\n' || (d[c->pos] == '\r' && c->pos + 1 < c->len &&
                                                     d[c->pos + 1] == '\n'))) {
        c->pos += d[c->pos] == '\r' ? 2 : 1;
        c->line++;
    }
    if (c->pos >= c->len) return 0;
    c->rec_line = c->line;
    for (;;) {
        /* At the start of a field. */
        if (c->pos < c->len && d[c->pos] == '"') {
            size_t qline = c->line;
            c->pos++;
            for (;;) {
                if (c->pos >= c->len) {
                    snprintf(err, errlen, "%s:%zu: quoted field opened here is never closed",
                             c->name, qline);
                    return -1;
                }
                char ch = d[c->pos++];
                if (ch == '"') {
                    if (c->pos < c->len && d[c->pos] == '"') {
                        c->pos++;
                        if (put(c, '"') < 0) goto oom;
                        continue;
                    }
                    break;
                }
                if (ch == 0) {
                    snprintf(err, errlen, "%s:%zu: NUL byte in a field", c->name, c->line);
                    return -1;
                }
                if (ch == '\n') c->line++;
                if (put(c, ch) < 0) goto oom;
            }
            if (c->pos < c->len && d[c->pos] != ',' && d[c->pos] != '\n' &&
                !(d[c->pos] == '\r' && c->pos + 1 < c->len && d[c->pos + 1] == '\n') &&
                !(d[c->pos] == '\r' && c->pos + 1 == c->len)) {
                snprintf(err, errlen,
                         "%s:%zu: unexpected character after a closing quote (a quote inside a "
                         "quoted field must be doubled)",
                         c->name, c->line);
                return -1;
            }
        } else {
            while (c->pos < c->len) {
                char ch = d[c->pos];
                if (ch == ',' || ch == '\n') break;
                if (ch == '\r' && (c->pos + 1 == c->len || d[c->pos + 1] == '\n')) break;
                if (ch == 0) {
                    snprintf(err, errlen, "%s:%zu: NUL byte in a field", c->name, c->line);
                    return -1;
                }
                /* A quote inside an unquoted field is kept as data, as Python's csv does. */
                if (put(c, ch) < 0) goto oom;
                c->pos++;
            }
        }
        if (end_field(c, &start) < 0) goto oom;
        if (c->pos >= c->len) break;
        if (d[c->pos] == ',') {
            c->pos++;
            continue;
        }
        /* End of record: LF, CRLF, or a CR at the very end of the input. */
        if (d[c->pos] == '\r') c->pos++;
        if (c->pos < c->len && d[c->pos] == '\n') {
            c->pos++;
            c->line++;
        }
        break;
    }
    char **nf = realloc(c->fields, (c->n_fields + 1) * sizeof *nf);
    if (!nf) goto oom;
    c->fields = nf;
    for (size_t i = 0; i < c->n_fields; i++)
        c->fields[i] = c->buf + c->offs[i];
    c->fields[c->n_fields] = NULL;
    return 1;
oom:
    snprintf(err, errlen, "%s:%zu: out of memory", c->name, c->line);
    return -1;
}

int vt_csv_column(const vt_csv *c, const char *name)
{
    for (size_t i = 0; i < c->n_fields; i++)
        if (strcmp(c->fields[i], name) == 0) return (int)i;
    return -1;
}
