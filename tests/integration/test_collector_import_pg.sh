#!/bin/sh
# `vantage-collector import` of real OONI measurements into a PostgreSQL 15 the suite starts (import_suite.py).
exec python3 "$(dirname "$0")/import_suite.py" pg "$@"
