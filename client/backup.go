package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Backup streams a consistent copy of the daemon's database (GET
// /v1/backup) to w and returns the bytes written. The copy is a complete
// bbolt file holding every event acknowledged before the call; hookd
// starts on it as it is.
//
// The body may take long, so Options.Timeout does not bound the whole
// call here but each wait: for the answer's headers, then for the next
// bytes of the body. ctx bounds the whole call. A body shorter than its
// Content-Length is an error: w then holds a truncated copy, which the
// caller must discard.
func (a *Admin) Backup(ctx context.Context, w io.Writer) (int64, error) {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := a.c.hc.Timeout
	watchdog := time.AfterFunc(idle, cancel)
	defer watchdog.Stop()
	// stalled says why a read or the request failed when the watchdog, not
	// the caller, canceled it.
	stalled := func(err error) error {
		if parent.Err() == nil && ctx.Err() != nil {
			return fmt.Errorf("%w (nothing received for %s)", err, idle)
		}
		return err
	}

	req, err := http.NewRequestWithContext(ctx, "GET", a.c.base+"/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	if a.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.c.token)
	}
	hc := *a.c.hc
	hc.Timeout = 0 // the watchdog stands in for it
	resp, err := hc.Do(req)
	if err != nil && errors.Is(parent.Err(), context.Canceled) {
		// The caller gave up: not a daemon that did not answer (as in send).
		return 0, fmt.Errorf("GET /v1/backup: %w", context.Cause(parent))
	}
	if err != nil {
		return 0, a.c.transportError(stalled(cause(err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return 0, answerError(resp)
	}
	out := &sink{w: w}
	n, err := io.Copy(out, &progress{r: resp.Body, onRead: func() { watchdog.Reset(idle) }})
	if out.err != nil {
		return n, fmt.Errorf("GET /v1/backup: write the copy: %w", out.err)
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fmt.Errorf("GET /v1/backup: read the copy after %d of %d bytes: %w", n, resp.ContentLength, stalled(err))
	}
	return n, nil
}

// sink tells the caller's write errors apart from the connection's.
type sink struct {
	w   io.Writer
	err error
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// progress calls onRead after every read that returned data.
type progress struct {
	r      io.Reader
	onRead func()
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.onRead()
	}
	return n, err
}

// answerError is the *Error for a non-2xx answer whose body has not been
// read. A body that is not the API's (a proxy's page) still yields the
// status.
func answerError(resp *http.Response) *Error {
	var eb ErrorBody
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&eb)
	e := &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
