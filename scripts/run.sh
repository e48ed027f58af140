#!/usr/bin/env bash
# `make run`: measure the default targets, upload them to a local embedded collector, and show
# the summary. Everything lives under out/ (measurements, the probe's state, the collector's DB).
set -euo pipefail
build=${1:-build}
shift || true
top=$(cd "$(dirname "$0")/.." && pwd)
out="${VT_RUN_OUT:-$top/out}" # VT_RUN_OUT: another place for all of it (the tests use one)
case "$build" in /*) ;; *) build="$top/$build" ;; esac
probe="$build/probe/vantage-probe"
collector="$build/collector/vantage-collector"
mkdir -p "$out"

cpid=
cleanup() { [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null; true; }
trap cleanup EXIT INT TERM

upload_args=()
if [ -x "$collector" ]; then
    # The local collector lives on 127.0.0.1. In a fresh network namespace (`unshare -n`) the
    # loopback interface starts down: bring it up when we may (it reaches nothing outside).
    if command -v ip >/dev/null && ! ip -o link show lo 2>/dev/null | grep -q '[<,]UP[,>]'; then
        if [ "$(id -u)" = 0 ] && ip link set lo up 2>/dev/null; then
            echo "vantage: the loopback interface was down (an isolated network namespace?);" \
                "brought it up for the local collector" >&2
        else
            echo "vantage: warning: the loopback interface is down, so the local collector" \
                "cannot be reached; measurements will wait in $out/state (run as root, or" \
                "\`ip link set lo up\`)" >&2
        fi
    fi
    # An embedded collector on a free loopback port, storing into out/collector.db.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$collector" serve --listen "127.0.0.1:$port" --db "sqlite:$out/collector.db" \
        2>>"$out/collector.log" &
    cpid=$!
    up=0
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1 && { up=1; break; }
        sleep 0.1
    done
    [ "$up" = 1 ] || echo "vantage: warning: the local collector does not answer on" \
        "127.0.0.1:$port (see $out/collector.log); measurements will wait in $out/state" >&2
    upload_args=(--collector "http://127.0.0.1:$port" --state-dir "$out/state")
    echo "vantage: local collector on 127.0.0.1:$port (database $out/collector.db)" >&2
fi

echo "vantage: measuring the default targets; measurements go to $out/measurements.jsonl" >&2
set +e
# Consent: on a terminal the probe shows what it does and the risks, and asks for an explicit
# yes (once; it is recorded in out/state). Without a terminal nobody can answer, so typing
# `make run` counts as accepting, and we say so.
consent=()
if [ ! -t 0 ] || [ ! -t 2 ]; then
    echo "vantage: no terminal to ask on: running \`make run\` accepts the risks shown by" \
        "\`$probe consent\`" >&2
    consent=(--accept-risks)
fi
"$probe" run "${consent[@]}" "${upload_args[@]}" --output "$out/measurements.jsonl" "$@"
rc=$?
set -e
echo >&2
if [ -s "$out/measurements.jsonl" ]; then
    "$probe" summary "$out/measurements.jsonl" || true
fi
if [ -n "$cpid" ]; then
    n=$(sqlite3 "$out/collector.db" 'select count(*) from measurements' 2>/dev/null || echo '?')
    echo "vantage: the local collector holds $n measurements ($out/collector.db)"
    echo "vantage: to see them on its dashboard: $collector serve --db sqlite:$out/collector.db" \
        "--listen 127.0.0.1:8080, then open http://127.0.0.1:8080/"
fi
exit $rc
