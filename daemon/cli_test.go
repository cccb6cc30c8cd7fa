package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Command("check-config", []string{"-config", "../config.example.toml"}, &out, &errb); code != 0 {
		t.Fatalf("example: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"OK", "endpoint example", "signing  standard", "retries  [5s 5m 30m 2h 5h 10h 10h]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "whsec_") {
		t.Error("summary shows a secret")
	}

	p := filepath.Join(t.TempDir(), "broken.toml")
	os.WriteFile(p, []byte("[delivery]\nworkers = 0\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := Command("check-config", []string{"-config", p}, &out, &errb); code != 1 {
		t.Fatalf("broken: exit %d", code)
	}
	if !strings.Contains(errb.String(), "broken.toml:2: delivery.workers") {
		t.Fatalf("error %q does not name key and line", errb.String())
	}
}

func TestGenSecret(t *testing.T) {
	var out bytes.Buffer
	Command("gen-secret", nil, &out, &out)
	s := strings.TrimSpace(out.String())
	if !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 {
		t.Fatalf("secret %q", s)
	}
}
