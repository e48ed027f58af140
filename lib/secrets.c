/* The secrets file: permissions checked on the open descriptor, values wiped after use. */
#include "vantage/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRETS_MAX_BYTES (1 << 20)

static const char *secrets_path;

void vt_secrets_set_path(const char *path)
{
    secrets_path = path;
}

const char *vt_secrets_path(void)
{
    if (secrets_path && *secrets_path) return secrets_path;
    const char *e = getenv("VANTAGE_SECRETS");
    return e && *e ? e : NULL;
}

int vt_secrets_is_ref(const cJSON *v)
{
    const cJSON *s = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "secret") : NULL;
    return cJSON_IsString(s) && s->valuestring && *s->valuestring;
}

/* Reads the whole file after checking what it is and who may read it. */
static char *read_secrets(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0) {
        snprintf(err, errlen, "secrets file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "secrets file %s: not a regular file", path);
        goto done;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "secrets file %s has mode %04o: refused; others must not read it "
                 "(chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto done;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errlen, "secrets file %s: owned by another user (uid %u): refused", path,
                 (unsigned)st.st_uid);
        goto done;
    }
    if (st.st_size > SECRETS_MAX_BYTES) {
        snprintf(err, errlen, "secrets file %s: larger than 1 MiB", path);
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = 0;
    *len = got;
done:
    close(fd);
    return buf;
}

int vt_secrets_resolve(const cJSON *ref, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!vt_secrets_is_ref(ref)) {
        snprintf(err, errlen, "expected a secret reference {\"secret\": \"name\"}");
        return -1;
    }
    const char *name = cJSON_GetObjectItemCaseSensitive(ref, "secret")->valuestring;
    const char *path = vt_secrets_path();
    if (!path) {
        snprintf(err, errlen, "secret \"%.64s\": no secrets file (set VANTAGE_SECRETS to its path)",
                 name);
        return -1;
    }
    size_t len = 0;
    char *text = read_secrets(path, &len, err, errlen);
    if (!text) return -1;
    int rc = -1;
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *v = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, name) : NULL;
    if (!doc || !cJSON_IsObject(doc)) {
        snprintf(err, errlen, "secrets file %s: not a JSON object", path);
    } else if (!v) {
        snprintf(err, errlen, "secret \"%.64s\" is not in %s", name, path);
    } else if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(err, errlen, "secret \"%.64s\" in %s: expected a string", name, path);
    } else if (strlen(v->valuestring) + 1 > outlen) {
        snprintf(err, errlen, "secret \"%.64s\" in %s: too long", name, path);
    } else {
        memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
        rc = 0;
    }
    /* Wipe every copy of the file we made. */
    if (doc) {
        for (cJSON *c = doc->child; c; c = c->next)
            if (cJSON_IsString(c) && c->valuestring)
                OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
        cJSON_Delete(doc);
    }
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}
