/* The store interface: picks the back end from the URL; token helpers shared by both. */
#include "store.h"

#include "rollup.h"
#include "log.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vantage/json.h"
#include "vantage/loop.h"
#include "vantage/measurement.h"
#include "vantage/version.h"

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The collector's own start refreshes dirty episodes for at most this long (the rest on its
 * timer). */
#define START_REFRESH_MS 10000

/* The SQLite path of url, "" for PostgreSQL; NULL with err when url is none of them. */
static const char *url_kind(const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "no database: give --db sqlite:PATH or --db postgresql://...");
        return NULL;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        if (strncmp(path, "//", 2) == 0) /* sqlite:///abs/path */
            path += 2;
        if (!*path) {
            snprintf(err, errlen, "--db sqlite:PATH needs a path");
            return NULL;
        }
        return path;
    }
    if (strncmp(url, "postgresql:", 11) == 0 || strncmp(url, "postgres:", 9) == 0) return "";
    if (has_suffix(url, ".db") || has_suffix(url, ".sqlite") || has_suffix(url, ".sqlite3"))
        return url;
    snprintf(err, errlen, "unknown database URL '%s': use sqlite:PATH or postgresql://...", url);
    return NULL;
}

int vt_store_url_check(const char *url, char *err, size_t errlen)
{
    return url_kind(url, err, errlen) ? 0 : -1;
}

/* The database's schema version, kept in the table schema_version (one row; docs/operator.md,
 * "Upgrades"). Raise it with every change that an older vantage-collector would misread or
 * undo; the changes themselves stay idempotent and run at every open (CREATE ... IF NOT EXISTS,
 * added columns, rebuilt rollups). */
#define VT_SCHEMA_VERSION 2

