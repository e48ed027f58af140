/* The uploader's pieces that need no collector (backoff, URLs, gzip, options), and check-in
 * against a one-shot HTTP server on 127.0.0.1 in a child process. The full upload runs against a
 * fake collector in tests/integration/test_upload.py. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

/* probe/ sources are not in a library; compile them into this test. */
#include "../../probe/spool.c"
#include "../../probe/upload.c"

static void backoff_is_full_jitter_doubling_up_to_the_cap(void **state)
{
    vt_upload_opts o;
    vt_upload_opts_defaults(&o);
    o.backoff_base_ms = 100;
    o.backoff_max_ms = 1000;
    long max_seen[8] = {0};
    for (int attempt = 1; attempt <= 7; attempt++) {
        long cap = 100L << (attempt - 1);
        if (cap > 1000) cap = 1000;
        for (int i = 0; i < 2000; i++) {
            long w = backoff_ms(&o, attempt);
            assert_true(w >= 0 && w <= cap);
            if (w > max_seen[attempt]) max_seen[attempt] = w;
        }
        /* Spread over the whole range, not a fixed delay. */
        assert_true(max_seen[attempt] > cap / 2);
    }
    o.backoff_base_ms = 0;
    assert_int_equal(backoff_ms(&o, 3), 0);
}

static void plain_http_only_for_loopback(void **state)
{
    char err[256];
    assert_int_equal(check_url("https://collector.example.org", err, sizeof(err)), 0);
    assert_int_equal(check_url("http://127.0.0.1:8080/", err, sizeof(err)), 0);
    assert_int_equal(check_url("http://localhost:1", err, sizeof(err)), 0);
    assert_int_equal(check_url("http://[::1]:1", err, sizeof(err)), 0);
    assert_int_equal(check_url("http://collector.example.org", err, sizeof(err)), -1);
    /* Names that only look like loopback are remote hosts: plain http refused. */
    assert_int_equal(check_url("http://127.example.org/", err, sizeof(err)), -1);
    assert_int_equal(check_url("http://127.0.0.1.example.org/", err, sizeof(err)), -1);
    assert_int_equal(check_url("http://localhost.example.org/", err, sizeof(err)), -1);
    assert_int_equal(check_url("http://127.8.9.10:1/", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "https://"));
    assert_int_equal(check_url("ftp://127.0.0.1/", err, sizeof(err)), -1);
    assert_int_equal(check_url("not a url", err, sizeof(err)), -1);
    char url[64];
    assert_int_equal(make_url(url, sizeof(url), "https://c.example//", "/api/v1/check-in"), 0);
    assert_string_equal(url, "https://c.example/api/v1/check-in");
    assert_int_equal(make_url(url, 10, "https://c.example", "/api/v1/check-in"), -1);
}

static void gzip_round_trips(void **state)
{
    const char *in = "{\"measurement_uid\":\"a\"}\n{\"measurement_uid\":\"b\"}\n";
    buf out = {0};
    assert_int_equal(gzip_buf(in, strlen(in), &out), 0);
    assert_true(out.n > 10);
    assert_int_equal((unsigned char)out.p[0], 0x1f);
    assert_int_equal((unsigned char)out.p[1], 0x8b);
    char back[256];
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)out.p;
    z.avail_in = (uInt)out.n;
    z.next_out = (Bytef *)back;
    z.avail_out = sizeof(back);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, strlen(in));
    assert_memory_equal(back, in, strlen(in));
    inflateEnd(&z);
    free(out.p);
}

static void options_are_parsed_and_bounded(void **state)
{
    vt_upload_opts o;
    char err[256];
    setenv("VANTAGE_UPLOAD_TOKEN", "from-env", 1);
    vt_upload_cli_defaults(&o);
    assert_string_equal(o.token, "from-env");
    assert_int_equal(vt_upload_option(&o, "upload-token", "flag", err, sizeof(err)), 0);
    assert_string_equal(o.token, "flag");
    unsetenv("VANTAGE_UPLOAD_TOKEN");
    assert_int_equal(vt_upload_option(&o, "collector", "https://c", err, sizeof(err)), 0);
    assert_int_equal(vt_upload_option(&o, "no-upload", NULL, err, sizeof(err)), 0);
    assert_true(o.disabled);
    assert_int_equal(vt_upload_option(&o, "upload-batch", "0", err, sizeof(err)), -1);
    assert_int_equal(vt_upload_option(&o, "upload-batch", "1001", err, sizeof(err)), -1);
    assert_int_equal(vt_upload_option(&o, "upload-batch", "12x", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--upload-batch"));
    assert_int_equal(vt_upload_option(&o, "upload-batch", "50", err, sizeof(err)), 0);
    assert_int_equal(o.batch_size, 50);
    assert_int_equal(vt_upload_option(&o, "upload-max-time", "5", err, sizeof(err)), 0);
    assert_int_equal(o.total_timeout_ms, 5000);
    assert_true(o.request_timeout_ms <= 5000 && o.backoff_max_ms <= 5000);
    assert_int_equal(vt_upload_option(&o, "bogus", "1", err, sizeof(err)), -1);
}

/* A server that answers every request on a loopback port with the given status and body, for
 * `requests` connections, then exits. Returns the port. */
static int serve(pid_t *pid, int status, const char *body, int requests)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 8), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        alarm(10);
        for (int i = 0; i < requests; i++) {
            int c = accept(s, NULL, NULL);
            char req[8192];
            size_t got = 0;
            if (c < 0) _exit(1);
            /* Headers, then the (small) body the probe sends. */
            while (got < sizeof(req) - 1) {
                ssize_t r = read(c, req + got, sizeof(req) - 1 - got);
                if (r <= 0) break;
                got += (size_t)r;
                req[got] = 0;
                char *h = strstr(req, "\r\n\r\n");
                char *cl = strcasestr(req, "Content-Length:");
                if (h && (!cl || got >= (size_t)(h + 4 - req) + (size_t)atoi(cl + 15))) break;
            }
            char resp[4096];
            int n = snprintf(resp, sizeof(resp),
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             status, strlen(body), body);
            if (write(c, resp, (size_t)n) < 0) _exit(1);
            close(c);
        }
        _exit(0);
    }
    close(s);
    return ntohs(a.sin_port);
}

