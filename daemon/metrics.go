package daemon

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"hookd/delivery"
	"hookd/store"
)

// Every series GET /metrics serves: hookd's own (defined here and in
// store/metrics.go) and VictoriaMetrics' Go runtime and process metrics.
// The exposition passes `promtool check metrics` (TestMetricsPassPromlint):
// each family has HELP and TYPE, histograms have `le` buckets.

func init() {
	// TYPE lines, and HELP lines that describe fills in: without them
	// Prometheus tooling treats every series as untyped.
	metrics.ExposeMetadata(true)
}

var (
	ingested   = metrics.NewCounter("hookd_events_ingested_total")
	duplicates = metrics.NewCounter("hookd_events_duplicate_total")
)

func rejected(status int) {
	metrics.GetOrCreateCounter(fmt.Sprintf(`hookd_ingest_rejected_total{status="%d"}`, status)).Inc()
}

// endpointMetrics are one endpoint's series, looked up once: outcomes are
// counted on the committer goroutine, which should not format names.
type endpointMetrics struct {
	delivered, retry, undeliverable, superseded *metrics.Counter
	latency                                     *metrics.PrometheusHistogram
}

var endpointSeries sync.Map // endpoint name → *endpointMetrics

func metricsFor(ep string) *endpointMetrics {
	if m, ok := endpointSeries.Load(ep); ok {
		return m.(*endpointMetrics)
	}
	counter := func(outcome string) *metrics.Counter {
		return metrics.GetOrCreateCounter(fmt.Sprintf(`hookd_deliveries_total{endpoint=%q,outcome=%q}`, ep, outcome))
	}
	m := &endpointMetrics{delivered: counter("delivered"), retry: counter("retry"), undeliverable: counter("undeliverable"), superseded: counter("superseded"),
		latency: metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf(`hookd_attempt_duration_seconds{endpoint=%q}`, ep))}
	v, _ := endpointSeries.LoadOrStore(ep, m)
	return v.(*endpointMetrics)
}

// countOutcome counts one recorded outcome of a delivery to endpoint.
// managedLabel is the endpoint label all managed endpoints share: there
// may be 100,000 of them, created by the platform's customers, and one
// series each would make a scrape hundreds of megabytes. Config endpoints,
// a few the operator chose, keep a label of their own. "(managed)" is no
// endpoint's name.
const managedLabel = "(managed)"

// metricLabel is the endpoint label for ep, or, when ep is nil (no longer
// in the table), for the endpoint with internal id name: a deleted managed
// one's is the shared label, a removed config endpoint's its id (its name,
// or name@tenant).
func metricLabel(ep *delivery.Endpoint, name string) string {
	if ep == nil && delivery.IsManagedID(name) || ep != nil && ep.Managed {
		return managedLabel
	}
	return name
}

func countOutcome(endpoint string, o *store.Outcome) {
	if o.Attempt == nil {
		return // parked unsent (its endpoint disabled or gone): no attempt to count; hookd_undeliverable_total counts the parking
	}
	m := metricsFor(endpoint)
	switch {
	case o.Superseded:
		m.superseded.Inc()
	case o.Delivered:
		m.delivered.Inc()
	case o.Reason != "":
		m.undeliverable.Inc()
	default:
		m.retry.Inc()
	}
	m.latency.Update(o.Attempt.Latency.Seconds())
}

func (d *Daemon) adminMetrics(ctx *fasthttp.RequestCtx, _ []string) error {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	metrics.WriteGoMetrics(&b)
	metrics.WriteProcMetrics(&b)
	metrics.WriteFDMetrics(&b)
	// The pending counts live in the store; written here, at scrape time.
	metrics.WriteGaugeUint64(&b, "hookd_pending_deliveries", uint64(d.store.Pending()))
	by := d.store.PendingByEndpoint()
	metrics.WriteMetadataIfNeeded(&b, "hookd_pending_deliveries_by_endpoint", "gauge")
	managed := int64(0)
	for _, ep := range d.sched.Table().All() {
		if ep.Managed {
			managed += by[ep.ID]
			continue
		}
		fmt.Fprintf(&b, "hookd_pending_deliveries_by_endpoint{endpoint=%q} %d\n", ep.Name, by[ep.ID])
	}
	fmt.Fprintf(&b, "hookd_pending_deliveries_by_endpoint{endpoint=%q} %d\n", managedLabel, managed)
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	describe(ctx, b.Bytes())
	return nil
}

