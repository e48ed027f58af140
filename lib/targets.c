/* Target files (docs/targets.md) and Citizen Lab test-list import. */
#include "vantage/targets.h"

#include "vantage/addr.h"

#include "csv.h"
#include "textfile.h"
#include "vantage/version.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define VT_TARGET_ID_MAX 128

const char *vt_targets_default_dir(void)
{
    static char buf[4096];
    return vt_data_dir(getenv("VANTAGE_TARGETS"), "targets", "targets", "social.json", 3,
                       VT_DATADIR, buf, sizeof(buf));
}

void vt_targets_init(vt_target_list *l)
{
    memset(l, 0, sizeof *l);
}

static void target_free(vt_target *t)
{
    free(t->id);
    free(t->name);
    free(t->platform);
    free(t->category);
    free(t->kind);
    for (size_t i = 0; i < t->n_endpoints; i++)
        free(t->endpoints[i]);
    free(t->endpoints);
    free(t->large_resource);
    cJSON_Delete(t->options);
    free(t->source);
    memset(t, 0, sizeof *t);
}

/* Drops the targets appended after n0: a failed load leaves the list as it was. */
static void truncate_to(vt_target_list *l, size_t n0)
{
    while (l->n > n0)
        target_free(&l->items[--l->n]);
}

void vt_targets_free(vt_target_list *l)
{
    truncate_to(l, 0);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static vt_target *push(vt_target_list *l)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        vt_target *ni = realloc(l->items, ncap * sizeof *ni);
        if (!ni) return NULL;
        l->items = ni;
        l->cap = ncap;
    }
    vt_target *t = &l->items[l->n++];
    memset(t, 0, sizeof *t);
    return t;
}

const vt_target *vt_targets_find(const vt_target_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].id, id) == 0) return &l->items[i];
    return NULL;
}

/* ---- id index: duplicate checks stay linear in the size of what is loaded ---------------- */

typedef struct id_index {
    size_t *slot; /* 1 + index into l->items, 0 = empty */
    size_t cap;   /* a power of two */
    size_t n;
} id_index;

static size_t id_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void idx_put(id_index *x, const vt_target_list *l, size_t i)
{
    size_t m = x->cap - 1, h = id_hash(l->items[i].id) & m;
    while (x->slot[h])
        h = (h + 1) & m;
    x->slot[h] = i + 1;
    x->n++;
}

static int idx_build(id_index *x, const vt_target_list *l, size_t want)
{
    size_t cap = 64;
    while (cap < 2 * want)
        cap *= 2;
    size_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    free(x->slot);
    x->slot = slot;
    x->cap = cap;
    x->n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].id) idx_put(x, l, i);
    return 0;
}

/* Adds l->items[i]; -1 on out of memory. */
static int idx_add(id_index *x, const vt_target_list *l, size_t i)
{
    if (2 * (x->n + 1) > x->cap)
        return idx_build(x, l, x->cap); /* rebuild from the list, which already holds i */
    idx_put(x, l, i);
    return 0;
}

static const vt_target *idx_find(const id_index *x, const vt_target_list *l, const char *id)
{
    size_t m = x->cap - 1, h = id_hash(id) & m;
    for (; x->slot[h]; h = (h + 1) & m)
        if (strcmp(l->items[x->slot[h] - 1].id, id) == 0) return &l->items[x->slot[h] - 1];
    return NULL;
}

/* ---- endpoint syntax ---------------------------------------------------------------------- */

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VT_TARGET_ID_MAX) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '.' ||
              *s == '-'))
            return 0;
    return 1;
}

static int valid_kind(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* A DNS name: dot-separated labels of letters, digits, '-' and '_', each 1..63 bytes. */
static int valid_hostname(const char *h, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0) return 0;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63) return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

static int parse_port(const char *p, size_t n)
{
    long v = 0;
    if (n == 0 || n > 5) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535 ? (int)v : -1;
}

