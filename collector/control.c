/* Control measurements: placeholder until the web and endpoint kinds are registered. */
#include "control.h"

#include <stdlib.h>

#include "api.h"

struct vt_control {
    int unused;
};

vt_control *vt_control_new(vt_loop *loop, int max_in_flight, int timeout_s, int allow_private,
                           char *err, size_t errlen)
{
    return calloc(1, sizeof(vt_control));
}

void vt_control_handle(vt_control *c, struct vt_api *a, struct evhttp_request *req,
                       const char *body, size_t len, double t0)
{
    vt_api_reply_error(req, 501, "control measurements are not available yet", 0);
    vt_api_log(a, "POST", "/api/v1/control", 501, t0, "");
}

void vt_control_shutdown(vt_control *c) {}

void vt_control_free(vt_control *c)
{
    free(c);
}

int vt_control_addr_private(const char *addr)
{
    return 1;
}
