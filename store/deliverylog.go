package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The deliveries log: every delivery is indexed by its event's ingest time
// (created), which never changes, three times: overall, per endpoint and
// per tenant. A query walks one index backwards over the requested time
// range and reads the records it meets, so its cost grows with the
// deliveries in that range, not with the database.
//
// Only the overall index is written as events are applied: its keys
// arrive in time order, so each commit appends to its last pages. Keys by
// endpoint or tenant arrive in random order when events go to many
// endpoints, and each one dirtied a page of its own in every commit (with
// 100,000 endpoints, most of the committer's work). A new delivery is
// therefore also put in log_unindexed (same key, the tenant as value), and
// the committer moves that bucket into the other two indexes in large
// sorted batches (indexLog), where neighbouring keys share their pages. A
// query by endpoint or tenant merges the entries still waiting there into
// its walk, so it sees every delivery at once, in the same order.
var (
	bktLogTime      = []byte("log_by_time")     // created|eventID\0endpoint → nil
	bktLogEndpoint  = []byte("log_by_endpoint") // endpoint\0created|eventID → nil
	bktLogTenant    = []byte("log_by_tenant")   // tenant\0created|eventID\0endpoint → nil
	bktLogUnindexed = []byte("log_unindexed")   // created|eventID\0endpoint → tenant: not yet in the two above
)

func init() {
	allBuckets = append(allBuckets, bktLogTime, bktLogEndpoint, bktLogTenant, bktLogUnindexed)
}

// Batching of the endpoint and tenant indexes: the committer indexes what
// waits once logIndexBatch deliveries do, or logIndexEvery after the last
// time, at most logIndexBatch at a time. Queries by endpoint or tenant
// read what waits, so this also bounds their extra work.
const (
	logIndexBatch = 32768
	logIndexEvery = 2 * time.Second
)

// logKeys are a delivery's three index keys ("" tenant: no tenant key).
func logKeys(created time.Time, eventID, endpoint, tenant string) (byTime, byEndpoint, byTenant []byte) {
	byTime = timeKey(created, DeliveryKey(eventID, endpoint))
	byEndpoint = endpointLogKey(byTime, endpoint)
	if tenant != "" {
		byTenant = tenantLogKey(tenant, byTime)
	}
	return byTime, byEndpoint, byTenant
}

// tenantLogKey is the per-tenant key of the delivery whose overall key is
// byTime.
func tenantLogKey(tenant string, byTime []byte) []byte {
	k := make([]byte, 0, len(tenant)+1+len(byTime))
	return append(append(append(k, tenant...), 0), byTime...)
}

// endpointLogKey is the per-endpoint key of the delivery whose overall key
// is byTime (which ends in \0endpoint).
func endpointLogKey(byTime []byte, endpoint string) []byte {
	k := make([]byte, 0, len(byTime)) // the same bytes, the endpoint moved to the front
	k = append(append(k, endpoint...), 0)
	return append(k, byTime[:len(byTime)-len(endpoint)-1]...)
}

// indexDelivery adds a new delivery to the log: to the overall index, and
// to log_unindexed for the other two.
func indexDelivery(tx *bolt.Tx, st *txState, created time.Time, eventID, endpoint, tenant string) error {
	t := timeKey(created, DeliveryKey(eventID, endpoint))
	tb, ub := tx.Bucket(bktLogTime), tx.Bucket(bktLogUnindexed)
	tb.FillPercent, ub.FillPercent = appendFill, appendFill
	if err := tb.Put(t, nil); err != nil {
		return err
	}
	if err := ub.Put(t, []byte(tenant)); err != nil {
		return err
	}
	st.unindexed++
	return nil
}

