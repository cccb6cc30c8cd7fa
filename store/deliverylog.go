package store

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The deliveries log: every delivery is indexed by its event's ingest time
// (created), which never changes, three times: overall, per endpoint and
// per tenant. A query walks one index backwards over the requested time
// range and reads the records it meets, so its cost grows with the
// deliveries in that range, not with the database.
var (
	bktLogTime     = []byte("log_by_time")     // created|eventID\0endpoint → nil
	bktLogEndpoint = []byte("log_by_endpoint") // endpoint\0created|eventID → nil
	bktLogTenant   = []byte("log_by_tenant")   // tenant\0created|eventID\0endpoint → nil
)

func init() { allBuckets = append(allBuckets, bktLogTime, bktLogEndpoint, bktLogTenant) }

// logKeys are a delivery's three index keys ("" tenant: no tenant key).
func logKeys(created time.Time, eventID, endpoint, tenant string) (byTime, byEndpoint, byTenant []byte) {
	byTime = timeKey(created, DeliveryKey(eventID, endpoint))
	byEndpoint = append(append([]byte(endpoint), 0), timeKey(created, eventID)...)
	if tenant != "" {
		byTenant = append(append([]byte(tenant), 0), byTime...)
	}
	return byTime, byEndpoint, byTenant
}

// indexDelivery adds a new delivery to the log.
func indexDelivery(tx *bolt.Tx, created time.Time, eventID, endpoint, tenant string) error {
	t, e, n := logKeys(created, eventID, endpoint, tenant)
	tb, eb := tx.Bucket(bktLogTime), tx.Bucket(bktLogEndpoint)
	tb.FillPercent = appendFill
	if err := tb.Put(t, nil); err != nil {
		return err
	}
	if err := eb.Put(e, nil); err != nil {
		return err
	}
	if n != nil {
		return tx.Bucket(bktLogTenant).Put(n, nil)
	}
	return nil
}

// unindexDelivery removes a purged delivery from the log.
func unindexDelivery(tx *bolt.Tx, created time.Time, eventID, endpoint, tenant string) error {
	t, e, n := logKeys(created, eventID, endpoint, tenant)
	for _, x := range []struct {
		b []byte
		k []byte
	}{{bktLogTime, t}, {bktLogEndpoint, e}, {bktLogTenant, n}} {
		if x.k == nil {
			continue
		}
		if err := tx.Bucket(x.b).Delete(x.k); err != nil {
			return err
		}
	}
	return nil
}

// DeliveryQuery selects deliveries from the log, newest first. Zero
// fields do not filter; Until zero means now.
type DeliveryQuery struct {
	Tenant, Endpoint string // Endpoint is the internal id
	State            *State
	Type             string
	Since, Until     time.Time
	Limit            int
	Cursor           string
	// Endpoints, when set, keeps only deliveries to the endpoints (by
	// internal id) it accepts. A portal's tenant sees its own endpoints'
	// deliveries of its events, not the platform endpoints' ones; the
	// filter runs inside the scan so a page is still Limit long.
	Endpoints func(id string) bool
}

// LogEntry is one delivery of the log with its event's tenant and last
// attempt.
type LogEntry struct {
	*Delivery
	Tenant      string
	LastAttempt *Attempt
}

// DeliveryLog runs q. It returns the page, the cursor of the next one ("" at
// the end), and how many index keys it visited (tests check that this
// follows the range, not the database).
func (s *Store) DeliveryLog(q DeliveryQuery) ([]LogEntry, string, int, error) {
	after, err := hex.DecodeString(q.Cursor)
	if err != nil {
		return nil, "", 0, fmt.Errorf("bad cursor: %w", err)
	}
	var (
		out     []LogEntry
		next    string
		visited int
	)
	s.barrier() // a query after a 202 sees the event
	err = s.db.View(func(tx *bolt.Tx) error {
		bucket, prefix := bktLogTime, []byte(nil)
		switch {
		case q.Endpoint != "":
			bucket, prefix = bktLogEndpoint, append([]byte(q.Endpoint), 0)
		case q.Tenant != "":
			bucket, prefix = bktLogTenant, append([]byte(q.Tenant), 0)
		}
		until := q.Until
		if until.IsZero() {
			until = time.Now().Add(time.Hour) // clocks may step; the future is empty anyway
		}
		upper := append(bytes.Clone(prefix), timeKey(until.Add(1), "")...)
		lower := append(bytes.Clone(prefix), timeKey(q.Since, "")...)
		c := tx.Bucket(bucket).Cursor()
		var k []byte
		if len(after) > 0 {
			k, _ = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, _ = c.Prev()
			} else if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else if k, _ = c.Seek(upper); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, lower) >= 0; k, _ = c.Prev() {
			if bytes.Compare(k, upper) >= 0 {
				continue
			}
			visited++
			if len(out) == q.Limit {
				next = hex.EncodeToString(prevLogKey(out[len(out)-1], bucket, prefix))
				break
			}
			e, ok, err := s.logEntry(tx, bucket, prefix, k, q)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, next, visited, err
}

// prevLogKey is the index key of e in bucket: where the next page starts
// (strictly before it).
func prevLogKey(e LogEntry, bucket, prefix []byte) []byte {
	t, ek, _ := logKeys(e.Created, e.EventID, e.Endpoint, "")
	switch {
	case bytes.Equal(bucket, bktLogEndpoint):
		return ek
	case bytes.Equal(bucket, bktLogTenant):
		return append(bytes.Clone(prefix), t...)
	}
	return t
}

// logEntry reads the delivery an index key names and applies q's filters.
func (s *Store) logEntry(tx *bolt.Tx, bucket, prefix, k []byte, q DeliveryQuery) (LogEntry, bool, error) {
	rest := k[len(prefix):]
	_, key := splitTimeKey(rest)
	if bytes.Equal(bucket, bktLogEndpoint) {
		key = DeliveryKey(key, q.Endpoint)
	}
	d, err := getDelivery(tx, key)
	if err == ErrNotFound {
		return LogEntry{}, false, nil
	} else if err != nil {
		return LogEntry{}, false, err
	}
	if (q.State != nil && d.State != *q.State) || (q.Type != "" && d.EventType != q.Type) || (q.Endpoints != nil && !q.Endpoints(d.Endpoint)) {
		return LogEntry{}, false, nil
	}
	e := LogEntry{Delivery: d, Tenant: eventTenant(tx, d.EventID)}
	if q.Tenant != "" && e.Tenant != q.Tenant {
		return LogEntry{}, false, nil
	}
	if as, err := attempts(tx, key, 1); err == nil && len(as) == 1 {
		e.LastAttempt = as[0]
	}
	return e, true, nil
}
