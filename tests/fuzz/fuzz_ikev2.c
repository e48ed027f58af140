/* libFuzzer: the IKEv2 IKE_SA_INIT reply check, on port 500 and 4500 framing. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vantage/ikev2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char spi[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    vt_ikev2_opts o500 = {0}, o4500 = {.natt = 1};
    vt_ikev2_reply r;
    char f[160];
    vt_ikev2_parse_reply(&o500, spi, data, size, &r, f, sizeof(f));
    vt_ikev2_parse_reply(&o4500, spi, data, size, &r, f, sizeof(f));
    /* With our SPI in place, so the payload walk is reached. */
    if (size >= 28 && size <= 4096) {
        unsigned char buf[4096];
        memcpy(buf, data, size);
        memcpy(buf, spi, 8);
        buf[17] = 0x20;
        buf[18] = 34;
        buf[19] |= 0x20;
        vt_ikev2_parse_reply(&o500, spi, buf, size, &r, f, sizeof(f));
    }
    return 0;
}
