/* DNS, TCP and TLS steps against real loopback servers the test starts: a DNS server whose
 * answers the test controls, HTTPS servers with a test CA, and servers that reset or stall. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "spawn_server.h"
#include "vantage/dns.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"

static test_server dns_srv, https_srv, reset_srv, stall_srv;
static int dns_port, https_port, wrong_port, reset_port, stall_port;
static char cadir[64], cacert[128], src[512];

static int port_of(test_server *s, const char *key, int idx)
{
    cJSON *j = cJSON_Parse(s->line);
    cJSON *v = cJSON_GetObjectItem(j, key);
    int p = cJSON_IsArray(v) ? (cJSON_GetArraySize(v) > idx ? cJSON_GetArrayItem(v, idx)->valueint : 0)
                             : (v ? v->valueint : 0);
    cJSON_Delete(j);
    return p;
}

static int setup(void **state)
{
    const char *s = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    snprintf(src, sizeof src, "%s", s);
    char dns[600], http[600], raw[600], cmd[1400], good[200], wrong[200];
    snprintf(dns, sizeof dns, "%s/tests/servers/dnsserver.py", src);
    snprintf(http, sizeof http, "%s/tests/servers/httpserver.py", src);
    snprintf(raw, sizeof raw, "%s/tests/servers/rawserver.py", src);
    char *dargv[] = {"python3", dns, "--lifetime", "60", "--zone", "a.test=a:192.0.2.1,192.0.2.2",
                     "--zone", "six.test=aaaa:2001:db8::1", "--zone", "sf.test=servfail",
                     "--zone", "rf.test=refused", "--zone", "empty.test=empty",
                     "--zone", "drop.test=drop", "--zone", "slow.test=slow:300:192.0.2.9",
                     "--zone", "alias.test=cname:blockpage.example.net:192.0.2.66",
                     "--zone", "alias2.test=cname:cdn.example.net/blockpage.censor.test:192.0.2.66",
                     "--zone", "tc.test=tc", "--zone", "tca.test=tc:192.0.2.77",
                     "--zone", "loop.test=cname:b.loop.test/c.loop.test/b.loop.test:192.0.2.5",
                     NULL};
    if (test_server_start(&dns_srv, dargv) < 0)
        return -1;
    dns_port = port_of(&dns_srv, "dns", 0);

    snprintf(cadir, sizeof cadir, "/tmp/vt-test-steps-XXXXXX");
    if (!mkdtemp(cadir))
        return -1;
    snprintf(cmd, sizeof cmd, "sh '%s/tests/servers/mkcerts.sh' '%s' >/dev/null 2>&1", src, cadir);
    if (system(cmd) != 0)
        return -1;
    snprintf(cacert, sizeof cacert, "%s/ca.pem", cadir);
    snprintf(good, sizeof good, "%s/good.pem,%s/good.key", cadir, cadir);
    snprintf(wrong, sizeof wrong, "%s/wrong.pem,%s/wrong.key", cadir, cadir);
    char *hargv[] = {"python3", http, "--lifetime", "60", "--cert", good, "--cert", wrong, NULL};
    if (test_server_start(&https_srv, hargv) < 0)
        return -1;
    https_port = port_of(&https_srv, "https", 0);
    wrong_port = port_of(&https_srv, "https", 1);
    char *rargv[] = {"python3", raw, "reset", "--lifetime", "60", NULL};
    char *sargv[] = {"python3", raw, "stall", "--lifetime", "60", NULL};
    if (test_server_start(&reset_srv, rargv) < 0 || test_server_start(&stall_srv, sargv) < 0)
        return -1;
    reset_port = port_of(&reset_srv, "port", 0);
    stall_port = port_of(&stall_srv, "port", 0);
    return 0;
}

static int teardown(void **state)
{
    test_server_stop(&dns_srv);
    test_server_stop(&https_srv);
    test_server_stop(&reset_srv);
    test_server_stop(&stall_srv);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cadir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- DNS ---- */

typedef struct dns_out {
    int called;
    vt_dns_query q;
    vt_dns_answer answers[8];
    cJSON *json;
} dns_out;

