/* vantage-collector: receives probes' measurements (docs/api.md), manages upload tokens. */
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "aggregate.h"
#include "api.h"
#include "geoip.h"
#include "json_arena.h"
#include "log.h"
#include "rollup.h"
#include "sni_test.h"
#include "vantage/addr.h"
#include "store.h"
#include "vantage/loop.h"
#include "vantage/version.h"

#define MAX_GEO 8

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vantage-collector COMMAND [OPTIONS]\n"
            "\n"
            "Receives measurements from vantage probes and stores them (SQLite or PostgreSQL).\n"
            "\n"
            "commands:\n"
            "  serve --listen ADDR:PORT --db URL   run the HTTP API (docs/api.md)\n"
            "  token create --db URL [--note TEXT]\n"
            "                                     make an upload token (printed once; creates\n"
            "                                     the database when it does not exist); the note\n"
            "                                     says whom it was given to\n"
            "  token list --db URL                list tokens (id, created, revoked, note)\n"
            "  token revoke ID --db URL           refuse a token from now on\n"
            "  report --db URL --cc CC --since DATE [--until DATE] [--asn ASN]\n"
            "         [--format md|csv|json|html] [--output FILE]\n"
            "                                     what was blocked or slowed (docs/api.md)\n"
            "  delete --db URL [--report-id ID]... [--uid UID]... [--measured-before DATE]\n"
            "         [--dry-run]                 delete measurements, and their trace in the\n"
            "                                     rollups and episodes\n"
            "  import --db URL [--targets PATH]... FILE...\n"
            "                                     store measurements from files (OONI's JSONL,\n"
            "                                     gzip or not), as an upload would\n"
            "\n"
            "options:\n"
            "  --db URL                 sqlite:PATH or postgresql://... (libpq URI)\n"
            "  --listen ADDR:PORT       e.g. 127.0.0.1:8080, [::]:8080; port 0 picks one\n"
            "  --require-token          uploads need 'Authorization: Bearer <token>'\n"
            "  --geoip-asn FILE         ip-location-db CSV ip_start,ip_end,asn,org (repeatable)\n"
            "  --geoip-country FILE     ip-location-db CSV ip_start,ip_end,country (repeatable)\n"
            "  --geoip-mmdb FILE        MaxMind DB file: GeoLite2/DB-IP/ip-location-db ASN or\n"
            "                           country (repeatable; answers what the CSV files do not)\n"
            "  --targets-version V      target list version announced at check-in\n"
            "  --allow-private-control  let /api/v1/control reach loopback/private addresses\n"
            "  --trusted-proxy LIST     reverse proxies (ADDR or ADDR/PREFIX, comma-separated)\n"
            "                           whose X-Forwarded-For names the client; others' ignored\n"
            "  --rate N                 requests per second per client and per token (20; 0: off)\n"
            "  --burst N                bucket size of the rate limit (200)\n"
            "  --timeout S              connection read/write timeout in seconds (30)\n"
            "  --request-timeout S      time a connection has to send a whole request (60)\n"
            "  --query-timeout S        time one dashboard/API query may run (5); beyond, 503\n"
            "  --query-max-groups N     groups one aggregation may answer (10000); beyond, 400\n"
            "  --max-connections N      open connections at most; the longest-idle goes first\n"
            "                           (4096, less when the descriptor limit is lower)\n"
            "  --control-max N          control measurements in flight at once (8; 0: none,\n"
            "                           the endpoint answers 404)\n"
            "  --control-timeout S      time cap of one control measurement (30)\n"
            "  --ingest-threads N       threads that parse and store uploads, each with its\n"
            "                           own database connection (2; 0: on the event loop)\n"
            "  --sni-test-listen ADDR:PORT\n"
            "                           also run the SNI test server there (TLS; docs/api.md)\n"
            "  --sni-test-cert FILE     its certificate (PEM; default: a self-signed one made at\n"
            "  --sni-test-key FILE      start) and key (PEM)\n"
            "  --alternate-url URL      another https:// address of this collector (a CDN\n"
            "                           front) that check-ins announce, for probes that cannot\n"
            "                           reach this one (repeatable, 4 at most)\n"
            "  --sni-test-public HOST:PORT\n"
            "                           the address check-in announces for it (default: the\n"
            "                           listen address, unless 0.0.0.0 or [::])\n"
            "  --sni-test-rate N        its requests per minute per client (240; 0: off)\n"
            "  --sni-test-burst N       bucket size of that rate limit (240)\n"
            "  --log-json               one JSON object per log line\n"
            "  --help, --version\n"
            "\n"
            "Client addresses are never logged or stored (docs/privacy.md).\n");
}

