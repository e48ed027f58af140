/* RFC 4180 CSV reader over an in-memory buffer: quoted fields may hold commas, doubled quotes and
 * line breaks; records end with LF or CRLF; a UTF-8 BOM and blank lines are skipped. Internal to
 * libvantage (targets.c, fingerprints.c). */
#ifndef VANTAGE_CSV_H
#define VANTAGE_CSV_H

#include <stddef.h>

typedef struct vt_csv {
    const char *data;
    size_t len, pos;
    const char *name; /* file name for messages */
    size_t line;      /* line number at pos (1-based) */
    size_t rec_line;  /* line where the last record returned started */
    char **fields;    /* the last record's fields, NUL-terminated */
    size_t n_fields;
    /* private */
    char *buf;
    size_t buf_len, buf_cap;
    size_t *offs;
    size_t offs_cap;
} vt_csv;

void vt_csv_init(vt_csv *c, const char *data, size_t len, const char *name);
/* 1: a record is in c->fields; 0: end of input; -1: malformed input, err names name:line. */
int vt_csv_next(vt_csv *c, char *err, size_t errlen);
void vt_csv_free(vt_csv *c);
/* Index of the column named name in the record (case-sensitive), or -1. */
int vt_csv_column(const vt_csv *c, const char *name);

#endif
