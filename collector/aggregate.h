/* Read-only query API and the dashboard's files (docs/api.md):
 *   GET /api/v1/aggregation, /api/v1/episodes, /api/v1/measurements, / and /static/...
 * Every answer carries Content-Security-Policy and X-Content-Type-Options: nosniff. */
#ifndef VANTAGE_COLLECTOR_AGGREGATE_H
#define VANTAGE_COLLECTOR_AGGREGATE_H

#include <event2/http.h>
#include <stddef.h>

#include "store.h"

/* Answers GET/HEAD requests for the paths above: returns the HTTP status sent and copies the
 * route (for the log) into route; 0 when the path is not one of them (nothing sent). */
int vt_aggregate_handle(vt_store *s, struct evhttp_request *req, char *route, size_t routelen);

/* The dashboard's directory: $VANTAGE_WEB_DIR, the source tree's collector/web when run from a
 * build directory, else VT_DATADIR "/web". */
const char *vt_aggregate_web_dir(void);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[Z]" or "YYYY-MM-DD HH:MM:SS" into
 * "YYYY-MM-DD HH:MM:SS"; -1 when not a real date. */
int vt_aggregate_parse_date(const char *in, char out[20]);

#endif