/* Episodes of the series ingest marked dirty, re-detected every VT_EPISODES_REFRESH_MS on the
 * event loop, a few at a time (then again soon) so queries are not held up. */
#define REFRESH_BATCH 2
typedef struct refresh_ctx {
    vt_loop *loop;
    vt_store *store;
    vt_api *api; /* while uploads come in, the refresh yields to them */
    struct event *ev;
    int stop;
} refresh_ctx;

static void on_refresh(void *arg)
{
    refresh_ctx *r = arg;
    char err[256];
    r->ev = NULL;
    /* rollup.c's SQLite statement cache is shared with the ingest threads (store.h); on
     * PostgreSQL the refresh only tries the database's rollup lock (rollup.c) and, when a
     * storing thread holds it, tries again shortly instead of blocking the loop. */
    int lock = vt_store_one_writer(r->store);
    /* PostgreSQL: the loop's connection, closed by a server restart, would fail every round
     * until a query or a health check reconnected it. */
    vt_store_revive(r->store);
    double t0 = vt_now();
    if (lock) vt_store_db_lock();
    int k = vt_episodes_refresh_nowait(r->store, REFRESH_BATCH, err, sizeof(err));
    if (lock) vt_store_db_unlock();
    double spent_ms = (vt_now() - t0) * 1000.0;
    if (k == -1) vt_log_msg("vantage-collector: episodes: %s (retrying)", err);
    /* More left: again at once when no upload is coming in (the loop still serves queries
     * between rounds); while uploads come in, the refresh (which holds the loop and the store)
     * takes at most a fifth of the time, so that a stream of uploads, each marking series
     * dirty, is answered promptly while the episodes catch up behind it. */
    int next = VT_EPISODES_REFRESH_MS;
    if (k == -2) { /* PostgreSQL: an ingest thread (or another collector) holds the lock */
        next = 50;
    } else if (k >= REFRESH_BATCH && !vt_api_uploading(r->api)) {
        next = 1;
    } else if (k >= REFRESH_BATCH) {
        next = (int)(spent_ms * 4.0);
        if (next < 20) next = 20;
        if (next > VT_EPISODES_REFRESH_MS) next = VT_EPISODES_REFRESH_MS;
    }
    if (!r->stop) r->ev = vt_timer_start(r->loop, next, on_refresh, r);
}

typedef struct geo_files {
    const char **asn, **cc, **mmdb;
    size_t n_asn, n_cc, n_mmdb;
} geo_files;

/* A GeoIP database from the files given (--geoip-*), or NULL with err. */
static vt_geoip *load_geo(const geo_files *g, char *err, size_t errlen)
{
    vt_geoip *geo = vt_geoip_new();
    if (!geo) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < g->n_asn; i++)
        if (vt_geoip_load_asn(geo, g->asn[i], err, errlen) < 0) goto fail;
    for (size_t i = 0; i < g->n_cc; i++)
        if (vt_geoip_load_country(geo, g->cc[i], err, errlen) < 0) goto fail;
    for (size_t i = 0; i < g->n_mmdb; i++)
        if (vt_geoip_load_mmdb(geo, g->mmdb[i], err, errlen) < 0) goto fail;
    return geo;
fail:
    vt_geoip_free(geo);
    return NULL;
}

typedef struct serve_ctx {
    vt_api *api;
    refresh_ctx *refresh;
    int signals;
    const geo_files *geo_files;
    vt_geoip **geo; /* the one the API answers check-ins with */
    vt_sni_test *sni;
} serve_ctx;

