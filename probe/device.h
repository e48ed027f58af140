/* The device's secret key, kept in <state>/device-key: the measurements' x_device_hour tokens
 * are derived from it (vt_device_hour, docs/privacy.md). It never leaves the machine. */
#ifndef VANTAGE_PROBE_DEVICE_H
#define VANTAGE_PROBE_DEVICE_H

#include <stddef.h>

#include "vantage/config.h"

#define VT_DEVICE_KEY_FILE "device-key"

/* Reads the key from state_dir, or makes one (random, written 0600 and durably) when there is
 * none or the file is not a key (64 hex digits): 0, or -1 with err (then no token is sent). */
int vt_device_key_load(const char *state_dir, unsigned char key[VT_DEVICE_KEY_LEN], char *err,
                       size_t errlen);

#endif
