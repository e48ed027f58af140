/* The web, endpoint and telegram kinds end to end through vt_run_targets, against loopback
 * servers only: a controllable DNS server (tests/servers/dnsserver.py) answering for *.test
 * names, and tests/servers/httpserver.py over HTTP and HTTPS (test CA from mkca.sh). Each
 * scenario pins the phase a failure is attributed to and its OONI failure string. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "spawn_server.h"
#include "vantage/json.h"
#include "vantage/runner.h"

static test_server http_srv, dns_srv;
static int http_port, https_port, https_wrong_port, dns_port, closed;
static char tmpdir[256], cacert[300];

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return -1;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    const char *src = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    char script[512], dns_script[512], mkca[512], good[700], wrong[700];
    snprintf(script, sizeof script, "%s/tests/servers/httpserver.py", src);
    snprintf(dns_script, sizeof dns_script, "%s/tests/servers/dnsserver.py", src);
    snprintf(mkca, sizeof mkca, "%s/tests/servers/mkca.sh", src);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vt-test-web-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "sh '%s' '%s' good=good.test,a.test,b.test,localhost,127.0.0.1 wrong=wrong.test "
             ">/dev/null 2>&1",
             mkca, tmpdir);
    if (system(cmd) != 0) return -1;
    snprintf(cacert, sizeof cacert, "%s/ca.pem", tmpdir);
    snprintf(good, sizeof good, "%s/good.pem,%s/good.key", tmpdir, tmpdir);
    snprintf(wrong, sizeof wrong, "%s/wrong.pem,%s/wrong.key", tmpdir, tmpdir);
    char *argv_http[] = {"python3", script, "--stall", "20",  "--lifetime", "120",
                         "--cert",  good,   "--cert",  wrong, NULL};
    if (test_server_start(&http_srv, argv_http) < 0) return -1;
    cJSON *j = cJSON_Parse(http_srv.line);
    if (!j) return -1;
    http_port = cJSON_GetObjectItem(j, "http")->valueint;
    https_port = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "https"), 0)->valueint;
    https_wrong_port = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "https"), 1)->valueint;
    cJSON_Delete(j);

    /* a.test: 127.0.0.2 (nothing listens there: an address that fails must not make the
     * measurement fail) and 127.0.0.1; b.test, good.test: 127.0.0.1; nx.test: NXDOMAIN. */
    char *argv_dns[] = {"python3",    dns_script,
                        "--lifetime", "120",
                        "--zone",     "a.test=a:127.0.0.2,127.0.0.1",
                        "--zone",     "b.test=a:127.0.0.1",
                        "--zone",     "good.test=a:127.0.0.1",
                        "--zone",     "nx.test=nxdomain",
                        NULL};
    if (test_server_start(&dns_srv, argv_dns) < 0) return -1;
    j = cJSON_Parse(dns_srv.line);
    if (!j) return -1;
    dns_port = cJSON_GetObjectItem(j, "dns")->valueint;
    cJSON_Delete(j);
    closed = closed_port();
    return 0;
}

