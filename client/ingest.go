package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/oklog/ulid/v2"
)

// maxBatch is the most events the daemon takes in one POST
// /v1/events/batch; SendBatch splits longer slices.
const maxBatch = 1000

// Ingest sends events to the ingest API ([ingest] listen). It is safe for
// concurrent use.
//
// Send and SendBatch retry what hookd refused only for now (429, 503) and
// requests that got no complete answer (connection refused or reset, a
// timeout), always with the same event id, until they succeed or the
// context ends. As the daemon stores an id once, a retry of an event that
// was stored after all answers "duplicate", which is success: an emitter
// that keeps calling Send until it returns nil loses no event and
// duplicates none. Pass a context with a deadline: without one, Send
// retries for as long as hookd is unavailable.
type Ingest struct {
	c       *conn
	maxWait time.Duration
	// sleep waits d unless ctx ends first; tests replace it so that no
	// test waits on the wall clock.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewIngest returns a client for the ingest API at baseURL: host:port (as
// in [ingest] listen), unix:/path, or an http(s):// URL. Options.Token is
// [ingest] token.
func NewIngest(baseURL string, o Options) *Ingest {
	return &Ingest{c: newConn(baseURL, o), maxWait: o.MaxRetryWait, sleep: sleepCtx}
}

// NewEventID returns a new event id, evt_<ULID>, the form hookd generates.
// An emitter that records the id before sending can send the event again
// after a crash without risk of a duplicate.
func NewEventID() string { return "evt_" + ulid.Make().String() }

// Send stores one event, retrying as the type's documentation says. On
// error the Ack still carries the event's id (generated when ev had
// none), so the caller can send the same event again later.
//
// The error is an *Error for an answer that retrying cannot change (400,
// 401, 413, 415: the event is not stored), or the last reason to retry
// wrapped with the context's error when the context ended first: then the
// event may or may not be stored, and sending it again with the same id is
// safe.
func (in *Ingest) Send(ctx context.Context, ev NewEvent) (Ack, error) {
	if ev.ID == "" {
		ev.ID = NewEventID()
	}
	// Encoded once: every try sends the same bytes.
	body, err := ev.encode()
	if err != nil {
		return Ack{ID: ev.ID}, err
	}
	r := in.retries()
	for {
		var ack Ack
		err := in.c.send(ctx, "POST", "/v1/events", body, &ack)
		if err == nil {
			return ack, nil
		}
		if err := r.wait(ctx, err); err != nil {
			return Ack{ID: ev.ID}, err
		}
	}
}

// SendBatch stores events in as few requests as it can (up to 1000 events
// each, halved while hookd answers 413 to a request's size: its limit is
// 64 × max_event_bytes), retrying whole requests and single items hookd
// refused for now, as Send does. It returns one result per event, in order (Index is the
// position in events), each with its event's id, generated where the
// event had none.
//
// A nil error means every event got a final answer: stored (see
// ItemResult.Stored) or refused for good (400, 413), which its result
// says. An error means some events got none: a request was refused as a
// whole (an *Error), or the context ended while some were still to retry;
// their results keep the last refusal, or status 0 if no answer came.
func (in *Ingest) SendBatch(ctx context.Context, events []NewEvent) ([]ItemResult, error) {
	items := make([]json.RawMessage, len(events))
	results := make([]ItemResult, len(events))
	todo := make([]int, len(events))
	for i, ev := range events {
		if ev.ID == "" {
			ev.ID = NewEventID()
		}
		b, err := ev.encode()
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		items[i], results[i], todo[i] = b, ItemResult{Index: i, ID: ev.ID}, i
	}
	r := in.retries()
	for len(todo) > 0 {
		var (
			again []int
			why   error // the reason to retry again
			held  bool  // a whole request was refused for now: the rest waits with it
		)
		chunks := slices.Collect(slices.Chunk(todo, maxBatch))
		for len(chunks) > 0 {
			chunk := chunks[0]
			chunks = chunks[1:]
			if held {
				again = append(again, chunk...)
				continue
			}
			// Joined as they are: json.Marshal compacted each again.
			b := []byte{'['}
			for j, i := range chunk {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, items[i]...)
			}
			b = append(b, ']')
			var page BatchResults
			after, err := in.c.sendH(ctx, "POST", "/v1/events/batch", b, &page)
			var e *Error
			if errors.As(err, &e) && e.Status == 413 {
				if len(chunk) > 1 {
					// Over the listener's body limit (64 × max_event_bytes,
					// which the client does not know): send it in halves.
					h := len(chunk) / 2
					chunks = append([][]int{chunk[:h], chunk[h:]}, chunks...)
					continue
				}
				// One event over it alone: refused for good, and the rest
				// go on (they were never sent, its result said status 0).
				i := chunk[0]
				results[i].Status, results[i].Error = 413, &ErrorDetail{Code: e.Code, Message: e.Message}
				continue
			}
			if err != nil {
				if _, ok := retryable(err); !ok {
					return results, err
				}
				again, why, held = append(again, chunk...), err, true
				continue
			}
			for _, res := range page.Results {
				if res.Index < 0 || res.Index >= len(chunk) {
					return results, fmt.Errorf("POST /v1/events/batch: answer has item %d of %d", res.Index, len(chunk))
				}
				i := chunk[res.Index]
				res.Index, res.ID = i, results[i].ID
				results[i] = res
				if res.Status == 429 || res.Status == 503 {
					again, why = append(again, i), itemRefusal{res, after}
				}
			}
		}
		if len(again) == 0 {
			return results, nil
		}
		if err := r.wait(ctx, why); err != nil {
			return results, err
		}
		todo = again
	}
	return results, nil
}

