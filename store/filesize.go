package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// ErrTruncated: the database file is shorter than its own pages reach (a
// copy cut short, a disk that filled while it was written). bbolt maps the
// file and would fault on the first read past its end, killing the process
// (check-db and the daemon's first query did), so Open and Inspect refuse
// it first.
var ErrTruncated = errors.New("database file is truncated")

// checkFileSize compares the file's size with what its current meta page
// says its pages reach (bbolt grows the file before it writes a meta that
// counts the new pages, so a whole file is never shorter). A file that is
// not yet a database (new, empty) passes: bbolt decides about it.
func checkFileSize(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// Meta 0 is at the start; meta 1 one page later, where bbolt looks for
	// it when meta 0 is torn too: at every power of two from 1 KiB.
	var best *boltMeta
	consider := func(off int64) {
		if m, ok := readMeta(f, off); ok && (best == nil || m.txid > best.txid) {
			best = &m
		}
	}
	consider(0)
	if best != nil {
		consider(int64(best.pageSize))
	} else {
		for i := range 15 {
			if off := int64(1024) << i; off < fi.Size()-1024 {
				consider(off)
			}
		}
	}
	if best == nil {
		return nil
	}
	// pgid first: a page is at least a byte, and the product of a crafted
	// pgid could overflow.
	if need := best.pgid * uint64(best.pageSize); best.pgid > uint64(fi.Size()) || need > uint64(fi.Size()) {
		return fmt.Errorf("%w: it has %d pages of %d bytes, the file %d bytes", ErrTruncated, best.pgid, best.pageSize, fi.Size())
	}
	return nil
}

// boltMeta is what checkFileSize reads of a bbolt meta page.
type boltMeta struct {
	pageSize   uint32
	pgid, txid uint64
}

// readMeta reads the meta page at off: a 16-byte page header, then magic,
// version, page size, flags (4 bytes each), the root bucket (16), the
// freelist page (8), the high-water page id, the transaction id and a
// checksum of what precedes it (8 each).
func readMeta(r io.ReaderAt, off int64) (boltMeta, bool) {
	var b [16 + 64]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	m, e := b[16:], binary.NativeEndian                        // bbolt writes its structs as they are in memory
	if e.Uint32(m[0:]) != 0xED0CDAED || e.Uint32(m[4:]) != 2 { // magic, version
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != e.Uint64(m[56:]) {
		return boltMeta{}, false // torn: bbolt uses the other one
	}
	return boltMeta{pageSize: e.Uint32(m[8:]), pgid: e.Uint64(m[40:]), txid: e.Uint64(m[48:])}, true
}
