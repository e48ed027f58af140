/* PostgreSQL store: libpq, the same schema as store_sqlite.c (timestamps stay TEXT in the same
 * "YYYY-MM-DD HH:MM:SS" UTC form so both back ends hold identical rows).
 *
 * Several collectors may share one database: each batch is one transaction. Its rows go in with
 * one query for the uids already stored and one COPY of the others; when another collector
 * stored one of them in between (the COPY fails on the primary key), the transaction is redone
 * with one INSERT ... SELECT FROM unnest(text arrays) ON CONFLICT (uid) DO NOTHING RETURNING uid.
 * Either way two collectors racing on the same uid store it once and exactly one of them reports
 * it accepted. Schema creation runs under an advisory lock. A lost connection is re-established on
 * the next request (503 until then); a connection found dead when a batch begins is re-established
 * once at once (an ingest thread's connection may have been idle through a database restart). */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup.h"
#include "strbuf.h"
#include "store.h"

typedef struct pg_store {
    vt_store base;
    PGconn *conn;
    int prepared;
} pg_store;

/* Run under the advisory lock 7413001, taken and released by statements of their own: one
 * string sent at once is one transaction, and an unlock inside it came before its COMMIT, so a
 * second collector opening a new database at the same moment went on before the first one's
 * tables existed for it and failed on them (duplicate key in pg_type). */
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
    /* Bodies (3 KB and more) are TOAST-compressed: lz4 (PostgreSQL 14+, when the server has it)
     * instead of pglz, whose compression was 15% of the server's CPU at ingest. Changed once,
     * only when it is not lz4 already (ALTER TABLE locks the table); older values stay pglz. */
    "DO $$ DECLARE c \"char\"; BEGIN"
    " IF current_setting('server_version_num')::int >= 140000 THEN"
    "  EXECUTE 'SELECT attcompression FROM pg_attribute WHERE attrelid ="
    " ''measurements''::regclass AND attname = ''body''' INTO c;"
    "  IF c IS DISTINCT FROM 'l' THEN"
    "   BEGIN EXECUTE 'ALTER TABLE measurements ALTER COLUMN body SET COMPRESSION lz4';"
    "   EXCEPTION WHEN OTHERS THEN NULL; END;"
    "  END IF;"
    " END IF; END $$;"
    /* The schema's version (store.c, schema_check): one row. */
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tokens ("
    " id TEXT PRIMARY KEY,"
    " sha256 TEXT NOT NULL UNIQUE,"
    " created_at TEXT NOT NULL,"
    " revoked_at TEXT);"
    /* A database made before tokens had notes gets the column. */
    "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS note TEXT";

static const struct {
    const char *name, *sql;
    int nparams;
} stmts[] = {
    {"vt_insert",
     "INSERT INTO measurements (uid, received_at, measurement_start_time, probe_cc, probe_asn, "
     "test_name, input, target_id, platform, category, verdict, body) "
     "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
     "$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) "
     "ON CONFLICT (uid) DO NOTHING RETURNING uid",
     12},
    {"vt_known", "SELECT uid FROM measurements WHERE uid = ANY($1::text[])", 1},
    {"vt_tok_add", "INSERT INTO tokens (id, sha256, created_at, note) VALUES ($1, $2, $3, $4)", 4},
    {"vt_tok_check", "SELECT revoked_at FROM tokens WHERE sha256 = $1", 1},
    {"vt_tok_list", "SELECT id, created_at, revoked_at, note FROM tokens ORDER BY created_at, id",
     0},
    {"vt_tok_revoke", "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", 2},
};

static pg_store *P(vt_store *s)
{
    return (pg_store *)s;
}

static void pg_msg(pg_store *s, const char *what, const PGresult *r, char *err, size_t errlen)
{
    const char *m = r ? PQresultErrorMessage(r) : "";
    if (!m || !*m) m = PQerrorMessage(s->conn);
    snprintf(err, errlen, "postgresql: %s: %s", what, m && *m ? m : "unknown error");
    /* libpq messages end in a newline */
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == '\r'))
        err[--n] = 0;
}

