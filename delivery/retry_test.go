package delivery

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	p := Policy{Schedule: []time.Duration{time.Second, time.Minute}, MaxRetryAfter: 10 * time.Second}
	if v := p.Decide(1, 500, "", 0, 0.5); !v.Retry || v.Delay != time.Second {
		t.Fatalf("first retry %+v", v)
	}
	if v := p.Decide(2, 0, "timeout", 0, 0.5); !v.Retry || v.Delay != time.Minute {
		t.Fatalf("second retry %+v", v)
	}
	if v := p.Decide(3, 500, "", 0, 0.5); v.Retry || !strings.Contains(v.Reason, "exhausted after 3 attempts") {
		t.Fatalf("exhausted %+v", v)
	}
	if v := p.Decide(1, 404, "", 0, 0.5); !v.Retry {
		t.Fatal("404 final without stop_on_4xx")
	}
	if v := p.Decide(1, 410, "", 0, 0.5); v.Retry || !v.Disable {
		t.Fatalf("410 %+v", v)
	}
	keep := p
	keep.KeepOn410 = true // the [notify] target's
	keep.StopOn4xx = true // from [defaults]: a 410 is still retried
	if v := keep.Decide(1, 410, "", 0, 0.5); !v.Retry || v.Disable || keep.Decide(3, 410, "", 0, 0.5).Disable {
		t.Fatalf("410 kept on %+v", v)
	}
	// Retry-After lengthens the delay up to the cap, and only on 429/503.
	if v := p.Decide(1, 429, "", 5*time.Second, 0.5); v.Delay != 5*time.Second {
		t.Fatalf("429 retry-after %+v", v)
	}
	if v := p.Decide(1, 503, "", time.Hour, 0.5); v.Delay != 10*time.Second {
		t.Fatalf("capped retry-after %+v", v)
	}
	if v := p.Decide(1, 500, "", time.Hour, 0.5); v.Delay != time.Second {
		t.Fatalf("retry-after on 500 %+v", v)
	}
}

func TestStopOn4xx(t *testing.T) {
	p := Policy{Schedule: []time.Duration{time.Second}, StopOn4xx: true}
	for status, retry := range map[int]bool{400: false, 404: false, 408: true, 429: true, 500: true} {
		if v := p.Decide(1, status, "", 0, 0.5); v.Retry != retry {
			t.Errorf("%d: retry %v, want %v (%s)", status, v.Retry, retry, v.Reason)
		}
	}
}

func TestNoRetries(t *testing.T) {
	p := Policy{Schedule: []time.Duration{}}
	if v := p.Decide(1, 500, "", 0, 0.5); v.Retry {
		t.Fatal("schedule [] retried")
	}
}

func TestJitterBounds(t *testing.T) {
	p := Policy{Schedule: []time.Duration{10 * time.Second}, Jitter: 0.2}
	lo, hi := p.Decide(1, 500, "", 0, 0), p.Decide(1, 500, "", 0, 0.999999)
	if lo.Delay != 8*time.Second || hi.Delay < 11900*time.Millisecond || hi.Delay > 12*time.Second {
		t.Fatalf("jitter range %v..%v", lo.Delay, hi.Delay)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := ParseRetryAfter("120", now); d != 2*time.Minute {
		t.Fatal(d)
	}
	if d := ParseRetryAfter(now.Add(time.Minute).Format(time.RFC1123), now); d != time.Minute {
		t.Fatal(d)
	}
	if d := ParseRetryAfter("soon", now); d != 0 {
		t.Fatal(d)
	}
	// Past what a Duration holds: the most it holds, not a wrapped negative
	// (found by black-box testing); and the other two date forms.
	for _, v := range []string{"10000000000", "99999999999999999999999"} {
		if d := ParseRetryAfter(v, now); d < 100*365*24*time.Hour {
			t.Errorf("%s: %v", v, d)
		}
	}
	for _, v := range []string{"Thu Jan  1 00:01:00 2026", "Thursday, 01-Jan-26 00:01:00 GMT", "-5"} {
		want := time.Minute
		if v == "-5" {
			want = 0
		}
		if d := ParseRetryAfter(v, now); d != want {
			t.Errorf("%s: %v", v, d)
		}
	}
}
