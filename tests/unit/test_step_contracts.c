/* Contracts of the DNS and TLS steps that need no outside server: a lookup that fails before
 * anything is sent still answers from the loop (never from inside vt_dns_lookup), and a TLS
 * peer that reads the ClientHello and then closes (FIN) or resets (RST) is eof_error or
 * connection_reset, as OONI names them; a connect to a full backlog stalls into
 * generic_timeout_error, attributed to "connect". The peers are sockets on the test's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vantage/config.h"
#include "vantage/dns.h"
#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/tcp.h"
#include "vantage/tls.h"

/* ---- DNS ---- */

typedef struct dns_got {
    int calls;
    int in_lookup; /* set while vt_dns_lookup runs */
    int reentrant; /* a callback came from inside vt_dns_lookup */
    char failure[VT_FAILURE_MAX];
} dns_got;

static void on_query(const vt_dns_query *q, void *arg)
{
    dns_got *g = arg;
    g->calls++;
    if (g->in_lookup) g->reentrant = 1;
    snprintf(g->failure, sizeof(g->failure), "%s", q->failure);
}

static void lookup_bad_name(vt_dns *d, vt_loop *loop, const char *name)
{
    dns_got g;
    memset(&g, 0, sizeof(g));
    g.in_lookup = 1;
    int rc = vt_dns_lookup(d, name, VT_DNS_A, vt_now(), on_query, &g);
    g.in_lookup = 0;
    if (rc < 0) { /* refusing to start is allowed, as long as nothing was called */
        assert_int_equal(g.calls, 0);
        return;
    }
    assert_int_equal(g.reentrant, 0);
    assert_int_equal(g.calls, 0);
    vt_loop_run(loop);
    assert_int_equal(g.calls, 1);
    assert_true(g.failure[0] != 0);
}

static void dns_name_c_ares_refuses_answers_from_the_loop(void **state)
{
    (void)state;
    char err[256];
    char long_label[80];
    memset(long_label, 'x', 70);
    snprintf(long_label + 70, sizeof(long_label) - 70, ".test");
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.dns_timeout_ms = 300;
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    /* Port 9 on loopback: nothing answers, but these names are never sent. */
    vt_dns *d = vt_dns_new_udp(loop, &cfg, "127.0.0.1:9", err, sizeof(err));
    assert_non_null(d);
    lookup_bad_name(d, loop, "a..b.test");
    lookup_bad_name(d, loop, long_label);
    vt_dns_free(d);
    vt_loop_free(loop);
}

typedef struct dns_kept {
    int calls;
    char failure[VT_FAILURE_MAX];
    double t0, t;
    char *json;
} dns_kept;

static void keep_query(const vt_dns_query *q, void *arg)
{
    dns_kept *k = arg;
    k->calls++;
    snprintf(k->failure, sizeof(k->failure), "%s", q->failure);
    k->t0 = q->t0;
    k->t = q->t;
    cJSON *j = vt_dns_query_json(q);
    k->json = vt_json_print(j);
    cJSON_Delete(j);
}

static void dns_names_that_cannot_be_recorded_are_refused(void **state)
{
    (void)state;
    char err[256];
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    vt_dns *d = vt_dns_new_udp(loop, &cfg, "127.0.0.1:9", err, sizeof(err));
    assert_non_null(d);
    dns_got g;
    memset(&g, 0, sizeof(g));
    assert_int_equal(vt_dns_lookup(d, "\xff\xfe.test", VT_DNS_A, 0, on_query, &g), -1);
    assert_int_equal(vt_dns_lookup(d, "a b.test", VT_DNS_A, 0, on_query, &g), -1);
    assert_int_equal(vt_dns_lookup(d, "a\n.test", VT_DNS_A, 0, on_query, &g), -1);
    assert_int_equal(vt_dns_lookup(d, "", VT_DNS_A, 0, on_query, &g), -1);
    assert_int_equal(vt_dns_lookup(d, "x.test", 16 /* TXT */, 0, on_query, &g), -1);
    /* An internationalised name in UTF-8 is still asked for (then dropped by the free). */
    assert_int_equal(vt_dns_lookup(d, "\xd0\xbf\xd1\x80.test", VT_DNS_A, 0, on_query, &g), 0);
    vt_dns_free(d);
    vt_loop_run(loop);
    vt_loop_free(loop);
    assert_int_equal(g.calls, 0);
}

