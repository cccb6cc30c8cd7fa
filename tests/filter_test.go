package tests

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Filters decide per endpoint which matching events become deliveries:
// nested fields, missing fields (nil), numbers, payload events, explicit
// endpoint lists. A rejected event, or one whose filter fails to evaluate,
// creates no delivery there, and the ingest answer counts only those
// created. Test events bypass filters. A reload changes a filter.
func TestFilters(t *testing.T) {
	rcv := NewReceiver(t)
	cfg := func(slackFilter string) string {
		return endpoint("slack", rcv.URL+"/slack", `["conversation.ended"]`, "filter = '"+slackFilter+"'") +
			endpoint("big", rcv.URL+"/big", `["order.*"]`, `filter = 'data.order.total >= 100 and data.order.currency in ["EUR", "USD"]'`) +
			endpoint("vip", rcv.URL+"/vip", `["*"]`, `filter = 'any(data.customer?.tags ?? [], # == "vip") || tenant == "wgt_gold"'`) +
			endpoint("all", rcv.URL+"/all", `["*"]`, "")
	}
	d := MustOpenDaemon(t, cfg(`data.outcome == "completed" && data.duration_seconds > 60`))
	for _, c := range []struct {
		name, event string
		want        []string // endpoints with a delivery
	}{
		{"completed and long", `{"type":"conversation.ended","data":{"outcome":"completed","duration_seconds":127}}`, []string{"slack", "all"}},
		{"completed but short", `{"type":"conversation.ended","data":{"outcome":"completed","duration_seconds":60}}`, []string{"all"}},
		{"abandoned", `{"type":"conversation.ended","data":{"outcome":"abandoned","duration_seconds":300}}`, []string{"all"}},
		{"fields missing", `{"type":"conversation.ended","data":{}}`, []string{"all"}},
		{"data not an object", `{"type":"conversation.ended","data":"completed"}`, []string{"all"}},
		{"number as float", `{"type":"conversation.ended","data":{"outcome":"completed","duration_seconds":6.1e1}}`, []string{"slack", "all"}},
		{"payload event", `{"type":"conversation.ended","payload":{"outcome":"completed","duration_seconds":61}}`, []string{"slack", "all"}},
		{"type not subscribed", `{"type":"conversation.started","data":{"outcome":"completed","duration_seconds":127}}`, []string{"all"}},
		{"nested number", `{"type":"order.paid","data":{"order":{"total":250.5,"currency":"EUR"}}}`, []string{"big", "all"}},
		{"nested too small", `{"type":"order.paid","data":{"order":{"total":99,"currency":"EUR"}}}`, []string{"all"}},
		{"nested object missing: an evaluation error", `{"type":"order.paid","data":{"total":500}}`, []string{"all"}},
		{"nested number as string", `{"type":"order.paid","data":{"order":{"total":"500","currency":"EUR"}}}`, []string{"all"}},
		{"array element", `{"type":"order.paid","data":{"customer":{"tags":["new","vip"]},"order":{"total":5,"currency":"EUR"}}}`, []string{"vip", "all"}},
		{"tenant", `{"type":"x","tenant":"wgt_gold","data":{}}`, []string{"vip", "all"}},
		{"named endpoint still filtered", `{"type":"conversation.ended","endpoints":["slack","all"],"data":{"outcome":"abandoned"}}`, []string{"all"}},
		{"named and accepted", `{"type":"conversation.ended","endpoints":["slack"],"data":{"outcome":"completed","duration_seconds":90}}`, []string{"slack"}},
	} {
		status, out, _ := d.Post("/v1/events", "application/json", c.event)
		if status != 202 {
			t.Fatalf("%s: %d %v", c.name, status, out)
		}
		if out["deliveries"] != float64(len(c.want)) {
			t.Errorf("%s: answer counts %v deliveries, want %d", c.name, out["deliveries"], len(c.want))
		}
		_, ev := d.Admin("GET", "/v1/events/"+out["id"].(string), "")
		var got []string
		for _, x := range ev["deliveries"].([]any) {
			got = append(got, x.(map[string]any)["endpoint"].(string))
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: deliveries to %v, want %v", c.name, got, want)
		}
	}

	// The batch API applies them too, per item.
	status, out, _ := d.Post("/v1/events/batch", "application/json",
		`[{"type":"conversation.ended","data":{"outcome":"completed","duration_seconds":61}},{"type":"conversation.ended","data":{"outcome":"x"}}]`)
	if res := out["results"].([]any); status != 200 || res[0].(map[string]any)["deliveries"] != 2.0 || res[1].(map[string]any)["deliveries"] != 1.0 {
		t.Fatalf("batch: %d %v", status, out)
	}

	// A test event bypasses the filter.
	if status, res := d.Admin("POST", "/v1/endpoints/slack/test", ""); status != 200 || res["ok"] != true {
		t.Fatalf("test event: %d %v", status, res)
	}

	// Counted per endpoint and result.
	metrics := metricsText(t, d)
	for _, want := range []string{`hookd_events_filtered_total{endpoint="slack",result="rejected"} `, `hookd_events_filtered_total{endpoint="big",result="error"} `} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A reload changes the filter.
	writeRaw(t, d.cfgPath, strings.Replace(readRaw(t, d.cfgPath), `data.outcome == "completed" && data.duration_seconds > 60`, `data.outcome == "abandoned"`, 1))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := d.Post("/v1/events", "application/json", `{"type":"conversation.ended","data":{"outcome":"abandoned"}}`); out["deliveries"] != 2.0 {
		t.Fatalf("after the reload: %v", out)
	}
	// A bad filter is refused by the reload, naming it; the old one stays.
	writeRaw(t, d.cfgPath, strings.Replace(readRaw(t, d.cfgPath), `data.outcome == "abandoned"`, `data.outcome === 1`, 1))
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "endpoints[0].filter") {
		t.Fatalf("reload with a bad filter: %v", err)
	}
	if _, out, _ := d.Post("/v1/events", "application/json", `{"type":"conversation.ended","data":{"outcome":"abandoned"}}`); out["deliveries"] != 2.0 {
		t.Fatalf("after a refused reload: %v", out)
	}
	rcv.Wait(t, "/slack", 1)
}

