/* libFuzzer: fingerprint CSV in either format (vt_fp_load_csv). The first line of the input
 * after a NUL byte, if any, is also matched against the set loaded as a body, a header value
 * and a DNS address. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/fingerprints.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t csvlen = nul ? (size_t)(nul - data) : size;
    vt_fp_set s;
    char err[512];
    vt_fp_init(&s);
    if (vt_fp_load_csv(&s, (const char *)data, csvlen, "fuzz.csv", err, sizeof(err)) > 0 && nul) {
        const uint8_t *rest = nul + 1;
        size_t rlen = size - csvlen - 1;
        char *text = malloc(rlen + 1);
        if (!text) abort();
        memcpy(text, rest, rlen);
        text[rlen] = 0;
        /* Bodies reach the matcher NUL-terminated (lib/verdict.c): ASan's regexec interceptor
         * reads up to a NUL even with REG_STARTEND, which glibc itself honours. */
        vt_fp_match_body(&s, text, rlen);
        vt_fp_match_header(&s, "Server", text);
        vt_fp_match_header(&s, text, "x");
        const vt_fp *fp = vt_fp_match_dns(&s, text);
        if (fp) vt_fp_confirms(fp, "XX");
        free(text);
    }
    vt_fp_free(&s);
    return 0;
}