static int teardown(void **state)
{
    test_server_stop(&http_srv);
    test_server_stop(&dns_srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- running targets ---- */

typedef struct results {
    cJSON *by_id; /* id -> measurement */
    size_t n;
} results;

static void on_result(cJSON *m, const vt_target *t, void *arg)
{
    results *r = arg;
    cJSON_AddItemToObject(r->by_id, t->id, m);
    r->n++;
}

static void target_init(vt_target *t, const char *id, const char *kind, const char *e1,
                        const char *e2, const char *options_json)
{
    memset(t, 0, sizeof(*t));
    t->id = strdup(id);
    t->name = strdup(id);
    t->platform = strdup("test");
    t->category = strdup("social");
    t->kind = strdup(kind);
    t->endpoints = calloc(2, sizeof(char *));
    t->endpoints[t->n_endpoints++] = strdup(e1);
    if (e2) t->endpoints[t->n_endpoints++] = strdup(e2);
    t->options = cJSON_Parse(options_json ? options_json : "{}");
    t->source = strdup("test_web.c");
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
}

static int with_alt_resolver;

/* Runs the targets with a UDP resolver pointing at the loopback DNS server (and the same one
 * again as the second resolver when with_alt_resolver is set). */
static void run(vt_target *ts, size_t n, results *out)
{
    char err[256], server[64];
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.dns_timeout_ms = 2000;
    cfg.connect_timeout_ms = 2000;
    cfg.tls_timeout_ms = 2000;
    cfg.http_timeout_ms = 3000;
    cfg.cacert = cacert;
    cfg.user_agent = "vantage-test/1";
    vt_loop *loop = vt_loop_new(err, sizeof err);
    assert_non_null(loop);
    snprintf(server, sizeof server, "127.0.0.1:%d", dns_port);
    vt_env env = {.loop = loop, .cfg = &cfg};
    env.dns = vt_dns_new_udp(loop, &cfg, server, err, sizeof err);
    assert_non_null(env.dns);
    if (with_alt_resolver) {
        env.dns_alt = vt_dns_new_udp(loop, &cfg, server, err, sizeof err);
        assert_non_null(env.dns_alt);
    }
    env.tls = vt_tls_ctx_new(cacert, err, sizeof err);
    assert_non_null(env.tls);
    vt_target_list list = {.items = ts, .n = n, .cap = n};
    out->by_id = cJSON_CreateObject();
    out->n = 0;
    vt_runner_hooks h = {.on_result = on_result, .arg = out};
    double t0 = vt_now();
    assert_int_equal(vt_run_targets(&env, &list, &h, err, sizeof err), (long)n);
    assert_true(vt_now() - t0 < 20);
    vt_tls_ctx_free(env.tls);
    vt_dns_free(env.dns);
    vt_dns_free(env.dns_alt);
    vt_loop_free(loop);
}

static const cJSON *tk_of(const results *r, const char *id)
{
    const cJSON *m = cJSON_GetObjectItem(r->by_id, id);
    assert_non_null(m);
    const cJSON *tk = cJSON_GetObjectItem(m, "test_keys");
    assert_non_null(tk);
    return tk;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_non_null(v);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

static int arr_len(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsArray(v));
    return cJSON_GetArraySize(v);
}

__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...)
{
    static char b[8][512];
    static int i;
    char *s = b[i++ % 8];
    va_list ap;
    va_start(ap, f);
    vsnprintf(s, 512, f, ap);
    va_end(ap);
    return s;
}

/* ---- scenarios ---- */

static void web_kind_attributes_each_failure_to_its_phase(void **state)
{
    vt_target ts[6];
    target_init(&ts[0], "ok", "web", fmt("http://a.test:%d/title", http_port), NULL, NULL);
    target_init(&ts[1], "nx", "web", fmt("http://nx.test:%d/", http_port), NULL, NULL);
    target_init(&ts[2], "refused", "web", fmt("http://a.test:%d/", closed), NULL, NULL);
    target_init(&ts[3], "wrongname", "web", fmt("https://good.test:%d/title", https_wrong_port),
                NULL, NULL);
    target_init(&ts[4], "reset", "web", fmt("http://a.test:%d/reset", http_port), NULL, NULL);
    target_init(&ts[5], "tls_ok", "web", fmt("https://good.test:%d/title", https_port), NULL, NULL);
    results r;
    run(ts, 6, &r);
    assert_int_equal(r.n, 6);

    const cJSON *tk = tk_of(&r, "ok");
    assert_null(str(tk, "failure_phase"));
    assert_null(str(tk, "failure"));
    assert_int_equal(num(tk, "http_status"), 200);
    assert_string_equal(str(tk, "title"), "Hello Vantage");
    assert_true(num(tk, "body_length") > 0);
    assert_null(str(tk, "dns_experiment_failure"));
    assert_null(str(tk, "http_experiment_failure"));
    assert_int_equal(arr_len(tk, "queries"), 2);     /* A and AAAA */
    assert_int_equal(arr_len(tk, "tcp_connect"), 2); /* 127.0.0.1 connects, 127.0.0.2 not */
    assert_int_equal(arr_len(tk, "tls_handshakes"), 0);
    assert_int_equal(arr_len(tk, "requests"), 1);
    assert_true(arr_len(tk, "network_events") >= 1);
    assert_true(num(tk, "x_dns_runtime") > 0);
    assert_true(num(tk, "x_http_runtime") > 0);
    const cJSON *req = cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "requests"), 0);
    assert_int_equal(num(cJSON_GetObjectItem(req, "response"), "code"), 200);
    const cJSON *m = cJSON_GetObjectItem(r.by_id, "ok");
    assert_string_equal(str(m, "test_name"), "web_connectivity");
    assert_string_equal(str(m, "input"), ts[0].endpoints[0]);

    tk = tk_of(&r, "nx");
    assert_string_equal(str(tk, "failure_phase"), "dns");
    assert_string_equal(str(tk, "failure"), "dns_nxdomain_error");
    assert_string_equal(str(tk, "dns_experiment_failure"), "dns_nxdomain_error");
    assert_int_equal(arr_len(tk, "tcp_connect"), 0);
    assert_int_equal(arr_len(tk, "requests"), 0);
    assert_null(str(tk, "http_status"));

    tk = tk_of(&r, "refused");
    assert_string_equal(str(tk, "failure_phase"), "tcp");
    assert_string_equal(str(tk, "failure"), "connection_refused");

    tk = tk_of(&r, "wrongname");
    assert_string_equal(str(tk, "failure_phase"), "tls");
    assert_string_equal(str(tk, "failure"), "ssl_invalid_hostname");
    assert_int_equal(arr_len(tk, "tls_handshakes"), 1);
    assert_string_equal(
        str(cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "tls_handshakes"), 0), "failure"),
        "ssl_invalid_hostname");

    tk = tk_of(&r, "reset");
    assert_string_equal(str(tk, "failure_phase"), "http");
    assert_string_equal(str(tk, "failure"), "connection_reset");
    assert_string_equal(str(tk, "http_experiment_failure"), "connection_reset");
    assert_int_equal(num(tk, "http_status"), 200);

    tk = tk_of(&r, "tls_ok");
    assert_null(str(tk, "failure_phase"));
    assert_int_equal(num(tk, "http_status"), 200);
    assert_int_equal(arr_len(tk, "tls_handshakes"), 1);
    assert_null(str(cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "tls_handshakes"), 0), "failure"));
    assert_true(num(tk, "x_tcptls_runtime") > 0);

    for (int i = 0; i < 6; i++)
        target_free(&ts[i]);
    cJSON_Delete(r.by_id);
}

