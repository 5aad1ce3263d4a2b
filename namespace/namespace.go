package namespace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
)

// defaultExplicitLACDelay is how soon an idle writer's ledger tells
// readers about its last entry when Config.LedgerConfig is nil: it bounds
// the visibility lag of the last record of a burst (BenchmarkTailLatency:
// p50 ≈ 2.5 ms at 1 ms, ≈ 7 ms at the ledger default of 5 ms).
const defaultExplicitLACDelay = time.Millisecond

// Namespace is a named set of logs in one dlog cluster: it creates,
// lists and deletes logs, opens their writers and readers, and runs the
// garbage collector of truncated and expired segments. It is safe for
// concurrent use.
type Namespace struct {
	cfg     Config
	name    string
	store   metadata.Store
	closeMD func() error // closes a store Open opened
	ledgers *ledger.Client
	ownLC   bool
	codec   recordset.Codec
	log     *slog.Logger
	metrics *metrics
	hooks   *testHooks

	sessMu sync.Mutex
	sess   metadata.Session
	// maintMu serialises the operations that borrow a log's writer lock
	// (Truncate and DeleteLog without a local writer).
	maintMu sync.Mutex

	mu struct {
		sync.Mutex
		writers map[string]*Writer // open writers by log
		opening map[string]*Writer // writers being opened
		readers map[*Reader]struct{}
		closed  bool
	}

	gcKick   chan struct{} // capacity 1: run the collector now
	stopc    chan struct{}
	bg       context.Context // ended by Close: background work stops
	bgCancel context.CancelFunc
	wg       sync.WaitGroup
}

// Open connects to the metadata service and the bookies and returns the
// namespace, creating it if it does not exist (there is no separate bind
// step). Errors: dlog.ErrInvalidArgument / dlog.ErrInvalidName for a bad
// Config; metadata errors (wrapping dlog.ErrUnavailable when the service
// cannot be reached before ctx ends).
func Open(ctx context.Context, cfg Config) (*Namespace, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	codec, _ := recordset.ParseCodec(cfg.Compression)
	n := &Namespace{
		cfg: cfg, name: cfg.Namespace, codec: codec, hooks: cfg.testHooks,
		log:    cfg.Logger.With("namespace", cfg.Namespace),
		gcKick: make(chan struct{}, 1),
		stopc:  make(chan struct{}),
	}
	n.bg, n.bgCancel = context.WithCancel(context.Background())
	if n.hooks == nil {
		n.hooks = &testHooks{}
	}
	if cfg.OwnerID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		n.cfg.OwnerID = "writer-" + hex.EncodeToString(b[:])
	}
	n.mu.writers = make(map[string]*Writer)
	n.mu.opening = make(map[string]*Writer)
	n.mu.readers = make(map[*Reader]struct{})
	n.metrics = newMetrics(cfg.Registerer)

	n.store = cfg.Store
	if n.store == nil {
		opts := metadata.DefaultOptions()
		opts.Cluster = cfg.Cluster
		opts.Logger = cfg.Logger
		st, err := metadata.Open(ctx, cfg.MetadataURL, opts)
		if err != nil {
			return nil, fmt.Errorf("open namespace %s: metadata: %w", n.name, err)
		}
		n.store, n.closeMD = st, st.Close
	}
	fail := func(err error) (*Namespace, error) {
		n.bgCancel()
		if n.ownLC {
			n.ledgers.Close()
		}
		if n.closeMD != nil {
			n.closeMD()
		}
		return nil, err
	}
	if err := n.ensureNamespace(ctx); err != nil {
		return fail(err)
	}
	n.ledgers = cfg.Ledgers
	if n.ledgers == nil {
		lcfg := ledger.DefaultConfig()
		if cfg.LedgerConfig != nil {
			lcfg = *cfg.LedgerConfig
		} else {
			lcfg.ExplicitLACDelay = defaultExplicitLACDelay
		}
		if lcfg.Logger == nil {
			lcfg.Logger = cfg.Logger
		}
		if lcfg.Registerer == nil {
			lcfg.Registerer = cfg.Registerer
		}
		if lcfg.MaxEntryBytes < cfg.MaxEntryBytes+recordset.HeaderSize {
			lcfg.MaxEntryBytes = cfg.MaxEntryBytes + recordset.HeaderSize
		}
		lc, err := ledger.New(ctx, n.store, lcfg)
		if err != nil {
			return fail(fmt.Errorf("open namespace %s: ledger client: %w", n.name, err))
		}
		n.ledgers, n.ownLC = lc, true
	}
	if cfg.GCInterval > 0 {
		n.wg.Go(n.gcLoop)
	}
	n.log.Debug("namespace open", "owner", n.cfg.OwnerID)
	return n, nil
}

