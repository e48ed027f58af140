/* Verdict rules (lib/verdict.c) on hand-made test_keys shaped like the web kind's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vantage/verdict.h"

static const char *FP_CSV =
    "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,"
    "expected_countries,source,exp_url,notes\n"
    "t.dns,isp,,dns,full,10.10.10.66,5,,t,,\n"
    "t.body,isp,,body,contains,BLOCKED-HERE,5,,t,,\n"
    "t.prod,prod,,body,contains,SOME-PRODUCT,5,XY,t,,\n"
    "t.cname,isp,,dns,full,blockpage.example.net,5,,t,,\n";

/* A query entry: engine, failure (NULL: ok), answer (NULL: none). */
static cJSON *query(const char *host, const char *engine, const char *failure, const char *ip)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "hostname", host);
    cJSON_AddStringToObject(q, "engine", engine);
    cJSON_AddStringToObject(q, "query_type", "A");
    if (failure)
        cJSON_AddStringToObject(q, "failure", failure);
    else
        cJSON_AddNullToObject(q, "failure");
    cJSON *a = cJSON_AddArrayToObject(q, "answers");
    if (ip) {
        cJSON *an = cJSON_CreateObject();
        cJSON_AddStringToObject(an, "answer_type", "A");
        cJSON_AddStringToObject(an, "ipv4", ip);
        cJSON_AddItemToArray(a, an);
    }
    return q;
}

/* test_keys: phase/failure summary, system answer, resolver answer. */
static cJSON *keys(const char *phase, const char *failure, const char *sys_ip, const char *sys_fail,
                   const char *alt_ip, const char *alt_fail)
{
    cJSON *tk = cJSON_CreateObject();
    cJSON *qs = cJSON_AddArrayToObject(tk, "queries");
    cJSON_AddItemToArray(qs, query("t.example", "system", sys_fail, sys_ip));
    if (alt_ip || alt_fail) cJSON_AddItemToArray(qs, query("t.example", "udp", alt_fail, alt_ip));
    if (phase)
        cJSON_AddStringToObject(tk, "failure_phase", phase);
    else
        cJSON_AddNullToObject(tk, "failure_phase");
    if (failure)
        cJSON_AddStringToObject(tk, "failure", failure);
    else
        cJSON_AddNullToObject(tk, "failure");
    cJSON_AddArrayToObject(tk, "tcp_connect");
    cJSON_AddArrayToObject(tk, "tls_handshakes");
    cJSON_AddArrayToObject(tk, "requests");
    return tk;
}

/* A completed TLS handshake for t.example at address ("ip:port"), verified or not. */
static void add_tls(cJSON *tk, const char *address, int verified)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "address", address);
    cJSON_AddStringToObject(h, "server_name", "t.example");
    cJSON_AddNullToObject(h, "failure");
    cJSON_AddBoolToObject(h, "no_tls_verify", !verified);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tls_handshakes"), h);
}

static cJSON *control(const char *phase, const char *failure, int tcp_ok)
{
    cJSON *c = keys(phase, failure, "10.10.10.10", NULL, NULL, NULL);
    cJSON *e = cJSON_CreateObject();
    cJSON *st = cJSON_AddObjectToObject(e, "status");
    cJSON_AddBoolToObject(st, "success", tcp_ok);
    cJSON_AddItemToArray(cJSON_GetObjectItem(c, "tcp_connect"), e);
    return c;
}

static vt_verdict_ctx canaries_ok(void)
{
    vt_verdict_ctx c;
    vt_verdict_ctx_init(&c);
    c.n_canaries = 2;
    c.n_canaries_ok = 2;
    c.canary_bps = 400e6;
    return c;
}

static const char *s(const cJSON *tk, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(tk, k);
    return cJSON_IsString(v) ? v->valuestring : "(null)";
}

static const char *ev(const cJSON *tk, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), k);
    return cJSON_IsString(v) ? v->valuestring : "(null)";
}

static int confirmed(const cJSON *tk)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(tk, "blocking_confirmed"));
}

static void decide(cJSON *tk, const vt_verdict_ctx *ctx, const cJSON *ctl, const cJSON *swap,
                   const vt_fp_set *fps, int https)
{
    vt_verdict_inputs in = {.ctx = ctx,
                            .host = "t.example",
                            .https = https,
                            .sni_swap = swap,
                            .control = ctl,
                            .fps = fps,
                            .probe_cc = "ZZ"};
    vt_verdict_decide(tk, &in);
    assert_non_null(cJSON_GetObjectItem(tk, "verdict_reason"));
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(tk, "evidence")));
    assert_true(cJSON_IsBool(cJSON_GetObjectItem(tk, "blocking_confirmed")));
}

/* decide() with the failed connect or handshake tried again: the first repeat's failure, and
 * when fails is given, the n repeats' failures listed ("failures"; NULL: that one worked). */
static void decide_repeat_list(cJSON *tk, const vt_verdict_ctx *ctx, const cJSON *ctl,
                               const cJSON *swap, const char *repeat_failure, int n,
                               const char *const *fails)
{
    cJSON *rp = cJSON_CreateObject();
    cJSON_AddStringToObject(rp, "address", "10.10.10.10:443");
    if (repeat_failure)
        cJSON_AddStringToObject(rp, "failure", repeat_failure);
    else
        cJSON_AddNullToObject(rp, "failure");
    if (fails) {
        cJSON *l = cJSON_AddArrayToObject(rp, "failures");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(l, fails[i] ? cJSON_CreateString(fails[i]) : cJSON_CreateNull());
    }
    vt_verdict_inputs in = {.ctx = ctx,
                            .host = "t.example",
                            .https = 1,
                            .sni_swap = swap,
                            .repeat = rp,
                            .control = ctl,
                            .probe_cc = "ZZ"};
    vt_verdict_decide(tk, &in);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "repeat")));
    cJSON_Delete(rp);
}

static void decide_repeat(cJSON *tk, const vt_verdict_ctx *ctx, const cJSON *ctl, const cJSON *swap,
                          const char *repeat_failure)
{
    decide_repeat_list(tk, ctx, ctl, swap, repeat_failure, 0, NULL);
}

/* The page's lookups timed out, but another lookup of the name in the same measurement (the
 * large resource's) answered, as the second resolver did: inconclusive, and the reason must not
 * say there was nothing to compare with. */
static void test_dns_failed_then_answered(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys("dns", "generic_timeout_error", NULL, "generic_timeout_error",
                     "10.10.10.10", NULL);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "queries"),
                         query("t.example", "system", NULL, "10.10.10.10"));
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_null(strstr(s(tk, "verdict_reason"), "no second resolver"));
    assert_non_null(strstr(s(tk, "verdict_reason"), "another lookup"));
    cJSON_Delete(tk);
}

static void test_ok(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(tk, "verdict_phase")));
    assert_string_equal(ev(tk, "dns_consistency"), "consistent");
    assert_false(confirmed(tk));
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "canaries_ok")));
    cJSON_Delete(tk);
}

static void test_probe_offline(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    c.n_canaries_ok = 0;
    cJSON *tk = keys("dns", "dns_nxdomain_error", NULL, "dns_nxdomain_error", "10.10.10.10", NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "probe_offline");
    assert_false(confirmed(tk));
    cJSON_Delete(tk);
}

static void test_dns_nxdomain(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys("dns", "dns_nxdomain_error", NULL, "dns_nxdomain_error", "10.10.10.10", NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "dns");
    assert_string_equal(ev(tk, "dns_consistency"), "inconsistent");
    cJSON_Delete(tk);
    /* without a second resolver or control: inconclusive */
    tk = keys("dns", "dns_nxdomain_error", NULL, "dns_nxdomain_error", NULL, NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    /* both resolvers say the name does not exist: down */
    tk = keys("dns", "dns_nxdomain_error", NULL, "dns_nxdomain_error", NULL, "dns_nxdomain_error");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "down");
    assert_string_equal(ev(tk, "dns_consistency"), "both_failed");
    cJSON_Delete(tk);
    /* ... but not when, on both, the A query timed out and only the AAAA query (answered first)
     * found nothing: A queries dropped are no proof that the name is gone. */
    tk = keys("dns", "generic_timeout_error", NULL, "dns_no_answer", NULL, "dns_no_answer");
    cJSON *qs = cJSON_GetObjectItem(tk, "queries");
    cJSON_AddItemToArray(qs, query("t.example", "system", "generic_timeout_error", NULL));
    cJSON_AddItemToArray(qs, query("t.example", "udp", "generic_timeout_error", NULL));
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
}

