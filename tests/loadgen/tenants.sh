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
# Whatever is still running when the script ends, by a failure too, is stopped by its PID.
trap 'for p in ${pid:-} ${opid:-} ${tl:-} ${ol:-}; do kill "$p" 2>/dev/null || true; done; rm -rf "$bin"' EXIT
go build -o "$bin/hookd" .
go build -o "$bin/loadgen" ./tests/loadgen
ready() { until curl -sf 127.0.0.1:8525/readyz >/dev/null; do sleep 0.01; done; }
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
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
# recent stop; the start is measured from the exec to the first 200 of /readyz. Every start here
# (both modes) follows a sync: a copy leaves its 50-70 MB dirty in the page cache, which the
# daemon's first commits then wrote out in their fdatasync (a daemon restarted after a stop has
# synced its file itself), costing the tenant runs a tenth of their rate (-2% to +30% in five pairs).
sync
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
# copy of the database of created endpoints and two one-endpoint runs on an empty one, in an order
# that rotates from round to round: this machine's speed drifts by tens of percent over minutes,
# so runs side by side compare better than one run of each minutes apart. Each round's ratios are
# printed (a round whose run failed is reported and left out); the summary gives the medians.
# The first one-endpoint run is the target's baseline, hookd.toml as it is: its endpoint's
# max_in_flight of 16 lets its deliveries fall behind the ingest and leaves their CPU to it (it
# goes on delivering for 2-3 s after its last acknowledgement), where the tenant run's 100,000 endpoints
# keep all 64 workers delivering as events arrive. The second, one-endpoint-64.toml, gives that
# endpoint max_in_flight = 64, the tenant run's workers: both then deliver as they ingest, and
# its ratio is the cost of the tenants alone.
cp -r /tmp/hookd-tenants "$bin/seed"
eps() { sed -n 's/.*"ingest_eps":\([0-9.]*\).*/\1/p' <<<"$1"; }
e2e() { sed -n 's/.*"e2e_eps":\([0-9.]*\).*/\1/p' <<<"$1"; }
ratio() { awk -v t="$1" -v o="$2" 'BEGIN { printf "%.3f", t / o }'; }
# start_tenants starts hookd on a fresh copy of the created endpoints' database.
start_tenants() {
	rm -rf /tmp/hookd-tenants; cp -r "$bin/seed" /tmp/hookd-tenants
	sync
	"$bin/hookd" run -config tests/loadgen/tenants.toml >/dev/null 2>&1 & pid=$!
	ready
}
tenant_run() {
	start_tenants
	t=$("$bin/loadgen" -tenants "$N" -c 64 -n 150000 -pid "$pid" || true)
	stop
}
# one_run CONFIG: a one-endpoint run on an empty database; its result in one.
one_run() {
	rm -rf /tmp/hookd-load
	sync
	"$bin/hookd" run -config "$1" >/dev/null 2>&1 & pid=$!
	ready
	one=$("$bin/loadgen" -c 64 -n 150000 -pid "$pid" || true)
	stop
}
default_run() { one_run tests/loadgen/hookd.toml; o=$one; }
equal_run() { one_run tests/loadgen/one-endpoint-64.toml; q=$one; }
order=(tenant_run default_run equal_run)
ratios=() e2e_ratios=() equal_ratios=()
for round in $(seq "${ROUNDS:-3}"); do
	for i in 0 1 2; do ${order[(round - 1 + i) % 3]}; done
	echo "$t"; echo "$o"; echo "$q"
	if [[ -z "$(eps "$t")" || -z "$(eps "$o")" || -z "$(eps "$q")" || -z "$(e2e "$t")" || -z "$(e2e "$o")" ]]; then
		echo "{\"mode\":\"round\",\"round\":$round,\"error\":\"a run failed; left out\"}"
		continue
	fi
	ratios+=("$(ratio "$(eps "$t")" "$(eps "$o")")")
	e2e_ratios+=("$(ratio "$(e2e "$t")" "$(e2e "$o")")")
	equal_ratios+=("$(ratio "$(eps "$t")" "$(eps "$q")")")
	echo "{\"mode\":\"round\",\"round\":$round,\"tenant_to_one_endpoint\":${ratios[-1]},\"e2e_tenant_to_one_endpoint\":${e2e_ratios[-1]},\"tenant_to_one_endpoint_64\":${equal_ratios[-1]}}"
