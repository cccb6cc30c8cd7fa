package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The endpoint and tenant indexes of the deliveries log are kept as sorted
// runs, as a log-structured merge tree keeps its tables: each batch that
// indexLog moves out of log_unindexed becomes a nested bucket of log_runs
// written in key order, and small runs are merged into bigger ones. A
// random insert into one big B+tree dirties a page for each key once the
// tree is much larger than a batch (with 100,000 tenants the daemon's CPU
// per event rose by nearly half, and its rate fell by a third, as the log
// grew by 450,000 deliveries); a run is written, and merged, from left to
// right into pages it fills.
//
// A run holds both indexes: 'e' + endpoint key and 't' + tenant key (the
// keys of log_by_endpoint and log_by_tenant, which builds before runs
// filled; they are still read and purged, never written). Its name says
// which keys it may hold, so that queries and purges open only the runs
// that matter:
//
//	maxCreated(8) | minCreated(8) | sequence(8) | keys(8)
//
// created bounds over its keys (unix nanoseconds), a sequence number that
// makes the name unique, and how many keys it was written with (purges
// delete keys from runs, so it may hold fewer). log_runs sorts by the
// newest delivery a run holds, the order a newest-first query needs them.
var bktLogRuns = []byte("log_runs")

func init() { allBuckets = append(allBuckets, bktLogRuns) }

// Kinds of run keys.
const (
	runEndpoint = 'e'
	runTenant   = 't'
)

// runKey is key (of log_by_endpoint's or log_by_tenant's form) as a run
// holds it.
func runKey(kind byte, key []byte) []byte {
	return append(append(make([]byte, 0, 1+len(key)), kind), key...)
}

// indexAndMerge is the committer's indexing transaction: up to limit
// waiting deliveries become a run, and runs are merged if they are due.
// Each batch adds a run and each merge takes at least one away: one merge
// a batch keeps their number bounded.
func indexAndMerge(tx *bolt.Tx, st *txState, limit int) error {
	if err := indexLog(tx, st, limit); err != nil {
		return err
	}
	return mergeRuns(tx)
}

// Merging is size-tiered: runs below fullRunKeys fall in tiers by size,
// each four times the one below; once mergeRunsAt runs share a tier, the
// smallest of them that fit in mergeKeys together (at least two) are
// merged into one, a tier up. A key is rewritten about once a tier it
// climbs (seven times at most, from a run of a few keys to a full one),
// where merging the smallest runs of any size rewrote the biggest small
// run in every merge: hundreds of times over under a trickle of events.
// Under load a batch is a full run by itself and nothing is merged: a
// merge builds its run in memory (bbolt keeps a new bucket's keys in one
// node until the commit), which cost ~2 µs a key here for runs of 256,000
// keys, more than it saves queries. A query opens a run per ~16,000
// deliveries or more in its time range, plus at most three a tier.
const (
	mergeRunsAt = 4
	mergeKeys   = 64 << 10
	fullRunKeys = mergeKeys / 2
)

type runInfo struct {
	name     []byte
	max, min []byte // created bounds, 8 bytes each, comparable with index keys' times
	keys     uint64
}

func parseRunName(name []byte) (runInfo, bool) {
	if len(name) != 32 {
		return runInfo{}, false
	}
	return runInfo{name: name, max: name[:8], min: name[8:16], keys: binary.BigEndian.Uint64(name[24:])}, true
}

// listRuns lists the runs, newest maxCreated first.
func listRuns(tx *bolt.Tx) []runInfo {
	var out []runInfo
	c := tx.Bucket(bktLogRuns).Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		if r, ok := parseRunName(k); ok {
			out = append(out, r)
		}
	}
	return out
}

