/* libFuzzer: the <title> extraction from hostile HTML (vt_http_title). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/http.h"
#include "vantage/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = vt_http_title(data, size);
    if (t) {
        size_t n = strlen(t);
        if (n > 3 * size) abort(); /* each byte at most one U+FFFD (3 bytes) */
        free(t);
    }
    return 0;
}
