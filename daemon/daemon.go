package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"hookd/api"
	"hookd/config"
	"hookd/delivery"
	"hookd/store"
)

// Version is set at build time with -ldflags "-X hookd/daemon.Version=…".
var Version = "0.1.0-dev"

// Daemon is one running hookd: store, scheduler, ingest and admin
// listeners. Open starts it; Close stops it.
type Daemon struct {
	// Set before Open.
	ConfigPath string
	LogOutput  io.Writer             // default os.Stdout
	StoreHooks store.Options         // tests: fault injection
	PortalNow  func() time.Time      // tests: the portal's clock (nil: time.Now)
	Notify     func(state ...string) // sd_notify; nil outside systemd
	// ReloadBuilt (tests) runs when a reload has built the managed
	// endpoints, before it holds them.
	ReloadBuilt func()
	// BackupWriteTimeout is how long a GET /v1/backup client may take to
	// read each MiB before the backup is abandoned; 0 means 30s.
	BackupWriteTimeout time.Duration

	cfg    atomic.Pointer[config.Config]
	log    zerolog.Logger
	logOut *logOutput
	store  *store.Store
	sched  *delivery.Scheduler

	ingestLn, adminLn   net.Listener
	ingestSrv, adminSrv *fasthttp.Server
	portal              portalParts // see portal.go

	out      outbox
	alerts   openAlerts
	managed  managedSet
	backups  backupSet
	budget   byteBudget
	closing  atomic.Bool
	lowDisk  atomic.Bool // free space under storage.min_free_bytes
	reloadMu sync.Mutex
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
}

// New returns a daemon for cfg (already loaded with config.Load).
func New(cfg *config.Config) *Daemon {
	d := &Daemon{ConfigPath: cfg.Path()}
	d.cfg.Store(cfg)
	return d
}

// Config is the configuration in force.
func (d *Daemon) Config() *config.Config { return d.cfg.Load() }

// IngestAddr and AdminAddr are the bound addresses (useful with port 0).
func (d *Daemon) IngestAddr() string { return d.ingestLn.Addr().String() }
func (d *Daemon) AdminAddr() string  { return d.adminLn.Addr().String() }

