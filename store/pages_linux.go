package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleasePages takes the database pages the process has read through
// bbolt's memory map out of its resident set. The start reads every managed
// endpoint's record (tens of megabytes with 100,000 of them) and would
// otherwise keep those pages counted as the daemon's memory for good. They
// stay in the page cache: the next read faults them back in from there.
//
// It runs inside a read transaction because bbolt only remaps while none
// is open: the range advised is the current mapping, never memory the map
// left behind.
func (s *Store) ReleasePages() error {
	return s.db.View(func(tx *bolt.Tx) error {
		base, size := s.db.Info().Data, uintptr(tx.Size())
		// A raw syscall on the address bbolt reports: building a []byte
		// over the map for unix.Madvise would need an unsafe conversion.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, base, size, unix.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("release database pages: %w", errno)
		}
		return nil
	})
}
