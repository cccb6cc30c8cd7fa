package delivery

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Policy is an endpoint's retry policy.
type Policy struct {
	Schedule      []time.Duration // delays before the 2nd, 3rd, … attempt; empty = no retries
	StopOn4xx     bool            // 4xx other than 408 and 429 is final
	MaxRetryAfter time.Duration   // cap on a receiver's Retry-After
	Jitter        float64         // ± fraction applied to each delay
	// KeepOn410: a 410 is a failure like any other, not a disable. For
	// the [notify] target: hookd's alerts are not their receiver's to
	// switch off, and nothing else would tell anyone they had stopped.
	KeepOn410 bool
}

// Verdict is what happens after an attempt that did not succeed.
type Verdict struct {
	Retry   bool
	Delay   time.Duration
	Reason  string // why the delivery is final, when !Retry
	Disable bool   // 410 Gone: disable the endpoint
}

// Decide applies the policy after failed attempt n (1-based within the
// current retry cycle). status is 0 when no response arrived; retryAfter is
// the receiver's Retry-After (0 if none); rnd in [0,1) drives jitter.
func (p *Policy) Decide(n, status int, errText string, retryAfter time.Duration, rnd float64) Verdict {
	what := errText
	if status != 0 {
		what = "HTTP " + strconv.Itoa(status)
	}
	switch {
	case status == 410 && !p.KeepOn410:
		return Verdict{Reason: "HTTP 410 Gone: endpoint disabled", Disable: true}
	case p.StopOn4xx && status >= 400 && status < 500 && status != 408 && status != 429 && status != 410:
		return Verdict{Reason: what + " (stop_on_4xx)"}
	case n > len(p.Schedule):
		attempts := "attempts"
		if n == 1 {
			attempts = "attempt" // an empty schedule
		}
		return Verdict{Reason: fmt.Sprintf("retry schedule exhausted after %d %s; last: %s", n, attempts, what)}
	}
	d := p.Schedule[n-1]
	if p.Jitter > 0 {
		d += time.Duration(float64(d) * p.Jitter * (2*rnd - 1))
	}
	if (status == 429 || status == 503) && retryAfter > 0 {
		d = max(d, min(retryAfter, p.MaxRetryAfter))
	}
	return Verdict{Retry: true, Delay: max(d, 0)}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date in any of its three forms (RFC 9110 §5.6.7). Max_retry_after caps
// what it asks for; a number of seconds past what a Duration holds is
// taken as the most it holds, not wrapped round to a negative one.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(s, uint64(math.MaxInt64/time.Second))) * time.Second
	} else if errors.Is(err, strconv.ErrRange) {
		return time.Duration(math.MaxInt64)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil { // a zone other than GMT
		return max(t.Sub(now), 0)
	}
	return 0
}
