/* Rollups and detection (docs/methodology.md, "Aggregation and detection").
 *
 * Every accepted measurement updates one hourly bucket keyed (hour, probe_cc, probe_asn,
 * target_id, test_name) in the table rollup_hourly (and the same per day, per country with
 * probe_asn '' and per country and day), inside the store's insert transaction, on
 * SQLite and PostgreSQL alike (same schema, TEXT and BIGINT columns only). A bucket holds counts
 * per verdict, the confirmed and intermittent counts, a k-minimum-values set of report ids
 * (distinct probes and each report's own anomaly share, which caps its weight) and fixed log-scale
 * histograms of latency and throughput, all of which merge exactly across buckets. Detection reads
 * buckets only. */
#ifndef VANTAGE_COLLECTOR_ROLLUP_H
#define VANTAGE_COLLECTOR_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- histograms ---- */
#define VT_HIST_BINS 64
enum { VT_HIST_LATENCY = 0, VT_HIST_THROUGHPUT = 1 };
/* latency in ms: bins from 1 ms to 60 s; throughput in bit/s: 1 kbit/s to 10 Gbit/s. Values
 * outside go to the first or last bin. */
typedef struct vt_hist {
    uint32_t c[VT_HIST_BINS];
} vt_hist;
int vt_hist_bin(int kind, double v);
/* Lower edge of bin i (i = VT_HIST_BINS gives the upper edge of the last bin). */
double vt_hist_edge(int kind, int i);
void vt_hist_add(vt_hist *h, int kind, double v);
void vt_hist_merge(vt_hist *into, const vt_hist *h);
uint64_t vt_hist_total(const vt_hist *h);
/* The q-quantile (0..1): the geometric centre of the bin holding that rank; -1 when empty. */
double vt_hist_quantile(const vt_hist *h, int kind, double q);
/* Sparse text "bin:count,bin:count"; decode ignores junk. */
void vt_hist_encode(const vt_hist *h, char *out, size_t n);
void vt_hist_decode(vt_hist *h, const char *s);

/* ---- report sets: a k-minimum-values sketch over hashed report ids ---- */
#define VT_RSET_K 64
typedef struct vt_rset_entry {
    uint32_t h;    /* 32-bit hash of report_id */
    uint32_t n, a; /* measurements and anomalies of that report in the bucket */
} vt_rset_entry;
typedef struct vt_rset {
    vt_rset_entry e[VT_RSET_K + 1];
    int len;
} vt_rset;
uint32_t vt_rset_hash(const char *report_id);
void vt_rset_add(vt_rset *s, uint32_t h, uint32_t n, uint32_t a);
void vt_rset_merge(vt_rset *into, const vt_rset *s);
/* Distinct reports: exact below K, the KMV estimate above. */
double vt_rset_distinct(const vt_rset *s);
/* The probe runs to report beside a measurement count: vt_rset_distinct, which above K is an
 * estimate that can come out above the measurements it counts (each run sent at least one),
 * clamped to measurements. */
double vt_rset_runs(const vt_rset *s, int64_t measurements);
/* Mean over (sampled) reports of each report's anomaly share: every report weighs the same however
 * many measurements it sent. -1 when empty. */
double vt_rset_share(const vt_rset *s);
void vt_rset_encode(const vt_rset *s, char *out, size_t n);
void vt_rset_decode(vt_rset *s, const char *s_text);

/* ---- verdict classes ---- */
enum {
    VT_V_OK,
    VT_V_DNS,
    VT_V_TCP,
    VT_V_TLS,
    VT_V_HTTP,
    VT_V_THROTTLED,
    VT_V_DOWN,
    VT_V_OFFLINE,
    VT_V_INCONCLUSIVE,
    VT_V_FAILURE,
    VT_V_COUNT
};
extern const char *const vt_verdict_names[VT_V_COUNT];
extern const char *const vt_verdict_columns[VT_V_COUNT];
int vt_verdict_index(const char *name); /* -1 unknown */
int vt_verdict_is_anomaly(int v);
int vt_verdict_is_failure(int v);

/* ---- one bucket ---- */
typedef struct vt_cell {
    char hour[20]; /* "YYYY-MM-DD HH:00:00" */
    char cc[3], asn[16], target[129], test[65], platform[65], category[65];
    int64_t n, v[VT_V_COUNT], confirmed;
    /* measurements whose failure came and went when the probe tried again
     * (test_keys.evidence.intermittent; docs/methodology.md, "Intermittent blocking") */
    int64_t intermittent;
    vt_hist lat, tput;
    vt_rset rs;
    double probes, share; /* distinct runs and per-run anomaly share (-1: none) as stored */
} vt_cell;