static int is_ip_literal(const char *h, size_t n, int *v6)
{
    char tmp[64];
    unsigned char addr[16];
    if (n == 0 || n >= sizeof tmp) return 0;
    memcpy(tmp, h, n);
    tmp[n] = 0;
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *v6 = 0;
        return 1;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *v6 = 1;
        return 1;
    }
    return 0;
}

/* "host:port", "1.2.3.4:443" or "[2001:db8::1]:443". */
static int check_hostport(const char *s, int want_ip, char *why, size_t whylen)
{
    const char *host, *port;
    size_t hlen;
    int v6 = 0;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(why, whylen, "expected \"[ipv6]:port\"");
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
        if (!is_ip_literal(host, hlen, &v6) || !v6) {
            snprintf(why, whylen, "not an IPv6 address inside the brackets");
            return -1;
        }
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            snprintf(why, whylen, "expected \"host:port\" (no port)");
            return -1;
        }
        host = s;
        hlen = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(host, ':', hlen)) {
            snprintf(why, whylen, "an IPv6 address needs brackets: \"[addr]:port\"");
            return -1;
        }
        int is_ip = is_ip_literal(host, hlen, &v6);
        if (want_ip && !is_ip) {
            snprintf(why, whylen, "expected \"ip:port\" with an IP address literal");
            return -1;
        }
        if (!is_ip && !valid_hostname(host, hlen)) {
            snprintf(why, whylen, "expected \"host:port\" with a valid host name or address");
            return -1;
        }
    }
    if (parse_port(port, strlen(port)) < 0) {
        snprintf(why, whylen, "port must be a number from 1 to 65535");
        return -1;
    }
    return 0;
}

/* An absolute http or https URL with a host; sets *hostp and *hlenp (without brackets or port). */
static int check_url(const char *s, const char **hostp, size_t *hlenp, char *why, size_t whylen)
{
    const char *p;
    if (strncasecmp(s, "http://", 7) == 0)
        p = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        p = s + 8;
    else {
        snprintf(why, whylen, "expected an http:// or https:// URL");
        return -1;
    }
    for (const unsigned char *q = (const unsigned char *)s; *q; q++)
        if (*q <= 0x20 || *q == 0x7f) {
            snprintf(why, whylen, "URL contains a space or control character");
            return -1;
        }
    size_t alen = strcspn(p, "/?#");
    const char *at = memchr(p, '@', alen);
    const char *last_at = at;
    while (at) {
        last_at = at;
        at = memchr(at + 1, '@', alen - (size_t)(at + 1 - p));
    }
    if (last_at) {
        alen -= (size_t)(last_at + 1 - p);
        p = last_at + 1;
    }
    const char *host = p, *end = p + alen, *port = NULL;
    size_t hlen;
    if (*host == '[') {
        const char *close = memchr(host, ']', alen);
        int v6 = 0;
        if (!close || !is_ip_literal(host + 1, (size_t)(close - host - 1), &v6) || !v6) {
            snprintf(why, whylen, "bad IPv6 address in URL");
            return -1;
        }
        if (close + 1 < end) {
            if (close[1] != ':') {
                snprintf(why, whylen, "unexpected text after the IPv6 address in URL");
                return -1;
            }
            port = close + 2;
        }
        host++;
        hlen = (size_t)(close - host);
    } else {
        const char *colon = memchr(host, ':', alen);
        hlen = colon ? (size_t)(colon - host) : alen;
        if (colon) port = colon + 1;
        if (hlen == 0) {
            snprintf(why, whylen, "URL has no host");
            return -1;
        }
        for (size_t i = 0; i < hlen; i++) {
            unsigned char c = (unsigned char)host[i];
            if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%' ||
                  c >= 0x80)) {
                snprintf(why, whylen, "URL host contains '%c'", c);
                return -1;
            }
        }
    }
    if (port && parse_port(port, (size_t)(end - port)) < 0) {
        snprintf(why, whylen, "URL port must be a number from 1 to 65535");
        return -1;
    }
    /* What the runner will do with it: split by the same parser (libcurl's, vt_url_split), and
     * look the host up, which needs a DNS name (at most 253 bytes, labels of 1..63). Refused
     * here, the error names the file and the target; at run time the target was skipped. */
    char split[256];
    int sport, https, v6;
    if (hlen > 253) {
        snprintf(why, whylen, "URL host is longer than 253 bytes");
        return -1;
    }
    if (vt_url_split(s, split, sizeof split, &sport, &https) < 0) {
        snprintf(why, whylen, "not a URL the probe can use (libcurl refuses it)");
        return -1;
    }
    if (!is_ip_literal(split, strlen(split), &v6)) {
        size_t label = 0;
        for (const char *q = split;; q++) {
            if (*q == '.' || !*q) {
                if (label == 0 && (*q || q == split)) {
                    snprintf(why, whylen, "URL host has an empty label");
                    return -1;
                }
                if (!*q) break;
                label = 0;
            } else if (++label > 63) {
                snprintf(why, whylen, "URL host has a label longer than 63 bytes");
                return -1;
            }
        }
    }
    if (hostp) {
        *hostp = host;
        *hlenp = hlen;
    }
    return 0;
}