func (n *Namespace) ensureNamespace(ctx context.Context) error {
	_, _, err := n.store.GetNamespace(ctx, n.name)
	if errors.Is(err, metadata.ErrNotFound) {
		err = n.store.CreateNamespace(ctx, n.name, metadata.NamespaceInfo{Created: time.Now()})
		if errors.Is(err, metadata.ErrExists) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", n.name, err)
	}
	return nil
}

// Name returns the namespace's name.
func (n *Namespace) Name() string { return n.name }

// Close aborts writers that are still open (as a crash would: their
// segments stay in progress until the next writer recovers them) and
// closes readers, stops the collector, revokes the namespace's metadata
// session (releasing its writer locks at once) and closes the clients it
// opened. Close writers with Writer.Close first to complete their
// segments. Safe to call twice (the second call returns nil). Errors:
// those of closing the ledger client and the metadata store it opened
// (joined); the namespace is closed whatever they are.
func (n *Namespace) Close() error {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return nil
	}
	n.mu.closed = true
	writers := make([]*Writer, 0, len(n.mu.writers))
	for _, w := range n.mu.writers {
		writers = append(writers, w)
	}
	readers := make([]*Reader, 0, len(n.mu.readers))
	for r := range n.mu.readers {
		readers = append(readers, r)
	}
	n.mu.Unlock()
	for _, w := range writers {
		w.abort(fmt.Errorf("namespace closed: %w", dlog.ErrClosed))
	}
	for _, r := range readers {
		r.Close()
	}
	close(n.stopc)
	n.bgCancel()
	n.wg.Wait()
	n.sessMu.Lock()
	if n.sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.sess.Close(ctx); err != nil {
			n.log.Warn("revoke session", "err", err)
		}
		cancel()
	}
	n.sessMu.Unlock()
	var err error
	if n.ownLC {
		err = n.ledgers.Close()
	}
	if n.closeMD != nil {
		err = errors.Join(err, n.closeMD())
	}
	return err
}

func (n *Namespace) checkOpen() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return fmt.Errorf("namespace %s: %w", n.name, dlog.ErrClosed)
	}
	return nil
}

// session returns the live metadata session writer locks bind to,
// replacing one that expired.
func (n *Namespace) session(ctx context.Context) (metadata.Session, error) {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if n.sess != nil {
		select {
		case <-n.sess.Done():
			n.sess = nil
		default:
			return n.sess, nil
		}
	}
	s, err := n.store.NewSession(ctx, n.cfg.SessionTTL)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: session: %w", n.name, err)
	}
	n.sess = s
	return s, nil
}

// logErr maps metadata errors about a log to the dlog taxonomy.
func (n *Namespace) logErr(log string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("log %s/%s: %w", n.name, log, dlog.ErrLogNotFound)
	case errors.Is(err, metadata.ErrUnavailable) && !errors.Is(err, dlog.ErrUnavailable):
		return fmt.Errorf("log %s/%s: %w: %w", n.name, log, dlog.ErrUnavailable, err)
	}
	return fmt.Errorf("log %s/%s: %w", n.name, log, err)
}

