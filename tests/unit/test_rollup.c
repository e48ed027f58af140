/* Rollup pieces: histogram quantiles that stay within one bin after merging, the KMV report set
 * (exact below K, estimate above, order-independent merge, per-report weight), reading a
 * measurement, and detection thresholds on a real SQLite store. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rollup.h"
#include "store.h"
#include "vantage/json.h"
#include "vantage/loop.h"

static uint64_t rng = 88172645463325252ULL;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Quantiles of merged histograms land in the exact quantile's bin or a neighbour. */
static void check_merge(int kind, double median, double sigma)
{
    enum { N = 20000, PARTS = 24 };
    double *v = malloc(N * sizeof(double));
    assert_non_null(v);
    vt_hist parts[PARTS], all;
    memset(parts, 0, sizeof(parts));
    memset(&all, 0, sizeof(all));
    for (int i = 0; i < N; i++) {
        double z = sqrt(-2 * log(urand())) * cos(2 * M_PI * urand());
        v[i] = median * exp(sigma * z);
        vt_hist_add(&parts[i % PARTS], kind, v[i]);
    }
    for (int p = 0; p < PARTS; p++)
        vt_hist_merge(&all, &parts[p]);
    assert_int_equal(vt_hist_total(&all), N);
    qsort(v, N, sizeof(double), cmpd);
    const double qs[] = {0.1, 0.5, 0.9, 0.99};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double exact = v[(size_t)ceil(qs[i] * N) - 1];
        double got = vt_hist_quantile(&all, kind, qs[i]);
        int be = vt_hist_bin(kind, exact), bg = vt_hist_bin(kind, got);
        if (abs(be - bg) > 1) {
            char msg[200];
            snprintf(msg, sizeof msg, "kind %d q %.2f: exact %g (bin %d) merged %g (bin %d)", kind,
                     qs[i], exact, be, got, bg);
            fail_msg("%s", msg);
        }
    }
    free(v);
}

static void test_hist_merge_quantiles(void **state)
{
    (void)state;
    check_merge(VT_HIST_LATENCY, 80, 0.6);
    check_merge(VT_HIST_LATENCY, 3, 0.3);
    check_merge(VT_HIST_LATENCY, 2000, 1.2);
    check_merge(VT_HIST_THROUGHPUT, 128000, 0.05);
    check_merge(VT_HIST_THROUGHPUT, 2e7, 1.0);
}