/* ---- JSON target files -------------------------------------------------------------------- */

typedef struct ctx {
    id_index *ids;
    const char *name;
    size_t index;
    const char *id; /* NULL until the id is known to be a string */
    char *err;
    size_t errlen;
} ctx;

/* "name: targets[i] (id "x"): key "k": problem" */
__attribute__((format(printf, 3, 4))) static int fail(const ctx *c, const char *key,
                                                       const char *fmt, ...)
{
    char what[512];
    char where[VT_TARGET_ID_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->id)
        snprintf(where, sizeof where, "targets[%zu] (id \"%.*s\")", c->index, VT_TARGET_ID_MAX,
                 c->id);
    else
        snprintf(where, sizeof where, "targets[%zu]", c->index);
    if (key)
        snprintf(c->err, c->errlen, "%s: %s: key \"%s\": %s", c->name, where, key, what);
    else
        snprintf(c->err, c->errlen, "%s: %s: %s", c->name, where, what);
    return -1;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

/* A required (or optional, when out may stay NULL) non-empty string. */
static int get_string(const ctx *c, const cJSON *obj, const char *key, int required,
                      const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) {
        if (required) return fail(c, key, "missing (expected a non-empty string)");
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(c, key, "expected a non-empty string, got %s", type_name(v));
    if (!*v->valuestring) return fail(c, key, "expected a non-empty string, got \"\"");
    *out = v->valuestring;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A key that appears twice in obj, or NULL. Sorting keeps a hostile object with many keys cheap;
 * *oom is set when the scratch array cannot be had. */
static const char *duplicate_key(const cJSON *obj, int *oom)
{
    size_t n = 0, k = 0;
    const char *dup = NULL;
    *oom = 0;
    for (const cJSON *a = obj->child; a; a = a->next)
        n++;
    if (n < 2) return NULL;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) {
        *oom = 1;
        return NULL;
    }
    for (const cJSON *a = obj->child; a; a = a->next)
        keys[k++] = a->string ? a->string : "";
    qsort(keys, n, sizeof *keys, cmp_key);
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Kind-specific keys that this file documents; other keys pass through in options. */
static int check_kind_options(const ctx *c, const cJSON *o, const char *kind)
{
    if (strcmp(kind, "endpoint") == 0) {
        const cJSON *tls = cJSON_GetObjectItemCaseSensitive(o, "tls");
        const cJSON *sni = cJSON_GetObjectItemCaseSensitive(o, "sni");
        const cJSON *alpn = cJSON_GetObjectItemCaseSensitive(o, "alpn");
        if (alpn && (!cJSON_IsString(alpn) || !alpn->valuestring[0]))
            return fail(c, "alpn", "expected a non-empty string such as \"h2,http/1.1\", got %s",
                        type_name(alpn));
        if (tls && !cJSON_IsBool(tls))
            return fail(c, "tls", "expected true or false, got %s", type_name(tls));
        if (sni) {
            if (!cJSON_IsString(sni) || !sni->valuestring)
                return fail(c, "sni", "expected a host name string, got %s", type_name(sni));
            if (!valid_hostname(sni->valuestring, strlen(sni->valuestring)))
                return fail(c, "sni", "\"%s\" is not a valid host name", sni->valuestring);
            if (!cJSON_IsTrue(tls)) return fail(c, "sni", "only meaningful with \"tls\": true");
        }
    }
    return 0;
}

static int check_endpoint(const ctx *c, const char *kind, const char *ep, size_t i)
{
    char why[160];
    char key[48];
    snprintf(key, sizeof key, "endpoints[%zu]", i);
    if (strcmp(kind, "web") == 0) {
        if (check_url(ep, NULL, NULL, why, sizeof why) < 0)
            return fail(c, key, "\"%.200s\": %s", ep, why);
    } else if (strcmp(kind, "telegram") == 0) {
        /* A data centre as "ip:port" or a bare "ip" (ports 80 and 443), or a URL (the web
         * check, or "http://ip:port/"). */
        int v6;
        int rc = strncasecmp(ep, "http://", 7) == 0 || strncasecmp(ep, "https://", 8) == 0
                     ? check_url(ep, NULL, NULL, why, sizeof why)
                 : is_ip_literal(ep, strlen(ep), &v6) ? 0
                                                      : check_hostport(ep, 1, why, sizeof why);
        if (rc < 0)
            return fail(c, key, "\"%.200s\": %s (kind \"telegram\": \"ip:port\", \"ip\" or a URL)",
                        ep, why);
    } else if (check_hostport(ep, 0, why, sizeof why) < 0) {
        return fail(c, key, "\"%.200s\": %s (kind \"%s\")", ep, why, kind);
    }
    return 0;
}

static int load_target(vt_target_list *l, const ctx *c0, const cJSON *o)
{
    ctx c = *c0;
    const char *id, *name, *platform, *category, *kind, *large;
    if (!cJSON_IsObject(o)) return fail(&c, NULL, "expected an object, got %s", type_name(o));
    int oom;
    const char *dup = duplicate_key(o, &oom);
    if (oom) return fail(&c, NULL, "out of memory");
    if (dup) return fail(&c, dup, "appears twice in the same target");
    if (get_string(&c, o, "id", 1, &id) < 0) return -1;
    if (!valid_id(id))
        return fail(&c, "id", "\"%.*s\" is not a valid id (1..%d of a-z 0-9 _ . -)",
                    VT_TARGET_ID_MAX, id, VT_TARGET_ID_MAX);
    c.id = id;
    const vt_target *prev = idx_find(c.ids, l, id);
    if (prev) return fail(&c, "id", "duplicate id, already defined in %s", prev->source);
    if (get_string(&c, o, "name", 1, &name) < 0 ||
        get_string(&c, o, "platform", 1, &platform) < 0 ||
        get_string(&c, o, "category", 1, &category) < 0 ||
        get_string(&c, o, "kind", 1, &kind) < 0 ||
        get_string(&c, o, "large_resource", 0, &large) < 0)
        return -1;
    if (!valid_kind(kind))
        return fail(&c, "kind", "\"%s\" is not a valid kind name (a-z 0-9 _ -)", kind);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(o, "endpoints");
    int n_eps = cJSON_GetArraySize(eps);
    if (!cJSON_IsArray(eps) || n_eps == 0)
        return fail(&c, "endpoints", "expected a non-empty array of strings%s",
                    !eps ? " (missing)" : "");
    int i = 0;
    for (const cJSON *e = eps->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || !e->valuestring || !*e->valuestring)
            return fail(&c, "endpoints", "expected a non-empty array of strings (item %d is %s)", i,
                        cJSON_IsString(e) ? "empty" : type_name(e));
        if (check_endpoint(&c, kind, e->valuestring, (size_t)i) < 0) return -1;
    }
    char why[160];
    if (large && check_url(large, NULL, NULL, why, sizeof why) < 0)
        return fail(&c, "large_resource", "\"%.200s\": %s", large, why);
    if (check_kind_options(&c, o, kind) < 0) return -1;

    vt_target *t = push(l);
    if (!t) return fail(&c, NULL, "out of memory");
    t->id = xstrdup(id);
    if (!t->id || idx_add(c.ids, l, l->n - 1) < 0) return fail(&c, NULL, "out of memory");
    t->name = xstrdup(name);
    t->platform = xstrdup(platform);
    t->category = xstrdup(category);
    t->kind = xstrdup(kind);
    t->large_resource = xstrdup(large);
    t->source = xstrdup(c.name);
    t->options = cJSON_Duplicate(o, 1);
    t->endpoints = calloc((size_t)n_eps, sizeof *t->endpoints);
    if (t->endpoints)
        for (const cJSON *e = eps->child; e; e = e->next)
            if ((t->endpoints[t->n_endpoints] = strdup(e->valuestring))) t->n_endpoints++;
    if (!t->id || !t->name || !t->platform || !t->category || !t->kind || !t->source ||
        !t->options || (large && !t->large_resource) || t->n_endpoints != (size_t)n_eps)
        return fail(&c, NULL, "out of memory");
    return 0;
}

static int json_error_at(const char *json, size_t len, size_t off, const char *name,
                         const char *what, char *err, size_t errlen)
{
    size_t line, col;
    vt_textfile_position(json, len, off, &line, &col);
    snprintf(err, errlen, "%s:%zu:%zu: %s (byte offset %zu)", name, line, col, what, off);
    return -1;
}

int vt_targets_load_json(vt_target_list *l, const char *json, size_t len, const char *name,
                         char *err, size_t errlen)
{
    int rc = -1;
    id_index ids = {0};
    size_t n0 = l->n;
    cJSON *root = NULL;
    const char *end = NULL;
    size_t bad = vt_textfile_utf8_invalid((const unsigned char *)json, len);
    if (bad < len)
        return json_error_at(json, len, bad, name,
                             json[bad] == 0 ? "NUL byte: not a text file"
                                            : "invalid UTF-8: target files must be UTF-8",
                             err, errlen);
    size_t lead = 0;
    while (lead < len && isspace((unsigned char)json[lead]))
        lead++;
    if (lead == len) { /* an editor's crash, a download cut at 0 bytes, `> targets.json` */
        snprintf(err, errlen,
                 "%s: the file is empty (a target list is a JSON object; see "
                 "docs/targets.md)",
                 name);
        return -1;
    }
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return json_error_at(json, len, off, name, "JSON syntax error", err, errlen);
    }
    size_t off = end ? (size_t)(end - json) : len;
    while (off < len && isspace((unsigned char)json[off]))
        off++;
    if (off < len) {
        json_error_at(json, len, off, name, "unexpected data after the JSON document", err, errlen);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: expected a JSON object at the top level, got %s", name,
                 type_name(root));
        goto done;
    }
    int oom;
    const char *dup = duplicate_key(root, &oom);
    if (oom) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto done;
    }
    if (dup) {
        snprintf(err, errlen, "%s: key \"%s\": appears twice at the top level", name, dup);
        goto done;
    }
    for (const cJSON *k = root->child; k; k = k->next) {
        if (k->string[0] == '_' || !strcmp(k->string, "version") || !strcmp(k->string, "list") ||
            !strcmp(k->string, "description") || !strcmp(k->string, "targets"))
            continue;
        snprintf(err, errlen,
                 "%s: key \"%s\": unknown top-level key (expected version, list, description, "
                 "targets, or a key starting with \"_\")",
                 name, k->string);
        goto done;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!ver) {
        snprintf(err, errlen, "%s: key \"version\": missing (expected 1)", name);
        goto done;
    }
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        snprintf(err, errlen, "%s: key \"version\": unsupported version (expected the number 1)",
                 name);
        goto done;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "list");
    if (list && (!cJSON_IsString(list) || !list->valuestring[0])) {
        snprintf(err, errlen, "%s: key \"list\": expected a non-empty string, got %s", name,
                 type_name(list));
        goto done;
    }
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    if (desc && !cJSON_IsString(desc)) {
        snprintf(err, errlen, "%s: key \"description\": expected a string, got %s", name,
                 type_name(desc));
        goto done;
    }
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(root, "targets");
    if (!cJSON_IsArray(targets)) {
        snprintf(err, errlen, "%s: key \"targets\": expected an array of target objects%s", name,
                 targets ? "" : " (missing)");
        goto done;
    }
    if (idx_build(&ids, l, l->n + (size_t)cJSON_GetArraySize(targets)) < 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *o = targets->child; o; o = o->next, i++) {
        ctx c = {.ids = &ids, .name = name, .index = i, .err = err, .errlen = errlen};
        if (load_target(l, &c, o) < 0) goto done;
    }
    rc = 0;
