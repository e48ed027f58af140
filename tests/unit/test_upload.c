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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

/* probe/ sources are not in a library; compile them into this test. */
#include "../../probe/spool.c"
#include "../../probe/checkins.c"
#include "../../probe/device.c"
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

/* ---- the network of measurements whose check-in failed (probe/checkins.c) ---- */

static void checkin_times_parse_as_utc_or_are_refused(void **state)
{
    (void)state;
    assert_true(vt_checkins_parse_time("2026-11-01 00:00:00") == VT_CLOCK_FLOOR);
    assert_true(vt_checkins_parse_time("2026-11-01 01:02:03") == VT_CLOCK_FLOOR + 3723);
    assert_true(vt_checkins_parse_time("2024-03-01 00:00:00") -
                    vt_checkins_parse_time("2024-02-28 00:00:00") ==
                2 * 86400.0); /* a leap year */
    const char *bad[] = {"",
                         "2026-11-01",
                         "2026-11-01T00:00:00",
                         "2026-11-01 00:00:00Z",
                         "2026-13-01 00:00:00",
                         "2026-11-01 24:00:00",
                         "2026-1a-01 00:00:00",
                         "+026-11-01 00:00:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_true(vt_checkins_parse_time(bad[i]) < 0);
    assert_true(vt_checkins_parse_time(NULL) < 0);
}

static char *temp_state(void)
{
    char tmpl[] = "/tmp/vt-checkins-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void remove_state(char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/" VT_CHECKINS_FILE, dir);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void write_text(const char *dir, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/" VT_CHECKINS_FILE, dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void checkins_are_recorded_newest_kept_and_broken_files_ignored(void **state)
{
    (void)state;
    char *dir = temp_state(), err[512], t[20];
    vt_checkins h;
    vt_checkins_load(dir, &h);
    assert_int_equal(h.n, 0); /* no file yet */
    for (int i = 0; i < VT_CHECKINS_MAX + 6; i++) {
        vt_format_time(VT_CLOCK_FLOOR + 3600.0 * i, t);
        assert_int_equal(vt_checkins_record(dir, t, "PK", i % 2 ? "AS17557" : "AS45595",
                                            "Net \"x\"", err, sizeof(err)),
                         0);
    }
    vt_checkins_load(dir, &h);
    assert_int_equal(h.n, VT_CHECKINS_MAX);
    vt_format_time(VT_CLOCK_FLOOR + 3600.0 * 6, t);
    assert_string_equal(h.r[0].time, t); /* the six oldest went */
    vt_format_time(VT_CLOCK_FLOOR + 3600.0 * (VT_CHECKINS_MAX + 5), t);
    assert_string_equal(h.r[h.n - 1].time, t);
    assert_string_equal(h.r[h.n - 1].asn, "AS17557");
    assert_string_equal(h.r[h.n - 1].name, "Net \"x\"");
    /* Not a time, a country and a network: refused, nothing written. */
    assert_int_equal(vt_checkins_record(dir, "yesterday", "PK", "AS1", "", err, sizeof(err)), -1);
    assert_int_equal(vt_checkins_record(dir, t, "pk", "AS1", "", err, sizeof(err)), -1);
    assert_int_equal(vt_checkins_record(dir, t, "PK", "17557", "", err, sizeof(err)), -1);

    /* Whatever else the file holds: no crash, only the entries the probe would write. */
    const char *broken[] = {"", "\x00\x01", "[[[[[[[[[[[[[[[[[[[[[[[[", "{\"check_ins\": 5}",
                            "{\"check_ins\": [1, \"x\", null, {}]}",
                            "{\"check_ins\": [{\"time\": \"2026-11-02 00:00:00\", \"probe_cc\": "
                            "\"PK\", \"probe_asn\": \"AS1\""};
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        write_text(dir, broken[i]);
        vt_checkins_load(dir, &h);
        assert_int_equal(h.n, 0);
    }
    write_text(dir, "{\"check_ins\": ["
                    "{\"time\": \"2026-11-02 00:00:00\", \"probe_cc\": \"PK\", \"probe_asn\": "
                    "\"AS1\", \"probe_network_name\": 7},"
                    "{\"time\": \"2026-11-02 00:00:00\", \"probe_cc\": \"PAK\", \"probe_asn\": "
                    "\"AS1\"},"
                    "{\"time\": \"2026-11-02\", \"probe_cc\": \"PK\", \"probe_asn\": \"AS1\"},"
                    "{\"time\": \"2026-11-03 00:00:00\", \"probe_cc\": \"PK\", \"probe_asn\": "
                    "\"AS1x\"}]}");
    vt_checkins_load(dir, &h);
    assert_int_equal(h.n, 1); /* the first; a name that is not a string is "" */
    assert_string_equal(h.r[0].name, "");
    /* Recording over a broken file starts the history again. */
    write_text(dir, "{\"check_ins\": [");
    assert_int_equal(vt_checkins_record(dir, "2026-11-05 00:00:00", "PK", "AS9", "", err,
                                        sizeof(err)),
                     0);
    vt_checkins_load(dir, &h);
    assert_int_equal(h.n, 1);
    remove_state(dir);
}

static cJSON *failed_checkin_measurement(const char *start)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"measurement_start_time\": \"%s\", \"probe_cc\": \"ZZ\", \"probe_asn\": \"AS0\", "
             "\"probe_network_name\": \"\", \"x_check_in\": \"failed\", \"report_id\": "
             "\"20261102T010000Z_vantage_ZZ_0_n1_0123456789abcdef\", \"test_keys\": {}}",
             start);
    cJSON *m = cJSON_Parse(text);
    assert_non_null(m);
    return m;
}