// itemRefusal is a batch item hookd refused for now (429, 503), and the
// batch answer's Retry-After.
type itemRefusal struct {
	r     ItemResult
	after time.Duration
}

func (e itemRefusal) Error() string {
	if e.r.Error != nil {
		return fmt.Sprintf("event %d: %s", e.r.Index, e.r.Error.Message)
	}
	return fmt.Sprintf("event %d: HTTP %d", e.r.Index, e.r.Status)
}

// retryable reports whether a request that failed with err may succeed if
// sent again unchanged, and the Retry-After the daemon asked for.
func retryable(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter, e.Status == 429 || e.Status == 503
	}
	var ir itemRefusal
	if errors.As(err, &ir) {
		return ir.after, true
	}
	return 0, errors.Is(err, ErrUnreachable) || errors.Is(err, errAnswerLost)
}

// retrier spaces one call's tries: exponential backoff with jitter, so
// that emitters refused together do not come back together, and never
// sooner than a Retry-After.
type retrier struct {
	in *Ingest
	b  *backoff.ExponentialBackOff
}

func (in *Ingest) retries() *retrier {
	// Loopback to a daemon that restarts in seconds: start fast, and never
	// wait so long that recovery goes unnoticed for minutes.
	b := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}
	b.Reset()
	return &retrier{in: in, b: b}
}

// wait sleeps before the next try of a request that failed with err, or
// returns the error to give up with: err itself when retrying cannot help,
// err and the context's error when the context ends first.
func (r *retrier) wait(ctx context.Context, err error) error {
	after, ok := retryable(err)
	if !ok {
		return err
	}
	if cause := context.Cause(ctx); cause != nil {
		return giveUp(err, cause)
	}
	d := r.b.NextBackOff()
	if after > 0 {
		// At least what the daemon asked for, plus up to a tenth.
		d = max(d, after+rand.N(after/10+1))
	}
	if r.in.maxWait > 0 {
		d = min(d, r.in.maxWait)
	}
	if serr := r.in.sleep(ctx, d); serr != nil {
		return giveUp(err, serr)
	}
	return nil
}

func giveUp(last, cause error) error {
	if errors.Is(last, cause) {
		return last
	}
	return fmt.Errorf("%w (gave up: %w)", last, cause)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
