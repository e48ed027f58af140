/* HTTP step against a loopback server that misbehaves on purpose (tests/servers/httpserver.py):
 * each scenario pins the failure string, status, title, body handling and the OONI entry. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "spawn_server.h"
#include "vantage/http.h"
#include "vantage/json.h"

static test_server srv;
static int http_port, https_port, https_wrong_port;
static char cadir[256];
static char cacert[300];

/* What a request left behind, copied out of the callback. */
typedef struct outcome {
    int called;
    char failure[VT_FAILURE_MAX];
    long status;
    char location[512];
    char title[512];
    int has_title;
    unsigned char body[8192];
    size_t body_len;
    int truncated;
    size_t bytes_received;
    double throughput_bps;
    cJSON *entry;
    cJSON *events;
} outcome;

static void on_result(vt_http_result *r, void *arg)
{
    outcome *o = arg;
    o->called++;
    snprintf(o->failure, sizeof(o->failure), "%s", r->failure);
    o->status = r->status;
    snprintf(o->location, sizeof(o->location), "%s", r->location ? r->location : "");
    o->has_title = r->title != NULL;
    snprintf(o->title, sizeof(o->title), "%s", r->title ? r->title : "");
    o->body_len = r->body_len < sizeof(o->body) ? r->body_len : sizeof(o->body);
    memcpy(o->body, r->body, o->body_len);
    o->truncated = r->body_truncated;
    o->bytes_received = r->bytes_received;
    o->throughput_bps = r->throughput_bps;
    o->entry = r->request_entry;
    r->request_entry = NULL;
    o->events = r->network_events;
    r->network_events = NULL;
}

static void outcome_free(outcome *o)
{
    cJSON_Delete(o->entry);
    cJSON_Delete(o->events);
}

static const char *const loopback[] = {"127.0.0.1", NULL};

static void fetch_opts(vt_http_opts *o, outcome *out)
{
    char err[256];
    vt_loop *loop = vt_loop_new(err, sizeof err);
    assert_non_null(loop);
    memset(out, 0, sizeof(*out));
    assert_int_equal(vt_http_request(loop, o, on_result, out), 0);
    vt_loop_run(loop);
    vt_loop_free(loop);
    assert_int_equal(out->called, 1);
}

static void default_opts(vt_http_opts *o, const char *url)
{
    memset(o, 0, sizeof(*o));
    o->url = url;
    o->addrs = loopback;
    o->timeout_ms = 5000;
    o->max_body = 4096;
    o->user_agent = "vantage-test/1";
    o->t_base = vt_now();
}

static void fetch(const char *url, outcome *out)
{
    vt_http_opts o;
    default_opts(&o, url);
    fetch_opts(&o, out);
}

static int setup(void **state)
{
    const char *src = getenv("VT_SOURCE_DIR") ? getenv("VT_SOURCE_DIR") : VT_SOURCE_DIR;
    char script[512], mkca[512], good[700], wrong[700];
    snprintf(script, sizeof script, "%s/tests/servers/httpserver.py", src);
    snprintf(mkca, sizeof mkca, "%s/tests/servers/mkca.sh", src);
    snprintf(cadir, sizeof cadir, "/tmp/vt-test-http-XXXXXX");
    if (!mkdtemp(cadir)) return -1;
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "sh '%s' '%s' good=good.test,a.test,b.test,localhost,127.0.0.1 wrong=wrong.test "
             ">/dev/null 2>&1",
             mkca, cadir);
    int have_certs = system(cmd) == 0;
    snprintf(cacert, sizeof cacert, "%s/ca.pem", cadir);
    snprintf(good, sizeof good, "%s/good.pem,%s/good.key", cadir, cadir);
    snprintf(wrong, sizeof wrong, "%s/wrong.pem,%s/wrong.key", cadir, cadir);
    char *argv_tls[] = {"python3", script, "--stall", "20",  "--lifetime", "60",
                        "--cert",  good,   "--cert",  wrong, NULL};
    char *argv_plain[] = {"python3", script, "--stall", "20", "--lifetime", "60", NULL};
    if (test_server_start(&srv, have_certs ? argv_tls : argv_plain) < 0) return -1;
    cJSON *j = cJSON_Parse(srv.line);
    if (!j) return -1;
    http_port = cJSON_GetObjectItem(j, "http")->valueint;
    cJSON *hs = cJSON_GetObjectItem(j, "https");
    if (cJSON_GetArraySize(hs) == 2) {
        https_port = cJSON_GetArrayItem(hs, 0)->valueint;
        https_wrong_port = cJSON_GetArrayItem(hs, 1)->valueint;
    }
    cJSON_Delete(j);
    return 0;
}