func metricsText(t *testing.T, d *Daemon) string {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A FIFO endpoint with a filter orders what passes it; filtered events
// hold nothing back.
func TestFIFOWithFilter(t *testing.T) {
	rcv := newOrderReceiver(t, 5, 0)
	d := MustOpenDaemon(t, fifoEndpoint("crm", rcv.URL+"/fifo", fifoSchedule, `filter = 'data.n % 2 == 0'`))
	for i := range 40 {
		status, out, _ := d.Post("/v1/events", "application/json", fmt.Sprintf(`{"id":"e%d","type":"t","data":{"n":%d}}`, i, i))
		if want := float64(1 - i%2); status != 202 || out["deliveries"] != want {
			t.Fatalf("e%d: %d %v", i, status, out)
		}
	}
	eventually(t, "20 delivered", func() bool { return rcv.delivered() == 20 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for i, a := range rcv.arrivals {
		if a != 2*i {
			t.Fatalf("arrivals %v: want the even ones in order", rcv.arrivals)
		}
	}
}

// hookd_events_filtered_total counts stored events only: a duplicate or a
// refused event changes nothing, its metrics included (each evaluation
// was counted, the retries of one event as many times; black-box testing).
func TestFilteredCountsStoredEventsOnly(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/stuck", 500, 1<<30)
	d := MustOpenDaemonExtra(t, Extra{Storage: "max_pending = 1\n"},
		endpoint("picky", rcv.URL+"/picky", `["*"]`, `filter = 'data.ok == true'`)+
			endpoint("stuck", rcv.URL+"/stuck", `["*"]`, `schedule = ["1h"]`), nil)
	rejected := func() (n float64) {
		const series = `hookd_events_filtered_total{endpoint="picky",result="rejected"} `
		if _, v, ok := strings.Cut(metricsText(t, d), series); ok {
			fmt.Sscan(v, &n)
		}
		return n
	}
	before := rejected()
	same := `{"type":"t","id":"evt_same","data":{"ok":false}}`
	for i, want := range []int{202, 200, 200} {
		if status, out, _ := d.Post("/v1/events", "application/json", same); status != want {
			t.Fatalf("post %d: %d %v", i, status, out)
		}
	}
	if status, out, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":{"ok":false}}`); status != 429 {
		t.Fatalf("past max_pending: %d %v", status, out)
	}
	status, out, _ := d.Post("/v1/events/batch", "application/json", "["+same+`,{"type":"t","data":{"ok":false}}]`)
	if res := out["results"].([]any); status != 200 || res[0].(map[string]any)["status"] != 200.0 || res[1].(map[string]any)["status"] != 429.0 {
		t.Fatalf("batch: %d %v", status, out)
	}
	if got := rejected() - before; got != 1 {
		t.Fatalf("counted %v filtered events for one stored", got)
	}
}