static void test_hist_edges_and_text(void **state)
{
    (void)state;
    assert_int_equal(vt_hist_bin(VT_HIST_LATENCY, 0), 0);
    assert_int_equal(vt_hist_bin(VT_HIST_LATENCY, -5), 0);
    assert_int_equal(vt_hist_bin(VT_HIST_LATENCY, NAN), 0);
    assert_int_equal(vt_hist_bin(VT_HIST_LATENCY, 1e12), VT_HIST_BINS - 1);
    assert_int_equal(vt_hist_bin(VT_HIST_LATENCY, INFINITY), VT_HIST_BINS - 1);
    for (int i = 0; i < VT_HIST_BINS; i++) {
        double mid =
            sqrt(vt_hist_edge(VT_HIST_THROUGHPUT, i) * vt_hist_edge(VT_HIST_THROUGHPUT, i + 1));
        assert_int_equal(vt_hist_bin(VT_HIST_THROUGHPUT, mid), i);
    }
    vt_hist h = {0}, back;
    assert_true(vt_hist_quantile(&h, VT_HIST_LATENCY, 0.5) < 0);
    vt_hist_add(&h, VT_HIST_LATENCY, 50);
    vt_hist_add(&h, VT_HIST_LATENCY, 50);
    vt_hist_add(&h, VT_HIST_LATENCY, 5000);
    char text[1024];
    vt_hist_encode(&h, text, sizeof(text));
    vt_hist_decode(&back, text);
    assert_memory_equal(&h, &back, sizeof(h));
    /* Junk never crashes and never writes outside the bins. */
    const char *junk[] = {"", "x", "99:5", "-1:3", "3:", "3:4,", "3:4,,5:6", "3:99999999999999"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        vt_hist_decode(&back, junk[i]);
}

static void test_rset(void **state)
{
    (void)state;
    vt_rset a = {0}, b = {0}, ab = {0}, ba = {0};
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "report-%d", i);
        vt_rset_add(&a, vt_rset_hash(id), 2, 1);
        vt_rset_add(&a, vt_rset_hash(id), 1, 0); /* same report again: merged */
    }
    assert_int_equal((int)vt_rset_distinct(&a), 40);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        vt_rset_add(i % 2 ? &a : &b, vt_rset_hash(id), 1, 0);
    }
    ab = a;
    vt_rset_merge(&ab, &b);
    ba = b;
    vt_rset_merge(&ba, &a);
    assert_int_equal(ab.len, ba.len);
    for (int i = 0; i < ab.len; i++) {
        assert_int_equal(ab.e[i].h, ba.e[i].h);
        assert_int_equal(ab.e[i].n, ba.e[i].n);
    }
    double est = vt_rset_distinct(&ab);
    if (fabs(est - 20040) > 0.4 * 20040) fail_msg("estimate %g for 20040 distinct", est);
    char text[2048];
    vt_rset back;
    vt_rset_encode(&ab, text, sizeof(text));
    vt_rset_decode(&back, text);
    assert_int_equal(back.len, ab.len);
    assert_memory_equal(back.e, ab.e, (size_t)ab.len * sizeof(ab.e[0]));
    vt_rset_decode(&back, "zz:1:2,00000001:5:9,00000002:1:1,"); /* a > n refused */
    assert_int_equal(back.len, 0);
    /* Out of order or upper-case (not what encode writes): the lenient path sorts it. */
    vt_rset_decode(&back, "0000000A:2:1,00000005:1:0,00000007:3:3");
    assert_int_equal(back.len, 3);
    assert_int_equal(back.e[0].h, 5);
    assert_int_equal(back.e[1].h, 7);
    assert_int_equal(back.e[2].h, 10);
    assert_int_equal(back.e[2].a, 1);
    vt_rset_decode(&back, "");
    assert_int_equal(back.len, 0);

    /* One report sending 100 anomalies weighs as much as each report sending one ok. */
    vt_rset w = {0};
    vt_rset_add(&w, vt_rset_hash("loud"), 100, 100);
    vt_rset_add(&w, vt_rset_hash("q1"), 1, 0);
    vt_rset_add(&w, vt_rset_hash("q2"), 1, 0);
    vt_rset_add(&w, vt_rset_hash("q3"), 1, 0);
    assert_true(fabs(vt_rset_share(&w) - 0.25) < 1e-9);
}

/* More probe runs than measurements cannot be: the distinct-run estimate (above VT_RSET_K) is
 * clamped to the count it is shown beside, in what is reported (vt_rset_runs) and in a bucket as
 * read back (vt_cell_from_cols: episodes' max_probes, detection). 90 runs of one measurement
 * each, with these report ids, are estimated as 98. */
static void test_runs_never_exceed_measurements(void **state)
{
    (void)state;
    vt_rset s = {0};
    char id[32];
    for (int i = 0; i < 90; i++) {
        snprintf(id, sizeof(id), "run-%d", i);
        vt_rset_add(&s, vt_rset_hash(id), 1, 0);
    }
    assert_true(vt_rset_distinct(&s) > 90); /* the estimate overshoots */
    assert_true(vt_rset_runs(&s, 90) == 90);
    assert_true(vt_rset_runs(&s, 200) == vt_rset_distinct(&s));
    char rs[2048];
    vt_rset_encode(&s, rs, sizeof(rs));
    const char *cols[25] = {"2026-11-21 06:00:00",
                            "PK",
                            "AS1",
                            "t",
                            "web_connectivity",
                            "p",
                            "c",
                            "90",
                            "90",
                            "0",
                            "0",
                            "0",
                            "0",
                            "0",
                            "0",
                            "0",
                            "0",
                            "0",
                            "0",
                            "",
                            "",
                            rs,
                            "98",
                            "0",
                            "3"};
    vt_cell c;
    assert_int_equal(vt_cell_from_cols(&c, 25, cols), 0);
    assert_int_equal((int)c.n, 90);
    assert_true(c.probes == 90);
    assert_int_equal((int)c.intermittent, 3);
    cols[22] = "12";
    assert_int_equal(vt_cell_from_cols(&c, 25, cols), 0);
    assert_true(c.probes == 12);
    /* a row without the intermittent count (an older schema's) is not read */
    assert_int_equal(vt_cell_from_cols(&c, 24, cols), -1);
}

