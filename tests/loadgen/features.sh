#!/usr/bin/env bash
# The README "Performance" figures for ordered delivery and filters, each next to the no-op
# baseline of the same run: delivery to a receiver that takes 1 ms to answer with ordering =
# "none" and "fifo", and ingest with and without a filter on the endpoint. Loopback only;
# every process started here is stopped by PID. Prints one JSON line per run, labelled.
#   bash tests/loadgen/features.sh > /tmp/features.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/hookd" .
go build -o "$bin/loadgen" ./tests/loadgen
base=tests/loadgen/hookd.toml
# Endpoint keys go after events = [...], before the signing table.
with() { sed "s|^events = \[\"\*\"\]$|&\n$1|" "$base" > "$bin/$2.toml"; echo "$bin/$2.toml"; }
run() { # label config loadgen-args...
  local label=$1 cfg=$2; shift 2
  rm -rf /tmp/hookd-load
  "$bin/hookd" run -config "$cfg" >/dev/null 2>&1 &
  local pid=$!
  until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.05; done
  echo -n "$label "
  "$bin/loadgen" -pid "$pid" "$@" || true
  kill -TERM "$pid"; wait "$pid" || true
}
echo -n "noop "; "$bin/loadgen" -noop -c 64 -size 256 -n 150000
# Delivery rates: events posted in batches, so ingest is far ahead and delivery is the limit.
run "none-1ms" "$base" -c 4 -batch 200 -n 60000 -latency 1ms
run "fifo-1ms" "$(with 'ordering = "fifo"' fifo)" -c 4 -batch 200 -n 4000 -latency 1ms
run "fifo-0ms" "$(with 'ordering = "fifo"' fifo)" -c 4 -batch 200 -n 4000
run "ingest-nofilter" "$base" -c 64 -size 256 -n 150000
run "ingest-filter" "$(with "filter = 'data.text != \"\" \&\& type startsWith \"load.\"'" filter)" -c 64 -size 256 -n 150000
# What a busy FIFO endpoint costs everyone else: a second, ordered endpoint gets every event too
# and drains its backlog (one commit per delivery) while ingest runs. Only ingest_eps counts here.
{ cat "$base"; printf '\n[[endpoints]]\nname = "ordered"\nurl = "http://127.0.0.1:9100/ordered"\nevents = ["*"]\nordering = "fifo"\n'; } > "$bin/busyfifo.toml"
run "ingest-busy-fifo" "$bin/busyfifo.toml" -c 64 -size 256 -n 150000
# No deliveries: an endpoint subscribed to nothing, and one whose filter rejects every event.
sed 's|^events = \["\*"\]$|events = ["nomatch"]|' "$base" > "$bin/unsubscribed.toml"
run "ingest-unsubscribed" "$bin/unsubscribed.toml" -c 64 -size 256 -n 150000 -receiver ""
run "ingest-filter-rejects" "$(with "filter = 'data.text == \"nothing\"'" reject)" -c 64 -size 256 -n 150000 -receiver ""
rm -rf /tmp/hookd-load
