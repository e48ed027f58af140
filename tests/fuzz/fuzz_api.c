/* libFuzzer: whole HTTP requests to the collector's API (collector/api.c on evhttp, with a
 * SQLite store in a temporary directory): libevent's request parser, routing, upload with its
 * headers (token, Content-Encoding) and body, check-in, health, and the dashboard's query API
 * (collector/aggregate.c: query strings, dates, paging). Each input is sent on a fresh loopback
 * connection, the write side shut, and the loop run until the collector closes it.
 * Requests naming the control endpoint are skipped: a valid one would measure a public
 * destination (tests/fuzz/fuzz_control.c covers its bodies without the network). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "geoip.h"
#include "store.h"
#include "vantage/loop.h"

static vt_loop *loop;
static vt_api *api;
static vt_store *store;
static vt_geoip *geo;
static vt_proxies *proxies;
static int port;
static char dir[64];

static void cleanup(void)
{
    char p[128];
    if (api) vt_api_free(api);
    if (store) vt_store_close(store);
    if (geo) vt_geoip_free(geo);
    vt_proxies_free(proxies);
    if (loop) vt_loop_free(loop);
    snprintf(p, sizeof(p), "%s/c.db", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/c.db-wal", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/c.db-shm", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/c.db-journal", dir);
    unlink(p);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256], url[128];
    snprintf(dir, sizeof(dir), "/tmp/vt-fuzz-api-XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(url, sizeof(url), "sqlite:%s/c.db", dir);
    store = vt_store_open(url, err, sizeof(err));
    loop = vt_loop_new(err, sizeof(err));
    geo = vt_geoip_new();
    if (!store || !loop || !geo) {
        fprintf(stderr, "fuzz_api: %s\n", err);
        abort();
    }
    vt_api_opts o;
    vt_api_opts_default(&o);
    o.rate = 0;
    o.timeout_s = 2;
    /* The fuzzer's connections come from a trusted proxy: X-Forwarded-For headers in the
     * inputs are read (proxy.c). */
    proxies = vt_proxies_parse("127.0.0.1,10.0.0.0/8,::1", err, sizeof(err));
    if (!proxies) abort();
    o.proxies = proxies;
    api = vt_api_new(loop, store, geo, &o, err, sizeof(err));
    if (!api || vt_api_listen(api, "127.0.0.1:0", err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_api: %s\n", err);
        abort();
    }
    port = vt_api_port(api);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memmem(data, size, "control", 7)) return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) abort();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) abort();
    struct event_base *base = vt_loop_base(loop);
    size_t sent = 0;
    int shut = 0, closed = 0;
    char buf[65536];
    /* At most 20000 rounds (a few seconds): a connection the collector never closes is a bug
     * libFuzzer reports as a timeout. */
    for (int round = 0; round < 20000 && !closed; round++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (sent < size) {
            ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != ENOTCONN && errno != EINPROGRESS)
                sent = size; /* reset: stop sending */
        }
        if (sent == size && !shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != ENOTCONN)) closed = 1;
        if (r == -1 && errno == EAGAIN) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    close(fd);
    /* Let the collector see the close and free the connection. */
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