// Open opens the database, binds both listeners and starts every
// goroutine. Errors are returned here, synchronously; on error nothing is
// left running.
func (d *Daemon) Open() (err error) {
	cfg := d.cfg.Load()
	if d.LogOutput == nil {
		d.LogOutput = os.Stdout
	}
	d.log, d.logOut = newLogger(d.LogOutput, cfg.Log)

	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	opts := d.StoreHooks
	opts.SealKey = cfg.SealKey
	opts.OnQueued = func(e []store.QueueEntry) { d.sched.OnQueued(e) }
	// Asked when a delivery is queued: by then the scheduler exists (no
	// event is taken before Open returns; the log replays before that
	// without asking).
	opts.Ordered = func(id string) bool {
		t := d.sched.Table()
		if !t.AnyOrdered() {
			return false // a lookup in a cold map for each delivery
		}
		ep := t.ByID(id)
		return ep != nil && ep.Ordered()
	}
	if d.store, err = store.Open(cfg.Storage.Path, opts); err != nil {
		return err
	}
	closers = append(closers, func() { d.store.Close() })
	if n := d.store.Resealed(); n > 0 {
		d.log.Info().Int("secrets", n).Msg("sealed stored secrets with storage.secrets_key_file")
	}
	if err := d.store.CompactError(); err != nil {
		d.log.Warn().Err(err).Msg("the secrets are sealed, but the database file could not be compacted: their clear copies stay in its free pages (and in backups) until reused; the next start tries again")
	}
	if n := d.store.Replayed(); n > 0 {
		d.log.Warn().Int("events", n).Msg("applied events from the write-ahead log that the database did not have: the last stop was not clean, could not write them (a full disk), or this is a restored copy next to its source's log")
	}
	for _, path := range d.store.UnreadableSegments() {
		d.log.Warn().Str("segment", path).Msg("write-ahead log segment without a valid header; nothing replayed from it " +
			"(a first write torn by a crash, never acknowledged; or the file was written over, and what it held is lost)")
	}
	for _, g := range d.store.DamagedLog() {
		d.log.Error().Str("segment", g.Segment).Int64("offset", g.Offset).Int64("bytes", g.Bytes).Msg("write-ahead log damaged on disk: " +
			"the records after the damaged bytes were replayed; events held in them are lost (check the disk)")
	}

	states, err := d.store.EndpointStates()
	if err != nil {
		return fmt.Errorf("read endpoint states: %w", err)
	}
	// A tenant's config endpoint had its name as id before it was
	// name@tenant (config.ConfigID): its state (disabled, first seen)
	// moves to the new id once, so an upgrade re-enables nothing.
	for _, ep := range cfg.Resolved {
		old, has := states[ep.Name]
		if _, done := states[ep.ID]; ep.ID == ep.Name || !has || done {
			continue
		}
		if err := d.store.MoveEndpointState(context.Background(), ep.Name, ep.ID); err != nil {
			return fmt.Errorf("move endpoint %s's state to its id %s: %w", ep.Name, ep.ID, err)
		}
		states[ep.ID] = old
		delete(states, ep.Name)
		d.log.Info().Str("endpoint", ep.Name).Str("id", ep.ID).Msg("endpoint state moved to the id that binds it to its tenant")
	}
	// The [notify] target is never disabled now (config: KeepOn410, no
	// disable_after); one disabled by an earlier build, whose admin API
	// could not enable it, is enabled.
	if s := states[config.NotifyEndpoint]; s.Disabled {
		enable := func(es *store.EndpointState) error {
			es.Disabled, es.Reason, es.By, es.Since = false, "", "", time.Now().UTC()
			return nil
		}
		if err := d.store.UpdateEndpointState(context.Background(), config.NotifyEndpoint, enable); err != nil {
			return fmt.Errorf("enable the [notify] target: %w", err)
		}
		d.log.Warn().Str("reason", s.Reason).Msg("the [notify] target had been disabled; enabled (its notifications parked meanwhile: hookd undeliverable redeliver -endpoint " + config.NotifyEndpoint + ")")
		enable(&s)
		states[config.NotifyEndpoint] = s
	}
	disabled := map[string]bool{}
	for name, s := range states {
		if s.Disabled {
			disabled[name] = true
		}
	}
	managed, err := d.loadManaged(cfg)
	if err != nil {
		return err
	}
	table := delivery.NewTable(cfg.AllEndpoints(), disabled).WithAllManaged(managed)
	if err := clashes(cfg, table, nil); err != nil {
		return err
	}
	d.parkRemoved(table, states)
	sender := delivery.NewSender(Version, cfg.Delivery.Deny)
	d.sched, err = delivery.New(d.store, sender, table, delivery.Options{
		Workers: cfg.Delivery.Workers, ShutdownTimeout: cfg.Delivery.ShutdownTimeout.D(), Log: d.log,
		OnOutcome: d.onOutcome,
	})
	if err != nil {
		return err
	}
	d.out.wake = make(chan struct{}, 1)

	ln, err := listen(cfg.Ingest.Listen)
	if err != nil {
		return fmt.Errorf("ingest listener: %w", err)
	}
	d.ingestLn = newCapListener(ln, cfg.Ingest.MaxConnections, cfg.Ingest.IdleTimeout.D(), func() { rejected(503) })
	closers = append(closers, func() { d.ingestLn.Close() })
	if d.adminLn, err = listen(cfg.Admin.Listen); err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	closers = append(closers, func() { d.adminLn.Close() })
	if err := d.openPortal(cfg, &closers); err != nil {
		return err
	}
	d.warnOpenListeners(cfg)
	sender.SetSelf(listenerAddrs(d.listeners()...))

	d.budget.limit = int64(cfg.Ingest.MaxInflight)
	d.ingestSrv = d.newIngestServer(cfg)
	d.adminSrv = d.newAdminServer()

	// The start's garbage (decoding 100,000 stored endpoints is most of a
	// hundred megabytes) is collected before the listeners serve, rather
	// than by the first collection under the first seconds of traffic.
	runtime.GC()

	var ctx context.Context
	ctx, d.cancel = context.WithCancel(context.Background())
	d.sched.Start()
	d.serve(d.ingestSrv, d.ingestLn)
	d.serve(d.adminSrv, d.adminLn)
	d.startPortal(ctx)
	d.checkDisk()
	d.every(ctx, time.Second, func(context.Context) { d.checkDisk() })
	d.every(ctx, time.Minute, d.purge)
	d.every(ctx, time.Second, d.disableFailing)
	d.wg.Add(1)
	go d.runOutbox(ctx)
	if err := d.greetNewEndpoints(ctx); err != nil {
		d.log.Error().Err(err).Msg("record new endpoints")
	}
	if iv, _ := sdaemon.SdWatchdogEnabled(false); iv > 0 && d.Notify != nil {
		d.every(ctx, iv/2, func(context.Context) { d.feedWatchdog(iv) })
	}
	if err := d.store.ReleasePages(); err != nil {
		d.log.Warn().Err(err).Msg("release the start's database pages")
	}
	d.notify("READY=1", "STATUS=delivering webhooks")

	d.log.Info().Str("ingest", d.IngestAddr()).Str("admin", d.AdminAddr()).Str("db", cfg.Storage.Path).
		Int("endpoints", len(cfg.AllEndpoints())+table.ManagedCount()).Int64("pending", d.store.Pending()).Str("version", Version).Msg("hookd started")
	return nil
}

