/* libFuzzer: DNS answers as a censor may send them, through the reply parser lib/dns.c uses
 * (c-ares' A/AAAA parsers plus our copy into answers), via its test seam. */
#include <stddef.h>
#include <stdint.h>

#include "vantage/dns.h"

int vt_dns_parse_reply_for_fuzz(int qtype, const unsigned char *abuf, int alen);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65535) return 0; /* a DNS message is at most 64 KiB */
    vt_dns_parse_reply_for_fuzz(VT_DNS_A, data, (int)size);
    vt_dns_parse_reply_for_fuzz(VT_DNS_AAAA, data, (int)size);
    return 0;
}
