#!/bin/sh
# The collector's integration suite (collector_suite.py) against a real PostgreSQL 15 the suite starts (initdb in a temporary directory, unix socket).
exec python3 "$(dirname "$0")/collector_suite.py" pg "$@"
