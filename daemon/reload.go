package daemon

import (
	"context"
	"fmt"
	"time"

	"hookd/config"
	"hookd/delivery"
)

// Reload re-reads the config file. Following nats-server: parse and
// validate the whole file, refuse changes to restart-only keys (config's
// reload classes), then swap everything at once. On any error the daemon
// keeps running the old config unchanged and the error is logged and
// returned.
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
	cfg, err := config.Load(d.ConfigPath)
	if err != nil {
		return err
	}
	if err := config.CheckReload(old, cfg); err != nil {
		return err
	}
	d.managed.mu.Lock()
	defer d.managed.mu.Unlock()
	cur := d.sched.Table() // its managed endpoints cannot change while mu is held
	if err := clashes(cfg, cur, d.managed.reserved); err != nil {
		return err
	}

	// Managed endpoints keep their settings; [defaults] may have changed
	// under them, so they are rebuilt, and a config under which one no
	// longer builds is refused, as it would be at the next start.
	now := time.Now()
	recs, err := d.store.ManagedEndpoints()
	if err != nil {
		return fmt.Errorf("read managed endpoints: %w", err)
	}
	rebuilt := make(map[string]*delivery.Endpoint, len(recs)) // by id
	for i := range recs {
		rec := &recs[i]
		if m := cur.Managed(rec.Name); m == nil || m.ID != rec.ID {
			continue // a create under way, committed but not yet in the table: it builds under this config itself (CreateEndpoint)
		}
		settings, secrets, err := decodeManaged(rec)
		if err != nil { // it decoded at start: not expected
			d.log.Error().Str("endpoint", rec.Name).Err(err).Msg("managed endpoint kept as it was")
			continue
		}
		if err := cfg.CheckPatterns(settings.Events); err != nil {
			d.log.Warn().Str("endpoint", rec.Name).Err(err).Msg("managed endpoint keeps working, though the new catalogue does not list its types")
		}
		ep, err := cfg.BuildManaged(rec.ID, &settings, secrets, now)
		if err != nil {
			return unbuildable(rec, err)
		}
		rebuilt[rec.ID] = ep
	}
	managed := cur.ManagedEndpoints()
	for i, ep := range managed {
		if r := rebuilt[ep.ID]; r != nil {
			managed[i] = r
		}
	}

	// Apply: from here nothing fails. Every live key is read from d.cfg
	// where it is used, except the endpoints and the log, set here.
	eps := cfg.AllEndpoints()
	removed := removedEndpoints(d.sched.Table().ConfigEndpoints(), eps)
	added := removedEndpoints(eps, d.sched.Table().ConfigEndpoints())
	if cfg.AdminToken() != old.AdminToken() {
		// Operator sessions end with the token they were made under, and
		// must not come back if it is changed back. Before the swap: one
		// made with the new token after it must stay. (A failure is only
		// logged: each old session is still refused, and deleted, at its
		// next use.)
		if n, err := d.store.DeleteOperatorSessions(context.Background()); err != nil {
			d.log.Error().Err(err).Msg("delete the operator sessions of the old admin token")
		} else if n > 0 {
			d.log.Info().Int("sessions", n).Msg("admin token changed: operator sessions ended")
		}
	}
	d.cfg.Store(cfg)
	d.sched.UpdateTable(func(t *delivery.Table) *delivery.Table { return t.WithConfig(eps).WithAllManaged(managed) }, added...)
	d.logOut.apply(cfg.Log)
	d.log.Info().Str("file", d.ConfigPath).Int("endpoints", len(eps)).Strs("removed", removed).Msg("config reloaded")

	if err := d.greetNewEndpoints(context.Background()); err != nil {
		d.log.Error().Err(err).Msg("record new endpoints")
	}
	// The managed records were read through the map, as at the start.
	if err := d.store.ReleasePages(); err != nil {
		d.log.Warn().Err(err).Msg("release the reload's database pages")
	}
	// Deliveries of removed endpoints are parked, never dropped; re-adding
	// the endpoint and redelivering them works.
	for _, name := range removed {
		n, err := d.store.ParkEndpoint(context.Background(), name, delivery.ReasonRemoved)
		if err != nil {
			d.log.Error().Err(err).Str("endpoint", name).Msg("park deliveries of removed endpoint; they are parked when they come due")
			continue
		}
		d.log.Warn().Str("endpoint", name).Int("parked", n).Msg("endpoint removed; its pending deliveries are undeliverable")
	}
	return nil
}

// removedEndpoints are the ids in old that eps no longer has (and, the
// other way round, the ids eps adds).
func removedEndpoints(old, eps []*delivery.Endpoint) []string {
	keep := map[string]bool{}
	for _, e := range eps {
		keep[e.ID] = true
	}
	var out []string
	for _, e := range old {
		if !keep[e.ID] {
			out = append(out, e.ID)
		}
	}
	return out
}
