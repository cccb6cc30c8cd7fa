//go:build !linux

package store

// ReleasePages is a no-op off Linux (see pages_linux.go).
func (s *Store) ReleasePages() error { return nil }