static void checkin_at(const char *host, const char *body, int status, int requests, int expect_rc,
                       vt_checkin_result *out, char *err, size_t errlen)
{
    pid_t pid;
    char url[64];
    int port = serve(&pid, status, body, requests);
    vt_upload_opts o;
    vt_upload_opts_defaults(&o);
    o.backoff_base_ms = 1;
    o.backoff_max_ms = 5;
    o.max_attempts = requests;
    o.request_timeout_ms = 5000;
    snprintf(url, sizeof(url), "http://%s:%d/", host, port);
    o.collector = url;
    assert_int_equal(vt_upload_checkin(&o, out, err, errlen), expect_rc);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* it got exactly `requests` requests */
}

static void checkin(const char *body, int status, int requests, int expect_rc,
                    vt_checkin_result *out, char *err, size_t errlen)
{
    checkin_at("127.0.0.1", body, status, requests, expect_rc, out, err, errlen);
}

static void checkin_answer_fills_country_network_and_version(void **state)
{
    vt_checkin_result r;
    char err[512];
    checkin("{\"probe_cc\":\"DE\",\"probe_asn\":\"AS3320\",\"probe_network_name\":\"Deutsche "
            "Telekom AG\\n\\u0007\",\"targets_version\":\"7\"}",
            200, 1, 0, &r, err, sizeof(err));
    assert_string_equal(r.probe_cc, "DE");
    assert_string_equal(r.probe_asn, "AS3320");
    assert_string_equal(r.probe_network_name, "Deutsche Telekom AG"); /* controls dropped */
    assert_string_equal(r.targets_version, "7");
    checkin("{\"probe_cc\":\"ZZ\",\"probe_asn\":\"AS0\",\"probe_network_name\":null,"
            "\"targets_version\":null}",
            200, 1, 0, &r, err, sizeof(err));
    assert_string_equal(r.probe_cc, "ZZ");
    assert_string_equal(r.probe_network_name, "");
}

#define PIN "sha256//n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
#define CI_HEAD "{\"probe_cc\":\"DE\",\"probe_asn\":\"AS3320\",\"sni_test\":"

/* The SNI test server the collector offers, with its key's pin: taken when it is HOST:PORT and
 * the pin a SHA-256 one; an address in the volunteer's own kind of network only from a
 * collector that is itself in one. */
static void checkin_takes_a_plausible_sni_test_offer(void **state)
{
    vt_checkin_result r;
    char err[512];
    checkin(CI_HEAD "{\"endpoint\":\"sni.example.org:443\",\"pin\":\"" PIN "\"}}", 200, 1, 0, &r,
            err, sizeof(err));
    assert_string_equal(r.sni_test, "sni.example.org:443");
    assert_string_equal(r.sni_test_pin, PIN);
    checkin(CI_HEAD "{\"endpoint\":\"[2001:db8::1]:4443\"}}", 200, 1, 0, &r, err, sizeof(err));
    assert_string_equal(r.sni_test, "[2001:db8::1]:4443");
    assert_string_equal(r.sni_test_pin, "");
    /* a bad pin: the server is still taken, unpinned */
    checkin(CI_HEAD "{\"endpoint\":\"8.8.8.8:443\",\"pin\":\"md5//abc\"}}", 200, 1, 0, &r, err,
            sizeof(err));
    assert_string_equal(r.sni_test, "8.8.8.8:443");
    assert_string_equal(r.sni_test_pin, "");
    /* not HOST:PORT, a port out of range, a host with a path or spaces, not a string */
    const char *bad[] = {"\"sni.example.org\"",
                         "\"sni.example.org:0\"",
                         "\"sni.example.org:65536\"",
                         "\"a/b:443\"",
                         "\"a b:443\"",
                         "443",
                         "\":443\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), CI_HEAD "{\"endpoint\":%s}}", bad[i]);
        checkin(body, 200, 1, 0, &r, err, sizeof(err));
        assert_string_equal(r.sni_test, "");
    }
    /* a private address from a loopback collector (a lab): taken */
    checkin(CI_HEAD "{\"endpoint\":\"10.99.3.2:443\"}}", 200, 1, 0, &r, err, sizeof(err));
    assert_string_equal(r.sni_test, "10.99.3.2:443");
    /* from a collector known by name: the volunteer's router is not a test server */
    checkin_at("localhost", CI_HEAD "{\"endpoint\":\"192.168.1.1:80\"}}", 200, 1, 0, &r, err,
               sizeof(err));
    assert_string_equal(r.probe_cc, "DE");
    assert_string_equal(r.sni_test, "");
    checkin_at("localhost", CI_HEAD "{\"endpoint\":\"127.0.0.1:443\"}}", 200, 1, 0, &r, err,
               sizeof(err));
    assert_string_equal(r.sni_test, "");
    checkin_at("localhost", CI_HEAD "{\"endpoint\":\"sni.example.org:443\"}}", 200, 1, 0, &r, err,
               sizeof(err));
    assert_string_equal(r.sni_test, "sni.example.org:443");
}

