package tests

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd/api"
	"hookd/client"
	"hookd/config"
	"hookd/daemon"
	"hookd/store"
)

// failSecondCommit makes a daemon on cfg whose commits fail from the
// second one after arm is called until disarm is.
func failSecondCommit(t *testing.T, cfg string) (d *Daemon, arm, disarm func()) {
	var armed, n atomic.Int32
	d = MustOpenDaemonExtra(t, Extra{}, cfg, func(d *daemon.Daemon) {
		d.StoreHooks.BeforeCommit = func() error {
			if armed.Load() == 1 && n.Add(1) > 1 {
				return errors.New("injected: disk gone")
			}
			return nil
		}
	})
	return d, func() { n.Store(0); armed.Store(1) }, func() { armed.Store(0) }
}

// A create's or patch's "disabled" is stored with the settings it came
// with, in one commit, and the endpoint is never current without it: a
// 201 or 200 means both, an error means neither.
func TestCreateAndPatchWithDisabledAreAtomic(t *testing.T) {
	rcv := NewReceiver(t)
	d, arm, disarm := failSecondCommit(t, "")

	arm()
	status, out := d.Admin("POST", "/v1/endpoints", `{"name":"off","url":"`+rcv.URL+`/off","events":["*"],"tenant":"t1","disabled":true}`)
	disarm()
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/off", ""); ep["state"] != "disabled" {
		t.Fatalf("created disabled: %v", ep)
	}
	id := d.Event(`{"type":"x","tenant":"t1","data":1}`)
	d.waitState(id, "off", "undeliverable")
	if n := len(rcv.Requests("/off")); n != 0 {
		t.Fatalf("an endpoint created disabled received %d requests", n)
	}

	if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"p","url":"`+rcv.URL+`/old","events":["*"],"tenant":"t2"}`); st != 201 {
		t.Fatal(st, out)
	}
	arm()
	status, _ = d.Admin("PATCH", "/v1/endpoints/p", `{"url":"`+rcv.URL+`/new","disabled":true}`)
	disarm()
	_, ep := d.Admin("GET", "/v1/endpoints/p", "")
	switch {
	case status == 200 && (ep["url"] != rcv.URL+"/new" || ep["state"] != "disabled"):
		t.Fatalf("patch answered 200 but the endpoint is %v", ep)
	case status != 200 && (ep["url"] != rcv.URL+"/old" || ep["state"] != "active"):
		t.Fatalf("patch answered %d but the endpoint is %v", status, ep)
	}
	id = d.Event(`{"type":"x","tenant":"t2","data":2}`)
	if status == 200 {
		d.waitState(id, "p", "undeliverable")
		if n := len(rcv.Requests("/new")); n != 0 {
			t.Fatalf("the new URL of an endpoint patched disabled received %d requests", n)
		}
	} else {
		rcv.Wait(t, "/old", 1)
	}
}

// A config under which a stored managed endpoint no longer builds (here a
// [defaults.signing] encoding the endpoint's hmac-sha256 scheme cannot
// use, which [defaults] alone, checked at load as a standard endpoint,
// does not show) is
// refused, as a bad config is: at a reload the old one keeps running; at
// a start hookd does not start, rather than leave the endpoint out
// (unserved, unknown to the API, its name free for the file, its
// deliveries parked as deleted). With the config it ran with it starts
// again with the endpoint and its deliveries.
func TestConfigUnderWhichAManagedEndpointDoesNotBuildIsRefused(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/h", 500, 1000)
	const schedule = "\n[defaults]\nschedule = [\"1h\"]\n"
	const bad = schedule + "[defaults.signing]\nencoding = \"base32\"\n"
	d := MustOpenDaemon(t, schedule)
	if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"h","url":"`+rcv.URL+`/h","events":["*"],"tenant":"t1","signing":{"scheme":"hmac-sha256"}}`); st != 201 {
		t.Fatal(st, out)
	}
	id := d.Event(`{"type":"x","tenant":"t1","data":1}`)
	rcv.Wait(t, "/h", 1) // failed; the retry is an hour away

	d.rewrite(bad)
	err := d.Reload()
	if err == nil || !strings.Contains(err.Error(), `managed endpoint "h"`) || !strings.Contains(err.Error(), "signing") {
		t.Fatalf("reload: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	c, err := config.Load(d.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dd := daemon.New(c)
	if err := dd.Open(); err == nil || !errors.Is(err, config.ErrConfig) || !strings.Contains(err.Error(), `managed endpoint "h" (tenant "t1")`) {
		dd.Close()
		t.Fatalf("start: %v", err)
	}

	d = mustOpenIn(t, d.dir, d.extra, schedule, nil)
	if st, ep := d.Admin("GET", "/v1/endpoints/h", ""); st != 200 || ep["state"] != "active" {
		t.Fatalf("after the refused start: %d %v", st, ep)
	}
	if st := d.deliveryState(id, "h")["state"]; st != "pending" {
		t.Fatalf("its delivery: %v", st)
	}
}

// A delete is answered by its commit: if parking the endpoint's deliveries
// then fails (or a crash comes first), the delete stands, and the next
// start parks them as deleted rather than leave them pending until their
// retry, an hour away here.
func TestDeleteStandsWhenParkingFails(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/h", 500, 1000)
	const schedule = "\n[defaults]\nschedule = [\"1h\"]\n"
	d, arm, disarm := failSecondCommit(t, schedule)
	if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"h","url":"`+rcv.URL+`/h","events":["*"],"tenant":"t1"}`); st != 201 {
		t.Fatal(st, out)
	}
	id := d.Event(`{"type":"x","tenant":"t1","data":1}`)
	rcv.Wait(t, "/h", 1)
	eventually(t, "the failed attempt recorded", func() bool {
		a, _ := d.deliveryState(id, "h")["attempts"].(float64)
		return a == 1
	})
	arm()
	status, out := d.Admin("DELETE", "/v1/endpoints/h", "")
	disarm()
	if status != 204 {
		t.Fatalf("delete: %d %v", status, out)
	}
	if dl := onlyDelivery(t, d, id); dl["state"] != "pending" {
		t.Fatalf("the parking did not fail: %v", dl)
	}
	d = d.Restart(schedule)
	if st, _ := d.Admin("GET", "/v1/endpoints/h", ""); st != 404 {
		t.Fatalf("deleted endpoint after restart: %d", st)
	}
	if dl := onlyDelivery(t, d, id); dl["state"] != "undeliverable" || dl["reason"] != "endpoint deleted" {
		t.Fatalf("its delivery after the restart: %v", dl)
	}
}

// onlyDelivery is the one delivery of event id (its endpoint deleted, it
// has no name to find it by).
func onlyDelivery(t *testing.T, d *Daemon, id string) map[string]any {
	t.Helper()
	_, ev := d.Admin("GET", "/v1/events/"+id, "")
	ds, _ := ev["deliveries"].([]any)
	if len(ds) != 1 {
		t.Fatalf("event %s: %v", id, ev)
	}
	return ds[0].(map[string]any)
}

// reloadInNextCommit opens a daemon whose next commit after arm waits for
// a reload (its answer on reloaded) to put its config in place: a change
// committing then is overtaken by it.
func reloadInNextCommit(t *testing.T) (d *Daemon, arm func(), reloaded chan error) {
	var armed atomic.Bool
	reloaded = make(chan error, 1)
	d = MustOpenDaemonExtra(t, Extra{}, "", func(dd *daemon.Daemon) {
		dd.StoreHooks.BeforeCommit = func() error {
			if armed.CompareAndSwap(true, false) {
				old := dd.Config()
				go func() { reloaded <- dd.Reload() }()
				// Not eventually: this is the committer's goroutine, not the
				// test's. The reload swaps the config before its own commit.
				for deadline := time.Now().Add(10 * time.Second); dd.Config() == old && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			return nil
		}
	})
	return d, func() { armed.Store(true) }, reloaded
}

// A create whose commit a reload overtakes is built under the config the
// reload put in place (the reload cannot rebuild what is not yet in the
// table): here the reload's [defaults] header reaches the new endpoint.
func TestCreateDuringReloadGetsTheNewConfig(t *testing.T) {
	rcv := NewReceiver(t)
	d, arm, reloaded := reloadInNextCommit(t)
	d.rewrite("\n[defaults]\nheaders = { X-Reloaded = \"yes\" }\n")
	arm()
	if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"c","url":"`+rcv.URL+`/c","events":["*"],"tenant":"t1"}`); st != 201 {
		t.Fatal(st, out)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	d.Event(`{"type":"x","tenant":"t1","data":1}`)
	if r := rcv.Wait(t, "/c", 1)[0]; r.Header.Get("X-Reloaded") != "yes" {
		t.Fatalf("the endpoint created during the reload runs under the old config: %v", r.Header)
	}
}