static void redirects_are_followed_hop_by_hop_newest_first(void **state)
{
    vt_target ts[3];
    target_init(&ts[2], "loop", "web", fmt("http://a.test:%d/redirect-loop", http_port), NULL,
                NULL);
    target_init(&ts[0], "chain", "web",
                fmt("http://a.test:%d/chain/1?h1=a.test&h2=b.test", http_port), NULL, NULL);
    target_init(&ts[1], "to_nx", "web",
                fmt("http://a.test:%d/chain/1?h1=a.test&h2=nx.test", http_port), NULL, NULL);
    results r;
    run(ts, 3, &r);
    const cJSON *tk = tk_of(&r, "chain");
    assert_null(str(tk, "failure_phase"));
    assert_int_equal(num(tk, "x_redirects"), 3);
    assert_int_equal(arr_len(tk, "requests"), 4);
    assert_int_equal(num(tk, "http_status"), 200);
    assert_string_equal(str(tk, "title"), "Final");
    const cJSON *reqs = cJSON_GetObjectItem(tk, "requests");
    const cJSON *newest = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "request");
    const cJSON *oldest = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 3), "request");
    assert_non_null(strstr(str(newest, "url"), "/final"));
    assert_non_null(strstr(str(oldest, "url"), "/chain/1"));
    /* b.test was resolved for the hop (A + AAAA), then a.test again for the last hop. */
    assert_int_equal(arr_len(tk, "queries"), 6);
    const cJSON *q = cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "queries"), 2);
    assert_string_equal(str(q, "hostname"), "b.test");

    tk = tk_of(&r, "to_nx");
    assert_string_equal(str(tk, "failure_phase"), "http");
    assert_string_equal(str(tk, "failure"), "dns_nxdomain_error");
    assert_int_equal(arr_len(tk, "requests"), 1);

    /* A loop stops after max_redirects (10) hops: 11 requests. */
    tk = tk_of(&r, "loop");
    assert_string_equal(str(tk, "failure_phase"), "http");
    assert_string_equal(str(tk, "failure"), "http_too_many_redirects");
    assert_int_equal(num(tk, "x_redirects"), 10);
    assert_int_equal(arr_len(tk, "requests"), 11);
    assert_int_equal(num(tk, "http_status"), 302);
    for (int i = 0; i < 3; i++)
        target_free(&ts[i]);
    cJSON_Delete(r.by_id);
}

