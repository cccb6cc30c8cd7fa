package daemon

import (
	"strings"
	"testing"
)

// hookd run takes no arguments but its flags: "run extra -config F" ran
// the default file (black-box testing).
func TestParseRunFlagsRefusesArguments(t *testing.T) {
	var stderr strings.Builder
	if path, err := ParseRunFlags([]string{"-config", "f.toml"}, &stderr); err != nil || path != "f.toml" {
		t.Fatalf("%q %v", path, err)
	}
	for _, args := range [][]string{{"extra", "-config", "f.toml"}, {"-config", "f.toml", "extra"}} {
		if _, err := ParseRunFlags(args, &stderr); err == nil || !strings.Contains(stderr.String(), `"extra": unexpected argument`) {
			t.Errorf("%v: %v %s", args, err, stderr.String())
		}
	}
}
