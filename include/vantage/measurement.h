/* OONI df-000 measurements: the top-level envelope every result goes out in. */
#ifndef VANTAGE_MEASUREMENT_H
#define VANTAGE_MEASUREMENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "config.h"

#define VT_UID_LEN 32 /* hex characters of a 128-bit uid */

/* Fills out with 32 lowercase hex characters from the OS's random source; 0 on success. */
int vt_uid_new(char out[VT_UID_LEN + 1]);
/* "YYYY-MM-DD HH:MM:SS" in UTC. */
void vt_format_time(double epoch, char out[20]);
/* A report id in OONI's shape: "20261128T120000Z_<test>_<cc>_<asn>_n1_<random>". */
void vt_report_id_new(char *out, size_t n, double epoch, const char *test_name, const char *cc,
                      const char *asn);

/* Builds the envelope. test_keys becomes owned by the result. input may be NULL.
 * annotations: an object (owned) or NULL. */
cJSON *vt_measurement_new(const vt_config *cfg, const char *test_name, const char *test_version,
                          const char *input, double start_epoch, double runtime,
                          cJSON *annotations, cJSON *test_keys);

#endif