static void several_endpoints_merge_and_the_first_sets_the_summary(void **state)
{
    vt_target ts[1];
    target_init(&ts[0], "two", "web", fmt("http://a.test:%d/title", http_port),
                fmt("http://nx.test:%d/", http_port), NULL);
    ts[0].large_resource = strdup(fmt("http://b.test:%d/large?n=1500000", http_port));
    results r;
    run(ts, 1, &r);
    const cJSON *tk = tk_of(&r, "two");
    assert_null(str(tk, "failure_phase"));
    assert_int_equal(num(tk, "http_status"), 200);
    assert_int_equal(arr_len(tk, "queries"), 6); /* a.test, nx.test, b.test (large) */
    assert_int_equal(arr_len(tk, "x_endpoints"), 2);
    const cJSON *second = cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "x_endpoints"), 1);
    assert_string_equal(str(second, "failure_phase"), "dns");
    const cJSON *large = cJSON_GetObjectItem(tk, "x_large_resource");
    assert_non_null(large);
    assert_null(str(large, "failure"));
    assert_int_equal(num(large, "bytes_received"), 1500000);
    assert_true(cJSON_GetObjectItem(tk, "throughput_bps")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(tk, "throughput_bps")->valuedouble ==
                cJSON_GetObjectItem(large, "throughput_bps")->valuedouble);
    target_free(&ts[0]);
    cJSON_Delete(r.by_id);
}

static void endpoint_kind_connects_and_shakes_hands(void **state)
{
    vt_target ts[5];
    target_init(&ts[4], "ep_noverify", "endpoint", fmt("good.test:%d", https_wrong_port), NULL,
                "{\"tls\":true,\"no_verify\":true}");
    target_init(&ts[0], "ep_tls", "endpoint", fmt("a.test:%d", https_port), NULL,
                "{\"tls\":true,\"sni\":\"good.test\"}");
    target_init(&ts[1], "ep_refused", "endpoint", fmt("127.0.0.1:%d", closed), NULL, NULL);
    target_init(&ts[2], "ep_badsni", "endpoint", fmt("good.test:%d", https_wrong_port), NULL,
                "{\"tls\":true}");
    target_init(&ts[3], "ep_plain", "endpoint", fmt("good.test:%d", http_port), NULL, NULL);
    results r;
    run(ts, 5, &r);
    const cJSON *tk = tk_of(&r, "ep_tls");
    assert_null(str(tk, "failure_phase"));
    assert_int_equal(arr_len(tk, "tls_handshakes"), 1);
    assert_string_equal(
        str(cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "tls_handshakes"), 0), "server_name"),
        "good.test");
    assert_null(str(tk, "http_status"));
    assert_string_equal(str(cJSON_GetObjectItem(r.by_id, "ep_tls"), "test_name"),
                        "vantage_endpoint");

    tk = tk_of(&r, "ep_refused");
    assert_string_equal(str(tk, "failure_phase"), "tcp");
    assert_string_equal(str(tk, "failure"), "connection_refused");
    assert_int_equal(arr_len(tk, "queries"), 0); /* an IP literal is not looked up */

    tk = tk_of(&r, "ep_badsni");
    assert_string_equal(str(tk, "failure_phase"), "tls");
    assert_string_equal(str(tk, "failure"), "ssl_invalid_hostname");

    tk = tk_of(&r, "ep_plain");
    assert_null(str(tk, "failure_phase"));
    assert_int_equal(arr_len(tk, "tcp_connect"), 1);
    assert_int_equal(arr_len(tk, "tls_handshakes"), 0);

    /* A pinned-CA service: the wrong-name certificate completes the handshake unverified. */
    tk = tk_of(&r, "ep_noverify");
    assert_null(str(tk, "failure_phase"));
    const cJSON *hs = cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "tls_handshakes"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(hs, "no_tls_verify")));
    for (int i = 0; i < 5; i++)
        target_free(&ts[i]);
    cJSON_Delete(r.by_id);
}

