/* SQLite store: the embedded default.
 *
 * Durability: WAL with synchronous=FULL. In WAL mode, NORMAL only syncs at checkpoints, so a
 * commit survives a crash of the collector but not a power loss or kernel crash; the API promises
 * that an acknowledged uid is stored, and the probe deletes its spooled copy on that promise, so
 * every commit fsyncs the WAL (FULL). Batching (one transaction per upload) keeps that to one
 * fsync per batch. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rollup.h"
#include "store.h"

typedef struct sqlite_store {
    vt_store base;
    sqlite3 *db;
    sqlite3_stmt *insert, *tok_add, *tok_check, *tok_list, *tok_revoke;
    int wal_pages; /* the WAL's size after this connection's last commit (deferred checkpoints) */
} sqlite_store;

static const char *schema =
    "CREATE TABLE IF NOT EXISTS measurements ("
    " uid TEXT PRIMARY KEY,"
    " received_at TEXT NOT NULL,"
    " measurement_start_time TEXT NOT NULL,"
    " probe_cc TEXT NOT NULL,"
    " probe_asn TEXT NOT NULL,"
    " test_name TEXT NOT NULL,"
    " input TEXT,"
    " target_id TEXT,"
    " platform TEXT,"
    " category TEXT,"
    " verdict TEXT,"
    " body TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS measurements_start ON measurements(measurement_start_time);"
    "CREATE INDEX IF NOT EXISTS measurements_cc_asn ON measurements(probe_cc, probe_asn);"
    /* The schema's version (store.c, schema_check): one row. */
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tokens ("
    " id TEXT PRIMARY KEY,"
    " sha256 TEXT NOT NULL UNIQUE,"
    " created_at TEXT NOT NULL,"
    " revoked_at TEXT,"
    " note TEXT);";

static sqlite_store *S(vt_store *s)
{
    return (sqlite_store *)s;
}

static int fail(sqlite_store *s, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int sq_insert_batch(vt_store *vs, vt_store_row *rows, size_t n, char *err, size_t errlen)
{
    sqlite_store *s = S(vs);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, "begin", err, errlen);
    for (size_t i = 0; i < n; i++) {
        vt_store_row *r = &rows[i];
        sqlite3_stmt *st = s->insert;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        bind_text(st, 1, r->uid);
        bind_text(st, 2, r->received_at);
        bind_text(st, 3, r->measurement_start_time);
        bind_text(st, 4, r->probe_cc);
        bind_text(st, 5, r->probe_asn);
        bind_text(st, 6, r->test_name);
        bind_text(st, 7, r->input);
        bind_text(st, 8, r->target_id);
        bind_text(st, 9, r->platform);
        bind_text(st, 10, r->category);
        bind_text(st, 11, r->verdict);
        bind_text(st, 12, r->body);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fail(s, "insert", err, errlen);
            sqlite3_reset(st);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        r->inserted = sqlite3_changes(s->db) == 1;
        sqlite3_reset(st);
    }
    /* The hourly rollups (rollup.c) of the accepted rows, in the same transaction. */
    if (vt_rollup_apply(vs, rows, n, err, errlen) < 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, "commit", err, errlen);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int sq_health(vt_store *vs, char *err, size_t errlen)
{
    sqlite_store *s = S(vs);
    if (sqlite3_exec(s->db, "SELECT 1 FROM measurements LIMIT 1", NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, "health", err, errlen);
    return 0;
}

static int has_token_note(sqlite_store *s)
{
    sqlite3_stmt *st = NULL;
    int has = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_table_info('tokens') WHERE name = 'note'",
                           -1, &st, NULL) == SQLITE_OK)
        has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has;
}

/* A database made before tokens had notes gets the column (another process opening it at the
 * same moment may add it first). */
static int add_token_note(sqlite_store *s, const char *path, char *err, size_t errlen)
{
    if (has_token_note(s)) return 0;
    char *msg = NULL;
    if (sqlite3_exec(s->db, "ALTER TABLE tokens ADD COLUMN note TEXT", NULL, NULL, &msg) ==
            SQLITE_OK ||
        has_token_note(s)) {
        sqlite3_free(msg);
        return 0;
    }
    snprintf(err, errlen, "sqlite: %s: adding tokens.note: %s", path,
             msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

static int sq_token_add(vt_store *vs, const char *id, const char *hash, const char *now,
                        const char *note, char *err, size_t errlen)
{
    sqlite_store *s = S(vs);
    sqlite3_stmt *st = s->tok_add;
    sqlite3_reset(st);
    bind_text(st, 1, id);
    bind_text(st, 2, hash);
    bind_text(st, 3, now);
    bind_text(st, 4, note);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, "token create", err, errlen);
}

static int sq_token_check(vt_store *vs, const char *hash, char *err, size_t errlen)
{
    sqlite_store *s = S(vs);
    sqlite3_stmt *st = s->tok_check;
    sqlite3_reset(st);
    bind_text(st, 1, hash);
    int rc = sqlite3_step(st), out;
    if (rc == SQLITE_ROW)
        out = sqlite3_column_type(st, 0) == SQLITE_NULL ? 1 : 2;
    else if (rc == SQLITE_DONE)
        out = 0;
    else
        out = fail(s, "token check", err, errlen);
    sqlite3_reset(st);
    return out;
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t n)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    snprintf(out, n, "%s", v ? (const char *)v : "");
}

static int sq_token_list(vt_store *vs, vt_store_token_fn fn, void *arg, char *err, size_t errlen)
{
    sqlite_store *s = S(vs);
    sqlite3_stmt *st = s->tok_list;
    sqlite3_reset(st);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        vt_store_token t;
        copy_col(st, 0, t.id, sizeof(t.id));
        copy_col(st, 1, t.created_at, sizeof(t.created_at));
        copy_col(st, 2, t.revoked_at, sizeof(t.revoked_at));
        copy_col(st, 3, t.note, sizeof(t.note));
        fn(&t, arg);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, "token list", err, errlen);
}

