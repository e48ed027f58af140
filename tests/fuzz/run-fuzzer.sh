#!/bin/sh
# run-fuzzer.sh FUZZER SECONDS SCRATCH CORPUS REGRESS: replays every regression input (each must
# run clean), then fuzzes for SECONDS, new inputs going to SCRATCH, seeds read from CORPUS.
set -eu
fuzzer=$1 secs=$2 scratch=$3 corpus=$4 regress=$5
mkdir -p "$scratch"
if [ -d "$regress" ] && [ -n "$(ls -A "$regress" 2>/dev/null)" ]; then
    echo "== regression inputs: $regress"
    "$fuzzer" -rss_limit_mb=2048 "$regress"/*
fi
dirs="$scratch"
[ -d "$corpus" ] && dirs="$dirs $corpus"
echo "== fuzzing ${secs}s"
# shellcheck disable=SC2086
exec "$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$scratch/" $dirs
