package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"hookd/cli"
	"hookd/daemon"
)

// An online backup under continuous ingest, with deliveries to a receiver
// that fails every other request: hookd started on the copy has every
// event acknowledged before the backup began (delivered, pending or
// undeliverable), and delivers the pending ones.
func TestBackupUnderLoadRestores(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Handle("/hook", func(n int, _ *http.Request, w http.ResponseWriter) {
		if n%2 == 1 {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	})
	ep := func(url string) string {
		return endpoint("a", url, `["*"]`, `schedule = ["50ms", "100ms"]`+"\n"+standardSigning(testSecret))
	}
	d := MustOpenDaemon(t, ep(rcv.URL+"/hook"))

	var (
		mu    sync.Mutex
		acked []string
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	ackedSoFar := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), acked...)
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				status, _, err := tryPost(d.IngestAddr(), fmt.Sprintf(`{"id":%q,"type":"t","data":{"n":%d}}`, id, i))
				if err != nil || status != 202 {
					t.Errorf("ingest %s: %d %v", id, status, err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	eventually(t, "events acknowledged before the backup", func() bool { return len(ackedSoFar()) >= 300 })

	restored := t.TempDir()
	backup := filepath.Join(restored, "hookd.db") // where the restored daemon's config points
	before := ackedSoFar()
	code, out, errs := runCLI(t, "backup", "-admin", "http://"+d.AdminAddr(), "-out", backup)
	if code != 0 || !matchRe(`(?m)^size\s+\d+ bytes`, out) || !matchRe(`(?m)^\s+events\s+\d+$`, out) {
		t.Fatalf("hookd backup: exit %d\n%s%s", code, out, errs)
	}
	eventually(t, "ingest going on after the backup", func() bool { return len(ackedSoFar()) >= len(before)+300 })
	stop.Store(true)
	wg.Wait()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.logs.String(), `"message":"backup sent"`) {
		t.Fatal("the daemon did not log the backup")
	}

	// The copy, as hookd check-db sees it, and what it holds.
	if code, out, errs := runCLI(t, "check-db", "-path", backup); code != 0 || !strings.Contains(out, "consistent") {
		t.Fatalf("check-db on the backup: %d %s%s", code, out, errs)
	}
	pending := map[string]bool{}
	states := map[string]int{}
	db, err := bolt.Open(backup, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		for _, id := range before {
			if tx.Bucket([]byte("events")).Get([]byte(id)) == nil || tx.Bucket([]byte("deliveries")).Get([]byte(id+"\x00a")) == nil {
				t.Errorf("event %s, acknowledged before the backup, is not in it", id)
			}
		}
		tx.Bucket([]byte("queue")).ForEach(func(k, _ []byte) error {
			id, _, _ := strings.Cut(string(k[8:]), "\x00")
			pending[id] = true
			return nil
		})
		states["pending"] = len(pending)
		states["undeliverable"] = tx.Bucket([]byte("undeliverable")).Stats().KeyN
		states["events"] = tx.Bucket([]byte("events")).Stats().KeyN
		return nil
	})
	db.Close()
	t.Logf("acknowledged before the backup: %d, in total: %d; the backup: %v", len(before), len(ackedSoFar()), states)
	if len(pending) == 0 {
		t.Fatal("no delivery was pending in the backup: the test proves nothing about them")
	}

	// Restore: hookd started with storage.path pointing at the copy.
	rcv2 := NewReceiver(t)
	r := mustOpenIn(t, restored, Extra{}, ep(rcv2.URL+"/hook"), nil)
	eventually(t, "every delivery pending in the backup delivered after the restore", func() bool {
		got := map[string]bool{}
		for _, req := range rcv2.Requests("/hook") {
			got[req.Header.Get("webhook-id")] = true
		}
		for id := range pending {
			if !got[id] {
				return false
			}
		}
		return true
	})
	for _, id := range before[:10] {
		if status, _ := r.Admin("GET", "/v1/events/"+id, ""); status != 200 {
			t.Fatalf("restored daemon: GET event %s: %d", id, status)
		}
	}
}

