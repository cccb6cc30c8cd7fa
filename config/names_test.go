package config

import (
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
