/* A growing byte buffer, kept NUL-terminated after every append (so text can be used as a C
 * string; binary content may hold NULs). An allocation failure sets oom and turns every later
 * append into a no-op: check oom once, at the end. Free p when done. */
#ifndef VT_STRBUF_H
#define VT_STRBUF_H

#include <stddef.h>

typedef struct vt_strbuf {
    char *p;
    size_t n, cap;
    int oom;
} vt_strbuf;

void vt_strbuf_put(vt_strbuf *b, const void *d, size_t n);
void vt_strbuf_puts(vt_strbuf *b, const char *s);
void vt_strbuf_putc(vt_strbuf *b, char c);

#endif