static void on_dns(const vt_dns_query *q, void *arg)
{
    dns_out *o = arg;
    o->called++;
    o->q = *q;
    o->q.answers = NULL;
    for (size_t i = 0; i < q->n_answers && i < 8; i++)
        o->answers[i] = q->answers[i];
    o->json = vt_dns_query_json(q);
}

static void lookup(const char *host, int qtype, int timeout_ms, dns_out *o)
{
    char err[256], server[64];
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.dns_timeout_ms = timeout_ms;
    memset(o, 0, sizeof(*o));
    vt_loop *loop = vt_loop_new(err, sizeof err);
    assert_non_null(loop);
    snprintf(server, sizeof server, "127.0.0.1:%d", dns_port);
    vt_dns *d = vt_dns_new_udp(loop, &cfg, server, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(vt_dns_lookup(d, host, qtype, vt_now(), on_dns, o), 0);
    assert_int_equal(o->called, 0); /* never called back from inside the call */
    vt_loop_run(loop);
    assert_int_equal(o->called, 1);
    vt_dns_free(d);
    vt_loop_free(loop);
}

static void dns_answers_are_recorded_with_rcode_and_resolver(void **state)
{
    dns_out o;
    char want[64];
    lookup("a.test", VT_DNS_A, 2000, &o);
    assert_string_equal(o.q.failure, "");
    assert_int_equal(o.q.rcode, 0);
    assert_int_equal(o.q.n_answers, 2);
    assert_string_equal(o.answers[0].addr, "192.0.2.1");
    assert_string_equal(o.answers[1].addr, "192.0.2.2");
    assert_string_equal(o.q.engine, "udp");
    snprintf(want, sizeof want, "127.0.0.1:%d", dns_port);
    assert_string_equal(o.q.resolver, want);
    assert_true(o.q.t >= o.q.t0);
    cJSON *ans = cJSON_GetObjectItem(o.json, "answers");
    assert_int_equal(cJSON_GetArraySize(ans), 2);
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 0), "answer_type"), "A");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 0), "ipv4"), "192.0.2.1");
    /* No IP-to-ASN data in the probe: OONI's per-answer keys with "unknown" values. */
    const cJSON *asn = cJSON_GetObjectItem(cJSON_GetArrayItem(ans, 1), "asn");
    assert_true(cJSON_IsNumber(asn) && asn->valuedouble == 0);
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 1), "as_org_name"), "");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o.json, "tags")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o.json, "failure")));
    assert_string_equal(vt_json_get_string(o.json, "query_type"), "A");
    assert_string_equal(vt_json_get_string(o.json, "resolver_address"), want);
    cJSON_Delete(o.json);
}

static void dns_aaaa_answers_are_recorded(void **state)
{
    dns_out o;
    lookup("six.test", VT_DNS_AAAA, 2000, &o);
    assert_string_equal(o.q.failure, "");
    assert_int_equal(o.q.n_answers, 1);
    assert_string_equal(o.answers[0].addr, "2001:db8::1");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(cJSON_GetObjectItem(o.json,
                        "answers"), 0), "ipv6"), "2001:db8::1");
    cJSON_Delete(o.json);
}

/* A CNAME chain: the addresses of its end, and OONI's CNAME answer naming it (a censor's DNS
 * redirect can be an alias of its blockpage host). */
static void dns_cname_is_recorded(void **state)
{
    dns_out o;
    lookup("alias.test", VT_DNS_A, 2000, &o);
    assert_string_equal(o.q.failure, "");
    assert_int_equal(o.q.n_answers, 1);
    assert_string_equal(o.answers[0].addr, "192.0.2.66");
    assert_string_equal(o.q.cname, "blockpage.example.net");
    cJSON *ans = cJSON_GetObjectItem(o.json, "answers");
    assert_int_equal(cJSON_GetArraySize(ans), 2);
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 0), "answer_type"), "CNAME");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 0), "hostname"),
                        "blockpage.example.net");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 1), "ipv4"), "192.0.2.66");
    cJSON_Delete(o.json);
    /* no alias: no CNAME answer */
    lookup("a.test", VT_DNS_A, 2000, &o);
    assert_string_equal(o.q.cname, "");
    cJSON_Delete(o.json);
}

