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
}
