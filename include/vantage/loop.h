/* The one event loop of a process: a libevent event_base with c-ares channels and a libcurl
 * multi handle joined to it. Nothing that runs on it blocks. */
#ifndef VANTAGE_LOOP_H
#define VANTAGE_LOOP_H

#include <ares.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <sys/socket.h>

typedef struct vt_loop vt_loop;

/* Creates the loop (event_base, curl multi). Returns NULL and fills err on failure. */
vt_loop *vt_loop_new(char *err, size_t errlen);
/* Frees the loop. Channels and curl handles still attached are destroyed/removed first. */
void vt_loop_free(vt_loop *loop);
struct event_base *vt_loop_base(vt_loop *loop);
/* Runs until no events are pending or vt_loop_break is called. */
int vt_loop_run(vt_loop *loop);
void vt_loop_break(vt_loop *loop);

/* Creates a c-ares channel whose sockets and timeouts are driven by the loop.
 * servers: NULL for the system resolver (resolv.conf), else "IP[:PORT][,IP[:PORT]...]"
 * (IPv6 as "[addr]:port"). timeout_ms / tries: per-query timeout and attempts (0: defaults).
 * The channel belongs to the loop (freed with it); destroy earlier with vt_loop_ares_destroy,
 * also from inside one of the channel's own query callbacks (it is then freed once c-ares
 * returns). */
int vt_loop_ares_channel(vt_loop *loop, const char *servers, int timeout_ms, int tries,
                         int extra_flags, ares_channel *out, char *err, size_t errlen);
void vt_loop_ares_destroy(vt_loop *loop, ares_channel ch);
/* Re-arms the channel's timer from ares_timeout(); call after ares_query/ares_send. */
void vt_loop_ares_kick(vt_loop *loop, ares_channel ch);

/* Runs an easy handle on the loop's curl multi. done is called once, from the loop, with the
 * transfer's result; the easy handle is already removed from the multi then and belongs to the
 * caller again (who must curl_easy_cleanup it). */
typedef void (*vt_curl_done_fn)(CURL *easy, CURLcode result, void *arg);
int vt_loop_curl_add(vt_loop *loop, CURL *easy, vt_curl_done_fn done, void *arg);
/* Stops a transfer started with vt_loop_curl_add without calling its done callback. */
void vt_loop_curl_cancel(vt_loop *loop, CURL *easy);

/* A destination policy for every connection made on this loop: the TCP and UDP steps and every
 * libcurl transfer (through CURLOPT_OPENSOCKETFUNCTION, so redirects and re-resolved names are
 * covered too) ask it right before connecting. allowed returns non-zero to connect; a refused
 * connection fails with "permission_denied" (curl: its connect error) and no packet is sent.
 * NULL (the default) allows everything. The collector's control measurements use it to keep
 * to public addresses whatever DNS answers at measurement time (rebinding) or a redirect says. */
typedef int (*vt_loop_addr_policy)(const struct sockaddr *sa, void *arg);
void vt_loop_set_addr_policy(vt_loop *loop, vt_loop_addr_policy allowed, void *arg);
/* 1 when the loop's policy allows connecting to sa (always, without a policy). */
int vt_loop_addr_allowed(vt_loop *loop, const struct sockaddr *sa);

/* Monotonic clock in seconds. */
double vt_now(void);
/* Wall clock in seconds since the epoch. */
double vt_wall_now(void);

/* A one-shot timer helper: calls fn(arg) after ms milliseconds unless cancelled.
 * Returns an event to pass to vt_timer_cancel (which frees it), or NULL on failure. */
struct event *vt_timer_start(vt_loop *loop, int ms, void (*fn)(void *arg), void *arg);
void vt_timer_cancel(struct event *ev);

#endif
