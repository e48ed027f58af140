#!/bin/sh
# The collector's integration suite (collector_suite.py) against a temporary SQLite database.
exec python3 "$(dirname "$0")/collector_suite.py" sqlite "$@"