// A create whose commit a reload overtakes is built under the reloaded
// config. A [defaults] timeout beyond a tenant endpoint's cap once made it
// fail to build (24 creates racing such a SIGHUP all answered 201, and the
// daemon could not restart; black-box testing), and then refused it; now
// an inherited value over a cap is the cap, so the create stands, runs
// with the cap, and the daemon restarts under that config.
func TestCreateDuringAReloadOverTheCaps(t *testing.T) {
	rcv := NewReceiver(t)
	d, arm, reloaded := reloadInNextCommit(t)
	capped := "\n[defaults]\ntimeout = \"60s\"\n"
	d.rewrite(capped)
	arm()
	if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"c","url":"`+rcv.URL+`/c","events":["*"],"tenant":"t1"}`); st != 201 {
		t.Fatalf("create: %d %v", st, out)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	d = d.Restart(capped)
	if st, out := d.Admin("GET", "/v1/endpoints/c", ""); st != 200 || out["timeout"] != nil && out["timeout"] != "30s" {
		t.Fatalf("after the restart: %d %v", st, out)
	}
	d.Event(`{"type":"x","tenant":"t1","data":1}`)
	rcv.Wait(t, "/c", 1)
}

// A reload builds the managed endpoints before it holds them (built under
// the set, 100,000 held every change of every tenant for 1.6 s): changes
// made meanwhile are answered at once, and the reload then builds again
// what they changed, so nothing is lost either way. Here a patch, a
// create and a delete land between the reload's build and its swap; the
// patched and created endpoints run with both their change and the new
// [defaults], the untouched one with the new [defaults], and the deleted
// one stays deleted.
func TestChangesDuringAReloadsBuild(t *testing.T) {
	rcv := NewReceiver(t)
	var d *Daemon
	var armed atomic.Bool
	changed := make(chan error, 1)
	d = MustOpenDaemonExtra(t, Extra{}, "", func(dd *daemon.Daemon) {
		dd.ReloadBuilt = func() {
			if !armed.CompareAndSwap(true, false) {
				return
			}
			go func() {
				for _, c := range []struct{ method, path, body string }{
					{"PATCH", "/v1/endpoints/a", `{"url":"` + rcv.URL + `/a2"}`},
					{"POST", "/v1/endpoints", `{"name":"c","url":"` + rcv.URL + `/c","events":["*"],"tenant":"t1"}`},
					{"DELETE", "/v1/endpoints/e", ""},
				} {
					if st, out := d.Admin(c.method, c.path, c.body); st >= 300 {
						changed <- fmt.Errorf("%s %s: %d %s", c.method, c.path, st, out)
						return
					}
				}
				changed <- nil
			}()
			select { // the changes must not wait for the reload
			case err := <-changed:
				changed <- err
			case <-time.After(30 * time.Second): // a deadlock's detector, not a timing
				changed <- errors.New("the changes waited for the reload")
			}
		}
	})
	for _, name := range []string{"a", "b", "e"} {
		if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"`+name+`","url":"`+rcv.URL+`/`+name+`","events":["*"],"tenant":"t1"}`); st != 201 {
			t.Fatal(st, out)
		}
	}
	d.rewrite("\n[defaults]\nheaders = { X-Reloaded = \"yes\" }\n")
	armed.Store(true)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
	d.Event(`{"type":"x","tenant":"t1","data":1}`)
	for _, path := range []string{"/a2", "/b", "/c"} {
		if r := rcv.Wait(t, path, 1)[0]; r.Header.Get("X-Reloaded") != "yes" {
			t.Fatalf("%s runs under the old config: %v", path, r.Header)
		}
	}
	d.Event(`{"type":"y","tenant":"t1","data":2}`)
	rcv.Wait(t, "/b", 2)
	if n := rcv.count("/a") + rcv.count("/e"); n != 0 {
		t.Fatalf("%d deliveries to the old URL or the deleted endpoint", n)
	}
	if st, _ := d.Admin("GET", "/v1/endpoints/e", ""); st != 404 {
		t.Fatalf("the deleted endpoint came back: %d", st)
	}
}

