/* Upload of spooled measurements and check-in, on libcurl's easy interface (outside the measuring
 * loop). A measurement leaves the spool only when the collector named its uid as accepted or
 * duplicate; whatever else happens (timeouts, resets, 5xx, garbage), it stays for the next try. */
#include "upload.h"

/* Messages naming long paths may be cut to the caller's buffer; that is intended. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <zlib.h>

#include "checkins.h"
#include "cli.h"
#include "sni_checks.h"
#include "textfile.h"
#include "vantage/addr.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"
#include "vantage/tcp.h"
#include "vantage/verdict.h"
#include "vantage/version.h"

#define RESPONSE_MAX (8u << 20)

void vt_upload_opts_defaults(vt_upload_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->batch_size = 100;
    o->max_attempts = 6;
    o->backoff_base_ms = 1000;
    o->backoff_max_ms = 60000;
    o->total_timeout_ms = 600000;
    o->request_timeout_ms = 60000;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SIGTERM or SIGINT while vt_upload_watch_signals is on: the first one ends the check-in or
 * upload in progress (the request aborted from curl's progress callback, no retry after it);
 * what the collector has not acknowledged stays in the spool. A second one kills. */
static volatile sig_atomic_t stop_signal;
static struct sigaction old_term, old_int;
static int watching;

static void on_stop_signal(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

void vt_upload_watch_signals(int on)
{
    if (on && !watching) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGINT, &sa, &old_int);
        watching = 1;
    } else if (!on && watching) {
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGINT, &old_int, NULL);
        watching = 0;
    }
}

int vt_upload_stopped(void)
{
    return stop_signal;
}

static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)p, (void)dt, (void)dn, (void)ut, (void)un;
    return stop_signal != 0; /* non-zero: curl aborts the transfer */
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_signal)
        ;
}

static uint32_t rand32(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) v = (uint32_t)rand();
    return v;
}

/* Full jitter: uniform in [0, min(max, base * 2^(attempt-1))]. */
static long backoff_ms(const vt_upload_opts *o, int attempt)
{
    double cap = o->backoff_base_ms;
    for (int i = 1; i < attempt && cap < o->backoff_max_ms; i++)
        cap *= 2;
    if (cap > o->backoff_max_ms) cap = o->backoff_max_ms;
    if (cap < 1) return 0;
    return (long)(rand32() % ((uint32_t)cap + 1));
}

