#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

void vt_strbuf_put(vt_strbuf *b, const void *d, size_t n)
{
    if (b->oom) return;
    if (n >= (size_t)-1 / 2 - b->n) {
        b->oom = 1;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

void vt_strbuf_puts(vt_strbuf *b, const char *s)
{
    vt_strbuf_put(b, s, strlen(s));
}

void vt_strbuf_putc(vt_strbuf *b, char c)
{
    vt_strbuf_put(b, &c, 1);
}