/* c-ares' hostent names only the first hop of a CNAME chain: the whole chain is recorded, in
 * order, and its end is q->cname (a censor's blockpage host is often the last hop). */
static void dns_cname_chain_is_recorded_to_its_end(void **state)
{
    dns_out o;
    lookup("alias2.test", VT_DNS_A, 2000, &o);
    assert_string_equal(o.q.failure, "");
    assert_int_equal(o.q.n_answers, 1);
    assert_string_equal(o.answers[0].addr, "192.0.2.66");
    assert_string_equal(o.q.cname, "blockpage.censor.test");
    cJSON *ans = cJSON_GetObjectItem(o.json, "answers");
    assert_int_equal(cJSON_GetArraySize(ans), 3);
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 0), "answer_type"), "CNAME");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 0), "hostname"),
                        "cdn.example.net");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 1), "answer_type"), "CNAME");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 1), "hostname"),
                        "blockpage.censor.test");
    assert_string_equal(vt_json_get_string(cJSON_GetArrayItem(ans, 2), "ipv4"), "192.0.2.66");
    cJSON_Delete(o.json);
    /* A loop (b -> c -> b) ends the chain at the name seen again: b, c, never b twice. */
    lookup("loop.test", VT_DNS_A, 2000, &o);
    ans = cJSON_GetObjectItem(o.json, "answers");
    int cnames = 0;
    const char *last = NULL;
    const cJSON *a;
    cJSON_ArrayForEach(a, ans)
    {
        const char *t = vt_json_get_string(a, "answer_type");
        if (t && !strcmp(t, "CNAME")) {
            cnames++;
            last = vt_json_get_string(a, "hostname");
        }
    }
    assert_int_equal(cnames, 2);
    assert_string_equal(last, "c.loop.test");
    cJSON_Delete(o.json);
}

/* A truncated answer from a resolver without DNS over TCP fails that name's lookup only.
 * With one c-ares channel for all lookups, its failed TCP retry closed the channel's sockets
 * and used up the tries of every lookup pending beside it: they all ended in
 * connection_refused (a false dns_blocking for unrelated targets). */
static void dns_truncated_answer_fails_only_its_own_lookup(void **state)
{
    char err[256], server[64];
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.dns_timeout_ms = 3000;
    dns_out tc, slow[3];
    memset(&tc, 0, sizeof tc);
    memset(slow, 0, sizeof slow);
    vt_loop *loop = vt_loop_new(err, sizeof err);
    assert_non_null(loop);
    snprintf(server, sizeof server, "127.0.0.1:%d", dns_port);
    vt_dns *d = vt_dns_new_udp(loop, &cfg, server, err, sizeof err);
    assert_non_null(d);
    for (int i = 0; i < 3; i++)
        assert_int_equal(vt_dns_lookup(d, "slow.test", VT_DNS_A, vt_now(), on_dns, &slow[i]), 0);
    assert_int_equal(vt_dns_lookup(d, "tc.test", VT_DNS_A, vt_now(), on_dns, &tc), 0);
    vt_loop_run(loop);
    assert_int_equal(tc.called, 1);
    /* asked again alone, with the TCP retry the shared channel does not make: refused here */
    assert_string_equal(tc.q.failure, "connection_refused");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(slow[i].called, 1);
        assert_string_equal(slow[i].q.failure, "");
        assert_int_equal(slow[i].q.n_answers, 1);
        assert_string_equal(slow[i].answers[0].addr, "192.0.2.9");
        cJSON_Delete(slow[i].json);
    }
    cJSON_Delete(tc.json);
    /* A truncated answer with addresses, whose TCP retry is refused: the addresses stand (a
     * forged truncated answer for a blocked name, then TCP reset, must stay evidence). */
    dns_out tca;
    memset(&tca, 0, sizeof tca);
    assert_int_equal(vt_dns_lookup(d, "tca.test", VT_DNS_A, vt_now(), on_dns, &tca), 0);
    vt_loop_run(loop);
    assert_int_equal(tca.called, 1);
    assert_string_equal(tca.q.failure, "");
    assert_int_equal(tca.q.n_answers, 1);
    assert_string_equal(tca.answers[0].addr, "192.0.2.77");
    cJSON_Delete(tca.json);
    vt_dns_free(d);
    vt_loop_free(loop);
}

