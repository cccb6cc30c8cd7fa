package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The ingest write-ahead log: a directory next to the database holding
// segment files named by a growing sequence number. A segment starts with
// a header naming the database it belongs to (see segmentHeader), followed
// by a run of records, each [u32 payload length][u32 CRC-32C][payload],
// little-endian, where the CRC covers the segment's sequence number and
// the payload.
//
// Segments the database has fully applied are recycled: renamed to the next
// sequence number and overwritten. Overwriting blocks a file already has
// makes fdatasync flush only data (appending must also journal the file's
// new size, which roughly doubles the sync's cost under load), and the
// sequence number in the CRC makes the old records left beyond the new
// ones fail their check, so replay stops where the new records end.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walSegmentBytes is when the log writer starts a new segment, which is also
// when it deletes the segments the database has fully absorbed.
const walSegmentBytes = 16 << 20

// maxWALRecord bounds a record's length on replay, so a corrupt length
// cannot make Open allocate gigabytes.
const maxWALRecord = 1 << 30

// A segment header is [4]walMagic [u32 CRC-32C of the rest][u64 sequence
// number][16]database id. It ties the segment to one database: a log left
// next to a different file (a restored backup, a database deleted and
// created again, a directory copied from another host) is refused at Open
// instead of replayed into it. The header goes out with the segment's
// first batch, in the same write and sync, so it costs the log no extra
// sync. Read as a record length, the magic is over maxWALRecord, so a
// build from before headers stops at it instead of misreading it.
const (
	walHeaderBytes = 32
	walIDBytes     = 16
)

var walMagic = [4]byte{'H', 'K', 'W', 'L'}

// ErrForeignWAL: the write-ahead log next to the database was written for
// another database. Open refuses rather than replay it.
var ErrForeignWAL = errors.New("the write-ahead log belongs to another database")

func segmentHeader(seq uint64, id []byte) []byte {
	h := make([]byte, walHeaderBytes)
	copy(h, walMagic[:])
	binary.LittleEndian.PutUint64(h[8:16], seq)
	copy(h[16:], id)
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(h[8:], castagnoli))
	return h
}

// segmentKind is what the start of a segment file says about its owner.
type segmentKind int

const (
	segEmpty   segmentKind = iota // nothing readable: a new file, or its first write never completed
	segOwned                      // a header: see the id (its sequence number may be a recycled file's old one)
	segLegacy                     // records from offset 0, written by a build before segment headers
	segUnknown                    // bytes that are neither: a torn first write, or a file written over
)

// readSegmentStart classifies the segment at path, numbered seq, and
// returns the id its header names.
func readSegmentStart(path string, seq uint64) (segmentKind, []byte, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return segEmpty, nil, 0, err
	}
	defer f.Close()
	var h [walHeaderBytes]byte
	n, err := io.ReadFull(f, h[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return segEmpty, nil, 0, err
	}
	if n == walHeaderBytes && [4]byte(h[:4]) == walMagic && crc32.Checksum(h[8:], castagnoli) == binary.LittleEndian.Uint32(h[4:8]) {
		return segOwned, append([]byte(nil), h[16:]...), binary.LittleEndian.Uint64(h[8:16]), nil
	}
	// A record at offset 0 whose CRC holds for this sequence number was
	// written there on purpose, by a build that wrote no header.
	if n >= 8 {
		if l := binary.LittleEndian.Uint32(h[:4]); l <= maxWALRecord {
			p := make([]byte, l)
			if _, err := f.ReadAt(p, 8); err == nil && recordCRC(seq, p) == binary.LittleEndian.Uint32(h[4:8]) {
				return segLegacy, nil, 0, nil
			}
		}
	}
	if slices.ContainsFunc(h[:n], func(b byte) bool { return b != 0 }) {
		return segUnknown, nil, 0, nil
	}
	return segEmpty, nil, 0, nil // nothing written, or zeros preallocated
}

// walPos is a position in the log: the end of the last record of segment
// seg that the database has applied.
type walPos struct {
	seg uint64
	off int64
}

