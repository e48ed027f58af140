/* libFuzzer: the collector's upload body (JSONL batch): split, depth/value bounds, cJSON parse,
 * df-000 validation, address scrubbing, in-batch duplicates, and the answer it builds; the trees
 * in the batch's arena, as in vantage-collector. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ingest.h"
#include "json_arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vt_json_arena_install(); /* as vantage-collector: each batch's trees in an arena */
    vt_ingest_limits lim;
    vt_ingest_limits_default(&lim);
    /* Smaller caps than the defaults, so the fuzzer reaches them with small inputs. */
    lim.max_measurement = 8192;
    lim.max_string = 1024;
    lim.max_depth = 16;
    lim.max_batch = 16;
    lim.max_values = 512;
    lim.max_batch_values = 2048;
    vt_ingest_batch b;
    int code = 0;
    char err[256];
    /* A fixed "now" (2026-11-18, as the unit tests) keeps runs reproducible. */
    if (vt_ingest_parse((const char *)data, size, &lim, "192.0.2.7", 1795000000.0, &b, &code, err,
                        sizeof(err)) == 0) {
        free(vt_ingest_answer(&b));
        vt_ingest_batch_free(&b);
    } else if (code < 400 || code > 499) {
        abort(); /* a refused body is always a 4xx */
    }
    return 0;
}
