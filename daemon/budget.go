package daemon

import "sync/atomic"

// byteBudget bounds the request bytes ingest works on at once
// (ingest.max_inflight_bytes). Each request's body is parsed, copied,
// rendered per endpoint and encoded for the log, so memory grows with the
// bytes in progress, not with the number of requests: sixteen concurrent
// 16 MB batches must not take gigabytes. A request that does not fit is
// refused at once (503 busy with Retry-After) rather than queued, so a
// burst cannot pile up bodies waiting their turn.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

// run calls fn if n bytes fit in the budget, holding them meanwhile. A
// request larger than the whole budget runs when nothing else does.
func (b *byteBudget) run(n int, fn func() error) error {
	cost := min(int64(n), b.limit)
	for {
		used := b.used.Load()
		if used > 0 && used+cost > b.limit {
			return errBusy
		}
		if b.used.CompareAndSwap(used, used+cost) {
			break
		}
	}
	defer b.used.Add(-cost)
	return fn()
}