static void add(vt_checkins *h, const char *time, const char *cc, const char *asn)
{
    vt_checkin_rec *r = &h->r[h->n++];
    snprintf(r->time, sizeof(r->time), "%s", time);
    snprintf(r->cc, sizeof(r->cc), "%s", cc);
    snprintf(r->asn, sizeof(r->asn), "%s", asn);
    snprintf(r->name, sizeof(r->name), "Name of %s", asn);
}

static void failed_checkin_takes_the_network_of_agreeing_checkins_around_it(void **state)
{
    (void)state;
    vt_checkins h;
    memset(&h, 0, sizeof(h));
    add(&h, "2026-11-01 20:00:00", "PK", "AS45595");
    add(&h, "2026-11-02 00:00:00", "PK", "AS17557");
    add(&h, "2026-11-02 03:00:00", "PK", "AS17557");
    add(&h, "2026-11-06 03:00:00", "PK", "AS17557"); /* 4 days later */
    add(&h, "2026-11-06 05:00:00", "PK", "AS9541");

    cJSON *m = failed_checkin_measurement("2026-11-02 01:00:00");
    assert_int_equal(vt_checkins_relabel(&h, m), 1);
    assert_string_equal(vt_json_get_string(m, "probe_cc"), "PK");
    assert_string_equal(vt_json_get_string(m, "probe_asn"), "AS17557");
    assert_string_equal(vt_json_get_string(m, "probe_network_name"), "Name of AS17557");
    assert_string_equal(vt_json_get_string(m, "report_id"),
                        "20261102T010000Z_vantage_PK_17557_n1_0123456789abcdef");
    assert_string_equal(vt_json_get_string(m, "x_check_in"), "inferred");
    const cJSON *around = cJSON_GetObjectItemCaseSensitive(m, "x_check_ins_around");
    assert_int_equal(cJSON_GetArraySize(around), 2);
    assert_string_equal(cJSON_GetArrayItem(around, 0)->valuestring, "2026-11-02 00:00:00");
    assert_string_equal(cJSON_GetArrayItem(around, 1)->valuestring, "2026-11-02 03:00:00");
    /* Once inferred, not again. */
    assert_int_equal(vt_checkins_relabel(&h, m), 0);
    cJSON_Delete(m);

    /* The same measurement between check-ins that disagree, too far apart, or with none after
     * it: left as ZZ/AS0, untouched. */
    const char *stay[] = {"2026-11-01 22:00:00", "2026-11-04 00:00:00", "2026-11-06 04:00:00",
                          "2026-11-07 00:00:00", "2026-11-01 10:00:00"};
    for (size_t i = 0; i < sizeof(stay) / sizeof(stay[0]); i++) {
        m = failed_checkin_measurement(stay[i]);
        char *before = cJSON_PrintUnformatted(m);
        assert_int_equal(vt_checkins_relabel(&h, m), 0);
        char *after = cJSON_PrintUnformatted(m);
        assert_string_equal(before, after);
        free(before);
        free(after);
        cJSON_Delete(m);
    }
    /* Only a failed check-in's measurement: one that is ZZ because the collector said so, or
     * that says it failed but has a country, is left alone. */
    m = failed_checkin_measurement("2026-11-02 01:00:00");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "x_check_in");
    assert_int_equal(vt_checkins_relabel(&h, m), 0);
    cJSON_Delete(m);
    m = failed_checkin_measurement("2026-11-02 01:00:00");
    cJSON_ReplaceItemInObjectCaseSensitive(m, "probe_cc", cJSON_CreateString("IR"));
    assert_int_equal(vt_checkins_relabel(&h, m), 0);
    cJSON_Delete(m);
    /* A check-in in the measurement's own second may be on either side: the bracket is the
     * nearest strictly before and after, with everything between agreeing. */
    add(&h, "2026-11-02 04:00:00", "PK", "AS17557");
    m = failed_checkin_measurement("2026-11-02 03:00:00");
    cJSON_ReplaceItemInObjectCaseSensitive(m, "report_id", cJSON_CreateString("other"));
    assert_int_equal(vt_checkins_relabel(&h, m), 1);
    assert_string_equal(vt_json_get_string(m, "report_id"), "other"); /* another shape: kept */
    assert_string_equal(vt_json_get_string(m, "probe_asn"), "AS17557");
    around = cJSON_GetObjectItemCaseSensitive(m, "x_check_ins_around");
    assert_string_equal(cJSON_GetArrayItem(around, 0)->valuestring, "2026-11-02 00:00:00");
    assert_string_equal(cJSON_GetArrayItem(around, 1)->valuestring, "2026-11-02 04:00:00");
    cJSON_Delete(m);
    /* Check-ins in the measurement's own second that disagree: which side each lies on is not
     * known, so nothing is inferred, though the nearest before and after agree. */
    add(&h, "2026-11-08 04:00:00", "PK", "AS17557");
    add(&h, "2026-11-08 05:00:00", "PK", "AS17557");
    add(&h, "2026-11-08 05:00:00", "PK", "AS9541");
    add(&h, "2026-11-08 06:00:00", "PK", "AS17557");
    m = failed_checkin_measurement("2026-11-08 05:00:00");
    assert_int_equal(vt_checkins_relabel(&h, m), 0);
    cJSON_Delete(m);
    /* Check-ins around it that did not know the network either: nothing to infer. */
    vt_checkins unknown;
    memset(&unknown, 0, sizeof(unknown));
    add(&unknown, "2026-11-02 00:00:00", "ZZ", "AS0");
    add(&unknown, "2026-11-02 03:00:00", "ZZ", "AS0");
    m = failed_checkin_measurement("2026-11-02 01:00:00");
    assert_int_equal(vt_checkins_relabel(&unknown, m), 0);
    assert_string_equal(vt_json_get_string(m, "x_check_in"), "failed");
    cJSON_Delete(m);
    /* Only a check-in in its second after it (a run right after a failed one): not inferred. */
    m = failed_checkin_measurement("2026-11-08 06:00:00");
    assert_int_equal(vt_checkins_relabel(&h, m), 0);
    cJSON_Delete(m);
}