/* The reason says "does not exist" only for NXDOMAIN and an empty answer; a SERVFAIL or a
 * timeout is a failure, still dns_blocking when the reference resolved the name. */
static void test_dns_failure_wording(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    const char *fails[] = {"dns_servfail_error", "generic_timeout_error", "dns_refused_error"};
    for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
        cJSON *tk = keys("dns", fails[i], NULL, fails[i], "10.10.10.10", NULL);
        decide(tk, &c, NULL, NULL, NULL, 1);
        assert_string_equal(s(tk, "verdict"), "dns_blocking");
        assert_string_equal(ev(tk, "dns_consistency"), "inconsistent");
        assert_null(strstr(s(tk, "verdict_reason"), "does not exist"));
        assert_non_null(strstr(s(tk, "verdict_reason"), "failed"));
        assert_non_null(strstr(s(tk, "verdict_reason"), fails[i]));
        cJSON_Delete(tk);
    }
    cJSON *tk = keys("dns", "dns_nxdomain_error", NULL, "dns_nxdomain_error", "10.10.10.10", NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_non_null(strstr(s(tk, "verdict_reason"), "does not exist (dns_nxdomain_error)"));
    cJSON_Delete(tk);
}

/* A resolver that could not be reached at all (connection_refused: its port closed, or DNS
 * over TCP refused after a truncated answer; no route to it) said nothing about the name: not
 * dns_blocking, even when the reference resolved it. */
static void test_dns_resolver_unreachable(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    const char *fails[] = {"connection_refused", "network_unreachable", "host_unreachable"};
    for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
        cJSON *tk = keys("dns", fails[i], NULL, fails[i], "10.10.10.10", NULL);
        decide(tk, &c, NULL, NULL, NULL, 1);
        assert_string_equal(s(tk, "verdict"), "inconclusive");
        assert_string_equal(s(tk, "verdict_phase"), "dns");
        assert_string_equal(ev(tk, "dns_consistency"), "(null)");
        assert_null(strstr(s(tk, "verdict_reason"), "does not exist"));
        assert_non_null(strstr(s(tk, "verdict_reason"), fails[i]));
        cJSON_Delete(tk);
    }
}

/* A second resolver that failed (timed out, its DoH server blocked) is no reference: it neither
 * makes an answer here "redirected" nor an NXDOMAIN here "down". */
static void test_dns_failed_reference(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    /* The page loaded over verified TLS, the second resolver timed out: ok, not dns_blocking. */
    cJSON *tk = keys(NULL, NULL, "10.10.10.20", NULL, NULL, "generic_timeout_error");
    add_tls(tk, "10.10.10.20:443", 1);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    assert_string_equal(ev(tk, "dns_consistency"), "consistent_by_tls");
    cJSON_Delete(tk);
    /* Plain http, loaded, nothing to compare the answer with: ok, consistency unknown. */
    tk = keys(NULL, NULL, "10.10.10.20", NULL, NULL, "dns_server_failure");
    decide(tk, &c, NULL, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "ok");
    assert_string_equal(ev(tk, "dns_consistency"), "(null)");
    cJSON_Delete(tk);
    /* A connect that failed, no control: not blocked on the DNS's account. */
    tk = keys("tcp", "connection_refused", "10.10.10.20", NULL, NULL, "generic_timeout_error");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "dns_blocking");
    cJSON_Delete(tk);
    /* A reference that says the name does not exist still makes an answer here suspect. */
    tk = keys("tcp", "connection_refused", "10.10.10.20", NULL, NULL, "dns_nxdomain_error");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    cJSON_Delete(tk);
    /* NXDOMAIN here, the reference timed out: blocking and a gone name look alike. */
    tk = keys("dns", "dns_nxdomain_error", NULL, "dns_nxdomain_error", NULL,
              "generic_timeout_error");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
}

static void test_dns_bogon(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys("tcp", "connection_refused", "127.0.0.1", NULL, "10.10.10.10", NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "dns");
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "dns_bogon")));
    cJSON_Delete(tk);
    /* a bogon alone is a flag, not proof */
    tk = keys("tcp", "connection_refused", "127.0.0.1", NULL, NULL, NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "dns_bogon")));
    cJSON_Delete(tk);
    /* the second resolver tampered the same way, the control did not */
    tk = keys("tcp", "connection_refused", "127.0.0.1", NULL, "127.0.0.1", NULL);
    cJSON *ctl = control(NULL, NULL, 1);
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    cJSON_Delete(ctl);
    cJSON_Delete(tk);
    /* Both local resolvers give the same private address (port 53 intercepted), the control a
     * public one: the control decides, the DNS is what is tampered with. */
    tk = keys("tcp", "connection_refused", "10.1.2.3", NULL, "10.1.2.3", NULL);
    ctl = keys(NULL, NULL, "93.184.216.34", NULL, NULL, NULL);
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(ev(tk, "dns_consistency"), "inconsistent");
    cJSON_Delete(ctl);
    cJSON_Delete(tk);
    /* ... while two local resolvers agreeing on a public address the control does not see are
     * a CDN's other node: consistent. */
    tk = keys(NULL, NULL, "198.51.100.20", NULL, "198.51.100.20", NULL);
    ctl = keys(NULL, NULL, "93.184.216.34", NULL, NULL, NULL);
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_string_equal(ev(tk, "dns_consistency"), "consistent");
    cJSON_Delete(ctl);
    cJSON_Delete(tk);
}

static void test_fingerprints(void **st)
{
    vt_fp_set fps;
    char err[256];
    vt_fp_init(&fps);
    assert_true(vt_fp_load_csv(&fps, FP_CSV, strlen(FP_CSV), "t.csv", err, sizeof(err)) > 0);
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys(NULL, NULL, "10.10.10.66", NULL, "10.10.10.10", NULL);
    decide(tk, &c, NULL, NULL, &fps, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(ev(tk, "fingerprint"), "t.dns");
    assert_true(confirmed(tk));
    cJSON_Delete(tk);

    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *rq = cJSON_CreateObject();
    cJSON *resp = cJSON_AddObjectToObject(rq, "response");
    cJSON_AddStringToObject(resp, "body", "<html>BLOCKED-HERE</html>");
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "requests"), rq);
    decide(tk, &c, NULL, NULL, &fps, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "http");
    assert_true(confirmed(tk));
    cJSON_Delete(tk);

    /* a base64 body, and a product fingerprint outside its countries: not confirmed */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    rq = cJSON_CreateObject();
    resp = cJSON_AddObjectToObject(rq, "response");
    cJSON *b = cJSON_AddObjectToObject(resp, "body");
    cJSON_AddStringToObject(b, "format", "base64");
    cJSON_AddStringToObject(b, "data", "/1NPTUUtUFJPRFVDVP8="); /* \xffSOME-PRODUCT\xff */
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "requests"), rq);
    decide(tk, &c, NULL, NULL, &fps, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    assert_string_equal(ev(tk, "fingerprint"), "t.prod");
    assert_false(confirmed(tk));
    cJSON_Delete(tk);

    /* An alias of a blockpage host (Indonesia's internet-positif.org): confirmed DNS blocking
     * by the CNAME answer, whatever address the chain ends at. */
    tk = keys(NULL, NULL, "10.10.10.77", NULL, "10.10.10.10", NULL);
    cJSON *qa =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "queries"), 0), "answers");
    cJSON *cn = cJSON_CreateObject();
    cJSON_AddStringToObject(cn, "answer_type", "CNAME");
    cJSON_AddStringToObject(cn, "hostname", "blockpage.example.net");
    cJSON_InsertItemInArray(qa, 0, cn);
    decide(tk, &c, NULL, NULL, &fps, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(ev(tk, "fingerprint"), "t.cname");
    assert_true(confirmed(tk));
    cJSON_Delete(tk);

    /* The site's own page over verified TLS quoting a blockpage's text: the site's page. The
     * same text from another host (a redirect to the censor's page), or over TLS not verified,
     * is still matched. */
    const char *urls[] = {"https://t.example/news", "https://T.EXAMPLE:443/x",
                          "https://block.example/", "http://t.example/"};
    const int matched[] = {0, 0, 1, 1};
    for (int verify = 1; verify >= 0; verify--)
        for (int i = 0; i < 4; i++) {
            tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
            add_tls(tk, "10.10.10.10:443", verify);
            rq = cJSON_CreateObject();
            cJSON_AddStringToObject(cJSON_AddObjectToObject(rq, "request"), "url", urls[i]);
            resp = cJSON_AddObjectToObject(rq, "response");
            cJSON_AddStringToObject(resp, "body", "<p>they showed BLOCKED-HERE to readers</p>");
            cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "requests"), rq);
            decide(tk, &c, NULL, NULL, &fps, 1);
            if (matched[i] || !verify)
                assert_string_equal(ev(tk, "fingerprint"), "t.body");
            else
                assert_string_equal(s(tk, "verdict"), "ok");
            cJSON_Delete(tk);
        }
    vt_fp_free(&fps);
}

