#!/usr/bin/env bash
# How long a reload holds the API's endpoint changes: N managed endpoints over N tenants (default
# 100,000; the database of tests/loadgen/tenants.sh's REUSE=1 is copied when it exists, created
# through the admin API otherwise), then ROUNDS SIGHUPs (default 3), each followed by 3 s of
# PATCHes of one endpoint, one after the other; each round prints the slowest and the count, next
# to the same PATCHes on the idle daemon (one commit each). Loopback only; the daemon started here
# is stopped by its PID. JSON lines.
#   bash tests/loadgen/reload.sh [N]        HOOKD=/path/to/hookd bash tests/loadgen/reload.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
seed=/tmp/hookd-tenants-seed-$N
bin=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$bin" /tmp/hookd-tenants' EXIT
go build -o "$bin/hookd" .
go build -o "$bin/loadgen" ./tests/loadgen
ready() { until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.01; done; }
start() { "${HOOKD:-$bin/hookd}" run -config tests/loadgen/tenants.toml >/dev/null 2>&1 & pid=$!; ready; }
rm -rf /tmp/hookd-tenants
if [[ -d "$seed" ]]; then
	cp -r "$seed" /tmp/hookd-tenants
	sync
	start
else
	start
	"$bin/loadgen" -create-endpoints "$N" -c 32
fi
sleep 2
# patches SECONDS: PATCH ep-t0 one after the other for SECONDS; prints the slowest (ms) and the count.
patches() {
	local end=$((SECONDS + $1)) i=0 worst=0 t
	while ((SECONDS < end)); do
		t=$(curl -s -o /dev/null -w '%{time_total}' -X PATCH -H 'Content-Type: application/merge-patch+json' \
			--data "{\"description\":\"r$i\"}" 127.0.0.1:8526/v1/endpoints/ep-t0)
		worst=$(awk -v a="$worst" -v b="$t" 'BEGIN { print (b * 1000 > a ? b * 1000 : a) }')
		i=$((i + 1))
	done
	printf '"slowest_patch_ms":%.1f,"patches":%d' "$worst" "$i"
}
echo "{\"mode\":\"idle\",$(patches 3)}"
for round in $(seq "${ROUNDS:-3}"); do
	kill -HUP "$pid"
	echo "{\"mode\":\"sighup\",\"round\":$round,$(patches 3)}"
	sleep 1
done
kill -TERM "$pid"; wait "$pid" || true; pid=
