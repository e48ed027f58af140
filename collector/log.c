/* The collector's messages on standard error (log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vantage/json.h"

static int log_json;

void vt_log_set_json(int on)
{
    log_json = on != 0;
}

void vt_log_timestamp(char *out, size_t outlen)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, outlen - k, ".%03ldZ", now.tv_nsec / 1000000);
}

void vt_log_format(char *out, size_t outlen, const char *ts, const char *msg, int json)
{
    if (outlen < 2) {
        if (outlen) out[0] = 0;
        return;
    }
    char text[2048];
    snprintf(text, sizeof(text), "%s", msg);
    size_t n = strlen(text), whole = n;
    /* JSON text is UTF-8: a character cut at the end of the buffer goes; anything else that
     * is not UTF-8 makes every non-ASCII byte a '?'. */
    while (n > 0 && whole - n < 4 && !vt_utf8_valid((const unsigned char *)text, n))
        n--;
    int ascii = !vt_utf8_valid((const unsigned char *)text, n);
    if (ascii) n = whole;
    text[n] = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f || (ascii && c >= 0x80)) text[i] = c >= 0x80 ? '?' : ' ';
    }
    while (n > 0 && text[n - 1] == ' ')
        text[--n] = 0;
    size_t o = 0, room = outlen - 2; /* the newline and the NUL */
    if (json) {
        int k = snprintf(out, outlen, "{\"ts\":\"%s\",\"msg\":\"", ts);
        size_t head = k < 0 ? 0 : (size_t)k < room ? (size_t)k : room;
        o = head;
        for (size_t i = 0; i < n && o + 4 <= room; i++) { /* room for '\\' x, and "} */
            if (text[i] == '"' || text[i] == '\\') out[o++] = '\\';
            out[o++] = text[i];
        }
        /* Escapes are ASCII: a character cut by the room left is cut off whole. */
        while (o > head && !vt_utf8_valid((const unsigned char *)out + head, o - head))
            o--;
        if (o + 2 <= room) {
            out[o++] = '"';
            out[o++] = '}';
        }
    } else {
        o = n < room ? n : room;
        memcpy(out, text, o);
        while (o > 0 && !vt_utf8_valid((const unsigned char *)out, o))
            o--;
    }
    out[o++] = '\n';
    out[o] = 0;
}

void vt_log_msg(const char *fmt, ...)
{
    char msg[2048], line[4200], ts[40] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_json) vt_log_timestamp(ts, sizeof(ts));
    vt_log_format(line, sizeof(line), ts, msg, log_json);
    fputs(line, stderr);
    fflush(stderr);
}
