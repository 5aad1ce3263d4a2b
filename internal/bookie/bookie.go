package bookie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/journal"
	"github.com/dlog-io/dlog/internal/ledgerstore"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// stripeCount is the number of ledger mutexes (see Bookie.stripes).
const stripeCount = 256

// grpcOverheadBytes is what a message may hold beyond an entry's payload.
const grpcOverheadBytes = 64 << 10

// Bookie is a running storage node. See the package documentation.
type Bookie struct {
	cfg    Config
	fs     vfs.FS
	log    *slog.Logger
	id     string
	addr   string // advertised
	cookie cookie

	journal *journal.Journal
	store   *ledgerstore.Store
	ln      net.Listener
	grpc    *grpc.Server
	met     *metrics
	lacs    lacWatchers

	// stripes serialise, per ledger, "check the ledger's state" with
	// "append the journal record" for adds, and "change the state" with
	// "append the record" for fences and deletes (see doc.go, "Ordering").
	stripes [stripeCount]stripe

	stopc     chan struct{} // closed by Close
	runCtx    context.Context
	cancelRun context.CancelFunc
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	bg        sync.WaitGroup // checkpointer, disk monitor, registrar
	serving   sync.WaitGroup // the gRPC Serve loop
	reqs      sync.WaitGroup // stream receive loops and request goroutines

	// applied is the journal position just after the last record whose
	// effects are in the store: written by journal callbacks (in journal
	// order, on the journal's goroutine), read by checkpoints. Once a
	// record could not be applied, frozen stops it for good, so no
	// checkpoint ever covers that record.
	applied struct {
		sync.Mutex
		pos    journal.Position
		frozen bool
	}
	// ckptMu serialises checkpoints.
	ckptMu sync.Mutex
	// flushReq asks the checkpointer for a flush now (cap 1, coalescing).
	flushReq chan struct{}
	// flushed is closed and replaced after every flush attempt; err is the
	// attempt's result. Appliers waiting for write-cache room wait on it.
	flushed struct {
		sync.Mutex
		ch  chan struct{}
		err error
	}

	// health is the read-only state. failed is sticky (journal or store
	// failure); diskFull comes and goes with the disk monitor.
	health struct {
		sync.Mutex
		failed   string
		diskFull string
		disk     DiskStats
	}
	readOnly    atomic.Bool // failed != "" || diskFull != ""
	storeFailed atomic.Bool // explicit negatives become IO_ERROR
	// limbo is set (for good) when a journal replay cut records that may
	// have been acknowledged: explicit negatives become IO_ERROR.
	limbo        atomic.Pointer[limboState]
	stateChanged chan struct{} // to the registrar; cap 1, coalescing
	registered   atomic.Bool

	longPolls atomic.Int64

	// streams are the live client streams (for the in-flight gauge).
	streams struct {
		sync.Mutex
		m map[*stream]struct{}
	}
	// apply is the journal callbacks' scratch for stored entries (the
	// store copies what AddEntry is given).
	apply struct {
		sync.Mutex
		buf []byte
	}
}

// Open starts a bookie: it checks the identity cookies, opens the journal
// and the ledger store, replays the journal from the store's checkpoint
// mark, starts listening and serving, and starts its background goroutines.
// ctx bounds the metadata calls made while starting. Close stops it.
//
// Errors: ErrIdentity (an *IdentityError) when the directories do not
// belong to this bookie; configuration, listen, I/O and metadata errors.
func Open(ctx context.Context, cfg Config) (*Bookie, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FS == nil {
		// A no-op unless built with -tags dlogbugs and DLOG_FAILPOINTS
		// asks for a fault (the verify fsync-eio scenario).
		cfg.FS = bugs.WrapFS(vfs.Default)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("bookie: listen %s: %w", cfg.ListenAddr, err)
	}
	b, err := open(ctx, cfg, ln)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return b, nil
}