static int teardown(void **state)
{
    test_server_stop(&srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cadir);
    if (system(cmd) != 0) return -1;
    return 0;
}

static char *url(const char *host, int port, const char *path, const char *scheme)
{
    static char b[4][512];
    static int i;
    char *s = b[i++ % 4];
    snprintf(s, 512, "%s://%s:%d%s", scheme, host, port, path);
    return s;
}

static const char *header_of(const cJSON *obj, const char *part, const char *name)
{
    const cJSON *h = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, part), "headers");
    return vt_json_get_string(h, name);
}

static void page_with_title_gives_200_and_the_collapsed_title(void **state)
{
    outcome o;
    fetch(url("a.test", http_port, "/title", "http"), &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.status, 200);
    assert_string_equal(o.title, "Hello Vantage");
    assert_false(o.truncated);
    /* The OONI entry: request as sent (Host names the URL's host), response as received. */
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o.entry, "failure")));
    const cJSON *rq = cJSON_GetObjectItem(o.entry, "request");
    assert_string_equal(vt_json_get_string(rq, "method"), "GET");
    assert_string_equal(vt_json_get_string(rq, "x_transport"), "tcp");
    char host[64];
    snprintf(host, sizeof host, "a.test:%d", http_port);
    assert_string_equal(header_of(o.entry, "request", "Host"), host);
    assert_string_equal(header_of(o.entry, "request", "User-Agent"), "vantage-test/1");
    const cJSON *rs = cJSON_GetObjectItem(o.entry, "response");
    assert_int_equal(cJSON_GetObjectItem(rs, "code")->valueint, 200);
    assert_string_equal(header_of(o.entry, "response", "Server"),
                        vt_json_get_string(cJSON_GetObjectItem(rs, "headers"), "Server"));
    assert_non_null(strstr(header_of(o.entry, "response", "Server"), "vantage-test"));
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(rs, "headers_list")) >= 3);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(rs, "body")));
    assert_non_null(strstr(cJSON_GetObjectItem(rs, "body")->valuestring, "Vantage"));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(rs, "body_is_truncated")));
    /* At least the final bytes_received_cumulative sample. */
    int n = cJSON_GetArraySize(o.events);
    assert_true(n >= 1);
    const cJSON *last = cJSON_GetArrayItem(o.events, n - 1);
    assert_string_equal(vt_json_get_string(last, "operation"), "bytes_received_cumulative");
    assert_int_equal(cJSON_GetObjectItem(last, "num_bytes")->valueint, (int)o.bytes_received);
    /* OONI's netevents keys: the server's address (never ours), proto, failure, tags. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_port);
    assert_string_equal(vt_json_get_string(last, "address"), addr);
    assert_string_equal(vt_json_get_string(last, "proto"), "tcp");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(last, "failure")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(last, "tags")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o.entry, "tags")));
    outcome_free(&o);
}

static void redirect_chain_across_two_names_is_three_hops(void **state)
{
    char next[512];
    snprintf(next, sizeof next, "%s",
             url("a.test", http_port, "/chain/1?h1=a.test&h2=b.test", "http"));
    int hops = 0;
    outcome o;
    for (int i = 0; i < 10; i++) {
        fetch(next, &o);
        assert_string_equal(o.failure, "");
        if (o.status < 300 || o.status >= 400) break;
        hops++;
        assert_true(o.location[0] != 0);
        if (hops == 1) assert_non_null(strstr(o.location, "://b.test:"));
        if (hops == 2) /* a relative Location comes back absolute */
            assert_non_null(strstr(o.location, "http://b.test:"));
        snprintf(next, sizeof next, "%s", o.location);
        outcome_free(&o);
    }
    assert_int_equal(hops, 3);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.title, "Final");
    assert_non_null(strstr(next, "http://a.test:"));
    outcome_free(&o);
}