/* Makes sure the connection is up and the statements are prepared. */
static int ensure(pg_store *s, char *err, size_t errlen)
{
    if (PQstatus(s->conn) != CONNECTION_OK) {
        PQreset(s->conn);
        s->prepared = 0;
        if (PQstatus(s->conn) != CONNECTION_OK) {
            pg_msg(s, "connection", NULL, err, errlen);
            return -1;
        }
    }
    if (s->prepared) return 0;
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        PGresult *r = PQprepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            /* Already prepared on this session (after a failed earlier attempt) is fine. */
            const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            ok = code && strcmp(code, "42P05") == 0;
            if (!ok) pg_msg(s, "prepare", r, err, errlen);
        }
        PQclear(r);
        if (!ok) return -1;
    }
    s->prepared = 1;
    return 0;
}

static int exec_cmd(pg_store *s, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(s->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) pg_msg(s, sql, r, err, errlen);
    PQclear(r);
    return ok ? 0 : -1;
}

static void sb_u32(vt_strbuf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    vt_strbuf_put(b, x, 4);
}

static const char *row_col(const vt_store_row *w, int c)
{
    switch (c) {
    case 0:
        return w->uid;
    case 1:
        return w->received_at;
    case 2:
        return w->measurement_start_time;
    case 3:
        return w->probe_cc;
    case 4:
        return w->probe_asn;
    case 5:
        return w->test_name;
    case 6:
        return w->input;
    case 7:
        return w->target_id;
    case 8:
        return w->platform;
    case 9:
        return w->category;
    case 10:
        return w->verdict;
    default:
        return w->body;
    }
}

/* A text[] parameter in PostgreSQL's binary array format (array_send: dimensions, element type,
 * then each element's length and bytes, -1 for NULL): the server copies the bodies as they are
 * instead of parsing an escaped text literal of a megabyte or more (perf: array_in was the
 * largest single cost of the insert), and nothing needs escaping here. */
static void sb_text_array(vt_strbuf *b, vt_store_row *const *rows, size_t n, int c)
{
    int hasnull = 0;
    for (size_t i = 0; i < n; i++)
        hasnull |= row_col(rows[i], c) == NULL;
    sb_u32(b, 1);                 /* dimensions */
    sb_u32(b, (uint32_t)hasnull); /* flags */
    sb_u32(b, 25);                /* element type: text */
    sb_u32(b, (uint32_t)n);       /* length */
    sb_u32(b, 1);                 /* lower bound */
    for (size_t i = 0; i < n; i++) {
        const char *v = row_col(rows[i], c);
        if (!v) {
            sb_u32(b, UINT32_MAX); /* -1: NULL */
            continue;
        }
        size_t l = strlen(v);
        sb_u32(b, (uint32_t)l);
        vt_strbuf_put(b, v, l);
    }
}

/* Rows by uid, for matching the uids the insert returns. */
static int cmp_row(const void *a, const void *b)
{
    return strcmp((*(vt_store_row *const *)a)->uid, (*(vt_store_row *const *)b)->uid);
}

static int cmp_key_row(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(vt_store_row *const *)elem)->uid);
}

/* The batch's rows sorted by uid (rows[i].inserted cleared): two ingest threads (or collectors)
 * inserting the same uids at once then wait for each other in the same order, never in a cycle.
 * NULL when out of memory (err says so). */
static vt_store_row **rows_by_uid(vt_store_row *rows, size_t n, char *err, size_t errlen)
{
    vt_store_row **byuid = malloc((n ? n : 1) * sizeof(*byuid));
    if (!byuid) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].inserted = 0;
        byuid[i] = &rows[i];
    }
    qsort(byuid, n, sizeof(*byuid), cmp_row);
    return byuid;
}

/* Runs a prepared statement whose parameters are text[] columns of the rows (binary format) and
 * that returns uids; marks the rows whose uid it returned with mark. */
static int exec_uid_query(pg_store *s, const char *stmt, vt_store_row **byuid, size_t n, int ncols,
                          int mark, const char *what, char *err, size_t errlen)
{
    vt_strbuf b = {0};
    size_t off[13];
    for (int c = 0; c < ncols; c++) {
        off[c] = b.n;
        sb_text_array(&b, byuid, n, c);
    }
    off[ncols] = b.n;
    if (b.oom || b.n > INT32_MAX) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *v[12];
    int lens[12], fmts[12];
    for (int c = 0; c < ncols; c++) {
        v[c] = b.p + off[c];
        lens[c] = (int)(off[c + 1] - off[c]);
        fmts[c] = 1; /* binary */
    }
    PGresult *r = PQexecPrepared(s->conn, stmt, ncols, v, lens, fmts, 0);
    free(b.p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_msg(s, what, r, err, errlen);
        PQclear(r);
        return -1;
    }
    for (int k = 0; k < PQntuples(r); k++) {
        vt_store_row **hit = bsearch(PQgetvalue(r, k, 0), byuid, n, sizeof(*byuid), cmp_key_row);
        if (hit) (*hit)->inserted = mark;
    }
    PQclear(r);
    return 0;
}