func (p walPos) bytes() []byte { return append(putU64(p.seg), putU64(uint64(p.off))...) }

func parseWALPos(b []byte) walPos {
	if len(b) != 16 {
		return walPos{}
	}
	return walPos{seg: getU64(b[:8]), off: int64(getU64(b[8:]))}
}

type wal struct {
	dir    string
	id     []byte // the database's id, written in every segment's header
	f      *os.File
	pos    walPos // end of the last record written and synced to f
	broken bool   // a write or sync failed: the next write starts a new segment
	buf    []byte

	spareP   bool // GOMAXPROCS exceeds the CPUs: syncs may keep their P (see sync)
	lastSync time.Duration
}

func segmentPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.log", seq))
}

// segments lists the sequence numbers of the segments in dir, ascending.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		if seq, err := strconv.ParseUint(name, 16, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// replayWAL calls fn with every intact record after applied, segment by
// segment. A segment's records end at a torn or corrupt record (the tail
// of a write that never completed, whose request was never acknowledged)
// unless an intact record follows it: see replaySegment. It returns the
// highest sequence number seen and what it found damaged: the paths of
// segments it might have replayed whose start is unreadable (segUnknown:
// nothing acknowledged can be lost there if the cause is a torn first
// write, but a file written over would have lost acknowledged events, and
// the operator should hear of either) and the damaged stretches it skipped.
//
// id is the database's id; nil for a database from a build before ids,
// whose log has no headers and is replayed as it is. Any segment that
// names another database, or a log without headers next to a database
// with an id, fails with ErrForeignWAL before a record is applied.
func replayWAL(dir string, id []byte, applied walPos, fn func(payload []byte, end walPos) error) (uint64, walDamage, error) {
	var dmg walDamage
	seqs, err := segments(dir)
	if err != nil {
		return 0, dmg, err
	}
	last := applied.seg
	starts := make([]int64, len(seqs)) // where each segment's records begin; -1: none to replay
	for i, seq := range seqs {
		last = max(last, seq)
		path := segmentPath(dir, seq)
		kind, owner, hseq, err := readSegmentStart(path, seq)
		if err != nil {
			return 0, dmg, err
		}
		switch {
		case kind == segOwned && (id == nil || !bytes.Equal(owner, id)):
			return 0, dmg, foreignWAL(dir, path, id, owner)
		case kind == segLegacy && id != nil && seq >= applied.seg:
			// Before ids, Open marks the whole log applied when it assigns
			// one; unapplied records without a header are not this
			// database's.
			return 0, dmg, foreignWAL(dir, path, id, nil)
		case seq < applied.seg:
			starts[i] = -1
		case kind == segLegacy:
			starts[i] = 0
		case kind == segOwned && hseq == seq:
			starts[i] = walHeaderBytes
		default: // empty, unreadable, or recycled and never written again
			starts[i] = -1
			if kind == segUnknown {
				dmg.unknown = append(dmg.unknown, path)
			}
		}
	}
	for i, seq := range seqs {
		from := starts[i]
		if from < 0 {
			continue
		}
		if seq == applied.seg {
			from = max(from, applied.off)
		}
		gaps, err := replaySegment(segmentPath(dir, seq), seq, from, fn)
		if err != nil {
			return 0, dmg, err
		}
		dmg.gaps = append(dmg.gaps, gaps...)
	}
	return last, dmg, nil
}

// walDamage is what replay found damaged in the log.
type walDamage struct {
	unknown []string // segments whose start is unreadable: nothing replayed from them
	gaps    []WALGap // damaged stretches skipped, with intact records after them
}

// WALGap is a damaged stretch of a write-ahead log segment with intact
// records after it: bytes changed on disk (a flipped bit, a block written
// over). The records after it were replayed; whatever events the stretch
// held are lost.
type WALGap struct {
	Segment string
	Offset  int64 // where the damaged record starts
	Bytes   int64 // up to the next intact record
}

