#!/bin/sh
# Rollups, detection and the query API on a PostgreSQL 15 the suite starts (aggregation_suite.py).
exec python3 "$(dirname "$0")/aggregation_suite.py" pg "$@"
