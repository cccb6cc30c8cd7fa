package daemon

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"hookd/store"
)

// GET /v1/backup streams a snapshot of the database (store.Snapshot): a
// complete bbolt file, with Content-Length, that hookd starts on as it is.
// The snapshot is a read transaction, which must not outlive a client
// that stalls or leaves: see backupStream.

// defaultBackupWriteTimeout is how long a backup client may take to read
// each MiB before the backup is abandoned.
const defaultBackupWriteTimeout = 30 * time.Second

// backupDeadlineBytes is how much of the body each write deadline covers.
// A deadline per write would let a client reading a few bytes at a time
// hold the snapshot indefinitely; one per MiB asks for some pace (with the
// default timeout, 35 KB/s) while leaving any real network room.
const backupDeadlineBytes = 1 << 20

// backupYieldAfter: a bbolt commit running this long while a backup holds
// its snapshot is taken to be waiting for it (a commit that must enlarge
// bbolt's memory map waits for every read transaction, and every new read
// waits behind that commit), and the backup gives way. Commits take
// milliseconds; the backup can be retried at once, as the map has grown.
const backupYieldAfter = time.Second

var (
	errBackupShutdown = errors.New("hookd is shutting down")
	errBackupYield    = errors.New("a database commit waited for the backup's snapshot (bbolt enlarging its memory map); the backup gave way, retry it")
)

func (d *Daemon) adminBackup(ctx *fasthttp.RequestCtx, _ []string) error {
	if d.closing.Load() {
		return errShutdown
	}
	snap, err := d.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	b := &backupStream{d: d, ctx: ctx, snap: snap, size: snap.Size(), timeout: d.BackupWriteTimeout, start: time.Now(),
		finished: make(chan struct{})}
	if b.timeout <= 0 {
		b.timeout = defaultBackupWriteTimeout
	}
	if !d.backups.add(b) {
		snap.Close()
		return errShutdown
	}
	go b.yieldToCommits()
	d.log.Info().Int64("bytes", b.size).Msg("backup started")
	ctx.SetContentType("application/octet-stream")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="hookd-backup.db"`)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	// Set by the handler, the deadline replaces the server's WriteTimeout
	// (one deadline for the whole answer, too short for a large file);
	// this one covers the headers and the first MiB.
	ctx.SetWriteDeadline(time.Now().Add(b.timeout))
	ctx.Response.SetBodyStream(b, int(b.size))
	return nil
}

// backupStream is the body of a backup answer. fasthttp calls its WriteTo
// on the connection's goroutine after the handler returns (it is a
// fasthttp.BodyWriterTo), then Close, also when the body was never
// written (the connection failed first). Either way the snapshot is
// closed once, before the stream leaves d.backups.
type backupStream struct {
	d       *Daemon
	ctx     *fasthttp.RequestCtx
	snap    *store.Snapshot
	size    int64
	timeout time.Duration
	start   time.Time

	w       io.Writer
	pending int   // bytes written since the last deadline
	werr    error // the first failed write: bbolt flattens some errors it returns

	// mu orders abort against the deadline a write sets, and against
	// finish: once finished, the stream no longer touches ctx, which
	// fasthttp then recycles.
	mu       sync.Mutex
	aborted  error // why abort was called
	done     bool
	finished chan struct{} // closed by finish
}

func (b *backupStream) SupportsBodyWriteTo() bool { return true }

func (b *backupStream) WriteTo(w io.Writer) (int64, error) {
	b.w = w
	n, err := b.snap.WriteTo(b)
	b.finish(n, err)
	return n, err
}

// Read is never called: fasthttp writes a BodyWriterTo with WriteTo. It
// fails rather than return a short body.
func (b *backupStream) Read([]byte) (int, error) {
	return 0, errors.New("backup stream: read instead of WriteTo")
}

func (b *backupStream) Close() error {
	b.finish(0, errors.New("the answer's headers could not be sent"))
	return nil
}

// Write passes p on to the connection, moving the write deadline on for
// each MiB, and fails once the daemon is closing.
func (b *backupStream) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.aborted != nil {
		err := b.aborted
		b.mu.Unlock()
		return 0, err
	}
	if b.pending >= backupDeadlineBytes {
		b.ctx.SetWriteDeadline(time.Now().Add(b.timeout))
		b.pending = 0
	}
	b.mu.Unlock()
	n, err := b.w.Write(p)
	b.pending += n
	if err != nil && b.werr == nil {
		b.werr = err
	}
	return n, err
}

// abort makes the stream's current and next writes fail at once, so that
// neither Close nor a commit waits out a stalled client.
func (b *backupStream) abort(why error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.aborted == nil {
		b.aborted = why
	}
	if !b.done {
		b.ctx.SetWriteDeadline(time.Now())
	}
}

// yieldToCommits aborts the backup when a commit seems to wait for its
// snapshot (see backupYieldAfter).
func (b *backupStream) yieldToCommits() {
	defer b.d.backups.wg.Done()
	t := time.NewTicker(backupYieldAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-b.finished:
			return
		case <-t.C:
			if b.d.store.CommitRunning() > backupYieldAfter {
				b.abort(errBackupYield)
				return
			}
		}
	}
}

func (b *backupStream) finish(n int64, err error) {
	b.mu.Lock()
	first, aborted := !b.done, b.aborted
	b.done = true
	b.mu.Unlock()
	if !first {
		return
	}
	b.snap.Close()
	close(b.finished)
	b.d.backups.remove(b)
	if err == nil {
		b.d.log.Info().Int64("bytes", n).Dur("duration", time.Since(b.start)).Msg("backup sent")
		return
	}
	ev := b.d.log.Warn()
	if b.werr != nil {
		err = b.werr
	}
	switch {
	case aborted != nil: // err is the abort's, or the deadline it set
		ev = ev.Str("reason", aborted.Error())
	case errors.Is(err, os.ErrDeadlineExceeded):
		ev = ev.Str("reason", "the client did not read the next MiB within the write timeout").Dur("write_timeout", b.timeout)
	default:
		ev = ev.Err(err)
	}
	ev.Int64("bytes", n).Int64("size", b.size).Dur("duration", time.Since(b.start)).
		Msg("backup abandoned; its snapshot is released")
}

// backupSet tracks the backups in progress, so that Close can abort them:
// bbolt's Close waits for every read transaction.
type backupSet struct {
	mu     sync.Mutex
	closed bool
	active map[*backupStream]struct{}
	wg     sync.WaitGroup
}

func (s *backupSet) add(b *backupStream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.active == nil {
		s.active = map[*backupStream]struct{}{}
	}
	s.active[b] = struct{}{}
	s.wg.Add(2) // the stream, and its yieldToCommits
	return true
}

func (s *backupSet) remove(b *backupStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.active[b]; ok {
		delete(s.active, b)
		s.wg.Done()
	}
}

// abort refuses new backups and makes those in progress fail now.
func (s *backupSet) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for b := range s.active {
		b.abort(errBackupShutdown)
	}
}

// wait returns once every backup has released its snapshot and stopped
// watching commits.
func (s *backupSet) wait() { s.wg.Wait() }