func checkLogName(log string) error {
	if err := dlog.ValidateName(log); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

// CreateLog creates an empty log. Errors (definite): dlog.ErrInvalidName,
// dlog.ErrLogExists, dlog.ErrNamespaceNotFound (the namespace was deleted),
// dlog.ErrClosed; metadata errors (dlog.ErrUnavailable: the log may have
// been created).
func (n *Namespace) CreateLog(ctx context.Context, log string, opts LogOptions) error {
	if err := checkLogName(log); err != nil {
		return err
	}
	if err := n.checkOpen(); err != nil {
		return err
	}
	if opts.Retention < 0 {
		return fmt.Errorf("%w: create log %s: negative retention", dlog.ErrInvalidArgument, log)
	}
	err := n.store.CreateLog(ctx, n.name, log, metadata.LogInfo{Created: time.Now(), Retention: opts.Retention})
	switch {
	case errors.Is(err, metadata.ErrExists):
		return fmt.Errorf("log %s/%s: %w", n.name, log, dlog.ErrLogExists)
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("namespace %s: %w", n.name, dlog.ErrNamespaceNotFound)
	}
	return n.logErr(log, err)
}

// LogExists reports whether the log exists. Errors: dlog.ErrInvalidName,
// metadata errors.
func (n *Namespace) LogExists(ctx context.Context, log string) (bool, error) {
	if err := checkLogName(log); err != nil {
		return false, err
	}
	ok, err := n.store.LogExists(ctx, n.name, log)
	return ok, n.logErr(log, err)
}

// ListLogs returns up to limit (<= 0: 1000) log names starting with
// prefix, in byte order, after the page token (empty for the first page),
// and the token of the next page (empty when there is none). Errors:
// dlog.ErrInvalidName for a prefix no name can have, metadata errors.
func (n *Namespace) ListLogs(ctx context.Context, prefix, pageToken string, limit int) ([]string, string, error) {
	names, more, err := n.store.ListLogs(ctx, n.name, prefix, pageToken, limit)
	if err != nil {
		if errors.Is(err, metadata.ErrNotFound) {
			return nil, "", fmt.Errorf("namespace %s: %w", n.name, dlog.ErrNamespaceNotFound)
		}
		return nil, "", fmt.Errorf("list logs of %s: %w", n.name, err)
	}
	next := ""
	if more && len(names) > 0 {
		next = names[len(names)-1]
	}
	return names, next, nil
}

// DeleteLog deletes a log: its ledgers, then its metadata. While a writer
// owns the log it refuses with dlog.ErrWriterActive (definite) unless
// force; with force an active writer is fenced (its writes fail with
// dlog.ErrFenced). Readers of the log fail with dlog.ErrLogNotFound.
// Without force the namespace holds the log's writer lock while deleting,
// so no writer can start meanwhile. Errors: dlog.ErrInvalidName,
// dlog.ErrLogNotFound, dlog.ErrWriterActive, metadata and ledger errors
// (then part of the ledgers may be gone: delete again).
func (n *Namespace) DeleteLog(ctx context.Context, log string, force bool) error {
	if err := checkLogName(log); err != nil {
		return err
	}
	if err := n.checkOpen(); err != nil {
		return err
	}
	n.mu.Lock()
	local := n.mu.writers[log]
	n.mu.Unlock()
	if local != nil && !force {
		return fmt.Errorf("delete log %s/%s: %w (writer in this process)", n.name, log, dlog.ErrWriterActive)
	}
	var own metadata.Ownership
	if local == nil {
		// Locks taken through one session under one owner id are shared:
		// one maintenance operation at a time holds the borrowed lock.
		n.maintMu.Lock()
		defer n.maintMu.Unlock()
		sess, err := n.session(ctx)
		if err != nil {
			return err
		}
		own, err = n.store.AcquireOwnership(ctx, sess, n.name, log, metadata.OwnerInfo{ID: n.cfg.OwnerID + "-delete"}, false)
		var owned *dlog.OwnedError
		switch {
		case errors.As(err, &owned):
			if !force {
				return fmt.Errorf("delete log %s/%s: %w: %w", n.name, log, dlog.ErrWriterActive, err)
			}
			own = nil
		case err != nil:
			return n.logErr(log, err)
		}
	}
	if own != nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = own.Release(rctx) // the key is gone with the log; nothing to release
			cancel()
		}()
	}
	if local != nil {
		// Stop the local writer first, so it cannot start a segment (and a
		// ledger) while the log's ledgers are being deleted.
		local.abort(fmt.Errorf("log %s/%s deleted: %w", n.name, log, dlog.ErrFenced))
	}
	st, err := n.store.GetLogState(ctx, n.name, log)
	if err != nil {
		return n.logErr(log, err)
	}
	for _, s := range st.Segments {
		if err := n.ledgers.Delete(ctx, s.LedgerID); err != nil && !errors.Is(err, ledger.ErrNoLedger) {
			return fmt.Errorf("delete log %s/%s: segment %d: %w", n.name, log, s.LSSN, err)
		}
	}
	if err := n.store.DeleteLog(ctx, n.name, log); err != nil {
		return n.logErr(log, err)
	}
	n.log.Info("log deleted", "log", log, "segments", len(st.Segments), "force", force)
	return nil
}

