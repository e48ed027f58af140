/* The summary table at the end of a run: one line per platform, in words a volunteer
 * understands. Reads only the measurements (test_keys.verdict, else the first failure). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vantage/json.h"

/* Most serious first. A VPN measurement with a "blocking" class (address, port, protocol) is
 * counted under that class rather than its verdict: tcp_blocking / tls_blocking name the web
 * phases, which says less to a volunteer about a VPN than "its protocol is blocked". */
#define N_VERDICTS 14
#define LAST_BLOCKING 7 /* index of the last blocking or slowing class: red up to here */
static const char *const verdicts[N_VERDICTS] = {
    "dns_blocking",     "tcp_blocking",    "tls_blocking",
    "http_blocking",    "address_blocked", "port_blocked",
    "protocol_blocked", "throttled",       "down",
    "inconclusive",     "probe_offline",   "ok",
    "failed",           "unknown",
};

typedef struct platform_row {
    char *platform;
    size_t n;
    size_t counts[N_VERDICTS];
    size_t confirmed;
    size_t intermittent; /* evidence.intermittent: a repeat worked, a later one failed again */
} platform_row;

struct vt_summary {
    platform_row *rows;
    size_t n, cap, total;
};

vt_summary *vt_summary_new(void)
{
    return calloc(1, sizeof(vt_summary));
}

void vt_summary_free(vt_summary *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        free(s->rows[i].platform);
    free(s->rows);
    free(s);
}

size_t vt_summary_count(const vt_summary *s)
{
    return s->total;
}

static int verdict_index(const char *v);

size_t vt_summary_count_verdict(const vt_summary *s, const char *v)
{
    size_t n = 0;
    int k = verdict_index(v);
    for (size_t i = 0; i < s->n; i++)
        n += s->rows[i].counts[k];
    return n;
}

const char *vt_summary_verdict_words(const char *v)
{
    if (!v) return "not measured";
    if (!strcmp(v, "ok")) return "reachable";
    if (!strcmp(v, "dns_blocking")) return "blocked (DNS tampering)";
    if (!strcmp(v, "tcp_blocking")) return "blocked (connections cut)";
    if (!strcmp(v, "tls_blocking")) return "blocked (TLS/SNI interference)";
    if (!strcmp(v, "http_blocking")) return "blocked (HTTP interference)";
    if (!strcmp(v, "address_blocked")) return "blocked (VPN server address)";
    if (!strcmp(v, "port_blocked")) return "blocked (VPN port)";
    if (!strcmp(v, "protocol_blocked")) return "blocked (VPN protocol, by DPI)";
    if (!strcmp(v, "throttled")) return "slowed down (throttled)";
    if (!strcmp(v, "down")) return "down everywhere (not censorship)";
    if (!strcmp(v, "probe_offline")) return "your connection was offline";
    if (!strcmp(v, "inconclusive")) return "unclear (not enough evidence)";
    if (!strcmp(v, "failed")) return "failed (no verdict)";
    if (!strcmp(v, "unknown")) return "no verdict recorded";
    return v;
}

static int verdict_index(const char *v)
{
    for (int i = 0; i < N_VERDICTS; i++)
        if (v && !strcmp(verdicts[i], v)) return i;
    return N_VERDICTS - 1; /* unknown */
}

void vt_summary_add(vt_summary *s, const cJSON *m)
{
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "test_keys");
    const char *platform = vt_json_get_string(ann, "platform");
    if (!platform) platform = "other";
    const char *v = vt_json_get_string(tk, "verdict");
    const char *blocking = vt_json_get_string(tk, "blocking");
    if (v && blocking && strcmp(v, "ok") != 0) {
        if (!strcmp(blocking, "address"))
            v = "address_blocked";
        else if (!strcmp(blocking, "port"))
            v = "port_blocked";
        else if (!strcmp(blocking, "protocol"))
            v = "protocol_blocked";
    }
    if (!v) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(tk, "failure");
        /* no verdict (another tool's measurement, an older probe): never "reachable" */
        v = cJSON_IsString(f) ? "failed" : "unknown";
    }
    platform_row *r = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->rows[i].platform, platform)) r = &s->rows[i];
    if (!r) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            platform_row *nr = realloc(s->rows, cap * sizeof(*nr));
            if (!nr) return;
            s->rows = nr;
            s->cap = cap;
        }
        r = &s->rows[s->n++];
        memset(r, 0, sizeof(*r));
        r->platform = strdup(platform);
        if (!r->platform) {
            s->n--;
            return;
        }
    }
    r->n++;
    r->counts[verdict_index(v)]++;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "blocking_confirmed"))) r->confirmed++;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(tk, "evidence");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "intermittent"))) r->intermittent++;
    s->total++;
}

static int cmp_rows(const void *a, const void *b)
{
    const platform_row *x = a, *y = b;
    int xc = !strcmp(x->platform, "canary"), yc = !strcmp(y->platform, "canary");
    if (xc != yc) return xc - yc; /* canaries last */
    return strcmp(x->platform, y->platform);
}

void vt_summary_print(const vt_summary *s, FILE *out, int color)
{
    const char *red = color ? "\033[31m" : "", *yellow = color ? "\033[33m" : "",
               *green = color ? "\033[32m" : "", *dim = color ? "\033[2m" : "",
               *reset = color ? "\033[0m" : "";
    qsort(s->rows, s->n, sizeof(*s->rows), cmp_rows);
    fprintf(out, "%-16s %7s  %-34s %s\n", "PLATFORM", "TARGETS", "RESULT", "DETAILS");
    for (size_t i = 0; i < s->n; i++) {
        const platform_row *r = &s->rows[i];
        /* The platform's result is its most serious verdict: blocking first. */
        int worst = N_VERDICTS - 1;
        for (int k = 0; k < N_VERDICTS; k++)
            if (r->counts[k]) {
                worst = k;
                break;
            }
        const char *c = worst <= LAST_BLOCKING           ? red
                        : !strcmp(verdicts[worst], "ok") ? green
                                                         : yellow;
        char details[256] = "";
        size_t off = 0;
        for (int k = 0; k < N_VERDICTS && off < sizeof(details); k++)
            if (r->counts[k])
                off += (size_t)snprintf(details + off, sizeof(details) - off, "%s%zu %s",
                                        off ? ", " : "", r->counts[k], verdicts[k]);
        if (r->confirmed && off < sizeof(details))
            off += (size_t)snprintf(details + off, sizeof(details) - off,
                                    ", %zu confirmed by blockpage", r->confirmed);
        if (r->intermittent && off < sizeof(details))
            snprintf(details + off, sizeof(details) - off, ", %zu intermittent", r->intermittent);
        fprintf(out, "%-16s %7zu  %s%-34s%s %s%s%s\n", r->platform, r->n, c,
                vt_summary_verdict_words(verdicts[worst]), reset, dim, details, reset);
    }
    fprintf(out, "%zu measurements.\n", s->total);
}
