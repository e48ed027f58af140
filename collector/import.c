/* vantage-collector import: stores measurements from files, such as OONI's published JSONL
 * (its S3 buckets, its API's raw measurements one per line), through the same validation,
 * scrubbing and rollups as an upload. OONI's raw measurements carry no measurement_uid (its
 * backend keeps that beside them): one is derived from what identifies the measurement, so
 * that importing the same file twice stores nothing twice. Web measurements whose annotations
 * name no target get the target, platform and category of the target list's web target on the
 * same host, so that an imported web_connectivity of https://www.facebook.com/ counts for the
 * platform facebook; OONI's circumvention tests get theirs by their endpoints. */
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "ingest.h"
#include "rollup.h"
#include "store.h"
#include "textfile.h"
#include "vantage/addr.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/targets.h"
#include "vantage/verdict.h"

#define IMPORT_BATCH 500
#define IMPORT_BATCH_BYTES (8u << 20)
#define IMPORT_SHOWN 10 /* rejected lines named one by one */

static void usage(FILE *f)
{
    fprintf(f, "usage: vantage-collector import --db URL [--targets PATH]... "
               "[--fingerprints FILE]... FILE...\n"
               "\n"
               "Stores the measurements in each FILE (JSON, one measurement per line; gzip\n"
               "compressed or not; - for standard input), as an upload would: validated,\n"
               "scrubbed, counted in the rollups, episodes detected. OONI's measurements are\n"
               "taken as published: one without a measurement_uid gets one derived from its\n"
               "report_id, test_name, input and start time (importing a file again stores\n"
               "nothing twice). A measurement whose annotations name no target gets the\n"
               "target, platform and category of the target it measured in the target lists\n"
               "(--targets: files or directories; default the shipped lists): a web\n"
               "measurement the web target on its URL's host, OONI's openvpn the openvpn\n"
               "target with its addr=, riseupvpn the tlsvpn target its requests went to;\n"
               "vanilla_tor and torsf count for the platform tor. OONI's web_connectivity\n"
               "measurements get our blocking fingerprints (--fingerprints: CSV files, OONI's\n"
               "or Citizen Lab's format; default the shipped targets/fingerprints.csv): a DNS\n"
               "answer or blockpage that confirms for the country makes the verdict\n"
               "dns_blocking or http_blocking with blocking_confirmed true.\n"
               "Exit 0 when every line was stored or already there, 1 when some were rejected\n"
               "or the store failed, 2 on a usage error.\n");
}

typedef struct host_map {
    char **host;
    const vt_target **t;
    size_t n;
} host_map;

static const char *strip_www(const char *h)
{
    return strncasecmp(h, "www.", 4) == 0 ? h + 4 : h;
}

/* Every non-canary target's endpoints: a web target by its URL's host (www. dropped), any
 * other by its "host:port" endpoint as written. */
static int map_build(host_map *m, const vt_target_list *l)
{
    memset(m, 0, sizeof(*m));
    size_t cap = 0;
    for (size_t i = 0; i < l->n; i++)
        cap += l->items[i].n_endpoints;
    m->host = calloc(cap + 1, sizeof(*m->host));
    m->t = calloc(cap + 1, sizeof(*m->t));
    if (!m->host || !m->t) return -1;
    for (size_t i = 0; i < l->n; i++) {
        const vt_target *t = &l->items[i];
        if (!t->kind || !t->category || !strcmp(t->category, "canary")) continue;
        int web = strcmp(t->kind, "web") == 0;
        for (size_t k = 0; k < t->n_endpoints; k++) {
            char host[256];
            int port, https;
            if (web && vt_url_split(t->endpoints[k], host, sizeof(host), &port, &https) < 0)
                continue;
            if (!(m->host[m->n] = strdup(web ? strip_www(host) : t->endpoints[k]))) return -1;
            m->t[m->n++] = t;
        }
    }
    return 0;
}

static void map_free(host_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->host[i]);
    free(m->host);
    free(m->t);
}

/* The web target on the host of url. */
static const vt_target *map_find(const host_map *m, const char *url)
{
    char host[256];
    int port, https;
    if (!url || vt_url_split(url, host, sizeof(host), &port, &https) < 0) return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->t[i]->kind, "web") && strcasecmp(m->host[i], strip_www(host)) == 0)
            return m->t[i];
    return NULL;
}

/* The target of this kind with the endpoint ep ("host:port"), or with an endpoint on host ep
 * when whole_host. */