/* Distinct probes count devices per hour when the probes send their hourly device token
 * (x_device_hour): one device's two runs in an hour are one witness. */
static void test_obs_device_hour(void **state)
{
    (void)state;
#define DEV_FMT                                                                                    \
    "{\"measurement_start_time\":\"2026-11-21 06:12:00\",\"probe_cc\":\"PK\","                     \
    "\"probe_asn\":\"AS1\",\"test_name\":\"web_connectivity\",\"report_id\":\"%s\",%s"             \
    "\"annotations\":{\"target_id\":\"t\"},\"test_keys\":{\"verdict\":\"tls_blocking\"}}"
    struct {
        const char *rid, *dev;
    } m[] = {
        {"run-1", "\"x_device_hour\":\"0123456789abcdef\","}, /* device A, run 1 */
        {"run-2", "\"x_device_hour\":\"0123456789abcdef\","}, /* device A, run 2 */
        {"run-3", "\"x_device_hour\":\"fedcba9876543210\","}, /* device B */
        {"run-4", ""},                                        /* an older probe: its run */
        {"run-5", "\"x_device_hour\":\"0123456789ABCDEF\","}, /* not a token: its run */
        {"run-6", "\"x_device_hour\":12,"},
        {"run-7", "\"x_device_hour\":\"0123456789abcde\","},
    };
    vt_rset rs;
    memset(&rs, 0, sizeof(rs));
    uint32_t h[7];
    for (int i = 0; i < 7; i++) {
        char buf[1024];
        vt_obs o;
        snprintf(buf, sizeof(buf), DEV_FMT, m[i].rid, m[i].dev);
        assert_int_equal(vt_obs_from_json(buf, &o), 0);
        h[i] = o.report;
        vt_rset_add(&rs, o.report, 1, 1);
    }
    assert_true(h[0] == h[1] && h[0] != h[2]);
    for (int i = 3; i < 7; i++)
        assert_true(h[i] == vt_rset_hash(m[i].rid));
    assert_int_equal((int)vt_rset_distinct(&rs), 6); /* A once, B, and four runs */
}

