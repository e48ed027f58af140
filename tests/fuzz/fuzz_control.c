/* libFuzzer: POST /api/v1/control bodies (collector/control.c, compiled in): JSON, the input
 * URL or host:port, its host, the kind, the private-address check. The control object is shut
 * down first, so a valid request is answered 503 instead of measuring anything (no network).
 * The API's reply and log functions are stubs here that record the status. (POST
 * /api/v1/check-in reads no body: the address comes from the socket.) */
#include <event2/http.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control.h"

static int last_code;

void vt_api_reply_json(struct evhttp_request *req, int code, const char *json)
{
    (void)req;
    (void)json;
    last_code = code;
}

void vt_api_reply_error(struct evhttp_request *req, int code, const char *msg, int retry_after)
{
    (void)req;
    if (!msg || !*msg) abort();
    last_code = code;
}

void vt_api_log(vt_api *a, const char *method, const char *path, int status, double t0,
                const char *extra)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vt_loop *loop;
    static vt_control *c;
    if (!c) {
        char err[256];
        loop = vt_loop_new(err, sizeof(err));
        if (!loop) abort();
        c = vt_control_new(loop, 1, 5, 0, err, sizeof(err));
        if (!c) abort();
        vt_control_shutdown(c);
    }
    static char dummy;
    last_code = 0;
    vt_control_handle(c, NULL, (struct evhttp_request *)&dummy, (const char *)data, size, 0, 0);
    if (last_code != 400 && last_code != 503) abort(); /* every body answered, at once */
    if (vt_control_busy(c) != 0) abort();
    /* The address check on arbitrary text. */
    char addr[64];
    size_t n = size < sizeof(addr) - 1 ? size : sizeof(addr) - 1;
    memcpy(addr, data, n);
    addr[n] = 0;
    vt_control_addr_private(addr);
    return 0;
}