static void dns_failures_map_to_ooni_strings(void **state)
{
    static const struct {
        const char *host;
        const char *failure;
        int rcode;
    } cases[] = {
        {"nx.test", "dns_nxdomain_error", 3},   {"sf.test", "dns_servfail_error", 2},
        {"rf.test", "dns_refused_error", 5},    {"empty.test", "dns_no_answer", 0},
        {"six.test", "dns_no_answer", 0}, /* A query, only AAAA exists */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dns_out o;
        lookup(cases[i].host, VT_DNS_A, 2000, &o);
        assert_string_equal(o.q.failure, cases[i].failure);
        assert_int_equal(o.q.rcode, cases[i].rcode);
        assert_int_equal(o.q.n_answers, 0);
        assert_string_equal(vt_json_get_string(o.json, "failure"), cases[i].failure);
        /* df-002: a list, empty for a failed query (OONI's spec example); tags null */
        const cJSON *ans = cJSON_GetObjectItem(o.json, "answers");
        assert_true(cJSON_IsArray(ans));
        assert_int_equal(cJSON_GetArraySize(ans), 0);
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(o.json, "tags")));
        cJSON_Delete(o.json);
    }
}

static void dns_silence_is_a_timeout(void **state)
{
    dns_out o;
    double t0 = vt_now();
    lookup("drop.test", VT_DNS_A, 300, &o);
    assert_string_equal(o.q.failure, "generic_timeout_error");
    assert_int_equal(o.q.rcode, -1);
    assert_true(vt_now() - t0 < 5.0);
    cJSON_Delete(o.json);
}

static void dns_slow_answer_within_timeout_succeeds_and_is_timed(void **state)
{
    dns_out o;
    lookup("slow.test", VT_DNS_A, 3000, &o);
    assert_string_equal(o.q.failure, "");
    assert_true(o.q.t - o.q.t0 >= 0.25);
    cJSON_Delete(o.json);
}

static void dns_ip_literal_needs_no_lookup(void **state)
{
    dns_out o;
    lookup("198.51.100.7", VT_DNS_A, 2000, &o);
    assert_string_equal(o.q.failure, "");
    assert_int_equal(o.q.n_answers, 1);
    assert_string_equal(o.answers[0].addr, "198.51.100.7");
    cJSON_Delete(o.json);
}

static void dns_bad_resolver_address_is_refused_with_a_message(void **state)
{
    char err[256] = "";
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_loop *loop = vt_loop_new(err, sizeof err);
    assert_null(vt_dns_new_udp(loop, &cfg, "not-an-ip:53", err, sizeof err));
    assert_non_null(strstr(err, "not-an-ip"));
    assert_null(vt_dns_new_doh(loop, &cfg, "ftp://x", err, sizeof err));
    /* DoH answers are a reference: plain http only to this machine. */
    assert_null(vt_dns_new_doh(loop, &cfg, "http://dns.example/dns-query", err, sizeof err));
    assert_non_null(strstr(err, "https"));
    assert_null(vt_dns_new_doh(loop, &cfg, "http://127.dns.example/dns-query", err, sizeof err));
    vt_dns *d = vt_dns_new_doh(loop, &cfg, "http://127.0.0.1:1/dns-query", err, sizeof err);
    assert_non_null(d);
    vt_dns_free(d);
    d = vt_dns_new_doh(loop, &cfg, "https://dns.example/dns-query", err, sizeof err);
    assert_non_null(d);
    vt_dns_free(d);
    vt_loop_free(loop);
}

static void dns_free_with_pending_queries_calls_nothing(void **state)
{
    char err[256], server[64];
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_loop *loop = vt_loop_new(err, sizeof err);
    snprintf(server, sizeof server, "127.0.0.1:%d", dns_port);
    vt_dns *d = vt_dns_new_udp(loop, &cfg, server, err, sizeof err);
    dns_out o = {0};
    assert_int_equal(vt_dns_lookup(d, "drop.test", VT_DNS_A, vt_now(), on_dns, &o), 0);
    assert_int_equal(vt_dns_lookup(d, "10.0.0.1", VT_DNS_A, vt_now(), on_dns, &o), 0);
    vt_dns_free(d);
    vt_loop_run(loop);
    assert_int_equal(o.called, 0);
    vt_loop_free(loop);
}