static const vt_target *map_find_endpoint(const host_map *m, const char *kind, const char *ep,
                                          int whole_host)
{
    size_t el = ep ? strlen(ep) : 0;
    for (size_t i = 0; el && i < m->n; i++) {
        const char *h = m->host[i];
        if (strcmp(m->t[i]->kind, kind) != 0) continue;
        if (strcasecmp(h, ep) == 0 || (whole_host && strncasecmp(h, ep, el) == 0 && h[el] == ':'))
            return m->t[i];
    }
    return NULL;
}

/* OONI's circumvention tests name their endpoint their own way: openvpn's input
 * vpn://openvpn.riseup/?addr=IP:PORT&..., riseupvpn's first request's URL. */
static const vt_target *map_find_ooni(const host_map *m, const char *test, const char *input,
                                      const cJSON *tk)
{
    if (!test) return NULL;
    if (!strcmp(test, "openvpn") && input && !strncmp(input, "vpn://", 6)) {
        const char *a = strstr(input, "?addr=");
        if (!a) a = strstr(input, "&addr=");
        if (!a) return NULL;
        char ep[128];
        size_t l = strcspn(a + 6, "&#");
        if (l == 0 || l >= sizeof(ep)) return NULL;
        memcpy(ep, a + 6, l);
        ep[l] = '\0';
        return map_find_endpoint(m, "openvpn", ep, 0);
    }
    if (!strcmp(test, "riseupvpn")) {
        const cJSON *rq = cJSON_GetObjectItemCaseSensitive(tk, "requests"), *r;
        cJSON_ArrayForEach(r, rq)
        {
            const cJSON *req = cJSON_GetObjectItemCaseSensitive(r, "request");
            char host[256];
            int port, https;
            const char *url = vt_json_get_string(req, "url");
            if (!url || vt_url_split(url, host, sizeof(host), &port, &https) < 0) continue;
            const vt_target *t = map_find_endpoint(m, "tlsvpn", host, 1);
            if (t) return t;
        }
    }
    return NULL;
}

/* 32 lowercase hex digits of SHA-256 over what identifies a measurement. */
static void derive_uid(const cJSON *m, const char *line, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    const char *rid = vt_json_get_string(m, "report_id");
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    if (rid) {
        const char *f[] = {"vantage import", rid, vt_json_get_string(m, "test_name"),
                           vt_json_get_string(m, "input"),
                           vt_json_get_string(m, "measurement_start_time")};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            EVP_DigestUpdate(c, f[i] ? f[i] : "", f[i] ? strlen(f[i]) : 0);
            EVP_DigestUpdate(c, "\n", 1);
        }
    } else { /* nothing names it: the line itself */
        EVP_DigestUpdate(c, "vantage import line\n", 20);
        EVP_DigestUpdate(c, line, len);
    }
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int is_true(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static int is_str(const cJSON *o, const char *k, const char *v)
{
    const char *s = vt_json_get_string(o, k);
    return s && strcmp(s, v) == 0;
}

/* The phase a failure string names: dns, tls, or (connections) tcp. */
static const char *failure_verdict(const char *failure)
{
    if (failure && strstr(failure, "dns")) return "dns_blocking";
    if (failure && (strncmp(failure, "ssl_", 4) == 0 || strstr(failure, "tls")))
        return "tls_blocking";
    return "tcp_blocking";
}

/* Our verdict (docs/data-format.md) from an OONI measurement's own keys, for the tests whose
 * keys say blocking or not in so many words (OONI's pipeline reads them the same way); any other
 * test is "inconclusive": imported and counted, not interpreted. */
static const char *ooni_verdict(const char *test, const cJSON *tk)
{
    if (!test) return "inconclusive";
    if (!strcmp(test, "web_connectivity")) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(tk, "blocking");
        const char *bs = cJSON_IsString(b) ? b->valuestring : NULL;
        if (bs && !strcmp(bs, "dns")) return "dns_blocking";
        if (bs && !strcmp(bs, "tcp_ip")) return "tcp_blocking";
        if (bs && (!strcmp(bs, "http-failure") || !strcmp(bs, "http-diff"))) return "http_blocking";
        if (cJSON_IsFalse(b)) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(tk, "accessible");
            return cJSON_IsTrue(a) ? "ok" : cJSON_IsFalse(a) ? "down" : "inconclusive";
        }
        return "inconclusive";
    }
    if (!strcmp(test, "whatsapp")) {
        if (is_str(tk, "whatsapp_endpoints_status", "blocked") ||
            is_str(tk, "registration_server_status", "blocked"))
            return "tcp_blocking";
        if (is_str(tk, "whatsapp_web_status", "blocked")) return "http_blocking";
        return is_str(tk, "whatsapp_endpoints_status", "ok") ? "ok" : "inconclusive";
    }
    if (!strcmp(test, "telegram")) {
        if (is_true(tk, "telegram_tcp_blocking")) return "tcp_blocking";
        if (is_true(tk, "telegram_http_blocking") || is_str(tk, "telegram_web_status", "blocked"))
            return "http_blocking";
        return cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(tk, "telegram_tcp_blocking"))
                   ? "ok"
                   : "inconclusive";
    }
    if (!strcmp(test, "facebook_messenger")) {
        if (is_true(tk, "facebook_dns_blocking")) return "dns_blocking";
        if (is_true(tk, "facebook_tcp_blocking")) return "tcp_blocking";
        return cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(tk, "facebook_tcp_blocking"))
                   ? "ok"
                   : "inconclusive";
    }
    if (!strcmp(test, "signal")) {
        if (is_str(tk, "signal_backend_status", "blocked"))
            return failure_verdict(vt_json_get_string(tk, "signal_backend_failure"));
        return is_str(tk, "signal_backend_status", "ok") ? "ok" : "inconclusive";
    }
    /* The circumvention tests say whether they worked; a failure alone does not say blocked
     * (a bootstrap that timed out, a gateway down): only success is read. */
    if (!strcmp(test, "vanilla_tor") || !strcmp(test, "torsf") || !strcmp(test, "openvpn"))
        return is_true(tk, "success") ? "ok" : "inconclusive";
    if (!strcmp(test, "psiphon")) {
        const cJSON *bt = cJSON_GetObjectItemCaseSensitive(tk, "bootstrap_time");
        return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(tk, "failure")) &&
                       cJSON_IsNumber(bt) && bt->valuedouble > 0
                   ? "ok"
                   : "inconclusive";
    }
    if (!strcmp(test, "riseupvpn"))
        return is_str(tk, "api_status", "ok") && is_true(tk, "ca_cert_status") ? "ok"
                                                                               : "inconclusive";
    return "inconclusive";
}

