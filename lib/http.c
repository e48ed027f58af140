/* HTTP measurement step: one request on the loop's libcurl multi handle, connected to addresses
 * resolved earlier (CURLOPT_RESOLVE), never following redirects, with OONI's httpt "requests"
 * entry and netevents "bytes_received_cumulative" samples as its record.
 *
 * A hostile server cannot make us crash or hold unbounded memory: response headers are capped
 * (VT_HTTP_MAX_HEADER_BYTES, then the request fails), the body keeps at most max_body bytes and
 * reading stops after max_download bytes (a success with body_is_truncated), the whole
 * transfer is bounded by timeout_ms. */
#include "vantage/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/json.h"
#include "vantage/tls.h"

#define VT_HTTP_MAX_HEADER_BYTES (64 * 1024)
#define VT_HTTP_TITLE_MAX 256

/* The stop reasons we cause ourselves by returning a short write. */
enum { STOP_NONE, STOP_BODY_CAP, STOP_HEADER_CAP };

typedef struct http_req {
    vt_loop *loop;
    CURL *easy;
    struct curl_slist *resolve;
    struct curl_slist *headers_out;
    vt_http_cb cb;
    void *arg;
    double t_base;
    char *url;
    char *method;
    size_t max_body, max_download;
    int sample_ms;
    long transaction_id;
    size_t *bytes_counter;

    /* response */
    unsigned char *body;
    size_t body_len;
    size_t bytes_received;
    int stop;
    size_t header_bytes;
    cJSON *resp_headers_list; /* of the last response seen (1xx responses are dropped) */
    cJSON *req_headers_list;  /* as sent, from the debug callback */
    cJSON *events;
    double last_sample;
    double t_first_body;   /* when the first body bytes were handed to us, 0 before */
    size_t first_body_len; /* how many came then */
    double t_last_body;    /* the latest body bytes */
    double t0;
    char errbuf[CURL_ERROR_SIZE];
} http_req;

static long next_transaction_id = 1;

static void req_free(http_req *r)
{
    if (!r) return;
    if (r->easy) curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->resolve);
    curl_slist_free_all(r->headers_out);
    free(r->url);
    free(r->method);
    free(r->body);
    cJSON_Delete(r->resp_headers_list);
    cJSON_Delete(r->req_headers_list);
    cJSON_Delete(r->events);
    free(r);
}

/* ---- title ---- */

static int ci_prefix(const unsigned char *p, size_t left, const char *lit)
{
    size_t n = strlen(lit);
    if (left < n) return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower(p[i]) != lit[i]) return 0;
    return 1;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    if (s[0] < 0x80) return 1;
    size_t need;
    unsigned cp;
    if ((s[0] & 0xE0) == 0xC0) {
        need = 1;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        need = 2;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        need = 3;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (left <= need) return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need + 1;
}

char *vt_http_title(const unsigned char *body, size_t len)
{
    if (!body) return NULL;
    size_t i = 0, start = 0, end = 0;
    int found = 0;
    /* <title> or <title attr...>, case-insensitive; not <titlefoo>. */
    for (; i + 6 < len; i++) {
        if (body[i] != '<' || !ci_prefix(body + i + 1, len - i - 1, "title")) continue;
        unsigned char c = body[i + 6];
        if (c != '>' && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '/') continue;
        size_t j = i + 6;
        while (j < len && body[j] != '>')
            j++;
        if (j >= len) return NULL;
        start = j + 1;
        found = 1;
        break;
    }
    if (!found) return NULL;
    end = len;
    for (size_t k = start; k + 1 < len; k++)
        if (body[k] == '<' && ci_prefix(body + k + 1, len - k - 1, "/title")) {
            end = k;
            break;
        }
    /* Copy with whitespace and control characters collapsed to one space, invalid UTF-8 replaced
     * by U+FFFD, at most VT_HTTP_TITLE_MAX bytes, never cutting a character. */
    char *out = malloc(VT_HTTP_TITLE_MAX + 1);
    if (!out) return NULL;
    size_t o = 0;
    int pending_space = 0;
    for (size_t k = start; k < end;) {
        unsigned char c = body[k];
        if (c < 0x20 || c == 0x7F || c == ' ') {
            pending_space = o > 0;
            k++;
            continue;
        }
        size_t n = utf8_seq(body + k, end - k);
        const unsigned char *src = body + k;
        static const unsigned char repl[3] = {0xEF, 0xBF, 0xBD};
        size_t srclen = n;
        if (n == 0) {
            src = repl;
            srclen = 3;
            n = 1;
        }
        if (o + (size_t)pending_space + srclen > VT_HTTP_TITLE_MAX) break;
        if (pending_space) out[o++] = ' ';
        pending_space = 0;
        memcpy(out + o, src, srclen);
        o += srclen;
        k += n;
    }
    out[o] = 0;
    return out;
}