/* ---- TCP ---- */

typedef struct tcp_out {
    int called, fd;
    vt_tcp_result r;
} tcp_out;

static void on_tcp(const vt_tcp_result *r, int fd, void *arg)
{
    tcp_out *o = arg;
    o->called++;
    o->r = *r;
    o->fd = fd;
}

static void connect_to(int port, tcp_out *o)
{
    char err[256];
    memset(o, 0, sizeof(*o));
    vt_loop *loop = vt_loop_new(err, sizeof err);
    assert_int_equal(vt_tcp_connect(loop, "127.0.0.1", port, 2000, vt_now(), on_tcp, o), 0);
    assert_int_equal(o->called, 0);
    vt_loop_run(loop);
    assert_int_equal(o->called, 1);
    vt_loop_free(loop);
}

static void tcp_connect_to_a_listener_succeeds(void **state)
{
    tcp_out o;
    connect_to(stall_port, &o);
    assert_string_equal(o.r.failure, "");
    assert_true(o.fd >= 0);
    close(o.fd);
    cJSON *j = vt_tcp_result_json(&o.r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "success")));
    assert_int_equal(cJSON_GetObjectItem(j, "port")->valueint, stall_port);
    /* A connect that worked is not blocked (OONI's boolean); tags null as OONI's. */
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "blocked")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "tags")));
    cJSON_Delete(j);
}

static void tcp_connect_to_a_closed_port_is_refused(void **state)
{
    tcp_out o;
    connect_to(1, &o);
    assert_string_equal(o.r.failure, "connection_refused");
    assert_int_equal(o.fd, -1);
    cJSON *j = vt_tcp_result_json(&o.r);
    assert_string_equal(vt_json_get_string(cJSON_GetObjectItem(j, "status"), "failure"),
                        "connection_refused");
    /* A failure alone does not say blocked: null until the verdict compares with a control. */
    const cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "blocked");
    assert_true(b && cJSON_IsNull(b));
    cJSON_Delete(j);
}

static void host_port_strings_are_split(void **state)
{
    char h[64];
    int p;
    assert_int_equal(vt_split_host_port("e1.whatsapp.net:5222", h, sizeof h, &p), 0);
    assert_string_equal(h, "e1.whatsapp.net");
    assert_int_equal(p, 5222);
    assert_int_equal(vt_split_host_port("[2001:db8::1]:443", h, sizeof h, &p), 0);
    assert_string_equal(h, "2001:db8::1");
    assert_int_equal(vt_split_host_port("2001:db8::1", h, sizeof h, &p), -1);
    assert_int_equal(vt_split_host_port("host", h, sizeof h, &p), -1);
    assert_int_equal(vt_split_host_port("host:0", h, sizeof h, &p), -1);
    assert_int_equal(vt_split_host_port("host:70000", h, sizeof h, &p), -1);
    assert_int_equal(vt_split_host_port(":443", h, sizeof h, &p), -1);
}

/* ---- TLS ---- */

typedef struct tls_out {
    int called;
    vt_tls_result r;
    cJSON *json;
} tls_out;

static void on_tls(const vt_tls_result *r, void *arg)
{
    tls_out *o = arg;
    o->called++;
    o->r = *r;
    o->r.leaf_der = NULL;
    o->json = vt_tls_result_json(r);
}

static void handshake(const char *ca, int port, const char *sni, int tls_timeout_ms, tls_out *o)
{
    char err[256];
    memset(o, 0, sizeof(*o));
    vt_loop *loop = vt_loop_new(err, sizeof err);
    vt_tls_ctx *ctx = vt_tls_ctx_new(ca, err, sizeof err);
    assert_non_null(ctx);
    vt_tls_opts opts = {.ip = "127.0.0.1", .port = port, .sni = sni, .alpn = "http/1.1",
                        .connect_timeout_ms = 2000, .tls_timeout_ms = tls_timeout_ms,
                        .t_base = vt_now()};
    assert_int_equal(vt_tls_handshake(loop, ctx, &opts, on_tls, o), 0);
    vt_loop_run(loop);
    assert_int_equal(o->called, 1);
    vt_tls_ctx_free(ctx);
    vt_loop_free(loop);
}

