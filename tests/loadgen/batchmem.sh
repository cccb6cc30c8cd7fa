#!/usr/bin/env bash
# Issue 11's batch-memory figure: sixteen concurrent 16 MB batches (64 events of 250 KB) against
# tests/loadgen/hookd.toml: how many are accepted or answered 503 busy, peak RSS, and the heap
# after a collection. Loopback only; the daemon started here is stopped by PID.
#   bash tests/loadgen/batchmem.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin" /tmp/hookd-load' EXIT
go build -o "$bin/hookd" .
python3 -c 'import json; print(json.dumps([{"type": "big", "data": {"blob": "x" * 250000}} for _ in range(64)]))' > "$bin/batch.json"
rm -rf /tmp/hookd-load
"$bin/hookd" run -config tests/loadgen/hookd.toml >/dev/null 2>&1 &
pid=$!
until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.05; done
for _ in $(seq 16); do
  curl -s -o /dev/null -w "%{http_code}\n" -X POST 127.0.0.1:8525/v1/events/batch \
    -H 'Content-Type: application/json' --data-binary @"$bin/batch.json" &
done | sort | uniq -c
grep VmHWM "/proc/$pid/status"
curl -s "127.0.0.1:8526/debug/pprof/heap?gc=1" -o /dev/null   # admin.pprof = true in hookd.toml
curl -s 127.0.0.1:8526/metrics | grep '^go_memstats_heap_alloc_bytes'
kill -TERM "$pid"; wait "$pid" || true