// describe copies an exposition written with metrics.ExposeMetadata to w,
// filling in the HELP text VictoriaMetrics/metrics leaves empty, correcting
// the TYPE of the process metrics it mistypes and leaving out the families
// in omitted. A family missing from help keeps its empty HELP, which
// TestMetricsPassPromlint reports.
func describe(w io.Writer, text []byte) {
	skip := false // inside an omitted family: every family starts with its HELP line
	for len(text) > 0 {
		line, rest, _ := bytes.Cut(text, []byte("\n"))
		text = rest
		if meta, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			name, _, _ := bytes.Cut(meta, []byte(" "))
			if skip = omitted[string(name)]; skip {
				continue
			}
			if h := help(string(name)); h != "" {
				fmt.Fprintf(w, "# HELP %s %s\n", name, h)
				continue
			}
		} else if meta, ok := bytes.CutPrefix(line, []byte("# TYPE ")); ok && !skip {
			name, _, _ := bytes.Cut(meta, []byte(" "))
			if t := retype[string(name)]; t != "" {
				fmt.Fprintf(w, "# TYPE %s %s\n", name, t)
				continue
			}
		}
		if !skip {
			w.Write(line)
			w.Write([]byte{'\n'})
		}
	}
}

func help(family string) string {
	if h, ok := daemonHelp[family]; ok {
		return h
	}
	if h, ok := store.MetricsHelp[family]; ok {
		return h
	}
	return runtimeHelp[family]
}

var daemonHelp = map[string]string{
	"hookd_events_ingested_total":          "Events accepted and acknowledged (202).",
	"hookd_events_duplicate_total":         "Events answered as duplicates of an earlier id or Idempotency-Key (200, nothing stored).",
	"hookd_ingest_rejected_total":          "Ingest requests and batch items refused, by HTTP status.",
	"hookd_deliveries_total":               "Attempt outcomes by endpoint: delivered, retry (failed, will be retried), undeliverable (parked by its attempt; hookd_undeliverable_total counts every parking) or superseded (the delivery was redelivered, parked or purged while the attempt ran).",
	"hookd_attempt_duration_seconds":       "Duration of delivery attempts by endpoint, from connect to the end of the response.",
	"hookd_pending_deliveries":             "Deliveries acknowledged and not yet delivered or parked.",
	"hookd_pending_deliveries_by_endpoint": "Pending deliveries by endpoint.",
	"hookd_events_filtered_total":          "Events an endpoint's filter kept from it, by endpoint and result: rejected (false) or error (the evaluation failed).",
}

// omitted are VictoriaMetrics families whose names break Prometheus'
// conventions (`_count` is a histogram's or summary's sample count), of
// little use to an operator of a pure-Go daemon.
var omitted = map[string]bool{
	"go_cgo_calls_count": true,
	"go_cpu_count":       true,
	"go_gc_forced_count": true,
}

// retype: VictoriaMetrics exposes these cumulative /proc/self/io counts as
// gauges.
var retype = map[string]string{
	"process_io_read_bytes_total":            "counter",
	"process_io_written_bytes_total":         "counter",
	"process_io_read_syscalls_total":         "counter",
	"process_io_write_syscalls_total":        "counter",
	"process_io_storage_read_bytes_total":    "counter",
	"process_io_storage_written_bytes_total": "counter",
}