func foreignWAL(dir, path string, id, owner []byte) error {
	wrote := "a build of hookd without database ids"
	if owner != nil {
		wrote = fmt.Sprintf("database %x", owner)
	}
	has := "no id (it predates ids)"
	if id != nil {
		has = fmt.Sprintf("id %x", id)
	}
	return fmt.Errorf("%w: %s was written by %s, and this database has %s; nothing was replayed. "+
		"If the database was restored from a backup or created anew, move %s out of the way and start again; "+
		"if the log belongs with another database file, point storage.path at that file", ErrForeignWAL, path, wrote, has, dir)
}

func recordCRC(seq uint64, p []byte) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	return crc32.Update(crc32.Checksum(b[:], castagnoli), castagnoli, p)
}

// replaySegment calls fn with the intact records of segment seq from off.
// A record that fails its check ends them, unless an intact record
// follows (nextRecord): then the stretch up to it was damaged on disk, and
// the records after it, acknowledged, are replayed rather than dropped in
// silence; the stretch is reported. The tail of a write torn by a crash
// has none after it (the next write waits for the sync that acknowledges
// this one), nor do the old records beyond the new ones in a recycled
// segment (their CRC has another sequence number). Those are the usual
// end of a recycled segment's records, told apart by that number without
// a search (staleRecord), which costs ~0.25 s over 16 MiB.
func replaySegment(path string, seq uint64, off int64, fn func([]byte, walPos) error) ([]WALGap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var gaps []WALGap
	var hdr [8]byte
	for {
		p, ok := readRecord(r, seq, hdr[:])
		if !ok {
			if staleRecord(f, seq, off) {
				return gaps, nil
			}
			next, err := nextRecord(f, seq, off+1)
			if err != nil || next < 0 {
				return gaps, err
			}
			gaps = append(gaps, WALGap{Segment: path, Offset: off, Bytes: next - off})
			off = next
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return gaps, err
			}
			r.Reset(f)
			continue
		}
		off += 8 + int64(len(p))
		if err := fn(p, walPos{seg: seq, off: off}); err != nil {
			return gaps, fmt.Errorf("replay %s: %w", path, err)
		}
	}
}

// readRecord reads the next record of segment seq, if it is intact.
func readRecord(r io.Reader, seq uint64, hdr []byte) ([]byte, bool) {
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, false // end of segment, or a torn header
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n > maxWALRecord {
		return nil, false
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil || recordCRC(seq, p) != binary.LittleEndian.Uint32(hdr[4:]) {
		return nil, false
	}
	return p, true
}

// staleRecord reports whether the record at off is intact for one of the
// 64 sequence numbers before seq: a recycled segment's record from an
// earlier life, beyond the new ones.
func staleRecord(f *os.File, seq uint64, off int64) bool {
	var hdr [8]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return false
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:4]))
	if fi, err := f.Stat(); err != nil || off+8+n > fi.Size() {
		return false
	}
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off+8); err != nil {
		return false
	}
	for old := seq - 1; old > 0 && old+64 >= seq; old-- {
		if recordCRC(old, p) == binary.LittleEndian.Uint32(hdr[4:]) {
			return true
		}
	}
	return false
}

// nextRecord is the offset of the first intact record of segment seq at or
// after from, or -1. A stretch of random bytes passes as a record once in
// 2^32 tries of its CRC; most are not even tried, their length being past
// the end of the file.
func nextRecord(f *os.File, seq uint64, from int64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return -1, err
	}
	if from >= fi.Size() {
		return -1, nil
	}
	rest := make([]byte, fi.Size()-from)
	if _, err := f.ReadAt(rest, from); err != nil && !errors.Is(err, io.EOF) {
		return -1, err
	}
	for i := 0; i+8 <= len(rest); i++ {
		n := int(binary.LittleEndian.Uint32(rest[i:]))
		if n == 0 && binary.LittleEndian.Uint32(rest[i+4:]) == 0 {
			continue // zeros: preallocated, or a block never written
		}
		if n <= len(rest)-i-8 && recordCRC(seq, rest[i+8:i+8+n]) == binary.LittleEndian.Uint32(rest[i+4:]) {
			return from + int64(i), nil
		}
	}
	return -1, nil
}