static void logf_(const vt_upload_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(const vt_upload_opts *o, const char *fmt, ...)
{
    va_list ap;
    if (!o->log) return;
    va_start(ap, fmt);
    fputs("vantage-probe: ", o->log);
    vfprintf(o->log, fmt, ap);
    fputc('\n', o->log);
    fflush(o->log);
    va_end(ap);
}

typedef struct buf {
    char *p;
    size_t n, cap;
    int overflow;
} buf;

static int buf_add(buf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static size_t on_body(char *d, size_t size, size_t nmemb, void *arg)
{
    buf *b = arg;
    size_t n = size * nmemb;
    if (b->n + n > RESPONSE_MAX) {
        b->overflow = 1;
        return 0;
    }
    return buf_add(b, d, n) < 0 ? 0 : n;
}

static int gzip_buf(const char *in, size_t n, buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    size_t bound = deflateBound(&z, (uLong)n) + 1;
    if (out->cap < bound) {
        char *np = realloc(out->p, bound);
        if (!np) {
            deflateEnd(&z);
            return -1;
        }
        out->p = np;
        out->cap = bound;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->p;
    z.avail_out = (uInt)(bound - 1);
    int r = deflate(&z, Z_FINISH);
    out->n = z.total_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? 0 : -1;
}

static int check_url(const char *base, char *err, size_t errlen)
{
    return vt_url_check_secure("collector", base, err, errlen);
}

static int make_url(char *out, size_t n, const char *base, const char *path)
{
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    int w = snprintf(out, n, "%.*s%s", (int)bl, base, path);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

typedef enum { POST_OK, POST_RETRY, POST_FATAL, POST_REFUSED } post_status;

typedef struct post_result {
    long http;
    long retry_after;   /* seconds from Retry-After, 0: none */
    int collector_said; /* the refusal came with the collector's JSON {"error": ...} */
    double date;        /* the answer's Date header (epoch seconds), 0: none */
    double sent, got;   /* the system clock when the request went and its answer came */
    buf body;
    char why[256];
} post_result;

/* The Date header of the answer: the collector's clock, to the second. */
static size_t on_header(char *d, size_t size, size_t nmemb, void *arg)
{
    post_result *pr = arg;
    size_t n = size * nmemb;
    char line[128];
    if (n > 5 && n < sizeof(line) && !strncasecmp(d, "Date:", 5)) {
        memcpy(line, d + 5, n - 5);
        line[n - 5] = 0;
        time_t t = curl_getdate(line, NULL);
        pr->date = t > 0 ? (double)t : 0;
    }
    return n;
}

/* One POST. POST_OK: 2xx with body. POST_RETRY: transport error, 408/425/429/5xx.
 * POST_REFUSED: 400/413/422 (this content is unacceptable; pr->collector_said when the
 * collector said why). POST_FATAL: any other answer. */
static post_status post_once(const vt_upload_opts *o, const char *url, const char *ctype,
                             int gzipped, const char *body, size_t len, long timeout_ms,
                             post_result *pr)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[1024], errbuf[CURL_ERROR_SIZE] = "", hdr[128];
    post_status st = POST_RETRY;
    pr->http = 0;
    pr->retry_after = 0;
    pr->body.n = 0;
    pr->body.overflow = 0;
    pr->why[0] = 0;
    pr->date = 0;
    if (!c) {
        snprintf(pr->why, sizeof(pr->why), "cannot start libcurl");
        return POST_FATAL;
    }
    snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
    h = curl_slist_append(h, hdr);
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");
    if (gzipped) h = curl_slist_append(h, "Content-Encoding: gzip");
    if (o->token && *o->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vantage-probe/" VT_VERSION);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 30000 ? timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &pr->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, pr);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    pr->sent = vt_wall_now();
    CURLcode cr = curl_easy_perform(c);
    pr->got = vt_wall_now();
    if (cr == CURLE_ABORTED_BY_CALLBACK && stop_signal) {
        snprintf(pr->why, sizeof(pr->why), "stopped by a signal");
        st = POST_FATAL;
        goto done;
    }
    if (cr != CURLE_OK) {
        if (pr->body.overflow)
            snprintf(pr->why, sizeof(pr->why), "answer larger than %u bytes", RESPONSE_MAX);
        else
            snprintf(pr->why, sizeof(pr->why), "%s", *errbuf ? errbuf : curl_easy_strerror(cr));
        /* A certificate the probe cannot verify will not verify on a retry either. */
        st = (cr == CURLE_PEER_FAILED_VERIFICATION || cr == CURLE_SSL_CACERT_BADFILE ||
              cr == CURLE_UNSUPPORTED_PROTOCOL || cr == CURLE_URL_MALFORMAT)
                 ? POST_FATAL
                 : POST_RETRY;
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &pr->http);
    curl_off_t ra = 0;
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        pr->retry_after = ra > 86400 ? 86400 : (long)ra;
    if (pr->http >= 200 && pr->http < 300) {
        st = POST_OK;
        goto done;
    }
    /* The collector's {"error": "..."} when there is one; never the whole body. */
    cJSON *j = cJSON_ParseWithLength(pr->body.p ? pr->body.p : "", pr->body.n);
    const char *msg = vt_json_get_string(j, "error");
    pr->collector_said = msg != NULL;
    char said[201];
    snprintf(pr->why, sizeof(pr->why), "HTTP %ld%s%s", pr->http, msg ? ": " : "",
             msg ? vt_cli_clean(said, sizeof(said), msg)
                 : " (not the collector's answer: no JSON error)");
    cJSON_Delete(j);
    if (pr->http == 408 || pr->http == 425 || pr->http == 429 || pr->http >= 500)
        st = POST_RETRY;
    else if (pr->http == 400 || pr->http == 413 || pr->http == 422)
        st = POST_REFUSED;
    else
        st = POST_FATAL;
done:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return st;
}

/* POST with bounded retries (attempts, and the deadline). POST_OK with a JSON object in *json. */
static post_status post_retry(const vt_upload_opts *o, const char *what, const char *url,
                              const char *ctype, int gzipped, const char *body, size_t len,
                              double deadline, int *requests, cJSON **json, post_result *pr)
{
    *json = NULL;
    for (int attempt = 1;; attempt++) {
        if (stop_signal) {
            snprintf(pr->why, sizeof(pr->why), "stopped by a signal");
            return POST_FATAL;
        }
        double left = deadline - now_mono();
        long tmo = (long)(left * 1000);
        if (tmo > o->request_timeout_ms) tmo = o->request_timeout_ms;
        if (tmo <= 0) {
            snprintf(pr->why, sizeof(pr->why), "%s time limit reached", what);
            return POST_FATAL;
        }
        (*requests)++;
        post_status st = post_once(o, url, ctype, gzipped, body, len, tmo, pr);
        if (st == POST_OK) {
            *json = cJSON_ParseWithLength(pr->body.p ? pr->body.p : "", pr->body.n);
            if (cJSON_IsObject(*json)) return POST_OK;
            cJSON_Delete(*json);
            *json = NULL;
            snprintf(pr->why, sizeof(pr->why), "HTTP %ld with an answer that is not JSON",
                     pr->http);
            st = POST_RETRY;
        }
        if (st != POST_RETRY) return st;
        if (attempt >= o->max_attempts) {
            char w[sizeof(pr->why)];
            snprintf(w, sizeof(w), "%s", pr->why);
            snprintf(pr->why, sizeof(pr->why), "gave up after %d attempts: %.200s", attempt, w);
            return POST_FATAL;
        }
        long wait = backoff_ms(o, attempt);
        /* The collector's Retry-After (503, 429) when it asks for longer, within our cap. */
        if (pr->retry_after > 0 && pr->retry_after * 1000 > wait)
            wait = pr->retry_after * 1000 < o->backoff_max_ms ? pr->retry_after * 1000
                                                              : o->backoff_max_ms;
        if (now_mono() + wait / 1000.0 >= deadline) {
            char w[sizeof(pr->why)];
            snprintf(w, sizeof(w), "%s", pr->why);
            snprintf(pr->why, sizeof(pr->why), "%s time limit reached: %.200s", what, w);
            return POST_FATAL;
        }
        /* cron mails whatever is printed: with --quiet only the outcome (the last attempt's
         * error, or nothing), not a line per retry of a collector that is down for a while */
        if (!o->quiet)
            logf_(o, "%s: attempt %d/%d failed (%s); retrying in %.1f s", what, attempt,
                  o->max_attempts, pr->why, wait / 1000.0);
        sleep_ms(wait);
    }
}

/* A 404 from the collector's own API paths: the URL given is not the collector's address (one
 * with /api/v1 already in it, a path the project did not give). */
static const char *not_found_hint(const post_result *pr)
{
    return pr->http == 404 ? "; is the collector URL right? It is the collector's address as your "
                             "project gave it, without /api/v1 (the probe adds the rest)"
                           : "";
}

typedef struct upload_ctx {
    vt_spool *sp;
    const vt_upload_opts *o;
    vt_upload_result *r;
    char url[2048];
    double deadline;
    post_result pr;
    buf jsonl, gz;
    int stop;        /* a fatal error: keep the rest for next time */
    size_t reported; /* damaged files named so far (the first few only) */
    vt_checkins *checkins; /* the state directory's check-ins (checkins.h), NULL: none read */
} upload_ctx;

static void set_error(upload_ctx *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(upload_ctx *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->r->error, sizeof(u->r->error), fmt, ap);
    va_end(ap);
}

/* Where a refused measurement went: vt_spool_reject's 0 (kept) or 1 (deleted). */
static void rejected_where(const upload_ctx *u, int r, char *out, size_t n)
{
    if (r == 0)
        snprintf(out, n, "kept in %s/rejected", vt_spool_dir(u->sp));
    else
        snprintf(out, n,
                 "deleted, not kept: %s/rejected is full (%d measurements or %llu MiB); delete "
                 "what you have read there",
                 vt_spool_dir(u->sp), VT_SPOOL_REJECTED_MAX_COUNT,
                 (unsigned long long)(VT_SPOOL_REJECTED_MAX_BYTES >> 20));
}

/* Applies the collector's per-uid answer to the batch. */
static void apply_results(upload_ctx *u, char **uids, size_t n, const cJSON *answer)
{
    char err[512];
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(answer, "results");
    size_t acc = 0, dup = 0, rej = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *it, *hit = NULL;
        cJSON_ArrayForEach(it, results)
        {
            const char *uid = vt_json_get_string(it, "uid");
            if (!uid) uid = vt_json_get_string(it, "measurement_uid");
            if (uid && !strcmp(uid, uids[i])) {
                hit = it;
                break;
            }
        }
        /* A line whose uid the collector could not read is answered by line number (1-based,
         * one line per measurement here); only a rejection is taken that way. */
        if (!hit) {
            cJSON_ArrayForEach(it, results)
            {
                const cJSON *line = cJSON_GetObjectItemCaseSensitive(it, "line");
                const char *status = vt_json_get_string(it, "status");
                if (cJSON_IsNumber(line) && line->valuedouble == (double)(i + 1) && status &&
                    !strcmp(status, "rejected") && !vt_json_get_string(it, "uid")) {
                    hit = it;
                    break;
                }
            }
        }
        const char *status = hit ? vt_json_get_string(hit, "status") : NULL;
        if (!status) continue;
        if (!strcmp(status, "accepted") || !strcmp(status, "duplicate")) {
            if (vt_spool_ack(u->sp, uids[i], err, sizeof(err)) < 0) {
                logf_(u->o, "%s", err);
                continue;
            }
            if (status[0] == 'a')
                acc++;
            else
                dup++;
        } else if (!strcmp(status, "rejected")) {
            const char *reason = vt_json_get_string(hit, "reason");
            int kept =
                vt_spool_reject(u->sp, uids[i], reason ? reason : "rejected", err, sizeof(err));
            if (kept < 0) {
                logf_(u->o, "%s", err);
                continue;
            }
            char said[201], where[PATH_MAX + 64];
            rejected_where(u, kept, where, sizeof(where));
            logf_(u->o, "upload: collector rejected %s: %s (%s)", uids[i],
                  reason ? vt_cli_clean(said, sizeof(said), reason) : "no reason given", where);
            rej++;
        }
    }
    if (vt_spool_sync(u->sp, err, sizeof(err)) < 0) logf_(u->o, "%s", err);
    u->r->accepted += acc;
    u->r->duplicate += dup;
    u->r->rejected += rej;
    if (acc + dup + rej < n)
        logf_(u->o, "upload: collector did not acknowledge %zu of %zu; they stay spooled",
              n - acc - dup - rej, n);
}

/* Sends uids[0..n) as one request; splits it when the collector refuses the whole batch. */
static void send_batch(upload_ctx *u, char **uids, size_t n)
{
    char err[512];
    cJSON *answer = NULL;
    if (u->stop || n == 0) return;
    u->jsonl.n = 0;
    size_t kept = 0, inferred = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *m = NULL;
        int r = vt_spool_read(u->sp, uids[i], &m, err, sizeof(err));
        if (r != 0) {
            if (r < 0) {
                logf_(u->o, "%s (left in place)", err);
                u->r->corrupt++;
            }
            continue;
        }
        /* Measured when the check-in failed: the network from the check-ins around it. */
        int rl = u->checkins ? vt_checkins_relabel(u->checkins, m) : 0;
        if (rl < 0) {
            cJSON_Delete(m);
            set_error(u, "out of memory building a batch");
            u->stop = 1;
            return;
        }
        inferred += (size_t)rl;
        /* The probe never sends its own address, whatever a file says. */
        cJSON *ip = cJSON_GetObjectItemCaseSensitive(m, "probe_ip");
        if (ip && !(cJSON_IsString(ip) && !strcmp(ip->valuestring, "127.0.0.1")))
            cJSON_ReplaceItemInObjectCaseSensitive(m, "probe_ip", cJSON_CreateString("127.0.0.1"));
        char *line = vt_json_print(m);
        cJSON_Delete(m);
        if (!line || buf_add(&u->jsonl, line, strlen(line)) < 0 ||
            buf_add(&u->jsonl, "\n", 1) < 0) {
            free(line);
            set_error(u, "out of memory building a batch");
            u->stop = 1;
            return;
        }
        free(line);
        uids[kept++] = uids[i];
    }
    n = kept;
    if (n == 0) return;
    if (gzip_buf(u->jsonl.p, u->jsonl.n, &u->gz) < 0) {
        set_error(u, "cannot compress a batch");
        u->stop = 1;
        return;
    }
    post_status st = post_retry(u->o, "upload", u->url, "application/x-ndjson", 1, u->gz.p, u->gz.n,
                                u->deadline, &u->r->requests, &answer, &u->pr);
    if (st == POST_OK || u->pr.collector_said) u->r->answered = 1;
    if (st == POST_OK) {
        u->r->inferred += inferred;
        apply_results(u, uids, n, answer);
        cJSON_Delete(answer);
        return;
    }
    if (st == POST_REFUSED && n > 1) {
        /* Find the measurement the collector cannot take instead of holding back the others. */
        size_t half = n / 2;
        send_batch(u, uids, half);
        send_batch(u, uids + half, n - half);
        return;
    }
    /* Shelved only on the collector's own word: an HTML 400 or 413 from a proxy in front of it
     * (a header too large, a body limit lower than one measurement) says nothing about the
     * measurement, and shelving would move the whole spool aside, one by one. It waits. */
    if (st == POST_REFUSED && u->pr.collector_said) {
        char reason[300];
        snprintf(reason, sizeof(reason), "collector refused it alone: %s", u->pr.why);
        int gone = vt_spool_reject(u->sp, uids[0], reason, err, sizeof(err));
        if (gone < 0) {
            logf_(u->o, "%s", err);
            return;
        }
        if (gone == 1 && vt_spool_sync(u->sp, err, sizeof(err)) < 0) logf_(u->o, "%s", err);
        char where[PATH_MAX + 64];
        rejected_where(u, gone, where, sizeof(where));
        logf_(u->o, "upload: collector refused %s: %s (%s)", uids[0], u->pr.why, where);
        u->r->rejected++;
        return;
    }
    set_error(u, "upload to %s failed: %s%s", u->url, u->pr.why, not_found_hint(&u->pr));
    u->stop = 1;
}

static void report_corrupt(const char *path, const char *why, int moved, void *arg)
{
    upload_ctx *u = arg;
    if (u->reported++ < 10)
        logf_(u->o, "spool: skipping %s: %s%s", path, why,
              moved ? " (moved to spool/damaged/ for inspection)" : "");
    else if (u->reported == 11)
        logf_(u->o, "spool: more damaged files skipped; see the count below");
}

int vt_upload_spool(vt_spool *sp, const vt_upload_opts *o, vt_upload_result *r)
{
    upload_ctx u;
    vt_spool_listing l;
    char err[512];
    memset(r, 0, sizeof(*r));
    memset(&u, 0, sizeof(u));
    u.sp = sp;
    u.o = o;
    u.r = r;
    if (vt_spool_list(sp, &l, report_corrupt, &u, err, sizeof(err)) < 0) {
        snprintf(r->error, sizeof(r->error), "%s", err);
        return -1;
    }
    r->left = l.n;
    if (!o->collector || !*o->collector)
        snprintf(r->error, sizeof(r->error), "no collector configured (--collector URL)");
    else if (check_url(o->collector, r->error, sizeof(r->error)) == 0 &&
             make_url(u.url, sizeof(u.url), o->collector, "/api/v1/measurements") < 0)
        snprintf(r->error, sizeof(r->error), "collector URL too long");
    if (r->error[0]) {
        r->config_error = 1;
        vt_spool_listing_free(&l);
        return -1;
    }
    r->spooled = l.n;
    r->corrupt = l.corrupt;
    r->set_aside = l.set_aside;
    u.deadline = now_mono() + (o->total_timeout_ms > 0 ? o->total_timeout_ms : 600000) / 1000.0;
    size_t bs = o->batch_size > 0 ? (size_t)o->batch_size : 100;
    char **uids = calloc(bs, sizeof(*uids));
    if (!uids) {
        vt_spool_listing_free(&l);
        snprintf(r->error, sizeof(r->error), "out of memory");
        return -1;
    }
    u.checkins = malloc(sizeof(*u.checkins));
    if (u.checkins) vt_checkins_load(vt_spool_state_dir(sp), u.checkins);
    for (size_t i = 0; i < l.n && !u.stop; i += bs) {
        size_t n = l.n - i < bs ? l.n - i : bs;
        for (size_t k = 0; k < n; k++)
            uids[k] = l.items[i + k].uid;
        send_batch(&u, uids, n);
    }
    free(uids);
    free(u.checkins);
    vt_spool_listing_free(&l);
    if (r->inferred > 0)
        logf_(o, "upload: %zu measurement(s) taken when the check-in failed were sent with the "
                 "network of the check-ins before and after them, which agreed",
              r->inferred);
    free(u.jsonl.p);
    free(u.gz.p);
    free(u.pr.body.p);

    /* What is left: recount (another process may have spooled or uploaded meanwhile). */
    vt_spool_listing after;
    if (vt_spool_list(sp, &after, NULL, NULL, err, sizeof(err)) == 0) {
        r->left = after.n;
        vt_spool_listing_free(&after);
    }
    if (!r->error[0] && r->left > 0 && r->spooled > 0) {
        size_t done = r->accepted + r->duplicate + r->rejected;
        if (done < r->spooled)
            snprintf(r->error, sizeof(r->error),
                     "collector did not acknowledge %zu measurement(s); they stay spooled",
                     r->spooled - done);
    }
    if (!r->error[0] && r->set_aside > 0)
        snprintf(r->error, sizeof(r->error),
                 "%zu damaged spool file(s) moved to %s/damaged for inspection; they cannot be "
                 "sent",
                 r->set_aside, vt_spool_dir(sp));
    if (!r->error[0] && r->corrupt > 0)
        snprintf(r->error, sizeof(r->error),
                 "%zu spool file(s) could not be read and were left in %s", r->corrupt,
                 vt_spool_dir(sp));
    return r->error[0] ? -1 : 0;
}

int vt_upload_write_last(const char *state_dir, const vt_upload_opts *o, const vt_upload_result *r,
                         char *err, size_t errlen)
{
    char path[4096], ts[20];
    /* Dated like the run's measurements: a clock days behind (before NTP) made status say the
     * last upload was days ago once NTP had set it. */
    double t = o->clock_mono != 0 ? floor(vt_now() + o->clock_mono) : (double)time(NULL);
    cJSON *j = cJSON_CreateObject();
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    vt_format_time(t, ts);
    cJSON_AddStringToObject(j, "time", ts);
    cJSON_AddNumberToObject(j, "time_epoch", t);
    vt_json_add_string_or_null(j, "collector", o->collector);
    cJSON_AddBoolToObject(j, "ok", r->error[0] == 0);
    cJSON_AddNumberToObject(j, "spooled", (double)r->spooled);
    cJSON_AddNumberToObject(j, "accepted", (double)r->accepted);
    cJSON_AddNumberToObject(j, "duplicate", (double)r->duplicate);
    cJSON_AddNumberToObject(j, "rejected", (double)r->rejected);
    cJSON_AddNumberToObject(j, "corrupt", (double)r->corrupt);
    cJSON_AddNumberToObject(j, "damaged", (double)r->set_aside);
    cJSON_AddNumberToObject(j, "left", (double)r->left);
    cJSON_AddNumberToObject(j, "requests", r->requests);
    vt_json_add_string_or_null(j, "error", r->error[0] ? r->error : NULL);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s || snprintf(path, sizeof(path), "%s/last-upload.json", state_dir) >= (int)sizeof(path)) {
        free(s);
        snprintf(err, errlen, "cannot write last-upload.json");
        return -1;
    }
    size_t n = strlen(s);
    s[n] = '\n'; /* cJSON_Print's terminator becomes the final newline */
    int rc = vt_spool_write_file_atomic(path, s, n + 1, err, errlen);
    free(s);
    return rc;
}

/* An offered SNI test server on a loopback, private or link-local address is taken only from
 * a collector that is itself on one (a lab, a private deployment): a collector must not send
 * its volunteers' probes into their own networks (a router's admin page on 192.168.1.1). */
static int sni_offer_allowed(const char *collector, const char *endpoint)
{
    char host[256], chost[256];
    int port, cport, https;
    if (vt_split_host_port(endpoint, host, sizeof(host), &port) < 0) return 0;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1) return 1;
    if (vt_verdict_addr_class(host) == 0) return 1;
    return vt_url_split(collector, chost, sizeof(chost), &cport, &https) == 0 &&
           (inet_pton(AF_INET, chost, a) == 1 || inet_pton(AF_INET6, chost, a) == 1) &&
           vt_verdict_addr_class(chost) != 0;
}