/* ---- the device key (probe/device.c) ---- */

static void device_key_is_made_once_kept_private_and_replaced_when_damaged(void **state)
{
    (void)state;
    char *dir = temp_state(), err[512], path[512];
    unsigned char k1[VT_DEVICE_KEY_LEN], k2[VT_DEVICE_KEY_LEN], zero[VT_DEVICE_KEY_LEN] = {0};
    snprintf(path, sizeof(path), "%s/" VT_DEVICE_KEY_FILE, dir);
    assert_int_equal(vt_device_key_load(dir, k1, err, sizeof(err)), 0);
    assert_memory_not_equal(k1, zero, sizeof(zero));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 2 * VT_DEVICE_KEY_LEN + 1);
    assert_int_equal(vt_device_key_load(dir, k2, err, sizeof(err)), 0);
    assert_memory_equal(k1, k2, sizeof(k1)); /* kept */
    /* Another device (state directory): another key. */
    char *dir2 = temp_state();
    assert_int_equal(vt_device_key_load(dir2, k2, err, sizeof(err)), 0);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    char p2[512];
    snprintf(p2, sizeof(p2), "%s/" VT_DEVICE_KEY_FILE, dir2);
    unlink(p2);
    remove_state(dir2);
    /* Damaged, edited, empty: a new key, written in its place. */
    const char *bad[] = {"", "zz", "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n",
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(vt_device_key_load(dir, k2, err, sizeof(err)), 0);
        assert_memory_not_equal(k1, k2, sizeof(k1));
        unsigned char k3[VT_DEVICE_KEY_LEN];
        assert_int_equal(vt_device_key_load(dir, k3, err, sizeof(err)), 0);
        assert_memory_equal(k2, k3, sizeof(k2));
    }
    /* A key written by hand in the right form is taken as it is. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < VT_DEVICE_KEY_LEN; i++)
        fprintf(f, "%02x", i);
    fclose(f);
    assert_int_equal(vt_device_key_load(dir, k2, err, sizeof(err)), 0);
    for (int i = 0; i < VT_DEVICE_KEY_LEN; i++)
        assert_int_equal(k2[i], i);
    unlink(path);
    remove_state(dir);
    assert_int_equal(vt_device_key_load(NULL, k2, err, sizeof(err)), -1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_is_full_jitter_doubling_up_to_the_cap),
        cmocka_unit_test(checkin_times_parse_as_utc_or_are_refused),
        cmocka_unit_test(checkins_are_recorded_newest_kept_and_broken_files_ignored),
        cmocka_unit_test(failed_checkin_takes_the_network_of_agreeing_checkins_around_it),
        cmocka_unit_test(device_key_is_made_once_kept_private_and_replaced_when_damaged),
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
