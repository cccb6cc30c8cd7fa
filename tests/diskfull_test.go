package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A real full disk: the database lives on a 16 MiB tmpfs. When a commit
// fails with ENOSPC, ingest answers 503 with Retry-After, nothing of the
// failed request is visible, readiness says 503 while the disk stays full
// (also once the database has taken a commit again in pages it freed
// itself: it flapped to ready that way, 1 run in ~50 under load), the
// daemon keeps running, and it accepts events again by itself once space
// is freed. (Without root, the same path
// is covered through store's fault-injection seam in TestIngestErrors.)
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs; TestIngestErrors covers the same path through the fault seam")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs (%v: %s); TestIngestErrors covers the path through the fault seam", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1<<30) // keep everything pending
	cfgDir := t.TempDir()
	cfgPath := filepath.Join(cfgDir, "hookd.toml")
	cfg := fmt.Sprintf(baseConfig, "", "", filepath.Join(mnt, "hookd.db"), "min_free_bytes = 0", "", "") +
		endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["1h"]`)
	writeRaw(t, cfgPath, cfg)
	d := mustOpenFile(t, cfgDir, cfgPath, Extra{}, nil)

	big := strings.Repeat("x", 100<<10)
	full := -1
	for i := range 400 {
		status, out, h := d.Post("/v1/events", "application/json", fmt.Sprintf(`{"id":"e%d","type":"t","data":%q}`, i, big))
		if status == 202 {
			continue
		}
		if status != 503 || h.Get("Retry-After") == "" || out["error"].(map[string]any)["code"] != "storage_unavailable" {
			t.Fatalf("event %d: %d %v", i, status, out)
		}
		full = i
		break
	}
	if full < 0 {
		t.Fatal("the disk never filled up")
	}
	t.Logf("disk full after %d events", full)
	if status, _ := d.Admin("GET", fmt.Sprintf("/v1/events/e%d", full), ""); status != 404 {
		t.Fatalf("the refused event is visible: %d", status)
	}
	// A refused log write is cut back, which may leave room for a small
	// one: take what is left, so the disk is full while readiness is asked.
	topUp := filepath.Join(mnt, "top-up")
	fillUp(t, topUp)
	// Not ready while ingest cannot write (issue 11: it used to say ready).
	if status, _, _ := do(t, "GET", "http://"+d.IngestAddr()+"/readyz", "", ""); status != 503 {
		df, _ := exec.Command("df", mnt).CombinedOutput()
		t.Fatalf("daemon ready while the disk is full: %d\n%s\n%s", status, df, d.logs.String())
	}
	os.Remove(filler)
	os.Remove(topUp)
	eventually(t, "ready again once space is back", func() bool {
		status, _, _ := do(t, "GET", "http://"+d.IngestAddr()+"/readyz", "", "")
		return status == 200
	})
	eventually(t, "ingest accepts again once space is back", func() bool {
		status, _, _ := d.Post("/v1/events", "application/json", fmt.Sprintf(`{"id":"after","type":"t","data":%q}`, big))
		return status == 202
	})
	d.Close()
	if _, err := inspect(filepath.Join(mnt, "hookd.db")); err != nil {
		t.Fatal(err)
	}
}

// fillUp writes path until the file system it is on has no room left.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Page by page, so no room is left that a small write could use.
	for {
		if _, err := f.Write(chunk[:4096]); err != nil {
			break
		}
	}
}

// storage.min_free_bytes refuses new events before the disk is full, and
// a reload lowering it lets them in again.
func TestMinFreeBytes(t *testing.T) {
	rcv := NewReceiver(t)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "")
	d := MustOpenDaemonExtra(t, Extra{Storage: `min_free_bytes = "1000000GiB"`}, cfg, nil)
	status, out, h := d.Post("/v1/events", "application/json", `{"type":"t","data":{}}`)
	if status != 503 || h.Get("Retry-After") == "" || out["error"].(map[string]any)["code"] != "storage_full" {
		t.Fatalf("%d %v", status, out)
	}
	d.extra = Extra{Storage: "min_free_bytes = 0"}
	d.rewrite(cfg)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "accepting after the reload", func() bool {
		status, _, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":{}}`)
		return status == 202
	})
}

// At storage.max_pending, where ingest answers 429, readiness says 503
// too_many_pending (black-box testing: it said ready), and ready again once
// the limit is raised.
func TestReadyzAtMaxPending(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1<<30)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["1h"]`)
	d := MustOpenDaemonExtra(t, Extra{Storage: "max_pending = 2"}, cfg, nil)
	ready := func() (int, map[string]any) {
		status, out, _ := do(t, "GET", "http://"+d.IngestAddr()+"/readyz", "", "")
		return status, out
	}
	d.Event(`{"type":"t","data":1}`)
	if status, out := ready(); status != 200 {
		t.Fatalf("under max_pending: %d %v", status, out)
	}
	d.Event(`{"type":"t","data":2}`)
	if status, _, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":3}`); status != 429 {
		t.Fatalf("ingest at max_pending: %d", status)
	}
	if status, out := ready(); status != 503 || out["error"].(map[string]any)["code"] != "too_many_pending" {
		t.Fatalf("readiness at max_pending: %d %v", status, out)
	}
	d.extra = Extra{Storage: "max_pending = 3"}
	d.rewrite(cfg)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if status, out := ready(); status != 200 {
		t.Fatalf("after raising max_pending: %d %v", status, out)
	}
}
