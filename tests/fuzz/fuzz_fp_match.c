/* libFuzzer: blockpage matching (vt_fp_match_body/header/dns) of hostile response bytes against
 * the shipped fingerprints (targets/fingerprints.csv) and OONI's (when VT_SHARED_DATA has them):
 * the body scan runs over every byte a censor may send. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vantage/fingerprints.h"

static vt_fp_set set;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    vt_fp_init(&set);
    if (vt_fp_load(&set, VT_SOURCE_DIR "/targets/fingerprints.csv", err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_fp_match: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    /* NUL-terminated as lib/verdict.c passes bodies (ASan's regexec ignores REG_STARTEND). */
    vt_fp_match_body(&set, text, size);
    const char *colon = memchr(text, ':', size);
    if (colon) {
        text[colon - text] = 0;
        vt_fp_match_header(&set, text, text + (colon - text) + 1);
    } else {
        vt_fp_match_header(&set, "Server", text);
    }
    vt_fp_match_dns(&set, text);
    free(text);
    return 0;
}
