package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Class says what a reload may do with a key.
type Class int

const (
	// Live keys take effect on SIGHUP.
	Live Class = iota + 1
	// RestartOnly keys are bound at start (listeners, the database, the
	// worker pool); a reload that changes one is refused.
	RestartOnly
)

// reloadClass sorts every key into one of the two classes, as
// nats-server's reload does: TestEveryKeyIsClassed fails for a key that
// is in neither, so a new key cannot be silently accepted by a reload and
// never applied. Tables whose keys all share a class are listed whole.
var reloadClass = map[string]Class{
	"ingest.listen":             RestartOnly,
	"ingest.token":              Live,
	"ingest.token_file":         Live,
	"ingest.max_event_bytes":    RestartOnly,
	"ingest.max_inflight_bytes": RestartOnly,
	"ingest.read_timeout":       RestartOnly,
	"ingest.idle_timeout":       RestartOnly,
	"ingest.max_connections":    RestartOnly,

	"admin.listen":        RestartOnly,
	"admin.token":         Live,
	"admin.token_file":    Live,
	"admin.pprof":         Live,
	"admin.allowed_hosts": Live,

	"portal.listen":          RestartOnly,
	"portal.public_url":      Live,
	"portal.session_ttl":     Live,
	"portal.frame_ancestors": Live,
	"portal.title":           Live,
	"portal.key_file":        RestartOnly,

	"storage.path":                    RestartOnly,
	"storage.retention":               Live,
	"storage.undeliverable_retention": Live,
	"storage.dedup_window":            Live,
	"storage.max_pending":             Live,
	"storage.min_free_bytes":          Live,
	"storage.secrets_key_file":        RestartOnly,

	"delivery.workers":          RestartOnly,
	"delivery.shutdown_timeout": RestartOnly,
	"delivery.deny_networks":    RestartOnly,

	"log.level":  Live,
	"log.format": Live,

	"defaults":  Live,
	"endpoints": Live,
	"notify":    Live,

	"tenants.deny_networks": RestartOnly,
	"tenants.max_endpoints": Live,
	"tenants.max_pending":   Live,

	"event_types": Live,
}

// ErrNotReloadable: the new file changes a key that only a restart can
// change. The running config is kept.
var ErrNotReloadable = errors.New("cannot change on reload; restart hookd to apply")

// CheckReload refuses a new config that changes a restart-only key of
// the running one, naming the key and both values.
func CheckReload(old, cfg *Config) error {
	keys := make([]string, 0, len(reloadClass))
	for k, c := range reloadClass {
		if c == RestartOnly {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		was, now := valueAt(old, k), valueAt(cfg, k)
		if !reflect.DeepEqual(was, now) {
			err := cfg.ErrAt(k, "%v (was %v, now %v)", ErrNotReloadable, was, now)
			err.(*ConfigError).Err = ErrNotReloadable
			return err
		}
	}
	// The same key files with other keys in them: taken by a reload, the
	// secrets key's change showed only at the next start, which refused
	// the database sealed with the old one.
	for k, same := range map[string]bool{
		"storage.secrets_key_file": old.SealKey.Same(cfg.SealKey),
		"portal.key_file":          bytes.Equal(old.PortalKey, cfg.PortalKey),
	} {
		if !same {
			err := cfg.ErrAt(k, "%v (the file holds another key now; the one read at the start stays in use until a restart)", ErrNotReloadable)
			err.(*ConfigError).Err = ErrNotReloadable
			return err
		}
	}
	return nil
}

// valueAt reads the value of a dotted key by the struct's toml tags.
func valueAt(c *Config, key string) any {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		v = fieldByTag(v, part)
		if !v.IsValid() {
			panic(fmt.Sprintf("config: no key %q", key))
		}
	}
	return v.Interface()
}

func fieldByTag(v reflect.Value, tag string) reflect.Value {
	if f, ok := fieldOf(v.Type(), tag); ok {
		return v.FieldByIndex(f.Index)
	}
	return reflect.Value{}
}

// Keys lists every key of the file: a section's keys as "section.key",
// and the tables reloadClass lists whole by their name.
func Keys() []string {
	var out []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		sec, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if sec == "" || sec == "-" {
			continue
		}
		if _, whole := reloadClass[sec]; whole || t.Field(i).Type.Kind() != reflect.Struct {
			out = append(out, sec)
			continue
		}
		ft := t.Field(i).Type
		for j := range ft.NumField() {
			if k, _, _ := strings.Cut(ft.Field(j).Tag.Get("toml"), ","); k != "" && k != "-" {
				out = append(out, sec+"."+k)
			}
		}
	}
	return out
}

// ClassOf is a key's reload class (0 for a key in neither).
func ClassOf(key string) Class { return reloadClass[key] }
