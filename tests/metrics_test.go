package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetricsAndTestOnCreateAfterReload(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/b", 500, 1000)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "") + endpoint("b", rcv.URL+"/b", `["*"]`, `schedule = ["1h"]`)
	d := MustOpenDaemon(t, cfg)
	id := d.Event(`{"type":"t","data":{}}`)
	d.Event(`{"id":"dup","type":"t","data":{}}`)
	d.Post("/v1/events", "application/json", `{"id":"dup","type":"t","data":{}}`)
	d.Post("/v1/events", "text/plain", `x`)
	d.waitState(id, "a", "delivered")
	d.waitState(id, "b", "pending")

	// An endpoint added by a reload with test_on_create gets a test event.
	d.rewrite(cfg + endpoint("c", rcv.URL+"/c", `["nothing"]`, "test_on_create = true\ntest_event_type = \"ping.test\""))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := rcv.Wait(t, "/c", 1)[0]; !strings.Contains(string(r.Body), `"type":"ping.test"`) {
		t.Fatalf("test event %s", r.Body)
	}

	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		"hookd_events_ingested_total", "hookd_events_duplicate_total", `hookd_ingest_rejected_total{status="415"}`,
		`hookd_deliveries_total{endpoint="a",outcome="delivered"}`, `hookd_deliveries_total{endpoint="b",outcome="retry"}`,
		`hookd_attempt_duration_seconds_bucket{endpoint="a",le=`, `hookd_pending_deliveries_by_endpoint{endpoint="b"} 2`,
		"hookd_undeliverable_total", "hookd_commit_batch_size", "hookd_commit_duration_seconds", "hookd_pending_deliveries ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