static void dns_silent_resolver_costs_about_the_configured_timeout(void **state)
{
    (void)state;
    char err[256], server[64];
    /* A UDP socket that never reads: the resolver that does not answer. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sin.sin_port));
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.dns_timeout_ms = 600;
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    vt_dns *d = vt_dns_new_udp(loop, &cfg, server, err, sizeof(err));
    assert_non_null(d);
    dns_kept k = {0};
    double start = vt_now();
    assert_int_equal(vt_dns_lookup(d, "silent.test", VT_DNS_A, start, keep_query, &k), 0);
    vt_loop_run(loop);
    double took = vt_now() - start;
    vt_dns_free(d);
    vt_loop_free(loop);
    close(fd);
    assert_int_equal(k.calls, 1);
    assert_string_equal(k.failure, "generic_timeout_error");
    /* The configured 600 ms, not c-ares' default of seconds; the margin above is for a busy,
     * sanitized CI machine. */
    assert_true(took >= 0.5 && took < 1.5);
    assert_non_null(strstr(k.json, "\"engine\":\"udp\""));
    assert_non_null(strstr(k.json, "\"rcode\":null"));
    assert_non_null(strstr(k.json, "\"answers\":[]"));
    assert_non_null(strstr(k.json, server));
    free(k.json);
}

static void dns_ip_literal_is_answered_without_a_resolver(void **state)
{
    (void)state;
    char err[256];
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    vt_dns *d = vt_dns_new_udp(loop, &cfg, "127.0.0.1:9", err, sizeof(err));
    assert_non_null(d);
    dns_kept a = {0}, aaaa = {0}, six = {0};
    double t_base = vt_now();
    assert_int_equal(vt_dns_lookup(d, "192.0.2.7", VT_DNS_A, t_base, keep_query, &a), 0);
    assert_int_equal(vt_dns_lookup(d, "192.0.2.7", VT_DNS_AAAA, t_base, keep_query, &aaaa), 0);
    assert_int_equal(vt_dns_lookup(d, "2001:db8::7", VT_DNS_AAAA, t_base, keep_query, &six), 0);
    assert_int_equal(a.calls + aaaa.calls + six.calls, 0);
    vt_loop_run(loop);
    vt_dns_free(d);
    vt_loop_free(loop);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.failure, "");
    assert_non_null(strstr(a.json, "\"answers\":[{\"asn\":0,\"as_org_name\":\"\","
                                   "\"answer_type\":\"A\",\"ipv4\":\"192.0.2.7\""));
    /* No resolver was asked: the verdicts must not take this for a resolver's view. */
    assert_non_null(strstr(a.json, "\"engine\":null"));
    assert_non_null(strstr(a.json, "\"rcode\":null"));
    assert_non_null(strstr(a.json, "\"resolver_address\":\"\""));
    assert_string_equal(aaaa.failure, "dns_no_answer");
    assert_non_null(strstr(six.json, "\"ipv6\":\"2001:db8::7\""));
    free(a.json);
    free(aaaa.json);
    free(six.json);
}

/* ---- TLS against a peer on the same loop ---- */

enum { PEER_FIN, PEER_RST };

typedef struct peer {
    vt_loop *loop;
    int how;
    int lfd, cfd;
    struct event *lev, *cev;
    size_t got; /* bytes of ClientHello read */
} peer;

static void on_peer_data(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    peer *p = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) p->got += (size_t)n;
    if (p->got < 5 && n > 0) return; /* wait for at least a record header */
    if (p->how == PEER_RST) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    event_free(p->cev);
    p->cev = NULL;
    close(fd);
    p->cfd = -1;
}

static void on_peer_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    peer *p = arg;
    p->cfd = accept(fd, NULL, NULL);
    event_free(p->lev);
    p->lev = NULL;
    if (p->cfd < 0) return;
    p->cev = event_new(vt_loop_base(p->loop), p->cfd, EV_READ | EV_PERSIST, on_peer_data, p);
    event_add(p->cev, NULL);
}

