/* The collector's storage: one interface, two back ends (store_sqlite.c, store_pg.c) with the same
 * schema. Every accepted measurement goes through vt_store_insert_batch: the one place where a
 * later rollup update hooks in. */
#ifndef VANTAGE_COLLECTOR_STORE_H
#define VANTAGE_COLLECTOR_STORE_H

#include <stddef.h>

typedef struct vt_store vt_store;
struct cJSON;

/* One measurement to store. Strings are NUL-terminated; NULL stores SQL NULL (optional columns). */
typedef struct vt_store_row {
    const char *uid;                    /* 32 lowercase hex */
    const char *received_at;            /* "YYYY-MM-DD HH:MM:SS" UTC */
    const char *measurement_start_time; /* "YYYY-MM-DD HH:MM:SS" UTC */
    const char *probe_cc;
    const char *probe_asn;
    const char *test_name;
    const char *input;     /* may be NULL */
    const char *target_id; /* may be NULL */
    const char *platform;  /* may be NULL */
    const char *category;  /* may be NULL */
    const char *verdict;   /* test_keys.verdict, may be NULL */
    const char *body;      /* the whole measurement, compact JSON */
    /* The same measurement as ingest parsed it (scrubbed, as stored), so that rollups need not
     * parse body again; NULL when ingest did not keep it (huge batches): parse body. */
    const struct cJSON *parsed;
    int inserted; /* out: 1 stored now, 0 the uid was already stored */
} vt_store_row;

/* A token's note, in bytes: UTF-8 text without control characters (vt_store_token_note_ok). */
#define VT_TOKEN_NOTE_MAX 200

typedef struct vt_store_token {
    char id[17];                      /* first 16 hex characters of the token's SHA-256 */
    char created_at[20];              /* "YYYY-MM-DD HH:MM:SS" */
    char revoked_at[20];              /* "" when active */
    char note[VT_TOKEN_NOTE_MAX + 1]; /* the operator's note (whom it was given to); "" none */
} vt_store_token;

typedef void (*vt_store_token_fn)(const vt_store_token *t, void *arg);

/* The back ends' operations (internal; use the vt_store_* functions). */
typedef struct vt_store_ops {
    const char *name;
    int one_writer; /* vt_store_one_writer */
    int (*insert_batch)(vt_store *s, vt_store_row *rows, size_t n, char *err, size_t errlen);
    int (*health)(vt_store *s, char *err, size_t errlen);
    int (*token_add)(vt_store *s, const char *id, const char *sha256_hex, const char *now,
                     const char *note, char *err, size_t errlen);
    int (*token_check)(vt_store *s, const char *sha256_hex, char *err, size_t errlen);
    int (*token_list)(vt_store *s, vt_store_token_fn fn, void *arg, char *err, size_t errlen);
    int (*token_revoke)(vt_store *s, const char *id, const char *now, char *err, size_t errlen);
    void (*close)(vt_store *s);
    void *(*native)(vt_store *s);           /* sqlite3 * or PGconn *, for rollup.c's queries */
    void (*defer_checkpoints)(vt_store *s); /* may be NULL */
    void (*checkpoint)(vt_store *s);        /* may be NULL */
    void (*revive)(vt_store *s);            /* may be NULL */
} vt_store_ops;

struct vt_store {
    const vt_store_ops *ops;
    void *rollup_scratch; /* rollup.c's bucket sets, kept between batches (vt_rollup_forget) */
};

/* url: "sqlite:PATH" (also a plain path ending in .db / .sqlite) or "postgresql://..." /
 * "postgres://...". Creates the schema when missing. NULL with err on failure. */
vt_store *vt_store_open(const char *url, char *err, size_t errlen);
/* The same without the start's episode refresh (vt_rollup_init): for the ingest threads' extra
 * connections and for tools (report, token), which must neither wait for a backlog of dirty
 * series nor write while a running collector does. */
vt_store *vt_store_open_quick(const char *url, char *err, size_t errlen);
/* The same as vt_store_open_quick, for tools that only read what a collector stored (report,
 * token list, token revoke): a database that does not exist yet, or holds no collector's tables,
 * is not created but refused, with an err that starts "no such database". A mistyped path must
 * not become an empty database whose report says that nothing was blocked. */
vt_store *vt_store_open_existing(const char *url, char *err, size_t errlen);
/* 0 when url names a store (sqlite:PATH, a .db/.sqlite path, postgresql://...); -1 with err
 * (a usage error) otherwise. Nothing is opened. */