/* ---- curl callbacks ---- */

/* OONI's netevents address of the connection: the server's "IP:PORT" ("[v6]:PORT"), never the
 * probe's own address; "" before any connection. */
static void event_address(CURL *easy, char *out, size_t n)
{
    char *ip = NULL;
    long port = 0;
    out[0] = 0;
    if (curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK || !ip || !*ip) return;
    curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port);
    snprintf(out, n, strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, port);
}

static void add_sample(http_req *r, double now)
{
    char address[80];
    cJSON *ev = cJSON_CreateObject();
    if (!ev) return;
    event_address(r->easy, address, sizeof(address));
    cJSON_AddStringToObject(ev, "address", address);
    cJSON_AddNullToObject(ev, "failure");
    cJSON_AddStringToObject(ev, "operation", "bytes_received_cumulative");
    cJSON_AddNumberToObject(ev, "num_bytes", (double)r->bytes_received);
    cJSON_AddStringToObject(ev, "proto", "tcp");
    vt_json_add_time(ev, "t", now - r->t_base);
    cJSON_AddItemToObject(ev, "tags", cJSON_CreateArray());
    cJSON_AddNumberToObject(ev, "transaction_id", (double)r->transaction_id);
    cJSON_AddItemToArray(r->events, ev);
    r->last_sample = now;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    http_req *r = userp;
    size_t n = size * nmemb;
    if (r->bytes_received >= r->max_download) {
        r->stop = STOP_BODY_CAP; /* more than max_download bytes: a short write stops curl */
        return 0;
    }
    size_t take = r->max_download - r->bytes_received;
    if (take > n) take = n;
    if (r->body_len < r->max_body) {
        size_t keep = r->max_body - r->body_len;
        if (keep > take) keep = take;
        memcpy(r->body + r->body_len, data, keep);
        r->body_len += keep;
    }
    r->bytes_received += take;
    if (r->bytes_counter) *r->bytes_counter += take;
    double now = vt_now();
    if (r->t_first_body == 0) {
        r->t_first_body = now;
        r->first_body_len = take;
    }
    r->t_last_body = now;
    if ((now - r->last_sample) * 1000.0 >= r->sample_ms) add_sample(r, now);
    if (take < n) {
        r->stop = STOP_BODY_CAP;
        return take;
    }
    return n;
}

static char *trim(char *s, size_t *len)
{
    while (*len && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        (*len)--;
    }
    while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t' || s[*len - 1] == '\r' ||
                    s[*len - 1] == '\n'))
        (*len)--;
    return s;
}

/* A JSON-safe copy of header bytes (invalid UTF-8 and NUL replaced). */
static char *safe_text(const char *s, size_t len)
{
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t k = 0; k < len;) {
        const unsigned char *p = (const unsigned char *)s + k;
        size_t n = p[0] == 0 ? 0 : utf8_seq(p, len - k);
        if (n == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            k++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            k += n;
        }
    }
    out[o] = 0;
    return out;
}