int vt_store_version_refuse(const char *version, char *err, size_t errlen)
{
    if (!version) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(version, &end, 10);
    /* A value that is no whole number (SQLite keeps any text in the column) was not written by
     * any vantage-collector: nothing says which changes the database has seen. */
    if (end == version || *end || errno) {
        snprintf(err, errlen,
                 "this database records schema version '%.40s', which is not a version number: "
                 "it was changed by hand or by another program; restore a backup, or set "
                 "schema_version to the version that last used it",
                 version);
        return -1;
    }
    if (v > VT_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "this database was used by a newer vantage-collector (schema version %lld; "
                 "this %s knows versions up to %d): run that version or a newer one against "
                 "it, or restore the backup taken before the upgrade",
                 v, VT_VERSION, VT_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

typedef struct version_text {
    char text[64];
    int null; /* no row, or NULL */
} version_text;

static int version_row(void *arg, int nc, const char *const *cols)
{
    version_text *out = arg;
    out->null = nc < 1 || !cols[0];
    snprintf(out->text, sizeof(out->text), "%s", out->null ? "" : cols[0]);
    return 1;
}

/* Refuses a database that a newer collector has used, and records this version in one that an
 * older one (or none) has. The back ends refused such a database already, before their
 * additive schema (new tables and columns only); this runs after it, and before rollup.c's,
 * which drops and rebuilds tables it finds older than its own. */
static int schema_check(vt_store *s, char *err, size_t errlen)
{
    version_text vt = {.null = 1};
    if (vt_db_query(s, "SELECT MAX(version) FROM schema_version", NULL, 0, version_row, &vt, err,
                    errlen) < 0)
        return -1;
    if (vt_store_version_refuse(vt.null ? NULL : vt.text, err, errlen) < 0) return -1;
    long long v = vt.null ? 0 : strtoll(vt.text, NULL, 10);
    if (v == VT_SCHEMA_VERSION) return 0;
    char sql[96];
    snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version) VALUES (%d)",
             VT_SCHEMA_VERSION);
    /* Collectors opening the database at the same moment: one at a time (PostgreSQL: the schema's
     * lock; SQLite: the write lock), each looking again once it has the lock, so that the table
     * keeps its one row. */
    int pg = strcmp(vt_store_name(s), "sqlite") != 0;
    if (vt_db_query(s, pg ? "BEGIN" : "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, err, errlen) < 0)
        return -1;
    vt.null = 1;
    if ((pg && vt_db_query(s, "SELECT pg_advisory_xact_lock(7413001)", NULL, 0, NULL, NULL, err,
                           errlen) < 0) ||
        vt_db_query(s, "SELECT MAX(version) FROM schema_version", NULL, 0, version_row, &vt, err,
                    errlen) < 0 ||
        vt_store_version_refuse(vt.null ? NULL : vt.text, err, errlen) < 0) {
        char e2[64];
        vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
        return -1;
    }
    if (!vt.null && strtoll(vt.text, NULL, 10) == VT_SCHEMA_VERSION) {
        char e2[64];
        vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
        return 0;
    }
    if (vt_db_query(s, "DELETE FROM schema_version", NULL, 0, NULL, NULL, err, errlen) < 0 ||
        vt_db_query(s, sql, NULL, 0, NULL, NULL, err, errlen) < 0 ||
        vt_db_query(s, "COMMIT", NULL, 0, NULL, NULL, err, errlen) < 0) {
        char e2[64];
        vt_db_query(s, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof(e2));
        return -1;
    }
    return 0;
}

static vt_store *open_store(const char *url, int refresh_ms, int must_exist, char *err,
                            size_t errlen)
{
    const char *path = url_kind(url, err, errlen);
    if (!path) return NULL;
    vt_store *s = *path ? vt_store_sqlite_open(path, must_exist, err, errlen)
                        : vt_store_pg_open(url, must_exist, err, errlen);
    if (s && schema_check(s, err, errlen) < 0) {
        vt_store_close(s);
        return NULL;
    }
    /* The rollup table (rollup.c) lives next to measurements in the same database. */
    if (s && vt_rollup_init(s, refresh_ms, err, errlen) < 0) {
        vt_store_close(s);
        return NULL;
    }
    return s;
}

vt_store *vt_store_open(const char *url, char *err, size_t errlen)
{
    return open_store(url, START_REFRESH_MS, 0, err, errlen);
}

vt_store *vt_store_open_quick(const char *url, char *err, size_t errlen)
{
    return open_store(url, 0, 0, err, errlen);
}

vt_store *vt_store_open_existing(const char *url, char *err, size_t errlen)
{
    return open_store(url, 0, 1, err, errlen);
}

void vt_store_defer_checkpoints(vt_store *s)
{
    if (s->ops->defer_checkpoints) s->ops->defer_checkpoints(s);
}

void vt_store_upkeep(vt_store *s)
{
    if (s->ops->checkpoint) s->ops->checkpoint(s);
    char err[256];
    if (vt_rollup_maintain(s, err, sizeof(err)) < 0)
        vt_log_msg("vantage-collector: statistics of the rollup tables: %s", err);
}

static pthread_mutex_t db_mu = PTHREAD_MUTEX_INITIALIZER;

void vt_store_db_lock(void)
{
    pthread_mutex_lock(&db_mu);
}

void vt_store_db_unlock(void)
{
    pthread_mutex_unlock(&db_mu);
}

void vt_store_close(vt_store *s)
{
    if (!s) return;
    vt_rollup_forget(s);
    s->ops->close(s);
}

void *vt_store_native(vt_store *s)
{
    return s->ops->native ? s->ops->native(s) : NULL;
}

int vt_store_one_writer(const vt_store *s)
{
    return s->ops->one_writer;
}

const char *vt_store_name(const vt_store *s)
{
    return s->ops->name;
}

int vt_store_insert_batch(vt_store *s, vt_store_row *rows, size_t n, char *err, size_t errlen)
{
    /* Later: rollup updates for the inserted rows join this transaction. */
    return s->ops->insert_batch(s, rows, n, err, errlen);
}

int vt_store_health(vt_store *s, char *err, size_t errlen)
{
    return s->ops->health(s, err, errlen);
}

void vt_store_revive(vt_store *s)
{
    if (s->ops->revive) s->ops->revive(s);
}

void vt_store_sha256_hex(const char *s, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32 && i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

int vt_store_token_note_ok(const char *note, char *why, size_t whylen)
{
    size_t n = strlen(note);
    if (n > VT_TOKEN_NOTE_MAX) {
        snprintf(why, whylen, "a token's note is at most %d bytes (this one has %zu)",
                 VT_TOKEN_NOTE_MAX, n);
        return 0;
    }
    if (!vt_utf8_valid((const unsigned char *)note, n)) {
        snprintf(why, whylen, "a token's note must be UTF-8 text");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)note[i] < 0x20 || note[i] == 0x7f) {
            snprintf(why, whylen,
                     "a token's note must not hold control characters (a newline, "
                     "a tab)");
            return 0;
        }
    return 1;
}

int vt_store_token_create(vt_store *s, const char *note, char *out, char *id, char *err,
                          size_t errlen)
{
    char a[VT_UID_LEN + 1], b[VT_UID_LEN + 1], hash[65], now[20];
    if (note && !*note) note = NULL;
    if (note && !vt_store_token_note_ok(note, err, errlen)) return -1;
    if (vt_uid_new(a) < 0 || vt_uid_new(b) < 0) {
        snprintf(err, errlen, "no randomness from the OS");
        return -1;
    }
    snprintf(out, 65, "%s%s", a, b);
    vt_store_sha256_hex(out, hash);
    memcpy(id, hash, 16);
    id[16] = 0;
    vt_format_time(vt_wall_now(), now);
    return s->ops->token_add(s, id, hash, now, note, err, errlen);
}

int vt_store_token_check(vt_store *s, const char *token, char *err, size_t errlen)
{
    char hash[65];
    vt_store_sha256_hex(token, hash);
    return s->ops->token_check(s, hash, err, errlen);
}

int vt_store_token_list(vt_store *s, vt_store_token_fn fn, void *arg, char *err, size_t errlen)
{
    return s->ops->token_list(s, fn, arg, err, errlen);
}

int vt_store_token_revoke(vt_store *s, const char *id, char *err, size_t errlen)
{
    char now[20];
    vt_format_time(vt_wall_now(), now);
    return s->ops->token_revoke(s, id, now, err, errlen);
}