static void test_obs(void **state)
{
    (void)state;
    vt_obs o;
#define BASE                                                                                       \
    "{\"measurement_start_time\":\"2026-11-21 06:12:00\",\"probe_cc\":\"PK\","                     \
    "\"probe_asn\":\"AS1\",\"test_name\":\"web_connectivity\","                                    \
    "\"report_id\":\"r1\",\"annotations\":{\"target_id\":\"t\","                                   \
    "\"platform\":\"p\"},\"test_keys\":%s}"
    char buf[1024];
    snprintf(buf, sizeof(buf), BASE,
             "{\"verdict\":\"dns_blocking\",\"blocking_confirmed\":true,\"tcp_connect\":[{\"t0\":"
             "1.5,\"t\":1.62,\"status\":{\"success\":true}}],\"x_large_resource\":{"
             "\"throughput_bps\":128000}}");
    assert_int_equal(vt_obs_from_json(buf, &o), 0);
    assert_string_equal(o.hour, "2026-11-21 06:00:00");
    assert_int_equal(o.verdict, VT_V_DNS);
    assert_true(o.confirmed);
    assert_false(o.intermittent);
    assert_true(fabs(o.latency_ms - 120) < 1e-6);
    assert_true(fabs(o.throughput_bps - 128000) < 1e-6);
    assert_string_equal(o.category, "");
    /* a failure that came and went when the probe tried again (lib/verdict.c) */
    snprintf(buf, sizeof(buf), BASE,
             "{\"verdict\":\"tls_blocking\",\"evidence\":{\"intermittent\":true}}");
    assert_int_equal(vt_obs_from_json(buf, &o), 0);
    assert_int_equal(o.verdict, VT_V_TLS);
    assert_true(o.intermittent);
    assert_false(o.confirmed);
    snprintf(buf, sizeof(buf), BASE,
             "{\"verdict\":\"tls_blocking\",\"evidence\":{\"intermittent\":1}}");
    assert_int_equal(vt_obs_from_json(buf, &o), 0);
    assert_false(o.intermittent); /* only a JSON true counts */
    snprintf(buf, sizeof(buf), BASE, "{\"failure\":\"connection_reset\"}");
    assert_int_equal(vt_obs_from_json(buf, &o), 0);
    assert_int_equal(o.verdict, VT_V_FAILURE);
    assert_true(o.latency_ms < 0 && o.throughput_bps < 0);
    snprintf(buf, sizeof(buf), BASE,
             "{\"failure\":null,\"tcp_connect\":[{\"t0\":1,\"t\":11,\"status\":{\"success\":false,"
             "\"failure\":\"generic_timeout_error\"}}]}");
    assert_int_equal(vt_obs_from_json(buf, &o), 0);
    assert_int_equal(o.verdict, VT_V_OK);
    assert_true(o.latency_ms < 0); /* a failed connect says nothing about latency */
    snprintf(buf, sizeof(buf), BASE, "{\"verdict\":\"something_new\"}");
    assert_int_equal(vt_obs_from_json(buf, &o), 0);
    assert_int_equal(o.verdict, VT_V_INCONCLUSIVE);
    assert_int_equal(vt_obs_from_json("[1,2]", &o), -1);
    assert_int_equal(vt_obs_from_json("{\"measurement_start_time\":\"2026-02-30 00:00:00\"}", &o),
                     -1);
    assert_int_equal(vt_obs_from_json("{", &o), -1);
    /* A name longer than its column is cut between characters, never inside one (ingest
     * refuses such names; stores written before still hold them). */
    char longer[1024];
    snprintf(longer, sizeof(longer),
             "{\"measurement_start_time\":\"2026-11-21 06:12:00\",\"probe_cc\":\"PK\","
             "\"probe_asn\":\"AS1\",\"test_name\":\"web_connectivity\",\"annotations\":{"
             "\"target_id\":\"%0127d\u00e9\",\"platform\":\"%063d\u00e9\"},\"test_keys\":{}}",
             0, 0);
    assert_int_equal(vt_obs_from_json(longer, &o), 0);
    assert_int_equal(strlen(o.target), 127);
    assert_int_equal(strlen(o.platform), 63);
    assert_true(vt_utf8_valid((const unsigned char *)o.target, strlen(o.target)));
}

/* Hours of one target on one network: 'probes' reports per hour, all anomalous in [b0, b1). */
/* A store in a new SQLite file: path is a mkstemp template, filled in. */
static vt_store *temp_store(char *path)
{
    char url[64], err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    vt_store *s = vt_store_open(url, err, sizeof(err));
    assert_non_null(s);
    return s;
}

/* Closes it and removes the file with its WAL and shared-memory files. */
static void temp_store_close(vt_store *s, const char *path)
{
    vt_store_close(s);
    unlink(path);
    char aux[300];
    snprintf(aux, sizeof(aux), "%s-wal", path);
    unlink(aux);
    snprintf(aux, sizeof(aux), "%s-shm", path);
    unlink(aux);
}

static int count_rows(void *arg, int nc, const char *const *cols)
{
    (void)nc;
    (void)cols;
    (*(int *)arg)++;
    return 0;
}

/* A query that would run for minutes is stopped at the limit; the next one, without it, runs. */
static void test_query_time_limit(void **state)
{
    (void)state;
    char path[] = "/tmp/vt-rollup-limit-XXXXXX", err[256] = "";
    vt_store *s = temp_store(path);
    static const char *endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                 "WHERE x < 4000000000) SELECT count(*) FROM c";
    int rows = 0;
    vt_db_time_limit(s, 200);
    double t0 = vt_now();
    assert_int_equal(vt_db_query(s, endless, NULL, 0, count_rows, &rows, err, sizeof(err)), -1);
    double took = vt_now() - t0;
    assert_true(vt_db_timed_out(err));
    assert_true(took >= 0.15 && took < 5); /* stopped near 0.2 s, not minutes later */
    vt_db_time_limit(s, 0);
    rows = 0;
    assert_int_equal(
        vt_db_query(s, "SELECT 1 UNION ALL SELECT 2", NULL, 0, count_rows, &rows, err, sizeof(err)),
        0);
    assert_int_equal(rows, 2);
    assert_false(vt_db_timed_out("sqlite: database is locked"));
    temp_store_close(s, path);
}