static void telegram_posts_to_each_data_centre(void **state)
{
    vt_target ts[2];
    target_init(&ts[0], "tg_ok", "telegram", fmt("127.0.0.1:%d", http_port),
                fmt("https://good.test:%d/title", https_port), NULL);
    target_init(&ts[1], "tg_blocked", "telegram", fmt("127.0.0.1:%d", closed),
                fmt("https://good.test:%d/title", https_wrong_port), NULL);
    results r;
    run(ts, 2, &r);
    const cJSON *tk = tk_of(&r, "tg_ok");
    assert_string_equal(str(cJSON_GetObjectItem(r.by_id, "tg_ok"), "test_name"), "telegram");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(tk, "telegram_tcp_blocking")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(tk, "telegram_http_blocking")));
    assert_string_equal(str(tk, "telegram_web_status"), "ok");
    assert_null(str(tk, "telegram_web_failure"));
    assert_null(str(tk, "failure_phase"));
    /* Requests: the POST to the DC and the web GET. */
    assert_int_equal(arr_len(tk, "requests"), 2);
    const cJSON *post =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "requests"), 0), "request");
    assert_string_equal(str(post, "method"), "POST");

    tk = tk_of(&r, "tg_blocked");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(tk, "telegram_tcp_blocking")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(tk, "telegram_http_blocking")));
    assert_string_equal(str(tk, "telegram_web_status"), "blocked");
    assert_string_equal(str(tk, "telegram_web_failure"), "ssl_invalid_hostname");
    assert_string_equal(str(tk, "failure_phase"), "tcp");
    assert_string_equal(str(tk, "failure"), "connection_refused");
    for (int i = 0; i < 2; i++)
        target_free(&ts[i]);
    cJSON_Delete(r.by_id);
}

static void a_second_resolver_is_asked_and_recorded_beside(void **state)
{
    vt_target ts[1];
    target_init(&ts[0], "alt", "web", fmt("http://b.test:%d/title", http_port), NULL, NULL);
    results r;
    with_alt_resolver = 1;
    run(ts, 1, &r);
    with_alt_resolver = 0;
    const cJSON *tk = tk_of(&r, "alt");
    assert_null(str(tk, "failure_phase"));
    assert_int_equal(arr_len(tk, "queries"), 4);     /* A and AAAA from each resolver */
    assert_int_equal(arr_len(tk, "tcp_connect"), 1); /* addresses come from env->dns only */
    target_free(&ts[0]);
    cJSON_Delete(r.by_id);
}

static void bad_targets_are_refused_at_create(void **state)
{
    const vt_kind *web = vt_kind_find("web"), *ep = vt_kind_find("endpoint");
    assert_non_null(web);
    assert_non_null(ep);
    assert_non_null(vt_kind_find("telegram"));
    vt_target t;
    vt_task task = {0};
    char err[256] = "";
    target_init(&t, "bad", "web", "ftp://a.test/", NULL, NULL);
    task.target = &t;
    assert_int_equal(web->create(&task, err, sizeof err), -1);
    assert_non_null(strstr(err, "ftp://a.test/"));
    target_free(&t);
    target_init(&t, "bad", "endpoint", "no-port-here", NULL, NULL);
    task.target = &t;
    assert_int_equal(ep->create(&task, err, sizeof err), -1);
    target_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_targets_are_refused_at_create),
        cmocka_unit_test(web_kind_attributes_each_failure_to_its_phase),
        cmocka_unit_test(redirects_are_followed_hop_by_hop_newest_first),
        cmocka_unit_test(several_endpoints_merge_and_the_first_sets_the_summary),
        cmocka_unit_test(endpoint_kind_connects_and_shakes_hands),
        cmocka_unit_test(telegram_posts_to_each_data_centre),
        cmocka_unit_test(a_second_resolver_is_asked_and_recorded_beside),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
