package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
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

	// Managed endpoints keep their settings; [defaults] may have changed
	// under them, so they are rebuilt, and a config under which one no
	// longer builds is refused, as it would be at the next start. They are
	// built, and indexed, before the managed set is held (built under it,
	// 100,000 held every change of every tenant for ~1.5 s), from the table
	// as it was before their records were read: holding the set, the
	// reload builds again only what was changed since (every change
	// commits, then swaps in a new endpoint, while it holds the set).
	before := d.sched.Table()
	recs, err := d.store.ManagedEndpoints()
	if err != nil {
		return fmt.Errorf("read managed endpoints: %w", err)
	}
	now := time.Now()
	byID := make(map[string]*built, len(recs))
	all := buildManaged(cfg, recs, now)
	for i := range recs {
		byID[recs[i].ID] = &all[i]
	}
	managed := before.ManagedEndpoints()
	failed := map[string]error{} // by id: refuses the config unless the endpoint changed meanwhile
	for i, ep := range managed {
		switch b := byID[ep.ID]; {
		case b == nil: // deleted since the table was taken: the set's check leaves it out
		case b.undecodable: // it decoded at start: not expected
			d.log.Error().Str("endpoint", ep.Name).Err(b.err).Msg("managed endpoint kept as it was")
		case b.err != nil:
			failed[ep.ID] = b.err
		default:
			managed[i] = b.ep
		}
	}
	next := before.WithAllManaged(managed)
	// The records were read through the map, as at the start.
	if err := d.store.ReleasePages(); err != nil {
		d.log.Warn().Err(err).Msg("release the reload's database pages")
	}
	if d.ReloadBuilt != nil {
		d.ReloadBuilt()
	}

	removed, err := d.applyReload(old, cfg, before, next, failed, now)
	if err != nil {
		return err
	}
	d.log.Info().Str("file", d.ConfigPath).Int("endpoints", len(cfg.AllEndpoints())).Strs("removed", removed).Msg("config reloaded")
	for _, ep := range d.sched.Table().ManagedEndpoints() {
		if err := cfg.CheckPatterns(ep.Events); err != nil {
			d.log.Warn().Str("endpoint", ep.Name).Err(err).Msg("managed endpoint keeps working, though the new catalogue does not list its types")
		}
	}
	if err := d.greetNewEndpoints(context.Background()); err != nil {
		d.log.Error().Err(err).Msg("record new endpoints")
	}
	// Deliveries of removed endpoints are parked, never dropped; re-adding
	// the endpoint and redelivering them works. After the set is let go:
	// a scan of a large queue would hold every managed change.
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

// applyReload makes cfg current, holding the managed set: next has the
// managed endpoints of the table before built under cfg (failed: those
// that did not build); what changed since is built here. It returns the
// ids of the config endpoints cfg removes; on an error nothing changed.
func (d *Daemon) applyReload(old, cfg *config.Config, before, next *delivery.Table, failed map[string]error, now time.Time) ([]string, error) {
	d.managed.mu.Lock()
	defer d.managed.mu.Unlock()
	cur := d.sched.Table() // its managed endpoints cannot change while mu is held
	if err := clashes(cfg, cur, d.managed.reserved); err != nil {
		return nil, err
	}
	// (A create committed but not yet in the table builds under this
	// config itself: CreateEndpoint.)
	changed, deleted := cur.ManagedChanges(before)
	for _, ep := range deleted {
		delete(failed, ep.ID)
		next = next.WithoutManaged(ep.Name)
	}
	for _, ep := range changed {
		delete(failed, ep.ID)
		rec, err := d.store.ManagedEndpoint(ep.ID)
		if err != nil {
			return nil, fmt.Errorf("read managed endpoint %s: %w", ep.Name, err)
		}
		switch b := buildRecord(cfg, &rec, now); {
		case b.undecodable:
			d.log.Error().Str("endpoint", ep.Name).Err(b.err).Msg("managed endpoint kept as it was")
			next = next.WithManaged(ep)
		case b.err != nil:
			return nil, b.err
		default:
			next = next.WithManaged(b.ep)
		}
	}
	if len(failed) > 0 { // the first by id, as at the start
		return nil, failed[slices.Min(slices.Collect(maps.Keys(failed)))]
	}

	// Apply: from here nothing fails. Every live key is read from d.cfg
	// where it is used, except the endpoints and the log, set here.
	eps := cfg.AllEndpoints()
	removed := removedEndpoints(cur.ConfigEndpoints(), eps)
	added := removedEndpoints(eps, cur.ConfigEndpoints())
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
	d.sched.UpdateTable(func(t *delivery.Table) *delivery.Table { return t.WithConfig(eps).WithManagedOf(next) }, added...)
	d.logOut.apply(cfg.Log)
	return removed, nil
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