/* One measurement's contribution, read from its stored JSON body. 0 ok, -1 not usable. */
typedef struct vt_obs {
    char hour[20];
    char cc[3], asn[16], target[129], test[65], platform[65], category[65];
    int verdict, confirmed, intermittent;
    uint32_t report;
    double latency_ms, throughput_bps; /* < 0 when absent */
} vt_obs;
int vt_obs_from_json(const char *body, vt_obs *o);

/* ---- database access shared with aggregate.c and report.c ---- */
/* Called once per row; cols[i] NULL for SQL NULL. Return nonzero to stop early. */
typedef int (*vt_db_row_fn)(void *arg, int ncols, const char *const *cols);
/* sql uses '?' placeholders (rewritten to $n for PostgreSQL); params are text. */
int vt_db_query(vt_store *s, const char *sql, const char *const *params, int np, vt_db_row_fn fn,
                void *arg, char *err, size_t errlen);
/* Bounds the time of each later vt_db_query on s's own connection to ms (0: no bound again);
 * one that runs over fails with an error vt_db_timed_out recognises. For the loop's queries. */
void vt_db_time_limit(vt_store *s, int ms);
int vt_db_timed_out(const char *err);
/* Finalises the statements cached for a SQLite connection; call before closing it. */
void vt_db_forget(void *native);
/* The columns of rollup_hourly in the order vt_cell_from_cols reads them. */
extern const char *const vt_cell_select;
int vt_cell_from_cols(vt_cell *c, int ncols, const char *const *cols);

/* Creates the rollup tables (rollup_hourly, rollup_daily, the per-country rollup_cc_hourly and
 * rollup_cc_daily) and the episode tables (idempotent); rebuilds the buckets from measurements
 * when they are empty but measurements are not (a database from before rollups), the per-country
 * ones from the per-network ones, and the episodes when their table is new or the buckets were
 * rebuilt. */
int vt_rollup_init(vt_store *s, int refresh_ms, char *err, size_t errlen);
/* ... and then refreshes the episodes marked dirty for at most refresh_ms (0: none; the
 * collector's timer takes the rest, and `report` detects from the buckets itself). */
/* Deletes the measurements `where` selects (SQL over the table measurements, '?' placeholders,
 * params as text), rebuilds the rollup tables from those that remain and marks every network for
 * episode detection again (vt_episodes_refresh), in one transaction that serialises with ingest
 * (the rollup lock on PostgreSQL, the write lock on SQLite): nothing of what was deleted stays in
 * a count, a probe-run sketch or an episode, and a collector serving meanwhile adds its later
 * uploads to the rebuilt buckets. dry_run: counts and changes nothing. *matched: measurements
 * selected; *rows: those the rollups were rebuilt from (0 when nothing was deleted). On SQLite
 * the freed pages are zeroed (secure_delete) and the write-ahead log emptied after the commit;
 * *copies_left: 1 when bytes of what was deleted may remain in the files (PostgreSQL's dead rows,
 * or a SQLite log that a reader kept from being emptied). */
int vt_rollup_delete(vt_store *s, const char *where, const char *const *params, int np, int dry_run,
                     long long *matched, size_t *rows, int *copies_left, char *err, size_t errlen);
/* `vantage-collector delete` (delete.c): argv[0] is "delete". */
int vt_delete_main(int argc, char **argv);
/* `vantage-collector import` (import.c): argv[0] is "import". */
int vt_import_main(int argc, char **argv);
/* Adds the rows with inserted == 1 to their buckets. Called by the back ends inside their insert
 * transaction, before COMMIT. */
int vt_rollup_apply(vt_store *s, const vt_store_row *rows, size_t n, char *err, size_t errlen);
/* PostgreSQL: ANALYZE of the rollup tables that ingest grew past their statistics, outside any
 * transaction (vt_store_upkeep calls it after a batch's commit). 0 when nothing to do. */
int vt_rollup_maintain(vt_store *s, char *err, size_t errlen);
/* Registers the SQL functions SQLite's bucket upserts merge with (a sqlite3 *); 0 ok. */
int vt_rollup_sqlite_functions(void *db);
/* Frees the bucket sets vt_rollup_apply keeps with the store between batches (vt_store_close). */
void vt_rollup_forget(vt_store *s);

