/* The device's secret key (device.h). */
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hex.h"
#include "spool.h"
#include "textfile.h"
#include "vantage/measurement.h"

/* 64 lowercase hex digits, optionally followed by one newline (s is NUL-terminated at len and
 * may be cut there), into key. */
static int parse_key(char *s, size_t len, unsigned char key[VT_DEVICE_KEY_LEN])
{
    if (len == 2 * VT_DEVICE_KEY_LEN + 1 && s[len - 1] == '\n') s[--len] = 0;
    if (!vt_hex_lower(s, 2 * VT_DEVICE_KEY_LEN)) return -1;
    for (size_t i = 0; i < VT_DEVICE_KEY_LEN; i++)
        key[i] = (unsigned char)(vt_hex_digit(s[2 * i]) << 4 | vt_hex_digit(s[2 * i + 1]));
    return 0;
}

int vt_device_key_load(const char *state_dir, unsigned char key[VT_DEVICE_KEY_LEN], char *err,
                       size_t errlen)
{
    char path[4200], rerr[256], *text = NULL;
    size_t len = 0;
    if (!state_dir ||
        snprintf(path, sizeof(path), "%s/" VT_DEVICE_KEY_FILE, state_dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "no state directory for the device key");
        return -1;
    }
    if (vt_textfile_read(path, 4096, &text, &len, rerr, sizeof(rerr)) == 0) {
        int ok = parse_key(text, len, key) == 0;
        free(text);
        if (ok) return 0;
        /* Damaged or edited: a new key. The old one's tokens only linked past hours. */
        fprintf(stderr, "vantage-probe: warning: %s is not a device key: making a new one\n", path);
    }
    size_t got = 0;
    while (got < VT_DEVICE_KEY_LEN) {
        ssize_t r = getrandom(key + got, VT_DEVICE_KEY_LEN - got, 0);
        if (r < 0) {
            snprintf(err, errlen, "no random bytes for a device key");
            return -1;
        }
        got += (size_t)r;
    }
    char hex[2 * VT_DEVICE_KEY_LEN + 2];
    for (int i = 0; i < VT_DEVICE_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[2 * VT_DEVICE_KEY_LEN] = '\n';
    hex[2 * VT_DEVICE_KEY_LEN + 1] = 0;
    /* 0600, like every file the spool writes. */
    return vt_spool_write_file_atomic(path, hex, 2 * VT_DEVICE_KEY_LEN + 1, err, errlen);
}