/* Appends ["Name","value"] from one "Name: value" line. */
static void add_header_line(cJSON *list, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) return;
    size_t nlen = (size_t)(colon - line);
    size_t vlen = len - nlen - 1;
    char *name = trim((char *)line, &nlen);
    char *value = trim((char *)colon + 1, &vlen);
    char *n = safe_text(name, nlen), *v = safe_text(value, vlen);
    cJSON *pair = cJSON_CreateArray();
    if (n && v && pair) {
        cJSON_AddItemToArray(pair, cJSON_CreateString(n));
        cJSON_AddItemToArray(pair, cJSON_CreateString(v));
        cJSON_AddItemToArray(list, pair);
    } else {
        cJSON_Delete(pair);
    }
    free(n);
    free(v);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userp)
{
    http_req *r = userp;
    size_t n = size * nitems;
    r->header_bytes += n;
    if (r->header_bytes > VT_HTTP_MAX_HEADER_BYTES) {
        r->stop = STOP_HEADER_CAP;
        return 0;
    }
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx): keep only the last one's headers. */
        cJSON_Delete(r->resp_headers_list);
        r->resp_headers_list = cJSON_CreateArray();
        return n;
    }
    if (r->resp_headers_list) add_header_line(r->resp_headers_list, data, n);
    return n;
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
    http_req *r = userp;
    if (type != CURLINFO_HEADER_OUT || r->req_headers_list) return 0;
    r->req_headers_list = cJSON_CreateArray();
    if (!r->req_headers_list) return 0;
    /* The whole request head: skip the request line, one header per line. */
    const char *p = data, *end = data + size;
    const char *nl = memchr(p, '\n', size);
    p = nl ? nl + 1 : end;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le - p > 1 || (le - p == 1 && *p != '\r'))
            add_header_line(r->req_headers_list, p, (size_t)(le - p));
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* ---- the request entry ---- */

static cJSON *headers_object(const cJSON *list)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *pair;
    cJSON_ArrayForEach(pair, list)
    {
        const char *n = cJSON_GetArrayItem(pair, 0)->valuestring;
        const char *v = cJSON_GetArrayItem(pair, 1)->valuestring;
        /* OONI keeps one value per name: the first. */
        if (!cJSON_GetObjectItemCaseSensitive(o, n)) cJSON_AddStringToObject(o, n, v);
    }
    return o;
}

static cJSON *request_entry(http_req *r, const vt_http_result *res)
{
    cJSON *e = cJSON_CreateObject();
    vt_json_add_failure(e, "failure", res->failure);

    cJSON *rq = cJSON_AddObjectToObject(e, "request");
    cJSON_AddStringToObject(rq, "body", "");
    cJSON_AddBoolToObject(rq, "body_is_truncated", 0);
    cJSON *rql =
        r->req_headers_list ? cJSON_Duplicate(r->req_headers_list, 1) : cJSON_CreateArray();
    cJSON_AddItemToObject(rq, "headers", headers_object(rql));
    cJSON_AddItemToObject(rq, "headers_list", rql);
    cJSON_AddStringToObject(rq, "method", r->method);
    cJSON *tor = cJSON_AddObjectToObject(rq, "tor");
    cJSON_AddNullToObject(tor, "exit_ip");
    cJSON_AddNullToObject(tor, "exit_name");
    cJSON_AddBoolToObject(tor, "is_tor", 0);
    cJSON_AddStringToObject(rq, "x_transport", "tcp");
    cJSON_AddStringToObject(rq, "url", r->url);

    cJSON *rs = cJSON_AddObjectToObject(e, "response");
    cJSON *body = vt_json_body(res->body ? res->body : (const unsigned char *)"", res->body_len);
    cJSON_AddItemToObject(rs, "body", body ? body : cJSON_CreateNull());
    cJSON_AddBoolToObject(rs, "body_is_truncated", res->body_truncated);
    cJSON_AddNumberToObject(rs, "code", (double)res->status);
    cJSON *rsl =
        r->resp_headers_list ? cJSON_Duplicate(r->resp_headers_list, 1) : cJSON_CreateArray();
    cJSON_AddItemToObject(rs, "headers", headers_object(rsl));
    cJSON_AddItemToObject(rs, "headers_list", rsl);

    vt_json_add_time(e, "t0", res->t0);
    vt_json_add_time(e, "t", res->t);
    /* Where the time went (curl's clocks, seconds from t0; null when not reached): the server's
     * own delay is starttransfer - pretransfer less one round trip. */
    cJSON *tm = cJSON_AddObjectToObject(e, "x_timings");
    const struct {
        const char *name;
        double v;
    } tms[] = {{"connect", res->connect_time},
               {"appconnect", res->appconnect_time},
               {"pretransfer", res->pretransfer_time},
               {"starttransfer", res->starttransfer_time},
               {"total", res->total_time}};
    for (size_t i = 0; tm && i < sizeof(tms) / sizeof(tms[0]); i++)
        if (tms[i].v > 0)
            vt_json_add_time(tm, tms[i].name, tms[i].v);
        else
            cJSON_AddNullToObject(tm, tms[i].name);
    cJSON_AddNullToObject(e, "tags"); /* as OONI's web_connectivity: null */
    cJSON_AddNumberToObject(e, "transaction_id", (double)r->transaction_id);
    return e;
}

