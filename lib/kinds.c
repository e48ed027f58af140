/* The table of measurement kinds: one line per kind, one file per kind in lib/. */
#include <string.h>

#include "vantage/task.h"

extern const vt_kind vt_kind_web;
extern const vt_kind vt_kind_endpoint;
extern const vt_kind vt_kind_telegram;
extern const vt_kind vt_kind_openvpn;
extern const vt_kind vt_kind_wireguard;
extern const vt_kind vt_kind_ikev2;
extern const vt_kind vt_kind_tor;
extern const vt_kind vt_kind_tlsvpn;
extern const vt_kind vt_kind_port;

static const vt_kind *const kinds[] = {
    &vt_kind_web,
    &vt_kind_endpoint,
    &vt_kind_telegram,
    &vt_kind_openvpn,
    &vt_kind_wireguard,
    &vt_kind_ikev2,
    &vt_kind_tor,
    &vt_kind_tlsvpn,
    &vt_kind_port,
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