static void test_tcp(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys("tcp", "generic_timeout_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *ok = control(NULL, NULL, 1), *bad = control("tcp", "connection_refused", 0);
    decide(tk, &c, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "tcp");
    decide(tk, &c, bad, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "down");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    cJSON_Delete(tk);
}

/* A tcp_connect entry as lib/tcp.c writes it: blocked false when it worked, null when not. */
static cJSON *connect_entry(const char *ip, int port, int ok)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "ip", ip);
    cJSON_AddNumberToObject(e, "port", port);
    cJSON *st = cJSON_AddObjectToObject(e, "status");
    cJSON_AddBoolToObject(st, "success", ok);
    if (ok) {
        cJSON_AddNullToObject(st, "failure");
        cJSON_AddFalseToObject(st, "blocked");
    } else {
        cJSON_AddStringToObject(st, "failure", "generic_timeout_error");
        cJSON_AddNullToObject(st, "blocked");
    }
    return e;
}

/* "true", "false" or "null" for tcp_connect[i].status.blocked ("missing" otherwise). */
static const char *blocked(const cJSON *tk, int i)
{
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "tcp_connect"), i);
    const cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "status"), "blocked");
    return cJSON_IsTrue(b)    ? "true"
           : cJSON_IsFalse(b) ? "false"
           : cJSON_IsNull(b)  ? "null"
                              : "missing";
}

/* tcp_connect[].status.blocked: OONI's meaning per address, never against the verdict. */
static void test_tcp_blocked(void **st)
{
    vt_verdict_ctx c = canaries_ok(), off;
    vt_verdict_ctx_init(&off);
    off.n_canaries = 2;
    cJSON *tk = keys("tcp", "generic_timeout_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *tc = cJSON_GetObjectItem(tk, "tcp_connect");
    cJSON_AddItemToArray(tc, connect_entry("10.10.10.10", 443, 0)); /* the host's address */
    cJSON_AddItemToArray(tc, connect_entry("10.9.9.9", 443, 0));    /* another endpoint's */
    cJSON_AddItemToArray(tc, connect_entry("10.8.8.8", 443, 1));    /* worked */
    /* The control connected elsewhere: tcp_blocking, true for the host's failed address. */
    cJSON *ok = control(NULL, NULL, 1);
    decide(tk, &c, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_string_equal(blocked(tk, 0), "true");
    assert_string_equal(blocked(tk, 1), "null");
    assert_string_equal(blocked(tk, 2), "false");
    /* OONI's rule where the control has the same IP and port: its own success decides. */
    cJSON *e = connect_entry("10.9.9.9", 443, 1);
    cJSON_AddItemToArray(cJSON_GetObjectItem(ok, "tcp_connect"), e);
    cJSON_AddItemToArray(cJSON_GetObjectItem(ok, "tcp_connect"),
                         connect_entry("10.10.10.10", 443, 0));
    decide(tk, &c, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_string_equal(blocked(tk, 0), "false"); /* the control failed there too */
    assert_string_equal(blocked(tk, 1), "true");
    assert_string_equal(blocked(tk, 2), "false");
    /* down: nothing is blocked, not even where the control connected to the same address. */
    cJSON *bad = control("tls", "ssl_failed_handshake", 1);
    cJSON_AddItemToArray(cJSON_GetObjectItem(bad, "tcp_connect"),
                         connect_entry("10.9.9.9", 443, 1));
    cJSON_ReplaceItemInObject(tk, "failure_phase", cJSON_CreateString("tls"));
    cJSON_ReplaceItemInObject(tk, "failure", cJSON_CreateString("ssl_failed_handshake"));
    decide(tk, &c, bad, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "down");
    assert_string_equal(blocked(tk, 0), "false");
    assert_string_equal(blocked(tk, 1), "false");
    assert_string_equal(blocked(tk, 2), "false");
    cJSON_ReplaceItemInObject(tk, "failure_phase", cJSON_CreateString("tcp"));
    cJSON_ReplaceItemInObject(tk, "failure", cJSON_CreateString("generic_timeout_error"));
    /* Without a control: unknown, as OONI leaves it (null); a success stays false. */
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_string_equal(blocked(tk, 0), "null");
    assert_string_equal(blocked(tk, 1), "null");
    assert_string_equal(blocked(tk, 2), "false");
    /* The probe's own network is down: says nothing, even with a control that connected. */
    decide(tk, &off, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "probe_offline");
    assert_string_equal(blocked(tk, 0), "null");
    assert_string_equal(blocked(tk, 1), "null");
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    cJSON_Delete(tk);
}

static cJSON *swap(const char *failure)
{
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "server_name", "canary.example");
    cJSON_AddStringToObject(w, "address", "10.10.10.10:443");
    if (failure)
        cJSON_AddStringToObject(w, "failure", failure);
    else
        cJSON_AddNullToObject(w, "failure");
    return w;
}

/* An IPv6-only target from a probe without IPv6 (ENETUNREACH at once), or a local firewall: the
 * control connecting proves nothing about this network. */
/* An on-path injector (the GFW) forges the same answer for both local resolvers: they agree on
 * an address the control does not give, and it cannot be connected to while the control
 * connects (lab scenario 32): DNS blocking, not a CDN's other node and not address blocking.
 * When the local address connects, or the control cannot connect either, the rule stands. */
static void test_dns_injected_both(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    cJSON *ctl = keys(NULL, NULL, "93.184.216.34", NULL, NULL, NULL);
    cJSON *tk = keys("tcp", "generic_timeout_error", "198.51.100.20", NULL, "198.51.100.20", NULL);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"),
                         connect_entry("198.51.100.20", 443, 0));
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "dns");
    assert_string_equal(ev(tk, "dns_consistency"), "inconsistent");
    cJSON_Delete(tk);
    /* the local node connects (the TLS handshake failed later): a CDN's other node */
    tk = keys("tls", "connection_reset", "198.51.100.20", NULL, "198.51.100.20", NULL);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"),
                         connect_entry("198.51.100.20", 443, 1));
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_string_equal(ev(tk, "dns_consistency"), "consistent");
    cJSON_Delete(tk);
    cJSON_Delete(ctl);
    /* the control cannot connect to its own address either: the site is down, not DNS */
    ctl = control("tcp", "generic_timeout_error", 0);
    cJSON_ReplaceItemInObject(ctl, "queries", cJSON_CreateArray());
    cJSON_AddItemToArray(cJSON_GetObjectItem(ctl, "queries"),
                         query("t.example", "system", NULL, "93.184.216.34"));
    tk = keys("tcp", "generic_timeout_error", "198.51.100.20", NULL, "198.51.100.20", NULL);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"),
                         connect_entry("198.51.100.20", 443, 0));
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_string_equal(ev(tk, "dns_consistency"), "consistent");
    assert_string_equal(s(tk, "verdict"), "down");
    cJSON_Delete(tk);
    cJSON_Delete(ctl);
}