static int count_one(void *arg, int nc, const char *const *cols)
{
    *(long *)arg = nc > 0 && cols[0] ? atol(cols[0]) : -1;
    return 1;
}

/* A flood of new series in one country delays another country's detection by a round, not by
 * the flood: rounds take the countries in turn. */
static void test_refresh_takes_countries_in_turn(void **state)
{
    (void)state;
    char path[] = "/tmp/vt-rollup-turn-XXXXXX", err[256] = "", sql[256];
    vt_store *s = temp_store(path);
    for (int i = 0; i < 20; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO episodes_dirty (probe_cc, probe_asn, target_id, test_name, whole) "
                 "VALUES ('AA', 'AS%d', 'flood-%d', 'web_connectivity', 0)",
                 i + 1, i);
        assert_int_equal(vt_db_query(s, sql, NULL, 0, NULL, NULL, err, sizeof(err)), 0);
    }
    assert_int_equal(vt_db_query(s,
                                 "INSERT INTO episodes_dirty (probe_cc, probe_asn, target_id, "
                                 "test_name, whole) VALUES ('PK', 'AS17557', 'x-web', "
                                 "'web_connectivity', 0)",
                                 NULL, 0, NULL, NULL, err, sizeof(err)),
                     0);
    for (int round = 0; round < 2; round++)
        assert_true(vt_episodes_refresh(s, 2, err, sizeof(err)) > 0);
    long pk = -1, aa = -1;
    assert_int_equal(vt_db_query(s, "SELECT COUNT(*) FROM episodes_dirty WHERE probe_cc = 'PK'",
                                 NULL, 0, count_one, &pk, err, sizeof(err)),
                     0);
    assert_int_equal(vt_db_query(s, "SELECT COUNT(*) FROM episodes_dirty WHERE probe_cc = 'AA'",
                                 NULL, 0, count_one, &aa, err, sizeof(err)),
                     0);
    assert_int_equal(pk, 0); /* taken within two rounds, whatever the last country was */
    assert_true(aa >= 18);   /* the flood waits its turns */
    temp_store_close(s, path);
}

/* devices: 0, the runs send no device token (counted by report id); 1, every run of an hour is
 * one device's (one token); 2, each run is another device's. */
static void insert_hours_dev(vt_store *s, int probes, int b0, int b1, const char *asn, int devices)
{
    enum { HOURS = 30 };
    static char bodies[HOURS * 8][1024];
    static char uids[HOURS * 8][33];
    vt_store_row rows[HOURS * 8];
    size_t n = 0;
    static int seq;
    char err[256];
    for (int h = 0; h < HOURS; h++)
        for (int p = 0; p < probes; p++) {
            int anom = h >= b0 && h < b1;
            snprintf(uids[n], 33, "%032x", ++seq);
            char dev[64] = "";
            if (devices)
                snprintf(dev, sizeof(dev), "\"x_device_hour\":\"%08x%08x\",", h,
                         devices == 1 ? 0 : p + 1);
            snprintf(bodies[n], sizeof(bodies[n]),
                     "{\"measurement_start_time\":\"2026-11-%02d %02d:05:00\",\"probe_cc\":\"PK\","
                     "\"probe_asn\":\"%s\",\"test_name\":\"web_connectivity\",\"report_id\":"
                     "\"r-%d-%d\",%s\"annotations\":{\"target_id\":\"t1\",\"platform\":\"x\"},"
                     "\"test_keys\":{\"verdict\":\"%s\",\"evidence\":{\"intermittent\":%s}}}",
                     1 + h / 24, h % 24, asn, h, p, dev, anom ? "tcp_blocking" : "ok",
                     /* the second probe's failures come and go */
                     anom && p == 1 ? "true" : "false");
            memset(&rows[n], 0, sizeof(rows[n]));
            rows[n].uid = uids[n];
            rows[n].received_at = "2026-11-28 00:00:00";
            rows[n].measurement_start_time = "2026-11-01 00:00:00";
            rows[n].probe_cc = "PK";
            rows[n].probe_asn = asn;
            rows[n].test_name = "web_connectivity";
            rows[n].body = bodies[n];
            n++;
        }
    assert_int_equal(vt_store_insert_batch(s, rows, n, err, sizeof(err)), 0);
}

