package tests

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/daemon"
)

// A fake NOTIFY_SOCKET records what hookd tells systemd.
func TestSdNotifySequence(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func() string {
		for {
			select {
			case m := <-msgs:
				if m != "WATCHDOG=1" {
					return m
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no sd_notify message")
			}
		}
	}
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{}, endpoint("a", rcv.URL+"/a", `["*"]`, ""), func(d *daemon.Daemon) {
		d.Notify = daemon.SystemdNotifier()
	})
	if m := next(); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("first message %q, want READY=1", m)
	}
	// Watchdog pings arrive at half the interval while the scheduler runs.
	deadline := time.After(5 * time.Second)
	for pings := 0; pings < 3; {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				pings++
			}
		case <-deadline:
			t.Fatal("no watchdog pings")
		}
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	m := next()
	if !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("reload message %q", m)
	}
	if m := next(); m != "READY=1" {
		t.Fatalf("after reload %q, want READY=1", m)
	}
	d.Close()
	if m := next(); m != "STOPPING=1" {
		t.Fatalf("on close %q, want STOPPING=1", m)
	}
}

func TestUnitFileVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; the unit is verified where it is")
	}
	// verify checks that ExecStart's binary exists: point it at a built one.
	dir := t.TempDir()
	bin := filepath.Join(dir, "hookd")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	unit, err := os.ReadFile("../systemd/hookd.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/hookd", bin)
	path := filepath.Join(dir, "hookd.service")
	os.WriteFile(path, []byte(text), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "hookd.service:") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "DynamicUser=yes",
		"StateDirectory=hookd", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"} {
		if !strings.Contains(text+"\n", want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
}
