/* vantage-collector delete: removes measurements (a volunteer's runs, single uids, or everything
 * measured before a date for a retention policy) and every trace of them in the rollups and
 * episodes (rollup.c vt_rollup_delete), while a collector may be serving the same database. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "log.h"
#include "rollup.h"
#include "store.h"
#include "strbuf.h"
#include "vantage/json.h"
#include "vantage/loop.h"

#define MAX_NAMES 1000 /* report ids and uids in one command */
#define MAX_NAME 200   /* bytes of one (the probe's are well under 100) */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vantage-collector delete --db URL [--report-id ID]... [--uid UID]...\n"
            "                                [--measured-before DATE] [--dry-run]\n"
            "\n"
            "Deletes every stored measurement that any option names: the runs (report_id) and\n"
            "measurements (measurement_uid) given, and those measured before DATE (YYYY-MM-DD\n"
            "or YYYY-MM-DDTHH:MM:SSZ, UTC). The rollups are rebuilt from what remains and the\n"
            "episodes detected again, so no count or episode keeps a trace of what went. A\n"
            "collector serving the same database may keep running: its uploads wait (SQLite:\n"
            "a long delete makes them fail with 503, and probes retry later).\n"
            "  --dry-run   count what would be deleted; change nothing (takes no lock)\n"
            "At most %d report ids and uids per command.\n",
            MAX_NAMES);
}

/* " OR expr IN (?,?,...)" with k placeholders (no " OR " first). */
static void in_list(vt_strbuf *b, const char *expr, int k)
{
    if (b->n) vt_strbuf_puts(b, " OR ");
    vt_strbuf_puts(b, expr);
    vt_strbuf_puts(b, " IN (");
    for (int i = 0; i < k; i++)
        vt_strbuf_puts(b, i ? ",?" : "?");
    vt_strbuf_putc(b, ')');
}

int vt_delete_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"report-id", required_argument, NULL, 'r'},
        {"uid", required_argument, NULL, 'u'},
        {"measured-before", required_argument, NULL, 'b'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *before_arg = NULL;
    const char **reports = calloc(MAX_NAMES, sizeof(*reports)),
               **uids = calloc(MAX_NAMES, sizeof(*uids));
    int n_reports = 0, n_uids = 0, dry_run = 0, c, rc = 2;
    char before[20] = "";
    if (!reports || !uids) {
        fprintf(stderr, "vantage-collector: out of memory\n");
        free(reports);
        free(uids);
        return 1;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'r':
        case 'u':
            if (n_reports + n_uids >= MAX_NAMES) {
                fprintf(stderr, "vantage-collector: at most %d report ids and uids per delete\n",
                        MAX_NAMES);
                goto out;
            }
            if (!vt_aggregate_name_ok(optarg, MAX_NAME)) {
                fprintf(stderr,
                        "vantage-collector: --%s takes 1 to %d bytes of UTF-8 without "
                        "control characters\n",
                        c == 'r' ? "report-id" : "uid", MAX_NAME);
                goto out;
            }
            if (c == 'r')
                reports[n_reports++] = optarg;
            else
                uids[n_uids++] = optarg;
            break;
        case 'b':
            before_arg = optarg;
            if (vt_aggregate_parse_date(optarg, before) < 0) {
                fprintf(stderr, "vantage-collector: --measured-before takes YYYY-MM-DD or "
                                "YYYY-MM-DDTHH:MM:SSZ (UTC)\n");
                goto out;
            }
            break;
        case 'n':
            dry_run = 1;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (!db || optind < argc || (!n_reports && !n_uids && !before_arg)) {
        if (db && optind >= argc)
            fprintf(stderr, "vantage-collector: delete needs --report-id, --uid or "
                            "--measured-before (nothing is deleted by default)\n");
        usage(stderr);
        goto out;
    }
    char err[512] = "";
    if (vt_store_url_check(db, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        goto out;
    }
    rc = 1;
    vt_store *s = vt_store_open_existing(db, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        goto out;
    }
    /* The report id is in the body only (stored as the probe sent it, or as printed from its
     * tree: valid JSON either way); PostgreSQL's json (not jsonb, which refuses \u0000 in any
     * string of the body) extracts it. */
    int pg = strcmp(vt_store_name(s), "sqlite") != 0;
    vt_strbuf where = {0};
    const char **params = calloc((size_t)(n_reports + n_uids + 1), sizeof(*params));
    int np = 0;
    if (n_reports)
        in_list(&where, pg ? "(body::json ->> 'report_id')" : "json_extract(body, '$.report_id')",
                n_reports);
    if (n_uids) in_list(&where, "uid", n_uids);
    if (before_arg) {
        if (where.n) vt_strbuf_puts(&where, " OR ");
        vt_strbuf_puts(&where, "measurement_start_time < ?");
    }
    if (where.oom || !where.p || !params) {
        fprintf(stderr, "vantage-collector: out of memory\n");
    } else {
        for (int i = 0; i < n_reports; i++)
            params[np++] = reports[i];
        for (int i = 0; i < n_uids; i++)
            params[np++] = uids[i];
        if (before_arg) params[np++] = before;
        long long matched = 0;
        size_t rows = 0;
        int left = 0;
        double t0 = vt_now();
        if (vt_rollup_delete(s, where.p, params, np, dry_run, &matched, &rows, &left, err,
                             sizeof(err)) < 0) {
            fprintf(stderr, "vantage-collector: delete: %s (nothing was deleted)\n", err);
        } else if (dry_run) {
            printf("%lld measurement%s would be deleted (dry run: nothing changed)\n", matched,
                   matched == 1 ? "" : "s");
            rc = 0;
        } else if (matched == 0) {
            printf("no stored measurement matched; nothing changed\n");
            rc = 0;
        } else {
            printf("deleted %lld measurement%s; rollups rebuilt from the %zu left in %.1f s\n",
                   matched, matched == 1 ? "" : "s", rows, vt_now() - t0);
            if (left && pg)
                printf("PostgreSQL keeps the deleted rows' bytes in the table's files until "
                       "VACUUM lets new rows reuse their space (VACUUM FULL measurements rewrites "
                       "them now)\n");
            else if (left)
                printf("a reader kept the write-ahead log from being emptied: it may still "
                       "hold copies until the collector stops and `sqlite3 DB \"PRAGMA "
                       "wal_checkpoint(TRUNCATE)\"` runs\n");
            fflush(stdout);
            /* The episodes again, here, so that a report run next finds them complete (a
             * collector serving the database would do it on its timer). */
            int k;
            for (int tries = 0;; tries++) {
                while ((k = vt_episodes_refresh(s, 64, err, sizeof(err))) > 0) {
                }
                /* SQLite: a serving collector's batch held the write lock past the store's
                 * busy timeout (1 s); the delete is done, so wait for it rather than leave the
                 * episodes to that collector's timer and exit 1 (at most about 30 s). */
                if (k >= 0 || pg || tries >= 30 || !strstr(err, "locked")) break;
            }
            if (k < 0) {
                fprintf(stderr,
                        "vantage-collector: episodes: %s (the collector detects them again "
                        "when it serves)\n",
                        err);
            } else {
                printf("episodes detected again\n");
                rc = 0;
            }
        }
    }
    free(where.p);
    free(params);
    vt_store_close(s);
out:
    free(reports);
    free(uids);
    return rc;
}
