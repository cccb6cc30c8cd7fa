#!/usr/bin/env bash
# Issue 13's scale run: N managed endpoints over N tenants (default 100,000), created through
# the admin API; then restart to READY, idle RSS, ingest of events each for a random tenant next
# to the one-endpoint rate (in rounds, see below) and a no-op handler measured in the same run,
# and p99 with endpoint changes running. Loopback only; every process started here is stopped by
# PID. JSON lines.
#   bash tests/loadgen/tenants.sh [N]        ROUNDS=5 GROW=4 bash tests/loadgen/tenants.sh
# With REUSE=1 the database of created endpoints is kept in /tmp/hookd-tenants-seed-N after the
# first such run and copied by the next ones instead of creating the endpoints again (3 minutes
# at 100,000), to iterate on the start and ingest figures; the default is the full run.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
seed=/tmp/hookd-tenants-seed-$N
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/hookd" .
go build -o "$bin/loadgen" ./tests/loadgen
ready() { until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.01; done; }
stop() { kill -TERM "$pid"; wait "$pid" || true; }
rss() { awk -v k="$2:" '$1 == k {printf "%.1f", $2/1024}' "/proc/$1/status"; }

rm -rf /tmp/hookd-tenants
if [[ "${REUSE:-}" == 1 && -d "$seed" ]]; then
	cp -r "$seed" /tmp/hookd-tenants
	echo "{\"mode\":\"create-endpoints\",\"reused\":\"$seed\"}"
else
	"$bin/hookd" run -config tests/loadgen/tenants.toml >/dev/null 2>&1 & pid=$!
	ready
	"$bin/loadgen" -create-endpoints "$N" -c 32
	stop
	if [[ "${REUSE:-}" == 1 ]]; then rm -rf "$seed"; cp -r /tmp/hookd-tenants "$seed"; fi
fi

# The page cache holds the database either way (it was just written or copied), as after any
# recent stop; the start is measured from the exec to the first 200 of /readyz.
t0=$(date +%s%N)
"$bin/hookd" run -config tests/loadgen/tenants.toml >/dev/null 2>&1 & pid=$!
ready
t1=$(date +%s%N)
sleep 3
# RSS counts the database's pages the start read through bbolt's mmap (page cache, shared and
# reclaimable) as well as the heap: both are reported, and the total is the target's figure.
echo "{\"mode\":\"restart\",\"endpoints\":$N,\"start_to_ready_ms\":$(( (t1 - t0) / 1000000 )),\"idle_rss_mb\":$(rss "$pid" VmRSS),\"rss_anon_mb\":$(rss "$pid" RssAnon),\"rss_file_mb\":$(rss "$pid" RssFile)}"

"$bin/loadgen" -noop -c 64 -n 150000
stop

# The ratio to one endpoint is measured in ROUNDS rounds (default 3), each a tenant run on a fresh
# copy of the database of created endpoints and a one-endpoint run on an empty one, in turn first
# and second: this machine's speed drifts by tens of percent over minutes, so runs side by side
# compare better than one run of each minutes apart. Each round's ratio is printed (a round whose
# run failed is reported and left out); the summary gives the median.
cp -r /tmp/hookd-tenants "$bin/seed"
eps() { sed -n 's/.*"ingest_eps":\([0-9.]*\).*/\1/p' <<<"$1"; }
e2e() { sed -n 's/.*"e2e_eps":\([0-9.]*\).*/\1/p' <<<"$1"; }
ratio() { awk -v t="$1" -v o="$2" 'BEGIN { printf "%.3f", t / o }'; }
# start_tenants starts hookd on a fresh copy of the created endpoints' database.
start_tenants() {
	rm -rf /tmp/hookd-tenants; cp -r "$bin/seed" /tmp/hookd-tenants
	"$bin/hookd" run -config tests/loadgen/tenants.toml >/dev/null 2>&1 & pid=$!
	ready
}
tenant_run() {
	start_tenants
	t=$("$bin/loadgen" -tenants "$N" -c 64 -n 150000 -pid "$pid" || true)
	stop
}
one_run() {
	rm -rf /tmp/hookd-load
	"$bin/hookd" run -config tests/loadgen/hookd.toml >/dev/null 2>&1 & pid=$!
	ready
	o=$("$bin/loadgen" -c 64 -n 150000 -pid "$pid" || true)
	stop
}
ratios=() e2e_ratios=()
for round in $(seq "${ROUNDS:-3}"); do
	if (( round % 2 )); then tenant_run; one_run; else one_run; tenant_run; fi
	echo "$t"; echo "$o"
	if [[ -z "$(eps "$t")" || -z "$(eps "$o")" || -z "$(e2e "$t")" || -z "$(e2e "$o")" ]]; then
		echo "{\"mode\":\"round\",\"round\":$round,\"error\":\"a run failed; left out\"}"
		continue
	fi
	ratios+=("$(ratio "$(eps "$t")" "$(eps "$o")")")
	e2e_ratios+=("$(ratio "$(e2e "$t")" "$(e2e "$o")")")
	echo "{\"mode\":\"round\",\"round\":$round,\"tenant_to_one_endpoint\":${ratios[-1]},\"e2e_tenant_to_one_endpoint\":${e2e_ratios[-1]}}"
done
# The target is the acknowledgement rate's ratio. The end-to-end rates' ratio is printed next to
# it: the one-endpoint run ends its ingest with deliveries still to send (its max_in_flight of 16
# lets them fall behind and leaves that CPU to ingest), the tenant run with none.
median() { printf '%s\n' "$@" | sort -n | awk 'NF { v[++n] = $1 } END { print (n == 0 ? "null" : n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'; }
echo "{\"mode\":\"summary\",\"rounds\":${#ratios[@]},\"ratios\":[$(IFS=,; echo "${ratios[*]}")],\"median_ratio\":$(median "${ratios[@]}"),\"e2e_ratios\":[$(IFS=,; echo "${e2e_ratios[*]}")],\"median_e2e_ratio\":$(median "${e2e_ratios[@]}")}"

# Endpoint changes under ingest: 10 creates and patches a second, on a fresh copy.
start_tenants
"$bin/loadgen" -tenants "$N" -c 64 -n 150000 -churn 10 -pid "$pid" || true
stop

# A growing deliveries log: GROW tenant runs (default 3) one after the other on one daemon, each
# adding 150,000 deliveries to its log. The rate should hold as the log grows (it fell by a third
# over four runs when the per-tenant index was one B+tree; see README, Tenants → Scale).
GROW=${GROW:-3}
if (( GROW > 0 )); then
	start_tenants
	for run in $(seq "$GROW"); do
		g=$("$bin/loadgen" -tenants "$N" -c 64 -n 150000 -pid "$pid" || true)
		r=$(eps "$g" | awk '{ printf "%.0f", $1 }')
		echo "{\"mode\":\"grow\",\"run\":$run,\"log_deliveries_before\":$(( (run - 1) * 150000 )),\"ingest_eps\":${r:-null}}"
	done
	stop
fi
rm -rf /tmp/hookd-tenants /tmp/hookd-load