// write appends payloads as records in one write and syncs them; applied
// is the first segment the database may still need. When it fails, the
// segment is cut back to its last good record and abandoned, so that a
// record whose request was refused is not replayed later.
func (w *wal) write(payloads [][]byte, beforeSync func() error, applied uint64) (walPos, error) {
	if w.f == nil || w.broken || w.pos.off >= walSegmentBytes {
		if err := w.rotate(applied); err != nil {
			return walPos{}, err
		}
	}
	w.buf = w.buf[:0]
	if w.pos.off == 0 {
		w.buf = append(w.buf, segmentHeader(w.pos.seg, w.id)...)
	}
	for _, p := range payloads {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(p)))
		w.buf = binary.LittleEndian.AppendUint32(w.buf, recordCRC(w.pos.seg, p))
		w.buf = append(w.buf, p...)
	}
	_, err := w.f.WriteAt(w.buf, w.pos.off)
	if err == nil && beforeSync != nil {
		err = beforeSync()
	}
	if err == nil {
		err = w.sync()
	}
	if err != nil {
		w.broken = true
		if terr := w.f.Truncate(w.pos.off); terr == nil {
			unix.Fdatasync(int(w.f.Fd()))
		}
		return walPos{}, err
	}
	w.pos.off += int64(len(w.buf))
	if cap(w.buf) > 4<<20 {
		w.buf = nil // one huge batch should not pin its buffer forever
	}
	return w.pos, nil
}

// rawSyncMax: after a sync slower than this, syncs release their P again.
const rawSyncMax = 5 * time.Millisecond

// sync is fdatasync of the current segment. Under load the sync's own
// latency is what bounds acknowledgements, and an ordinary system call
// hands its P away; when the call returns, the log writer then often waits
// behind request handlers for a P. With a P to spare (GOMAXPROCS above the
// CPU count, hookd's default) the call is made raw, keeping the P:
// measured +7% acknowledged events/s at 64 clients. A raw call cannot be
// preempted, so a garbage collection's stop-the-world waits for it; after
// a sync slower than rawSyncMax (a stalling disk) the ordinary call is
// used until syncs are fast again, which bounds that wait.
func (w *wal) sync() error {
	fd := w.f.Fd()
	start := time.Now()
	var err error
	if w.spareP && w.lastSync < rawSyncMax {
		if _, _, e := unix.RawSyscall(unix.SYS_FDATASYNC, fd, 0, 0); e != 0 {
			err = e
		}
	} else {
		err = unix.Fdatasync(int(fd))
	}
	w.lastSync = time.Since(start)
	return err
}

// rotate starts the next segment, recycling one that is fully applied
// (older than applied) and deleting the others, and syncs the directory so
// the new name survives a crash.
func (w *wal) rotate(applied uint64) error {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	seq := w.pos.seg + 1
	name := segmentPath(w.dir, seq)
	if seqs, err := segments(w.dir); err == nil {
		recycled := false
		for _, old := range seqs {
			if old >= applied {
				break
			}
			if !recycled && os.Rename(segmentPath(w.dir, old), name) == nil {
				recycled = true
				continue
			}
			os.Remove(segmentPath(w.dir, old))
		}
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	w.f, w.pos, w.broken = f, walPos{seg: seq}, false
	return nil
}

func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// walProbeBytes is the room a readiness probe asks for after a failed log
// write: an empty sync succeeds on a full disk, a batch of events would not.
const walProbeBytes = 1 << 20

// probeSpace reserves n bytes in a scratch file in dir and removes it.
func probeSpace(dir string, n int64) error {
	f, err := os.CreateTemp(dir, "probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("reserve %d bytes in %s: %w", n, dir, err)
	}
	return nil
}