func (d *Daemon) serve(srv *fasthttp.Server, ln net.Listener) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			d.log.Error().Err(err).Str("listen", ln.Addr().String()).Msg("listener stopped")
		}
	}()
}

func isLoopback(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *Daemon) warnOpenListeners(cfg *config.Config) {
	if !isLoopback(cfg.Ingest.Listen) && cfg.Ingest.Token == "" && cfg.Ingest.TokenFile == "" {
		d.log.Warn().Str("listen", cfg.Ingest.Listen).Msg("ingest listens beyond loopback without a token: anyone who can reach it can send webhooks")
	}
	if !isLoopback(cfg.Admin.Listen) && cfg.Admin.Token == "" && cfg.Admin.TokenFile == "" {
		d.log.Warn().Str("listen", cfg.Admin.Listen).Msg("admin API listens beyond loopback without a token")
	}
}

// checkDisk compares the free space of the database's file system with
// storage.min_free_bytes, so ingest refuses (503) before a commit would
// fail for lack of space; deliveries keep going and free space themselves.
func (d *Daemon) checkDisk() {
	need := uint64(d.cfg.Load().Storage.MinFreeBytes)
	var st unix.Statfs_t
	if need == 0 || unix.Statfs(filepath.Dir(d.store.Path()), &st) != nil {
		d.lowDisk.Store(false)
		return
	}
	free := st.Bavail * uint64(st.Bsize)
	if low := free < need; low != d.lowDisk.Swap(low) {
		if low {
			d.log.Error().Uint64("free_bytes", free).Uint64("min_free_bytes", need).Msg("disk nearly full: refusing new events")
		} else {
			d.log.Info().Uint64("free_bytes", free).Msg("disk space recovered: accepting events")
		}
	}
}

// every runs fn every interval on a tracked goroutine until ctx ends.
func (d *Daemon) every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
}

// purge deletes expired events and dedup keys (every minute).
func (d *Daemon) purge(ctx context.Context) {
	cfg := d.cfg.Load()
	now := time.Now()
	n, err := d.store.Purge(ctx, now, store.Retention{Delivered: cfg.Storage.Retention.D(), Undeliverable: cfg.Storage.UndeliverableRetention.D()})
	if err != nil && ctx.Err() == nil {
		d.log.Error().Err(err).Msg("purge events")
	}
	k, err := d.store.PurgeDedup(ctx, now)
	if err != nil && ctx.Err() == nil {
		d.log.Error().Err(err).Msg("purge dedup keys")
	}
	if n+k > 0 {
		d.log.Info().Int("events", n).Int("dedup_keys", k).Msg("purged")
	}
}