static void test_tcp_local_failures(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *ok = control(NULL, NULL, 1);
    const char *cases[][2] = {{"2001:db8::7", "network_unreachable"},
                              {"10.10.10.10", "permission_denied"},
                              {"2001:db8::7", "address_not_available"}};
    for (int i = 0; i < 3; i++) {
        cJSON *tk = keys("tcp", cases[i][1], "10.10.10.10", NULL, "10.10.10.10", NULL);
        cJSON *e = connect_entry(cases[i][0], 443, 0);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(e, "status"), "failure",
                                  cJSON_CreateString(cases[i][1]));
        cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"), e);
        decide(tk, &c, ok, NULL, NULL, 1);
        assert_string_equal(s(tk, "verdict"), "inconclusive");
        cJSON_Delete(tk);
    }
    /* IPv4's network_unreachable can come from the path (an ICMP error): the rule stands. */
    cJSON *tk = keys("tcp", "network_unreachable", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *e = connect_entry("10.10.10.10", 443, 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(e, "status"), "failure",
                              cJSON_CreateString("network_unreachable"));
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"), e);
    decide(tk, &c, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    cJSON_Delete(tk);
    /* one local failure beside a timeout: the timeout is the network's */
    tk = keys("tcp", "generic_timeout_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    e = connect_entry("2001:db8::7", 443, 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(e, "status"), "failure",
                              cJSON_CreateString("network_unreachable"));
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"), e);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"),
                         connect_entry("10.10.10.10", 443, 0));
    decide(tk, &c, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    cJSON_Delete(tk);
    cJSON_Delete(ok);
}

