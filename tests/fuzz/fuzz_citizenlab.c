/* libFuzzer: Citizen Lab test-list CSV (vt_targets_load_citizenlab), which reads a path: the
 * input is written to a file named like a real list (xx.csv) in a private temporary directory. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vantage/targets.h"

static char path[256];

static void cleanup(void)
{
    unlink(path);
    char *slash = strrchr(path, '/');
    if (slash) {
        *slash = 0;
        rmdir(path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        char dir[] = "/tmp/vt-fuzz-citizenlab-XXXXXX";
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof(path), "%s/pk.csv", dir);
        atexit(cleanup);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    vt_target_list l;
    char err[512];
    vt_targets_init(&l);
    vt_targets_load_citizenlab(&l, path, err, sizeof(err));
    vt_targets_free(&l);
    return 0;
}
