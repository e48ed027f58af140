/* libFuzzer: the WireGuard reply check (initiator) and the initiation check (responder). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vantage/wireguard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static vt_wg_handshake hs;
    static unsigned char spriv[32];
    char f[160];
    if (!ready) {
        unsigned char cpriv[32], spub[32];
        memset(cpriv, 0x11, sizeof(cpriv));
        memset(spriv, 0x22, sizeof(spriv));
        vt_wg_public_key(spriv, spub);
        vt_wg_build_initiation(&hs, cpriv, spub, NULL, 1, NULL, f, sizeof(f));
        ready = 1;
    }
    /* Steer part of the corpus to the right type and our index, so the crypto runs. */
    unsigned char buf[256];
    vt_wg_reply r;
    vt_wg_parse_reply(&hs, data, size, &r, f, sizeof(f));
    if (size >= 12 && size <= sizeof(buf)) {
        memcpy(buf, data, size);
        buf[0] = 2;
        buf[1] = buf[2] = buf[3] = 0;
        memcpy(buf + 8, "\x01\0\0\0", 4);
        vt_wg_parse_reply(&hs, buf, size, &r, f, sizeof(f));
    }
    vt_wg_responder st;
    vt_wg_responder_consume(&st, spriv, NULL, data, size, f, sizeof(f));
    return 0;
}