done:
    free(ids.slot);
    if (rc < 0) truncate_to(l, n0);
    cJSON_Delete(root);
    return rc;
}

int vt_targets_load_file(vt_target_list *l, const char *path, char *err, size_t errlen)
{
    char *data;
    size_t len;
    if (vt_textfile_read(path, VT_TEXTFILE_MAX, &data, &len, err, errlen) < 0) return -1;
    int rc = vt_targets_load_json(l, data, len, path, err, errlen);
    free(data);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

int vt_targets_load_dir(vt_target_list *l, const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    size_t n0 = l->n;
    char **names = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".json")) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) goto oom;
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) goto oom;
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: no *.json target files in this directory", dir);
        goto done;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t dl = strlen(dir);
        char *path = malloc(dl + strlen(names[i]) + 2);
        if (!path) goto oom;
        sprintf(path, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names[i]);
        int r = vt_targets_load_file(l, path, err, errlen);
        free(path);
        if (r < 0) goto done;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "%s: out of memory", dir);
done:
    if (rc < 0) truncate_to(l, n0);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int vt_targets_load_path(vt_target_list *l, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) return vt_targets_load_dir(l, path, err, errlen);
    if (ends_with(path, ".csv")) return vt_targets_load_citizenlab(l, path, err, errlen);
    return vt_targets_load_file(l, path, err, errlen);
}