// A disable (a 410, disable_after, an operator) that comes while a
// managed endpoint's delete is committing waits for the delete to be
// current, and then finds nothing to disable: the delete's deliveries are
// parked as "endpoint deleted" and no state outlives the endpoint. (It
// used to land between the commit and the table swap, parking them as
// disabled and writing a state for the deleted id.)
func TestDisableDuringDeleteWaitsForIt(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/c", 500, 1000)
	var armed atomic.Bool
	disabled := make(chan error, 1)
	d := MustOpenDaemonExtra(t, Extra{Tenants: "deny_networks = []"}, "", func(dd *daemon.Daemon) {
		dd.StoreHooks.BeforeCommit = func() error {
			if armed.CompareAndSwap(true, false) {
				go func() {
					_, err := dd.SetDisabled(context.Background(), api.AllTenants(), "c", true)
					disabled <- err
				}()
				// Give the disable time to reach the table; with the table
				// held across the commit it waits, and the delay changes
				// nothing.
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		}
	})
	if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"c","url":"`+rcv.URL+`/c","events":["*"],"tenant":"t1","schedule":["1h"]}`); st != 201 {
		t.Fatal(st, out)
	}
	id := d.Event(`{"type":"x","tenant":"t1","data":1}`)
	eventually(t, "the first attempt recorded", func() bool { return d.deliveryState(id, "c")["attempts"] == 1.0 })
	armed.Store(true)
	if st, out := d.Admin("DELETE", "/v1/endpoints/c", ""); st != 204 {
		t.Fatal(st, out)
	}
	// The disable came after the delete, and is answered so: a 404, not a
	// "disabled" for an endpoint that is gone (black-box testing: an
	// operator's disable racing a tenant's delete answered 200, the hold
	// the operator was told of on nothing).
	if err := <-disabled; api.ErrorOf(err).Status != 404 {
		t.Fatalf("disable: %v", err)
	}
	if dl := onlyDelivery(t, d, id); dl["state"] != "undeliverable" || dl["reason"] != "endpoint deleted" {
		t.Fatalf("after the delete: %v", dl)
	}
}

// A change of one managed endpoint holds that endpoint only while it
// commits: reading another's secret, patching a third and disabling a
// fourth do not wait for it (every change once waited for the last one's
// commit, about 20 a second for all tenants together), and the changes
// then land together. The endpoint's own secret is read after its change.
func TestEndpointChangeHoldsOnlyItsEndpoint(t *testing.T) {
	rcv := NewReceiver(t)
	var armed atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	d := MustOpenDaemonExtra(t, Extra{}, "", func(d *daemon.Daemon) {
		d.StoreHooks.BeforeCommit = func() error {
			if armed.CompareAndSwap(1, 0) {
				entered <- struct{}{}
				<-release
			}
			return nil
		}
	})
	for _, name := range []string{"a", "b", "c", "e"} {
		if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"`+name+`","url":"`+rcv.URL+`/`+name+`","events":["*"],"tenant":"t_`+name+`"}`); st != 201 {
			t.Fatal(st, out)
		}
	}
	_, before := d.Admin("GET", "/v1/endpoints/a/secret", "")

	armed.Store(1)
	rotated := make(chan map[string]any, 1)
	go func() {
		st, out := d.Admin("POST", "/v1/endpoints/a/rotate-secret", `{"overlap":"0s"}`)
		if st != 200 {
			t.Errorf("rotate: %d %v", st, out)
		}
		rotated <- out
	}()
	<-entered // the rotation of a is in its commit, holding a
	others := make(chan string, 4)
	go func() {
		if st, out := d.Admin("GET", "/v1/endpoints/b/secret", ""); st != 200 {
			t.Errorf("secret of b: %d %v", st, out)
		}
		others <- "read b's secret"
	}()
	go func() {
		if st, out := d.Admin("PATCH", "/v1/endpoints/c", `{"description":"patched"}`); st != 200 {
			t.Errorf("patch c: %d %v", st, out)
		}
		others <- "patched c"
	}()
	go func() {
		if st, out := d.Admin("POST", "/v1/endpoints/e/disable", ""); st != 200 {
			t.Errorf("disable e: %d %v", st, out)
		}
		others <- "disabled e"
	}()
	ownRead := make(chan map[string]any, 1)
	go func() {
		_, out := d.Admin("GET", "/v1/endpoints/a/secret", "")
		ownRead <- out
	}()
	// b's read answers while a's commit is held. (c's patch and e's disable
	// commit after it, in the next commit: their answers come once it is released.)
	select {
	case what := <-others:
		if what != "read b's secret" {
			t.Fatalf("%s while a's commit was held", what)
		}
	case <-time.After(30 * time.Second): // a deadlock's detector, not a timing
		close(release)
		t.Fatal("reading b's secret waited for a's change")
	}
	close(release)
	out := <-rotated
	<-others
	<-others
	if got := <-ownRead; got["secret"] != out["secret"] || got["secret"] == before["secret"] {
		t.Fatalf("a's secret read during its rotation: %v; before %v, rotated to %v", got["secret"], before["secret"], out["secret"])
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/c", ""); ep["description"] != "patched" {
		t.Fatalf("c: %v", ep)
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/e", ""); ep["state"] != "disabled" {
		t.Fatalf("e: %v", ep)
	}
}

