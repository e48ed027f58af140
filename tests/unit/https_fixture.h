/* For the CA store tests (test_ca_store.c, test_ca_lazy.c): a loopback HTTPS server
 * (tests/servers/httpserver.py) with certificates made by tests/servers/mkca.sh, and one blocking
 * libcurl fetch pinned to 127.0.0.1, verified by libcurl itself or through the shared store. */
#ifndef VT_TEST_HTTPS_FIXTURE_H
#define VT_TEST_HTTPS_FIXTURE_H

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "spawn_server.h"
#include "vantage/tls.h"

/* A test's temporary directory (certificates, CA files), its server, and mkca.sh's path. */
typedef struct https_fixture {
    test_server srv;
    char dir[256];
    char mkca[512];
} https_fixture;

/* Makes /tmp/PREFIX-XXXXXX; 0 on success. */
static int fixture_begin(https_fixture *f, const char *prefix)
{
    const char *src = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    memset(f, 0, sizeof(*f));
    snprintf(f->mkca, sizeof f->mkca, "%s/tests/servers/mkca.sh", src);
    snprintf(f->dir, sizeof f->dir, "/tmp/%s-XXXXXX", prefix);
    return mkdtemp(f->dir) ? 0 : -1;
}

/* Stops the server (if one was started) and removes the directory; 0 on success. */
static int fixture_end(https_fixture *f)
{
    if (f->srv.pid > 0) test_server_stop(&f->srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* dir/name in one of four rotating buffers (so a call may take two or three of them). */
static char *fixture_path(const char *dir, const char *name)
{
    static char buf[4][400];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Serves HTTPS on one port per "CERT.pem,KEY.pem" in certs[0..n-1] (at most 4), for 60 s; their
 * ports in the same order. 0 when the server announced every port. */
static int https_server_start(test_server *srv, char *const certs[], int n, int *ports)
{
    const char *src = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    char script[512];
    snprintf(script, sizeof script, "%s/tests/servers/httpserver.py", src);
    char *argv[4 + 2 * 4 + 1] = {"python3", script, "--lifetime", "60"};
    if (n < 1 || n > 4) return -1;
    for (int i = 0; i < n; i++) {
        argv[4 + 2 * i] = "--cert";
        argv[5 + 2 * i] = certs[i];
    }
    argv[4 + 2 * n] = NULL;
    if (test_server_start(srv, argv) < 0) return -1;
    cJSON *j = cJSON_Parse(srv->line);
    cJSON *hs = j ? cJSON_GetObjectItem(j, "https") : NULL;
    int ok = cJSON_GetArraySize(hs) == n;
    for (int i = 0; ok && i < n; i++)
        ports[i] = cJSON_GetArrayItem(hs, i)->valueint;
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

static size_t fixture_sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

typedef struct fetch_result {
    CURLcode code;
    long verify; /* CURLINFO_SSL_VERIFYRESULT */
} fetch_result;

/* GET https://host:port/ with host pinned to 127.0.0.1, verified against cacert (NULL: the
 * system's), either by libcurl itself (shared 0) or through the process's shared store. */
static fetch_result https_fetch(const char *host, int port, const char *cacert, int shared)
{
    fetch_result r = {CURLE_OK, -1};
    char u[160], res[160];
    snprintf(u, sizeof u, "https://%s:%d/", host, port);
    snprintf(res, sizeof res, "%s:%d:127.0.0.1", host, port);
    struct curl_slist *rl = curl_slist_append(NULL, res);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    curl_easy_setopt(e, CURLOPT_URL, u);
    curl_easy_setopt(e, CURLOPT_RESOLVE, rl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fixture_sink);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    if (shared)
        assert_int_equal(vt_tls_curl_use_ca(e, cacert), 0);
    else if (cacert)
        curl_easy_setopt(e, CURLOPT_CAINFO, cacert);
    r.code = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_SSL_VERIFYRESULT, &r.verify);
    curl_easy_cleanup(e);
    curl_slist_free_all(rl);
    return r;
}

#endif
