package daemon

import (
	"context"
	"errors"
	"fmt"

	"hookd/delivery"
)

// ErrNotReloadable: the new file changes a key that only a restart can
// change. The running config is kept.
var ErrNotReloadable = errors.New("cannot change on reload; restart hookd to apply")

// Reload re-reads the config file. Following nats-server: parse and
// validate the whole file, diff it against the running config, refuse
// changes that cannot apply live, then swap everything at once. On any
// error the daemon keeps running the old config unchanged and the error is
// logged and returned.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.notify("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", monotonicUsec()))
	defer d.notify("READY=1")

	err := d.reload()
	if err != nil {
		d.log.Error().Str("file", d.ConfigPath).Err(err).Msg("reload failed; keeping the running config")
	}
	return err
}

func (d *Daemon) reload() error {
	old := d.cfg.Load()
	cfg, err := LoadConfig(d.ConfigPath)
	if err != nil {
		return err
	}
	if err := fixedKeys(old, cfg); err != nil {
		return err
	}
	eps, err := buildEndpoints(cfg)
	if err != nil {
		return err
	}

	// Apply: from here nothing fails.
	removed := removedEndpoints(d.sched.Table(), eps)
	d.cfg.Store(cfg)
	d.sched.SetTable(eps)
	setLevel(cfg.Log.Level)
	d.log.Info().Str("file", d.ConfigPath).Int("endpoints", len(eps)).Strs("removed", removed).Msg("config reloaded")

	if err := d.greetNewEndpoints(context.Background()); err != nil {
		d.log.Error().Err(err).Msg("record new endpoints")
	}
	// Deliveries of removed endpoints are parked, never dropped; re-adding
	// the endpoint and redelivering them works.
	for _, name := range removed {
		n, err := d.store.ParkEndpoint(context.Background(), name, "endpoint removed")
		if err != nil {
			d.log.Error().Err(err).Str("endpoint", name).Msg("park deliveries of removed endpoint; they are parked when they come due")
			continue
		}
		d.log.Warn().Str("endpoint", name).Int("parked", n).Msg("endpoint removed; its pending deliveries are undeliverable")
	}
	return nil
}

// fixedKeys rejects changes to settings bound at Open.
func fixedKeys(old, cfg *Config) error {
	for _, k := range []struct {
		key      string
		was, now any
	}{
		{"ingest.listen", old.Ingest.Listen, cfg.Ingest.Listen},
		{"ingest.max_event_bytes", old.Ingest.MaxEventBytes, cfg.Ingest.MaxEventBytes},
		{"ingest.max_inflight_bytes", old.Ingest.MaxInflight, cfg.Ingest.MaxInflight},
		{"ingest.read_timeout", old.Ingest.ReadTimeout, cfg.Ingest.ReadTimeout},
		{"ingest.idle_timeout", old.Ingest.IdleTimeout, cfg.Ingest.IdleTimeout},
		{"ingest.max_connections", old.Ingest.MaxConnections, cfg.Ingest.MaxConnections},
		{"delivery.deny_networks", fmt.Sprint(old.Delivery.DenyNetworks), fmt.Sprint(cfg.Delivery.DenyNetworks)},
		{"admin.listen", old.Admin.Listen, cfg.Admin.Listen},
		{"storage.path", old.Storage.Path, cfg.Storage.Path},
		{"delivery.workers", old.Delivery.Workers, cfg.Delivery.Workers},
		{"delivery.shutdown_timeout", old.Delivery.ShutdownTimeout, cfg.Delivery.ShutdownTimeout},
	} {
		if k.was != k.now {
			return cfg.errAt(k.key, "%v (was %v, now %v)", ErrNotReloadable, k.was, k.now)
		}
	}
	return nil
}

func removedEndpoints(t *delivery.Table, eps []*delivery.Endpoint) []string {
	keep := map[string]bool{}
	for _, e := range eps {
		keep[e.Name] = true
	}
	var out []string
	for _, e := range t.All() {
		if !keep[e.Name] {
			out = append(out, e.Name)
		}
	}
	return out
}