// Changes waiting behind others of their endpoint do not hold the other
// endpoints' changes through a reload: a tenant's queue of PATCHes of its
// own endpoint once held the whole managed set, so a reload (or a tenant's
// delete) waiting for the set waited for that whole queue, and every
// change and secret read of every tenant behind it (300 queued PATCHes
// held a SIGHUP, and everyone's changes, for 15 s).
func TestQueuedChangesDoNotHoldAReload(t *testing.T) {
	rcv := NewReceiver(t)
	var commits atomic.Int32
	first, second := make(chan struct{}), make(chan struct{})
	held := make(chan struct{}, 2)
	d := MustOpenDaemonExtra(t, Extra{}, "", func(d *daemon.Daemon) {
		d.StoreHooks.BeforeCommit = func() error {
			switch commits.Add(-1) {
			case 1: // the first change of a
				held <- struct{}{}
				<-first
			case 0: // the next one
				held <- struct{}{}
				<-second
			}
			return nil
		}
	})
	for _, name := range []string{"a", "b"} {
		if st, out := d.Admin("POST", "/v1/endpoints", `{"name":"`+name+`","url":"`+rcv.URL+`/`+name+`","events":["*"],"tenant":"t_`+name+`"}`); st != 201 {
			t.Fatal(st, out)
		}
	}
	commits.Store(2)
	patched := make(chan int, 4)
	for i := range 4 {
		go func() {
			st, _ := d.Admin("PATCH", "/v1/endpoints/a", fmt.Sprintf(`{"description":"%d"}`, i))
			patched <- st
		}()
		if i == 0 {
			<-held // the first is in its commit; the others queue behind it
		}
	}
	time.Sleep(200 * time.Millisecond) // lets the others reach a's lock (sooner or later, the test only passes less)
	reloaded := make(chan error, 1)
	go func() { reloaded <- d.Reload() }()
	time.Sleep(100 * time.Millisecond) // lets the reload wait for the set
	read := make(chan int, 1)
	go func() {
		st, _ := d.Admin("GET", "/v1/endpoints/b/secret", "")
		read <- st
	}()
	close(first)
	<-held // a's second change is in its commit, and held there until b's read answers
	select {
	case st := <-read:
		if st != 200 {
			t.Fatalf("b's secret: %d", st)
		}
	case <-time.After(30 * time.Second): // a deadlock's detector, not a timing
		close(second)
		t.Fatal("b's read waited for a's queued changes, through the reload")
	}
	close(second)
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if st := <-patched; st != 200 {
			t.Fatalf("a patch of a: %d", st)
		}
	}
}