static void tls_handshake_with_the_right_ca_succeeds(void **state)
{
    tls_out o;
    handshake(cacert, https_port, "good.test", 3000, &o);
    assert_string_equal(o.r.failure, "");
    assert_true(strncmp(o.r.tls_version, "TLSv1.", 6) == 0);
    assert_true(strlen(o.r.cipher_suite) > 4);
    assert_string_equal(vt_json_get_string(o.json, "server_name"), "good.test");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o.json, "peer_certificates")), 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o.json, "failure")));
    cJSON_Delete(o.json);
}

static void tls_certificate_for_another_name_is_invalid_hostname(void **state)
{
    tls_out o;
    handshake(cacert, wrong_port, "good.test", 3000, &o);
    assert_string_equal(o.r.failure, "ssl_invalid_hostname");
    assert_string_equal(o.r.failed_operation, "tls_handshake_done");
    assert_true(strlen(o.r.tls_version) > 0); /* the session is still described */
    cJSON_Delete(o.json);
}

static void tls_unknown_ca_is_unknown_authority(void **state)
{
    tls_out o;
    handshake(NULL, https_port, "good.test", 3000, &o);
    assert_string_equal(o.r.failure, "ssl_unknown_authority");
    cJSON_Delete(o.json);
}

static void tls_reset_during_handshake_is_connection_reset(void **state)
{
    tls_out o;
    handshake(cacert, reset_port, "good.test", 3000, &o);
    assert_string_equal(o.r.failure, "connection_reset");
    assert_string_equal(vt_json_get_string(o.json, "failure"), "connection_reset");
    cJSON_Delete(o.json);
}

static void tls_stalled_handshake_times_out(void **state)
{
    tls_out o;
    double t0 = vt_now();
    handshake(cacert, stall_port, "good.test", 400, &o);
    assert_string_equal(o.r.failure, "generic_timeout_error");
    assert_true(vt_now() - t0 >= 0.35 && vt_now() - t0 < 5);
    cJSON_Delete(o.json);
}

static void tls_connect_failure_is_attributed_to_connect(void **state)
{
    tls_out o;
    handshake(cacert, 1, "good.test", 1000, &o);
    assert_string_equal(o.r.failure, "connection_refused");
    assert_string_equal(o.r.failed_operation, "connect");
    cJSON_Delete(o.json);
}

static void tls_unreadable_ca_file_is_named(void **state)
{
    char err[256] = "";
    assert_null(vt_tls_ctx_new("/nonexistent/ca.pem", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dns_answers_are_recorded_with_rcode_and_resolver),
        cmocka_unit_test(dns_aaaa_answers_are_recorded),
        cmocka_unit_test(dns_cname_is_recorded),
        cmocka_unit_test(dns_cname_chain_is_recorded_to_its_end),
        cmocka_unit_test(dns_truncated_answer_fails_only_its_own_lookup),
        cmocka_unit_test(dns_failures_map_to_ooni_strings),
        cmocka_unit_test(dns_silence_is_a_timeout),
        cmocka_unit_test(dns_slow_answer_within_timeout_succeeds_and_is_timed),
        cmocka_unit_test(dns_ip_literal_needs_no_lookup),
        cmocka_unit_test(dns_bad_resolver_address_is_refused_with_a_message),
        cmocka_unit_test(dns_free_with_pending_queries_calls_nothing),
        cmocka_unit_test(tcp_connect_to_a_listener_succeeds),
        cmocka_unit_test(tcp_connect_to_a_closed_port_is_refused),
        cmocka_unit_test(host_port_strings_are_split),
        cmocka_unit_test(tls_handshake_with_the_right_ca_succeeds),
        cmocka_unit_test(tls_certificate_for_another_name_is_invalid_hostname),
        cmocka_unit_test(tls_unknown_ca_is_unknown_authority),
        cmocka_unit_test(tls_reset_during_handshake_is_connection_reset),
        cmocka_unit_test(tls_stalled_handshake_times_out),
        cmocka_unit_test(tls_connect_failure_is_attributed_to_connect),
        cmocka_unit_test(tls_unreadable_ca_file_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