done
# The target is the acknowledgement rate's ratio to hookd.toml. The end-to-end rates' ratio and
# the acknowledgement rates' ratio to one-endpoint-64.toml are printed next to it.
median() { printf '%s\n' "$@" | sort -n | awk 'NF { v[++n] = $1 } END { print (n == 0 ? "null" : n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'; }
list() { local IFS=,; echo "$*"; }
echo "{\"mode\":\"summary\",\"rounds\":${#ratios[@]},\"ratios\":[$(list "${ratios[@]}")],\"median_ratio\":$(median "${ratios[@]}"),\"e2e_ratios\":[$(list "${e2e_ratios[@]}")],\"median_e2e_ratio\":$(median "${e2e_ratios[@]}"),\"ratios_64\":[$(list "${equal_ratios[@]}")],\"median_ratio_64\":$(median "${equal_ratios[@]}")}"

# Side by side (SIDE rounds, default 3; 0 = none): the tenant daemon and a one-endpoint daemon
# (one-endpoint-side.toml: one-endpoint-64.toml on other ports) loaded at once by two loadgens,
# so that the machine's drift falls on both alike. Each daemon's CPU time (user + system, from
# /proc) over the same window, divided by the events it acknowledged in it, is its CPU per event;
# the ratio of the two is what the tenants cost, without the drift that spreads the rounds above.
# The rates side by side are not the figure: the kernel gives the costlier daemon more of the CPU.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
acked() { curl -s "127.0.0.1:$1/metrics" | awk '$1 == "hookd_events_ingested_total" { print $2 }'; }
hz=$(getconf CLK_TCK)
costs=()
for round in $(seq "${SIDE:-3}"); do
	rm -rf /tmp/hookd-side
	start_tenants
	"$bin/hookd" run -config tests/loadgen/one-endpoint-side.toml >/dev/null 2>&1 & opid=$!
	until curl -sf 127.0.0.1:8535/readyz >/dev/null; do sleep 0.01; done
	"$bin/loadgen" -tenants "$N" -c 64 -n 1000000 -timeout 30s >/dev/null 2>&1 & tl=$!
	"$bin/loadgen" -target 127.0.0.1:8535 -receiver 127.0.0.1:9101 -c 64 -n 1000000 -timeout 30s >/dev/null 2>&1 & ol=$!
	sleep 3
	a0=$(acked 8526) b0=$(acked 8536) ta0=$(ticks "$pid") tb0=$(ticks "$opid")
	sleep 12
	a1=$(acked 8526) b1=$(acked 8536) ta1=$(ticks "$pid") tb1=$(ticks "$opid")
	kill "$tl" "$ol" 2>/dev/null || true; wait "$tl" "$ol" || true; tl= ol=
	kill -TERM "$opid" 2>/dev/null || true; wait "$opid" || true; opid=
	stop
	if ! (( ${a1:-0} > ${a0:-0} && ${b1:-0} > ${b0:-0} )); then
		echo "{\"mode\":\"side\",\"round\":$round,\"error\":\"a daemon acknowledged nothing; left out\"}"
		continue
	fi
	c=$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v ca=$((ta1 - ta0)) -v cb=$((tb1 - tb0)) -v hz="$hz" 'BEGIN {
		t = ca * 1e6 / hz / a; o = cb * 1e6 / hz / b
		printf "{\"mode\":\"side\",\"round\":%d,\"tenant_events\":%d,\"one_endpoint_events\":%d,\"tenant_cpu_us_per_event\":%.1f,\"one_endpoint_cpu_us_per_event\":%.1f,\"cost_ratio\":%.3f}", '"$round"', a, b, t, o, o / t }')
	echo "$c"
	costs+=("$(sed -n 's/.*"cost_ratio":\([0-9.]*\).*/\1/p' <<<"$c")")
done
if (( ${#costs[@]} > 0 )); then
	echo "{\"mode\":\"side_summary\",\"cost_ratios\":[$(list "${costs[@]}")],\"median_cost_ratio\":$(median "${costs[@]}")}"
fi

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
rm -rf /tmp/hookd-tenants /tmp/hookd-load /tmp/hookd-side
