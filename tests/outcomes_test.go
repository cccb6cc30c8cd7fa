package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"hookd/config"
	"hookd/store"
)

// The scheduler takes a new event's delivery record from ingest and sends
// from it without reading it back. A redeliver or a parking changes the
// stored record meanwhile: these tests change it while the delivery waits
// behind another that is in flight (max_in_flight = 1), as the black-box
// test that found the bugs did.

// heldReceiver answers path's first request only once release is closed.
func heldReceiver(t *testing.T, path string) (*Receiver, chan struct{}) {
	rcv := NewReceiver(t)
	release := make(chan struct{})
	rcv.Handle(path, func(n int, _ *http.Request, _ http.ResponseWriter) {
		if n == 1 {
			<-release
		}
	})
	return rcv, release
}

// sentPerEvent counts path's requests by the event id in their body.
func sentPerEvent(rcv *Receiver, path string) map[string]int {
	n := map[string]int{}
	for _, r := range rcv.Requests(path) {
		var env struct{ ID string }
		json.Unmarshal(r.Body, &env)
		n[env.ID]++
	}
	return n
}

// A disable and an enable while the endpoint's deliveries wait: the ones
// the disable parked stay parked until they are redelivered (they were
// sent at once after the enable, from the records carried from ingest),
// and no outcome is counted for them (each was counted as an attempt
// outcome although none was made).
func TestDisableEnableKeepsWhatItParked(t *testing.T) {
	rcv, release := heldReceiver(t, "/slow")
	d := MustOpenDaemon(t, endpoint("slow", rcv.URL+"/slow", `["*"]`, "max_in_flight = 1"))
	before := outcomeCounts(t, d)
	var ids []string
	for i := range 5 {
		ids = append(ids, d.Event(fmt.Sprintf(`{"type":"t","data":%d}`, i)))
	}
	var env struct{ ID string }
	json.Unmarshal(rcv.Wait(t, "/slow", 1)[0].Body, &env)
	first := env.ID
	for _, op := range []string{"disable", "enable"} {
		if status, out := d.Admin("POST", "/v1/endpoints/slow/"+op, ""); status != 200 {
			t.Fatalf("%s: %d %v", op, status, out)
		}
	}
	close(release)
	d.waitState(first, "slow", "delivered") // a 2xx marks a parked delivery delivered
	status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"slow"}`)
	if status != 202 || out["redelivered"] != 4.0 {
		t.Fatalf("redeliver what the disable parked: %d %v (sent: %v)", status, out, sentPerEvent(rcv, "/slow"))
	}
	for _, id := range ids {
		d.waitState(id, "slow", "delivered")
	}
	for _, id := range ids {
		if n := sentPerEvent(rcv, "/slow")[id]; n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	eventually(t, "the five deliveries counted", func() bool {
		return outcomeCounts(t, d)["slow delivered"]-before["slow delivered"] == 5
	})
	after := outcomeCounts(t, d)
	for _, outcome := range []string{"superseded", "undeliverable", "retry"} {
		if n := after["slow "+outcome] - before["slow "+outcome]; n != 0 {
			t.Errorf("%v counted %s", n, outcome)
		}
	}
	// Nor logged as attempts (they were, at error level).
	for _, line := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(line, `"message":"undeliverable"`) || strings.Contains(line, `"message":"attempt recorded`) {
			t.Errorf("logged %s", line)
		}
	}
}

// A redeliver of a pending delivery never attempted yet sends it once (it
// was sent from the carried record for its old due time, that 2xx counted
// superseded, and then again for the redeliver).
func TestRedeliverBeforeTheFirstAttemptSendsOnce(t *testing.T) {
	rcv, release := heldReceiver(t, "/slow")
	d := MustOpenDaemon(t, endpoint("slow", rcv.URL+"/slow", `["*"]`, "max_in_flight = 1"))
	first := d.Event(`{"type":"t","data":1}`)
	second := d.Event(`{"type":"t","data":2}`)
	rcv.Wait(t, "/slow", 1)
	if status, out := d.Admin("POST", "/v1/events/"+second+"/redeliver", ""); status != 202 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	close(release)
	d.waitState(first, "slow", "delivered")
	d.waitState(second, "slow", "delivered") // a superseded 2xx would leave it pending for one more send
	if n := sentPerEvent(rcv, "/slow")[second]; n != 1 {
		t.Fatalf("sent %d times", n)
	}
}