/* The collector's other addresses: only URLs the probe would take as its collector_url, at most
 * VT_UPLOAD_MAX_ALTERNATES, never its own; and whether a failure was the collector's answer. */
static void checkin_keeps_only_usable_alternate_urls(void **state)
{
    vt_checkin_result r;
    char err[512], body[4096], longurl[600];
    memset(longurl, 'a', sizeof(longurl) - 1);
    memcpy(longurl, "https://", 8);
    longurl[sizeof(longurl) - 1] = 0;
    snprintf(body, sizeof(body),
             "{\"probe_cc\":\"DE\",\"probe_asn\":\"AS3320\",\"alternate_urls\":["
             "\"https://front.example.net\", \"http://192.0.2.1/\", \"ftp://x.example\", 7, null,"
             "\"%s\", \"https://a b.example\", \"http://127.0.0.1:9/\", \"https://2.example\","
             "\"https://3.example\", \"https://4.example\"]}",
             longurl);
    checkin(body, 200, 1, 0, &r, err, sizeof(err));
    assert_int_equal(r.n_alternates, 4);
    assert_string_equal(r.alternates[0], "https://front.example.net");
    assert_string_equal(r.alternates[1], "http://127.0.0.1:9/"); /* plain http: loopback only */
    assert_string_equal(r.alternates[2], "https://2.example");
    assert_string_equal(r.alternates[3], "https://3.example");
    checkin("{\"probe_cc\":\"DE\",\"probe_asn\":\"AS3320\",\"alternate_urls\":\"x\"}", 200, 1, 0,
            &r, err, sizeof(err));
    assert_int_equal(r.n_alternates, 0);
    /* the collector said no: not a reason to try elsewhere; a page of someone else's: one */
    checkin("{\"error\":\"no\"}", 403, 1, -1, &r, err, sizeof(err));
    assert_int_equal(r.unanswered, 0);
    checkin("<html>blocked</html>", 403, 1, -1, &r, err, sizeof(err));
    assert_int_equal(r.unanswered, 1);
}

static void checkin_refuses_answers_that_are_not_a_country_and_asn(void **state)
{
    vt_checkin_result r;
    char err[512];
    checkin("{\"probe_cc\":\"de\",\"probe_asn\":\"AS3320\"}", 200, 1, -1, &r, err, sizeof(err));
    assert_non_null(strstr(err, "probe_cc"));
    checkin("{\"probe_cc\":\"DE\",\"probe_asn\":\"3320\"}", 200, 1, -1, &r, err, sizeof(err));
    checkin("{\"probe_cc\":\"DE\",\"probe_asn\":\"AS33x\"}", 200, 1, -1, &r, err, sizeof(err));
    checkin("[]", 200, 2, -1, &r, err, sizeof(err)); /* not an object: retried, then given up */
    assert_non_null(strstr(err, "gave up after 2 attempts"));
}

static void checkin_retries_a_busy_collector_a_bounded_number_of_times(void **state)
{
    vt_checkin_result r;
    char err[512];
    checkin("{\"error\":\"busy\"}", 503, 3, -1, &r, err, sizeof(err));
    assert_non_null(strstr(err, "gave up after 3 attempts"));
    assert_non_null(strstr(err, "HTTP 503: busy"));
    checkin("{\"error\":\"no such path\"}", 404, 1, -1, &r, err, sizeof(err)); /* not retried */
    assert_non_null(strstr(err, "HTTP 404"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_is_full_jitter_doubling_up_to_the_cap),
        cmocka_unit_test(plain_http_only_for_loopback),
        cmocka_unit_test(gzip_round_trips),
        cmocka_unit_test(options_are_parsed_and_bounded),
        cmocka_unit_test(checkin_answer_fills_country_network_and_version),
        cmocka_unit_test(checkin_takes_a_plausible_sni_test_offer),
        cmocka_unit_test(checkin_keeps_only_usable_alternate_urls),
        cmocka_unit_test(checkin_refuses_answers_that_are_not_a_country_and_asn),
        cmocka_unit_test(checkin_retries_a_busy_collector_a_bounded_number_of_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