// commitCutter ends a context at the daemon's next commit after next()
// (the commit itself goes through), as the stop ends a request's context
// between an operation's commits.
type commitCutter struct {
	cancel atomic.Pointer[context.CancelFunc]
}

func (c *commitCutter) hook(d *daemon.Daemon) {
	d.StoreHooks.BeforeCommit = func() error {
		if f := c.cancel.Swap(nil); f != nil {
			(*f)()
		}
		return nil
	}
}

func (c *commitCutter) next() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel.Store(&cancel)
	return ctx, func() { c.cancel.Store(nil); cancel() }
}

// cutTries bounds the tries of a test whose cut may land on another
// commit (the deliveries log's indexing, an outcome): that try changes
// nothing, and the next is made.
const cutTries = 5

// disableCutShort opens a daemon on cfg (an endpoint a whose receiver
// fails, retried in an hour), posts n events, waits for their first
// attempts and disables a with the context ended at the state's commit:
// its parking is refused, as the stop refuses it.
func disableCutShort(t *testing.T, cfg string, n int) (*Daemon, []string) {
	t.Helper()
	var cut commitCutter
	d := MustOpenDaemonExtra(t, Extra{}, cfg, cut.hook)
	var ids []string
	for i := range n {
		ids = append(ids, d.Event(fmt.Sprintf(`{"type":"t","data":%d}`, i)))
	}
	eventually(t, "every first attempt recorded", func() bool {
		_, ep := d.Admin("GET", "/v1/endpoints/a", "")
		return ep["consecutive_failures"] == float64(n)
	})
	for try := 1; ; try++ {
		ctx, cancel := cut.next()
		_, err := d.SetDisabled(ctx, api.AllTenants(), "a", true)
		cancel()
		if err == nil {
			return d, ids
		}
		if try == cutTries { // another commit took the cut each time: nothing was made
			t.Fatalf("disable: %v", err)
		}
	}
}

