package tests

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/api"
	"hookd/client"
)

// BenchmarkTenantDeliveriesQuery measures the portal's deliveries query
// (a tenant's log with filters) on a database of 1,000,000 deliveries
// across 10,000 tenants, built through the real daemon: 10,000 tenant
// endpoints (a tenth disabled, a tenth failing without retries, the rest
// answering 200), then 1,000,000 events each for a random tenant in
// batches of 1,000, a minute of delivery, and every endpoint disabled. It reports p50 and p99 over 100 queries, each for a
// random tenant with a random filter: the scoped query alone, and the
// portal's deliveries page (HTML, through HTTP, logged in as that tenant)
// with the same filter. Not run in CI (-bench only; building
// the database takes minutes):
//
//	go test -run '^$' -bench TenantDeliveriesQuery -benchtime 1x -timeout 30m ./tests/
func BenchmarkTenantDeliveriesQuery(b *testing.B) {
	tenants, events := 10_000, 1_000_000
	if os.Getenv("HOOKD_BENCH_SMALL") != "" { // a quick check of the benchmark itself
		tenants, events = 100, 16_000
	}
	rcv := NewReceiver(b)
	rcv.Handle("/fail", func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(500) })
	var cfg strings.Builder
	for i := range tenants {
		path, extra := "/ok", ""
		if i%10 == 1 {
			path, extra = "/fail", "schedule = []"
		}
		fmt.Fprintf(&cfg, "[[endpoints]]\nname = \"ep%05d\"\ntenant = \"t%05d\"\nurl = %q\nevents = [\"*\"]\n%s\n", i, i, rcv.URL+path, extra)
	}
	d := MustOpenDaemonExtra(b, Extra{Storage: "max_pending = 0", Portal: "listen = \"127.0.0.1:0\"\n"}, cfg.String(), nil)
	d.SkipDBCheck("a benchmark's database of a million deliveries")
	for i := 0; i < tenants; i += 10 {
		if _, err := d.SetDisabled(b.Context(), api.AllTenants(), fmt.Sprintf("ep%05d", i), true); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	types := []string{"conversation.ended", "lead.created", "message.received"}
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range events / 1000 / 4 {
				var body strings.Builder
				body.WriteByte('[')
				for k := range 1000 {
					if k > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"type":%q,"tenant":"t%05d","data":{"n":%d}}`, types[rng.IntN(len(types))], rng.IntN(tenants), k)
				}
				body.WriteByte(']')
				if st, out, _ := d.Post("/v1/events/batch", "application/json", body.String()); st != 200 {
					b.Errorf("batch: %d %.300v", st, out)
					return
				}
			}
		})
	}
	wg.Wait()
	b.Logf("ingested %d events in %s", events, time.Since(t0).Round(time.Second))
	// Delivering a million requests to one loopback receiver takes far
	// longer than the queries need: after a minute of delivery, every
	// endpoint is disabled, which parks what is still pending
	// ("endpoint disabled"), so the database holds delivered and
	// undeliverable deliveries and nothing runs beside the queries.
	time.Sleep(time.Minute)
	var next atomic.Int64
	var dwg sync.WaitGroup
	for range 8 {
		dwg.Go(func() {
			for i := int(next.Add(1)) - 1; i < tenants; i = int(next.Add(1)) - 1 {
				if _, err := d.SetDisabled(b.Context(), api.AllTenants(), fmt.Sprintf("ep%05d", i), true); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	dwg.Wait()
	b.Logf("every endpoint disabled after %s", time.Since(t0).Round(time.Second))

	rng := rand.New(rand.NewPCG(9, 9))
	filters := []client.DeliveryQuery{{Since: "24h"}, {Status: "delivered", Since: "720h"}, {Status: "undeliverable", Since: "720h"},
		{Type: "lead.created", Since: "720h"}, {Since: "1h"}, {Status: "delivered", Type: "conversation.ended", Since: "24h"}}
	var queryLat, pageLat []time.Duration
	items, bytes := 0, 0
	b.ResetTimer()
	for range 100 {
		q := filters[rng.IntN(len(filters))]
		q.Limit = 50
		tenant := rng.IntN(tenants)
		if rng.IntN(2) == 0 {
			q.Endpoint = fmt.Sprintf("ep%05d", tenant)
		}
		t := time.Now()
		l, err := d.Deliveries(api.TenantScope(fmt.Sprintf("t%05d", tenant)), q)
		queryLat = append(queryLat, time.Since(t))
		if err != nil {
			b.Fatal(err)
		}
		items += len(l.Items)

		b.StopTimer()
		br := login(b, d, fmt.Sprintf("t%05d", tenant), nil)
		b.StartTimer()
		u := fmt.Sprintf("/deliveries?endpoint=%s&status=%s&type=%s&range=%s", q.Endpoint, q.Status, q.Type, q.Since)
		t = time.Now()
		resp, body := raw(b, "GET", br.base+u, "", "Cookie", br.cookie)
		pageLat = append(pageLat, time.Since(t))
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", u, resp.StatusCode)
		}
		bytes += len(body)
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		lat  []time.Duration
	}{{"query", queryLat}, {"page", pageLat}} {
		slices.Sort(m.lat)
		b.ReportMetric(float64(m.lat[len(m.lat)/2].Microseconds())/1000, m.name+"-p50-ms")
		b.ReportMetric(float64(m.lat[len(m.lat)*99/100].Microseconds())/1000, m.name+"-p99-ms")
	}
	b.ReportMetric(float64(items)/100, "items/query")
	b.ReportMetric(float64(bytes)/100, "page-bytes")
}
