package store

import "github.com/VictoriaMetrics/metrics"

var (
	commitBatchSize = metrics.NewHistogram("hookd_commit_batch_size")
	commitSeconds   = metrics.NewHistogram("hookd_commit_duration_seconds")
)
