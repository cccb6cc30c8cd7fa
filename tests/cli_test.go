package tests

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"hookd/cli"
	"hookd/client"
	"hookd/config"
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
		return code == 0 && matchRe(`(?m)^crm\s+config\s+-\s+active\s+0\s+0\s+1\s`, out)
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

// The operator's path for a managed endpoint, against a real daemon:
// create → show → update → rotate-secret → secret → delete, with the
// receiver checking each step's effect. The tenants commands are covered
// by the golden transcript only, against canned answers, until the
// daemon serves /v1/tenants.
func TestCLIManagedEndpoints(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{Admin: `token = "adm"`}, endpoint("crm", rcv.URL+"/crm", `["nothing"]`, ""), nil)
	admin := []string{"-admin", "http://" + d.AdminAddr(), "-token", "adm"}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(args, admin...)...)
	}

	code, out, errs := run("endpoints", "create", "-url", rcv.URL+"/one", "-name", "acme", "-events", "lead.*, deal.won",
		"-description", "Acme CRM", "-set", "metadata.crm=acme", "-set", `schedule=["1h"]`)
	secret := regexp.MustCompile(`(?m)^secret\s+(whsec_\S+)$`).FindStringSubmatch(out)
	if code != 0 || secret == nil || !matchRe(`(?m)^source\s+api$`, out) {
		t.Fatalf("create: %d\n%s%s", code, out, errs)
	}
	old := secret[1]
	// A tenant endpoint, for -tenant; it gets no events here.
	if code, out, errs := run("endpoints", "create", "-url", "https://hooks.example.com/acme", "-tenant", "wgt_1", "-scheme", "none", "-json"); code != 0 ||
		!strings.Contains(out, `"tenant": "wgt_1"`) || strings.Contains(out, `"secret"`) {
		t.Fatalf("create for a tenant, unsigned: %d\n%s%s", code, out, errs)
	}
	if code, _, errs := run("endpoints", "create", "-url", rcv.URL+"/x", "-name", "acme"); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("create with a taken name: %d %s", code, errs)
	}
	if code, _, errs := run("endpoints", "create", "-url", "ftp://x"); code != 1 || !strings.Contains(errs, "url") {
		t.Fatalf("create with a bad url: %d %s", code, errs)
	}

	code, out, _ = run("endpoints", "show", "acme")
	if code != 0 || !matchRe(`(?m)^description\s+Acme CRM$`, out) || !matchRe(`(?m)^events\s+lead\.\*, deal\.won$`, out) ||
		!matchRe(`(?m)^metadata\s+crm=acme$`, out) || strings.Contains(out, "whsec_") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	code, out, _ = run("endpoints", "-tenant", "wgt_1")
	if code != 0 || !matchRe(`(?m)^ep_[0-9a-z]{26}\s+api\s+wgt_1\s+active\s`, out) || matchRe(`(?m)^(acme|crm)\s`, out) {
		t.Fatalf("endpoints -tenant: %d\n%s", code, out)
	}
	code, out, _ = run("endpoints")
	if code != 0 || !matchRe(`(?m)^acme\s+api\s+-\s+active\s`, out) || !matchRe(`(?m)^crm\s+config\s+-\s+active\s`, out) {
		t.Fatalf("endpoints: %d\n%s", code, out)
	}
	d.Event(`{"type":"lead.created","data":1}`)
	verifyAmong(t, rcv.Wait(t, "/one", 1)[0], old)

	code, out, errs = run("endpoints", "update", "acme", "-url", rcv.URL+"/two", "-events", "*", "-set", "schedule=null", "-set", "timeout=10s")
	if code != 0 || !matchRe(`(?m)^url\s+`+regexp.QuoteMeta(rcv.URL)+`/two$`, out) || !matchRe(`(?m)^events\s+\*$`, out) {
		t.Fatalf("update: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run("endpoints", "update", "acme", "-disabled", "true"); code != 0 || !matchRe(`(?m)^state\s+disabled`, out) {
		t.Fatalf("update -disabled true: %d\n%s", code, out)
	}
	if code, out, _ := run("endpoints", "update", "acme", "-disabled", "false"); code != 0 || !matchRe(`(?m)^state\s+active$`, out) {
		t.Fatalf("update -disabled false: %d\n%s", code, out)
	}
	if code, _, errs := run("endpoints", "update", "acme", "-set", "timeout=soon"); code != 1 || !strings.Contains(errs, "timeout") {
		t.Fatalf("update with a bad value: %d %s", code, errs)
	}
	if code, _, errs := run("endpoints", "update", "crm", "-url", rcv.URL+"/x"); code != 1 || !strings.Contains(errs, "config file") {
		t.Fatalf("update of a config endpoint: %d %s", code, errs)
	}

	code, out, _ = run("endpoints", "rotate-secret", "acme", "-overlap", "1h")
	secret = regexp.MustCompile(`(?m)^secret\s+(whsec_\S+)$`).FindStringSubmatch(out)
	if code != 0 || secret == nil || secret[1] == old {
		t.Fatalf("rotate-secret: %d\n%s", code, out)
	}
	d.Event(`{"type":"deal.lost","data":2}`) // events "*" since the update
	r := rcv.Wait(t, "/two", 1)[0]
	if n := verifyAmong(t, r, secret[1]); n != 2 {
		t.Fatalf("%d signatures during the overlap, want the new and the old", n)
	}
	verifyAmong(t, r, old)

	code, out, _ = run("endpoints", "secret", "acme")
	if code != 0 || !matchRe(`(?m)^secret\s+`+regexp.QuoteMeta(secret[1])+`$`, out) || !matchRe(`(?m)^previous\s+`+regexp.QuoteMeta(old)+`\s+signs until `, out) {
		t.Fatalf("secret: %d\n%s", code, out)
	}
	var sec client.Secrets
	if code, out, _ := run("endpoints", "secret", "acme", "-json"); code != 0 || json.Unmarshal([]byte(out), &sec) != nil || sec.Secret != secret[1] || len(sec.Previous) != 1 {
		t.Fatalf("secret -json: %d\n%s", code, out)
	}
	if code, out, _ := run("endpoints", "rotate-secret", "acme", "-overlap", "0s", "-secret", old, "-json"); code != 0 || !strings.Contains(out, old) {
		t.Fatalf("rotate-secret back, at once: %d\n%s", code, out)
	}
	if code, _, errs := run("endpoints", "secret", "crm"); code != 1 || !strings.Contains(errs, "config file") {
		t.Fatalf("secret of a config endpoint: %d %s", code, errs)
	}

	if code, out, _ := run("endpoints", "delete", "acme"); code != 0 || !strings.Contains(out, "deleted acme") {
		t.Fatalf("delete: %d\n%s", code, out)
	}
	if code, _, errs := run("endpoints", "show", "acme"); code != 1 || !strings.Contains(errs, "no such") {
		t.Fatalf("show after delete: %d %s", code, errs)
	}
	if code, _, _ := run("endpoints", "delete", "acme"); code != 1 {
		t.Fatalf("delete again: %d", code)
	}
	if code, _, _ := run("endpoints", "delete", "crm"); code != 1 {
		t.Fatalf("delete of a config endpoint: %d", code)
	}
	if code, _, _ := run("endpoints", "delete"); code != 2 {
		t.Fatalf("delete without a name: %d", code)
	}
}