/* The batch's rows in one statement, INSERT ... ON CONFLICT DO NOTHING RETURNING uid; marks
 * rows[i].inserted from the uids it returns (uids in a batch are distinct). */
static int insert_rows_upsert(pg_store *s, vt_store_row *rows, size_t n, char *err, size_t errlen)
{
    vt_store_row **byuid = rows_by_uid(rows, n, err, errlen);
    if (!byuid) return -1;
    int rc = exec_uid_query(s, "vt_insert", byuid, n, 12, 1, "insert", err, errlen);
    free(byuid);
    return rc;
}

static void sb_u16(vt_strbuf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    vt_strbuf_put(b, x, 2);
}

/* The rows marked inserted (the new ones) as one COPY FROM STDIN in PostgreSQL's binary copy
 * format: a signature, then per row the field count and each field's length and bytes (-1 for
 * NULL), then a field count of -1. Binary, like the arrays: nothing to escape, the bodies are
 * sent as they are. *conflict is set when the COPY failed on a uid stored meanwhile. */
#define COPY_SQL                                                                                   \
    "COPY measurements (uid, received_at, measurement_start_time, probe_cc, probe_asn, "           \
    "test_name, input, target_id, platform, category, verdict, body) FROM STDIN (FORMAT binary)"

static int copy_rows(pg_store *s, vt_store_row **byuid, size_t n, int *conflict, char *err,
                     size_t errlen)
{
    vt_strbuf b = {0};
    vt_strbuf_put(&b, "PGCOPY\n\377\r\n\0", 11);
    sb_u32(&b, 0); /* flags */
    sb_u32(&b, 0); /* header extension */
    for (size_t i = 0; i < n; i++) {
        if (!byuid[i]->inserted) continue;
        sb_u16(&b, 12);
        for (int c = 0; c < 12; c++) {
            const char *v = row_col(byuid[i], c);
            if (!v) {
                sb_u32(&b, UINT32_MAX);
                continue;
            }
            size_t l = strlen(v);
            sb_u32(&b, (uint32_t)l);
            vt_strbuf_put(&b, v, l);
        }
    }
    sb_u16(&b, UINT16_MAX); /* -1: the end */
    if (b.oom || b.n > INT32_MAX) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    PGresult *r = PQexec(s->conn, COPY_SQL);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        pg_msg(s, "copy", r, err, errlen);
        PQclear(r);
        free(b.p);
        return -1;
    }
    PQclear(r);
    int sent = PQputCopyData(s->conn, b.p, (int)b.n) == 1;
    free(b.p);
    int ended = PQputCopyEnd(s->conn, sent ? NULL : "the collector could not send the rows") == 1;
    int rc = sent && ended ? 0 : -1;
    if (rc < 0) snprintf(err, errlen, "postgresql: copy: %s", PQerrorMessage(s->conn));
    /* The COPY's result, then NULL (the connection is idle again in the transaction). */
    while ((r = PQgetResult(s->conn)) != NULL) {
        if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            *conflict = code && strcmp(code, "23505") == 0;
            pg_msg(s, "copy", r, err, errlen);
            rc = -1;
        }
        PQclear(r);
    }
    return rc;
}

/* The batch's rows the fast way: the uids already stored (duplicates) in one query, then the
 * new rows by COPY, which costs the server much less than the INSERT ... SELECT FROM unnest
 * above (no arrays to unpack, no tuplestore, no speculative insertion per row; performance.md,
 * round 8).
 * A uid that another collector stored between the two (a retried upload racing itself) fails the
 * COPY with a unique violation: *conflict is set, the transaction is aborted, and the caller does
 * it again with insert_rows_upsert, which settles such races row by row. */