static void test_tls(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys("tls", "connection_reset", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *sw_ok = swap(NULL), *sw_bad = swap("connection_reset");
    cJSON *ok = control(NULL, NULL, 1), *tlsbad = control("tls", "connection_reset", 1);
    decide(tk, &c, NULL, sw_ok, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tls_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "tls");
    decide(tk, &c, tlsbad, sw_ok, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "down");
    decide(tk, &c, NULL, sw_bad, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    decide(tk, &c, ok, sw_bad, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tls_blocking");
    decide(tk, &c, tlsbad, sw_bad, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "down");
    cJSON_Delete(tk);
    /* The swap rule reads interference (a reset, a timeout, EOF); a server's own alert (an
     * unknown name on a shared host) is the server's answer: no control, no verdict. */
    tk = keys("tls", "ssl_failed_handshake", "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide(tk, &c, NULL, sw_ok, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    for (int i = 0; i < 2; i++) {
        tk = keys("tls", i ? "eof_error" : "generic_timeout_error", "10.10.10.10", NULL,
                  "10.10.10.10", NULL);
        decide(tk, &c, NULL, sw_ok, NULL, 1);
        assert_string_equal(s(tk, "verdict"), "tls_blocking");
        cJSON_Delete(tk);
    }
    /* an untrusted certificate: interception only when the control saw a good one */
    tk = keys("tls", "ssl_unknown_authority", "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide(tk, &c, ok, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "tls_blocking");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    cJSON_Delete(sw_ok);
    cJSON_Delete(sw_bad);
    cJSON_Delete(ok);
    cJSON_Delete(tlsbad);
}

static void test_http(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys("http", "connection_reset", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *ok = control(NULL, NULL, 1), *bad = control("http", "connection_reset", 1);
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    decide(tk, &c, bad, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "down");
    cJSON_Delete(tk);
    /* a failure that is not how requests are cut: not blocking, even with the control's page */
    tk = keys("http", "unknown_failure: cannot start the HTTP request", "10.10.10.10", NULL,
              "10.10.10.10", NULL);
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    /* a page without a title where the control's has one: a different page */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON *titled = control(NULL, NULL, 1);
    cJSON_AddStringToObject(titled, "title", "Real Site");
    decide(tk, &c, titled, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    cJSON_Delete(tk);
    /* neither has one: the same */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    cJSON_Delete(titled);
    /* a different page than the control's, over plain HTTP */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddStringToObject(tk, "title", "Access denied");
    cJSON_AddStringToObject(ok, "title", "Welcome");
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    assert_false(confirmed(tk));
    cJSON_Delete(tk);
    cJSON_Delete(ok);
    cJSON_Delete(bad);
}

/* A request (or a redirect hop's) stored in requests: url, failure (NULL: none), a response's
 * code and Location (code 0: no response). */
static void add_request(cJSON *tk, const char *url, const char *failure, int code,
                        const char *location)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "request"), "url", url);
    if (failure)
        cJSON_AddStringToObject(r, "failure", failure);
    else
        cJSON_AddNullToObject(r, "failure");
    if (code) {
        cJSON *rs = cJSON_AddObjectToObject(r, "response");
        cJSON_AddNumberToObject(rs, "code", code);
        cJSON *h = cJSON_AddObjectToObject(rs, "headers");
        if (location) cJSON_AddStringToObject(h, "location", location);
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "requests"), r);
}

/* The request answered with a redirect to another host, whose name then did not resolve or whose
 * address refused (a censor's blockpage host: lab scenario 30), while the control loaded the page
 * without going there: http_blocking. A redirect the control followed too (the site's own, to
 * www.), or one within the same host, stays inconclusive. */
static void test_http_redirect_away(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    cJSON *ok = control(NULL, NULL, 1);
    add_request(ok, "http://t.example/", NULL, 200, NULL);
    /* the hop's name did not resolve: no request to it, the newest 3xx's Location says where */
    cJSON *tk = keys("http", "dns_nxdomain_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddNumberToObject(tk, "x_redirects", 1);
    add_request(tk, "http://t.example/", NULL, 302, "http://warning.isp.example/?u=t");
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "http");
    assert_non_null(strstr(s(tk, "verdict_reason"), "warning.isp.example"));
    /* without the control's page: nothing to compare with */
    decide(tk, &c, NULL, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    /* the hop's address refused: the failed request names it (newest first) */
    tk = keys("http", "connection_refused", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddNumberToObject(tk, "x_redirects", 1);
    add_request(tk, "http://192.0.2.7:81/blocked", "connection_refused", 0, NULL);
    add_request(tk, "http://t.example/", NULL, 302, "http://192.0.2.7:81/blocked");
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    cJSON_Delete(tk);
    /* the control was sent there too: the site's own redirect */
    tk = keys("http", "dns_nxdomain_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddNumberToObject(tk, "x_redirects", 1);
    add_request(tk, "http://t.example/", NULL, 301, "http://www.t.example/");
    cJSON *www = control(NULL, NULL, 1);
    add_request(www, "http://www.t.example/", NULL, 200, NULL);
    add_request(www, "http://t.example/", NULL, 301, "http://www.t.example/");
    decide(tk, &c, www, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    /* a relative Location: the same host, not a redirect away */
    tk = keys("http", "dns_nxdomain_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddNumberToObject(tk, "x_redirects", 1);
    add_request(tk, "http://t.example/", NULL, 302, "/login");
    decide(tk, &c, ok, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    cJSON_Delete(tk);
    cJSON_Delete(www);
    cJSON_Delete(ok);
}

/* Packet loss makes one connect or handshake time out (or a reset, EOF) while the control
 * connects and the SNI swap completes: when the same connect or handshake works when tried
 * again, that was a passing failure, not a block (lab scenario 19). A block fails again. */
static void test_repeat(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    cJSON *ok = control(NULL, NULL, 1), *sw_ok = swap(NULL);
    cJSON *tk = keys("tcp", "generic_timeout_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"),
                         connect_entry("10.10.10.10", 443, 0));
    decide_repeat(tk, &c, ok, NULL, NULL);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_string_equal(s(tk, "verdict_phase"), "tcp");
    decide_repeat(tk, &c, ok, NULL, "generic_timeout_error");
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    cJSON_Delete(tk);
    for (int i = 0; i < 3; i++) {
        const char *f[] = {"generic_timeout_error", "connection_reset", "eof_error"};
        tk = keys("tls", f[i], "10.10.10.10", NULL, "10.10.10.10", NULL);
        decide_repeat(tk, &c, ok, sw_ok, NULL);
        assert_string_equal(s(tk, "verdict"), "inconclusive");
        assert_string_equal(s(tk, "verdict_phase"), "tls");
        decide_repeat(tk, &c, ok, sw_ok, f[i]); /* SNI filtering: the same name fails again */
        assert_string_equal(s(tk, "verdict"), "tls_blocking");
        cJSON_Delete(tk);
    }
    /* a request cut after the handshake (a timeout, a reset) that works when asked again */
    tk = keys("http", "generic_timeout_error", "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide_repeat(tk, &c, ok, NULL, NULL);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_string_equal(s(tk, "verdict_phase"), "http");
    decide_repeat(tk, &c, ok, NULL, "connection_reset");
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    cJSON_Delete(tk);
    /* a reset that a write met after a read took it: the write's EPIPE (lab scenario 28) */
    tk = keys("http", "broken_pipe", "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide_repeat(tk, &c, ok, NULL, NULL);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    decide_repeat(tk, &c, ok, NULL, "broken_pipe");
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "http");
    cJSON_Delete(tk);
    /* an untrusted certificate is the interceptor's answer, not a passing failure */
    tk = keys("tls", "ssl_unknown_authority", "10.10.10.10", NULL, "10.10.10.10", NULL);
    decide_repeat(tk, &c, ok, NULL, NULL);
    assert_string_equal(s(tk, "verdict"), "tls_blocking");
    cJSON_Delete(tk);
    cJSON_Delete(ok);
    cJSON_Delete(sw_ok);
}

/* decide() with repeats listed: fails[i] the i-th repeat's failure, NULL when it worked. */
static void decide_repeats(cJSON *tk, const cJSON *ctl, const cJSON *swap, int n,
                           const char *const *fails)
{
    vt_verdict_ctx c = canaries_ok();
    decide_repeat_list(tk, &c, ctl, swap, fails[0], n, fails);
}

static int intermittent(const cJSON *tk)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "intermittent"));
}

/* One case of test_repeat_intermittent: the verdict, a phrase of its reason (NULL: none) and
 * evidence.intermittent. */
static void expect_repeats(cJSON *tk, const cJSON *ctl, const cJSON *swap, int n,
                           const char *const *fails, const char *verdict, const char *phrase,
                           int want_intermittent)
{
    decide_repeats(tk, ctl, swap, n, fails);
    assert_string_equal(s(tk, "verdict"), verdict);
    if (phrase) assert_non_null(strstr(s(tk, "verdict_reason"), phrase));
    assert_int_equal(intermittent(tk), want_intermittent);
}

/* A censor that lets a share of connections through (lab scenario 38): the repeats after a
 * failed handshake, connect or request work, then fail again. That is a failure that repeats,
 * decided as one (blocking with the control connecting, down without), and said to be
 * intermittent; repeats that all work are a passing failure, whatever their number. */
static void test_repeat_intermittent(void **st)
{
    (void)st;
    cJSON *ok = control(NULL, NULL, 1), *sw_ok = swap(NULL);
    cJSON *down = control("tls", "connection_reset", 1);
    const char *mixed[] = {NULL, NULL, "connection_reset"};
    const char *clean[] = {NULL, NULL, NULL, NULL};
    const char *again[] = {"connection_reset"};

    cJSON *tk = keys("tls", "connection_reset", "10.10.10.10", NULL, "10.10.10.10", NULL);
    expect_repeats(tk, ok, sw_ok, 3, mixed, "tls_blocking", "2 of 4 attempts failed", 1);
    assert_string_equal(s(tk, "verdict_phase"), "tls");
    assert_non_null(strstr(s(tk, "verdict_reason"), "intermittent"));
    /* all four repeats worked: a passing failure */
    expect_repeats(tk, ok, sw_ok, 4, clean, "inconclusive", "4 times in a row", 0);
    /* the first repeat failed: a block, as before, not called intermittent */
    expect_repeats(tk, ok, sw_ok, 1, again, "tls_blocking", NULL, 0);
    assert_null(strstr(s(tk, "verdict_reason"), "intermittent"));
    /* failing from the control too: down, and the failure comes and goes */
    expect_repeats(tk, down, NULL, 3, mixed, "down", "comes and goes", 1);
    /* no control: still inconclusive, with the pattern said */
    expect_repeats(tk, NULL, NULL, 3, mixed, "inconclusive", "2 of 4 attempts failed", 1);
    cJSON_Delete(tk);

    /* the tcp phase the same way */
    tk = keys("tcp", "connection_refused", "10.10.10.10", NULL, "10.10.10.10", NULL);
    cJSON_AddItemToArray(cJSON_GetObjectItem(tk, "tcp_connect"),
                         connect_entry("10.10.10.10", 443, 0));
    const char *tcp_mixed[] = {NULL, "connection_refused"};
    expect_repeats(tk, ok, NULL, 2, tcp_mixed, "tcp_blocking", "2 of 3 attempts failed", 1);
    cJSON_Delete(tk);

    /* and a request (the http phase) */
    tk = keys("http", "connection_reset", "10.10.10.10", NULL, "10.10.10.10", NULL);
    expect_repeats(tk, ok, NULL, 3, mixed, "http_blocking", "2 of 4 attempts failed", 1);
    expect_repeats(tk, ok, NULL, 4, clean, "inconclusive", "tried again", 0);
    assert_string_equal(s(tk, "verdict_phase"), "http");
    cJSON_Delete(tk);

    /* a hostile list (empty strings, numbers, thousands of entries) is counted, not trusted */
    tk = keys("tls", "connection_reset", "10.10.10.10", NULL, "10.10.10.10", NULL);
    vt_verdict_ctx c = canaries_ok();
    cJSON *rp = cJSON_CreateObject();
    cJSON_AddNullToObject(rp, "failure");
    cJSON *l = cJSON_AddArrayToObject(rp, "failures");
    for (int i = 0; i < 5000; i++)
        cJSON_AddItemToArray(l, i % 2 ? cJSON_CreateNumber(i) : cJSON_CreateString(""));
    vt_verdict_inputs in = {.ctx = &c, .host = "t.example", .https = 1, .repeat = rp,
                            .control = ok, .probe_cc = "ZZ"};
    vt_verdict_decide(tk, &in);
    assert_string_equal(s(tk, "verdict"), "inconclusive"); /* no failure in it: passing */
    assert_false(intermittent(tk));
    cJSON_Delete(rp);
    cJSON_Delete(tk);
    cJSON_Delete(ok);
    cJSON_Delete(down);
    cJSON_Delete(sw_ok);
}

static void add_large(cJSON *tk, double bytes, double bps, const char *failure)
{
    cJSON *x = cJSON_AddObjectToObject(tk, "x_large_resource");
    cJSON_AddNumberToObject(x, "bytes_received", bytes);
    if (bps > 0)
        cJSON_AddNumberToObject(x, "throughput_bps", bps);
    else
        cJSON_AddNullToObject(x, "throughput_bps");
    if (failure) cJSON_AddStringToObject(x, "failure", failure);
    cJSON_AddNumberToObject(x, "x_http_runtime", 8e9);
}

static void test_throttled(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 125000, NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    assert_string_equal(s(tk, "verdict_phase"), "http");
    cJSON_Delete(tk);
    /* the canary is as slow: ok */
    c.canary_bps = 200000;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 125000, NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* slow relative to the canary but fast in absolute terms: ok */
    c.canary_bps = 900e6;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 4e6, 50e6, NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* the rate comes from the byte samples when there are some: the first sample's bytes (a
     * whole TLS record at once) are left out */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 176000, NULL);
    cJSON *rq = cJSON_CreateObject();
    cJSON_AddNumberToObject(rq, "transaction_id", 5);
    cJSON_AddItemToArray(
        cJSON_AddArrayToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "requests"), rq);
    cJSON *evs = cJSON_AddArrayToObject(tk, "network_events");
    const double samples[][3] = {
        {4, 0.5, 900}, {5, 1.0, 16384}, {5, 2.0, 32768}, {5, 3.0, 49152}, {5, 4.1, 65536}};
    for (size_t i = 0; i < 5; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "operation", "bytes_received_cumulative");
        cJSON_AddNumberToObject(e, "transaction_id", samples[i][0]);
        cJSON_AddNumberToObject(e, "t", samples[i][1]);
        cJSON_AddNumberToObject(e, "num_bytes", samples[i][2]);
        cJSON_AddItemToArray(evs, e);
    }
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    double r =
        cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "throughput_bps")->valuedouble;
    assert_true(r > 126000 && r < 127500); /* 49152 bytes in 3.1 s */
    /* the same download reached through a redirect: requests are newest first, so the 3xx
     * (transaction 4, one small sample) comes after the final request and is not the rate */
    cJSON *x = cJSON_GetObjectItem(tk, "x_large_resource");
    cJSON *hop = cJSON_CreateObject();
    cJSON_AddNumberToObject(hop, "transaction_id", 4);
    cJSON_AddItemToArray(cJSON_GetObjectItem(x, "requests"), hop);
    /* and a summary rate that is not slow: only the final request's samples say throttled */
    cJSON_ReplaceItemInObject(x, "throughput_bps", cJSON_CreateNumber(5e6));
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
    /* Samples whose slope spans under 16 KiB (one large first delivery, then 3 kB): too little
     * to measure a rate, and the summary rate is not used instead. */
    c.canary_bps = 900e6;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 17000, 240000, NULL);
    rq = cJSON_CreateObject();
    cJSON_AddNumberToObject(rq, "transaction_id", 5);
    cJSON_AddItemToArray(
        cJSON_AddArrayToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "requests"), rq);
    evs = cJSON_AddArrayToObject(tk, "network_events");
    const double short_samples[][2] = {{1.0, 14000}, {1.1, 17000}};
    for (size_t i = 0; i < 2; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "operation", "bytes_received_cumulative");
        cJSON_AddNumberToObject(e, "transaction_id", 5);
        cJSON_AddNumberToObject(e, "t", short_samples[i][0]);
        cJSON_AddNumberToObject(e, "num_bytes", short_samples[i][1]);
        cJSON_AddItemToArray(evs, e);
    }
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* a download cut by the timeout still has a rate: 80 kB in 8 s */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 80000, 0, "generic_timeout_error");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
}

