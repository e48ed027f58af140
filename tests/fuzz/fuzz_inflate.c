/* libFuzzer: the collector's gzip path (Content-Encoding: gzip): gunzip under a cap, then the
 * inflated text through the JSONL parser, as api.c does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    char err[256];
    const size_t cap = 256 * 1024;
    int r = vt_ingest_inflate(data, size, cap, &out, &outlen, err, sizeof(err));
    if (r == 0) {
        if (!out || outlen > cap || out[outlen] != 0) abort(); /* contract: NUL-terminated */
        vt_ingest_limits lim;
        vt_ingest_limits_default(&lim);
        vt_ingest_batch b;
        int code = 0;
        if (vt_ingest_parse((const char *)out, outlen, &lim, NULL, 1795000000.0, &b, &code, err,
                            sizeof(err)) == 0)
            vt_ingest_batch_free(&b);
        free(out);
    } else if (out) {
        abort(); /* nothing handed out on failure */
    }
    return 0;
}