static int insert_rows(pg_store *s, vt_store_row *rows, size_t n, int *conflict, char *err,
                       size_t errlen)
{
    *conflict = 0;
    vt_store_row **byuid = rows_by_uid(rows, n, err, errlen);
    if (!byuid) return -1;
    for (size_t i = 0; i < n; i++)
        byuid[i]->inserted = 1;
    int rc = exec_uid_query(s, "vt_known", byuid, n, 1, 0, "insert", err, errlen);
    size_t fresh = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        fresh += byuid[i]->inserted;
    if (rc == 0 && fresh) rc = copy_rows(s, byuid, n, conflict, err, errlen);
    free(byuid);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            rows[i].inserted = 0;
    return rc;
}

/* Ends the failed transaction; the caller's err keeps the failure that mattered. */
static int rollback(pg_store *s)
{
    char e2[8];
    exec_cmd(s, "ROLLBACK", e2, sizeof(e2));
    return -1;
}

static int pg_insert_batch(vt_store *vs, vt_store_row *rows, size_t n, char *err, size_t errlen)
{
    pg_store *s = P(vs);
    if (ensure(s, err, errlen) < 0) return -1;
    if (exec_cmd(s, "BEGIN", err, errlen) < 0) {
        /* Dead since its last use (the server restarted): nothing was sent, try once more. */
        if (PQstatus(s->conn) == CONNECTION_OK || ensure(s, err, errlen) < 0 ||
            exec_cmd(s, "BEGIN", err, errlen) < 0)
            return -1;
    }
    int conflict = 0;
    if (insert_rows(s, rows, n, &conflict, err, errlen) < 0) {
        rollback(s);
        /* A uid stored by another collector meanwhile: again, settling conflicts row by row. */
        if (!conflict || exec_cmd(s, "BEGIN", err, errlen) < 0) return -1;
        if (insert_rows_upsert(s, rows, n, err, errlen) < 0) return rollback(s);
    }
    /* The hourly rollups (rollup.c) of the accepted rows, in the same transaction. */
    if (vt_rollup_apply(vs, rows, n, err, errlen) < 0) return rollback(s);
    if (exec_cmd(s, "COMMIT", err, errlen) < 0) return rollback(s);
    return 0;
}

static int pg_health(vt_store *vs, char *err, size_t errlen)
{
    pg_store *s = P(vs);
    if (ensure(s, err, errlen) < 0) return -1;
    if (exec_cmd(s, "SELECT 1", err, errlen) == 0) return 0;
    /* A connection the server closed (a restart) is known to be broken only once used: the
     * first question after it would answer 503 for a database that is back. Once more, anew. */
    if (PQstatus(s->conn) != CONNECTION_BAD || ensure(s, err, errlen) < 0) return -1;
    return exec_cmd(s, "SELECT 1", err, errlen);
}

static PGresult *run(pg_store *s, const char *name, int n, const char *const *v, char *err,
                     size_t errlen)
{
    if (ensure(s, err, errlen) < 0) return NULL;
    PGresult *r = PQexecPrepared(s->conn, name, n, v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_msg(s, name, r, err, errlen);
        PQclear(r);
        return NULL;
    }
    return r;
}

static int pg_token_add(vt_store *vs, const char *id, const char *hash, const char *now,
                        const char *note, char *err, size_t errlen)
{
    const char *v[4] = {id, hash, now, note}; /* NULL: SQL NULL */
    PGresult *r = run(P(vs), "vt_tok_add", 4, v, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

static int pg_token_check(vt_store *vs, const char *hash, char *err, size_t errlen)
{
    const char *v[1] = {hash};
    PGresult *r = run(P(vs), "vt_tok_check", 1, v, err, errlen);
    if (!r) return -1;
    int out = PQntuples(r) == 0 ? 0 : PQgetisnull(r, 0, 0) ? 1 : 2;
    PQclear(r);
    return out;
}

static int pg_token_list(vt_store *vs, vt_store_token_fn fn, void *arg, char *err, size_t errlen)
{
    PGresult *r = run(P(vs), "vt_tok_list", 0, NULL, err, errlen);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        vt_store_token t;
        snprintf(t.id, sizeof(t.id), "%s", PQgetvalue(r, i, 0));
        snprintf(t.created_at, sizeof(t.created_at), "%s", PQgetvalue(r, i, 1));
        snprintf(t.revoked_at, sizeof(t.revoked_at), "%s", PQgetvalue(r, i, 2));
        snprintf(t.note, sizeof(t.note), "%s", PQgetvalue(r, i, 3));
        fn(&t, arg);
    }
    PQclear(r);
    return 0;
}

static int pg_token_revoke(vt_store *vs, const char *id, const char *now, char *err, size_t errlen)
{
    const char *v[2] = {now, id};
    PGresult *r = run(P(vs), "vt_tok_revoke", 2, v, err, errlen);
    if (!r) return -1;
    int out = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : 1;
    PQclear(r);
    return out;
}

static void pg_close(vt_store *vs)
{
    pg_store *s = P(vs);
    PQfinish(s->conn);
    free(s);
}

static void pg_revive(vt_store *vs)
{
    pg_store *s = P(vs);
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) == PQTRANS_IDLE) {
        /* A server going down sends its FATAL message, then closes: the first read takes the
         * message, the second sees the end and marks the connection bad. A live idle one has
         * nothing to read. */
        for (int i = 0; i < 2 && PQstatus(s->conn) == CONNECTION_OK; i++)
            if (!PQconsumeInput(s->conn)) break;
    }
    char err[256];
    /* still down: the next statement says so */
    if (PQstatus(s->conn) != CONNECTION_OK) (void)ensure(s, err, sizeof(err));
}