/* x_dns_injection: what the address without a DNS server answered for t.example (ip NULL:
 * nothing, a timeout). */
static void add_injection(cJSON *tk, const char *ip)
{
    cJSON *x = cJSON_AddObjectToObject(tk, "x_dns_injection");
    cJSON *q = query("t.example", "udp", ip ? NULL : "generic_timeout_error", ip);
    cJSON_AddStringToObject(q, "resolver_address", "192.0.2.7:53");
    cJSON_AddItemToObject(x, "query", q);
}

/* The DNS injection check: a forged answer from where no DNS server runs, which the network's
 * resolver gave too, makes a failed target dns_blocking, whatever failed after; nothing else
 * does. */
static void test_dns_injection_check(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    /* the forged address is a real server with another name's certificate; both local
     * resolvers poisoned, no control */
    cJSON *tk = keys("tls", "ssl_invalid_hostname", "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, "10.10.10.99");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "dns");
    assert_true(strstr(s(tk, "verdict_reason"), "192.0.2.7:53") != NULL);
    const cJSON *di = cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "dns_injection");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(di, "answers"), 0)->valuestring,
                        "10.10.10.99");
    cJSON_Delete(tk);
    /* nothing answered there: not this rule's (the same failure stays a TLS matter) */
    tk = keys("tls", "ssl_invalid_hostname", "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, NULL);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "dns_blocking");
    di = cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "dns_injection");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(di, "answers")), 0);
    cJSON_Delete(tk);
    /* an answer the control gives too: a real resolver runs there, no forgery */
    tk = keys("tls", "ssl_invalid_hostname", "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, "10.10.10.99");
    cJSON *ctl = keys(NULL, NULL, "10.10.10.99", NULL, NULL, NULL);
    decide(tk, &c, ctl, NULL, NULL, 1);
    assert_true(strstr(s(tk, "verdict_reason"), "forged") == NULL);
    cJSON_Delete(ctl);
    cJSON_Delete(tk);
    /* the resolver gave another address than the forged one: its answers were not forged */
    tk = keys("tls", "ssl_invalid_hostname", "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_injection(tk, "10.10.10.99");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "dns_blocking");
    cJSON_Delete(tk);
    /* a random name asked there was answered too (NXDOMAIN): a transparent DNS proxy answers
     * everything on port 53, and its answer for the target proves nothing */
    tk = keys("tls", "ssl_invalid_hostname", "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, "10.10.10.99");
    cJSON *u = query("vt-0011223344556677.example.com", "udp", "dns_nxdomain_error", NULL);
    cJSON_AddNumberToObject(u, "rcode", 3);
    cJSON_AddItemToObject(cJSON_GetObjectItem(tk, "x_dns_injection"), "unlisted_query", u);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "dns_blocking");
    di = cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "dns_injection");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(di, "intercepted")));
    cJSON_Delete(tk);
    /* the random name unanswered (timed out, rcode null): the forgery stands */
    tk = keys("tls", "ssl_invalid_hostname", "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, "10.10.10.99");
    u = query("vt-0011223344556677.example.com", "udp", "generic_timeout_error", NULL);
    cJSON_AddNullToObject(u, "rcode");
    cJSON_AddItemToObject(cJSON_GetObjectItem(tk, "x_dns_injection"), "unlisted_query", u);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    di = cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "dns_injection");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(di, "intercepted")));
    cJSON_Delete(tk);
    /* an HTTPS target worked on the address (its certificate is the site's): no victim */
    tk = keys(NULL, NULL, "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, "10.10.10.99");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* a plain-HTTP page from the forged address proves nothing: dns_blocking */
    tk = keys(NULL, NULL, "10.10.10.99", NULL, "10.10.10.99", NULL);
    add_injection(tk, "10.10.10.99");
    decide(tk, &c, NULL, NULL, NULL, 0);
    assert_string_equal(s(tk, "verdict"), "dns_blocking");
    cJSON_Delete(tk);
}

/* One download of an SNI test pair: bytes, rate (0: null), failure, runtime (s); with byte
 * samples when samples > 0 (transaction 9, one per second, the first at full speed). */
static cJSON *sni_side(const char *sni, double bytes, double bps, const char *failure, double rt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sni", sni);
    if (failure)
        cJSON_AddStringToObject(o, "failure", failure);
    else
        cJSON_AddNullToObject(o, "failure");
    cJSON_AddNumberToObject(o, "bytes_received", bytes);
    if (bps > 0)
        cJSON_AddNumberToObject(o, "throughput_bps", bps);
    else
        cJSON_AddNullToObject(o, "throughput_bps");
    cJSON_AddNumberToObject(o, "x_http_runtime", rt * 1e9);
    cJSON_AddArrayToObject(o, "network_events");
    return o;
}

/* x_sni_test with a first pair (named, neutral rates) and, when repeat_named > 0, a repeated
 * one; 64 KiB each. */
static void add_sni_test(cJSON *tk, double named, double neutral, double repeat_named,
                         double repeat_neutral)
{
    cJSON *x = cJSON_AddObjectToObject(tk, "x_sni_test");
    cJSON_AddStringToObject(x, "endpoint", "192.0.2.1:443");
    cJSON_AddItemToObject(x, "target", sni_side("t.example", 65536, named, NULL, 1));
    cJSON_AddItemToObject(x, "control", sni_side("example.com", 65536, neutral, NULL, 1));
    if (repeat_named > 0) {
        cJSON *r = cJSON_AddObjectToObject(x, "repeat");
        cJSON_AddItemToObject(r, "target", sni_side("t.example", 65536, repeat_named, NULL, 1));
        cJSON_AddItemToObject(r, "control",
                              sni_side("example.com", 65536, repeat_neutral, NULL, 1));
    } else {
        cJSON_AddNullToObject(x, "repeat");
    }
}

static const cJSON *sni_ev(const cJSON *tk, const char *k)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "sni_test"),
                               k);
}

/* The SNI test (a collector's server, the target's name and a neutral one at once): throttled
 * only when the named download was far slower twice; a target with no large resource. */