// A disable whose parking is cut short by the stop is made: it answers as
// made, and the next start parks what it left pending, so an enable
// without a redeliver sends none of them (black-box testing: SIGTERM
// during a disable answered 503, kept the disable, and the enable sent
// 19,000).
func TestDisableCutShortParksAtTheNextStart(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1<<30)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["1h"]`)
	d, ids := disableCutShort(t, cfg, 5)
	if _, ep := d.Admin("GET", "/v1/endpoints/a", ""); ep["state"] != "disabled" || ep["pending"] != 5.0 {
		t.Fatalf("before the restart: %v", ep)
	}
	d = d.Restart(cfg)
	if _, ep := d.Admin("GET", "/v1/endpoints/a", ""); ep["pending"] != 0.0 {
		t.Fatalf("after the restart: %v", ep)
	}
	for _, id := range ids {
		if dl := d.waitState(id, "a", "undeliverable"); dl["reason"] != store.ReasonOperator {
			t.Fatalf("reason %v", dl)
		}
	}
	rcv.Status("/a", 200, 1<<30)
	if status, _ := d.Admin("POST", "/v1/endpoints/a/enable", ""); status != 200 {
		t.Fatal("enable")
	}
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"a"}`); status != 202 || out["redelivered"] != 5.0 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	rcv.Wait(t, "/a", 10) // five first attempts, five redelivered
}