static void *pg_native(vt_store *vs)
{
    return P(vs)->conn;
}

static const vt_store_ops pg_ops = {
    .name = "postgresql",
    .insert_batch = pg_insert_batch,
    .health = pg_health,
    .token_add = pg_token_add,
    .token_check = pg_token_check,
    .token_list = pg_token_list,
    .token_revoke = pg_token_revoke,
    .close = pg_close,
    .native = pg_native,
    .revive = pg_revive,
};

vt_store *vt_store_pg_open(const char *conninfo, int must_exist, char *err, size_t errlen)
{
    pg_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &pg_ops;
    /* Defaults the URL may override, kept by PQreset after a lost connection: every
     * acknowledged batch must survive a crash whatever the server's default (synchronous_commit),
     * and the loop must never wait forever on the database (timeouts). */
    const char *keys[] = {"connect_timeout", "options", "dbname", NULL};
    const char *vals[] = {"10", "-c synchronous_commit=on -c statement_timeout=30000", conninfo,
                          NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        if (s->conn)
            pg_msg(s, "connect", NULL, err, errlen);
        else
            snprintf(err, errlen, "postgresql: out of memory");
        goto fail;
    }
    if (exec_cmd(s, "SET client_min_messages = warning", err, errlen) < 0) goto fail;
    if (must_exist) { /* before the schema: a database the collector never used */
        PGresult *r = PQexec(s->conn, "SELECT to_regclass('measurements') IS NOT NULL");
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK, have = 0;
        if (!ok)
            pg_msg(s, "looking for the measurements table", r, err, errlen);
        else
            have = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (!ok) goto fail;
        if (!have) {
            snprintf(err, errlen,
                     "no such database: this PostgreSQL database holds no "
                     "vantage-collector tables (no measurements table; check --db)");
            goto fail;
        }
    }
    /* A database a newer collector used: refused before the schema below changes anything in
     * it (store.c checks again after it, under no lock: here the table may not exist yet). */
    PGresult *vr = PQexec(s->conn, "SELECT to_regclass('schema_version') IS NOT NULL");
    int has_version = PQresultStatus(vr) == PGRES_TUPLES_OK && PQntuples(vr) == 1 &&
                      strcmp(PQgetvalue(vr, 0, 0), "t") == 0;
    PQclear(vr);
    if (has_version) {
        vr = PQexec(s->conn, "SELECT MAX(version)::text FROM schema_version");
        int refuse = PQresultStatus(vr) == PGRES_TUPLES_OK && PQntuples(vr) == 1 &&
                     vt_store_version_refuse(PQgetisnull(vr, 0, 0) ? NULL : PQgetvalue(vr, 0, 0),
                                             err, errlen) < 0;
        PQclear(vr);
        if (refuse) goto fail;
    }
    if (exec_cmd(s, "SELECT pg_advisory_lock(7413001)", err, errlen) < 0) goto fail;
    int schema_rc = exec_cmd(s, schema, err, errlen);
    char e2[256];
    exec_cmd(s, "SELECT pg_advisory_unlock(7413001)", e2, sizeof(e2));
    if (schema_rc < 0 || ensure(s, err, errlen) < 0) goto fail;
    return &s->base;
fail:
    pg_close(&s->base);
    return NULL;
}
