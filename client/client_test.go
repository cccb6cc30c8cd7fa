package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/events/nope":
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such resource"}}`)
		case "/v1/endpoints":
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing or wrong bearer token"}}`)
		case "/v1/undeliverable/redeliver":
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"code":"shutting_down","message":"hookd is shutting down"}}`)
		default:
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		}
	}))
	defer srv.Close()
	a, ctx := NewAdmin(srv.URL, Options{}), context.Background()

	_, err := a.Event(ctx, "nope")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" || err.Error() != "no such resource" ||
		!errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrUnreachable) {
		t.Errorf("404: %#v", err)
	}
	if _, err := a.Endpoints(ctx, EndpointQuery{}); !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
		t.Errorf("401: %#v", err)
	}
	_, err = a.RedeliverUndeliverable(ctx, RedeliverUndeliverableRequest{})
	if !errors.As(err, &ae) || ae.Code != "shutting_down" || ae.RetryAfter != 5*time.Second {
		t.Errorf("503: %#v", err)
	}
	_, err = a.Enable(ctx, "x")
	if !errors.As(err, &ae) || ae.Status != 502 || err.Error() != "HTTP 502" {
		t.Errorf("502 from a proxy: %#v", err)
	}

	// The caller giving up is not a daemon out of reach.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Endpoints(cancelled, EndpointQuery{}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Errorf("cancelled: %v", err)
	}
	srv.Close()
	if _, err := a.Endpoints(ctx, EndpointQuery{}); !errors.Is(err, ErrUnreachable) || errors.As(err, &ae) {
		t.Errorf("closed: %v", err)
	}
}

// The forms of base URL are those [admin] listen takes, plus a full URL.
func TestBaseURL(t *testing.T) {
	var got []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.String()+" "+r.Header.Get("Authorization"))
		io.WriteString(w, `{"items":[],"next_cursor":""}`)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	us := &http.Server{Handler: h}
	go us.Serve(ln)
	defer us.Close()

	q := UndeliverableQuery{Endpoint: "a b", Limit: 5, Cursor: "c/d"}
	for _, base := range []string{srv.URL, srv.URL + "/", srv.Listener.Addr().String(), "unix:" + sock} {
		got = nil
		page, err := NewAdmin(base, Options{Token: "tok"}).Undeliverable(context.Background(), q)
		if err != nil || page.Items == nil {
			t.Fatalf("%s: %v %+v", base, err, page)
		}
		if want := "GET /v1/undeliverable?cursor=c%2Fd&endpoint=a+b&limit=5 Bearer tok"; len(got) != 1 || got[0] != want {
			t.Errorf("%s: request %q, want %q", base, got, want)
		}
		if err := CheckBase(base); err != nil {
			t.Errorf("CheckBase(%s): %v", base, err)
		}
	}
	for _, bad := range []string{"://bad", "ftp://x", "http://", "no-port"} {
		if CheckBase(bad) == nil {
			t.Errorf("CheckBase(%s) accepted", bad)
		}
	}
}

// An empty list is sent as one, not left out: left out, it would mean
// the widest choice (every capability, every endpoint).
func TestEmptyListsAreSent(t *testing.T) {
	b, _ := json.Marshal(PortalLinkRequest{Capabilities: []string{}})
	if string(b) != `{"capabilities":[]}` {
		t.Errorf("portal link request %s", b)
	}
	if b, _ = json.Marshal(PortalLinkRequest{}); string(b) != `{}` {
		t.Errorf("zero portal link request %s", b)
	}
	b, _ = json.Marshal(NewEvent{Type: "t", Data: 1, Endpoints: []string{}})
	if !strings.Contains(string(b), `"endpoints":[]`) {
		t.Errorf("event %s", b)
	}
	if b, _ = json.Marshal(NewEvent{Type: "t", Data: 1}); strings.Contains(string(b), "endpoints") {
		t.Errorf("event without endpoints %s", b)
	}
}