func open(ctx context.Context, cfg Config, ln net.Listener) (*Bookie, error) {
	fs := cfg.FS
	addr := cfg.AdvertiseAddr
	if addr == "" {
		addr = advertised(ln.Addr())
	}
	id := cfg.ID
	if id == "" {
		id = addr
		if err := metadata.ValidateID(id); err != nil {
			return nil, fmt.Errorf("bookie: advertised address as id: %w", err)
		}
	}
	ck, err := checkIdentity(ctx, cfg, fs, id, addr)
	if err != nil {
		return nil, err
	}
	b := &Bookie{
		cfg:          cfg,
		fs:           fs,
		log:          cfg.Logger.With("bookie", id),
		id:           id,
		addr:         addr,
		cookie:       ck,
		ln:           ln,
		stopc:        make(chan struct{}),
		flushReq:     make(chan struct{}, 1),
		stateChanged: make(chan struct{}, 1),
	}
	b.met = newMetrics(b.inFlightRequests, func() float64 {
		if b.limbo.Load() != nil {
			return 1
		}
		return 0
	})
	b.streams.m = make(map[*stream]struct{})
	b.flushed.ch = make(chan struct{})
	b.runCtx, b.cancelRun = context.WithCancel(context.Background())

	if l, found, err := readLimbo(fs, cfg.Dir); err != nil {
		b.cancelRun()
		return nil, err
	} else if found {
		b.limbo.Store(&l)
		b.log.Warn("bookie in limbo: reads of entries it does not hold answer IO_ERROR, not NO_ENTRY",
			"reason", l.String(), "marker", fs.PathJoin(cfg.Dir, limboFileName))
	}
	jcfg := journal.DefaultConfig(cfg.journalDir(fs))
	jcfg.FS = fs
	jcfg.BeforeCut = b.enterLimbo
	jcfg.MaxRecordBytes = cfg.MaxEntryBytes + maxAddRecordOverhead
	jcfg.FileSizeBytes = max(cfg.JournalFileSizeBytes, int64(jcfg.MaxRecordBytes)+64<<10)
	jcfg.MaxQueueBytes = max(jcfg.MaxQueueBytes, 2*(jcfg.MaxRecordBytes+8))
	jcfg.MaxGroupWait = cfg.JournalMaxGroupWait
	jcfg.Logger = b.log.With("component", "journal")
	jcfg.Registerer = cfg.Registerer
	if b.journal, err = journal.Open(jcfg); err != nil {
		b.cancelRun()
		return nil, fmt.Errorf("bookie: %w", err)
	}
	scfg := ledgerstore.DefaultConfig()
	scfg.FS = fs
	scfg.Dir = cfg.ledgersDir(fs)
	scfg.WriteCacheMaxBytes = cfg.WriteCacheMaxBytes
	scfg.FlushThresholdBytes = cfg.WriteCacheMaxBytes / 2
	scfg.EntryLogMaxFileSizeBytes = cfg.EntryLogMaxFileSizeBytes
	scfg.GCInterval = cfg.GCInterval
	scfg.Logger = b.log.With("component", "ledgerstore")
	scfg.Registerer = cfg.Registerer
	if b.store, err = ledgerstore.Open(scfg); err != nil {
		_ = b.journal.Close()
		b.cancelRun()
		return nil, fmt.Errorf("bookie: %w", err)
	}
	fail := func(err error) (*Bookie, error) {
		_ = b.journal.Close()
		_ = b.store.Close()
		b.met.unregister()
		b.cancelRun()
		return nil, err
	}
	if err := b.replay(); err != nil {
		return fail(err)
	}
	if err := b.met.register(cfg.Registerer); err != nil {
		return fail(err)
	}
	b.checkDisk()

	b.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxEntryBytes+grpcOverheadBytes),
		grpc.MaxSendMsgSize(cfg.MaxEntryBytes+grpcOverheadBytes),
		grpc.InitialWindowSize(4<<20),
		grpc.InitialConnWindowSize(16<<20),
		grpc.MaxConcurrentStreams(256),
		grpc.ForceServerCodecV2(wireCodec{}),
	)
	bookiepb.RegisterBookieServer(b.grpc, service{b: b})
	b.serving.Go(func() {
		if err := b.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			b.log.Error("grpc server stopped", "err", err)
		}
	})
	b.bg.Go(b.runCheckpointer)
	b.bg.Go(b.runDiskMonitor)
	if cfg.Metadata != nil {
		b.bg.Go(b.runRegistrar)
	}
	b.log.Info("bookie started", "listen", ln.Addr().String(), "advertise", addr,
		"instance-id", ck.InstanceID, "dir", cfg.Dir, "journal-dir", cfg.journalDir(fs))
	return b, nil
}

