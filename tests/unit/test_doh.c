/* The DNS step over DNS-over-HTTPS (RFC 8484) against loopback DoH servers the test starts
 * (tests/servers/dohserver.py, certificates from tests/servers/mkca.sh): answers, rcodes,
 * HTTP and TLS failures, a server that never answers, and a resolver freed mid-lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "spawn_server.h"
#include "vantage/config.h"
#include "vantage/dns.h"
#include "vantage/json.h"
#include "vantage/loop.h"

static test_server good_srv, wrong_srv, error_srv;
static char cadir[64], cacert[128], good_url[128], wrong_url[128], error_url[128];

typedef struct got {
    int calls;
    char failure[VT_FAILURE_MAX];
    int rcode;
    char engine[16];
    char resolver[256];
    char addrs[4][INET6_ADDRSTRLEN];
    unsigned ttl;
    size_t n;
    double t0, t;
    cJSON *json;
} got;

static int port_of(const test_server *s)
{
    cJSON *j = cJSON_Parse(s->line);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "doh");
    int p = cJSON_IsNumber(v) ? v->valueint : 0;
    cJSON_Delete(j);
    return p;
}

static int start_doh(test_server *s, const char *src, const char *name, const char *status,
                     char *url, size_t urllen)
{
    char script[600], cert[200], key[200];
    snprintf(script, sizeof(script), "%s/tests/servers/dohserver.py", src);
    snprintf(cert, sizeof(cert), "%s/%s.pem", cadir, name);
    snprintf(key, sizeof(key), "%s/%s.key", cadir, name);
    char *argv[40] = {"python3",    script,
                      "--cert",     cert,
                      "--key",      key,
                      "--lifetime", "60",
                      "--zone",     "ok.test=a:192.0.2.1,192.0.2.2",
                      "--zone",     "six.test=aaaa:2001:db8::1",
                      "--zone",     "nx.test=nxdomain",
                      "--zone",     "sf.test=servfail",
                      "--zone",     "ref.test=refused",
                      "--zone",     "empty.test=empty",
                      "--zone",     "garbage.test=garbage",
                      "--zone",     "drop.test=drop",
                      "--zone",     "html.test=html",
                      "--zone",     "nxhtml.test=nxhtml",
                      "--zone",     "echo.test=echo",
                      "--zone",     "otherq.test=otherq:evil.example:198.18.0.66"};
    int n = 32;
    if (status) {
        argv[n++] = "--status";
        argv[n++] = (char *)status;
    }
    argv[n] = NULL;
    if (test_server_start(s, argv) < 0 || port_of(s) <= 0) return -1;
    snprintf(url, urllen, "https://127.0.0.1:%d/dns-query", port_of(s));
    return 0;
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    snprintf(cadir, sizeof(cadir), "/tmp/vt-doh-XXXXXX");
    if (!mkdtemp(cadir)) return -1;
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/servers/mkca.sh' '%s' 127.0.0.1 wrong.test", src,
             cadir);
    if (system(cmd) != 0) return -1;
    snprintf(cacert, sizeof(cacert), "%s/ca.pem", cadir);
    if (start_doh(&good_srv, src, "127.0.0.1", NULL, good_url, sizeof(good_url)) < 0 ||
        start_doh(&wrong_srv, src, "wrong.test", NULL, wrong_url, sizeof(wrong_url)) < 0 ||
        start_doh(&error_srv, src, "127.0.0.1", "500", error_url, sizeof(error_url)) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_server_stop(&good_srv);
    test_server_stop(&wrong_srv);
    test_server_stop(&error_srv);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cadir);
    return system(cmd) == 0 ? 0 : -1;
}

static void on_query(const vt_dns_query *q, void *arg)
{
    got *g = arg;
    g->calls++;
    snprintf(g->failure, sizeof(g->failure), "%s", q->failure);
    snprintf(g->engine, sizeof(g->engine), "%s", q->engine ? q->engine : "");
    snprintf(g->resolver, sizeof(g->resolver), "%s", q->resolver);
    g->rcode = q->rcode;
    g->n = q->n_answers;
    for (size_t i = 0; i < q->n_answers && i < 4; i++)
        snprintf(g->addrs[i], sizeof(g->addrs[i]), "%s", q->answers[i].addr);
    g->ttl = q->n_answers ? q->answers[0].ttl : 0;
    g->t0 = q->t0;
    g->t = q->t;
    g->json = vt_dns_query_json(q);
}

/* Looks host up through url (cacert: the test CA or NULL) and runs the loop to the answer. */
static void lookup(const char *url, const char *ca, const char *host, int qtype, int timeout_ms,
                   got *g)
{
    char err[256] = "";
    memset(g, 0, sizeof(*g));
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.cacert = ca;
    if (timeout_ms) cfg.dns_timeout_ms = timeout_ms;
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    vt_dns *d = vt_dns_new_doh(loop, &cfg, url, err, sizeof(err));
    assert_non_null(d);
    double t_base = vt_now();
    assert_int_equal(vt_dns_lookup(d, host, qtype, t_base, on_query, g), 0);
    assert_int_equal(g->calls, 0); /* never from inside vt_dns_lookup */
    double start = vt_now();
    vt_loop_run(loop);
    assert_true(vt_now() - start < 10);
    vt_dns_free(d);
    vt_loop_free(loop);
    assert_int_equal(g->calls, 1);
    assert_true(g->t0 >= 0 && g->t0 <= g->t);
}

