/* The loop's destination policy (vt_loop_set_addr_policy): a refused destination gets no packet
 * from the TCP step, the UDP step or libcurl, and fails with a clear failure; an allowed one
 * connects as usual. Servers are sockets this test opens on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vantage/http.h"
#include "vantage/loop.h"
#include "vantage/tcp.h"
#include "vantage/udp.h"

typedef struct {
    int calls; /* policy consultations */
    int allow;
} policy;

static int decide(const struct sockaddr *sa, void *arg)
{
    policy *p = arg;
    p->calls++;
    assert_int_equal(sa->sa_family, AF_INET);
    return p->allow;
}

/* A non-blocking listening (or bound, for UDP) socket on 127.0.0.1; its port in *port. */
static int server(int type, int *port)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (type == SOCK_STREAM) assert_int_equal(listen(fd, 8), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* 1 when something reached the server: a pending connection or a datagram. */
static int reached(int fd, int type)
{
    if (type == SOCK_STREAM) {
        int c = accept(fd, NULL, NULL);
        if (c >= 0) close(c);
        return c >= 0;
    }
    char b[64];
    return recv(fd, b, sizeof b, 0) >= 0;
}

typedef struct {
    int called, fd;
    char failure[VT_FAILURE_MAX];
} tcp_out;

static void on_tcp(const vt_tcp_result *r, int fd, void *arg)
{
    tcp_out *o = arg;
    o->called++;
    o->fd = fd;
    snprintf(o->failure, sizeof o->failure, "%s", r->failure);
    if (fd >= 0) close(fd);
}

static void tcp_step_obeys_the_policy(void **state)
{
    (void)state;
    char err[256];
    for (int allow = 0; allow <= 1; allow++) {
        int port, srv = server(SOCK_STREAM, &port);
        vt_loop *loop = vt_loop_new(err, sizeof err);
        assert_non_null(loop);
        policy p = {0, allow};
        vt_loop_set_addr_policy(loop, decide, &p);
        tcp_out o = {0, -1, ""};
        assert_int_equal(vt_tcp_connect(loop, "127.0.0.1", port, 2000, vt_now(), on_tcp, &o), 0);
        vt_loop_run(loop);
        vt_loop_free(loop);
        assert_int_equal(o.called, 1);
        assert_int_equal(p.calls, 1);
        if (allow) {
            assert_string_equal(o.failure, "");
            assert_true(reached(srv, SOCK_STREAM));
        } else {
            assert_string_equal(o.failure, "permission_denied");
            assert_int_equal(o.fd, -1);
            assert_false(reached(srv, SOCK_STREAM));
        }
        close(srv);
    }
}

typedef struct {
    int called;
    char failure[VT_FAILURE_MAX];
    int sent;
} udp_out;

static void on_udp(const vt_udp_result *r, void *arg)
{
    udp_out *o = arg;
    o->called++;
    o->sent = r->sends;
    snprintf(o->failure, sizeof o->failure, "%s", r->failure);
}

static void udp_step_obeys_the_policy(void **state)
{
    (void)state;
    char err[256];
    for (int allow = 0; allow <= 1; allow++) {
        int port, srv = server(SOCK_DGRAM, &port);
        vt_loop *loop = vt_loop_new(err, sizeof err);
        assert_non_null(loop);
        policy p = {0, allow};
        vt_loop_set_addr_policy(loop, decide, &p);
        static const unsigned char hello[] = "hello";
        vt_udp_opts uo = {.ip = "127.0.0.1",
                          .port = port,
                          .payload = hello,
                          .payload_len = 5,
                          .tries = 1,
                          .interval_ms = 100,
                          .t_base = vt_now()};
        udp_out o = {0};
        assert_int_equal(vt_udp_exchange(loop, &uo, on_udp, &o), 0);
        vt_loop_run(loop);
        vt_loop_free(loop);
        assert_int_equal(o.called, 1);
        assert_int_equal(p.calls, 1);
        /* Nobody answers either way; what matters is whether the datagram left. */
        assert_int_equal(reached(srv, SOCK_DGRAM), allow);
        if (!allow) {
            assert_string_equal(o.failure, "permission_denied");
            assert_int_equal(o.sent, 0);
        }
        close(srv);
    }
}

typedef struct {
    int called;
    long status;
    char failure[VT_FAILURE_MAX];
} http_out;

static void on_http(vt_http_result *r, void *arg)
{
    http_out *o = arg;
    o->called++;
    o->status = r->status;
    snprintf(o->failure, sizeof o->failure, "%s", r->failure);
}

/* libcurl's connection goes through the policy too (CURLOPT_OPENSOCKETFUNCTION). */
static void curl_transfers_obey_the_policy(void **state)
{
    (void)state;
    char err[256], url[64];
    static const char *const loopback[] = {"127.0.0.1", NULL};
    for (int allow = 0; allow <= 1; allow++) {
        int port, srv = server(SOCK_STREAM, &port);
        snprintf(url, sizeof url, "http://policy.test:%d/", port);
        vt_loop *loop = vt_loop_new(err, sizeof err);
        assert_non_null(loop);
        policy p = {0, allow};
        vt_loop_set_addr_policy(loop, decide, &p);
        vt_http_opts ho = {0};
        ho.url = url;
        ho.addrs = loopback;
        /* Allowed, the server accepts but never answers: a timeout, after a connection. */
        ho.timeout_ms = 300;
        ho.max_body = 1024;
        ho.user_agent = "vantage-test/1";
        ho.t_base = vt_now();
        http_out o = {0};
        assert_int_equal(vt_http_request(loop, &ho, on_http, &o), 0);
        vt_loop_run(loop);
        vt_loop_free(loop);
        assert_int_equal(o.called, 1);
        assert_true(p.calls >= 1);
        assert_int_equal(o.status, 0);
        assert_string_not_equal(o.failure, "");
        assert_int_equal(reached(srv, SOCK_STREAM), allow);
        close(srv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_step_obeys_the_policy),
        cmocka_unit_test(udp_step_obeys_the_policy),
        cmocka_unit_test(curl_transfers_obey_the_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