/* SIGHUP: the GeoIP files again (an operator updated them), without a restart. The loop thread
 * is the only one that reads them (check-in), and this runs on it. A file that does not load
 * leaves the data in use as it was. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    serve_ctx *c = arg;
    char err[512] = "";
    vt_geoip *geo = load_geo(c->geo_files, err, sizeof(err));
    if (!geo) {
        vt_log_msg("vantage-collector: SIGHUP: GeoIP not reloaded, the data in use stays: %s", err);
        return;
    }
    vt_api_set_geoip(c->api, geo);
    vt_geoip_free(*c->geo);
    *c->geo = geo;
    vt_log_msg("vantage-collector: SIGHUP: GeoIP reloaded (%zu ASN and %zu country ranges, %zu "
               "MMDB files)",
               vt_geoip_count(geo, 0), vt_geoip_count(geo, 1), vt_geoip_mmdb_count(geo));
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    serve_ctx *c = arg;
    if (c->signals++ == 0)
        vt_log_msg("vantage-collector: %s: finishing in-flight work, then exiting",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
    c->refresh->stop = 1;
    if (c->refresh->ev) vt_timer_cancel(c->refresh->ev);
    c->refresh->ev = NULL;
    vt_sni_test_shutdown(c->sni);
    vt_api_shutdown(c->api);
}

static void print_token(const vt_store_token *t, void *arg)
{
    int *n = arg;
    if ((*n)++ == 0)
        printf("%-16s  %-19s  %-19s  %s\n", "ID", "CREATED (UTC)", "REVOKED (UTC)", "NOTE");
    printf("%-16s  %-19s  %-19s  %s\n", t->id, t->created_at,
           t->revoked_at[0] ? t->revoked_at : "-", t->note);
}

/* An --alternate-url: a URL a probe takes as its collector's (vt_url_check_secure: https, plain
 * http only to loopback), printable ASCII without spaces or quotes (it goes into every check-in
 * answer and a probe's state file). */
static int alternate_url_ok(const char *u, char *err, size_t errlen)
{
    for (const char *p = u; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '\'' || p - u >= 400) {
            snprintf(err, errlen,
                     "--alternate-url takes at most 400 characters, no spaces or "
                     "quotes: '%.100s'",
                     u);
            return 0;
        }
    return vt_url_check_secure("--alternate-url", u, err, errlen) == 0;
}