static void test_throttled_by_sni_test(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    /* 130 kbit/s named, 20 Mbit/s neutral, and again: throttled, in the TLS phase */
    cJSON *tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 130e3, 20e6, 128e3, 25e6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    assert_string_equal(s(tk, "verdict_phase"), "tls");
    assert_true(strstr(s(tk, "verdict_reason"), "130 kbit/s") != NULL);
    assert_int_equal((long)cJSON_GetNumberValue(sni_ev(tk, "named_bps")), 130000);
    assert_int_equal((long)cJSON_GetNumberValue(sni_ev(tk, "neutral_bps")), 20000000);
    assert_true(cJSON_IsTrue(sni_ev(tk, "slowed_twice")));
    cJSON_Delete(tk);
    /* the first pair alone (no repeat: the task's time ran out): not enough */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 130e3, 20e6, 0, 0);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    assert_true(cJSON_IsFalse(sni_ev(tk, "slowed_twice")));
    cJSON_Delete(tk);
    /* the repeat ran at the neutral one's pace (a loss stalled the first): ok */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 130e3, 20e6, 15e6, 20e6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* slowed twice, but at 130 and 40 kbit/s: no policer's steady rate (a starved flow) */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 130e3, 20e6, 40e3, 20e6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* a shared slow link: half each, twice: ok */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 500e3, 1e6, 400e3, 1.1e6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* far slower, but 3 Mbit/s: a slow path is not a policer */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 3e6, 100e6, 3e6, 100e6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* a named download cut by the time limit still has a rate: 96 KiB in 6 s, no summary
     * rate and no samples: bytes over the time */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 0, 20e6, 0, 0);
    cJSON *x = cJSON_GetObjectItem(tk, "x_sni_test");
    cJSON_ReplaceItemInObject(x, "target",
                              sni_side("t.example", 98304, 0, "generic_timeout_error", 6));
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "target", sni_side("t.example", 98304, 0, "generic_timeout_error", 6));
    cJSON_AddItemToObject(r, "control", sni_side("example.com", 131072, 30e6, NULL, 0.1));
    cJSON_ReplaceItemInObject(x, "repeat", r);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    assert_int_equal((long)cJSON_GetNumberValue(sni_ev(tk, "named_bps")), 131072);
    cJSON_Delete(tk);
    /* a named download reset after 8 KiB is no rate (SNI blocking is the handshake's rules) */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 0, 20e6, 0, 0);
    x = cJSON_GetObjectItem(tk, "x_sni_test");
    cJSON_ReplaceItemInObject(x, "target", sni_side("t.example", 8192, 0, "connection_reset", 1));
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "sni_test")));
    cJSON_Delete(tk);
    /* without canaries' rates too: the pair needs no reference site */
    vt_verdict_ctx c0 = canaries_ok();
    c0.canary_bps = 0;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_sni_test(tk, 130e3, 20e6, 128e3, 25e6);
    decide(tk, &c0, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
}

/* The target's download shared the link with other targets' downloads (x_concurrent_downloads,
 * their mean number while it ran), while the canary's ran alone: a slow link shared, not
 * throttling (lab scenario 18). */
static void test_throttled_shared_link(void **st)
{
    (void)st;
    vt_verdict_ctx c = canaries_ok();
    c.canary_bps = 2e6; /* a 2 Mbit/s home link, the canary alone on it */
    /* eight downloads at once: 250 kbit/s each, 1/8 of the canary's */
    cJSON *tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 250000, NULL);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "x_concurrent_downloads",
                            7.6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* the same rate with the link to itself: throttled */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 250000, NULL);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "x_concurrent_downloads",
                            1);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
    /* a policer at 128 kbit/s on a fast link is still throttling, shared or not */
    c.canary_bps = 50e6;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 128000, NULL);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "x_concurrent_downloads",
                            8);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
    /* four downloads held to 128 kbit/s each on a 2 Mbit/s link: together a quarter of it, the
     * link was not full, so sharing does not explain them: throttled */
    c.canary_bps = 2e6;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 128000, NULL);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "x_concurrent_downloads",
                            4);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
    /* TCP shares unevenly: one of eight downloads got 118 kbit/s while together they filled the
     * link (lab 18): the sum they received says the link was full, not throttled */
    c.canary_bps = 1.94e6;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 118000, NULL);
    cJSON *lr = cJSON_GetObjectItem(tk, "x_large_resource");
    cJSON_AddNumberToObject(lr, "x_concurrent_downloads", 7.2);
    cJSON_AddNumberToObject(lr, "x_concurrent_bps", 1.8e6);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    /* the same download while the others together carried a quarter of the link: throttled */
    cJSON_ReplaceItemInObject(lr, "x_concurrent_bps", cJSON_CreateNumber(0.5e6));
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
    /* a value below 1 (a hostile or broken file) counts as 1, not as a smaller share */
    c.canary_bps = 2e6;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 65536, 250000, NULL);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "x_concurrent_downloads",
                            0.01);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
}

/* The large resource's last request (transaction 5, t0..t1) and its byte samples {t, bytes}. */
static void add_large_samples(cJSON *tk, double t0, double t1, const double (*smp)[2], size_t n)
{
    cJSON *rq = cJSON_CreateObject();
    cJSON_AddNumberToObject(rq, "transaction_id", 5);
    cJSON_AddNumberToObject(rq, "t0", t0);
    cJSON_AddNumberToObject(rq, "t", t1);
    cJSON_AddItemToArray(
        cJSON_AddArrayToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "requests"), rq);
    cJSON *evs = cJSON_AddArrayToObject(tk, "network_events");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "operation", "bytes_received_cumulative");
        cJSON_AddNumberToObject(e, "transaction_id", 5);
        cJSON_AddNumberToObject(e, "t", smp[i][0]);
        cJSON_AddNumberToObject(e, "num_bytes", smp[i][1]);
        cJSON_AddItemToArray(evs, e);
    }
}

static void test_transfer_cut(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    /* 12 kB in the first 0.15 s, then silence until the timeout 3 s later (a TSPU-style freeze) */
    static const double frozen[][2] = {{0.30, 8000}, {0.35, 12000}, {3.2, 12000}}; /* end */
    cJSON *tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 12000, 0, "generic_timeout_error");
    add_large_samples(tk, 0.2, 3.2, frozen, 3);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "http_blocking");
    assert_string_equal(s(tk, "verdict_phase"), "http");
    assert_non_null(strstr(s(tk, "verdict_reason"), "12.0 kB"));
    cJSON_Delete(tk);
    /* the same without a canary's completed download to compare with: not called blocking */
    vt_verdict_ctx slow = c;
    slow.canary_bps = 0;
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 12000, 0, "generic_timeout_error");
    add_large_samples(tk, 0.2, 3.2, frozen, 3);
    decide(tk, &slow, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "http_blocking");
    cJSON_Delete(tk);
    /* a reset or an early EOF once bytes came: cut */
    const char *cuts[] = {"connection_reset", "eof_error"};
    for (size_t i = 0; i < 2; i++) {
        tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
        add_large(tk, 30000, 0, cuts[i]);
        decide(tk, &c, NULL, NULL, NULL, 1);
        assert_string_equal(s(tk, "verdict"), "http_blocking");
        cJSON_Delete(tk);
    }
    /* Nothing of the response ever came, the handshake done: the first TLS record (16 KiB) was
     * never complete when everything after the first 16 KB is dropped (lab scenario 16). */
    for (int handshake = 1; handshake >= 0; handshake--) {
        tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
        add_large(tk, 0, 0, "generic_timeout_error");
        cJSON *x = cJSON_GetObjectItem(tk, "x_large_resource");
        cJSON_AddStringToObject(x, "url", "https://target.example/large.bin");
        static const double end_only[][2] = {{9.2, 0}}; /* as the probe writes it */
        add_large_samples(tk, 0.2, 9.2, end_only, 1);
        cJSON *tim = cJSON_AddObjectToObject(
            cJSON_GetArrayItem(cJSON_GetObjectItem(x, "requests"), 0), "x_timings");
        cJSON_AddNumberToObject(tim, "connect", 0.001);
        if (handshake)
            cJSON_AddNumberToObject(tim, "appconnect", 0.004);
        else
            cJSON_AddNullToObject(tim, "appconnect"); /* a handshake that never ended */
        decide(tk, &c, NULL, NULL, NULL, 1);
        if (handshake) {
            assert_string_equal(s(tk, "verdict"), "http_blocking");
            assert_non_null(strstr(s(tk, "verdict_reason"), "0.0 kB of content"));
        } else {
            assert_string_not_equal(s(tk, "verdict"), "http_blocking");
        }
        cJSON_Delete(tk);
    }
    /* ... but not before the first byte (that is the connection's failure, not a cut) */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 0, 0, "connection_reset");
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    cJSON_Delete(tk);
    /* bytes until the end of a slow download: throttled, not cut */
    static const double slow_samples[][2] = {
        {0.3, 16384}, {1.3, 32768}, {2.3, 49152}, {3.1, 62000}};
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 62000, 0, "generic_timeout_error");
    add_large_samples(tk, 0.2, 3.2, slow_samples, 4);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "throttled");
    cJSON_Delete(tk);
    /* a pause under a second before a short timeout: not enough to call it cut */
    static const double pause[][2] = {{0.1, 9000}, {0.2, 12000}};
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 12000, 0, "generic_timeout_error");
    add_large_samples(tk, 0.0, 0.9, pause, 2);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "http_blocking");
    cJSON_Delete(tk);
    /* a download stopped at the probe's own cap is no cut */
    tk = keys(NULL, NULL, "10.10.10.10", NULL, "10.10.10.10", NULL);
    add_large(tk, 4194304, 0, "generic_timeout_error");
    cJSON_AddTrueToObject(cJSON_GetObjectItem(tk, "x_large_resource"), "download_capped");
    add_large_samples(tk, 0.2, 3.2, frozen, 3);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_not_equal(s(tk, "verdict"), "http_blocking");
    cJSON_Delete(tk);
}

