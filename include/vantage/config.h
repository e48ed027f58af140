/* Run-time settings every measurement reads. Filled from defaults, the config file and flags. */
#ifndef VANTAGE_CONFIG_H
#define VANTAGE_CONFIG_H

#include <stddef.h>

#define VT_DEVICE_KEY_LEN 32
#define VT_DEVICE_HOUR_LEN 16

typedef struct vt_config {
    int concurrency;         /* measurements in flight at once (default 8) */
    int dns_timeout_ms;      /* per DNS query (default 5000) */
    int connect_timeout_ms;  /* per TCP connect (default 10000) */
    int tls_timeout_ms;      /* per TLS handshake (default 10000) */
    int http_timeout_ms;     /* per HTTP request including body (default 30000) */
    int max_addrs_per_family; /* TCP/TLS to at most this many addresses per family (default 2) */
    size_t max_body_bytes;   /* body kept for blockpage matching (default 64 KiB) */
    size_t max_download_bytes; /* bytes read from a large resource (default 4 MiB) */
    int max_redirects;       /* default 10 */
    int task_deadline_ms;    /* a web or endpoint measurement starts no step after this age and
                              * cuts the timeouts of the steps it starts to what is left
                              * (0: none, the default; the collector's control sets it) */
    const char *cacert;      /* CA bundle for TLS/HTTPS verification, NULL: system */
    const char *resolver;    /* second resolver "IP[:PORT]", NULL: none */
    const char *doh_url;     /* DNS-over-HTTPS resolver URL, NULL: none */
    const char *user_agent;  /* HTTP User-Agent */
    const char *probe_cc;    /* "ZZ" when unknown */
    const char *probe_asn;   /* "AS0" when unknown */
    const char *probe_network_name; /* NULL when unknown */
    const char *control_url; /* collector's control endpoint, NULL: none */
    const char *control_cacert;
    const char *sni_test;     /* "HOST:PORT" of a collector's SNI test server: each HTTPS web
                               * target's name and a neutral one, downloaded from it at once
                               * (lib/web.c, docs/methodology.md); NULL: none */
    const char *sni_test_pin; /* "sha256//BASE64" of its public key (the check-in's), NULL: any */
    int sni_test_not_due;     /* 1: the SNI test's downloads are not due in this run (the probe's
                               * sni_test_every): x_sni_test.skipped = "not_due"; the DNS
                               * injection check still runs */
    const char *report_id;   /* shared by the measurements of one run */
    int check_in_failed;     /* 1: a collector was configured and the check-in failed, so the
                              * country and network are unknown ("x_check_in": "failed"; the
                              * upload may infer them: probe/checkins.h) */
    double clock_offset;     /* 0: measurements are dated by the system clock; else it was
                              * this many seconds off the collector's (x_clock_offset), and they
                              * are dated vt_now() + clock_mono: a clock stepped by NTP during
                              * the run does not shift them twice (vt_measurement_now) */
    double clock_mono;
    const unsigned char *device_key; /* VT_DEVICE_KEY_LEN secret bytes kept in the state directory:
                                      * each measurement carries x_device_hour
                                      * (vt_device_hour); NULL: none */
} vt_config;

void vt_config_defaults(vt_config *c);

#endif