int vt_store_url_check(const char *url, char *err, size_t errlen);

/* The back ends, before their own schema (which would change the database): -1 with err set
 * when version, MAX(version) of the table schema_version as text (NULL: no table or no row), is
 * newer than this collector's or is no version number at all; else 0 (store.c). */
int vt_store_version_refuse(const char *version, char *err, size_t errlen);
void vt_store_close(vt_store *s);
/* "sqlite" or "postgresql". */
const char *vt_store_name(const vt_store *s);

/* Stores the rows in one transaction, committed durably before it returns 0; rows[i].inserted
 * tells accepted (1) from duplicate (0). -1 with err: nothing of the batch is stored (the store is
 * unavailable; the caller answers 503). Rows must have distinct uids. */
int vt_store_insert_batch(vt_store *s, vt_store_row *rows, size_t n, char *err, size_t errlen);
/* 0 when the store answers a trivial query. */
int vt_store_health(vt_store *s, char *err, size_t errlen);
/* Before a unit of work on a connection that holds no session state (a query of the API, a
 * round of the episode refresh): reconnects a PostgreSQL connection that the server closed while
 * it was idle (a restart), which is otherwise found out only by the next statement failing. No
 * round trip: it reads what the socket already holds. Nothing on SQLite. */
void vt_store_revive(vt_store *s);

/* Upload tokens. Only the SHA-256 of a token is stored. */
/* Creates a token with an optional note (NULL or "": none; else vt_store_token_note_ok): writes
 * the token (64 hex characters) into out (>= 65 bytes) and its id into id (>= 17 bytes). */
int vt_store_token_create(vt_store *s, const char *note, char *out, char *id, char *err,
                          size_t errlen);
/* 1 when note can be a token's note: at most VT_TOKEN_NOTE_MAX bytes of UTF-8, no control
 * characters; else 0 with the reason in why. */
int vt_store_token_note_ok(const char *note, char *why, size_t whylen);
/* 1 valid, 0 unknown, 2 revoked, -1 store error. */
int vt_store_token_check(vt_store *s, const char *token, char *err, size_t errlen);
int vt_store_token_list(vt_store *s, vt_store_token_fn fn, void *arg, char *err, size_t errlen);
/* 0 revoked, 1 no such id, -1 store error. */
int vt_store_token_revoke(vt_store *s, const char *id, char *err, size_t errlen);

/* The back end's connection (sqlite3 * or PGconn *): rollup.c and aggregate.c run their own SQL
 * through it (vt_db_query). */
void *vt_store_native(vt_store *s);

/* SQLite: this connection no longer copies the WAL into the database inside its commits (the
 * automatic checkpoint); vt_store_upkeep does it, outside vt_store_db_lock, so that another
 * thread's transaction is not held up behind it. No-ops for PostgreSQL. */
void vt_store_defer_checkpoints(vt_store *s);
/* Upkeep after a commit, outside any transaction and lock: SQLite, a passive checkpoint when the
 * WAL has grown past SQLite's usual threshold (1000 pages); PostgreSQL, the rollup tables'
 * first ANALYZE (vt_rollup_maintain). */
void vt_store_upkeep(vt_store *s);

/* One storer at a time in the process: the ingest threads (ingest_pool.c) hold this around a
 * batch's transaction, and so does the loop around SQLite queries of its own connection while
 * ingest threads run, because rollup.c caches SQLite statements in a process-wide table. */
void vt_store_db_lock(void);
void vt_store_db_unlock(void);
/* 1 when this back end's connections in the process take vt_store_db_lock around their use
 * (SQLite: one writer at a time, and the process-wide statement cache above); 0 when they run
 * at once (PostgreSQL: rollup.c serialises the bucket updates in the database). */
int vt_store_one_writer(const vt_store *s);

/* SHA-256 of s as 64 lowercase hex characters. */
void vt_store_sha256_hex(const char *s, char out[65]);

/* The back ends. must_exist: refuse ("no such database: ...") a database without the
 * collector's measurements table (SQLite: also a file that does not exist) instead of creating
 * it. */
vt_store *vt_store_sqlite_open(const char *path, int must_exist, char *err, size_t errlen);
vt_store *vt_store_pg_open(const char *conninfo, int must_exist, char *err, size_t errlen);

#endif