typedef struct importer {
    vt_store *s;
    vt_ingest_limits lim;
    host_map map;
    char *buf;
    size_t len, n;
    const char *file;
    size_t lines[IMPORT_BATCH]; /* each batch line's line in file */
    size_t accepted, duplicate, rejected, mapped, confirmed, failed_batches;
    vt_fp_set fps; /* blocking fingerprints, re-applied to OONI's web measurements */
} importer;

static void rejected(importer *im, const char *file, size_t line, const char *why)
{
    if (im->rejected++ < IMPORT_SHOWN)
        fprintf(stderr, "vantage-collector: import: %s:%zu: rejected: %s\n", file, line, why);
    else if (im->rejected == IMPORT_SHOWN + 1)
        fprintf(stderr, "vantage-collector: import: more lines rejected; see the count below\n");
}

static int flush(importer *im)
{
    if (im->n == 0) return 0;
    vt_ingest_batch b;
    char err[512];
    int status = 0, rc = 0;
    memset(&b, 0, sizeof(b));
    if (vt_ingest_parse(im->buf, im->len, &im->lim, NULL, vt_wall_now(), &b, &status, err,
                        sizeof(err)) < 0) {
        fprintf(stderr, "vantage-collector: import: %s: lines %zu-%zu: %s\n", im->file,
                im->lines[0], im->lines[im->n - 1], err);
        im->rejected += im->n;
        rc = -1;
    } else if (vt_ingest_store(im->s, &b, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-collector: import: %s: lines %zu-%zu not stored: %s\n", im->file,
                im->lines[0], im->lines[im->n - 1], err);
        im->failed_batches++;
        rc = -1;
    } else {
        for (size_t i = 0; i < b.n; i++) {
            const vt_ingest_item *it = &b.items[i];
            size_t line = it->line >= 1 && it->line <= im->n ? im->lines[it->line - 1] : 0;
            if (it->status == VT_INGEST_ACCEPTED)
                im->accepted++;
            else if (it->status == VT_INGEST_DUPLICATE)
                im->duplicate++;
            else
                rejected(im, im->file, line, it->reason);
        }
    }
    vt_ingest_batch_free(&b);
    im->len = im->n = 0;
    return rc;
}

