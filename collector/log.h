/* The collector's messages on standard error beside the request lines (api.c): one line each,
 * and with --log-json one JSON object each, so that a log reader never sees half a message or
 * a line that is not JSON. A message never holds a client's address (docs/privacy.md). */
#ifndef VANTAGE_COLLECTOR_LOG_H
#define VANTAGE_COLLECTOR_LOG_H

#include <stddef.h>

/* --log-json: set once, before any thread logs. */
void vt_log_set_json(int on);

/* Now, UTC, as every log line starts: "2026-11-30T08:00:56.123Z" (out >= 32 bytes). */
void vt_log_timestamp(char *out, size_t outlen);

/* One message: control characters (a libpq error's newlines and tabs) become spaces, trailing
 * blanks are dropped; as JSON {"ts":...,"msg":...}. One write to stderr, safe from any thread. */
void vt_log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The line vt_log_msg writes for msg, into out (NUL-terminated, cut to fit, ends in '\n');
 * ts is the timestamp the JSON form carries. Exposed for the tests. */
void vt_log_format(char *out, size_t outlen, const char *ts, const char *msg, int json);

#endif
