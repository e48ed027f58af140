/* libFuzzer: target files (vt_targets_load_json), then the id filter on the list loaded. */
#include <stddef.h>
#include <stdint.h>

#include "vantage/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vt_target_list l;
    char err[512];
    vt_targets_init(&l);
    if (vt_targets_load_json(&l, (const char *)data, size, "fuzz.json", err, sizeof(err)) == 0 &&
        l.n > 0) {
        vt_targets_find(&l, l.items[0].id);
        vt_targets_filter_ids(&l, l.items[0].id, err, sizeof(err));
    }
    vt_targets_free(&l);
    return 0;
}
