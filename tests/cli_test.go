package tests

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"hookd/cli"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(args[0], args[1:], &out, &errb)
	return code, out.String(), errb.String()
}

// The operator's path on a failing endpoint: see it failing, list what is
// undeliverable, fix the receiver, redeliver, confirm.
func TestCLIOnFailingEndpoint(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1000)
	d := MustOpenDaemonExtra(t, Extra{Admin: `token = "adm"`}, endpoint("crm", rcv.URL+"/a", `["*"]`, `schedule = []`), nil)
	id := d.Event(`{"type":"lead.created","data":{"name":"Ada"}}`)
	admin := []string{"-admin", "http://" + d.AdminAddr(), "-token", "adm"}

	eventually(t, "parked", func() bool {
		_, out, _ := runCLI(t, append([]string{"undeliverable", "list"}, admin...)...)
		return strings.Contains(out, id)
	})
	code, out, _ := runCLI(t, append([]string{"undeliverable", "list", "-endpoint", "crm"}, admin...)...)
	if code != 0 || !strings.Contains(out, "PARKED AT") || !strings.Contains(out, "HTTP 500") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	// The endpoint's counters are updated just after the parked delivery
	// becomes visible, so wait for them rather than read them once.
	eventually(t, "endpoints: crm active, 0 pending, 0 in flight, 1 failure", func() bool {
		code, out, _ := runCLI(t, append([]string{"endpoints"}, admin...)...)
		return code == 0 && matchRe(`(?m)^crm\s+active\s+0\s+0\s+1\s`, out)
	})
	if code, out, _ := runCLI(t, append([]string{"test", "crm"}, admin...)...); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("test against a failing receiver: %d\n%s", code, out)
	}

	rcv.Status("/a", 200, 0) // the receiver is fixed
	if code, out, _ := runCLI(t, append([]string{"test", "crm", "-type", "ping"}, admin...)...); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("test: %d\n%s", code, out)
	}
	if code, out, errs := runCLI(t, append([]string{"undeliverable", "redeliver", "-endpoint", "crm"}, admin...)...); code != 0 || !strings.Contains(out, "requeued 1") {
		t.Fatalf("redeliver: %d %s %s", code, out, errs)
	}
	d.waitState(id, "crm", "delivered")
	code, out, _ = runCLI(t, append([]string{"events", "show", id, "-json"}, admin...)...)
	var ev map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev["id"] != id {
		t.Fatalf("events show -json: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, append([]string{"events", "show", id}, admin...)...); code != 0 || !strings.Contains(out, "delivered") {
		t.Fatalf("events show: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, append([]string{"redeliver", id, "-endpoint", "crm"}, admin...)...); code != 0 || !strings.Contains(out, "requeued") {
		t.Fatalf("redeliver one: %d\n%s", code, out)
	}

	// Errors mean something: unknown event 1, wrong token 1, usage 2, no daemon 3.
	if code, _, errs := runCLI(t, append([]string{"events", "show", "nope"}, admin...)...); code != 1 || !strings.Contains(errs, "no such") {
		t.Fatalf("unknown event: %d %s", code, errs)
	}
	if code, _, _ := runCLI(t, "endpoints", "-admin", "http://"+d.AdminAddr(), "-token", "wrong"); code != 1 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _, _ := runCLI(t, append([]string{"events"}, admin...)...); code != 2 {
		t.Fatalf("usage: %d", code)
	}
	addr := d.AdminAddr()
	d.Close()
	if code, _, errs := runCLI(t, "endpoints", "-admin", "http://"+addr); code != 3 || !strings.Contains(errs, "is hookd running") {
		t.Fatalf("no daemon: %d %s", code, errs)
	}
}

func TestCheckDB(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	d.Event(`{"type":"t","data":{}}`)
	path := d.Config().Storage.Path
	// While the daemon holds the lock, check-db refuses instead of waiting.
	if code, _, errs := runCLI(t, "check-db", "-path", path); code != 1 || !strings.Contains(errs, "locked") {
		t.Fatalf("check-db on a running daemon's file: %d %s", code, errs)
	}
	d.Close()
	code, out, errs := runCLI(t, "check-db", "-path", path)
	if code != 0 || !strings.Contains(out, "consistent") || !matchRe(`events\s+1\n`, out) {
		t.Fatalf("check-db: %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runCLI(t, "check-db"); code != 2 {
		t.Fatal("usage")
	}
}
