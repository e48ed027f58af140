/* Secrets a group adds for its own servers (tls-auth keys, WireGuard client keys, pre-shared
 * keys): kept out of target files, in a JSON object {"name": "value", ...} in a file readable by
 * its owner only. A target refers to one as {"secret": "name"}. Values never go into
 * measurements or messages. */
#ifndef VANTAGE_SECRETS_H
#define VANTAGE_SECRETS_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The secrets file; NULL (the default) means the environment variable VANTAGE_SECRETS. */
void vt_secrets_set_path(const char *path);
const char *vt_secrets_path(void);

/* True when v is a secret reference {"secret": "name"}. */
int vt_secrets_is_ref(const cJSON *v);

/* Reads the value that ref names into out (NUL-terminated). The file must be a regular file
 * with no group or other permission bits (0600 or stricter), else it is refused. 0 on success,
 * -1 with err (which names the file and the secret, never the value). */
int vt_secrets_resolve(const cJSON *ref, char *out, size_t outlen, char *err, size_t errlen);

#endif