static double info_secs(CURL *easy, CURLINFO what)
{
    curl_off_t us = 0;
    if (curl_easy_getinfo(easy, what, &us) != CURLE_OK) return 0;
    return (double)us / 1e6;
}

static void on_done(CURL *easy, CURLcode code, void *arg)
{
    http_req *r = arg;
    vt_http_result res;
    memset(&res, 0, sizeof(res));
    double now = vt_now();
    res.t0 = r->t0 - r->t_base;
    res.t = now - r->t_base;

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
    curl_off_t retry_after = 0; /* delay-seconds or an HTTP date, as curl reads it */
    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        res.retry_after_s = retry_after > 86400 ? 86400 : (long)retry_after;
    long os_errno = 0;
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
    if (code == CURLE_WRITE_ERROR && r->stop == STOP_BODY_CAP) {
        res.body_truncated = 1;
    } else if ((code == CURLE_WRITE_ERROR && r->stop == STOP_HEADER_CAP) ||
               (code == CURLE_OUT_OF_MEMORY && r->resp_headers_list)) {
        /* Ours: over VT_HTTP_MAX_HEADER_BYTES in all; curl's: one line over 100 KiB, which it
         * reports as out of memory. */
        snprintf(res.failure, sizeof(res.failure), "%s", VT_HTTP_HEADERS_TOO_LARGE);
    } else if (code != CURLE_OK) {
        vt_failure_curl(code, os_errno, r->errbuf, res.failure, sizeof(res.failure));
    }
    if (res.failure[0] == 0 && res.status == 0) /* no response at all, e.g. HTTP/0.9 refused */
        snprintf(res.failure, sizeof(res.failure), "http_invalid_response");
    res.body = r->body;
    res.body_len = r->body_len;
    res.bytes_received = r->bytes_received;
    if (res.bytes_received > res.body_len) res.body_truncated = 1;

    char *ip = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip)
        snprintf(res.primary_ip, sizeof(res.primary_ip), "%s", ip);
    curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &res.primary_port);
    res.connect_time = info_secs(easy, CURLINFO_CONNECT_TIME_T);
    res.appconnect_time = info_secs(easy, CURLINFO_APPCONNECT_TIME_T);
    res.pretransfer_time = info_secs(easy, CURLINFO_PRETRANSFER_TIME_T);
    res.starttransfer_time = info_secs(easy, CURLINFO_STARTTRANSFER_TIME_T);
    res.total_time = info_secs(easy, CURLINFO_TOTAL_TIME_T);
    /* The rate from the first body bytes to the last, leaving out the bytes that came with the
     * first: they arrived before the clock could start (a TLS record of up to 16 KiB, or a
     * policer's burst, lands at once), so bytes / (total - starttransfer) reads high on slow
     * links. Too short a span to say (under 50 ms): the plain ratio. */
    double span = r->t_last_body - r->t_first_body;
    if (span >= 0.05 && res.bytes_received > r->first_body_len)
        res.throughput_bps = (double)(res.bytes_received - r->first_body_len) * 8.0 / span;
    else if ((span = res.total_time - res.starttransfer_time) > 0 && res.bytes_received > 0)
        res.throughput_bps = (double)res.bytes_received * 8.0 / span;

    if (res.status >= 300 && res.status < 400) {
        char *loc = NULL;
        if (curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            res.location = strdup(loc);
    }
    if (res.body_len) res.title = vt_http_title(res.body, res.body_len);

    add_sample(r, now);
    res.request_entry = request_entry(r, &res);
    res.network_events = r->events;
    r->events = NULL;

    r->cb(&res, r->arg);

    free(res.location);
    free(res.title);
    cJSON_Delete(res.request_entry);
    cJSON_Delete(res.network_events);
    req_free(r);
}

