/* Shared declarations of vantage-probe's subcommands. */
#ifndef VANTAGE_PROBE_CLI_H
#define VANTAGE_PROBE_CLI_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes (documented in the man page and docs/volunteer.md). */
enum {
    VT_EXIT_OK = 0,
    VT_EXIT_FAILURE = 1,      /* could not run: bad target file, no resolver, ... */
    VT_EXIT_USAGE = 2,        /* bad command line */
    VT_EXIT_NOTHING = 3,      /* nothing was measured */
    VT_EXIT_UPLOAD_PENDING = 4, /* measured, but some measurements wait in the spool */
    VT_EXIT_LOCKED = 5,       /* another run holds the lock */
    VT_EXIT_NO_CONSENT = 6,   /* the risks were not accepted (probe/consent.c) */
    VT_EXIT_STOPPED = 7,      /* stopped early by SIGTERM/SIGINT; what was measured is spooled */
};

/* Text from a state file or the collector, for a terminal or a log: at most n - 1 bytes,
 * control bytes (an escape sequence) dropped. Returns out. */
static inline const char *vt_cli_clean(char *out, size_t n, const char *s)
{
    size_t j = 0;
    for (; s && *s && j + 1 < n; s++)
        if ((unsigned char)*s >= 0x20 && *s != 0x7f) out[j++] = *s;
    out[j] = 0;
    return out;
}

/* Per-platform tallies of a run, for the summary table. */
typedef struct vt_summary vt_summary;
vt_summary *vt_summary_new(void);
void vt_summary_add(vt_summary *s, const cJSON *measurement);
/* Prints the table; color when the stream is a terminal. */
void vt_summary_print(const vt_summary *s, FILE *out, int color);
size_t vt_summary_count(const vt_summary *s);
/* How many measurements got verdict v (a class of the table: "probe_offline", ...). */
size_t vt_summary_count_verdict(const vt_summary *s, const char *v);
void vt_summary_free(vt_summary *s);
/* Words a volunteer understands for a verdict. */
const char *vt_summary_verdict_words(const char *verdict);

#endif