int main(int argc, char **argv)
{
    /* Before any thread: cJSON's allocator, so that ingest parses each batch into an arena. */
    vt_json_arena_install();
    /* report has its own options (report.c). */
    if (argc > 1 && strcmp(argv[1], "report") == 0) return vt_report_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "delete") == 0) return vt_delete_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "import") == 0) return vt_import_main(argc - 1, argv + 1);
    enum {
        O_LISTEN = 1000,
        O_DB,
        O_REQTOK,
        O_GASN,
        O_GCC,
        O_PRIV,
        O_LOGJSON,
        O_RATE,
        O_BURST,
        O_TIMEOUT,
        O_TV,
        O_HELP,
        O_VERSION,
        O_CMAX,
        O_CTIMEOUT,
        O_RTIMEOUT,
        O_QTIMEOUT,
        O_QGROUPS,
        O_MAXCONN,
        O_ITHREADS,
        O_PROXY,
        O_GMMDB,
        O_NOTE,
        O_SNI_LISTEN,
        O_SNI_CERT,
        O_SNI_KEY,
        O_SNI_PUBLIC,
        O_SNI_RATE,
        O_SNI_BURST,
        O_ALTURL
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"db", required_argument, NULL, O_DB},
        {"require-token", no_argument, NULL, O_REQTOK},
        {"geoip-asn", required_argument, NULL, O_GASN},
        {"geoip-country", required_argument, NULL, O_GCC},
        {"geoip-mmdb", required_argument, NULL, O_GMMDB},
        {"allow-private-control", no_argument, NULL, O_PRIV},
        {"log-json", no_argument, NULL, O_LOGJSON},
        {"rate", required_argument, NULL, O_RATE},
        {"burst", required_argument, NULL, O_BURST},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"targets-version", required_argument, NULL, O_TV},
        {"control-max", required_argument, NULL, O_CMAX},
        {"control-timeout", required_argument, NULL, O_CTIMEOUT},
        {"request-timeout", required_argument, NULL, O_RTIMEOUT},
        {"query-timeout", required_argument, NULL, O_QTIMEOUT},
        {"query-max-groups", required_argument, NULL, O_QGROUPS},
        {"max-connections", required_argument, NULL, O_MAXCONN},
        {"ingest-threads", required_argument, NULL, O_ITHREADS},
        {"trusted-proxy", required_argument, NULL, O_PROXY},
        {"note", required_argument, NULL, O_NOTE},
        {"sni-test-listen", required_argument, NULL, O_SNI_LISTEN},
        {"sni-test-cert", required_argument, NULL, O_SNI_CERT},
        {"sni-test-key", required_argument, NULL, O_SNI_KEY},
        {"sni-test-public", required_argument, NULL, O_SNI_PUBLIC},
        {"sni-test-rate", required_argument, NULL, O_SNI_RATE},
        {"sni-test-burst", required_argument, NULL, O_SNI_BURST},
        {"alternate-url", required_argument, NULL, O_ALTURL},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *db = NULL, *gasn[MAX_GEO], *gcc[MAX_GEO], *gmmdb[MAX_GEO],
               *trusted = NULL, *note = NULL;
    size_t n_gasn = 0, n_gcc = 0, n_gmmdb = 0;
    vt_api_opts o;
    vt_api_opts_default(&o);
    vt_sni_test_opts so;
    vt_sni_test_opts_default(&so);
    int sni_opts = 0; /* an --sni-test-* option other than --sni-test-listen was given */
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            listen = optarg;
            break;
        case O_DB:
            db = optarg;
            break;
        case O_REQTOK:
            o.require_token = 1;
            break;
        case O_GASN:
        case O_GCC:
        case O_GMMDB:
            if ((c == O_GASN ? n_gasn : c == O_GCC ? n_gcc : n_gmmdb) >= MAX_GEO) {
                fprintf(stderr, "vantage-collector: at most %d files per --geoip option\n",
                        MAX_GEO);
                return 2;
            }
            if (c == O_GASN)
                gasn[n_gasn++] = optarg;
            else if (c == O_GCC)
                gcc[n_gcc++] = optarg;
            else
                gmmdb[n_gmmdb++] = optarg;
            break;
        case O_PRIV:
            o.allow_private_control = 1;
            break;
        case O_LOGJSON:
            o.log_json = 1;
            break;
        case O_RATE:
        case O_BURST:
        case O_CMAX:
        case O_CTIMEOUT:
        case O_RTIMEOUT:
        case O_QTIMEOUT:
        case O_QGROUPS:
        case O_MAXCONN:
        case O_TIMEOUT: {
            double v = strtod(optarg, &end);
            if (*end || !*optarg || v < 0 || v > 1e9 ||
                ((c == O_TIMEOUT || c == O_CTIMEOUT || c == O_RTIMEOUT || c == O_MAXCONN ||
                  c == O_QTIMEOUT || c == O_QGROUPS) &&
                 v < 1)) {
                fprintf(stderr, "vantage-collector: bad number '%s'\n", optarg);
                return 2;
            }
            if (c == O_RATE)
                o.rate = v;
            else if (c == O_BURST)
                o.burst = v;
            else if (c == O_CMAX)
                o.control_max = (int)v;
            else if (c == O_CTIMEOUT)
                o.control_timeout_s = (int)v;
            else if (c == O_QGROUPS)
                o.query_max_groups = v > 1e7 ? 10000000 : (int)v;
            else if (c == O_QTIMEOUT)
                o.query_timeout_ms = v > 86400 ? 86400000 : (int)(v * 1000);
            else if (c == O_RTIMEOUT)
                o.request_timeout_s = (int)v;
            else if (c == O_MAXCONN)
                o.max_conns = v > 1e6 ? 1000000 : (int)v;
            else
                o.timeout_s = (int)v;
            break;
        }
        case O_ITHREADS: {
            long v = strtol(optarg, &end, 10);
            if (*end || !*optarg || v < 0 || v > 64) {
                fprintf(stderr, "vantage-collector: --ingest-threads takes 0..64\n");
                return 2;
            }
            o.ingest_threads = (int)v;
            break;
        }
        case O_TV:
            o.targets_version = optarg;
            break;
        case O_NOTE:
            note = optarg;
            break;
        case O_SNI_LISTEN:
            so.listen = optarg;
            break;
        case O_SNI_CERT:
        case O_SNI_KEY:
        case O_SNI_PUBLIC:
            sni_opts = 1;
            if (c == O_SNI_CERT)
                so.cert = optarg;
            else if (c == O_SNI_KEY)
                so.key = optarg;
            else
                so.public_addr = optarg;
            break;
        case O_SNI_RATE:
        case O_SNI_BURST: {
            double v = strtod(optarg, &end);
            if (*end || !*optarg || v < 0 || v > 1e9 || (c == O_SNI_BURST && v < 1)) {
                fprintf(stderr, "vantage-collector: bad number '%s'\n", optarg);
                return 2;
            }
            sni_opts = 1;
            if (c == O_SNI_RATE)
                so.rate_per_min = v;
            else
                so.burst = v;
            break;
        }
        case O_ALTURL: {
            char aerr[600];
            if (o.n_alternate_urls >= VT_API_MAX_ALTERNATES) {
                fprintf(stderr, "vantage-collector: --alternate-url at most %d times\n",
                        VT_API_MAX_ALTERNATES);
                return 2;
            }
            if (!alternate_url_ok(optarg, aerr, sizeof(aerr))) {
                fprintf(stderr, "vantage-collector: %s\n", aerr);
                return 2;
            }
            o.alternate_urls[o.n_alternate_urls++] = optarg;
            break;
        }
        case O_PROXY:
            if (trusted) {
                fprintf(stderr, "vantage-collector: give --trusted-proxy once, as a "
                                "comma-separated list\n");
                return 2;
            }
            trusted = optarg;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return 0;
        case O_VERSION:
            printf("vantage-collector %s\n", VT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    char err[512] = "";

    if (strcmp(cmd, "token") == 0) {
        const char *sub = optind + 1 < argc ? argv[optind + 1] : NULL;
        if (!sub || !db ||
            (strcmp(sub, "create") && strcmp(sub, "list") &&
             (strcmp(sub, "revoke") || optind + 2 >= argc))) {
            fprintf(stderr, "usage: vantage-collector token create [--note TEXT]|list|revoke ID "
                            "--db URL\n");
            return 2;
        }
        if (vt_store_url_check(db, err, sizeof(err)) < 0) {
            fprintf(stderr, "vantage-collector: %s\n", err);
            return 2;
        }
        if (note && strcmp(sub, "create") != 0) {
            fprintf(stderr, "vantage-collector: --note goes with token create\n");
            return 2;
        }
        if (note && !vt_store_token_note_ok(note, err, sizeof(err))) {
            fprintf(stderr, "vantage-collector: %s\n", err);
            return 2;
        }
        /* Only create makes a new database (the first token of a new collector); list and
         * revoke of a mistyped --db must not leave an empty database behind. */
        vt_store *s = strcmp(sub, "create") == 0 ? vt_store_open_quick(db, err, sizeof(err))
                                                 : vt_store_open_existing(db, err, sizeof(err));
        if (!s) {
            fprintf(stderr, "vantage-collector: %s\n", err);
            return 1;
        }
        int rc = 0;
        if (strcmp(sub, "create") == 0) {
            char tok[65], id[17];
            if (vt_store_token_create(s, note, tok, id, err, sizeof(err)) < 0) {
                fprintf(stderr, "vantage-collector: %s\n", err);
                rc = 1;
            } else {
                printf("%s\n", tok);
                fprintf(stderr,
                        "vantage-collector: token %s created; it is shown only now (the "
                        "collector keeps only its SHA-256)\n",
                        id);
            }
        } else if (strcmp(sub, "list") == 0) {
            int n = 0;
            if (vt_store_token_list(s, print_token, &n, err, sizeof(err)) < 0) {
                fprintf(stderr, "vantage-collector: %s\n", err);
                rc = 1;
            } else if (n == 0) {
                fprintf(stderr, "vantage-collector: no tokens\n");
            }
        } else if (strcmp(sub, "revoke") == 0 && optind + 2 < argc) {
            int r = vt_store_token_revoke(s, argv[optind + 2], err, sizeof(err));
            if (r < 0) {
                fprintf(stderr, "vantage-collector: %s\n", err);
                rc = 1;
            } else if (r == 1) {
                fprintf(stderr, "vantage-collector: no active token with id '%s'\n",
                        argv[optind + 2]);
                rc = 1;
            } else {
                fprintf(stderr, "vantage-collector: token %s revoked\n", argv[optind + 2]);
            }
        } else {
            fprintf(stderr, "usage: vantage-collector token create|list|revoke ID --db URL\n");
            rc = 2;
        }
        vt_store_close(s);
        return rc;
    }
    if (strcmp(cmd, "serve") != 0) {
        fprintf(stderr, "vantage-collector: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    vt_log_set_json(o.log_json);
    if (!listen || !db) {
        fprintf(stderr, "vantage-collector: serve needs --listen ADDR:PORT and --db URL\n");
        return 2;
    }
    char lhost[128];
    int lport;
    if (vt_api_parse_listen(listen, lhost, &lport, err, sizeof(err)) < 0 ||
        vt_store_url_check(db, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        return 2;
    }
    if (sni_opts && !so.listen) {
        fprintf(stderr, "vantage-collector: the --sni-test-* options go with --sni-test-listen\n");
        return 2;
    }
    vt_proxies *proxies = NULL;
    if (trusted && !(proxies = vt_proxies_parse(trusted, err, sizeof(err)))) {
        fprintf(stderr, "vantage-collector: %s\n", err);
        return 2;
    }
    o.proxies = proxies;

    int rc = 1;
    vt_store *store = NULL;
    vt_geoip *geo = NULL;
    vt_loop *loop = NULL;
    vt_api *api = NULL;
    vt_sni_test *sni = NULL;
    struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL;
    refresh_ctx refresh = {0};
    const geo_files files = {gasn, gcc, gmmdb, n_gasn, n_gcc, n_gmmdb};
    signal(SIGPIPE, SIG_IGN);
    /* Every open connection is a descriptor: allow as many as the system lets us. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Connections beyond the descriptor limit would stop accept() for everyone: keep the cap
     * below it, with room for the database, logs and control measurements. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)o.max_conns + 64 > rl.rlim_cur) {
        int cap = rl.rlim_cur > 128 ? (int)(rl.rlim_cur - 64) : 64;
        if (cap < o.max_conns) {
            vt_log_msg("vantage-collector: at most %d connections (descriptor limit %llu)", cap,
                       (unsigned long long)rl.rlim_cur);
            o.max_conns = cap;
        }
    }
    geo = load_geo(&files, err, sizeof(err));
    if (!geo) goto fail;
    store = vt_store_open(db, err, sizeof(err));
    if (!store) goto fail;
    loop = vt_loop_new(err, sizeof(err));
    if (!loop) goto fail;
    o.db_url = db;
    if (so.listen) {
        sni = vt_sni_test_new(loop, &so, err, sizeof(err));
        if (!sni) goto fail;
        o.sni_test_endpoint = vt_sni_test_endpoint(sni);
        o.sni_test_pin = vt_sni_test_pin(sni);
    }
    api = vt_api_new(loop, store, geo, &o, err, sizeof(err));
    if (!api || vt_api_listen(api, listen, err, sizeof(err)) < 0) goto fail;
    refresh = (refresh_ctx){.loop = loop, .store = store, .api = api};
    refresh.ev = vt_timer_start(loop, VT_EPISODES_REFRESH_MS, on_refresh, &refresh);
    if (!refresh.ev) {
        snprintf(err, sizeof(err), "cannot start the episode timer");
        goto fail;
    }
    serve_ctx sc = {.api = api, .refresh = &refresh, .geo_files = &files, .geo = &geo, .sni = sni};
    sig_term = evsignal_new(vt_loop_base(loop), SIGTERM, on_signal, &sc);
    sig_int = evsignal_new(vt_loop_base(loop), SIGINT, on_signal, &sc);
    sig_hup = evsignal_new(vt_loop_base(loop), SIGHUP, on_hup, &sc);
    if (!sig_term || !sig_int || !sig_hup || evsignal_add(sig_term, NULL) < 0 ||
        evsignal_add(sig_int, NULL) < 0 || evsignal_add(sig_hup, NULL) < 0) {
        snprintf(err, sizeof(err), "cannot install signal handlers");
        goto fail;
    }
    vt_log_msg("vantage-collector %s: listening on port %d (store %s, %zu ASN and %zu country "
               "ranges, %zu MMDB files%s%s)",
               VT_VERSION, vt_api_port(api), vt_store_name(store), vt_geoip_count(geo, 0),
               vt_geoip_count(geo, 1), vt_geoip_mmdb_count(geo),
               o.require_token ? ", tokens required" : "",
               proxies ? ", X-Forwarded-For from trusted proxies" : "");
    if (sni)
        vt_log_msg("vantage-collector: SNI test server on port %d (certificate %s, "
                   "pin %s, check-in announces %s)",
                   vt_sni_test_port(sni), so.cert ? so.cert : "self-signed, made at start",
                   vt_sni_test_pin(sni),
                   vt_sni_test_endpoint(sni) ? vt_sni_test_endpoint(sni)
                                             : "nothing: give --sni-test-public");
    vt_loop_run(loop);
    vt_log_msg("vantage-collector: stopped");
    rc = 0;
    goto done;
fail:
    vt_log_msg("vantage-collector: %s", err[0] ? err : "out of memory");
done:
    if (refresh.ev) vt_timer_cancel(refresh.ev);
    if (sig_term) event_free(sig_term);
    if (sig_int) event_free(sig_int);
    if (sig_hup) event_free(sig_hup);
    vt_api_free(api);
    vt_sni_test_free(sni);
    vt_loop_free(loop);
    vt_store_close(store);
    vt_geoip_free(geo);
    vt_proxies_free(proxies);
    vt_json_arena_trim();
    return rc;
}