/* "host:port:addr1,addr2" for CURLOPT_RESOLVE, from the URL's host and port. */
static struct curl_slist *resolve_list(const char *url, const char *const *addrs)
{
    struct curl_slist *out = NULL;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto done;
    struct in_addr a4;
    if (host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1) {
        out = curl_slist_append(NULL, "-"); /* an IP literal needs no name resolution */
        goto done;
    }
    size_t cap = strlen(host) + strlen(port) + 8;
    for (size_t i = 0; addrs[i]; i++)
        cap += strlen(addrs[i]) + 3;
    char *s = malloc(cap);
    if (!s) goto done;
    /* An IPv6 literal host comes back in brackets, as CURLOPT_RESOLVE wants it. */
    size_t o = (size_t)snprintf(s, cap, "%s:%s:", host, port);
    for (size_t i = 0; addrs[i]; i++) {
        int v6 = strchr(addrs[i], ':') != NULL;
        o += (size_t)snprintf(s + o, cap - o, "%s%s%s%s", i ? "," : "", v6 ? "[" : "", addrs[i],
                              v6 ? "]" : "");
    }
    out = curl_slist_append(NULL, s);
    free(s);
done:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

int vt_http_request(vt_loop *loop, const vt_http_opts *o, vt_http_cb cb, void *arg)
{
    if (!o || !o->url || !cb) return -1;
    http_req *r = calloc(1, sizeof(*r));
    if (!r) return -1;
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    r->t_base = o->t_base;
    r->url = strdup(o->url);
    r->method = strdup(o->method ? o->method : "GET");
    r->max_body = o->max_body;
    r->max_download = o->max_download ? o->max_download : o->max_body;
    if (r->max_download < r->max_body) r->max_download = r->max_body;
    if (r->max_download == 0)
        r->max_download = 1; /* nothing kept: still read the first byte of the body */
    r->sample_ms = o->sample_ms > 0 ? o->sample_ms : 100;
    r->bytes_counter = o->bytes_counter;
    r->transaction_id = next_transaction_id++;
    r->events = cJSON_CreateArray();
    r->body = malloc(r->max_body ? r->max_body : 1);
    r->easy = curl_easy_init();
    if (!r->url || !r->method || !r->events || !r->body || !r->easy) goto fail;
    int is_post = strcmp(r->method, "POST") == 0;
    if (!is_post && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) goto fail;

    CURL *e = r->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, r->url) != CURLE_OK) goto fail;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* Every request its own connection to the addresses given: measurements stay independent. */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    long ctimeout = o->connect_timeout_ms > 0 && o->connect_timeout_ms < timeout
                        ? o->connect_timeout_ms
                        : timeout;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
    /* The process's shared CA store rather than a parse of the CA file per transfer. */
    if (!o->no_verify && vt_tls_curl_use_ca(e, o->cacert) < 0 && o->cacert)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->cacert);
    if (o->no_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (o->pinned_key && *o->pinned_key &&
        curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, o->pinned_key) != CURLE_OK)
        goto fail;
    if (o->user_agent) curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent);
    r->headers_out = curl_slist_append(
        NULL, "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    r->headers_out = curl_slist_append(r->headers_out, "Accept-Language: en-US,en;q=0.9");
    if (is_post) {
        char ct[200];
        snprintf(ct, sizeof(ct), "Content-Type:%s%s", o->content_type ? " " : "",
                 o->content_type ? o->content_type : "");
        r->headers_out = curl_slist_append(r->headers_out, ct);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? (const char *)o->body : "");
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers_out);
    if (o->addrs && o->addrs[0]) {
        r->resolve = resolve_list(r->url, o->addrs);
        if (!r->resolve) goto fail;
        if (strcmp(r->resolve->data, "-") != 0) curl_easy_setopt(e, CURLOPT_RESOLVE, r->resolve);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);

    r->t0 = vt_now();
    r->last_sample = r->t0;
    if (vt_loop_curl_add(loop, e, on_done, r) < 0) goto fail;
    return 0;
fail:
    req_free(r);
    return -1;
}
