package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// fakeIngest is an ingest listener whose answers a test scripts. It
// stores ids as hookd does, so a retry of a stored event is a duplicate.
type fakeIngest struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string            // every request body, in order
	stored map[string]bool     // ids
	answer func(n int) *answer // the nth request's (from 1); nil: store and acknowledge
}

type answer struct {
	status     int
	retryAfter string
	hangUp     bool // store the event, then close the connection unanswered
}

func newFakeIngest(t *testing.T, answer func(n int) *answer) *fakeIngest {
	f := &fakeIngest{stored: map[string]bool{}, answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIngest) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, string(b))
	var a *answer
	if f.answer != nil {
		a = f.answer(len(f.bodies))
	}
	if a != nil && !a.hangUp {
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		fmt.Fprintf(w, `{"error":{"code":"busy","message":"HTTP %d"}}`, a.status)
		return
	}
	var ev NewEvent
	json.Unmarshal(b, &ev)
	dup := f.stored[ev.ID]
	f.stored[ev.ID] = true
	if a != nil && a.hangUp {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
		return
	}
	if dup {
		fmt.Fprintf(w, `{"id":%q,"duplicate":true}`, ev.ID)
		return
	}
	w.WriteHeader(202)
	fmt.Fprintf(w, `{"id":%q,"duplicate":false,"deliveries":1}`, ev.ID)
}

func (f *fakeIngest) ids(t *testing.T) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, b := range f.bodies {
		var ev NewEvent
		if err := json.Unmarshal([]byte(b), &ev); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// sleeps replaces the client's sleep: it records each wait and returns
// at once, or runs then(n) on the nth wait (from 1) when given.
func sleeps(in *Ingest, then func(n int)) *[]time.Duration {
	var waits []time.Duration
	in.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if then != nil {
			then(len(waits))
		}
		return context.Cause(ctx)
	}
	return &waits
}

func sameID(t *testing.T, ids []string, want int) string {
	t.Helper()
	if len(ids) != want {
		t.Fatalf("%d requests, want %d", len(ids), want)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("ids changed between tries: %q", ids)
		}
	}
	return ids[0]
}

func TestSendRetries503ThenSucceeds(t *testing.T) {
	f := newFakeIngest(t, func(n int) *answer {
		if n <= 2 {
			return &answer{status: 503}
		}
		return nil
	})
	in := NewIngest(f.URL, Options{})
	waits := sleeps(in, nil)
	ack, err := in.Send(context.Background(), NewEvent{Type: "t", Data: 1})
	if err != nil || ack.Duplicate || ack.Deliveries != 1 {
		t.Fatalf("%+v %v", ack, err)
	}
	id := sameID(t, f.ids(t), 3)
	if ack.ID != id || !strings.HasPrefix(id, "evt_") {
		t.Fatalf("ack %q, sent %q", ack.ID, id)
	}
	if _, err := ulid.ParseStrict(strings.TrimPrefix(id, "evt_")); err != nil {
		t.Fatalf("generated id %q: %v", id, err)
	}
	if len(*waits) != 2 || (*waits)[0] <= 0 {
		t.Fatalf("waits %v", *waits)
	}
}

func TestSendHonoursRetryAfter(t *testing.T) {
	f := newFakeIngest(t, func(n int) *answer {
		if n == 1 {
			return &answer{status: 429, retryAfter: "7"}
		}
		return nil
	})
	in := NewIngest(f.URL, Options{})
	waits := sleeps(in, nil)
	if _, err := in.Send(context.Background(), NewEvent{ID: "e1", Type: "t", Data: 1}); err != nil {
		t.Fatal(err)
	}
	sameID(t, f.ids(t), 2)
	if len(*waits) != 1 || (*waits)[0] < 7*time.Second || (*waits)[0] > 7*time.Second+700*time.Millisecond {
		t.Fatalf("waited %v after Retry-After: 7, want 7s plus up to a tenth", *waits)
	}

	// MaxRetryWait caps it, for emitters that would rather try sooner.
	in = NewIngest(f.URL, Options{MaxRetryWait: time.Second})
	f.mu.Lock()
	f.answer = func(int) *answer { return &answer{status: 503, retryAfter: "30"} }
	f.mu.Unlock()
	waits = sleeps(in, nil)
	ctx, cancel := context.WithCancel(context.Background())
	in.sleep = func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		cancel()
		return context.Cause(ctx)
	}
	in.Send(ctx, NewEvent{ID: "e2", Type: "t", Data: 1})
	if len(*waits) != 1 || (*waits)[0] != time.Second {
		t.Fatalf("waited %v, want MaxRetryWait", *waits)
	}
}

