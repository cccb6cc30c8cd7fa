#!/usr/bin/env bash
# Runs the README "Performance" matrix on this machine: for each client count and event size,
# a no-op fasthttp baseline and hookd (fresh database, one subscribed endpoint answering 200).
# Loopback only; every process started here is stopped by PID. Prints one JSON line per run.
#   bash tests/loadgen/matrix.sh > /tmp/matrix.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/hookd" .
go build -o "$bin/loadgen" ./tests/loadgen
run() { # conns size events
  "$bin/loadgen" -noop -c "$1" -size "$2" -n "$3"
  rm -rf /tmp/hookd-load
  "$bin/hookd" run -config tests/loadgen/hookd.toml >/dev/null 2>&1 &
  local pid=$!
  until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.05; done
  "$bin/loadgen" -c "$1" -size "$2" -n "$3" -pid "$pid" || true
  kill -TERM "$pid"; wait "$pid" || true
}
for c in 1 8 64 256; do
  n=$(( c == 1 ? 5000 : (c == 8 ? 40000 : 150000) ))
  run "$c" 256 "$n"
done
run 64 4096 60000
run 64 65536 10000
rm -rf /tmp/hookd-load
