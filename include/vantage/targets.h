/* Targets: what the probe measures. Loaded from the project's JSON target files (docs/targets.md)
 * and from Citizen Lab test-list CSVs. */
#ifndef VANTAGE_TARGETS_H
#define VANTAGE_TARGETS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct vt_target {
    char *id;        /* unique, [a-z0-9_.-]+ */
    char *name;      /* human name, "X (Twitter)" */
    char *platform;  /* "x", "facebook", "tor", ... ; "canary" for canaries */
    char *category;  /* "social", "messaging", "vpn", "canary", or a Citizen Lab code */
    char *kind;      /* measurement kind: "web", "endpoint", "telegram", "openvpn", ... */
    char **endpoints; /* URLs ("https://x.com/") or "host:port" ("e1.whatsapp.net:5222") */
    size_t n_endpoints;
    char *large_resource; /* optional URL of a large object, for throughput */
    cJSON *options;  /* the whole target object, for kind-specific keys (never NULL); for a
                      * Citizen Lab row {"citizenlab": {its columns}} */
    char *source;    /* "targets/social.json" or "pk.csv:12", for messages */
} vt_target;

typedef struct vt_target_list {
    vt_target *items;
    size_t n, cap;
} vt_target_list;

void vt_targets_init(vt_target_list *l);
/* The shipped target lists' directory: $VANTAGE_TARGETS, the source tree's targets/ when run
 * from a build directory, then the installed ones (share/vantage/targets). */
const char *vt_targets_default_dir(void);
void vt_targets_free(vt_target_list *l);
/* Each loader appends to l. On error nothing is appended and err names the file, line or key
 * and the problem; the return value is -1. */
int vt_targets_load_file(vt_target_list *l, const char *path, char *err, size_t errlen);
/* Every *.json file in dir, in name order. */
int vt_targets_load_dir(vt_target_list *l, const char *dir, char *err, size_t errlen);
/* A file or a directory; a *.csv file is read as a Citizen Lab list. */
int vt_targets_load_path(vt_target_list *l, const char *path, char *err, size_t errlen);
/* Citizen Lab CSV (url,category_code,category_description,date_added,source,notes). */
int vt_targets_load_citizenlab(vt_target_list *l, const char *path, char *err, size_t errlen);
/* Parses a JSON document (as in a target file); name is used in messages. */
int vt_targets_load_json(vt_target_list *l, const char *json, size_t len, const char *name,
                         char *err, size_t errlen);
/* Keeps only targets whose id is in the comma-separated list; -1 and err if one is unknown (the
 * list is then unchanged). Linear in the list and the ids. */
int vt_targets_filter_ids(vt_target_list *l, const char *ids_csv, char *err, size_t errlen);
/* The same, also keeping every target whose category is also_category (NULL: none), e.g. the
 * canaries that tell an offline probe from blocking. */
int vt_targets_filter(vt_target_list *l, const char *ids_csv, const char *also_category, char *err,
                      size_t errlen);
/* Keeps the targets whose keep[i] is nonzero (keep has l->n entries), in list order; frees the
 * others. */
void vt_targets_keep(vt_target_list *l, const unsigned char *keep);
const vt_target *vt_targets_find(const vt_target_list *l, const char *id);

#endif
