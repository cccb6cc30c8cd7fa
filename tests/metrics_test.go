package tests

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
	// Its failed attempt recorded, so that its retry series exists (pending
	// alone is true before any attempt).
	eventually(t, "b's failed attempt recorded", func() bool {
		dl := d.deliveryState(id, "b")
		return dl["state"] == "pending" && dl["attempts"] == 1.0
	})

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

// GET /metrics passes the checks of `promtool check metrics` (promlint:
// HELP on every family, counter and unit naming) and every family is typed,
// with histograms in `le` buckets that histogram_quantile can read.
func TestMetricsPassPromlint(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/retry", 500, 1000)
	rcv.Status("/park", 500, 1000)
	d := MustOpenDaemon(t, endpoint("ok", rcv.URL+"/ok", `["*"]`, "")+
		endpoint("retry", rcv.URL+"/retry", `["*"]`, `schedule = ["1h"]`)+
		endpoint("park", rcv.URL+"/park", `["*"]`, `schedule = []`))
	id := d.Event(`{"id":"once","type":"t","data":{}}`)
	d.Post("/v1/events", "application/json", `{"id":"once","type":"t","data":{}}`)
	d.Post("/v1/events", "text/plain", `x`)
	d.waitState(id, "ok", "delivered")
	d.waitState(id, "park", "undeliverable")
	eventually(t, "the failed attempt to retry recorded", func() bool {
		dl := d.deliveryState(id, "retry")
		return dl["state"] == "pending" && dl["attempts"] == 1.0
	})

	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	problems, err := promlint.New(bytes.NewReader(b)).Lint()
	if err != nil {
		t.Fatalf("promlint cannot parse /metrics: %v\n%s", err, b)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(families)) {
		mf := families[name]
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP text", name)
		}
		if mf.GetType() == dto.MetricType_UNTYPED {
			t.Errorf("%s has no TYPE", name)
		}
	vmrange:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "vmrange" {
					t.Errorf("%s has vmrange buckets, which histogram_quantile cannot read", name)
					break vmrange
				}
			}
		}
	}
	want := map[string]dto.MetricType{
		"hookd_events_ingested_total":          dto.MetricType_COUNTER,
		"hookd_events_duplicate_total":         dto.MetricType_COUNTER,
		"hookd_ingest_rejected_total":          dto.MetricType_COUNTER,
		"hookd_deliveries_total":               dto.MetricType_COUNTER,
		"hookd_undeliverable_total":            dto.MetricType_COUNTER,
		"hookd_attempt_duration_seconds":       dto.MetricType_HISTOGRAM,
		"hookd_pending_deliveries":             dto.MetricType_GAUGE,
		"hookd_pending_deliveries_by_endpoint": dto.MetricType_GAUGE,
		"hookd_commit_batch_size":              dto.MetricType_HISTOGRAM,
		"hookd_commit_duration_seconds":        dto.MetricType_HISTOGRAM,
		"hookd_wal_batch_size":                 dto.MetricType_HISTOGRAM,
		"hookd_wal_sync_duration_seconds":      dto.MetricType_HISTOGRAM,
	}
	for name, typ := range want {
		switch mf := families[name]; {
		case mf == nil:
			t.Errorf("%s is missing", name)
		case mf.GetType() != typ:
			t.Errorf("%s is a %v, want a %v", name, mf.GetType(), typ)
		}
	}
}

// hookd_undeliverable_total counts every parking, not just the ones an
// attempt decides: a disable parks what was pending, and an event routed
// to a disabled endpoint is parked at ingest.
func TestUndeliverableTotalCountsEveryParking(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/park", 500, 1000)
	rcv.Status("/later", 500, 1000)
	d := MustOpenDaemon(t, endpoint("park", rcv.URL+"/park", `["*"]`, `schedule = []`)+
		endpoint("later", rcv.URL+"/later", `["*"]`, `schedule = ["1h"]`))
	before := counterValue(t, d, "hookd_undeliverable_total", "")

	first := d.Event(`{"type":"t","data":{}}`) // park: attempt; later: pending
	d.waitState(first, "park", "undeliverable")
	eventually(t, "the attempt to later recorded", func() bool { return d.deliveryState(first, "later")["attempts"] == 1.0 })
	if status, out := d.Admin("POST", "/v1/endpoints/later/disable", ""); status != 200 {
		t.Fatalf("disable: %d %v", status, out)
	}
	d.waitState(first, "later", "undeliverable")
	second := d.Event(`{"type":"t","data":{}}`) // later: parked at ingest
	d.waitState(second, "later", "undeliverable")
	d.waitState(second, "park", "undeliverable")

	if got := counterValue(t, d, "hookd_undeliverable_total", "") - before; got != 4 {
		t.Fatalf("hookd_undeliverable_total rose by %v for 4 parkings", got)
	}
}

// counterValue is a counter's value on d's /metrics: the family's first
// series, or the one whose first label has value label; 0 when absent.
func counterValue(t *testing.T, d *Daemon, family, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range families[family].GetMetric() {
		if label == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// outcomeCounts reads hookd_deliveries_total as "endpoint outcome" → value.
func outcomeCounts(t *testing.T, d *Daemon) map[string]float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(metricsText(t, d)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range families["hookd_deliveries_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["endpoint"]+" "+labels["outcome"]] = m.GetCounter().GetValue()
	}
	return out
}
