#!/bin/sh
# `vantage-collector import` of real OONI measurements into an SQLite file (import_suite.py).
exec python3 "$(dirname "$0")/import_suite.py" sqlite "$@"