void vt_targets_keep(vt_target_list *l, const unsigned char *keep)
{
    size_t j = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (keep[i])
            l->items[j++] = l->items[i];
        else
            target_free(&l->items[i]);
    }
    l->n = j;
}

int vt_targets_filter(vt_target_list *l, const char *ids_csv, const char *also_category, char *err,
                      size_t errlen)
{
    int rc = -1;
    id_index ids = {0};
    char *copy = strdup(ids_csv ? ids_csv : "");
    unsigned char *keep = calloc(l->n ? l->n : 1, 1);
    /* The id index: one lookup per named id, not a scan of the list (a long --only on a big
     * list was quadratic). */
    if (!copy || !keep || idx_build(&ids, l, l->n) < 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; also_category && i < l->n; i++)
        keep[i] = l->items[i].category && strcmp(l->items[i].category, also_category) == 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*tok) continue;
        const vt_target *t = idx_find(&ids, l, tok);
        if (!t) {
            snprintf(err, errlen, "unknown target id \"%.*s\"", VT_TARGET_ID_MAX, tok);
            goto done;
        }
        keep[t - l->items] = 1;
    }
    vt_targets_keep(l, keep);
    rc = 0;
done:
    free(ids.slot);
    free(copy);
    free(keep);
    return rc;
}

