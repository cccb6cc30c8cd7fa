package portal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"hookd/api"
)

// Each tenant has its own burst; a refusal says when to retry; the
// limiters of tenants at rest are dropped once there are many.
func TestWriteLimits(t *testing.T) {
	var w writeLimits
	now := time.Now()
	for i := range writesBurst {
		if err := w.allow("a", now); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	var ae *api.Error
	if err := w.allow("a", now); !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 1 {
		t.Fatalf("over the burst: %v", err)
	}
	if err := w.allow("b", now); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	for i := range keptLimits {
		w.allow(fmt.Sprint("t", i), now)
	}
	later := now.Add(time.Duration(writesBurst/writesPerSecond+1) * time.Second)
	w.allow("new", later)
	if len(w.m) != 1 {
		t.Fatalf("%d limiters kept; want only the new one's", len(w.m))
	}

	// With more tenants active than keptLimits, the limiters are scanned
	// once in the time one takes to fill, not at each new tenant.
	var busy writeLimits
	for i := range keptLimits + 10 {
		busy.allow(fmt.Sprint("t", i), now.Add(time.Duration(i)*time.Microsecond))
	}
	if len(busy.m) != keptLimits+10 || !busy.pruned.Equal(now.Add(keptLimits*time.Microsecond)) {
		t.Fatalf("%d limiters, last scan at %v", len(busy.m), busy.pruned.Sub(now))
	}
}