// A 410 disables the endpoint, and the disable parks its deliveries,
// this one among them, before the attempt's outcome is committed: that
// parking is the attempt's own. It counts undeliverable and raises the
// notification (it counted superseded, without one).
func TestGoneParksItsOwnDelivery(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/gone", 410, 1)
	d := MustOpenDaemon(t, fmt.Sprintf("[notify]\nurl = %q\n", rcv.URL+"/notify")+endpoint("gone", rcv.URL+"/gone", `["*"]`, ""))
	before := outcomeCounts(t, d)
	id := d.Event(`{"type":"t","data":1}`)
	if dl := d.waitState(id, "gone", "undeliverable"); !strings.Contains(fmt.Sprint(dl["reason"]), "410") {
		t.Fatalf("parked with %v", dl["reason"])
	}
	eventually(t, "the undeliverable notification", func() bool {
		for _, r := range rcv.Requests("/notify") {
			if strings.Contains(string(r.Body), `"hookd.delivery.undeliverable"`) && strings.Contains(string(r.Body), id) {
				return true
			}
		}
		return false
	})
	after := outcomeCounts(t, d)
	if after["gone undeliverable"]-before["gone undeliverable"] != 1 || after["gone superseded"] != before["gone superseded"] {
		t.Fatalf("counted %v, before %v", after, before)
	}
}

// The [notify] target is never disabled: a 410 from it is a failure like
// any other, retried on its schedule. It disabled the target for good, with
// no API to enable it, and every later alert was parked unsent (black-box
// testing).
func TestNotifyTargetGoneIsRetried(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/alerts", 410, 1)
	rcv.Status("/a", 400, 1<<30)
	d := MustOpenDaemon(t, "\n[defaults]\nschedule = [\"50ms\"]\n[notify]\nurl = \""+rcv.URL+"/alerts\"\n"+
		endpoint("a", rcv.URL+"/a", `["*"]`, "stop_on_4xx = true"))
	alerts := func(id string) (n int) {
		for _, r := range rcv.Requests("/alerts") {
			if strings.Contains(string(r.Body), `"hookd.delivery.undeliverable"`) && strings.Contains(string(r.Body), id) {
				n++
			}
		}
		return n
	}
	first := d.Event(`{"type":"t","data":1}`)
	eventually(t, "the first alert, sent again after its 410", func() bool { return alerts(first) == 2 })
	second := d.Event(`{"type":"t","data":2}`)
	eventually(t, "the second alert", func() bool { return alerts(second) == 1 })
	if status, out := d.Admin("GET", "/v1/undeliverable?endpoint="+config.NotifyEndpoint, ""); status != 200 || len(out["items"].([]any)) != 0 {
		t.Fatalf("parked alerts: %d %v", status, out)
	}

	// A target an earlier build disabled is enabled at the start.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(d.dir, "hookd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateEndpointState(t.Context(), config.NotifyEndpoint, func(es *store.EndpointState) error {
		es.Disabled, es.Reason, es.By = true, "HTTP 410 Gone: endpoint disabled", store.ByHookd
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	d = mustOpenIn(t, d.dir, d.extra, "\n[notify]\nurl = \""+rcv.URL+"/alerts\"\n"+endpoint("a", rcv.URL+"/a", `["*"]`, "stop_on_4xx = true"), nil)
	third := d.Event(`{"type":"t","data":3}`)
	eventually(t, "the alert after the start", func() bool { return alerts(third) == 1 })
	if !strings.Contains(d.logs.String(), "the [notify] target had been disabled; enabled") {
		t.Fatalf("no warning:\n%s", d.logs.String())
	}
}

// A recovered notification answers the failing one, whatever failing_after
// says by then: a reload that raised it past the streak left the failing
// alert open for good (black-box testing).
func TestRecoveredAfterFailingAfterRaised(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/e", 500, 1<<30)
	d := MustOpenDaemon(t, "\n[notify]\nurl = \""+rcv.URL+"/alerts\"\nfailing_after = 2\n"+
		endpoint("e", rcv.URL+"/e", `["*"]`, `schedule = ["50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms","50ms"]`))
	alerts := func(typ string) (n int) {
		for _, r := range rcv.Requests("/alerts") {
			if strings.Contains(string(r.Body), `"`+typ+`"`) {
				n++
			}
		}
		return n
	}
	id := d.Event(`{"type":"t","data":1}`)
	eventually(t, "the failing alert", func() bool { return alerts("hookd.endpoint.failing") == 1 })
	writeRaw(t, d.cfgPath, strings.Replace(readRaw(t, d.cfgPath), "failing_after = 2", "failing_after = 20", 1))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	rcv.Status("/e", 200, 0)
	d.waitState(id, "e", "delivered")
	eventually(t, "the recovered alert", func() bool { return alerts("hookd.endpoint.recovered") == 1 })
	if n := alerts("hookd.endpoint.failing"); n != 1 {
		t.Fatalf("%d failing alerts", n)
	}
}
