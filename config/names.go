package config

import (
	"fmt"
	"regexp"

	"github.com/rs/zerolog"
)

// IDRe is the grammar of event types, event ids, Idempotency-Keys and
// tenant ids (SPEC §3): one URL path segment each.
var IDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// IDRule says IDRe and ValidID in words, for error messages.
const IDRule = "must be 1-128 characters of [A-Za-z0-9._:-], not . or .."

// ValidID reports whether s is a valid event id, Idempotency-Key or
// tenant id: IDRe, and not "." or "..", so the admin API can look it up.
func ValidID(s string) bool {
	return s != "." && s != ".." && IDRe.MatchString(s)
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
