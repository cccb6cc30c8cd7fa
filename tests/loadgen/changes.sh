#!/usr/bin/env bash
# Changes of different managed endpoints a second: N endpoints over N tenants created through the
# admin API, then each PATCHed once over C connections (default 400 and 32), on an otherwise idle
# daemon. Loopback only; the daemon started here is stopped by its PID. JSON lines.
#   bash tests/loadgen/changes.sh [N] [C]        HOOKD=/path/to/hookd bash tests/loadgen/changes.sh
# (HOOKD: another build of hookd to measure, e.g. an older one, with this loadgen.)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-400} C=${2:-32}
bin=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$bin" /tmp/hookd-tenants' EXIT
go build -o "$bin/hookd" .
go build -o "$bin/loadgen" ./tests/loadgen
rm -rf /tmp/hookd-tenants
"${HOOKD:-$bin/hookd}" run -config tests/loadgen/tenants.toml >/dev/null 2>&1 & pid=$!
until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.01; done
"$bin/loadgen" -create-endpoints "$N" -c "$C"
"$bin/loadgen" -patch-endpoints "$N" -c "$C"
kill -TERM "$pid"; wait "$pid" || true; pid=