/* ---- detection ---- */
#define VT_DETECT_BLOCK_SHARE 0.5 /* per-report anomaly share to call an hour blocked */
#define VT_DETECT_MIN_PROBES 2    /* distinct reports needed in that hour */
#define VT_DETECT_SLOW_RATIO 3.0  /* median latency x3 or throughput /3 vs baseline */
#define VT_DETECT_EXTREME_RATIO 10.0
#define VT_DETECT_BASELINE_HOURS 168
#define VT_DETECT_BASELINE_MIN 20  /* samples in the baseline before slowdowns are judged */
#define VT_DETECT_OUTAGE_SHARE 0.5 /* canaries failing this share: the network is down */
#define VT_DETECT_OUTAGE_MIN 3     /* and at least this many failed canary measurements */
/* Hours without data that do not split an episode: probes measure every 6 hours
 * (dist/systemd/vantage-probe.timer), a run may spill into the next hour, so a network's hours
 * with data can be 7 apart; a smaller gap made each slot an episode of its own, too small to
 * count (VT_DETECT_MIN_ANOMALIES, VT_DETECT_MIN_SLOW_HOURS). */
#define VT_DETECT_GAP_HOURS 6
#define VT_DETECT_MIN_ANOMALIES 5  /* a blocking episode needs this many anomalous measurements */
#define VT_DETECT_MIN_SLOW_HOURS 2 /* a slowdown episode needs this many slow hours */
/* The rules above as a number, stored with the episodes: bump it when one changes, and a
 * collector re-detects every network at its next start. 2: VT_DETECT_GAP_HOURS 2 -> 6.
 * 3: an outage's top_verdict is the canaries' own most common failing verdict. */
#define VT_DETECT_RULES 3

typedef struct vt_episode {
    char kind[16];  /* "blocking", "slowdown", "outage" */
    char scope[16]; /* "targeted", "network" */
    char cc[3], asn[16], target[129], test[65], platform[65], category[65];
    char start[20], end[20]; /* [start, end) hours */
    int ongoing;             /* the last bucket of the range is still in it */
    int confirmed;
    int64_t measurements, anomalies, confirmed_count, failures;
    int64_t intermittent_count; /* measurements whose failure came and went (vt_cell) */
    double max_probes;
    double share;         /* anomaly share over the episode's buckets, per report */
    char top_verdict[24]; /* most common anomalous verdict */
    double latency_ms, baseline_latency_ms, throughput_bps, baseline_throughput_bps;
    double policer_bps; /* > 0 when throughput sat near a known policer rate */
    int hours;
} vt_episode;

typedef struct vt_detect_query {
    const char *cc, *asn, *target, *platform; /* NULL: any */
    char since[20], until[20];                /* "YYYY-MM-DD HH:MM:SS"; "" open */
} vt_detect_query;

/* Detects episodes overlapping [since, until); *out malloc'd (free it), sorted by start. */
int vt_detect(vt_store *s, const vt_detect_query *q, vt_episode **out, size_t *n, char *err,
              size_t errlen);

/* Episodes kept in the table `episodes`: ingest marks the series it touched in episodes_dirty
 * (the whole network when a canary changed); this re-detects up to max of them over their whole
 * history and replaces their stored episodes, in one transaction. Returns how many dirty entries
 * it took (0: none left), -1 on error. vt_rollup_init runs it for a while at start; the
 * collector's event loop every VT_EPISODES_REFRESH_MS. */
#define VT_EPISODES_REFRESH_MS 2000
int vt_episodes_refresh(vt_store *s, int max, char *err, size_t errlen);
/* The same without waiting for the rollup lock on PostgreSQL (the event loop's refresh must not
 * wait for an ingest thread's commit): -2 when another transaction holds it. */
int vt_episodes_refresh_nowait(vt_store *s, int max, char *err, size_t errlen);
/* The stored episodes overlapping q's range with q's filters, sorted like vt_detect's, ongoing
 * when the last hour is the network's newest before until. Unlike vt_detect, an episode is shown
 * whole (detected over the series' whole history), not cut at since - 7 days or until. */
int vt_episodes_load(vt_store *s, const vt_detect_query *q, vt_episode **out, size_t *n, char *err,
                     size_t errlen);

/* Time helpers: "YYYY-MM-DD HH:MM:SS" <-> epoch (UTC); -1 when malformed. */
long long vt_rollup_parse_time(const char *s);
void vt_rollup_format_time(long long t, char out[20]);

#endif
