package store

import (
	"encoding/binary"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// State is where a delivery is in its life.
type State uint8

const (
	Pending State = iota
	Delivered
	Undeliverable
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Undeliverable:
		return "undeliverable"
	}
	return "unknown"
}

// Event is what the emitter posted. Raw is the event's data, or, when
// Payload is set, the verbatim body the emitter composed itself.
type Event struct {
	ID      string
	Type    string
	Tenant  string // the platform's customer the event belongs to; "" for none
	Created time.Time
	Payload bool
	Raw     []byte
	// Seq is the event's place in acknowledgement order, assigned by the
	// log writer (see ordered.go); 0 for events stored before it existed.
	Seq uint64
}

// Delivery is one (event, endpoint) pair with its own retry state. Body is
// rendered once at ingest and sent unchanged on every attempt.
type Delivery struct {
	EventID   string
	Endpoint  string
	EventType string
	Created   time.Time
	Body      []byte
	State     State
	Attempts  int // attempts made so far, over the delivery's whole life
	Cycle     int // value of Attempts when the current retry cycle began (manual redelivery restarts the schedule)
	Due       time.Time
	Reason    string    // why it is undeliverable
	Parked    time.Time // when it became undeliverable
	Done      time.Time // when it was delivered
	// Seq orders an endpoint's deliveries by acknowledgement: the event's
	// Seq when created, a new, higher one when redelivered (see ordered.go).
	Seq uint64
	// Ordered: while pending, the delivery is in its endpoint's ordered
	// index instead of the due queue (the endpoint had ordering = "fifo"
	// when it was queued).
	Ordered bool
}

// Key identifies the delivery in the store.
func (d *Delivery) Key() string { return DeliveryKey(d.EventID, d.Endpoint) }

// Attempt is one recorded HTTP attempt.
type Attempt struct {
	N        int
	At       time.Time
	Status   int // 0 when no response was received
	Latency  time.Duration
	Error    string
	Response []byte // truncated response body
}

// DeliveryKey joins an event id and an endpoint name. Ids are printable
// ASCII and names are [a-z0-9_-], so a NUL separator cannot be ambiguous.
func DeliveryKey(eventID, endpoint string) string { return eventID + "\x00" + endpoint }

// SplitKey is the inverse of DeliveryKey.
func SplitKey(key string) (eventID, endpoint string) {
	i := strings.IndexByte(key, 0)
	if i < 0 {
		return key, ""
	}
	return key[:i], key[i+1:]
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeEvent(e *Event) []byte {
	enc := encoder{b: make([]byte, 0, len(e.Raw)+len(e.ID)+len(e.Type)+len(e.Tenant)+24)}
	enc.byte1(3) // record version: 2 added the tenant, 3 the sequence number
	enc.str(e.ID)
	enc.str(e.Type)
	enc.i64(nanos(e.Created))
	enc.boolean(e.Payload)
	enc.bytes(e.Raw)
	enc.str(e.Tenant)
	enc.fixed64(e.Seq) // last and fixed-size: the log writer stamps it in place
	return enc.b
}

func decodeEvent(b []byte) (*Event, error) { return decodeEventFrom(decoder{b: b}) }

// eventTenant reads the tenant of the stored event id ("" when there is
// none or no such event) without copying the event's data.
func eventTenant(tx *bolt.Tx, id string) string {
	v := tx.Bucket(bktEvents).Get([]byte(id))
	if v == nil {
		return ""
	}
	ev, err := decodeEventFrom(decoder{b: v, view: true})
	if err != nil {
		return ""
	}
	return ev.Tenant // strings are copies even from a view
}

func decodeEventFrom(d decoder) (*Event, error) {
	version := d.byte1()
	e := &Event{ID: d.str(), Type: d.str(), Created: fromNanos(d.i64()), Payload: d.boolean(), Raw: d.bytes()}
	if version >= 2 {
		e.Tenant = d.str()
	}
	if version >= 3 {
		e.Seq = d.fixed64()
	}
	return e, d.err
}

func encodeDelivery(r *Delivery) []byte {
	enc := encoder{b: make([]byte, 0, len(r.Body)+len(r.EventID)+len(r.Endpoint)+len(r.EventType)+len(r.Reason)+57)}
	enc.byte1(2) // record version: 2 added Ordered and Seq
	enc.str(r.EventID)
	enc.str(r.Endpoint)
	enc.str(r.EventType)
	enc.i64(nanos(r.Created))
	enc.bytes(r.Body)
	enc.byte1(uint8(r.State))
	enc.u64(uint64(r.Attempts))
	enc.u64(uint64(r.Cycle))
	enc.i64(nanos(r.Due))
	enc.str(r.Reason)
	enc.i64(nanos(r.Parked))
	enc.i64(nanos(r.Done))
	enc.boolean(r.Ordered)
	enc.fixed64(r.Seq) // last and fixed-size: the log writer stamps it in place
	return enc.b
}

func decodeDelivery(b []byte) (*Delivery, error) { return decodeDeliveryFrom(decoder{b: b}) }

func decodeDeliveryFrom(d decoder) (*Delivery, error) {
	version := d.byte1()
	r := &Delivery{
		EventID: d.str(), Endpoint: d.str(), EventType: d.str(), Created: fromNanos(d.i64()),
		Body: d.bytes(), State: State(d.byte1()), Attempts: int(d.u64()), Cycle: int(d.u64()),
		Due: fromNanos(d.i64()), Reason: d.str(), Parked: fromNanos(d.i64()), Done: fromNanos(d.i64()),
	}
	if version >= 2 {
		r.Ordered = d.boolean()
		r.Seq = d.fixed64()
	}
	return r, d.err
}

// stampSeq writes seq into an encoded event or delivery record, whose last
// 8 bytes hold it.
func stampSeq(record []byte, seq uint64) {
	binary.BigEndian.PutUint64(record[len(record)-8:], seq)
}

// recordSeq reads a delivery record's Seq without decoding the rest.
func recordSeq(record []byte) uint64 {
	if len(record) < 9 || record[0] < 2 {
		return 0
	}
	return binary.BigEndian.Uint64(record[len(record)-8:])
}

func encodeAttempt(a *Attempt) []byte {
	enc := encoder{b: make([]byte, 0, len(a.Response)+len(a.Error)+32)}
	enc.byte1(1)
	enc.u64(uint64(a.N))
	enc.i64(nanos(a.At))
	enc.u64(uint64(a.Status))
	enc.i64(int64(a.Latency))
	enc.str(a.Error)
	enc.bytes(a.Response)
	return enc.b
}

func decodeAttempt(b []byte) (*Attempt, error) {
	d := decoder{b: b}
	d.byte1()
	a := &Attempt{N: int(d.u64()), At: fromNanos(d.i64()), Status: int(d.u64()), Latency: time.Duration(d.i64()), Error: d.str(), Response: d.bytes()}
	return a, d.err
}

// timeKey prefixes a key with a big-endian timestamp so that bbolt's byte
// ordering is time ordering; the due queue, the undeliverable bucket and the
// purge index all use it.
func timeKey(t time.Time, key string) []byte {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(nanos(t)))
	return append(b, key...)
}

func splitTimeKey(k []byte) (time.Time, string) {
	if len(k) < 8 {
		return time.Time{}, ""
	}
	return fromNanos(int64(binary.BigEndian.Uint64(k))), string(k[8:])
}

func attemptKey(dkey string, n int) []byte {
	b := make([]byte, 0, len(dkey)+5)
	b = append(b, dkey...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
