package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"hookd/store"
)

// A copy the daemon cuts short (it gives way to a commit) is tried again,
// up to three times; FILE only ever receives a complete one.
func TestBackupRetriesCutCopies(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "hookd.db")
	s, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Int32 // how many answers to cut short
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(db)))
		if cut.Add(-1) >= 0 {
			w.Write(db[:len(db)/2])
			return
		}
		w.Write(db)
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "backup.db")

	cut.Store(2)
	var stdout, stderr bytes.Buffer
	if code := Run("backup", []string{"-admin", srv.URL, "-out", out}, &stdout, &stderr); code != 0 ||
		strings.Count(stderr.String(), "trying again") != 2 || !strings.Contains(stdout.String(), "events") {
		t.Fatalf("two cut copies, then a whole one: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, db) {
		t.Fatal("the backup is not the daemon's copy")
	}

	cut.Store(3)
	os.Remove(out)
	stderr.Reset()
	if code := Run("backup", []string{"-admin", srv.URL, "-out", out}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "unexpected EOF") {
		t.Fatalf("every copy cut: exit %d\n%s", code, stderr.String())
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}