// bigEvent is an event of about 48 KiB, so that a few hundred make a
// database far larger than what loopback sockets buffer.
var bigEvent = `{"type":"t","data":{"s":"` + strings.Repeat("x", 48<<10) + `"}}`

// parkedDaemon runs a daemon whose n large events are all parked as
// undeliverable (its receiver always fails, with no retries; events of
// other types go nowhere), and returns
// a function that redelivers them all and waits until they are parked
// again: a workload that rewrites much and adds little.
func parkedDaemon(t *testing.T, n int, setup func(*daemon.Daemon)) (*Daemon, func()) {
	rcv := NewReceiver(t)
	rcv.Status("/hook", 500, 1<<30)
	d := MustOpenDaemonExtra(t, Extra{}, endpoint("a", rcv.URL+"/hook", `["t"]`, `schedule = []`), setup)
	for range n {
		d.Event(bigEvent)
	}
	parked := func() bool {
		status, out := d.Admin("GET", "/v1/undeliverable?endpoint=a&limit=1000", "")
		return status == 200 && len(out["items"].([]any)) == n
	}
	eventually(t, "every event parked", parked)
	return d, func() {
		if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"a"}`); status != 202 {
			t.Fatalf("redeliver: %d %v", status, out)
		}
		eventually(t, "every event parked again", parked)
	}
}

// stuckBackup starts GET /v1/backup on a connection with a small receive
// buffer, reads the answer's headers and stops reading.
func stuckBackup(t *testing.T, d *Daemon) net.Conn {
	t.Helper()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := dialer.Dial("tcp", d.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /v1/backup HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("backup answer: %v %v", resp, err)
	}
	eventually(t, "backup started", func() bool { return strings.Contains(d.logs.String(), `"message":"backup started"`) })
	return c
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A backup client that stops reading holds the snapshot (a bbolt read
// transaction) but does not stall ingest; when it goes away the snapshot
// is released: a workload that rewrites records then reuses the pages it
// frees, and the file stops growing.
func TestBackupClientThatStopsReading(t *testing.T) {
	d, rewrite := parkedDaemon(t, 150, nil)
	c := stuckBackup(t, d)
	for i := range 50 {
		d.Event(fmt.Sprintf(`{"type":"small","data":{"n":%d}}`, i))
	}
	c.Close()
	eventually(t, "backup abandoned", func() bool {
		return strings.Contains(d.logs.String(), `"message":"backup abandoned; its snapshot is released"`)
	})

	db := d.Config().Storage.Path
	var sizes []int64
	for range 4 {
		rewrite()
		sizes = append(sizes, fileSize(t, db))
	}
	t.Logf("file size after each rewrite of every parked delivery: %v", sizes)
	if sizes[3] != sizes[1] {
		t.Fatalf("the file keeps growing after the backup ended: %v", sizes)
	}
}

// A commit that waits for a backup's snapshot (bbolt must enlarge its
// memory map, which waits for read transactions; every read then waits
// behind it) makes the backup give way, even to a client that stopped
// reading: the writes go on.
func TestBackupGivesWayToCommits(t *testing.T) {
	d, rewrite := parkedDaemon(t, 150, nil)
	stuckBackup(t, d)
	rewrite() // rewrites every parked delivery twice: far past the map's end
	rewrite()
	if logs := d.logs.String(); !strings.Contains(logs, `"message":"backup abandoned; its snapshot is released"`) ||
		!strings.Contains(logs, "the backup gave way") {
		t.Fatal("the backup did not give way to the commits")
	}
}

// A client that stops reading and never goes away loses the backup after
// the write timeout (each MiB must be taken within it), which releases
// the snapshot.
func TestBackupStuckClientTimesOut(t *testing.T) {
	d, _ := parkedDaemon(t, 150, func(d *daemon.Daemon) { d.BackupWriteTimeout = 500 * time.Millisecond })
	stuckBackup(t, d)
	eventually(t, "backup abandoned after the write timeout", func() bool {
		logs := d.logs.String()
		return strings.Contains(logs, `"message":"backup abandoned; its snapshot is released"`) &&
			strings.Contains(logs, "did not read the next MiB within the write timeout")
	})
	d.Event(`{"type":"t","data":{}}`)
}

// hookd backup: the copy replaces FILE only once it is complete and
// consistent; a failed backup leaves FILE as it was and no temp file
// behind; exit codes are the other commands'.
func TestCLIBackup(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{Admin: `token = "adm"`}, endpoint("a", rcv.URL+"/a", `["*"]`, ""), nil)
	for i := range 20 {
		d.Event(fmt.Sprintf(`{"id":"e%d","type":"t","data":{}}`, i))
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "hookd.db")
	writeRaw(t, out, "the previous backup")
	admin := []string{"-admin", "http://" + d.AdminAddr(), "-out", out}
	onlyOut := func() {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("%d files in the directory, want only the backup: %v", len(ents), ents)
		}
	}

	if code, _, errs := runCLI(t, append([]string{"backup", "-token", "wrong"}, admin...)...); code != 1 || !strings.Contains(errs, "bearer token") {
		t.Fatalf("wrong token: exit %d %s", code, errs)
	}
	if readRaw(t, out) != "the previous backup" {
		t.Fatal("a failed backup changed the file")
	}
	onlyOut()

	code, stdout, errs := runCLI(t, append([]string{"backup", "-token", "adm", "-json"}, admin...)...)
	var res cli.BackupResult
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil {
		t.Fatalf("backup: exit %d\n%s%s", code, stdout, errs)
	}
	if res.Path != out || res.Bytes != fileSize(t, out) || res.Counts["events"] != 20 || res.Counts["deliveries"] != 20 {
		t.Fatalf("backup -json: %+v (file has %d bytes)", res, fileSize(t, out))
	}
	onlyOut()
	if counts, err := inspect(out); err != nil || counts["events"] != 20 {
		t.Fatalf("the backup: %v %v", counts, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v, want 0600 like the database", fi.Mode().Perm())
	}

	if code, _, _ := runCLI(t, "backup", "-admin", "http://"+d.AdminAddr()); code != 2 {
		t.Fatalf("no -out: exit %d", code)
	}
	if code, _, errs := runCLI(t, "backup", "-admin", "http://"+d.AdminAddr(), "-out", "-"); code != 2 || !strings.Contains(errs, "standard output") {
		t.Fatalf("-out -: exit %d %s", code, errs)
	}
	// Never onto the running daemon's own database: it would go on writing
	// to a deleted file and lose all it commits after the copy.
	live := filepath.Join(d.dir, "hookd.db")
	if code, _, errs := runCLI(t, "backup", "-token", "adm", "-admin", "http://"+d.AdminAddr(), "-out", live); code != 1 || !strings.Contains(errs, "running hookd") {
		t.Fatalf("backup onto the live database: exit %d %s", code, errs)
	}
	// Nor into its write-ahead log (a segment replaced lost the events
	// acknowledged after the copy), nor onto anything but a regular file:
	// the rename replaces it, and -out /dev/null as root replaced the
	// system's /dev/null (black-box testing).
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "wal-link") // a path that does not say .wal
	if err := os.Symlink(live+".wal", link); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		filepath.Join(live+".wal", "0000000000000001.log"): "write-ahead log directory",
		filepath.Join(link, "0000000000000001.log"):        "write-ahead log directory",
		filepath.Join(live+".wal", "new"):                  "write-ahead log directory",
		fifo:                                               "not a regular file",
	} {
		if code, _, errs := runCLI(t, "backup", "-token", "adm", "-admin", "http://"+d.AdminAddr(), "-out", target); code != 1 || !strings.Contains(errs, want) {
			t.Fatalf("backup onto %s: exit %d %s", target, code, errs)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		t.Fatalf("the FIFO was replaced: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(d.dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return strings.Contains(e.Name(), ".tmp-") }) {
		t.Fatalf("a refused backup left a temp file: %v", ents)
	}
	addr := d.AdminAddr()
	d.Close()
	if code, _, errs := runCLI(t, "backup", "-admin", "http://"+addr, "-out", out); code != 3 || !strings.Contains(errs, "is hookd running") {
		t.Fatalf("no daemon: exit %d %s", code, errs)
	}
	onlyOut()
}
