/* UDP exchange step against servers on the same loop: answered, retransmitted, refused,
 * silent, flooded with garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vantage/udp.h"

typedef struct server {
    int fd, port;
    int mode; /* 0 echo, 1 answer only the 2nd datagram, 2 garbage x100, 3 silent */
    int seen;
    struct event *ev;
} server;

static void on_server(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    unsigned char buf[2048];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    if (n < 0) return;
    s->seen++;
    if (s->mode == 0 || (s->mode == 1 && s->seen == 2))
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    else if (s->mode == 2)
        for (int i = 0; i < 100; i++)
            sendto(fd, "garbage", 7, 0, (struct sockaddr *)&from, fl);
}

static void server_start(vt_loop *loop, server *s, int mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    s->mode = mode;
    s->seen = 0;
    s->ev = event_new(vt_loop_base(loop), s->fd, EV_READ | EV_PERSIST, on_server, s);
    event_add(s->ev, NULL);
}

static void server_stop(server *s)
{
    event_free(s->ev);
    close(s->fd);
}

typedef struct got {
    int calls;
    vt_udp_result r;
    vt_loop *loop;
} got;

static void on_done(const vt_udp_result *r, void *arg)
{
    got *g = arg;
    g->calls++;
    g->r = *r;
    if (g->loop) vt_loop_break(g->loop); /* the server's event would keep the loop running */
}

static int want_hello(const unsigned char *b, size_t n, void *arg, char *f, size_t fl)
{
    if (n == 5 && memcmp(b, "hello", 5) == 0) return VT_UDP_ACCEPT;
    snprintf(f, fl, "not_hello");
    return VT_UDP_IGNORE;
}

static void run(int mode, int port_override, vt_udp_check_fn check, got *g)
{
    char err[128];
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    server s;
    server_start(loop, &s, mode);
    int port = port_override ? port_override : s.port;
    if (port_override < 0) { /* a port nobody listens on: close ours first */
        port = s.port;
        server_stop(&s);
    }
    vt_udp_opts o = {.ip = "127.0.0.1",
                     .port = port,
                     .payload = (const unsigned char *)"hello",
                     .payload_len = 5,
                     .tries = 3,
                     .interval_ms = 150,
                     .check = check,
                     .t_base = vt_now()};
    memset(g, 0, sizeof(*g));
    g->loop = loop;
    assert_int_equal(vt_udp_exchange(loop, &o, on_done, g), 0);
    vt_loop_run(loop);
    if (port_override >= 0) server_stop(&s);
    vt_loop_free(loop);
    assert_int_equal(g->calls, 1);
}

static void echo_is_accepted_with_rtt(void **state)
{
    got g;
    run(0, 0, want_hello, &g);
    assert_string_equal(g.r.failure, "");
    assert_int_equal(g.r.sends, 1);
    assert_int_equal(g.r.replies, 1);
    assert_true(g.r.rtt >= 0 && g.r.rtt < 0.15);
    assert_int_equal(g.r.reply_len, 5);
}

static void lost_first_datagram_is_retransmitted(void **state)
{
    got g;
    run(1, 0, want_hello, &g);
    assert_string_equal(g.r.failure, "");
    assert_int_equal(g.r.sends, 2);
    assert_true(g.r.t >= 0.14);
    /* the reply may answer either send: no round trip is claimed (it was the time since the
     * last send, too short for a server that answered the first one late) */
    assert_true(g.r.rtt < 0);
}

static void closed_port_is_connection_refused(void **state)
{
    got g;
    run(0, -1, want_hello, &g);
    assert_string_equal(g.r.failure, "connection_refused");
    assert_true(g.r.rtt < 0);
}

static void silence_is_a_timeout_after_all_tries(void **state)
{
    got g;
    run(3, 0, want_hello, &g);
    assert_string_equal(g.r.failure, "generic_timeout_error");
    assert_int_equal(g.r.sends, 3);
    assert_int_equal(g.r.replies, 0);
    assert_true(g.r.t - g.r.t0 >= 0.44);
}

static void garbage_flood_fails_with_the_check_reason(void **state)
{
    got g;
    run(2, 0, want_hello, &g);
    assert_string_equal(g.r.failure, "not_hello");
    assert_true(g.r.replies <= VT_UDP_MAX_REPLIES);
    assert_true(g.r.replies >= 1);
}

static void bad_address_does_not_start(void **state)
{
    char err[128];
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    got g = {0};
    vt_udp_opts o = {.ip = "not-an-ip", .port = 53};
    assert_int_equal(vt_udp_exchange(loop, &o, on_done, &g), -1);
    o.ip = "127.0.0.1";
    o.port = 0;
    assert_int_equal(vt_udp_exchange(loop, &o, on_done, &g), -1);
    vt_loop_free(loop);
    assert_int_equal(g.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_is_accepted_with_rtt),
        cmocka_unit_test(lost_first_datagram_is_retransmitted),
        cmocka_unit_test(closed_port_is_connection_refused),
        cmocka_unit_test(silence_is_a_timeout_after_all_tries),
        cmocka_unit_test(garbage_flood_fails_with_the_check_reason),
        cmocka_unit_test(bad_address_does_not_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
