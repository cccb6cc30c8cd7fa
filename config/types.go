package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Duration is a TOML string such as "5s" or "2h".
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"5s\", \"2h\")", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

const maxDays = uint64(math.MaxInt64 / int64(24*time.Hour))

// parseDuration is time.ParseDuration that also takes days ("5d",
// "1d12h"): retention and disable_after are naturally said in days.
func parseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	// time.Duration holds up to 106,751 days: more wrapped round to a
	// small value ("213504d" was 25m26s).
	n, err := strconv.ParseUint(days, 10, 32)
	if err != nil || n > maxDays {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	v := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 || v+r < v {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		v += r
	}
	return v, nil
}

// TimeOrAgo reads an RFC 3339 time, or a Duration (days too: "7d")
// meaning that long before now: the since and until of the API's and the
// CLI's queries, which take the durations the config file does.
func TimeOrAgo(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var ago Duration
		if err := ago.UnmarshalText([]byte(s)); err != nil {
			return time.Time{}, errors.New(`want an RFC 3339 time such as 2026-11-25T08:00:00Z, or a duration ago such as "1h" or "7d"`)
		}
		t = now.Add(-ago.D())
	}
	// Within what the store's keys hold (nanoseconds since 1970, unsigned):
	// nothing hookd stores is older or newer. Before 1970 a since found
	// nothing and an until bounded nothing.
	switch {
	case t.Before(timeFloor):
		return timeFloor, nil
	case t.After(timeCeiling):
		return timeCeiling, nil
	}
	return t, nil
}

var (
	timeFloor   = time.Unix(0, 0).UTC()
	timeCeiling = time.Unix(0, math.MaxInt64).UTC()
)

// MarshalText writes the value as a config file would: "5m" and "2h",
// not "5m0s" and "2h0m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(ShortDuration(time.Duration(d))), nil }

// ShortDuration is d.String() without the zero minutes and seconds it
// ends with (5m, 2h, 1h30m, 90s stays 1m30s); time.ParseDuration reads it.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count: a TOML integer or a string with a KiB/MiB/GiB
// suffix ("256KiB").
type Size int64

func (s *Size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("negative size %d", x)
		}
		*s = Size(x)
		return nil
	case string:
		n, err := parseSize(x)
		if err != nil {
			return err
		}
		*s = Size(n)
		return nil
	}
	return fmt.Errorf("size must be an integer or a string like \"256KiB\", not %s", tomlKind(v))
}

func parseSize(x string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(x)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(num, u.suf) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult { // more wrapped round to a small or negative size
		return 0, fmt.Errorf("invalid size %q (use e.g. 4096, \"4KiB\", \"1MiB\")", x)
	}
	return n * mult, nil
}

// EnvelopeSetting is `envelope = "standard"` or a table renaming fields.
type EnvelopeSetting struct {
	Standard   bool
	ID         *string
	Type       *string
	Time       *string
	Data       *string
	Tenant     *string
	TimeFormat string
	Static     map[string]json.RawMessage
}

func (e *EnvelopeSetting) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		if x != "standard" {
			return fmt.Errorf("envelope %q: must be \"standard\" or a table", x)
		}
		*e = EnvelopeSetting{Standard: true}
		return nil
	case map[string]any:
		*e = EnvelopeSetting{}
		for k, val := range x {
			switch k {
			case "id", "type", "time", "data", "tenant", "time_format":
				s, ok := val.(string)
				if !ok {
					return fmt.Errorf("envelope.%s must be a string", k)
				}
				switch k {
				case "id":
					e.ID = &s
				case "type":
					e.Type = &s
				case "time":
					e.Time = &s
				case "data":
					e.Data = &s
				case "tenant":
					e.Tenant = &s
				case "time_format":
					e.TimeFormat = s
				}
			case "static":
				m, ok := val.(map[string]any)
				if !ok {
					return fmt.Errorf("envelope.static must be a table")
				}
				e.Static = map[string]json.RawMessage{}
				for sk, sv := range m {
					if hasDate(sv) {
						// JSON has no dates: 07:32:00 would go out as
						// "0000-01-01T07:32:00Z".
						return fmt.Errorf("envelope.static.%s: a TOML date or time; write it as a string", sk)
					}
					b, err := json.Marshal(sv)
					if err != nil {
						return fmt.Errorf("envelope.static.%s: %v", sk, err)
					}
					e.Static[sk] = b
				}
			default:
				return fmt.Errorf("envelope: unknown key %q (id, type, tenant, time, data, time_format, static)", k)
			}
		}
		return nil
	}
	return fmt.Errorf("envelope must be \"standard\" or a table, not %s", tomlKind(v))
}

// hasDate says whether a decoded TOML value is or holds a date or time.
func hasDate(v any) bool {
	switch x := v.(type) {
	case time.Time:
		return true
	case []any:
		return slices.ContainsFunc(x, hasDate)
	case []map[string]any:
		for _, m := range x {
			if hasDate(m) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasDate(e) {
				return true
			}
		}
	}
	return false
}

// UnmarshalJSON takes what the API sends for a size: a number of bytes or
// a string such as "4KiB", as in the file.
func (s *Size) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if f, ok := v.(float64); ok {
		if f != float64(int64(f)) {
			return fmt.Errorf("size must be a whole number of bytes")
		}
		v = int64(f)
	}
	return s.UnmarshalTOML(v)
}

// UnmarshalJSON takes "standard" or an object with the keys of the file's
// envelope table.
func (e *EnvelopeSetting) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return e.UnmarshalTOML(v)
}

// MarshalJSON writes what UnmarshalJSON reads.
func (e EnvelopeSetting) MarshalJSON() ([]byte, error) {
	if e.Standard {
		return []byte(`"standard"`), nil
	}
	m := map[string]any{}
	for k, v := range map[string]*string{"id": e.ID, "type": e.Type, "time": e.Time, "data": e.Data, "tenant": e.Tenant} {
		if v != nil {
			m[k] = *v
		}
	}
	if e.TimeFormat != "" {
		m["time_format"] = e.TimeFormat
	}
	if e.Static != nil {
		m["static"] = e.Static
	}
	return json.Marshal(m)
}