static void reset_mid_body_is_connection_reset(void **state)
{
    outcome o;
    fetch(url("a.test", http_port, "/reset", "http"), &o);
    assert_string_equal(o.failure, "connection_reset");
    assert_int_equal(o.status, 200);
    assert_int_equal(o.body_len, 1000);
    assert_string_equal(o.title, "Partial");
    assert_string_equal(vt_json_get_string(o.entry, "failure"), "connection_reset");
    outcome_free(&o);
}

static void clean_close_mid_body_is_eof_error(void **state)
{
    outcome o;
    fetch(url("a.test", http_port, "/close", "http"), &o);
    assert_string_equal(o.failure, "eof_error");
    assert_int_equal(o.body_len, 1000);
    outcome_free(&o);
}

static void stalled_server_is_generic_timeout_error(void **state)
{
    vt_http_opts op;
    default_opts(&op, url("a.test", http_port, "/stall", "http"));
    op.timeout_ms = 400;
    outcome o;
    double t0 = vt_now();
    fetch_opts(&op, &o);
    assert_true(vt_now() - t0 < 3.0);
    assert_string_equal(o.failure, "generic_timeout_error");
    assert_int_equal(o.status, 0);
    outcome_free(&o);
}

static void binary_body_is_stored_as_base64(void **state)
{
    outcome o;
    fetch(url("a.test", http_port, "/binary", "http"), &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.body_len, 4096);
    assert_false(o.has_title);
    const cJSON *body = cJSON_GetObjectItem(cJSON_GetObjectItem(o.entry, "response"), "body");
    assert_true(cJSON_IsObject(body));
    assert_string_equal(vt_json_get_string(body, "format"), "base64");
    assert_memory_equal(vt_json_get_string(body, "data"), "AAECAwQF", 8);
    outcome_free(&o);
}

static void endless_body_is_capped_and_marked_truncated(void **state)
{
    vt_http_opts op;
    default_opts(&op, url("a.test", http_port, "/endless", "http"));
    op.max_body = 1000;
    op.max_download = 300000;
    op.sample_ms = 1;
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.status, 200);
    assert_true(o.truncated);
    assert_int_equal(o.body_len, 1000);
    assert_int_equal(o.bytes_received, 300000);
    const cJSON *rs = cJSON_GetObjectItem(o.entry, "response");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rs, "body_is_truncated")));
    assert_int_equal(strlen(cJSON_GetObjectItem(rs, "body")->valuestring), 1000);
    int n = cJSON_GetArraySize(o.events);
    assert_true(n >= 1);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(o.events, n - 1), "num_bytes")->valueint, 300000);
    outcome_free(&o);
}

static void large_body_gives_a_throughput(void **state)
{
    vt_http_opts op;
    default_opts(&op, url("a.test", http_port, "/large?n=2000000", "http"));
    op.max_body = 100;
    op.max_download = 4000000;
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.bytes_received, 2000000);
    assert_true(o.truncated); /* only 100 bytes kept */
    assert_true(o.throughput_bps > 0);
    outcome_free(&o);
}