// Close stops the daemon in reverse order of Open: ingest starts refusing
// with 503, in-flight attempts get up to shutdown_timeout, the listeners
// and background work stop, the notifications the last outcomes raised are
// stored, and the database is closed cleanly. Whatever was not delivered is
// still pending in the database.
func (d *Daemon) Close() error {
	var err error
	d.once.Do(func() {
		d.closing.Store(true)
		d.backups.abort()
		d.notify("STOPPING=1")
		d.log.Info().Msg("shutting down")
		d.sched.Close()
		d.closePortal()
		for i, srv := range []*fasthttp.Server{d.ingestSrv, d.adminSrv} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if e := srv.ShutdownWithContext(ctx); e != nil && !errors.Is(e, context.DeadlineExceeded) {
				d.log.Warn().Err(e).Msg("listener shutdown")
			}
			cancel()
			// Shutdown only closes a listener Serve has already picked up;
			// close ours too so a Serve that starts late returns at once.
			[]net.Listener{d.ingestLn, d.adminLn}[i].Close()
		}
		d.cancel()
		d.wg.Wait()
		d.backups.wait()
		// The last outcomes raise their notifications only once committed
		// (onOutcome runs after the commit): commit them, then store what
		// they raised, while the store still takes writes. Undelivered
		// notifications are pending like any delivery and sent after a
		// restart.
		d.store.Flush()
		d.flushOutbox()
		err = d.store.Close()
		if evs := d.out.take(); len(evs) > 0 {
			d.log.Error().Int("events", len(evs)).Msg("generated events (notifications, test events) raised while the database closed were not stored")
		}
		d.log.Info().Err(err).Msg("stopped")
	})
	return err
}

// The daemon is the one implementation of the scoped operations.
var _ api.Operations = (*Daemon)(nil)

// parkRemoved parks, as a reload does, the pending deliveries of config
// endpoints the file no longer has (removed while hookd was stopped, or
// between a reload's swap of the table and its parking, by a crash), and
// of managed endpoints deleted without their parking (a crash between the
// delete's commit and it; every stored one is in the table, or the start
// failed): otherwise they wait for their next attempt, hours away, and
// count against max_pending until then. Likewise the pending deliveries
// of disabled endpoints, whose disable's parking a stop cut short (states
// gives its reason): left pending, an enable without a redeliver sent
// them all. A failure is logged, as at a reload: those deliveries are
// then parked when they come due.
func (d *Daemon) parkRemoved(t *delivery.Table, states map[string]store.EndpointState) {
	reasons := map[string]string{} // by id, for one scan of the queue
	var removed, deleted, disabled []string
	for id, n := range d.store.PendingByEndpoint() {
		switch {
		case n == 0:
		case t.ByID(id) != nil && t.Disabled(id):
			disabled = append(disabled, id)
			reasons[id] = cmp.Or(states[id].Reason, delivery.ReasonDisabled)
		case t.ByID(id) != nil:
		case delivery.IsManagedID(id):
			deleted = append(deleted, id)
			reasons[id] = delivery.ReasonDeleted
		default:
			// After the upgrade to name@tenant ids, every tenant config
			// endpoint's old id is here.
			removed = append(removed, id)
			reasons[id] = delivery.ReasonRemoved
		}
	}
	if len(reasons) == 0 {
		return
	}
	parked, err := d.store.ParkEndpointsFor(context.Background(), reasons)
	if err != nil {
		d.log.Error().Err(err).Int("parked", parked).Msg("park deliveries of removed, deleted or disabled endpoints; the rest are parked when they come due")
		return
	}
	for _, gone := range []struct {
		ids []string
		msg string
	}{
		{removed, "endpoints removed while hookd was stopped; their pending deliveries are undeliverable"},
		{deleted, "managed endpoints deleted before a crash parked their deliveries; they are undeliverable"},
		{disabled, "disabled endpoints whose parking a stop cut short; their pending deliveries are undeliverable"},
	} {
		if len(gone.ids) > 0 {
			d.log.Warn().Strs("endpoints", gone.ids).Msg(gone.msg)
		}
	}
	d.log.Warn().Int("parked", parked).Msg("pending deliveries of removed, deleted or disabled endpoints parked at start")
}