int vt_targets_filter_ids(vt_target_list *l, const char *ids_csv, char *err, size_t errlen)
{
    return vt_targets_filter(l, ids_csv, NULL, err, errlen);
}

/* ---- Citizen Lab test lists --------------------------------------------------------------- */

static const char *const cl_header[] = {"url",        "category_code", "category_description",
                                        "date_added", "source",        "notes"};
#define CL_COLS 6

/* Bases ("citizenlab-<stem>-<host>") already taken while a list loads, each with the next
 * suffix to try: rows of one host get "-2", "-3", ... in linear time, not by probing every suffix
 * again for each row. Only bases seen twice are kept, and each points at the id of the target
 * that took it (alive as long as the list), so a list of distinct hosts costs nothing here. */
typedef struct base_next {
    struct base_slot {
        const char *base;
        unsigned next;
    } * slot;
    size_t cap, n; /* cap: 0 or a power of two */
} base_next;

static struct base_slot *base_find(base_next *b, const char *base)
{
    if (!b->cap) return NULL;
    size_t m = b->cap - 1, h = id_hash(base) & m;
    for (; b->slot[h].base; h = (h + 1) & m)
        if (strcmp(b->slot[h].base, base) == 0) return &b->slot[h];
    return NULL;
}

/* -1 on out of memory. */
static int base_put(base_next *b, const char *base, unsigned next)
{
    if (2 * (b->n + 1) > b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 64;
        struct base_slot *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < b->cap; i++) {
            if (!b->slot[i].base) continue;
            size_t h = id_hash(b->slot[i].base) & (ncap - 1);
            while (ns[h].base)
                h = (h + 1) & (ncap - 1);
            ns[h] = b->slot[i];
        }
        free(b->slot);
        b->slot = ns;
        b->cap = ncap;
    }
    size_t m = b->cap - 1, h = id_hash(base) & m;
    while (b->slot[h].base)
        h = (h + 1) & m;
    b->slot[h].base = base;
    b->slot[h].next = next;
    b->n++;
    return 0;
}