/* Our blocking fingerprints on an OONI web measurement (its DNS answers, its responses), as the
 * probe applies them: a match that confirms for the measurement's country (OONI's rule) makes
 * the verdict dns_blocking or http_blocking and blocking_confirmed true, naming the fingerprint
 * in x_fingerprint; one that does not confirm is only named. */
static void refingerprint(importer *im, cJSON *m, cJSON *tk)
{
    const char *test = vt_json_get_string(m, "test_name");
    char host[256];
    int port, https, in_dns;
    const char *input = vt_json_get_string(m, "input");
    if (!test || strcmp(test, "web_connectivity") != 0 || !input ||
        vt_url_split(input, host, sizeof(host), &port, &https) < 0)
        return;
    const vt_fp *fp = vt_verdict_fingerprint(tk, &im->fps, host, &in_dns);
    if (!fp) return;
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "x_fingerprint");
    cJSON_AddStringToObject(tk, "x_fingerprint", fp->name);
    if (!vt_fp_confirms(fp, vt_json_get_string(m, "probe_cc"))) return;
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "verdict");
    cJSON_AddStringToObject(tk, "verdict", in_dns ? "dns_blocking" : "http_blocking");
    cJSON_DeleteItemFromObjectCaseSensitive(tk, "blocking_confirmed");
    cJSON_AddBoolToObject(tk, "blocking_confirmed", 1);
    im->confirmed++;
}

/* One line of a file: made ready (uid, target) and added to the batch. */
static int take_line(importer *im, char *line, size_t len, size_t lineno)
{
    cJSON *m = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(m)) {
        cJSON_Delete(m);
        rejected(im, im->file, lineno, "not a JSON object");
        return 0;
    }
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(m, "measurement_uid");
    if (!uid || cJSON_IsNull(uid)) {
        char u[33];
        derive_uid(m, line, len, u);
        cJSON_DeleteItemFromObjectCaseSensitive(m, "measurement_uid");
        cJSON_AddStringToObject(m, "measurement_uid", u);
    }
    cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
    cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "test_keys");
    if (!is_str(m, "software_name", "vantage-probe")) {
        /* OONI's annotations.platform is the device's operating system ("android"); ours is
         * the measured platform ("facebook"): kept under another name. */
        cJSON *os =
            cJSON_IsObject(ann) ? cJSON_DetachItemFromObjectCaseSensitive(ann, "platform") : NULL;
        if (os) cJSON_AddItemToObject(ann, "x_os_platform", os);
        /* Its verdict from its own keys, saying where it came from. */
        if (cJSON_IsObject(tk) && !cJSON_GetObjectItemCaseSensitive(tk, "verdict")) {
            cJSON_AddStringToObject(tk, "verdict",
                                    ooni_verdict(vt_json_get_string(m, "test_name"), tk));
            cJSON_AddStringToObject(tk, "x_verdict_from", "import");
            refingerprint(im, m, tk);
        }
    }
    if (!vt_json_get_string(ann, "target_id") && (!ann || cJSON_IsObject(ann))) {
        const char *test = vt_json_get_string(m, "test_name");
        const char *input = vt_json_get_string(m, "input");
        const vt_target *t = map_find_ooni(&im->map, test, input, tk);
        if (!t) t = map_find(&im->map, input);
        /* Tor's bootstrap tests reach no one endpoint of ours, but they are Tor. */
        int tor = !t && test && (!strcmp(test, "vanilla_tor") || !strcmp(test, "torsf"));
        if (t || tor) {
            if (!ann) ann = cJSON_AddObjectToObject(m, "annotations");
            cJSON_DeleteItemFromObjectCaseSensitive(ann, "platform");
            cJSON_DeleteItemFromObjectCaseSensitive(ann, "category");
            if (t) cJSON_AddStringToObject(ann, "target_id", t->id);
            cJSON_AddStringToObject(ann, "platform", t ? t->platform : "tor");
            cJSON_AddStringToObject(ann, "category", t ? t->category : "circumvention");
            im->mapped += t != NULL;
        }
    }
    char *out = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    if (!out) {
        fprintf(stderr, "vantage-collector: import: out of memory\n");
        return -1;
    }
    size_t olen = strlen(out);
    if (im->n == IMPORT_BATCH || im->len + olen + 1 > IMPORT_BATCH_BYTES) flush(im);
    char *nb = realloc(im->buf, im->len + olen + 1);
    if (!nb) {
        free(out);
        fprintf(stderr, "vantage-collector: import: out of memory\n");
        return -1;
    }
    im->buf = nb;
    memcpy(im->buf + im->len, out, olen);
    im->buf[im->len + olen] = '\n';
    im->len += olen + 1;
    im->lines[im->n++] = lineno;
    free(out);
    return 0;
}

