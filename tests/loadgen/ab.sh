#!/usr/bin/env bash
# Interleaved A/B of two builds at 64 clients, 256 B events: a no-op fasthttp handler, hookd
# built from REV, and hookd built from the working tree, three rounds. Loopback only; every
# process started here is stopped by PID. One JSON line per run, prefixed noop/old/new.
#   bash tests/loadgen/ab.sh REV
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:?usage: ab.sh REV}
bin=$(mktemp -d)
trap 'git worktree remove --force "$bin/old-src" >/dev/null 2>&1 || true; rm -rf "$bin"' EXIT
git worktree add -q "$bin/old-src" "$rev"
(cd "$bin/old-src" && CGO_ENABLED=0 go build -o "$bin/hookd-old" .)
CGO_ENABLED=0 go build -o "$bin/hookd-new" .
go build -o "$bin/loadgen" ./tests/loadgen
one() { # binary label
  rm -rf /tmp/hookd-load
  "$1" run -config tests/loadgen/hookd.toml >/dev/null 2>&1 &
  local pid=$!
  until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.05; done
  echo -n "$2 "; "$bin/loadgen" -c 64 -size 256 -n 150000 -pid "$pid" || true
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}
for round in 1 2 3; do
  echo -n "noop "; "$bin/loadgen" -noop -c 64 -size 256 -n 150000
  one "$bin/hookd-old" old
  one "$bin/hookd-new" new
done
rm -rf /tmp/hookd-load
