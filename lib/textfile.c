/* Capped whole-file reads and positions for messages. */
#include "textfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int vt_textfile_read(const char *path, size_t max, char **data, size_t *len, char *err,
                     size_t errlen)
{
    int rc = -1;
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    FILE *f = fopen(path, "rb");
    *data = NULL;
    *len = 0;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory, expected a file", path);
        goto done;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size > max) {
        snprintf(err, errlen, "%s: file too large (%llu bytes, the limit is %zu)", path,
                 (unsigned long long)st.st_size, max);
        goto done;
    }
    /* Read in chunks even for regular files: a file may grow, and pipes have no size. */
    size_t cap = 64 * 1024;
    buf = malloc(cap + 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                snprintf(err, errlen, "%s: file too large (more than %zu bytes)", path, max);
                goto done;
            }
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
                goto done;
            }
            break;
        }
    }
    if (n > max) {
        snprintf(err, errlen, "%s: file too large (%zu bytes, the limit is %zu)", path, n, max);
        goto done;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    fclose(f);
    return rc;
}

void vt_textfile_position(const char *data, size_t len, size_t offset, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    if (offset > len) offset = len;
    for (size_t i = 0; i < offset; i++) {
        if (data[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

size_t vt_textfile_utf8_invalid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        unsigned int cp;
        if (c < 0x80) {
            if (c == 0) return i;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i <= need) return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return len;
}

const char *vt_textfile_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void vt_textfile_stem(const char *path, char *out, size_t outlen)
{
    const char *base = vt_textfile_basename(path);
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (outlen == 0) return;
    if (n >= outlen) n = outlen - 1;
    memcpy(out, base, n);
    out[n] = 0;
}

/* buf holds a directory; 1 when buf/marker exists (buf left as the directory), else 0. */
static int has_marker(char *buf, size_t n, const char *marker)
{
    struct stat st;
    size_t len = strlen(buf);
    if (snprintf(buf + len, n - len, "/%s", marker) >= (int)(n - len)) {
        buf[len] = 0;
        return 0;
    }
    int ok = stat(buf, &st) == 0;
    buf[len] = 0;
    return ok;
}

const char *vt_data_dir(const char *env, const char *src, const char *installed, const char *marker,
                        int up, const char *datadir, char *buf, size_t n)
{
    char exe[4096], path[4096];
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return buf;
    }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = 0;
        memcpy(path, exe, (size_t)len + 1); /* the loop cuts exe at its slashes */
        char *slash = strrchr(exe, '/');
        for (int i = 0; slash && i < up; i++) {
            *slash = 0; /* exe is now a directory: the executable's, then its parents */
            if (snprintf(buf, n, "%s/%s", exe, src) < (int)n && has_marker(buf, n, marker))
                return buf;
            slash = strrchr(exe, '/');
        }
        /* the executable's directory's parent: X for X/bin/vantage-... */
        char *s1 = strrchr(path, '/');
        if (s1) *s1 = 0;
        char *s2 = s1 ? strrchr(path, '/') : NULL;
        if (s2) {
            *s2 = 0;
            if (snprintf(buf, n, "%s/share/vantage/%s", path, installed) < (int)n &&
                has_marker(buf, n, marker))
                return buf;
        }
    }
    snprintf(buf, n, "%s/%s", datadir, installed);
    return buf;
}
