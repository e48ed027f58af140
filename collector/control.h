/* POST /api/v1/control: one measurement from the collector's own network (OONI's test-helper
 * role), on the collector's loop with libvantage, bounded in concurrency and time. */
#ifndef VANTAGE_COLLECTOR_CONTROL_H
#define VANTAGE_COLLECTOR_CONTROL_H

#include <event2/http.h>
#include <stddef.h>
#include <stdint.h>

#include "vantage/loop.h"

typedef struct vt_control vt_control;
struct vt_api;

vt_control *vt_control_new(vt_loop *loop, int max_in_flight, int timeout_s, int allow_private,
                           char *err, size_t errlen);
/* Answers req now (4xx) or later from the loop (200 / 504); logs its request line. client: a
 * stand-in for the caller's address (vt_ratelimit_key; 0 unknown): one client holds at most
 * half of the max_in_flight slots (rounded up), so one cannot keep every other out. */
void vt_control_handle(vt_control *c, struct vt_api *a, struct evhttp_request *req,
                       const char *body, size_t len, double t0, uint64_t client);
/* Measurements still running (answered or not): shutdown waits for them. */
int vt_control_busy(const vt_control *c);
/* Answers 503 to every control request still in flight. */
void vt_control_shutdown(vt_control *c);
/* Connections to private addresses refused at connect time since start (rebinding, redirects). */
unsigned long vt_control_refused_connects(const vt_control *c);
void vt_control_free(vt_control *c);

/* 1 when addr (text IPv4/IPv6) is loopback, private, link-local, CGNAT, multicast, unspecified or
 * otherwise not a public destination. */
int vt_control_addr_private(const char *addr);

#endif