static void test_cdn(void **st)
{
    vt_verdict_ctx c = canaries_ok();
    cJSON *tk = keys(NULL, NULL, "10.10.10.20", NULL, "10.10.10.10", NULL);
    add_tls(tk, "10.10.10.20:443", 1);
    decide(tk, &c, NULL, NULL, NULL, 1);
    assert_string_equal(s(tk, "verdict"), "ok");
    assert_string_equal(ev(tk, "dns_consistency"), "consistent_by_tls");
    cJSON_Delete(tk);
}

static void test_hostile(void **st)
{
    static const char *docs[] = {
        "{}",
        "{\"queries\":\"x\",\"failure_phase\":7,\"failure\":[1]}",
        "{\"queries\":[1,null,{\"hostname\":5}],\"requests\":[{\"response\":{\"body\":{}}}]}",
        "{\"queries\":[{\"hostname\":\"t.example\",\"engine\":\"system\",\"answers\":[{\"ipv4\":3}]"
        "}],"
        "\"failure_phase\":\"tls\",\"failure\":\"x\",\"tls_handshakes\":[{\"address\":\"[\"}]}",
        "{\"x_large_resource\":{\"bytes_received\":1e300,\"throughput_bps\":-1},"
        "\"requests\":[{\"response\":{\"body\":{\"format\":\"base64\",\"data\":\"!!!\"},"
        "\"headers_list\":[[1,2],\"x\",[\"a\"]]}}]}",
        "{\"failure_phase\":\"nonsense\",\"failure\":\"x\"}",
        "{\"failure_phase\":\"tcp\",\"failure\":\"x\",\"tcp_connect\":[1,{\"status\":3},"
        "{\"ip\":5,\"status\":{\"success\":false}},{\"ip\":\"10.10.10.10\",\"port\":\"x\","
        "\"status\":{\"success\":false,\"blocked\":[1]}}]}",
    };
    vt_fp_set fps;
    char err[256];
    vt_fp_init(&fps);
    assert_true(vt_fp_load_csv(&fps, FP_CSV, strlen(FP_CSV), "t.csv", err, sizeof(err)) > 0);
    vt_verdict_ctx c = canaries_ok();
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cJSON *tk = cJSON_Parse(docs[i]);
        cJSON *ctl = cJSON_Parse(docs[i]);
        assert_non_null(tk);
        decide(tk, &c, ctl, NULL, &fps, 1);
        decide(tk, NULL, NULL, tk, &fps, 0); /* twice: the keys are replaced, not doubled */
        assert_int_equal(cJSON_GetArraySize(tk) > 0, 1);
        cJSON_Delete(tk);
        cJSON_Delete(ctl);
    }
    vt_fp_free(&fps);
}

static void test_helpers(void **st)
{
    char h[256];
    int port, https;
    assert_int_equal(vt_verdict_endpoint_host("https://a.b:8443/x", h, sizeof(h), &port, &https),
                     0);
    assert_string_equal(h, "a.b");
    assert_int_equal(port, 8443);
    assert_int_equal(https, 1);
    assert_int_equal(vt_verdict_endpoint_host("http://u@a.b/x", h, sizeof(h), &port, &https), 0);
    assert_string_equal(h, "a.b");
    assert_int_equal(port, 80);
    assert_int_equal(https, 0);
    assert_int_equal(vt_verdict_endpoint_host("[::1]:443", h, sizeof(h), &port, NULL), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(vt_verdict_endpoint_host("e1.example:5222", h, sizeof(h), &port, NULL), 0);
    assert_string_equal(h, "e1.example");
    assert_int_equal(port, 5222);
    assert_int_equal(vt_verdict_endpoint_host("https://", h, sizeof(h), NULL, NULL), -1);
    assert_int_equal(vt_verdict_endpoint_host("[::1", h, sizeof(h), NULL, NULL), -1);
    assert_int_equal(vt_verdict_addr_class("127.0.0.1"), 1);
    assert_int_equal(vt_verdict_addr_class("0.0.0.0"), 1);
    assert_int_equal(vt_verdict_addr_class("169.254.1.1"), 1);
    assert_int_equal(vt_verdict_addr_class("10.1.2.3"), 2);
    assert_int_equal(vt_verdict_addr_class("172.20.0.1"), 2);
    assert_int_equal(vt_verdict_addr_class("172.32.0.1"), 0);
    assert_int_equal(vt_verdict_addr_class("100.64.0.1"), 2);
    assert_int_equal(vt_verdict_addr_class("203.82.48.83"), 0);
    assert_int_equal(vt_verdict_addr_class("::1"), 1);
    assert_int_equal(vt_verdict_addr_class("fe80::1"), 1);
    assert_int_equal(vt_verdict_addr_class("fd00::1"), 2);
    assert_int_equal(vt_verdict_addr_class("::ffff:127.0.0.1"), 1);
    assert_int_equal(vt_verdict_addr_class("2001:db8::1"), 0);
    assert_int_equal(vt_verdict_addr_class("not an ip"), 0);
}

static void test_note_canary(void **st)
{
    vt_verdict_ctx c;
    vt_verdict_ctx_init(&c);
    char *eps[] = {"https://canary.example/"};
    vt_target t = {.id = "c", .endpoints = eps, .n_endpoints = 1};
    t.options = cJSON_CreateObject();
    cJSON *bad = keys("tcp", "connection_refused", "10.0.0.1", NULL, NULL, NULL);
    vt_verdict_note_canary(&c, &t, bad);
    assert_int_equal(c.n_canaries, 1);
    assert_int_equal(c.n_canaries_ok, 0);
    assert_string_equal(c.swap_sni, "");
    cJSON *good = keys(NULL, NULL, "10.0.0.1", NULL, NULL, NULL);
    add_large(good, 1e6, 300e6, NULL);
    vt_verdict_note_canary(&c, &t, good);
    assert_int_equal(c.n_canaries_ok, 1);
    assert_string_equal(c.swap_sni, "canary.example");
    assert_true(c.canary_bps == 300e6);
    cJSON_Delete(bad);
    cJSON_Delete(good);
    cJSON_Delete(t.options);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_probe_offline),
        cmocka_unit_test(test_dns_nxdomain),
        cmocka_unit_test(test_dns_bogon),
        cmocka_unit_test(test_dns_failed_reference),
        cmocka_unit_test(test_dns_failure_wording),
        cmocka_unit_test(test_dns_resolver_unreachable),
        cmocka_unit_test(test_dns_injected_both),
        cmocka_unit_test(test_tcp_local_failures),
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_redirect_away),
        cmocka_unit_test(test_throttled),
        cmocka_unit_test(test_throttled_by_sni_test),
        cmocka_unit_test(test_dns_injection_check),
        cmocka_unit_test(test_throttled_shared_link),
        cmocka_unit_test(test_repeat),
        cmocka_unit_test(test_repeat_intermittent),
        cmocka_unit_test(test_dns_failed_then_answered),
        cmocka_unit_test(test_transfer_cut),
        cmocka_unit_test(test_cdn),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_note_canary),
        cmocka_unit_test(test_tcp_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
