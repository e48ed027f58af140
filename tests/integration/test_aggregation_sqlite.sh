#!/bin/sh
# Rollups, detection and the query API on SQLite (aggregation_suite.py).
exec python3 "$(dirname "$0")/aggregation_suite.py" sqlite "$@"