static void doh_a_answers_are_recorded_with_engine_doh(void **state)
{
    (void)state;
    got g;
    lookup(good_url, cacert, "ok.test", VT_DNS_A, 0, &g);
    assert_string_equal(g.failure, "");
    assert_string_equal(g.engine, "doh");
    assert_string_equal(g.resolver, good_url);
    assert_int_equal(g.rcode, 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.addrs[0], "192.0.2.1");
    assert_string_equal(g.addrs[1], "192.0.2.2");
    assert_int_equal(g.ttl, 300);
    char *s = vt_json_print(g.json);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"answers\":[{\"asn\":0,\"as_org_name\":\"\",\"answer_type\":\"A\","
                              "\"ipv4\":\"192.0.2.1\",\"ttl\":300}"));
    assert_non_null(strstr(s, "\"engine\":\"doh\""));
    assert_non_null(strstr(s, "\"failure\":null"));
    assert_non_null(strstr(s, "\"hostname\":\"ok.test\""));
    assert_non_null(strstr(s, "\"query_type\":\"A\""));
    assert_non_null(strstr(s, "\"rcode\":0"));
    free(s);
    cJSON_Delete(g.json);
}

static void doh_aaaa_answer_is_recorded(void **state)
{
    (void)state;
    got g;
    lookup(good_url, cacert, "six.test", VT_DNS_AAAA, 0, &g);
    assert_string_equal(g.failure, "");
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "2001:db8::1");
    char *s = vt_json_print(g.json);
    assert_non_null(strstr(s, "{\"asn\":0,\"as_org_name\":\"\",\"answer_type\":\"AAAA\","
                              "\"ipv6\":\"2001:db8::1\",\"ttl\":300}"));
    assert_non_null(strstr(s, "\"query_type\":\"AAAA\""));
    free(s);
    cJSON_Delete(g.json);
}

static void doh_rcodes_map_to_ooni_failures(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        const char *failure;
        int rcode;
    } cases[] = {
        {"nx.test", "dns_nxdomain_error", 3}, {"sf.test", "dns_servfail_error", 2},
        {"ref.test", "dns_refused_error", 5}, {"empty.test", "dns_no_answer", 0},
        {"six.test", "dns_no_answer", 0}, /* an A question for a name with only AAAA */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got g;
        lookup(good_url, cacert, cases[i].host, VT_DNS_A, 0, &g);
        assert_string_equal(g.failure, cases[i].failure);
        assert_int_equal(g.rcode, cases[i].rcode);
        assert_int_equal(g.n, 0);
        char *s = vt_json_print(g.json);
        assert_non_null(strstr(s, "\"answers\":[]"));
        free(s);
        cJSON_Delete(g.json);
    }
}

static void doh_reply_that_is_not_dns_is_a_bad_response(void **state)
{
    (void)state;
    got g;
    lookup(good_url, cacert, "garbage.test", VT_DNS_A, 0, &g);
    assert_non_null(strstr(g.failure, "unknown_failure: DoH bad response"));
    assert_int_equal(g.n, 0);
    cJSON_Delete(g.json);
}

/* Only a DNS response to the query sent is evidence: a blockpage (whose 4th byte, 'c', read as
 * rcode 3 made it an NXDOMAIN and the verdict "down"), an NXDOMAIN sent as HTML, the query
 * echoed back (read as an empty answer) and an answer to another question are DoH failures,
 * never NXDOMAIN or NODATA evidence. */
