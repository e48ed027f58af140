/* Read-only query API and the dashboard's files (docs/api.md):
 *   GET /api/v1/aggregation, /api/v1/episodes, /api/v1/measurements, / and /static/...
 * Every answer carries Content-Security-Policy and X-Content-Type-Options: nosniff. */
#ifndef VANTAGE_COLLECTOR_AGGREGATE_H
#define VANTAGE_COLLECTOR_AGGREGATE_H

#include <event2/http.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "rollup.h"
#include "store.h"

/* Answers GET/HEAD requests for the paths above: returns the HTTP status sent and copies the
 * route (for the log) into route; 0 when the path is not one of them (nothing sent). */
/* timeout_ms bounds each query's time (a 503 beyond); max_groups an aggregation's groups (a 400
 * asking to narrow it beyond). */
int vt_aggregate_handle(vt_store *s, struct evhttp_request *req, char *route, size_t routelen,
                        int timeout_ms, int max_groups);

/* 1 when uri is one of the query endpoints (not a static file): the caller rate-limits them. */
int vt_aggregate_is_query(const char *uri);
/* 1 when uri's path is one of the dashboard's files (/, /index.html, /static/...). */
int vt_aggregate_is_page(const char *uri);

/* The dashboard's directory: $VANTAGE_WEB_DIR, the source tree's collector/web when run from a
 * build directory, <the executable's directory>/../share/vantage/web when it holds index.html (a
 * relocated install), else VT_DATADIR "/web". */
const char *vt_aggregate_web_dir(void);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[Z]" or "YYYY-MM-DD HH:MM:SS" into
 * "YYYY-MM-DD HH:MM:SS"; -1 when not a real date. */
int vt_aggregate_parse_date(const char *in, char out[20]);

/* 1 when v is a name a query or `delete` may take: 1 to max bytes of valid UTF-8 (what ingest
 * stores; PostgreSQL refuses anything else in a parameter with an error), no control characters.
 * Names come from probes (untrusted, any text): SQL takes them as parameters. */
int vt_aggregate_name_ok(const char *v, size_t max);

/* An episode as the API shows it (also used by the report). */
cJSON *vt_episode_json(const vt_episode *e);

/* `vantage-collector report ...` (report.c); argv[0] is "report". Returns the exit status. */
int vt_report_main(int argc, char **argv);

#endif