/* Another address of the collector, from its check-in answer or the state file: a string the
 * probe would take as its collector_url (https, plain http only to loopback), with room in
 * vt_checkin_result.alternates and nothing in it that a URL does not hold. */
static int alternate_ok(const cJSON *a)
{
    char err[256];
    return cJSON_IsString(a) &&
           strlen(a->valuestring) < VT_UPLOAD_URL_MAX &&
           !strpbrk(a->valuestring, " \t\r\n\"\\") &&
           check_url(a->valuestring, err, sizeof(err)) == 0;
}

int vt_upload_checkin(const vt_upload_opts *o, vt_checkin_result *out, char *err, size_t errlen)
{
    char url[2048];
    post_result pr;
    cJSON *answer = NULL;
    int requests = 0, rc = -1;
    memset(out, 0, sizeof(*out));
    memset(&pr, 0, sizeof(pr));
    if (!o->collector || !*o->collector) {
        snprintf(err, errlen, "no collector configured");
        return -1;
    }
    if (check_url(o->collector, err, errlen) < 0) return -1;
    if (make_url(url, sizeof(url), o->collector, "/api/v1/check-in") < 0) {
        snprintf(err, errlen, "collector URL too long");
        return -1;
    }
    const char *body =
        "{\"software_name\":\"vantage-probe\",\"software_version\":\"" VT_VERSION "\"}";
    /* A check-in must not hold measuring back long: at most 3 tries within 30 s. */
    vt_upload_opts co = *o;
    if (co.max_attempts > 3) co.max_attempts = 3;
    if (co.total_timeout_ms <= 0 || co.total_timeout_ms > 30000) co.total_timeout_ms = 30000;
    if (co.request_timeout_ms > co.total_timeout_ms) co.request_timeout_ms = co.total_timeout_ms;
    int budget = co.total_timeout_ms;
    post_status st = post_retry(&co, "check-in", url, "application/json", 0, body, strlen(body),
                                now_mono() + budget / 1000.0, &requests, &answer, &pr);
    if (st != POST_OK) {
        snprintf(err, errlen, "check-in at %s failed: %s%s", url, pr.why, not_found_hint(&pr));
        out->unanswered = !pr.collector_said && !stop_signal;
        goto done;
    }
    const char *cc = vt_json_get_string(answer, "probe_cc");
    const char *asn = vt_json_get_string(answer, "probe_asn");
    const char *net = vt_json_get_string(answer, "probe_network_name");
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(answer, "targets_version");
    if (!vt_checkins_cc_ok(cc) || !vt_checkins_asn_ok(asn)) {
        snprintf(err, errlen, "check-in at %s: answer without a valid probe_cc/probe_asn", url);
        goto done;
    }
    snprintf(out->probe_cc, sizeof(out->probe_cc), "%s", cc);
    snprintf(out->probe_asn, sizeof(out->probe_asn), "%s", asn);
    if (net) {
        size_t j = 0;
        for (const unsigned char *p = (const unsigned char *)net;
             *p && j + 1 < sizeof(out->probe_network_name); p++)
            if (*p >= 0x20 && *p != 0x7f) out->probe_network_name[j++] = (char)*p;
        out->probe_network_name[j] = 0;
        /* A cut inside a UTF-8 sequence would make invalid JSON text later: trim it. */
        while (j > 0 && !vt_utf8_valid((const unsigned char *)out->probe_network_name, j))
            out->probe_network_name[--j] = 0;
    }
    /* The SNI test server offered: taken only when it is a plain HOST:PORT and the pin a
     * SHA-256 one (the measurements name it; the pin is curl's option text). */
    const cJSON *sni = cJSON_GetObjectItemCaseSensitive(answer, "sni_test");
    const char *st_ep = vt_json_get_string(sni, "endpoint");
    const char *st_pin = vt_json_get_string(sni, "pin");
    if (st_ep && vt_probe_sni_test_check(st_ep) == 0 && strlen(st_ep) < sizeof(out->sni_test) &&
        sni_offer_allowed(o->collector, st_ep)) {
        snprintf(out->sni_test, sizeof(out->sni_test), "%s", st_ep);
        if (st_pin && vt_probe_pin_check(st_pin) == 0)
            snprintf(out->sni_test_pin, sizeof(out->sni_test_pin), "%s", st_pin);
    }
    /* Other addresses of the collector, for when this one cannot be reached: each must be one
     * the probe would take as its collector_url. */
    const cJSON *alt = cJSON_GetObjectItemCaseSensitive(answer, "alternate_urls"), *a;
    if (!cJSON_IsArray(alt)) alt = NULL;
    cJSON_ArrayForEach(a, alt)
    {
        if (out->n_alternates < VT_UPLOAD_MAX_ALTERNATES && alternate_ok(a) &&
            strcmp(a->valuestring, o->collector) != 0)
            snprintf(out->alternates[out->n_alternates++], sizeof(out->alternates[0]), "%s",
                     a->valuestring);
    }
    if (cJSON_IsString(tv))
        snprintf(out->targets_version, sizeof(out->targets_version), "%.120s", tv->valuestring);
    else if (cJSON_IsNumber(tv))
        snprintf(out->targets_version, sizeof(out->targets_version), "%.0f", tv->valuedouble);
    /* The collector's clock against ours. Its Date is cut to the second, taken somewhere between
     * our request and its answer: only a gap beyond that uncertainty and VT_CLOCK_SKEW_MAX is a
     * wrong clock (a board without a battery-backed clock, before NTP), not noise. A Date
     * outside [VT_CLOCK_FLOOR, VT_CLOCK_CEILING] is no collector's clock (curl_getdate takes
     * any year, a proxy's clock may be wrong): it is ignored, and the system clock dates. */
    if (pr.date > 0 && (pr.date < VT_CLOCK_FLOOR || pr.date > VT_CLOCK_CEILING)) {
        out->clock_implausible = 1;
        pr.date = 0;
    }
    if (pr.date > 0 && pr.got >= pr.sent) {
        double offset = pr.date + 0.5 - (pr.sent + pr.got) / 2;
        double slack = (pr.got - pr.sent) / 2 + 0.5;
        out->clock_checked = 1;
        out->collector_time = pr.date;
        if (fabs(offset) > VT_CLOCK_SKEW_MAX + slack) out->clock_offset = round(offset);
    }
    rc = 0;
done:
    cJSON_Delete(answer);
    free(pr.body.p);
    return rc;
}