/* "citizenlab-<stem>-<host>", lowercased, other bytes as '_', made unique with "-2", "-3"...
 * NULL on out of memory. */
static char *citizenlab_id(const id_index *ids, base_next *bases, const vt_target_list *l,
                           const char *stem, const char *host, size_t hlen)
{
    char base[VT_TARGET_ID_MAX - 8];
    size_t n = (size_t)snprintf(base, sizeof base, "citizenlab-%s-", stem);
    if (n >= sizeof base) n = sizeof base - 1;
    for (size_t i = 0; i < hlen && n + 1 < sizeof base; i++)
        base[n++] = host[i];
    base[n] = 0;
    for (char *p = base; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '.' ||
              *p == '-'))
            *p = '_';
    }
    char id[VT_TARGET_ID_MAX + 1];
    struct base_slot *seen = base_find(bases, base);
    const vt_target *owner = seen ? NULL : idx_find(ids, l, base);
    if (!seen && !owner) return strdup(base);
    unsigned k = seen ? seen->next : 2;
    /* An id of this shape can also come from another base (a host "a.test-2") or another
     * file: skipped; each such id is passed over at most once, as k only grows. */
    do
        snprintf(id, sizeof id, "%s-%u", base, k++);
    while (idx_find(ids, l, id));
    if (seen)
        seen->next = k;
    else if (base_put(bases, owner->id, k) < 0)
        return NULL;
    return strdup(id);
}