static void doh_reply_that_does_not_answer_the_query_is_a_doh_failure(void **state)
{
    (void)state;
    const char *names[] = {"html.test", "nxhtml.test", "echo.test", "otherq.test"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        got g;
        lookup(good_url, cacert, names[i], VT_DNS_A, 0, &g);
        if (!strstr(g.failure, "unknown_failure: DoH bad response"))
            fail_msg("%s: failure \"%s\"", names[i], g.failure);
        assert_int_equal(g.n, 0);
        assert_int_equal(g.rcode, -1);
        char *s = cJSON_PrintUnformatted(g.json);
        assert_null(strstr(s, "CNAME"));
        free(s);
        cJSON_Delete(g.json);
    }
}

static void doh_http_error_status_is_a_failure_naming_it(void **state)
{
    (void)state;
    got g;
    lookup(error_url, cacert, "ok.test", VT_DNS_A, 0, &g);
    assert_non_null(strstr(g.failure, "500"));
    assert_int_equal(g.rcode, -1);
    assert_int_equal(g.n, 0);
    cJSON_Delete(g.json);
}

static void doh_certificate_for_another_name_is_invalid_hostname(void **state)
{
    (void)state;
    got g;
    lookup(wrong_url, cacert, "ok.test", VT_DNS_A, 0, &g);
    assert_string_equal(g.failure, "ssl_invalid_hostname");
    cJSON_Delete(g.json);
}

static void doh_unknown_ca_is_unknown_authority(void **state)
{
    (void)state;
    got g;
    lookup(good_url, NULL, "ok.test", VT_DNS_A, 0, &g);
    assert_string_equal(g.failure, "ssl_unknown_authority");
    cJSON_Delete(g.json);
}

static void doh_silent_server_times_out(void **state)
{
    (void)state;
    got g;
    double start = vt_now();
    lookup(good_url, cacert, "drop.test", VT_DNS_A, 300, &g);
    assert_string_equal(g.failure, "generic_timeout_error");
    assert_true(vt_now() - start < 3);
    assert_true(g.t - g.t0 >= 0.25);
    cJSON_Delete(g.json);
}

static void never_called(const vt_dns_query *q, void *arg)
{
    (void)q;
    (*(int *)arg)++;
}

static void doh_free_with_pending_lookups_calls_nothing(void **state)
{
    (void)state;
    char err[256];
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.cacert = cacert;
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    vt_dns *d = vt_dns_new_doh(loop, &cfg, good_url, err, sizeof(err));
    assert_non_null(d);
    int calls = 0;
    assert_int_equal(vt_dns_lookup(d, "drop.test", VT_DNS_A, vt_now(), never_called, &calls), 0);
    assert_int_equal(vt_dns_lookup(d, "ok.test", VT_DNS_AAAA, vt_now(), never_called, &calls), 0);
    assert_int_equal(vt_dns_lookup(d, "192.0.2.9", VT_DNS_A, vt_now(), never_called, &calls), 0);
    vt_dns_free(d);
    vt_loop_run(loop);
    vt_loop_free(loop);
    assert_int_equal(calls, 0);
}

static void doh_url_must_be_https(void **state)
{
    (void)state;
    char err[256] = "";
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_null(vt_dns_new_doh(loop, &cfg, "ftp://127.0.0.1/dns-query", err, sizeof(err)));
    assert_non_null(strstr(err, "ftp://127.0.0.1/dns-query"));
    vt_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doh_a_answers_are_recorded_with_engine_doh),
        cmocka_unit_test(doh_aaaa_answer_is_recorded),
        cmocka_unit_test(doh_rcodes_map_to_ooni_failures),
        cmocka_unit_test(doh_reply_that_is_not_dns_is_a_bad_response),
        cmocka_unit_test(doh_reply_that_does_not_answer_the_query_is_a_doh_failure),
        cmocka_unit_test(doh_http_error_status_is_a_failure_naming_it),
        cmocka_unit_test(doh_certificate_for_another_name_is_invalid_hostname),
        cmocka_unit_test(doh_unknown_ca_is_unknown_authority),
        cmocka_unit_test(doh_silent_server_times_out),
        cmocka_unit_test(doh_free_with_pending_lookups_calls_nothing),
        cmocka_unit_test(doh_url_must_be_https),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