// writeRun stores keys (sorted, distinct, each with its kind byte) as a
// new run; min and max bound their created times.
func writeRun(tx *bolt.Tx, keys [][]byte, min, max []byte) error {
	runs := tx.Bucket(bktLogRuns)
	seq, err := runs.NextSequence()
	if err != nil {
		return err
	}
	name := make([]byte, 0, 32)
	name = append(append(name, max...), min...)
	name = binary.BigEndian.AppendUint64(name, seq)
	name = binary.BigEndian.AppendUint64(name, uint64(len(keys)))
	b, err := runs.CreateBucket(name)
	if err != nil {
		return err
	}
	b.FillPercent = 1 // written in order and never inserted into
	for _, k := range keys {
		if err := b.Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// pickMerge chooses the runs to merge next (indexes into runs), or none.
func pickMerge(runs []runInfo) []int {
	var tiers [8][]int // a run below fullRunKeys (2^15) has fewer than 16 bits
	for i, r := range runs {
		if r.keys < fullRunKeys {
			t := bits.Len64(r.keys) / 2
			tiers[t] = append(tiers[t], i)
		}
	}
	for _, small := range tiers {
		if len(small) < mergeRunsAt {
			continue
		}
		slices.SortStableFunc(small, func(a, b int) int { return cmp.Compare(runs[a].keys, runs[b].keys) })
		total, n := uint64(0), 0
		for _, i := range small {
			if total+runs[i].keys > mergeKeys {
				break
			}
			total += runs[i].keys
			n++
		}
		return small[:n]
	}
	return nil
}

// mergeRuns merges the runs pickMerge chooses, if any, into one, reading
// each in order and writing the result in order, and drops them.
func mergeRuns(tx *bolt.Tx) error {
	all := listRuns(tx)
	pick := pickMerge(all)
	if len(pick) == 0 {
		return nil
	}
	runs := tx.Bucket(bktLogRuns)
	type head struct {
		c *bolt.Cursor
		k []byte
	}
	heads := make([]head, 0, len(pick))
	min, max := all[pick[0]].min, all[pick[0]].max
	for _, i := range pick {
		r := all[i]
		b := runs.Bucket(r.name)
		if b == nil {
			return fmt.Errorf("merge log runs: run %x missing", r.name)
		}
		c := b.Cursor()
		if k, _ := c.First(); k != nil {
			heads = append(heads, head{c, k})
		}
		if bytes.Compare(r.min, min) < 0 {
			min = r.min
		}
		if bytes.Compare(r.max, max) > 0 {
			max = r.max
		}
	}
	var keys [][]byte
	for len(heads) > 0 {
		j := 0
		for i := 1; i < len(heads); i++ {
			if bytes.Compare(heads[i].k, heads[j].k) < 0 {
				j = i
			}
		}
		if n := len(keys); n == 0 || !bytes.Equal(keys[n-1], heads[j].k) {
			keys = append(keys, heads[j].k)
		}
		if heads[j].k, _ = heads[j].c.Next(); heads[j].k == nil {
			heads = slices.Delete(heads, j, j+1)
		}
	}
	// The names and keys point into the sources' pages: write the merged
	// run before the sources are dropped.
	min, max = bytes.Clone(min), bytes.Clone(max)
	if err := writeRun(tx, keys, min, max); err != nil {
		return fmt.Errorf("merge log runs: %w", err)
	}
	for _, i := range pick {
		if err := runs.DeleteBucket(all[i].name); err != nil {
			return fmt.Errorf("merge log runs: %w", err)
		}
	}
	return nil
}

// runBounds is the runs as one transaction's purges see them: their
// names read once for all the deliveries the transaction purges, rather
// than walked for each. A purge deletes the oldest deliveries, older than
// nearly every run's newest, and a 30-day log at 100 events/s has
// thousands of runs.
type runBounds struct {
	runs []runBound // in name order: by maxCreated
	span uint64     // the widest run's maxCreated - minCreated
}

type runBound struct {
	max, min uint64
	name     []byte
}

func readRunBounds(runs *bolt.Bucket) *runBounds {
	rb := &runBounds{}
	c := runs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if r, ok := parseRunName(k); ok {
			b := runBound{max: binary.BigEndian.Uint64(r.max), min: binary.BigEndian.Uint64(r.min), name: bytes.Clone(k)}
			rb.runs = append(rb.runs, b)
			rb.span = max(rb.span, b.max-min(b.min, b.max))
		}
	}
	return rb
}

// deleteFromRuns deletes a purged delivery's keys (byTenant nil without a
// tenant) from every run whose created bounds include created, and drops a
// run left empty.
func deleteFromRuns(tx *bolt.Tx, st *txState, created, byEndpoint, byTenant []byte) error {
	keys := [][]byte{runKey(runEndpoint, byEndpoint)}
	if byTenant != nil {
		keys = append(keys, runKey(runTenant, byTenant))
	}
	runs := tx.Bucket(bktLogRuns)
	if st.runs == nil {
		st.runs = readRunBounds(runs)
	}
	rb, at := st.runs, binary.BigEndian.Uint64(created)
	i, _ := slices.BinarySearchFunc(rb.runs, at, func(r runBound, at uint64) int { return cmp.Compare(r.max, at) })
	// Past maxCreated = at + span every run's minCreated is after at.
	for i < len(rb.runs) && rb.runs[i].max-at <= rb.span {
		r := rb.runs[i]
		if r.min > at {
			i++
			continue
		}
		b := runs.Bucket(r.name)
		if b == nil {
			return fmt.Errorf("purge the deliveries log: run %x is gone", r.name)
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if k, _ := b.Cursor().First(); k != nil {
			i++
			continue
		}
		if err := runs.DeleteBucket(r.name); err != nil {
			return err
		}
		rb.runs = slices.Delete(rb.runs, i, i+1)
	}
	return nil
}
