/* The table of measurement kinds: one line per kind, one file per kind in lib/. */
#include <string.h>

#include "vantage/task.h"



static const vt_kind *const kinds[] = {

    NULL,
};

const vt_kind *vt_kind_find(const char *name)
{
    for (size_t i = 0; kinds[i]; i++)
        if (name && strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

const vt_kind *const *vt_kinds_all(void)
{
    return kinds;
}