// indexLog moves up to limit deliveries from log_unindexed into the
// endpoint and tenant indexes, each index's keys put in order.
func indexLog(tx *bolt.Tx, st *txState, limit int) error {
	ub := tx.Bucket(bktLogUnindexed)
	eks, nks := make([][]byte, 0, limit), make([][]byte, 0, limit)
	c := ub.Cursor()
	n, k, v := 0, []byte(nil), []byte(nil)
	for k, v = c.First(); k != nil && n < limit; k, v = c.Next() {
		n++
		_, key := splitTimeKey(k)
		_, endpoint, _ := strings.Cut(key, "\x00")
		eks = append(eks, endpointLogKey(k, endpoint))
		if len(v) > 0 {
			nks = append(nks, tenantLogKey(string(v), k))
		}
	}
	for _, x := range []struct {
		b    []byte
		keys [][]byte
	}{{bktLogEndpoint, eks}, {bktLogTenant, nks}} {
		slices.SortFunc(x.keys, bytes.Compare)
		b := tx.Bucket(x.b)
		for _, k := range x.keys {
			if err := b.Put(k, nil); err != nil {
				return fmt.Errorf("index deliveries: %w", err)
			}
		}
	}
	st.unindexed -= int64(n)
	if k == nil {
		// All of it: dropping the bucket frees its pages at once.
		if err := tx.DeleteBucket(bktLogUnindexed); err != nil {
			return fmt.Errorf("index deliveries: %w", err)
		}
		_, err := tx.CreateBucket(bktLogUnindexed)
		return err
	}
	for range n {
		if k, _ := c.First(); k == nil {
			break
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("index deliveries: %w", err)
		}
	}
	return nil
}

// unindexDelivery removes a purged delivery from the log.
func unindexDelivery(tx *bolt.Tx, st *txState, created time.Time, eventID, endpoint, tenant string) error {
	t, e, n := logKeys(created, eventID, endpoint, tenant)
	if ub := tx.Bucket(bktLogUnindexed); ub.Get(t) != nil {
		st.unindexed--
		return errors.Join(tx.Bucket(bktLogTime).Delete(t), ub.Delete(t))
	}
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
		// Deliveries not yet in the index, in its key form and order,
		// merged into the walk from the newest.
		var waiting [][]byte
		if prefix != nil {
			waiting = unindexedFor(tx, q, prefix, lower, upper, after)
		}
		j := len(waiting) - 1
		for {
			indexed := k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, lower) >= 0
			if !indexed && j < 0 {
				break
			}
			cur := k
			if !indexed || (j >= 0 && bytes.Compare(waiting[j], k) > 0) {
				cur, j = waiting[j], j-1
			} else {
				k, _ = c.Prev()
				if bytes.Compare(cur, upper) >= 0 {
					continue
				}
			}
			visited++
			if len(out) == q.Limit {
				next = hex.EncodeToString(prevLogKey(out[len(out)-1], bucket, prefix))
				break
			}
			e, ok, err := s.logEntry(tx, bucket, prefix, cur, q)
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

// unindexedFor lists, in ascending order and in the form of the index
// that prefix selects, the deliveries of q's endpoint or tenant still in
// log_unindexed, within [lower, upper) and before the cursor after.
func unindexedFor(tx *bolt.Tx, q DeliveryQuery, prefix, lower, upper, after []byte) [][]byte {
	var out [][]byte
	suffix := append([]byte{0}, q.Endpoint...) // a key ends in \0endpoint
	c := tx.Bucket(bktLogUnindexed).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var key []byte
		if q.Endpoint != "" {
			if !bytes.HasSuffix(k, suffix) {
				continue
			}
			key = endpointLogKey(k, q.Endpoint)
		} else {
			if !bytes.Equal(v, prefix[:len(prefix)-1]) {
				continue
			}
			key = tenantLogKey(q.Tenant, k)
		}
		if bytes.Compare(key, lower) >= 0 && bytes.Compare(key, upper) < 0 && (len(after) == 0 || bytes.Compare(key, after) < 0) {
			out = append(out, key)
		}
	}
	return out
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