// SetRetention sets a log's own retention (0: the namespace's). Errors:
// dlog.ErrInvalidName, dlog.ErrInvalidArgument, dlog.ErrLogNotFound,
// metadata errors.
func (n *Namespace) SetRetention(ctx context.Context, log string, retention time.Duration) error {
	if err := checkLogName(log); err != nil {
		return err
	}
	if retention < 0 {
		return fmt.Errorf("%w: negative retention", dlog.ErrInvalidArgument)
	}
	for {
		st, err := n.store.GetLogState(ctx, n.name, log)
		if err != nil {
			return n.logErr(log, err)
		}
		info := st.Info
		info.Retention = retention
		_, err = n.store.Commit(ctx, metadata.UpdateLogInfo(n.name, log, info, st.InfoVersion))
		if !errors.Is(err, metadata.ErrBadVersion) {
			return n.logErr(log, err)
		}
	}
}

// SetDefaultRetention stores the retention of this namespace's logs that
// have none of their own (0: Config.Retention), for every process that
// opens the namespace; collectors apply it on their next pass. Errors:
// dlog.ErrInvalidArgument, dlog.ErrNamespaceNotFound, metadata errors.
func (n *Namespace) SetDefaultRetention(ctx context.Context, retention time.Duration) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if retention < 0 {
		return fmt.Errorf("%w: negative retention", dlog.ErrInvalidArgument)
	}
	err := metadata.ChangeNamespace(ctx, n.store, n.name, func(info *metadata.NamespaceInfo) { info.Retention = retention })
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("namespace %s: %w", n.name, dlog.ErrNamespaceNotFound)
	case err != nil:
		return fmt.Errorf("namespace %s: %w", n.name, err)
	}
	n.kickGC()
	return nil
}

// registerWriter reserves the log for a writer being opened; it fails if
// the log already has one (open or opening) in this namespace: the store
// would hand both the same lock. Operations that go through a local writer
// see it only once promoteWriter made it open.
func (n *Namespace) registerWriter(log string, w *Writer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return fmt.Errorf("namespace %s: %w", n.name, dlog.ErrClosed)
	}
	if other, ok := n.mu.writers[log]; ok {
		return &dlog.OwnedError{Log: log, OwnerID: other.ownerID, Owner: other.ownerAddress}
	}
	if other, ok := n.mu.opening[log]; ok {
		return &dlog.OwnedError{Log: log, OwnerID: other.ownerID, Owner: other.ownerAddress}
	}
	n.mu.opening[log] = w
	return nil
}

// promoteWriter makes a reserved writer the log's open writer.
func (n *Namespace) promoteWriter(log string, w *Writer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.opening[log] == w {
		delete(n.mu.opening, log)
	}
	if n.mu.closed {
		return fmt.Errorf("namespace %s: %w", n.name, dlog.ErrClosed)
	}
	n.mu.writers[log] = w
	return nil
}

func (n *Namespace) unregisterWriter(log string, w *Writer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.writers[log] == w {
		delete(n.mu.writers, log)
	}
	if n.mu.opening[log] == w {
		delete(n.mu.opening, log)
	}
}

func (n *Namespace) localWriter(log string) *Writer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.writers[log]
}
