package store

import "github.com/VictoriaMetrics/metrics"

var (
	commitBatchSize = metrics.NewHistogram("hookd_commit_batch_size")
	commitSeconds   = metrics.NewHistogram("hookd_commit_duration_seconds")
)

// The ingest path's group commit is the write-ahead log's sync.
var (
	walBatchSize   = metrics.NewHistogram("hookd_wal_batch_size")
	walSyncSeconds = metrics.NewHistogram("hookd_wal_sync_duration_seconds")
)