static int citizenlab_row(id_index *ids, base_next *bases, vt_target_list *l, const vt_csv *csv,
                          const char *base, const char *stem, char *err, size_t errlen)
{
    char why[160];
    char **f = csv->fields;
    const char *host;
    size_t hlen;
    if (csv->n_fields != CL_COLS) {
        snprintf(err, errlen, "%s:%zu: expected %d fields, got %zu", csv->name, csv->rec_line,
                 CL_COLS, csv->n_fields);
        return -1;
    }
    if (check_url(f[0], &host, &hlen, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s:%zu: url \"%.200s\": %s", csv->name, csv->rec_line, f[0], why);
        return -1;
    }
    if (!f[1][0]) {
        snprintf(err, errlen, "%s:%zu: category_code is empty", csv->name, csv->rec_line);
        return -1;
    }
    char *id = citizenlab_id(ids, bases, l, stem, host, hlen);
    vt_target *t = id ? push(l) : NULL;
    if (!t) {
        free(id);
        goto oom;
    }
    char src[512];
    snprintf(src, sizeof src, "%s:%zu", base, csv->rec_line);
    t->id = id;
    if (idx_add(ids, l, l->n - 1) < 0) goto oom;
    t->name = strdup(f[0]);
    t->platform = strndup(host, hlen);
    if (t->platform)
        for (char *p = t->platform; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    t->category = strdup(f[1]);
    t->kind = strdup("web");
    t->source = strdup(src);
    t->endpoints = calloc(1, sizeof *t->endpoints);
    if (t->endpoints && (t->endpoints[0] = strdup(f[0]))) t->n_endpoints = 1;
    if (!t->id || !t->name || !t->platform || !t->category || !t->kind || !t->source ||
        t->n_endpoints != 1)
        goto oom;
    /* options: {"citizenlab": {every column}}. The target's own fields are not repeated there,
     * the keys are constants, and the url, the category_code and empty columns point at strings
     * the target already holds (references: cJSON_Delete leaves them alone). That keeps each
     * row's strings once: a copy of the whole target object cost about 1.3 KB per row. */
    cJSON *o = cJSON_CreateObject(), *cl = cJSON_CreateObject();
    t->options = o;
    if (!o || !cl) {
        cJSON_Delete(cl);
        goto oom;
    }
    cJSON_AddItemToObjectCS(o, "citizenlab", cl);
    for (int i = 0; i < CL_COLS; i++) {
        const char *v = i == 0 ? t->name : i == 1 ? t->category : f[i];
        cJSON *s = i < 2 || !*v ? cJSON_CreateStringReference(*v ? v : "") : cJSON_CreateString(v);
        if (!s) goto oom;
        cJSON_AddItemToObjectCS(cl, cl_header[i], s);
    }
    return 0;
oom:
    snprintf(err, errlen, "%s:%zu: out of memory", csv->name, csv->rec_line);
    return -1;
}

int vt_targets_load_citizenlab(vt_target_list *l, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    id_index ids = {0};
    base_next bases = {0};
    size_t n0 = l->n;
    char *data = NULL;
    size_t len;
    vt_csv csv;
    char stem[64];
    if (vt_textfile_read(path, VT_TEXTFILE_MAX, &data, &len, err, errlen) < 0) return -1;
    vt_csv_init(&csv, data, len, path);
    size_t bad = vt_textfile_utf8_invalid((const unsigned char *)data, len);
    if (bad < len) {
        size_t line, col;
        vt_textfile_position(data, len, bad, &line, &col);
        snprintf(err, errlen, "%s:%zu:%zu: %s", path, line, col,
                 data[bad] ? "invalid UTF-8: test lists must be UTF-8" : "NUL byte in the file");
        goto done;
    }
    vt_textfile_stem(path, stem, sizeof stem);
    int r = vt_csv_next(&csv, err, errlen);
    if (r < 0) goto done;
    if (r == 0) {
        snprintf(err, errlen, "%s:1: empty file, expected the header %s", path,
                 "url,category_code,category_description,date_added,source,notes");
        goto done;
    }
    int header_ok = csv.n_fields == CL_COLS;
    for (int i = 0; header_ok && i < CL_COLS; i++)
        header_ok = strcmp(csv.fields[i], cl_header[i]) == 0;
    if (!header_ok) {
        snprintf(err, errlen,
                 "%s:%zu: not a Citizen Lab test list: expected the header "
                 "url,category_code,category_description,date_added,source,notes",
                 path, csv.rec_line);
        goto done;
    }
    if (idx_build(&ids, l, l->n + 1024) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    while ((r = vt_csv_next(&csv, err, errlen)) == 1)
        if (citizenlab_row(&ids, &bases, l, &csv, vt_textfile_basename(path), stem, err, errlen) <
            0)
            goto done;
    if (r < 0) goto done;
    rc = 0;
done:
    if (rc < 0) truncate_to(l, n0);
    free(ids.slot);
    free(bases.slot);
    vt_csv_free(&csv);
    free(data);
    return rc;
}