static int import_file(importer *im, const char *path)
{
    gzFile f = strcmp(path, "-") == 0 ? gzdopen(0, "rb") : gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "vantage-collector: import: cannot open %s\n", path);
        return -1;
    }
    im->file = strcmp(path, "-") == 0 ? "(standard input)" : path;
    size_t cap = im->lim.max_measurement + 2, lineno = 0;
    char *line = malloc(cap);
    int rc = 0;
    if (!line) {
        gzclose(f);
        return -1;
    }
    while (rc == 0 && gzgets(f, line, (int)cap)) {
        lineno++;
        size_t len = strlen(line);
        if (len == cap - 1 && line[len - 1] != '\n') { /* longer than a measurement may be */
            int c;
            while ((c = gzgetc(f)) != -1 && c != '\n')
                ;
            char why[96];
            snprintf(why, sizeof(why), "longer than %zu bytes", im->lim.max_measurement);
            rejected(im, im->file, lineno, why);
            continue;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        size_t sp = 0;
        while (sp < len && (line[sp] == ' ' || line[sp] == '\t'))
            sp++;
        if (sp == len) continue;
        if (memchr(line, 0, len)) {
            rejected(im, im->file, lineno, "a NUL byte in the line");
            continue;
        }
        rc = take_line(im, line, len, lineno);
    }
    int zerr = 0;
    const char *zmsg = gzerror(f, &zerr);
    if (rc == 0 && zerr != Z_OK && zerr != Z_STREAM_END) {
        fprintf(stderr, "vantage-collector: import: %s: after line %zu: %s\n", im->file, lineno,
                zmsg);
        im->rejected++; /* the rest of the file could not be read */
    }
    if (rc == 0) flush(im);
    free(line);
    gzclose(f);
    return rc;
}

int vt_import_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"targets", required_argument, NULL, 't'},
        {"fingerprints", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    char err[512] = "";
    vt_target_list tl;
    vt_targets_init(&tl);
    int c, own_targets = 0, own_fps = 0, rc = 2;
    importer im;
    memset(&im, 0, sizeof(im));
    vt_fp_init(&im.fps);
    vt_ingest_limits_default(&im.lim);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 't':
            own_targets = 1;
            if (vt_targets_load_path(&tl, optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "vantage-collector: %s\n", err);
                goto out;
            }
            break;
        case 'f':
            own_fps = 1;
            if (vt_fp_load(&im.fps, optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "vantage-collector: %s\n", err);
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (!db || optind >= argc) {
        usage(stderr);
        goto out;
    }
    if (vt_store_url_check(db, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        goto out;
    }
    if (!own_targets && vt_targets_load_dir(&tl, vt_targets_default_dir(), err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-collector: import: warning: %s; targets are not matched\n", err);
    if (!own_fps && vt_fp_load_shipped(&im.fps, err, sizeof(err)) < 0)
        fprintf(stderr, "vantage-collector: import: warning: %s; no fingerprints\n", err);
    rc = 1;
    if (map_build(&im.map, &tl) < 0) {
        fprintf(stderr, "vantage-collector: out of memory\n");
        goto out;
    }
    if (!(im.s = vt_store_open(db, err, sizeof(err)))) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        goto out;
    }
    int failed = 0;
    for (int i = optind; i < argc; i++)
        if (import_file(&im, argv[i]) < 0) failed = 1;
    /* The episodes of what came in (a serving collector would do it on its timer). */
    int k;
    while ((k = vt_episodes_refresh(im.s, 64, err, sizeof(err))) > 0)
        ;
    if (k < 0) fprintf(stderr, "vantage-collector: import: episodes not refreshed: %s\n", err);
    printf("imported: %zu stored, %zu already there, %zu rejected (%zu matched to a target, "
           "%zu confirmed by a fingerprint)%s\n",
           im.accepted, im.duplicate, im.rejected, im.mapped, im.confirmed,
           im.failed_batches ? "; some batches could not be stored (see above)" : "");
    rc = failed || im.rejected || im.failed_batches || k < 0 ? 1 : 0;
out:
    if (im.s) vt_store_close(im.s);
    map_free(&im.map);
    vt_fp_free(&im.fps);
    free(im.buf);
    vt_targets_free(&tl);
    return rc;
}