static int peer_start(peer *p, vt_loop *loop, int how)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->how = how;
    p->cfd = -1;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sin, &len), 0);
    p->lev = event_new(vt_loop_base(loop), p->lfd, EV_READ, on_peer_accept, p);
    event_add(p->lev, NULL);
    return ntohs(sin.sin_port);
}

static void peer_stop(peer *p)
{
    if (p->lev) event_free(p->lev);
    if (p->cev) event_free(p->cev);
    if (p->cfd >= 0) close(p->cfd);
    close(p->lfd);
}

typedef struct tls_got {
    int calls;
    char failure[VT_FAILURE_MAX];
    char failed_operation[32];
    char tcp_failure[VT_FAILURE_MAX];
    double t0, t;
} tls_got;

static void on_tls(const vt_tls_result *r, void *arg)
{
    tls_got *g = arg;
    g->calls++;
    snprintf(g->failure, sizeof(g->failure), "%s", r->failure);
    snprintf(g->failed_operation, sizeof(g->failed_operation), "%s",
             r->failed_operation ? r->failed_operation : "");
    snprintf(g->tcp_failure, sizeof(g->tcp_failure), "%s", r->tcp.failure);
    g->t0 = r->t0;
    g->t = r->t;
}

static void handshake_against(int how, tls_got *g)
{
    char err[256];
    memset(g, 0, sizeof(*g));
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    vt_tls_ctx *ctx = vt_tls_ctx_new(NULL, err, sizeof(err));
    assert_non_null(ctx);
    peer p;
    int port = peer_start(&p, loop, how);
    vt_tls_opts o = {.ip = "127.0.0.1",
                     .port = port,
                     .sni = "fin.test",
                     .connect_timeout_ms = 2000,
                     .tls_timeout_ms = 2000,
                     .t_base = vt_now()};
    assert_int_equal(vt_tls_handshake(loop, ctx, &o, on_tls, g), 0);
    double start = vt_now();
    vt_loop_run(loop);
    assert_true(vt_now() - start < 1.5); /* decided by the peer, not by the timeout */
    assert_true(p.got >= 5);             /* the ClientHello reached the peer */
    peer_stop(&p);
    vt_tls_ctx_free(ctx);
    vt_loop_free(loop);
    assert_int_equal(g->calls, 1);
    assert_string_equal(g->tcp_failure, "");
    assert_string_equal(g->failed_operation, "tls_handshake_done");
    assert_true(g->t0 <= g->t);
}

static void tls_peer_closing_after_client_hello_is_eof_error(void **state)
{
    (void)state;
    tls_got g;
    handshake_against(PEER_FIN, &g);
    assert_string_equal(g.failure, "eof_error");
}

static void tls_peer_resetting_after_client_hello_is_connection_reset(void **state)
{
    (void)state;
    tls_got g;
    handshake_against(PEER_RST, &g);
    assert_string_equal(g.failure, "connection_reset");
}

static void on_tcp(const vt_tcp_result *r, int fd, void *arg)
{
    int *out = arg;
    *out = r->failure[0] ? -1 : 1;
    if (fd >= 0) close(fd);
}

static void steps_refuse_missing_arguments_and_take_0_as_the_default_timeout(void **state)
{
    (void)state;
    char err[256];
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    vt_tls_ctx *ctx = vt_tls_ctx_new(NULL, err, sizeof(err));
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    int port = ntohs(sin.sin_port), result = 0;
    assert_int_equal(vt_tcp_connect(loop, NULL, port, 1000, 0, on_tcp, &result), -1);
    assert_int_equal(vt_tcp_connect(loop, "127.0.0.1", port, 1000, 0, NULL, &result), -1);
    assert_int_equal(vt_tcp_connect(loop, "127.0.0.1", 0, 1000, 0, on_tcp, &result), -1);
    assert_int_equal(vt_tcp_connect(loop, "not-an-ip", port, 1000, 0, on_tcp, &result), -1);
    vt_tls_opts o = {.ip = "127.0.0.1", .port = port};
    assert_int_equal(vt_tls_handshake(loop, NULL, &o, on_tls, NULL), -1);
    assert_int_equal(vt_tls_handshake(loop, ctx, NULL, on_tls, NULL), -1);
    assert_int_equal(vt_dns_lookup(NULL, "x.test", VT_DNS_A, 0, on_query, NULL), -1);
    /* timeout 0: the default, not an instant timeout */
    assert_int_equal(vt_tcp_connect(loop, "127.0.0.1", port, 0, vt_now(), on_tcp, &result), 0);
    vt_loop_run(loop);
    assert_int_equal(result, 1);
    close(lfd);
    vt_tls_ctx_free(ctx);
    vt_loop_free(loop);
}

