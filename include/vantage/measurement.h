/* OONI df-000 measurements: the top-level envelope every result goes out in. */
#ifndef VANTAGE_MEASUREMENT_H
#define VANTAGE_MEASUREMENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "config.h"

#define VT_UID_LEN 32 /* hex characters of a 128-bit uid */

/* Fills out with 32 lowercase hex characters from the OS's random source; 0 on success. */
int vt_uid_new(char out[VT_UID_LEN + 1]);
/* 1 when s is exactly len lowercase hex digits (a uid, a device token, a key), else 0. */
int vt_hex_lower(const char *s, size_t len);
/* "YYYY-MM-DD HH:MM:SS" in UTC: always 19 characters and a NUL; an epoch outside years
 * 1970-9999 (negative, NaN, huge) gives "1970-01-01 00:00:00". */
void vt_format_time(double epoch, char out[20]);
/* Now, for dating a measurement: the system clock, or the collector's when cfg->clock_offset. */
double vt_measurement_now(const vt_config *cfg);
/* The device's token for the clock hour of start ("YYYY-MM-DD HH:MM:SS"): 16 hex digits of a
 * keyed hash of that hour with the device's secret key (docs/privacy.md), into out. The
 * collector counts a network's distinct devices per hour by it, so that one device running
 * twice in an hour is not two witnesses. -1 when start is not a time. */
int vt_device_hour(const unsigned char key[VT_DEVICE_KEY_LEN], const char *start,
                   char out[VT_DEVICE_HOUR_LEN + 1]);

/* A report id in OONI's shape: "20261128T120000Z_<test>_<cc>_<asn>_n1_<random>". */
void vt_report_id_new(char *out, size_t n, double epoch, const char *test_name, const char *cc,
                      const char *asn);

/* Builds the envelope. test_keys becomes owned by the result. input may be NULL.
 * annotations: an object (owned) or NULL. */
cJSON *vt_measurement_new(const vt_config *cfg, const char *test_name, const char *test_version,
                          const char *input, double start_epoch, double runtime,
                          cJSON *annotations, cJSON *test_keys);

/* What a collector takes at most (vantage-collector's defaults are 1 MiB and 50,000 values):
 * the probe keeps every measurement a little under both. */
#define VT_MEASUREMENT_MAX_BYTES (960u * 1024u)
#define VT_MEASUREMENT_MAX_VALUES 45000u

/* Shrinks a measurement that a hostile server made too large for a collector (thousands of
 * headers, ten redirects each with a 64 KiB body): first the intermediate responses of each
 * request list (bodies to 1 KiB, 16 headers), then every response (bodies to 16 KiB), then the
 * network events; test_keys.x_trimmed tells it happened. The verdict was decided before. Returns
 * 1 when it trimmed, 0 when the measurement already fitted, -1 when it still does not fit. */
int vt_measurement_fit(cJSON *m, size_t max_bytes, size_t max_values);

#endif
