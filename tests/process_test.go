package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// hookdBinary builds the daemon once per test run.
func hookdBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "hookd")
		if out, err := exec.Command("go", "build", "-race", "-o", binPath, "..").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// Proc is a hookd process on ephemeral loopback ports.
type Proc struct {
	tb       testing.TB
	cmd      *exec.Cmd
	dir, cfg string
	// ingest and admin are the addresses the running process bound (each
	// start binds new ones).
	ingest, admin string
	exited        chan struct{}
	logFile       *os.File
	logFrom       int64 // where this start's log begins: every start appends to logFile
}

// StartProc writes a config into dir and starts hookd. Its listeners bind
// port 0, so no other process can take a port between a test picking it
// and hookd binding it; the start log line says which ports they got.
func StartProc(tb testing.TB, dir, endpoints string) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, dir: dir, cfg: filepath.Join(dir, "hookd.toml")}
	cfg := fmt.Sprintf("[ingest]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = %q\n[delivery]\nworkers = 16\nshutdown_timeout = \"2s\"\n[log]\nlevel = \"info\"\n%s",
		filepath.Join(dir, "hookd.db"), endpoints)
	writeRaw(tb, p.cfg, cfg)
	// Registered before any start's kill, so it runs after them all.
	tb.Cleanup(func() { checkDB(tb, filepath.Join(dir, "hookd.db")) })
	p.start()
	return p
}

func (p *Proc) start() {
	p.tb.Helper()
	var err error
	p.logFile, err = os.OpenFile(filepath.Join(p.dir, "hookd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.tb.Fatal(err)
	}
	fi, err := p.logFile.Stat()
	if err != nil {
		p.tb.Fatal(err)
	}
	p.logFrom = fi.Size()
	p.cmd = exec.Command(hookdBinary(p.tb), "run", "-config", p.cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	p.exited = make(chan struct{})
	cmd := p.cmd
	go func() { cmd.Wait(); close(p.exited) }()
	p.tb.Cleanup(func() { cmd.Process.Kill(); <-p.exited })
	eventually(p.tb, "hookd started", func() bool {
		select {
		case <-p.exited:
			p.tb.Fatalf("hookd exited: %s", readRaw(p.tb, p.logFile.Name()))
		default:
		}
		// Open logs this once both listeners are bound.
		l, ok := p.findLog("hookd started")
		p.ingest, p.admin = l.Ingest, l.Admin
		return ok
	})
	registerListeners(p.tb, p.ingest, p.admin)
}

// logLine holds the fields of a log line that the tests read.
type logLine struct{ Message, Ingest, Admin string }

// findLog returns the first line with message msg that this start logged.
func (p *Proc) findLog(msg string) (logLine, bool) {
	for _, s := range strings.Split(readRaw(p.tb, p.logFile.Name())[p.logFrom:], "\n") {
		var l logLine
		if json.Unmarshal([]byte(s), &l) == nil && l.Message == msg {
			return l, true
		}
	}
	return logLine{}, false
}

// Restart starts the process again on the same directory and config.
func (p *Proc) Restart() {
	p.tb.Helper()
	p.start()
}

// Stop sends sig, waits for the process to exit and returns its exit code.
func (p *Proc) Stop(sig syscall.Signal) int {
	p.tb.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.tb.Fatal("hookd did not exit")
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *Proc) post(body string) (int, map[string]any) {
	status, out, _ := do(p.tb, "POST", "http://"+p.ingest+"/v1/events", "application/json", body)
	return status, out
}

// SIGTERM under load: exit 0, and after a restart every acknowledged event
// is delivered.
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	rcv := NewReceiver(t)
	p := StartProc(t, t.TempDir(), endpoint("a", rcv.URL+"/a", `["*"]`, "schedule = [\"100ms\"]\n"+standardSigning(testSecret)))
	var acked sync.Map
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				status, _, err := tryPost(p.ingest, fmt.Sprintf(`{"id":%q,"type":"t","data":{}}`, id))
				if err != nil || status == 503 {
					return
				}
				if status == 202 {
					acked.Store(id, true)
					n.Add(1)
				}
			}
		}()
	}
	eventually(t, "some load", func() bool { return n.Load() > 200 })
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; log:\n%s", code, readRaw(t, p.logFile.Name()))
	}
	close(stop)
	wg.Wait()
	p.Restart()
	want := 0
	acked.Range(func(_, _ any) bool { want++; return true })
	eventually(t, fmt.Sprintf("all %d acknowledged ids delivered", want), func() bool {
		seen := map[string]bool{}
		for _, r := range rcv.Requests("/a") {
			seen[r.Header.Get("webhook-id")] = true
		}
		missing := 0
		acked.Range(func(k, _ any) bool {
			if !seen[k.(string)] {
				missing++
			}
			return true
		})
		return missing == 0
	})
	if code := p.Stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
}

// A second signal during a slow shutdown exits at once; the database is
// still consistent and usable afterwards.
func TestSecondSignalForcesExit(t *testing.T) {
	rcv := NewReceiver(t)
	release := make(chan struct{})
	defer close(release)
	rcv.Handle("/a", func(int, *http.Request, http.ResponseWriter) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	dir := t.TempDir()
	p := StartProc(t, dir, endpoint("a", rcv.URL+"/a", `["*"]`, "timeout = \"20s\"\nschedule = [\"100ms\"]"))
	if status, out := p.post(`{"id":"slow","type":"t","data":{}}`); status != 202 {
		t.Fatalf("%d %v", status, out)
	}
	rcv.Wait(t, "/a", 1)
	p.cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, "shutdown under way", func() bool { _, ok := p.findLog("shutting down"); return ok })
	if code := p.Stop(syscall.SIGTERM); code == 0 {
		t.Fatal("forced exit reported success")
	}
	if _, err := inspect(filepath.Join(dir, "hookd.db")); err != nil {
		t.Fatalf("database after a forced exit: %v", err)
	}
	rcv.Handle("/a", nil)
	p.Restart()
	eventually(t, "redelivered after forced exit", func() bool { return len(rcv.Requests("/a")) >= 2 })
}

func tryPost(addr, body string) (int, map[string]any, error) {
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}
