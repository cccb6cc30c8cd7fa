package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"hookd/store"
)

// BackupResult is what hookd backup -json prints.
type BackupResult struct {
	Path    string         `json:"path"`
	Bytes   int64          `json:"bytes"`
	Seconds float64        `json:"seconds"`
	Counts  map[string]int `json:"counts"`
}

// backup copies a running daemon's database through the admin API. The
// copy lands under its final name only once it is complete, on disk and
// consistent, so FILE is never a partial copy, even after a crash: a temp
// file in the same directory, fsynced, checked, renamed, and the directory
// fsynced so the rename survives a power loss.
func backup(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("backup", stderr)
	out := f.fs.String("out", "", "file to write the copy to (replaced atomically if it exists)")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 0 || *out == "" {
		return usageError(stderr, "backup", "usage: hookd backup -out FILE")
	}
	// The copy is checked before it lands, and a retry starts it over:
	// neither can be done on a stream, so "-" is not standard output here
	// (it was a file named "-"). Streaming is GET /v1/backup.
	if *out == "-" {
		return usageError(stderr, "backup", "-out -: the copy is written to a file, checked and renamed, so it cannot go to standard output; name a file, or stream it with curl from GET /v1/backup")
	}
	if err := refuseLive(*out); err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return exitFailed
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	dir := filepath.Dir(*out)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(*out)+".tmp-*")
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return exitFailed
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	start := time.Now()
	var n int64
	for attempt := 1; ; attempt++ {
		n, err = a.Backup(context.Background(), tmp)
		// A copy cut short was most likely abandoned by the daemon giving
		// way to a commit that had to wait for it (see its log); the commit
		// has made room meanwhile, so the next try usually goes through.
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || attempt == backupAttempts {
			break
		}
		fmt.Fprintf(stderr, "hookd: %v; trying again (%d of %d)\n", err, attempt+1, backupAttempts)
		if _, err = tmp.Seek(0, io.SeekStart); err == nil {
			err = tmp.Truncate(0)
		}
		if err != nil {
			fmt.Fprintln(stderr, "hookd:", err)
			return exitFailed
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	elapsed := time.Since(start)
	if err := tmp.Sync(); err != nil {
		fmt.Fprintf(stderr, "hookd: sync %s: %v\n", tmp.Name(), err)
		return exitFailed
	}
	if err := tmp.Close(); err != nil {
		fmt.Fprintf(stderr, "hookd: close %s: %v\n", tmp.Name(), err)
		return exitFailed
	}
	counts, err := store.Inspect(tmp.Name())
	if err != nil {
		fmt.Fprintf(stderr, "hookd: the copy is not a valid database (nothing was written to %s): %v\n", *out, err)
		return exitFailed
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return exitFailed
	}
	done = true
	if err := syncDir(dir); err != nil {
		fmt.Fprintf(stderr, "hookd: %s is complete but its directory could not be synced: %v\n", *out, err)
		return exitFailed
	}

	res := BackupResult{Path: *out, Bytes: n, Seconds: elapsed.Seconds(), Counts: counts}
	f.print(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "wrote\t%s\nsize\t%d bytes (%.1f MiB) in %s\n", res.Path, res.Bytes, float64(res.Bytes)/(1<<20), elapsed.Round(time.Millisecond))
		printCounts(w, counts)
	})
	return exitOK
}

// refuseLive refuses to replace a database that a running hookd has open
// (it holds bbolt's lock on it): the rename would leave that daemon writing
// to a deleted file, and everything it commits after the copy would be
// lost at its next start. Likewise a file in a database's write-ahead log
// directory (a segment replaced so lost the events acknowledged after the
// copy), and anything but a regular file: the rename replaces what is
// there, and -out /dev/null as root replaced the system's /dev/null.
func refuseLive(path string) error {
	// The directory as it really is: relative (-out seg from inside it)
	// or through a link, its name would not say .wal.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if db := strings.TrimSuffix(dir, ".wal"); db != dir {
		if fi, err := os.Stat(db); err == nil && fi.Mode().IsRegular() {
			return fmt.Errorf("%s is in the write-ahead log directory of the database %s: write the copy elsewhere", path, db)
		}
	}
	fi, err := os.Stat(path) // a link to the live database is refused too
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory: -out names the file to write", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s): -out names the file to write, which it replaces", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil // unreadable: not one this user's hookd holds, and the rename decides
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%s is the database of a running hookd: write the copy to another file", path)
	}
	return nil // closing f drops the lock
}

// backupAttempts bounds the copies hookd backup starts when the daemon cuts
// them short.
const backupAttempts = 3

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot sync a directory; there is nothing to do.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