static void insert_hours(vt_store *s, int probes, int b0, int b1, const char *asn)
{
    insert_hours_dev(s, probes, b0, b1, asn, 0);
}

/* Two runs an hour of one device (one x_device_hour) are one witness: no block; two devices'
 * runs are two. */
static void test_detect_one_device(void **state)
{
    (void)state;
    char path[] = "/tmp/vt-rollup-XXXXXX", err[256];
    vt_store *s = temp_store(path);
    insert_hours_dev(s, 2, 5, 20, "AS3", 1);
    insert_hours_dev(s, 2, 5, 20, "AS4", 2);
    vt_detect_query q = {0};
    vt_episode *e = NULL;
    size_t n = 0;
    assert_int_equal(vt_detect(s, &q, &e, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].asn, "AS4");
    assert_int_equal((int)e[0].max_probes, 2);
    free(e);
    vt_store_close(s);
    unlink(path);
}

static void test_detect_thresholds(void **state)
{
    (void)state;
    char path[] = "/tmp/vt-rollup-XXXXXX", err[256];
    vt_store *s = temp_store(path);
    insert_hours(s, 1, 5, 20, "AS1"); /* one probe only: never a block */
    insert_hours(s, 2, 5, 20, "AS2"); /* two probes: a block from 05:00 to 20:00 */
    vt_detect_query q = {0};
    vt_episode *e = NULL;
    size_t n = 0;
    assert_int_equal(vt_detect(s, &q, &e, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].asn, "AS2");
    assert_string_equal(e[0].kind, "blocking");
    assert_string_equal(e[0].start, "2026-11-01 05:00:00");
    assert_string_equal(e[0].end, "2026-11-01 20:00:00");
    assert_int_equal(e[0].measurements, 30);
    assert_int_equal((int)e[0].max_probes, 2);
    assert_false(e[0].ongoing);
    free(e);
    q.cc = "DE";
    assert_int_equal(vt_detect(s, &q, &e, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    free(e);
    temp_store_close(s, path);
}

/* Volunteers' probes run on the shipped schedule (dist/systemd/vantage-probe.timer: every 6
 * hours, at a fixed random minute of the hour after the slot; docs/volunteer.md's crontab
 * likewise), so a network's hours with data are 6 apart. Three volunteers see t1 blocked and t2
 * throttled from the fifth slot on: each slot alone has 3 anomalies (under the 5 a block needs)
 * and one slow hour (under the 2 a slowdown needs), so the episodes exist only if slots 6 hours
 * apart chain into one. A missed slot (12 hours without data) still ends an episode. */
static void test_detect_probe_schedule(void **state)
{
    (void)state;
    enum { SLOTS = 16, VOLUNTEERS = 3, N = SLOTS * VOLUNTEERS * 2 };
    static char bodies[N][512], uids[N][33];
    vt_store_row rows[N];
    size_t n = 0;
    char path[] = "/tmp/vt-rollup-sched-XXXXXX", err[256];
    vt_store *s = temp_store(path);
    for (int slot = 0; slot < SLOTS; slot++) {
        int hour = slot * 6 + (slot % 2); /* a run that crossed into the next hour too */
        if (slot == 12) continue;         /* every device was off: t1, t2 end at slot 11 */
        for (int v = 0; v < VOLUNTEERS; v++)
            for (int t = 1; t <= 2; t++) {
                int bad = slot >= 4;
                const char *verdict = !bad ? "ok" : t == 1 ? "tcp_blocking" : "throttled";
                double bps = bad && t == 2 ? 128e3 : 20e6;
                snprintf(uids[n], 33, "%032zx", n + 1);
                snprintf(bodies[n], sizeof(bodies[n]),
                         "{\"measurement_start_time\":\"2026-11-%02d %02d:%02d:00\",\"probe_cc\":"
                         "\"PK\",\"probe_asn\":\"AS9\",\"test_name\":\"web_connectivity\","
                         "\"report_id\":\"r-%d-%d\",\"annotations\":{\"target_id\":\"t%d\","
                         "\"platform\":\"p%d\"},\"test_keys\":{\"verdict\":\"%s\","
                         "\"throughput_bps\":%.0f}}",
                         1 + hour / 24, hour % 24, 10 + 17 * v, slot, v, t, t, verdict, bps);
                memset(&rows[n], 0, sizeof(rows[n]));
                rows[n].uid = uids[n];
                rows[n].received_at = "2026-11-28 00:00:00";
                rows[n].measurement_start_time = "2026-11-01 00:00:00";
                rows[n].probe_cc = "PK";
                rows[n].probe_asn = "AS9";
                rows[n].test_name = "web_connectivity";
                rows[n].body = bodies[n];
                n++;
            }
    }
    assert_int_equal(vt_store_insert_batch(s, rows, n, err, sizeof(err)), 0);
    vt_detect_query q = {0};
    vt_episode *e = NULL;
    size_t ne = 0;
    assert_int_equal(vt_detect(s, &q, &e, &ne, err, sizeof(err)), 0);
    /* slots 4..11 (hours 24..67) and 13..15 (79..91) of each target */
    assert_int_equal(ne, 4);
    for (size_t i = 0; i < ne; i++) {
        int t1 = strcmp(e[i].target, "t1") == 0;
        int first = strcmp(e[i].start, "2026-11-02 00:00:00") == 0;
        assert_string_equal(e[i].kind, t1 ? "blocking" : "slowdown");
        assert_string_equal(e[i].top_verdict, t1 ? "tcp_blocking" : "throttled");
        assert_string_equal(e[i].start, first ? "2026-11-02 00:00:00" : "2026-11-04 07:00:00");
        assert_string_equal(e[i].end, first ? "2026-11-03 20:00:00" : "2026-11-04 20:00:00");
        assert_int_equal(e[i].hours, first ? 8 : 3);
        assert_int_equal(e[i].anomalies, first ? 24 : 9);
        assert_int_equal(e[i].ongoing, !first);
        if (!t1 && first) assert_true(e[i].policer_bps == 128e3);
    }
    free(e);
    temp_store_close(s, path);
}

/* A database whose episodes an earlier collector detected under other rules (no
 * episodes_rules, or another version there) has them redone when the collector starts, not only
 * for the series that get new uploads. */
static void test_episodes_redone_under_new_rules(void **state)
{
    (void)state;
    char path[] = "/tmp/vt-rollup-rules-XXXXXX", err[256], url[64];
    vt_store *s = temp_store(path); /* a collector started on an empty database */
    snprintf(url, sizeof(url), "sqlite:%s", path);
    insert_hours(s, 2, 5, 20, "AS2");
    while (vt_episodes_refresh(s, 100, err, sizeof(err)) > 0)
        ;
    vt_detect_query q = {0};
    vt_episode *t = NULL;
    size_t nt = 0;
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(nt, 1);
    free(t);
    /* A report opening it meanwhile (same rules) leaves the episodes alone. */
    vt_store *r = vt_store_open_existing(url, err, sizeof(err));
    assert_non_null(r);
    vt_store_close(r);
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(nt, 1);
    free(t);
    /* What an earlier version left: no rules table, episodes the old rules found (none). */
    assert_int_equal(vt_db_query(s, "DELETE FROM episodes", NULL, 0, NULL, NULL, err, sizeof(err)),
                     0);
    vt_db_query(s, "DROP TABLE IF EXISTS episodes_rules", NULL, 0, NULL, NULL, err, sizeof(err));
    vt_store_close(s);
    s = vt_store_open(url, err, sizeof(err));
    assert_non_null(s);
    while (vt_episodes_refresh(s, 100, err, sizeof(err)) > 0)
        ;
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(nt, 1);
    assert_string_equal(t[0].asn, "AS2");
    free(t);
    /* Started again under the same rules: nothing is redone (the table is kept as is). */
    assert_int_equal(vt_db_query(s, "DELETE FROM episodes", NULL, 0, NULL, NULL, err, sizeof(err)),
                     0);
    vt_store_close(s);
    s = vt_store_open(url, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(nt, 0);
    free(t);
    temp_store_close(s, path);
}

static void same_episodes(const vt_episode *a, size_t na, const vt_episode *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].kind, b[i].kind);
        assert_string_equal(a[i].scope, b[i].scope);
        assert_string_equal(a[i].asn, b[i].asn);
        assert_string_equal(a[i].target, b[i].target);
        assert_string_equal(a[i].platform, b[i].platform);
        assert_string_equal(a[i].start, b[i].start);
        assert_string_equal(a[i].end, b[i].end);
        assert_int_equal(a[i].ongoing, b[i].ongoing);
        assert_int_equal(a[i].confirmed, b[i].confirmed);
        assert_int_equal(a[i].hours, b[i].hours);
        assert_int_equal(a[i].measurements, b[i].measurements);
        assert_int_equal(a[i].anomalies, b[i].anomalies);
        assert_int_equal(a[i].failures, b[i].failures);
        assert_int_equal(a[i].intermittent_count, b[i].intermittent_count);
        assert_true(a[i].max_probes == b[i].max_probes);
        assert_true(a[i].share == b[i].share);
        assert_string_equal(a[i].top_verdict, b[i].top_verdict);
        assert_true(a[i].latency_ms == b[i].latency_ms);
        assert_true(a[i].baseline_latency_ms == b[i].baseline_latency_ms);
        assert_true(a[i].throughput_bps == b[i].throughput_bps);
        assert_true(a[i].policer_bps == b[i].policer_bps);
    }
}

