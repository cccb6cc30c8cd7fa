package config

import (
	"fmt"

	"github.com/rs/zerolog"
)

// TypeRule says IsID in words, for error messages: the grammar of event
// types. IDRule says ValidID's.
const (
	TypeRule = "must be 1-128 characters of [A-Za-z0-9._:-]"
	IDRule   = TypeRule + ", not . or .."
)

// IsID reports whether s follows the grammar of event types, event ids,
// Idempotency-Keys and tenant ids (SPEC §3): 1-128 characters of
// [A-Za-z0-9._:-], one URL path segment each. A loop rather than a
// regexp: ingest checks two or three of them per event.
func IsID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idChar[s[i]] {
			return false
		}
	}
	return true
}

var idChar = func() (t [256]bool) {
	for _, r := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-" {
		t[r] = true
	}
	return t
}()

// ValidID reports whether s is a valid event id, Idempotency-Key or
// tenant id: IsID, and not "." or "..", so the admin API can look it up.
func ValidID(s string) bool {
	return s != "." && s != ".." && IsID(s)
}

// ParseLevel reads log.level.
func ParseLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("%q: must be debug, info, warn or error", s)
}
