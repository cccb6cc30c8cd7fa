package store

import "github.com/VictoriaMetrics/metrics"

// Prometheus-style histograms (`le` buckets), so that histogram_quantile
// can read them. A batch holds at most maxBatch requests (commits) or about
// as many events (log syncs); an fsync takes ~0.5 ms on a good disk and
// seconds on a struggling one.
var (
	batchBuckets    = metrics.ExponentialBuckets(1, 2, 13) // 1 … 4096
	durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

var (
	commitBatchSize = metrics.NewPrometheusHistogramExt("hookd_commit_batch_size", batchBuckets)
	commitSeconds   = metrics.NewPrometheusHistogramExt("hookd_commit_duration_seconds", durationBuckets)
)

// undeliverableTotal counts deliveries parked, counted where they are
// parked (txState.park) so that no path to the undeliverable bucket is
// missed.
var undeliverableTotal = metrics.NewCounter("hookd_undeliverable_total")

// The ingest path's group commit is the write-ahead log's sync.
var (
	walBatchSize   = metrics.NewPrometheusHistogramExt("hookd_wal_batch_size", batchBuckets)
	walSyncSeconds = metrics.NewPrometheusHistogramExt("hookd_wal_sync_duration_seconds", durationBuckets)
)

// MetricsHelp is the HELP text of each family defined here, for the daemon's
// GET /metrics (VictoriaMetrics/metrics writes none of its own).
var MetricsHelp = map[string]string{
	"hookd_undeliverable_total":       "Deliveries parked as undeliverable, all endpoints and reasons (failed attempts, disabled or deleted endpoints).",
	"hookd_commit_batch_size":         "Requests (ingest applications, attempt outcomes, admin writes) per bbolt transaction.",
	"hookd_commit_duration_seconds":   "Time to run and commit one bbolt transaction, fsyncs included.",
	"hookd_wal_batch_size":            "Events per write-ahead log sync: the ingest path's group commit.",
	"hookd_wal_sync_duration_seconds": "Time to write and fsync one write-ahead log batch; ingest acknowledges after it.",
}