// client.EndpointRequest mirrors what the daemon decodes a new endpoint
// from (config.APISettings): the CLI's -set checks keys against it, so a
// setting missing there could not be set from the command line.
func TestCLIRequestMirrorsAPISettings(t *testing.T) {
	keys := func(t reflect.Type) []string {
		var out []string
		var walk func(reflect.Type)
		walk = func(t reflect.Type) {
			for f := range t.Fields() {
				if f.Anonymous {
					walk(f.Type)
					continue
				}
				if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
					out = append(out, name)
				}
			}
		}
		walk(t)
		slices.Sort(out)
		return out
	}
	if got, want := keys(reflect.TypeFor[client.EndpointRequest]()), keys(reflect.TypeFor[config.APISettings]()); !slices.Equal(got, want) {
		t.Errorf("client.EndpointRequest keys %v\nconfig.APISettings keys %v", got, want)
	}
	// The file's ways to name a secret, which the API refuses, are left out.
	want := slices.DeleteFunc(keys(reflect.TypeFor[config.SigningSettings]()), func(k string) bool {
		return k == "secret_file" || k == "secret_env" || k == "previous_secrets"
	})
	if got := keys(reflect.TypeFor[client.SigningRequest]()); !slices.Equal(got, want) {
		t.Errorf("client.SigningRequest keys %v\nconfig.SigningSettings keys %v", got, want)
	}
}