/* ---- The probe's command line. ---- */

void vt_upload_cli_defaults(vt_upload_opts *o)
{
    vt_upload_opts_defaults(o);
    const char *t = getenv("VANTAGE_UPLOAD_TOKEN");
    if (t && *t) o->token = t;
    o->log = stderr;
}

static int parse_num(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int vt_upload_option(vt_upload_opts *o, const char *name, const char *arg, char *err, size_t errlen)
{
    long v;
    if (!strcmp(name, "state-dir"))
        o->state_dir = arg;
    else if (!strcmp(name, "collector")) {
        /* Refused before any traffic (a usage error), not after a whole run has been measured
         * as ZZ/AS0 and spooled. */
        if (vt_url_check_secure("--collector", arg, err, errlen) < 0) return -1;
        o->collector = arg;
    } else if (!strcmp(name, "collector-cacert"))
        o->cacert = arg;
    else if (!strcmp(name, "upload-token"))
        o->token = arg;
    else if (!strcmp(name, "no-upload"))
        o->disabled = 1;
    else if (!strcmp(name, "upload-batch")) {
        if (parse_num(arg, 1, 1000, &v) < 0) goto bad;
        o->batch_size = (int)v;
    } else if (!strcmp(name, "upload-attempts")) {
        if (parse_num(arg, 1, 100, &v) < 0) goto bad;
        o->max_attempts = (int)v;
    } else if (!strcmp(name, "upload-backoff-ms")) {
        if (parse_num(arg, 0, 3600000, &v) < 0) goto bad;
        o->backoff_base_ms = (int)v;
        if (o->backoff_max_ms < o->backoff_base_ms) o->backoff_max_ms = o->backoff_base_ms;
    } else if (!strcmp(name, "upload-max-time")) {
        if (parse_num(arg, 1, 86400, &v) < 0) goto bad;
        o->total_timeout_ms = (int)(v * 1000);
        if (o->request_timeout_ms > o->total_timeout_ms)
            o->request_timeout_ms = o->total_timeout_ms;
        if (o->backoff_max_ms > o->total_timeout_ms) o->backoff_max_ms = o->total_timeout_ms;
    } else {
        snprintf(err, errlen, "unknown option --%s", name);
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "--%s: '%s' is out of range", name, arg ? arg : "");
    return -1;
}

static int do_upload(vt_upload_opts *o, vt_spool *sp, vt_upload_result *res);

/* The collector's other addresses, from the last check-in that announced them, are kept in the
 * state directory as {"collector": URL, "alternate_urls": [...]}: a run that cannot reach URL
 * (a censor blocking it) checks in and uploads at one of them instead. */
#define ALTERNATES_FILE "collector-alternates.json"
#define ALTERNATES_MAX_BYTES 8192

static int alternates_path(const vt_upload_opts *o, char *out, size_t n)
{
    char dir[4096], err[256];
    if (o->state_dir)
        snprintf(dir, sizeof(dir), "%s", o->state_dir);
    else if (vt_spool_default_state_dir(dir, sizeof(dir), err, sizeof(err)) < 0)
        return -1;
    return snprintf(out, n, "%s/" ALTERNATES_FILE, dir) < (int)n ? 0 : -1;
}

/* The alternates kept for o->collector (none for another collector URL), into alt_urls: their
 * number. Static: o->collector points into it once one of them is used. */
static char alt_urls[VT_UPLOAD_MAX_ALTERNATES][VT_UPLOAD_URL_MAX];

static int alternates_load(const vt_upload_opts *o)
{
    char path[4200], err[256], *text = NULL;
    size_t len;
    if (alternates_path(o, path, sizeof(path)) < 0 ||
        vt_textfile_read(path, ALTERNATES_MAX_BYTES, &text, &len, err, sizeof(err)) < 0)
        return 0;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const char *for_url = vt_json_get_string(j, "collector");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "alternate_urls"), *a;
    if (!cJSON_IsArray(arr) || !for_url || strcmp(for_url, o->collector) != 0) arr = NULL;
    int n = 0;
    cJSON_ArrayForEach(a, arr)
    {
        if (n < VT_UPLOAD_MAX_ALTERNATES && alternate_ok(a))
            snprintf(alt_urls[n++], VT_UPLOAD_URL_MAX, "%s", a->valuestring);
    }
    cJSON_Delete(j);
    return n;
}

