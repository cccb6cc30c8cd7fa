package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
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
// per tenant. A query walks the index backwards over the requested time
// range and reads the records it meets, so its cost grows with the
// deliveries in that range, not with the database.
//
// Only the overall index is written as events are applied: its keys
// arrive in time order, so each commit appends to its last pages. Keys by
// endpoint or tenant arrive in random order when events go to many
// endpoints, and each one dirtied a page of its own in every commit (with
// 100,000 endpoints, most of the committer's work). A new delivery is
// therefore also put in log_unindexed (same key, the tenant as value), and
// the committer moves that bucket, in large sorted batches (indexLog), into
// sorted runs that it writes from left to right (logruns.go). A query by
// endpoint or tenant merges the entries still waiting in log_unindexed and
// the runs of its time range into its walk, so it sees every delivery at
// once, in the same order.
var (
	bktLogTime      = []byte("log_by_time")     // created|eventID\0endpoint → nil
	bktLogUnindexed = []byte("log_unindexed")   // created|eventID\0endpoint → tenant: not yet in a run
	bktLogEndpoint  = []byte("log_by_endpoint") // endpoint\0created|eventID → nil (builds before runs)
	bktLogTenant    = []byte("log_by_tenant")   // tenant\0created|eventID\0endpoint → nil (builds before runs)
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
// endpoint and tenant indexes: one new run (logruns.go), written in order.
func indexLog(tx *bolt.Tx, st *txState, limit int) error {
	st.runs = nil // the runs change (here and in the merges after)
	ub := tx.Bucket(bktLogUnindexed)
	keys := make([][]byte, 0, 2*limit)
	// Keys are in created order: the first and the last moved bound the run.
	var min, max []byte
	c := ub.Cursor()
	n, k, v := 0, []byte(nil), []byte(nil)
	for k, v = c.First(); k != nil && n < limit; k, v = c.Next() {
		n++
		if min == nil {
			min = bytes.Clone(k[:8])
		}
		max = k[:8]
		_, key := splitTimeKey(k)
		_, endpoint, _ := strings.Cut(key, "\x00")
		keys = append(keys, runKey(runEndpoint, endpointLogKey(k, endpoint)))
		if len(v) > 0 {
			keys = append(keys, runKey(runTenant, tenantLogKey(string(v), k)))
		}
	}
	if n == 0 {
		return nil
	}
	slices.SortFunc(keys, bytes.Compare)
	if err := writeRun(tx, keys, min, bytes.Clone(max)); err != nil {
		return fmt.Errorf("index deliveries: %w", err)
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
	return deleteFromRuns(tx, st, t[:8], e, n)
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
	if q.Limit < 1 {
		return nil, "", 0, errors.New("limit must be at least 1")
	}
	var (
		out     []LogEntry
		next    string
		visited int
	)
	s.barrier() // a query after a 202 sees the event
	err := s.db.View(func(tx *bolt.Tx) error {
		bucket, w := bktLogTime, logWalk{}
		switch {
		case q.Endpoint != "":
			bucket, w.prefix, w.kind = bktLogEndpoint, append([]byte(q.Endpoint), 0), runEndpoint
		case q.Tenant != "":
			bucket, w.prefix, w.kind = bktLogTenant, append([]byte(q.Tenant), 0), runTenant
		}
		scope := append([]byte{w.kind}, w.prefix...)
		after, err := readCursor(q.Cursor, scope)
		if err != nil || len(after) > 0 && (len(after) < len(w.prefix)+8 || !bytes.HasPrefix(after, w.prefix)) {
			// Another query's (another endpoint's, tenant's, or all of
			// them) or made up: an answer would be a wrong page.
			return ErrBadCursor
		}
		until := q.Until
		if until.IsZero() {
			until = time.Now().Add(time.Hour) // clocks may step; the future is empty anyway
		}
		w.bound = append(bytes.Clone(w.prefix), timeKey(until.Add(1), "")...)
		w.lower = append(bytes.Clone(w.prefix), timeKey(q.Since, "")...)
		if len(after) > 0 && bytes.Compare(after, w.bound) < 0 {
			w.bound = after
		}
		// The overall index, or (by endpoint or tenant) what builds before
		// runs put in log_by_endpoint or log_by_tenant.
		w.open(tx.Bucket(bucket).Cursor(), 0)
		if w.prefix != nil {
			if waiting := unindexedFor(tx, q, w.prefix, w.lower, w.bound); len(waiting) > 0 {
				w.heads = append(w.heads, logHead{k: waiting[len(waiting)-1], waiting: waiting[:len(waiting)-1]})
			}
			// The runs that may hold keys in [lower, bound): none older
			// than since, none newer than the bound's time (when the
			// bound, a cursor from the client, has one).
			since, until := w.lower[len(w.prefix):], []byte(nil)
			if len(w.bound) >= len(w.prefix)+8 && bytes.HasPrefix(w.bound, w.prefix) {
				until = w.bound[len(w.prefix) : len(w.prefix)+8]
			}
			for _, r := range listRuns(tx) {
				if bytes.Compare(r.max, since) < 0 {
					break // this one and the rest are older
				}
				if until == nil || bytes.Compare(r.min, until) <= 0 {
					w.runs = append(w.runs, r)
				}
			}
			w.runBucket = tx.Bucket(bktLogRuns)
		}
		for {
			cur := w.next()
			if cur == nil {
				break
			}
			visited++
			if len(out) == q.Limit {
				next = makeCursor(prevLogKey(out[len(out)-1], bucket, w.prefix), scope)
				break
			}
			e, ok, err := s.logEntry(tx, bucket, w.prefix, cur, q)
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

// makeCursor is the cursor of the page after key for the query of scope
// (which index, and the endpoint's or tenant's prefix): key and a check
// of scope and key, in hex. The check is what tells a cursor of the
// overall index, whose keys have no prefix, from another query's or one
// made up; it is not a secret (a tenant's query checks its prefix too, so
// a forged cursor only pages through what that query may read).
func makeCursor(key, scope []byte) string {
	return hex.EncodeToString(append(bytes.Clone(key), cursorCheck(key, scope)...))
}

// readCursor returns the key of a cursor makeCursor made for scope; ""
// is no cursor, the first page.
func readCursor(c string, scope []byte) ([]byte, error) {
	b, err := hex.DecodeString(c)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	n := len(b) - cursorCheckLen
	if n < 0 || !hmac.Equal(b[n:], cursorCheck(b[:n], scope)) {
		return nil, errors.New("bad cursor")
	}
	return b[:n], nil
}

const cursorCheckLen = 8

func cursorCheck(key, scope []byte) []byte {
	h := sha256.New()
	h.Write(scope)
	h.Write([]byte{0})
	h.Write(key)
	return h.Sum(nil)[:cursorCheckLen]
}

// logWalk merges, newest first, the keys one query reads from several
// sorted sources: an index bucket, the runs and the deliveries waiting in
// log_unindexed. Keys are compared without a run's kind byte; every source
// yields only keys with prefix in [lower, bound).
type logWalk struct {
	prefix, lower, bound []byte
	kind                 byte
	heads                []logHead
	runs                 []runInfo // not opened yet, newest first
	runBucket            *bolt.Bucket
}

type logHead struct {
	c       *bolt.Cursor
	kind    byte   // of c's keys, 0 for an index bucket
	k       []byte // the current key, without kind
	waiting [][]byte
}

// open positions c (whose keys start with kind unless it is 0) at its
// newest key below the bound and adds it if it has one in range.
func (w *logWalk) open(c *bolt.Cursor, kind byte) {
	seek := w.bound
	if kind != 0 {
		seek = runKey(kind, w.bound)
	}
	k, _ := c.Seek(seek)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	h := logHead{c: c, kind: kind}
	if w.valid(&h, k) {
		w.heads = append(w.heads, h)
	}
}

// valid sets h's current key from k, the key its cursor is on, and
// reports whether it is one the query reads.
func (w *logWalk) valid(h *logHead, k []byte) bool {
	if h.kind != 0 {
		if len(k) == 0 || k[0] != h.kind {
			return false
		}
		k = k[1:]
	}
	h.k = k
	return k != nil && bytes.HasPrefix(k, w.prefix) && bytes.Compare(k, w.lower) >= 0
}

// next returns the newest key not returned yet, nil at the end. A run is
// opened only once it may hold a key newer than every open source's.
func (w *logWalk) next() []byte {
	for {
		best := -1
		for i := range w.heads {
			if best < 0 || bytes.Compare(w.heads[i].k, w.heads[best].k) > 0 {
				best = i
			}
		}
		if len(w.runs) > 0 && (best < 0 || bytes.Compare(w.runs[0].max, w.heads[best].k[len(w.prefix):len(w.prefix)+8]) >= 0) {
			if b := w.runBucket.Bucket(w.runs[0].name); b != nil {
				w.open(b.Cursor(), w.kind)
			}
			w.runs = w.runs[1:]
			continue
		}
		if best < 0 {
			return nil
		}
		h := &w.heads[best]
		k := h.k
		ok := false
		if h.c == nil {
			if n := len(h.waiting); n > 0 {
				h.k, h.waiting, ok = h.waiting[n-1], h.waiting[:n-1], true
			}
		} else {
			next, _ := h.c.Prev()
			ok = w.valid(h, next)
		}
		if !ok {
			w.heads = slices.Delete(w.heads, best, best+1)
		}
		return k
	}
}

// unindexedFor lists, in ascending order and in the form of the index
// that prefix selects, the deliveries of q's endpoint or tenant still in
// log_unindexed, within [lower, upper).
func unindexedFor(tx *bolt.Tx, q DeliveryQuery, prefix, lower, upper []byte) [][]byte {
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
		if bytes.Compare(key, lower) >= 0 && bytes.Compare(key, upper) < 0 {
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