static void huge_headers_fail_clearly(void **state)
{
    outcome o;
    fetch(url("a.test", http_port, "/bigheaders", "http"), &o);
    assert_string_equal(o.failure, VT_HTTP_HEADERS_TOO_LARGE);
    outcome_free(&o);
    fetch(url("a.test", http_port, "/bigheaderline", "http"), &o);
    assert_string_equal(o.failure, VT_HTTP_HEADERS_TOO_LARGE);
    outcome_free(&o);
}

static void post_sends_the_body(void **state)
{
    vt_http_opts op;
    default_opts(&op, url("a.test", http_port, "/echo", "http"));
    op.method = "POST";
    op.body = (const unsigned char *)"hello";
    op.body_len = 5;
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.body_len, 10);
    assert_memory_equal(o.body, "POST hello", 10);
    assert_string_equal(vt_json_get_string(cJSON_GetObjectItem(o.entry, "request"), "method"),
                        "POST");
    assert_string_equal(header_of(o.entry, "request", "Content-Length"), "5");
    outcome_free(&o);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static void closed_port_is_connection_refused(void **state)
{
    outcome o;
    fetch(url("a.test", closed_port(), "/", "http"), &o);
    assert_string_equal(o.failure, "connection_refused");
    assert_int_equal(o.status, 0);
    const cJSON *rs = cJSON_GetObjectItem(o.entry, "response");
    assert_int_equal(cJSON_GetObjectItem(rs, "code")->valueint, 0);
    outcome_free(&o);
}

static void https_with_the_test_ca_succeeds(void **state)
{
    if (!https_port) skip();
    vt_http_opts op;
    default_opts(&op, url("good.test", https_port, "/title", "https"));
    op.cacert = cacert;
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.status, 200);
    assert_string_equal(o.title, "Hello Vantage");
    outcome_free(&o);
}

static double timing(const cJSON *entry, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(entry, "x_timings"), name);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* x_timings: libcurl's clocks for the transfer, in order, and a server's think time (the
 * server's /delay waits 300 ms) between pretransfer and starttransfer; plain HTTP has no
 * appconnect. libcurl stamps pretransfer after it has sent the request, so the server's wait
 * starts a little before it: on a busy machine (a sanitized build in CI measured 299.x ms) the
 * difference falls short of 300 ms by the time between the server reading the request and
 * libcurl taking its clock. 20 ms below covers that; the wait still has to fall in between. */
static void timings_place_a_slow_servers_delay_before_the_first_byte(void **state)
{
    if (!https_port) skip();
    vt_http_opts op;
    default_opts(&op, url("good.test", https_port, "/delay?ms=300", "https"));
    op.cacert = cacert;
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "");
    assert_int_equal(o.status, 200);
    double c = timing(o.entry, "connect"), a = timing(o.entry, "appconnect"),
           p = timing(o.entry, "pretransfer"), st = timing(o.entry, "starttransfer"),
           t = timing(o.entry, "total");
    assert_true(c > 0 && c <= a && a <= p && p <= st && st <= t);
    double think = st - p;
    if (think < 0.3 - 0.02 || think > 0.3 + 0.25)
        fail_msg("starttransfer - pretransfer = %.3f s for a 0.3 s server delay", think);
    outcome_free(&o);

    fetch(url("a.test", http_port, "/title", "http"), &o);
    assert_string_equal(o.failure, "");
    assert_true(timing(o.entry, "connect") > 0 && timing(o.entry, "total") > 0);
    assert_true(cJSON_IsNull(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o.entry, "x_timings"), "appconnect")));
    outcome_free(&o);
}

static void https_without_the_ca_is_ssl_unknown_authority(void **state)
{
    if (!https_port) skip();
    vt_http_opts op;
    default_opts(&op, url("good.test", https_port, "/title", "https"));
    op.cacert = NULL; /* the system CAs do not know the test CA */
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "ssl_unknown_authority");
    outcome_free(&o);
}

