package portal

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"hookd/api"
)

// A customer's changes through the portal (every /api/ call but a read)
// are limited per tenant, as the peers' portals limit their APIs: a
// customer's script in a loop of creates, patches, tests or resends,
// each a commit and most a rebuild of the routing table, must not take
// the daemon's writes from everyone else. A person in the pages makes a
// change every few seconds; a burst leaves room for a script's batch.
// The operators' /ui/ is not limited.
const (
	writesPerSecond = 20
	writesBurst     = 100
	// keptLimits is how many tenants' limiters are kept before the full
	// ones (at rest long enough to have their whole burst back) are dropped.
	keptLimits = 10_000
)

// writeLimits are the tenants' limiters, made at their first change.
type writeLimits struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
	// pruned is when the full limiters were last dropped: at most once in
	// the time a limiter takes to fill, so that with more tenants active
	// than keptLimits each new one does not scan them all.
	pruned time.Time
}

// allow takes one change of tenant's at now, or answers the 429 to give.
func (w *writeLimits) allow(tenant string, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.m[tenant]
	if l == nil {
		if w.m == nil {
			w.m = map[string]*rate.Limiter{}
		}
		if len(w.m) >= keptLimits && now.Sub(w.pruned) >= writesBurst/writesPerSecond*time.Second {
			for t, l := range w.m {
				if l.TokensAt(now) >= writesBurst {
					delete(w.m, t)
				}
			}
			w.pruned = now
		}
		l = rate.NewLimiter(writesPerSecond, writesBurst)
		w.m[tenant] = l
	}
	if l.AllowN(now, 1) {
		return nil
	}
	wait := (1 - l.TokensAt(now)) / writesPerSecond
	return &api.Error{Status: 429, Code: "rate_limited", RetryAfter: int(math.Ceil(wait)),
		Message: fmt.Sprintf("too many changes: at most %d a second (bursts of %d) for each customer; retry after Retry-After", writesPerSecond, writesBurst)}
}
