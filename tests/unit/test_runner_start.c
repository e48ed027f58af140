/* vt_run_start: the runner on a loop its caller already runs (the collector's control). */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vantage/config.h"
#include "vantage/dns.h"
#include "vantage/loop.h"
#include "vantage/runner.h"
#include "vantage/targets.h"
#include "vantage/task.h"
#include "vantage/tls.h"

typedef struct seen {
    int results, done_calls;
    long produced;
    cJSON *last;
    int returned; /* vt_run_start has returned */
    int done_before_return;
} seen;

static void on_result(cJSON *m, const vt_target *t, void *arg)
{
    seen *s = arg;
    s->results++;
    cJSON_Delete(s->last);
    s->last = m;
}

static void on_done(long produced, void *arg)
{
    seen *s = arg;
    s->done_calls++;
    s->produced = produced;
    if (!s->returned) s->done_before_return = 1;
}

static void add_target(vt_target_list *l, const char *kind, const char *endpoint)
{
    char err[256];
    char json[512];
    snprintf(json, sizeof json,
             "{\"version\":1,\"targets\":[{\"id\":\"t%zu\",\"name\":\"T\",\"platform\":\"p\","
             "\"category\":"
             "\"social\",\"kind\":\"%s\",\"endpoints\":[\"%s\"]}]}",
             l->n, kind, endpoint);
    if (vt_targets_load_json(l, json, strlen(json), "test", err, sizeof err) < 0)
        fail_msg("%s", err);
}

/* A closed loopback port: connect fails at once with connection_refused. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void returns_at_once_and_reports_done_from_the_loop(void **state)
{
    char err[256];
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_env env = {.cfg = &cfg};
    env.loop = vt_loop_new(err, sizeof err);
    assert_non_null(env.loop);
    env.dns = vt_dns_new_system(env.loop, &cfg, err, sizeof err);
    assert_non_null(env.dns);
    env.tls = vt_tls_ctx_new(NULL, err, sizeof err);
    assert_non_null(env.tls);

    vt_target_list l;
    vt_targets_init(&l);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", closed_port());
    add_target(&l, "endpoint", ep);
    seen s = {0};
    vt_runner_hooks h = {.on_result = on_result, .arg = &s};
    assert_int_equal(vt_run_start(&env, &l, &h, on_done, &s, err, sizeof err), 0);
    s.returned = 1;
    assert_int_equal(s.done_calls, 0);
    vt_loop_run(env.loop);
    assert_int_equal(s.done_before_return, 0);
    assert_int_equal(s.done_calls, 1);
    assert_int_equal(s.produced, 1);
    assert_int_equal(s.results, 1);
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(s.last, "test_keys");
    assert_non_null(tk);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tk, "failure")->valuestring,
                        "connection_refused");
    cJSON_Delete(s.last);

    /* Nothing to measure: done still comes, from the loop, with 0. */
    vt_target_list empty;
    vt_targets_init(&empty);
    seen s2 = {0};
    vt_runner_hooks h2 = {.on_result = on_result, .arg = &s2};
    assert_int_equal(vt_run_start(&env, &empty, &h2, on_done, &s2, err, sizeof err), 0);
    s2.returned = 1;
    vt_loop_run(env.loop);
    assert_int_equal(s2.done_before_return, 0);
    assert_int_equal(s2.done_calls, 1);
    assert_int_equal(s2.produced, 0);

    vt_targets_free(&l);
    vt_tls_ctx_free(env.tls);
    vt_dns_free(env.dns);
    vt_loop_free(env.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(returns_at_once_and_reports_done_from_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