// advertised turns a listener address into one clients can dial.
func advertised(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// ID is the bookie's id (its registration and cookie key).
func (b *Bookie) ID() string { return b.id }

// Addr is the advertised address.
func (b *Bookie) Addr() string { return b.addr }

// ListenAddr is the address the gRPC server listens on (port resolved).
func (b *Bookie) ListenAddr() string { return b.ln.Addr().String() }

// InstanceID is the random id written in the cookie at the first start.
func (b *Bookie) InstanceID() string { return b.cookie.InstanceID }

// Info returns what an Info request answers.
func (b *Bookie) Info() *bookiepb.InfoResponse {
	b.health.Lock()
	defer b.health.Unlock()
	state := bookiepb.BookieState_BOOKIE_STATE_WRITABLE
	reason := b.readOnlyReasonLocked()
	if reason != "" {
		state = bookiepb.BookieState_BOOKIE_STATE_READ_ONLY
	}
	return &bookiepb.InfoResponse{
		BookieId: b.id, InstanceId: b.cookie.InstanceID, State: state,
		FreeBytes: b.health.disk.FreeBytes, TotalBytes: b.health.disk.TotalBytes,
		Region: b.cfg.Region, Rack: b.cfg.Rack, ReadOnlyReason: reason,
	}
}

// Ready reports nil while the bookie can acknowledge writes or is
// read-only only because its disk is nearly full; an error matching
// ErrReadOnly after a journal or store failure (for good), ErrClosed once
// closing.
func (b *Bookie) Ready(context.Context) error {
	if b.closing.Load() {
		return ErrClosed
	}
	b.health.Lock()
	defer b.health.Unlock()
	if b.health.failed != "" {
		return fmt.Errorf("%w: %s", ErrReadOnly, b.health.failed)
	}
	return nil
}

// Registered reports whether the bookie's registration is live in
// metadata (always false without metadata).
func (b *Bookie) Registered() bool { return b.registered.Load() }

func (b *Bookie) readOnlyReasonLocked() string {
	if b.health.failed != "" {
		return b.health.failed
	}
	return b.health.diskFull
}

// readOnlyReason returns why adds are refused, "" when they are not.
func (b *Bookie) readOnlyReason() string {
	if !b.readOnly.Load() {
		return ""
	}
	b.health.Lock()
	defer b.health.Unlock()
	return b.readOnlyReasonLocked()
}

// writesFailed returns the sticky failure, "" if none.
func (b *Bookie) writesFailed() string {
	b.health.Lock()
	defer b.health.Unlock()
	return b.health.failed
}

// fail makes the bookie read-only for good (journal or store failure). It
// never retries: after a failed fsync the state of the page cache is
// unknown.
func (b *Bookie) fail(reason string) {
	b.health.Lock()
	first := b.health.failed == ""
	if first {
		b.health.failed = reason
	}
	b.health.Unlock()
	if !first {
		return
	}
	b.readOnly.Store(true)
	b.met.readOnly.Set(1)
	b.log.Error("bookie is read-only for good: it acknowledges no more writes", "reason", reason)
	b.signalStateChange()
}

func (b *Bookie) signalStateChange() {
	select {
	case b.stateChanged <- struct{}{}:
	default:
	}
}

// stripe is a ledger mutex with what adds need to know of the last open
// ledger that hashed to it.
type stripe struct {
	sync.Mutex
	// open caches the last ledger an add found open here: known to the
	// store with master key key, not fenced, not deleted. It saves adds
	// the store's lock, map lookup and key copy. Everything that changes
	// a ledger's state does so under its stripe and forgets it there
	// (fence, delete); the first add or fence of a ledger sets its key
	// under the stripe too.
	open struct {
		ledgerID int64
		key      []byte
		valid    bool
	}
}

// stripe returns the stripe of a ledger.
func (b *Bookie) stripe(ledgerID int64) *stripe {
	return &b.stripes[uint64(ledgerID)%stripeCount]
}

// isOpen reports whether ledgerID is cached as open with master key key.
// Call it under s.
func (s *stripe) isOpen(ledgerID int64, key []byte) bool {
	return s.open.valid && s.open.ledgerID == ledgerID && bytes.Equal(s.open.key, key)
}

// remember caches ledgerID as open with master key key (copied). Call it
// under s.
func (s *stripe) remember(ledgerID int64, key []byte) {
	s.open.ledgerID, s.open.valid = ledgerID, true
	s.open.key = append(s.open.key[:0], key...)
}

// forget drops ledgerID from the cache. Call it under s.
func (s *stripe) forget(ledgerID int64) {
	if s.open.ledgerID == ledgerID {
		s.open.valid = false
	}
}

// advance records that every record up to end is applied.
func (b *Bookie) advance(end journal.Position) {
	b.applied.Lock()
	if !b.applied.frozen {
		b.applied.pos = end
	}
	b.applied.Unlock()
}

// freeze stops advance: a record was durable in the journal but could not
// be applied, so no checkpoint may cover it (replay will apply it).
func (b *Bookie) freeze() {
	b.applied.Lock()
	b.applied.frozen = true
	b.applied.Unlock()
}

func (b *Bookie) appliedPos() journal.Position {
	b.applied.Lock()
	defer b.applied.Unlock()
	return b.applied.pos
}

// Close stops the bookie: new requests are answered SHUTTING_DOWN, held
// ones (long polls, fences waiting for the journal, adds still queued in
// the journal) are answered, every goroutine is stopped and waited for, the
// registration is removed, a last checkpoint is taken, and the journal and
// the store are closed. Safe to call more than once.
func (b *Bookie) Close() error {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		close(b.stopc)
		b.cancelRun()
		b.bg.Wait()
		errs := []error{b.journal.Close()}
		done := make(chan struct{})
		go func() {
			b.grpc.GracefulStop()
			close(done)
		}()
		t := time.NewTimer(5 * time.Second)
		select {
		case <-done:
		case <-t.C:
			// A client that stopped reading can block a Send forever.
			b.grpc.Stop()
			<-done
		}
		t.Stop()
		b.serving.Wait()
		b.reqs.Wait()
		if !b.storeFailed.Load() {
			if err := b.flush(); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, b.store.Close())
		b.met.unregister()
		b.closeErr = errors.Join(errs...)
		b.log.Info("bookie stopped")
	})
	return b.closeErr
}

// LongPolls is the number of ReadLAC long polls being held.
func (b *Bookie) LongPolls() int64 { return b.longPolls.Load() }
