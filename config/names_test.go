package config

import (
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

// IsID is SPEC §3's grammar, written as this regexp.
func TestIsIDIsTheGrammar(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	cases := []string{"", "a", ".", "..", "lead.created", "a b", "é", "x\x00", "/", strings.Repeat("a", 128), strings.Repeat("a", 129)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(140))
		for i := range b {
			const alphabet = "aZ09._:-/ \x80%"
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if IsID(s) != re.MatchString(s) {
			t.Errorf("IsID(%q) = %v", s, IsID(s))
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 5 * time.Second: "5s", 10 * time.Second: "10s", 5 * time.Minute: "5m", 90 * time.Second: "1m30s",
		2 * time.Hour: "2h", 90 * time.Minute: "1h30m", time.Hour + 30*time.Second: "1h0m30s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		} else if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("%q reads back as %v, %v", got, back, err)
		}
	}
}

// since and until take what the config file takes for a duration (days
// too), or an RFC 3339 time; nothing negative or unreadable.
func TestTimeOrAgo(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1h":                          now.Add(-time.Hour),
		"7d":                          now.Add(-7 * 24 * time.Hour),
		"1d12h":                       now.Add(-36 * time.Hour),
		"2026-11-25T08:00:00Z":        time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC),
		"2026-11-25T08:00:00.5+01:00": time.Date(2026, 11, 25, 7, 0, 0, 5e8, time.UTC),
		// Clamped to what the store's keys hold: before 1970 a since found
		// nothing and an until bounded nothing (black-box testing).
		"1969-12-31T23:59:59Z": time.Unix(0, 0),
		"1900-01-01T00:00:00Z": time.Unix(0, 0),
		"25000d":               time.Unix(0, 0),
		"9999-01-01T00:00:00Z": time.Unix(0, math.MaxInt64),
	} {
		if got, err := TimeOrAgo(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "yesterday", "1x", "2026-11-25"} {
		if got, err := TimeOrAgo(in, now); err == nil {
			t.Errorf("%q accepted: %v", in, got)
		}
	}
}