static void https_with_a_wrong_name_cert_is_ssl_invalid_hostname(void **state)
{
    if (!https_wrong_port) skip();
    vt_http_opts op;
    default_opts(&op, url("good.test", https_wrong_port, "/title", "https"));
    op.cacert = cacert;
    outcome o;
    fetch_opts(&op, &o);
    assert_string_equal(o.failure, "ssl_invalid_hostname");
    assert_int_equal(o.status, 0);
    outcome_free(&o);
}

static void title_parsing_is_safe_on_any_bytes(void **state)
{
    char *t;
    assert_null(vt_http_title((const unsigned char *)"no title here", 13));
    assert_null(vt_http_title(NULL, 0));
    assert_null(vt_http_title((const unsigned char *)"<titlefoo>x</titlefoo>", 22));
    assert_null(vt_http_title((const unsigned char *)"<title", 6));
    t = vt_http_title((const unsigned char *)"<TiTlE>A &amp; B</tItLe>", 24);
    assert_string_equal(t, "A &amp; B");
    free(t);
    t = vt_http_title((const unsigned char *)"<title>unterminated  \n text", 27);
    assert_string_equal(t, "unterminated text");
    free(t);
    t = vt_http_title((const unsigned char *)"<title></title>", 15);
    assert_string_equal(t, "");
    free(t);
    /* NUL, invalid UTF-8 and control bytes never leak into the JSON string. */
    const unsigned char bad[] = "<title>a\0b\xff\xfe c\x01\x02</title>";
    t = vt_http_title(bad, sizeof bad - 1);
    assert_string_equal(t, "a b\xEF\xBF\xBD\xEF\xBF\xBD c");
    assert_true(vt_utf8_valid((const unsigned char *)t, strlen(t)));
    free(t);
    /* At most 256 bytes, never cutting a character. */
    unsigned char big[2000];
    memcpy(big, "<title>", 7);
    for (size_t i = 7; i + 1 < sizeof big; i += 2) {
        big[i] = 0xC3;
        big[i + 1] = 0xA9; /* é */
    }
    t = vt_http_title(big, sizeof big - 1);
    assert_true(strlen(t) <= 256 && strlen(t) >= 254);
    assert_true(vt_utf8_valid((const unsigned char *)t, strlen(t)));
    free(t);
    /* Random bytes: no crash, valid UTF-8 out. */
    unsigned char rnd[4096];
    uint32_t x = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof rnd; i++) {
            x = x * 1103515245u + 12345u;
            rnd[i] = (unsigned char)(x >> 16);
        }
        memcpy(rnd + (x % 2000), "<title>", 7);
        t = vt_http_title(rnd, sizeof rnd);
        if (t) {
            assert_true(vt_utf8_valid((const unsigned char *)t, strlen(t)));
            free(t);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(title_parsing_is_safe_on_any_bytes),
        cmocka_unit_test(page_with_title_gives_200_and_the_collapsed_title),
        cmocka_unit_test(redirect_chain_across_two_names_is_three_hops),
        cmocka_unit_test(reset_mid_body_is_connection_reset),
        cmocka_unit_test(clean_close_mid_body_is_eof_error),
        cmocka_unit_test(stalled_server_is_generic_timeout_error),
        cmocka_unit_test(binary_body_is_stored_as_base64),
        cmocka_unit_test(endless_body_is_capped_and_marked_truncated),
        cmocka_unit_test(large_body_gives_a_throughput),
        cmocka_unit_test(huge_headers_fail_clearly),
        cmocka_unit_test(post_sends_the_body),
        cmocka_unit_test(closed_port_is_connection_refused),
        cmocka_unit_test(https_with_the_test_ca_succeeds),
        cmocka_unit_test(timings_place_a_slow_servers_delay_before_the_first_byte),
        cmocka_unit_test(https_without_the_ca_is_ssl_unknown_authority),
        cmocka_unit_test(https_with_a_wrong_name_cert_is_ssl_invalid_hostname),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