/* After a check-in at o->collector itself: what it announced now replaces what was kept (none:
 * the file goes). */
static void alternates_save(const vt_upload_opts *o, const vt_checkin_result *ci)
{
    char path[4200], err[512];
    if (alternates_path(o, path, sizeof(path)) < 0) return;
    if (ci->n_alternates == 0) {
        if (unlink(path) < 0 && errno != ENOENT)
            fprintf(stderr, "vantage-probe: warning: cannot remove %s: %s\n", path,
                    strerror(errno));
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = j ? cJSON_AddArrayToObject(j, "alternate_urls") : NULL;
    if (j) cJSON_AddStringToObject(j, "collector", o->collector);
    for (int i = 0; arr && i < ci->n_alternates; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(ci->alternates[i]));
    char *s = arr ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!s || vt_spool_write_file_atomic(path, s, strlen(s), err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-probe: warning: %s\n", s ? err : "out of memory");
    free(s);
}

int vt_upload_run_begin(vt_upload_opts *o, vt_config *cfg, vt_checkin_result *ci, vt_spool **sp)
{
    char err[1024];
    int upload = o->collector && !o->disabled, checked_in = 0, via_alternate = 0;
    *sp = NULL;
    if (upload) {
        int got = vt_upload_checkin(o, ci, err, sizeof(err)) == 0;
        if (!got && ci->unanswered) {
            char aerr[1024];
            int n = alternates_load(o);
            for (int i = 0; i < n && !got && !stop_signal; i++) {
                vt_upload_opts ao = *o;
                ao.collector = alt_urls[i];
                if (vt_upload_checkin(&ao, ci, aerr, sizeof(aerr)) == 0) {
                    /* news even from cron: the collector's own address is out of reach */
                    fprintf(stderr,
                            "vantage-probe: %s; checked in at %s instead (an address the "
                            "collector announced); the upload goes there too\n",
                            err, alt_urls[i]);
                    o->collector = alt_urls[i]; /* the run's upload goes there too */
                    got = via_alternate = 1;
                } else if (!o->quiet) {
                    fprintf(stderr, "vantage-probe: %s\n", aerr);
                }
            }
        }
        if (got) {
            checked_in = 1;
            cfg->probe_cc = ci->probe_cc;
            cfg->probe_asn = ci->probe_asn;
            cfg->probe_network_name = ci->probe_network_name[0] ? ci->probe_network_name : NULL;
            if (!cfg->sni_test && ci->sni_test[0]) { /* "" (sni_test = no) refuses it */
                cfg->sni_test = ci->sni_test;
                cfg->sni_test_pin = ci->sni_test_pin[0] ? ci->sni_test_pin : NULL;
            }
            if (ci->clock_offset != 0) {
                char own[20], theirs[20];
                cfg->clock_offset = ci->clock_offset;
                cfg->clock_mono = vt_wall_now() + ci->clock_offset - vt_now();
                o->clock_mono = cfg->clock_mono; /* last-upload.json's time too */
                vt_format_time(vt_wall_now(), own);
                vt_format_time(ci->collector_time, theirs);
                fprintf(stderr,
                        "vantage-probe: warning: the system clock says %s UTC, the collector's "
                        "%s UTC: measurements are dated by the collector's clock (x_clock_offset "
                        "%.0f s); set the clock (NTP)\n",
                        own, theirs, ci->clock_offset);
            } else if (ci->clock_implausible) {
                fprintf(stderr, "vantage-probe: warning: the collector's Date header is not a "
                                "plausible time: ignored, measurements are dated by the system "
                                "clock\n");
            }
        } else {
            cfg->check_in_failed = 1;
            fprintf(stderr, "vantage-probe: warning: %s; measuring as %s/%s\n", err,
                    cfg->probe_cc ? cfg->probe_cc : "ZZ", cfg->probe_asn ? cfg->probe_asn : "AS0");
        }
    }
    *sp = vt_spool_open(o->state_dir, err, sizeof(err));
    if (*sp && checked_in && !via_alternate) alternates_save(o, ci);
    if (*sp && checked_in) {
        /* Kept for the measurements of runs whose check-in fails (checkins.h). */
        char when[20];
        vt_format_time(vt_measurement_now(cfg), when);
        if (vt_checkins_record(vt_spool_state_dir(*sp), when, ci->probe_cc, ci->probe_asn,
                               ci->probe_network_name, err, sizeof(err)) < 0)
            fprintf(stderr, "vantage-probe: warning: %s\n", err);
    }
    if (!*sp) {
        if (upload || o->state_dir) {
            fprintf(stderr, "vantage-probe: %s\n", err);
            return -1;
        }
        fprintf(stderr, "vantage-probe: warning: %s; measurements are not spooled\n", err);
        return 0;
    }
    const char *w = vt_spool_cap_warning(*sp);
    size_t waiting = 0;
    vt_spool_totals(*sp, &waiting, NULL);
    /* A full spool would lose this run's measurements even when the collector, answering again,
     * is about to empty it at the end of the run: then it is emptied first (when there is
     * something in it: a full disk may hold none). */
    if (w && checked_in && waiting > 0) {
        fprintf(stderr, "vantage-probe: %s; uploading before measuring\n", w);
        do_upload(o, *sp, NULL);
        w = vt_spool_cap_warning(*sp);
    }
    if (w) fprintf(stderr, "vantage-probe: warning: %s\n", w);
    return 0;
}

static void print_result(const vt_upload_opts *o, const vt_upload_result *r)
{
    /* cron mails whatever is printed: with --quiet, only a problem is news */
    if (o->quiet && !r->error[0] && r->left == 0 && r->rejected == 0 && r->set_aside == 0)
        return;
    fprintf(stderr,
            "vantage-probe: upload: %zu accepted, %zu already there, %zu rejected, %zu still "
            "spooled%s%s\n",
            r->accepted, r->duplicate, r->rejected, r->left, r->error[0] ? ": " : "", r->error);
}

static int do_upload(vt_upload_opts *o, vt_spool *sp, vt_upload_result *res)
{
    vt_upload_result r;
    char err[1024];
    int rc = vt_upload_spool(sp, o, &r);
    if (res) *res = r;
    if (vt_upload_write_last(vt_spool_state_dir(sp), o, &r, err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-probe: warning: %s\n", err);
    print_result(o, &r);
    if (rc == 0) return VT_EXIT_OK;
    return !r.config_error && r.left > 0 ? VT_EXIT_UPLOAD_PENDING : VT_EXIT_FAILURE;
}

int vt_upload_run_end(vt_upload_opts *o, vt_spool *sp, long spool_failed)
{
    int rc = VT_EXIT_OK;
    if (spool_failed > 0)
        fprintf(stderr, "vantage-probe: %ld measurement(s) could not be spooled (see above)\n",
                spool_failed);
    if (!sp) return rc;
    if (o->collector && !o->disabled) rc = do_upload(o, sp, NULL);
    vt_spool_close(sp);
    return rc;
}

int vt_upload_command(vt_upload_opts *o)
{
    char err[1024];
    if (!o->collector) {
        fprintf(stderr, "vantage-probe: upload needs --collector URL\n");
        return VT_EXIT_USAGE;
    }
    if (o->disabled) {
        fprintf(stderr, "vantage-probe: upload with --no-upload does nothing\n");
        return VT_EXIT_USAGE;
    }
    vt_spool *sp = vt_spool_open(o->state_dir, err, sizeof(err));
    if (!sp) {
        fprintf(stderr, "vantage-probe: %s\n", err);
        return VT_EXIT_FAILURE;
    }
    vt_upload_result r;
    int rc = do_upload(o, sp, &r);
    /* No answer of the collector's own (blocked?): the other addresses it announced, in turn. */
    if (rc != VT_EXIT_OK && !r.answered && !r.config_error && r.requests > 0 && !stop_signal) {
        int n = alternates_load(o);
        for (int i = 0; i < n && !r.answered && !stop_signal; i++) {
            fprintf(stderr, "vantage-probe: no answer from %s; trying %s (an address the "
                            "collector announced)\n",
                    o->collector, alt_urls[i]);
            o->collector = alt_urls[i];
            rc = do_upload(o, sp, &r);
        }
    }
    vt_spool_close(sp);
    return rc;
}