// Whatever the client is waiting for, the context's deadline ends it,
// with the last refusal and the deadline in the error.
func TestSendStopsAtDeadline(t *testing.T) {
	f := newFakeIngest(t, func(int) *answer { return &answer{status: 503, retryAfter: "3600"} })
	in := NewIngest(f.URL, Options{}) // the real sleep
	// Long enough for the first round trip on a loaded machine (a deadline
	// before its answer leaves no refusal to report); the Retry-After of an
	// hour still ends the call at the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ack, err := in.Send(ctx, NewEvent{ID: "e1", Type: "t", Data: 1})
	var e *Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("%v", err)
	}
	if ack.ID != "e1" {
		t.Fatalf("ack %+v: the id is needed to send again", ack)
	}
	sameID(t, f.ids(t), 1)
}

// An event stored whose answer was lost is retried with its id and
// answered as a duplicate: success, stored once.
func TestSendLostAnswerIsDuplicateNotError(t *testing.T) {
	f := newFakeIngest(t, func(n int) *answer {
		if n == 1 {
			return &answer{hangUp: true}
		}
		return nil
	})
	in := NewIngest(f.URL, Options{})
	sleeps(in, nil)
	ack, err := in.Send(context.Background(), NewEvent{Type: "t", Data: 1})
	if err != nil || !ack.Duplicate {
		t.Fatalf("%+v %v", ack, err)
	}
	sameID(t, f.ids(t), 2)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stored) != 1 {
		t.Fatalf("stored %v", f.stored)
	}
}

func TestSendRetriesUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused from now on
	in := NewIngest(addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	waits := sleeps(in, func(n int) {
		if n == 3 {
			cancel()
		}
	})
	_, err = in.Send(ctx, NewEvent{Type: "t", Data: 1})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) || len(*waits) != 3 {
		t.Fatalf("%v after %d waits", err, len(*waits))
	}
	// Jittered exponential backoff: each wait longer than the last's low end.
	if w := *waits; !(w[0] < w[2]) {
		t.Fatalf("waits %v do not grow", w)
	}
}

// What trying again cannot mend is returned at once: a certificate the
// client does not trust. And no error shows the base URL's password.
func TestSendDoesNotRetryUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }))
	defer srv.Close()
	base := strings.Replace(srv.URL, "https://", "https://user:s3cretpw@", 1)
	in := NewIngest(base, Options{})
	waits := sleeps(in, nil)
	_, err := in.Send(context.Background(), NewEvent{Type: "t", Data: 1})
	if err == nil || errors.Is(err, ErrUnreachable) || len(*waits) != 0 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("%v after %d waits", err, len(*waits))
	}
	if strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("the password in an error: %v", err)
	}
}

func TestSendDoesNotRetryRefusals(t *testing.T) {
	f := newFakeIngest(t, func(int) *answer { return &answer{status: 400} })
	in := NewIngest(f.URL, Options{})
	waits := sleeps(in, nil)
	_, err := in.Send(context.Background(), NewEvent{Type: "t", Data: 1})
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || len(*waits) != 0 {
		t.Fatalf("%v after %d waits", err, len(*waits))
	}
}