static int sq_token_revoke(vt_store *vs, const char *id, const char *now, char *err, size_t errlen)
{
    sqlite_store *s = S(vs);
    sqlite3_stmt *st = s->tok_revoke;
    sqlite3_reset(st);
    bind_text(st, 1, now);
    bind_text(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail(s, "token revoke", err, errlen);
    return sqlite3_changes(s->db) == 1 ? 0 : 1;
}

static void sq_close(vt_store *vs)
{
    sqlite_store *s = S(vs);
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->tok_add);
    sqlite3_finalize(s->tok_check);
    sqlite3_finalize(s->tok_list);
    sqlite3_finalize(s->tok_revoke);
    vt_db_forget(s->db); /* rollup.c's cached statements */
    sqlite3_close(s->db);
    free(s);
}

static void *sq_native(vt_store *vs)
{
    return S(vs)->db;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((sqlite_store *)arg)->wal_pages = pages;
    return SQLITE_OK;
}

static void sq_defer_checkpoints(vt_store *vs)
{
    /* Replaces the automatic checkpoint (itself a WAL hook). */
    sqlite3_wal_hook(S(vs)->db, wal_hook, vs);
}

static void sq_checkpoint(vt_store *vs)
{
    sqlite_store *s = S(vs);
    if (s->wal_pages < 1000) return;
    s->wal_pages = 0;
    /* PASSIVE: copies what no reader still needs, never waits, and writers on other connections
     * go on appending to the WAL meanwhile. BUSY (another checkpoint running) is fine. With
     * synchronous=FULL it syncs the WAL and the database file like the automatic one. */
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static const vt_store_ops sqlite_ops = {
    .name = "sqlite",
    .one_writer = 1,
    .insert_batch = sq_insert_batch,
    .health = sq_health,
    .token_add = sq_token_add,
    .token_check = sq_token_check,
    .token_list = sq_token_list,
    .token_revoke = sq_token_revoke,
    .close = sq_close,
    .native = sq_native,
    .defer_checkpoints = sq_defer_checkpoints,
    .checkpoint = sq_checkpoint,
};

static int prep(sqlite_store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(s, "prepare", err, errlen);
    return 0;
}

vt_store *vt_store_sqlite_open(const char *path, int must_exist, char *err, size_t errlen)
{
    sqlite_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    struct stat st;
    if (must_exist && stat(path, &st) < 0) {
        snprintf(err, errlen,
                 "no such database: %s: %s (check --db; `serve` or `token create` "
                 "creates it)",
                 path, strerror(errno));
        goto fail;
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | (must_exist ? 0 : SQLITE_OPEN_CREATE),
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    /* Another process (a token command, a reader) may hold the lock briefly. */
    sqlite3_busy_timeout(s->db, 1000);
    /* Before the pragmas and the schema, which would write: an empty file, or another
     * program's database, is not a collector's. */
    if (must_exist) {
        sqlite3_stmt *q = NULL;
        int have = 0, rc = sqlite3_prepare_v2(s->db,
                                              "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                              "AND name = 'measurements'",
                                              -1, &q, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(q);
            have = rc == SQLITE_ROW;
        }
        /* A file that cannot be read (a full or read-only file system, where the shared-memory
         * file cannot be made; a lock; not a database at all) is not "no measurements table":
         * say what SQLite says. */
        if (!have && rc != SQLITE_DONE) {
            snprintf(err, errlen, "sqlite: cannot read %s: %s", path, sqlite3_errmsg(s->db));
            sqlite3_finalize(q);
            goto fail;
        }
        sqlite3_finalize(q);
        if (!have) {
            snprintf(err, errlen,
                     "no such database: %s is not a vantage-collector database (no "
                     "measurements table; check --db)",
                     path);
            goto fail;
        }
    }
    /* A database a newer collector used: refused before the pragmas and the schema below
     * change anything in it (store.c also checks, after them, for the schema_version table
     * they create). No such table: a new or older database. */
    sqlite3_stmt *vq = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT MAX(version) FROM schema_version", -1, &vq, NULL) ==
            SQLITE_OK &&
        sqlite3_step(vq) == SQLITE_ROW &&
        vt_store_version_refuse((const char *)sqlite3_column_text(vq, 0), err, errlen) < 0) {
        sqlite3_finalize(vq);
        goto fail;
    }
    sqlite3_finalize(vq);
    if (vt_rollup_sqlite_functions(s->db) < 0) {
        snprintf(err, errlen, "sqlite: %s: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    char *msg = NULL;
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                     /* 16 MB of page cache (default 2 MB): a batch of 500 dirties more than
                      * 2 MB (bodies, indexes, ~1,200 rollup rows), and SQLite then spilled
                      * pages to the WAL in the middle of the transaction (perf: a fifth of
                      * the rollup upserts' time) and read them back. */
                     "PRAGMA cache_size=-16384;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        goto fail;
    }
    if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        goto fail;
    }
    if (add_token_note(s, path, err, errlen) < 0) goto fail;
    if (prep(s,
             "INSERT OR IGNORE INTO measurements (uid, received_at, measurement_start_time, "
             "probe_cc, probe_asn, test_name, input, target_id, platform, category, verdict, body) "
             "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
             &s->insert, err, errlen) < 0 ||
        prep(s, "INSERT INTO tokens (id, sha256, created_at, note) VALUES (?1, ?2, ?3, ?4)",
             &s->tok_add, err, errlen) < 0 ||
        prep(s, "SELECT revoked_at FROM tokens WHERE sha256 = ?1", &s->tok_check, err, errlen) <
            0 ||
        prep(s, "SELECT id, created_at, revoked_at, note FROM tokens ORDER BY created_at, id",
             &s->tok_list, err, errlen) < 0 ||
        prep(s, "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
             &s->tok_revoke, err, errlen) < 0)
        goto fail;
    return &s->base;
fail:
    sq_close(&s->base);
    return NULL;
}