/* The episodes table, refreshed for the series ingest marked dirty, answers what detection over
 * the buckets answers; a later upload changes only what it touched. */
static void test_episodes_table(void **state)
{
    (void)state;
    char path[] = "/tmp/vt-rollup-XXXXXX", err[256];
    vt_store *s = temp_store(path);
    insert_hours(s, 1, 5, 20, "AS1");
    insert_hours(s, 2, 5, 20, "AS2");
    insert_hours(s, 3, 25, 30, "AS3"); /* ongoing at the newest hour */
    vt_detect_query q = {0};
    vt_episode *e = NULL, *t = NULL;
    size_t n = 0, nt = 0;
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(nt, 0); /* nothing until the refresh ran */
    free(t);
    assert_int_equal(vt_episodes_refresh(s, 2, err, sizeof(err)), 2); /* at most 2 at a time */
    assert_int_equal(vt_episodes_refresh(s, 100, err, sizeof(err)), 1);
    assert_int_equal(vt_episodes_refresh(s, 100, err, sizeof(err)), 0);
    assert_int_equal(vt_detect(s, &q, &e, &n, err, sizeof(err)), 0);
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_true(e[1].ongoing);
    /* AS2, blocked 05:00-20:00 by 2 probes, the second one's 15 failures intermittent */
    assert_string_equal(e[0].asn, "AS2");
    assert_int_equal((int)e[0].anomalies, 30);
    assert_int_equal((int)e[0].intermittent_count, 15);
    same_episodes(e, n, t, nt);
    free(e);
    free(t);
    q.asn = "AS3";
    snprintf(q.since, sizeof(q.since), "2026-11-02 00:00:00");
    assert_int_equal(vt_detect(s, &q, &e, &n, err, sizeof(err)), 0);
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    same_episodes(e, n, t, nt);
    free(e);
    free(t);
    snprintf(q.until, sizeof(q.until), "2026-11-02 01:00:00"); /* AS3 blocked from 01:00 */
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(nt, 0);
    free(t);
    /* More of AS1 (now two probes an hour, anomalous): only that series is redone. */
    insert_hours(s, 2, 10, 12, "AS1");
    assert_int_equal(vt_episodes_refresh(s, 100, err, sizeof(err)), 1);
    memset(&q, 0, sizeof(q));
    assert_int_equal(vt_detect(s, &q, &e, &n, err, sizeof(err)), 0);
    assert_int_equal(vt_episodes_load(s, &q, &t, &nt, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    same_episodes(e, n, t, nt);
    free(e);
    free(t);
    temp_store_close(s, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_merge_quantiles),
        cmocka_unit_test(test_hist_edges_and_text),
        cmocka_unit_test(test_rset),
        cmocka_unit_test(test_runs_never_exceed_measurements),
        cmocka_unit_test(test_obs),
        cmocka_unit_test(test_obs_device_hour),
        cmocka_unit_test(test_detect_thresholds),
        cmocka_unit_test(test_detect_one_device),
        cmocka_unit_test(test_detect_probe_schedule),
        cmocka_unit_test(test_episodes_redone_under_new_rules),
        cmocka_unit_test(test_episodes_table),
        cmocka_unit_test(test_query_time_limit),
        cmocka_unit_test(test_refresh_takes_countries_in_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