// A batch refused as a whole is retried as a whole; items refused for now
// are retried alone; each keeps its id and its place in the results.
func TestSendBatchRetries(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		bodies = append(bodies, string(b))
		var evs []NewEvent
		json.Unmarshal(b, &evs)
		switch calls {
		case 1:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"code":"busy","message":"busy"}}`)
		case 2: // items: ok, refused for good, over max_pending
			w.Header().Set("Retry-After", "10")
			fmt.Fprintf(w, `{"results":[{"index":0,"status":202,"id":%q,"duplicate":false,"deliveries":1},`+
				`{"index":1,"status":400,"error":{"code":"invalid_request","message":"type: required"}},`+
				`{"index":2,"status":429,"error":{"code":"too_many_pending","message":"later"}}]}`, evs[0].ID)
		default:
			fmt.Fprintf(w, `{"results":[{"index":0,"status":202,"id":%q,"duplicate":false,"deliveries":1}]}`, evs[0].ID)
		}
	}))
	defer srv.Close()
	in := NewIngest(srv.URL, Options{})
	waits := sleeps(in, nil)
	res, err := in.SendBatch(context.Background(), []NewEvent{{ID: "a", Type: "t", Data: 1}, {Data: 2}, {Type: "t", Data: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].Stored() || res[1].Stored() || res[1].Status != 400 || !res[2].Stored() || res[2].Index != 2 {
		t.Fatalf("%+v", res)
	}
	if res[0].ID != "a" || res[1].ID == "" || !strings.HasPrefix(res[2].ID, "evt_") {
		t.Fatalf("ids %q %q %q", res[0].ID, res[1].ID, res[2].ID)
	}
	if len(bodies) != 3 || bodies[0] != bodies[1] || !strings.Contains(bodies[2], res[2].ID) || strings.Contains(bodies[2], `"a"`) {
		t.Fatalf("requests %q", bodies)
	}
	// The batch answer's Retry-After holds back the refused item's retry.
	if len(*waits) != 2 || (*waits)[0] < 2*time.Second || (*waits)[1] < 10*time.Second {
		t.Fatalf("waits %v", *waits)
	}
}

// A batch over the listener's body limit is sent again in halves until
// each request fits; every event is stored once.
func TestSendBatchHalvesWhatIsTooLarge(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	stored := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(b))
		if len(b) > 3000 {
			w.WriteHeader(413)
			io.WriteString(w, `{"error":{"code":"too_large","message":"too large"}}`)
			return
		}
		var evs []NewEvent
		json.Unmarshal(b, &evs)
		var res []string
		for i, ev := range evs {
			stored[ev.ID] = true
			res = append(res, fmt.Sprintf(`{"index":%d,"status":202,"id":%q,"duplicate":false,"deliveries":1}`, i, ev.ID))
		}
		fmt.Fprintf(w, `{"results":[%s]}`, strings.Join(res, ","))
	}))
	defer srv.Close()
	events := make([]NewEvent, 100)
	for i := range events {
		events[i] = NewEvent{Type: "t", Data: strings.Repeat("x", 50)}
	}
	// One too large alone is refused for good, and the rest go on: the
	// events after it were never sent, and its result said status 0.
	events[40].Data = strings.Repeat("x", 4000)
	res, err := NewIngest(srv.URL, Options{}).SendBatch(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if i == 40 {
			if r.Status != 413 || r.Error == nil || r.Error.Code != "too_large" || r.Index != 40 {
				t.Fatalf("the event too large alone: %+v", r)
			}
			continue
		}
		if !r.Stored() || r.Index != i {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if len(stored) != 99 || len(sizes) < 3 || sizes[0] <= 3000 {
		t.Fatalf("%d stored, request sizes %v", len(stored), sizes)
	}
}

// An event with neither data nor payload goes as "data": null, which the
// daemon takes; left out, both would be a 400.
func TestNewEventWithoutDataSendsNull(t *testing.T) {
	b, err := json.Marshal(NewEvent{Type: "ping"})
	if err != nil || string(b) != `{"type":"ping","data":null}` {
		t.Fatalf("%s %v", b, err)
	}
	b, _ = json.Marshal(NewEvent{Type: "ping", Payload: json.RawMessage(`{"a":1}`)})
	if string(b) != `{"type":"ping","payload":{"a":1}}` {
		t.Fatalf("%s", b)
	}
}

// A payload that is JSON already goes byte for byte, in Send and in
// SendBatch: encoding/json compacted it and escaped <, > and &, so a body
// the emitter had signed arrived as other bytes (black-box testing).
func TestPayloadSentByteForByte(t *testing.T) {
	const raw = `{"html": "<b>a & b</b>",  "n": 1.50}`
	f := newFakeIngest(t, nil)
	in := NewIngest(f.URL, Options{})
	if _, err := in.Send(context.Background(), NewEvent{Type: "t", Payload: json.RawMessage(raw)}); err != nil {
		t.Fatal(err)
	}
	in.SendBatch(context.Background(), []NewEvent{{Type: "t", Payload: []byte(raw)}, {Type: "t", Data: "<&>"}})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) != 2 || !strings.HasSuffix(f.bodies[0], `"payload":`+raw+`}`) || !strings.Contains(f.bodies[1], `"payload":`+raw+`}`) || !strings.Contains(f.bodies[1], `"data":"<&>"`) {
		t.Fatalf("bodies %q", f.bodies)
	}
	if _, err := in.Send(context.Background(), NewEvent{Type: "t", Payload: json.RawMessage(`{"a":`)}); err == nil {
		t.Fatal("a payload that is not JSON was sent")
	}
}

// A token no header can carry (read from a file with its newline) is an
// error at once, not "cannot reach hookd" retried until the context ends
// (black-box testing).
func TestUnsendableTokenIsNotRetried(t *testing.T) {
	f := newFakeIngest(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := NewIngest(f.URL, Options{Token: "tok\n"}).Send(ctx, NewEvent{Type: "t", Data: 1})
	if err == nil || errors.Is(err, ErrUnreachable) || ctx.Err() != nil || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("%v (context %v)", err, ctx.Err())
	}
	if _, err := NewIngest("ftp://127.0.0.1:1", Options{}).Send(ctx, NewEvent{Type: "t", Data: 1}); err == nil || errors.Is(err, ErrUnreachable) {
		t.Fatalf("ftp: %v", err)
	}
}

// A host:port base with a trailing slash sends to /v1/events, not
// //v1/events, which hookd answers 404 (black-box testing).
func TestBaseWithTrailingSlash(t *testing.T) {
	f := newFakeIngest(t, nil)
	var paths []string
	f.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		paths = append(paths, r.URL.Path)
		f.mu.Unlock()
		f.serve(w, r)
	})
	_, err := NewIngest(strings.TrimPrefix(f.URL, "http://")+"/", Options{}).Send(context.Background(), NewEvent{Type: "t", Data: 1})
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || len(paths) != 1 || paths[0] != "/v1/events" {
		t.Fatalf("%v %v", paths, err)
	}
}
