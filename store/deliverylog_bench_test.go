package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkDeliveryLogQuery measures GET /v1/deliveries?status=undeliverable&since=1h's
// store query on databases of 10,000 and 1,000,000 deliveries (built with
// the store itself, not the HTTP API), the last hour holding the same 2,000
// in both, and the first page of one of 1,000 tenants' deliveries, of all
// time and of the last hour (read from the runs of the tenant index). Not
// run in CI (-bench only):
//
//	go test -run '^$' -bench DeliveryLogQuery -benchtime 200x ./store
func BenchmarkDeliveryLogQuery(b *testing.B) {
	for _, total := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprint(total), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "hookd.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now().UTC()
			const recent = 2000
			batch := make([]NewEvent, 0, 4000)
			flush := func() {
				if _, err := s.Ingest(context.Background(), batch, Limits{}); err != nil {
					b.Fatal(err)
				}
				batch = make([]NewEvent, 0, 4000) // the store keeps the events until they are applied
			}
			for i := range total {
				ne := NewEvent{Event: Event{ID: fmt.Sprintf("e%07d", i), Type: "t", Tenant: fmt.Sprintf("t%d", i%1000), Raw: []byte(`{"n":1}`)}}
				ne.Event.Created = now.Add(-72 * time.Hour).Add(time.Duration(i) * time.Millisecond)
				if i >= total-recent {
					ne.Event.Created = now.Add(-time.Duration(total-i) * time.Second / 2)
				}
				nd := NewDelivery{Endpoint: "ep", Body: []byte(`{"n":1}`)}
				if i%4 == 0 {
					nd.Parked = "endpoint disabled" // a quarter undeliverable
				}
				ne.Deliveries = []NewDelivery{nd}
				if batch = append(batch, ne); len(batch) == cap(batch) {
					flush()
				}
			}
			flush()
			for s.committerBehind() || s.unappliedN() > 0 {
				s.barrier() // time the queries, not the apply of the bulk load
			}
			for s.unindexed.Load() > 0 {
				if err := s.submit(context.Background(), func(tx *bolt.Tx, st *txState) error {
					return indexLog(tx, st, logIndexBatch)
				}); err != nil {
					b.Fatal(err)
				}
			}
			st := Undeliverable
			for _, c := range []struct {
				name string
				q    DeliveryQuery
			}{
				{"undeliverable-1h", DeliveryQuery{State: &st, Since: now.Add(-time.Hour), Limit: 100}},
				{"tenant", DeliveryQuery{Tenant: "t7", Limit: 100}},
				{"tenant-1h", DeliveryQuery{Tenant: "t7", Since: now.Add(-time.Hour), Limit: 100}},
			} {
				b.Run(c.name, func(b *testing.B) {
					lat := make([]time.Duration, 0, b.N)
					for range b.N {
						t0 := time.Now()
						page, _, _, err := s.DeliveryLog(c.q)
						lat = append(lat, time.Since(t0))
						if err != nil || len(page) == 0 || (c.q.Since.IsZero() && len(page) != min(100, total/1000)) {
							b.Fatalf("%d items, %v", len(page), err)
						}
					}
					b.StopTimer()
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}

func (s *Store) unappliedN() int {
	s.umu.Lock()
	defer s.umu.Unlock()
	return len(s.u.ids)
}