// An enable first parks what a disable's parking left pending (a failed
// commit, or the stop before the next start parks it), so it sends none
// of it without a redeliver, as after a disable that parked everything.
func TestEnableParksWhatADisableLeft(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1<<30)
	d, ids := disableCutShort(t, endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["1h"]`), 3)
	if _, ep := d.Admin("GET", "/v1/endpoints/a", ""); ep["pending"] != 3.0 {
		t.Fatalf("after the cut disable: %v", ep)
	}
	rcv.Status("/a", 200, 1<<30)
	if status, out := d.Admin("POST", "/v1/endpoints/a/enable", ""); status != 200 || out["state"] != "active" {
		t.Fatalf("enable: %d %v", status, out)
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/a", ""); ep["pending"] != 0.0 {
		t.Fatalf("after the enable: %v", ep)
	}
	for _, id := range ids {
		if dl := d.waitState(id, "a", "undeliverable"); dl["reason"] != "endpoint disabled" {
			t.Fatalf("reason %v", dl)
		}
	}
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"a"}`); status != 202 || out["redelivered"] != 3.0 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	rcv.Wait(t, "/a", 6)
}

// A bulk redeliver requeues in chunks, a commit each: cut short by the
// stop, its error says how many it requeued, and the same request again
// requeues the rest (black-box testing: a SIGTERM's 503 read as nothing
// done while 2,000 of 30,000 had been requeued).
func TestBulkRedeliverCutShortSaysWhatItDid(t *testing.T) {
	rcv := NewReceiver(t)
	var cut commitCutter
	d := MustOpenDaemonExtra(t, Extra{}, endpoint("a", rcv.URL+"/a", `["*"]`, ""), cut.hook)
	if status, _ := d.Admin("POST", "/v1/endpoints/a/disable", ""); status != 200 {
		t.Fatal("disable")
	}
	const events = 2500 // three chunks of at most 1,000
	for i := 0; i < events; i += 500 {
		items := make([]string, 500)
		for j := range items {
			items[j] = fmt.Sprintf(`{"type":"t","data":%d}`, i+j)
		}
		if status, _, _ := d.Post("/v1/events/batch", "application/json", "["+strings.Join(items, ",")+"]"); status != 200 {
			t.Fatalf("batch: %d", status)
		}
	}
	if status, _ := d.Admin("POST", "/v1/endpoints/a/enable", ""); status != 200 {
		t.Fatal("enable")
	}
	requeued := regexp.MustCompile(`: (\d+) deliveries were requeued before the redelivery stopped`)
	first := 0
	for try := 1; first == 0; try++ {
		ctx, cancel := cut.next() // the first chunk's commit ends it
		_, err := d.RedeliverUndeliverable(ctx, api.AllTenants(), client.RedeliverUndeliverableRequest{Endpoint: "a"})
		cancel()
		var e *api.Error
		if !errors.As(err, &e) || e.Status != 503 {
			t.Fatalf("a redeliver cut short: %v", err)
		}
		if m := requeued.FindStringSubmatch(e.Message); m != nil {
			first, _ = strconv.Atoi(m[1])
		} else if try == cutTries { // another commit took the cut each time: nothing was requeued
			t.Fatalf("a redeliver cut short: %v", err)
		}
	}
	if first >= events {
		t.Fatalf("%d requeued of %d", first, events)
	}
	status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"a"}`)
	if status != 202 || int(out["redelivered"].(float64)) != events-first {
		t.Fatalf("the same request again after %d: %d %v", first, status, out)
	}
	rcv.Wait(t, "/a", events)
}
