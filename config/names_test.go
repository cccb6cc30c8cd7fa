package config

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
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