// runtimeHelp describes the Go runtime and process families of
// VictoriaMetrics/metrics (after its documentation of WriteProcessMetrics).
var runtimeHelp = map[string]string{
	"go_gc_cpu_seconds_total":             "CPU time spent in the garbage collector.",
	"go_gc_duration_seconds":              "Garbage collection pause durations.",
	"go_gc_mark_assist_cpu_seconds_total": "CPU time goroutines spent assisting the garbage collector's mark phase.",
	"go_gc_pauses_seconds":                "Durations of garbage collection pauses.",
	"go_gomaxprocs":                       "GOMAXPROCS: the Ps that may run Go code at once.",
	"go_goroutines":                       "Goroutines that currently exist.",
	"go_info":                             "Go version the binary was built with.",
	"go_info_ext":                         "Compiler, GOARCH, GOOS and GOROOT the binary was built with.",
	"go_memlimit_bytes":                   "The Go runtime's soft memory limit (GOMEMLIMIT).",
	"go_memstats_alloc_bytes":             "Bytes of allocated heap objects.",
	"go_memstats_alloc_bytes_total":       "Cumulative bytes allocated for heap objects.",
	"go_memstats_buck_hash_sys_bytes":     "Bytes of memory in profiling bucket hash tables.",
	"go_memstats_frees_total":             "Cumulative count of heap objects freed.",
	"go_memstats_gc_cpu_fraction":         "Fraction of this program's available CPU time used by the garbage collector since start.",
	"go_memstats_gc_sys_bytes":            "Bytes of memory in garbage collection metadata.",
	"go_memstats_heap_alloc_bytes":        "Bytes of allocated heap objects.",
	"go_memstats_heap_idle_bytes":         "Bytes in idle (unused) heap spans.",
	"go_memstats_heap_inuse_bytes":        "Bytes in in-use heap spans.",
	"go_memstats_heap_objects":            "Number of allocated heap objects.",
	"go_memstats_heap_released_bytes":     "Bytes of physical memory returned to the OS.",
	"go_memstats_heap_sys_bytes":          "Bytes of heap memory obtained from the OS.",
	"go_memstats_last_gc_time_seconds":    "Time the last garbage collection finished, as seconds since the Unix epoch.",
	"go_memstats_lookups_total":           "Cumulative count of pointer lookups performed by the runtime.",
	"go_memstats_mallocs_total":           "Cumulative count of heap objects allocated.",
	"go_memstats_mcache_inuse_bytes":      "Bytes of allocated mcache structures.",
	"go_memstats_mcache_sys_bytes":        "Bytes of memory obtained from the OS for mcache structures.",
	"go_memstats_mspan_inuse_bytes":       "Bytes of allocated mspan structures.",
	"go_memstats_mspan_sys_bytes":         "Bytes of memory obtained from the OS for mspan structures.",
	"go_memstats_next_gc_bytes":           "Heap size the next garbage collection cycle aims for.",
	"go_memstats_other_sys_bytes":         "Bytes of memory in miscellaneous off-heap runtime allocations.",
	"go_memstats_stack_inuse_bytes":       "Bytes in stack spans.",
	"go_memstats_stack_sys_bytes":         "Bytes of stack memory obtained from the OS.",
	"go_memstats_sys_bytes":               "Total bytes of memory obtained from the OS by the Go runtime.",
	"go_mutex_wait_seconds_total":         "Total time goroutines spent blocked on a sync.Mutex or sync.RWMutex.",
	"go_scavenge_cpu_seconds_total":       "CPU time spent returning unused memory to the OS.",
	"go_sched_latencies_seconds":          "Time goroutines spent runnable before they ran.",
	"go_threads":                          "OS threads created.",

	"process_cpu_seconds_system_total":              "CPU time spent in the kernel on behalf of the process.",
	"process_cpu_seconds_total":                     "CPU time spent by the process, user and system.",
	"process_cpu_seconds_user_total":                "CPU time spent by the process in user space.",
	"process_io_read_bytes_total":                   "Bytes read through read syscalls.",
	"process_io_read_syscalls_total":                "Read syscalls.",
	"process_io_storage_read_bytes_total":           "Bytes read from storage.",
	"process_io_storage_written_bytes_total":        "Bytes written to storage.",
	"process_io_write_syscalls_total":               "Write syscalls.",
	"process_io_written_bytes_total":                "Bytes written through write syscalls.",
	"process_major_pagefaults_total":                "Page faults that needed disk I/O.",
	"process_max_fds":                               "Maximum number of open file descriptors (RLIMIT_NOFILE).",
	"process_minor_pagefaults_total":                "Page faults resolved without disk I/O.",
	"process_num_threads":                           "OS threads of the process.",
	"process_open_fds":                              "Open file descriptors.",
	"process_pressure_cpu_stalled_seconds_total":    "Time all processes of the cgroup were stalled waiting for CPU (PSI).",
	"process_pressure_cpu_waiting_seconds_total":    "Time some processes of the cgroup were waiting for CPU (PSI).",
	"process_pressure_io_stalled_seconds_total":     "Time all processes of the cgroup were stalled waiting for I/O (PSI).",
	"process_pressure_io_waiting_seconds_total":     "Time some processes of the cgroup were waiting for I/O (PSI).",
	"process_pressure_memory_stalled_seconds_total": "Time all processes of the cgroup were stalled waiting for memory (PSI).",
	"process_pressure_memory_waiting_seconds_total": "Time some processes of the cgroup were waiting for memory (PSI).",
	"process_resident_memory_anon_bytes":            "Resident memory not backed by files (heap, stacks).",
	"process_resident_memory_bytes":                 "Resident memory (RSS).",
	"process_resident_memory_file_bytes":            "Resident memory backed by mapped files.",
	"process_resident_memory_peak_bytes":            "Peak resident memory.",
	"process_resident_memory_shared_bytes":          "Resident shared memory.",
	"process_start_time_seconds":                    "Start time of the process, as seconds since the Unix epoch.",
	"process_virtual_memory_bytes":                  "Virtual memory size.",
	"process_virtual_memory_peak_bytes":             "Peak virtual memory size.",
}
