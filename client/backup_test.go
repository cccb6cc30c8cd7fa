package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBackup(t *testing.T) {
	db := bytes.Repeat([]byte("page"), 100_000)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The token picks the daemon's behaviour.
		switch r.Header.Get("Authorization") {
		case "Bearer tok":
			w.Header().Set("Content-Length", "400000")
			w.Write(db)
		case "Bearer truncated": // the daemon abandoned the copy
			w.Header().Set("Content-Length", "400000")
			w.Write(db[:1000])
		case "Bearer stalled": // headers, some bytes, then nothing
			w.Header().Set("Content-Length", "400000")
			w.Write(db[:1000])
			w.(http.Flusher).Flush()
			<-stop
		default:
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing or wrong bearer token"}}`)
		}
	}))
	defer srv.Close()
	defer close(stop)
	ctx := context.Background()

	var out bytes.Buffer
	n, err := NewAdmin(srv.URL, Options{Token: "tok"}).Backup(ctx, &out)
	if err != nil || n != int64(len(db)) || !bytes.Equal(out.Bytes(), db) {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	if _, err := NewAdmin(srv.URL, Options{Token: "wrong"}).Backup(ctx, io.Discard); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	n, err = NewAdmin(srv.URL, Options{Token: "truncated"}).Backup(ctx, io.Discard)
	if err == nil || n != 1000 {
		t.Fatalf("truncated: %d bytes, %v", n, err)
	}
	// Timeout bounds each wait, not the whole copy.
	_, err = NewAdmin(srv.URL, Options{Token: "stalled", Timeout: 50 * time.Millisecond}).Backup(ctx, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nothing received for 50ms") {
		t.Fatalf("stalled: %v", err)
	}
	if _, err := NewAdmin(srv.URL, Options{Token: "tok"}).Backup(ctx, failingWriter{}); err == nil || !strings.Contains(err.Error(), "write the copy: disk full") {
		t.Fatalf("failing writer: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
