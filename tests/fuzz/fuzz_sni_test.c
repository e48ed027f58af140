/* libFuzzer: the SNI test server's request line (vt_sni_test_parse_request), which is all of a
 * request that the server reads, from anyone on the internet. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sni_test.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long bytes = -1;
    int code = vt_sni_test_parse_request((const char *)data, size, &bytes);
    if (code != 200 && code != 400 && code != 404) abort();
    /* what is served is always within the bounds the server promises */
    if (code == 200 && (bytes < 1 || bytes > VT_SNI_TEST_MAX_BYTES)) abort();
    return 0;
}