/* A listener with backlog 0 and one connection waiting in its queue: the kernel drops further
 * SYNs, so a connect to it stalls, even on loopback and without root. */
static int full_listener(int *filler, int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    *filler = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *port = ntohs(sin.sin_port);
    return lfd;
}

typedef struct tcp_kept {
    int calls;
    char failure[VT_FAILURE_MAX];
    double t0, t;
    char *json;
} tcp_kept;

static void keep_tcp(const vt_tcp_result *r, int fd, void *arg)
{
    tcp_kept *k = arg;
    k->calls++;
    snprintf(k->failure, sizeof(k->failure), "%s", r->failure);
    k->t0 = r->t0;
    k->t = r->t;
    cJSON *j = vt_tcp_result_json(r);
    k->json = vt_json_print(j);
    cJSON_Delete(j);
    if (fd >= 0) close(fd);
}

static void tcp_connect_that_stalls_is_a_timeout(void **state)
{
    (void)state;
    char err[256];
    int filler, port;
    int lfd = full_listener(&filler, &port);
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    tcp_kept k = {0};
    double start = vt_now();
    assert_int_equal(vt_tcp_connect(loop, "127.0.0.1", port, 300, start, keep_tcp, &k), 0);
    vt_loop_run(loop);
    vt_loop_free(loop);
    close(filler);
    close(lfd);
    assert_int_equal(k.calls, 1);
    assert_string_equal(k.failure, "generic_timeout_error");
    assert_true(k.t - k.t0 >= 0.29 && k.t - k.t0 < 1.0);
    assert_non_null(strstr(
        k.json,
        "\"status\":{\"success\":false,\"failure\":\"generic_timeout_error\",\"blocked\":null}"));
    assert_non_null(strstr(k.json, "\"ip\":\"127.0.0.1\""));
    free(k.json);
}

static void tls_connect_that_stalls_is_attributed_to_connect(void **state)
{
    (void)state;
    char err[256];
    int filler, port;
    int lfd = full_listener(&filler, &port);
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    vt_tls_ctx *ctx = vt_tls_ctx_new(NULL, err, sizeof(err));
    tls_got g;
    memset(&g, 0, sizeof(g));
    vt_tls_opts o = {.ip = "127.0.0.1",
                     .port = port,
                     .sni = "stall.test",
                     .connect_timeout_ms = 300,
                     .tls_timeout_ms = 5000,
                     .t_base = vt_now()};
    assert_int_equal(vt_tls_handshake(loop, ctx, &o, on_tls, &g), 0);
    vt_loop_run(loop);
    vt_tls_ctx_free(ctx);
    vt_loop_free(loop);
    close(filler);
    close(lfd);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.failure, "generic_timeout_error");
    assert_string_equal(g.tcp_failure, "generic_timeout_error");
    assert_string_equal(g.failed_operation, "connect");
    assert_true(g.t - g.t0 < 1.0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dns_name_c_ares_refuses_answers_from_the_loop),
        cmocka_unit_test(dns_names_that_cannot_be_recorded_are_refused),
        cmocka_unit_test(dns_silent_resolver_costs_about_the_configured_timeout),
        cmocka_unit_test(dns_ip_literal_is_answered_without_a_resolver),
        cmocka_unit_test(tls_peer_closing_after_client_hello_is_eof_error),
        cmocka_unit_test(tls_peer_resetting_after_client_hello_is_connection_reset),
        cmocka_unit_test(steps_refuse_missing_arguments_and_take_0_as_the_default_timeout),
        cmocka_unit_test(tcp_connect_that_stalls_is_a_timeout),
        cmocka_unit_test(tls_connect_that_stalls_is_attributed_to_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
