package ledgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dlog-io/dlog/internal/entrylog"
)

// State is a ledger's state as the store knows it.
type State struct {
	Fenced bool
	// LAC is the highest last-add-confirmed recorded with SetLAC, or -1.
	LAC int64
	// MasterKey is the recorded master key, nil if none was recorded. The
	// slice is a copy owned by the caller.
	MasterKey []byte
}

// Store is the bookie's entry storage: a write cache in front of entry logs
// indexed by pebble. See the package documentation for the protocol.
type Store struct {
	cfg     Config
	log     *slog.Logger
	db      *pebble.DB
	logs    *entrylog.Logs
	metrics *metrics

	// flushWanted holds at most one pending signal: size 1 so that AddEntry
	// never blocks and repeated signals coalesce.
	flushWanted chan struct{}
	stopc       chan struct{}
	wg          sync.WaitGroup
	stopOnce    sync.Once

	// lifeMu is held shared by every public operation for its duration and
	// exclusively by Close, so nothing touches pebble or the logs after they
	// are closed.
	lifeMu sync.RWMutex
	closed bool // written under lifeMu exclusively

	flushMu sync.Mutex // serialises Flush calls
	gcMu    sync.Mutex // serialises compaction passes; guards gcSkip
	gcSkip  map[int64]bool
	// indexMu serialises every commit to the index (flush, compaction,
	// delete), so that each can check what the others did.
	indexMu sync.Mutex

	// writers records, for each flush in progress, the first entry log id
	// it may append to; compaction leaves those logs alone.
	writers struct {
		sync.Mutex
		next   uint64
		starts map[uint64]int64
	}

	// mu guards the in-memory state. It is never held across I/O.
	mu struct {
		sync.RWMutex
		ledgers  map[int64]*ledgerMeta // authoritative; tombstones included
		dirty    map[int64]struct{}    // ledgers changed since the last swap
		active   *writeCache
		flushing *flushSnap // nil when no flush is running
		mark     []byte
	}
}

// flushSnap is what one Flush persists: the swapped-out write cache and the
// ledger states dirty at swap time. DeleteLedger removes its ledger from
// both, under Store.mu.
type flushSnap struct {
	cache  *writeCache
	states map[int64]ledgerMeta
}

// Open opens or creates the store in cfg.Dir. It does not replay anything:
// the owner reads CheckpointMark and replays its journal from there.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fs := cfg.FS
	// Create Dir and Dir/index and make both directory entries durable:
	// a crash must not lose the directories a synced write went into.
	if err := fs.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("ledgerstore: create dir: %w", err)
	}
	for _, d := range []string{fs.PathDir(cfg.Dir), cfg.Dir} {
		if err := syncDir(fs, d); err != nil {
			return nil, err
		}
	}
	indexDir := fs.PathJoin(cfg.Dir, "index")
	if err := createIndex(fs, cfg.Dir, indexDir, cfg.Logger); err != nil {
		return nil, err
	}
	m := newMetrics()
	cache := pebble.NewCache(cfg.IndexCacheBytes)
	defer cache.Unref()
	db, err := pebble.Open(indexDir, &pebble.Options{
		FS:     fs,
		Cache:  cache,
		Logger: pebbleLogger{cfg.Logger.With("engine", "pebble")},
	})
	if err != nil {
		return nil, fmt.Errorf("ledgerstore: open index: %w", err)
	}
	s := &Store{
		cfg:         cfg,
		log:         cfg.Logger,
		db:          db,
		metrics:     m,
		flushWanted: make(chan struct{}, 1),
		stopc:       make(chan struct{}),
		gcSkip:      make(map[int64]bool),
	}
	s.writers.starts = make(map[uint64]int64)
	s.mu.ledgers = make(map[int64]*ledgerMeta)
	s.mu.dirty = make(map[int64]struct{})
	s.mu.active = newWriteCache()
	maxLog, err := s.load()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.logs, err = entrylog.Open(entrylog.Config{
		FS:                fs,
		Dir:               fs.PathJoin(cfg.Dir, "logs"),
		MaxFileSizeBytes:  cfg.EntryLogMaxFileSizeBytes,
		WriteBufferBytes:  cfg.EntryLogWriteBufferBytes,
		MinNextID:         maxLog + 1,
		SlowSyncThreshold: cfg.SlowOpThreshold,
		Logger:            cfg.Logger,
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledgerstore: %w", err)
	}
	m.setGauges(s)
	if err := m.register(cfg.Registerer); err != nil {
		_ = s.logs.Close()
		_ = db.Close()
		return nil, err
	}
	if cfg.GCInterval > 0 {
		s.wg.Go(s.gcLoop)
	}
	return s, nil
}

// load checks the format version and reads ledger states, the checkpoint
// mark and the highest entry log id the index knows.
func (s *Store) load() (maxLog int64, err error) {
	v, closer, err := s.db.Get(metaVersionKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := s.db.NewIter(nil)
		if err != nil {
			return 0, fmt.Errorf("ledgerstore: load: %w", err)
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return 0, fmt.Errorf("ledgerstore: load: %w", err)
		}
		if !empty {
			return 0, fmt.Errorf("%w: index has keys but no format version", ErrCorrupt)
		}
		if err := s.db.Set(metaVersionKey, versionValue(), pebble.Sync); err != nil {
			return 0, fmt.Errorf("ledgerstore: write format version: %w", err)
		}
	case err != nil:
		return 0, fmt.Errorf("ledgerstore: load: %w", err)
	default:
		ver, derr := decodeVersionValue(v)
		_ = closer.Close()
		if derr != nil {
			return 0, fmt.Errorf("%w: %w", ErrCorrupt, derr)
		}
		if ver != formatVersion {
			return 0, fmt.Errorf("ledgerstore: unsupported format version %d", ver)
		}
	}

	mark, closer, err := s.db.Get(metaMarkKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("ledgerstore: load mark: %w", err)
	default:
		if len(mark) > 0 { // an empty mark reads back as nil, as on a fresh store
			s.mu.mark = bytes.Clone(mark)
		}
		_ = closer.Close()
	}

	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLedger}, UpperBound: []byte{prefixLedger + 1}})
	if err != nil {
		return 0, fmt.Errorf("ledgerstore: load ledgers: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		id, err := decodeLedgerKey(it.Key())
		if err != nil {
			_ = it.Close()
			return 0, fmt.Errorf("%w: ledger key %x", ErrCorrupt, it.Key())
		}
		m, err := decodeLedgerValue(it.Value())
		if err != nil {
			_ = it.Close()
			return 0, fmt.Errorf("%w: ledger %d state", ErrCorrupt, id)
		}
		s.mu.ledgers[id] = &m
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("ledgerstore: load ledgers: %w", err)
	}

	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixUsage}, UpperBound: []byte{prefixUsage + 1}})
	if err != nil {
		return 0, fmt.Errorf("ledgerstore: load usage: %w", err)
	}
	if it.Last() {
		logID, _, err := decodeUsageKey(it.Key())
		if err != nil {
			_ = it.Close()
			return 0, fmt.Errorf("%w: usage key %x", ErrCorrupt, it.Key())
		}
		maxLog = logID
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("ledgerstore: load usage: %w", err)
	}
	return maxLog, nil
}

// enter takes lifeMu shared; it fails once the store is closed.
func (s *Store) enter() error {
	s.lifeMu.RLock()
	if s.closed {
		s.lifeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) exit() { s.lifeMu.RUnlock() }

func checkIDs(ledgerID, entryID int64) error {
	if ledgerID < 0 || entryID < 0 {
		return fmt.Errorf("%w: ledger %d entry %d", ErrInvalidArgument, ledgerID, entryID)
	}
	return nil
}

// ledgerLocked returns the state of a live ledger, creating it if create is
// set. s.mu must be held (exclusively when create is set).
func (s *Store) ledgerLocked(ledgerID int64, create bool) (*ledgerMeta, error) {
	m := s.mu.ledgers[ledgerID]
	switch {
	case m != nil && m.deleted:
		return nil, fmt.Errorf("%w: %d", ErrLedgerDeleted, ledgerID)
	case m != nil:
		return m, nil
	case !create:
		return nil, fmt.Errorf("%w: %d", ErrNoLedger, ledgerID)
	}
	m = &ledgerMeta{lac: -1}
	s.mu.ledgers[ledgerID] = m
	s.mu.dirty[ledgerID] = struct{}{}
	return m, nil
}

// liveLocked reports whether a ledger exists and is not deleted.
func (s *Store) liveLocked(ledgerID int64) bool {
	m := s.mu.ledgers[ledgerID]
	return m != nil && !m.deleted
}

// liveNotDeleting is live, and not being deleted: a DeleteLedger in
// progress may already have removed the index entries.
func (s *Store) liveNotDeleting(ledgerID int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.liveLocked(ledgerID) && !s.mu.ledgers[ledgerID].deleting
}

func (s *Store) live(ledgerID int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.liveLocked(ledgerID)
}

// AddEntry stores entry entryID of ledgerID in the write cache, creating the
// ledger if needed. data is copied; the caller may reuse it. The entry is
// readable at once and durable in the store after the next successful
// Flush (before that, the caller's journal is what makes it durable).
// Re-adding an entry replaces the cached copy (recovery re-replication
// writes the same bytes again, so this is idempotent). The store does not
// refuse adds to fenced ledgers: fencing is the caller's policy (recovery
// adds must pass).
//
// Errors: ErrInvalidArgument, ErrLedgerDeleted, ErrWriteCacheFull (the
// owner should Flush; nothing was stored), ErrClosed.
func (s *Store) AddEntry(ledgerID, entryID int64, data []byte) error {
	if err := checkIDs(ledgerID, entryID); err != nil {
		return err
	}
	if len(data) > entrylog.MaxPayloadSize {
		return fmt.Errorf("%w: entry of %d bytes over %d", ErrInvalidArgument, len(data), entrylog.MaxPayloadSize)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	cp := append(make([]byte, 0, len(data)), data...)
	s.mu.Lock()
	defer s.mu.Unlock()
	cost := entryCost(len(data))
	used := s.mu.active.bytes
	if s.mu.flushing != nil {
		used += s.mu.flushing.cache.bytes
	}
	if used+cost > s.cfg.WriteCacheMaxBytes {
		s.signalFlush()
		return fmt.Errorf("%w: %d of %d bytes used", ErrWriteCacheFull, used, s.cfg.WriteCacheMaxBytes)
	}
	if _, err := s.ledgerLocked(ledgerID, true); err != nil {
		return err
	}
	s.mu.active.put(ledgerID, entryID, cp)
	if s.mu.active.bytes >= s.cfg.FlushThresholdBytes {
		s.signalFlush()
	}
	return nil
}

func (s *Store) signalFlush() {
	select {
	case s.flushWanted <- struct{}{}:
	default:
	}
}

// FlushWanted returns a channel that receives a value when the write cache
// has reached FlushThresholdBytes (or is full). Signals coalesce: one value
// may stand for many adds. The owner should then call Flush with its
// journal position.
func (s *Store) FlushWanted() <-chan struct{} { return s.flushWanted }

// GetEntry returns an entry's bytes, from the write cache or from the entry
// logs. The returned slice is a copy owned by the caller.
//
// Errors: ErrNoLedger (unknown or deleted ledger), ErrNoEntry (the ledger
// exists but the entry is neither cached nor indexed), ErrCorrupt (checksum
// or header mismatch; also matches entrylog.ErrCorrupt), ErrClosed,
// ErrInvalidArgument, or a wrapped I/O error (outcome unknown).
func (s *Store) GetEntry(ledgerID, entryID int64) ([]byte, error) {
	if err := checkIDs(ledgerID, entryID); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	s.mu.RLock()
	if !s.liveLocked(ledgerID) {
		s.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d", ErrNoLedger, ledgerID)
	}
	// Both halves are checked under one lock hold: a flush removes its half
	// only after the index holds every entry of it.
	d, ok := s.mu.active.get(ledgerID, entryID)
	if !ok && s.mu.flushing != nil {
		d, ok = s.mu.flushing.cache.get(ledgerID, entryID)
	}
	s.mu.RUnlock()
	if ok {
		s.metrics.readsFromCache.Inc()
		return append(make([]byte, 0, len(d)), d...), nil
	}
	for attempt := 0; ; attempt++ {
		loc, found, err := s.lookup(ledgerID, entryID)
		if err != nil {
			return nil, err
		}
		if !found {
			if !s.liveNotDeleting(ledgerID) {
				return nil, fmt.Errorf("%w: %d", ErrNoLedger, ledgerID)
			}
			return nil, fmt.Errorf("%w: ledger %d entry %d", ErrNoEntry, ledgerID, entryID)
		}
		data, err := s.logs.Read(loc, ledgerID, entryID)
		switch {
		case err == nil:
			s.metrics.readsFromLog.Inc()
			return data, nil
		case errors.Is(err, entrylog.ErrCorrupt):
			return nil, fmt.Errorf("%w: ledger %d entry %d: %w", ErrCorrupt, ledgerID, entryID, err)
		case errors.Is(err, entrylog.ErrLogNotFound) && attempt < 3:
			// Compaction moved the entry and removed the log after our
			// lookup: the index now points at the new place.
			continue
		case errors.Is(err, entrylog.ErrLogNotFound):
			return nil, fmt.Errorf("%w: ledger %d entry %d: index points at a missing log: %w", ErrCorrupt, ledgerID, entryID, err)
		default:
			return nil, fmt.Errorf("ledgerstore: read ledger %d entry %d: %w", ledgerID, entryID, err)
		}
	}
}

// lookup reads an entry's location from the index.
func (s *Store) lookup(ledgerID, entryID int64) (entrylog.Location, bool, error) {
	v, closer, err := s.db.Get(indexKey(ledgerID, entryID))
	if errors.Is(err, pebble.ErrNotFound) {
		return entrylog.Location{}, false, nil
	}
	if err != nil {
		return entrylog.Location{}, false, fmt.Errorf("ledgerstore: index lookup ledger %d entry %d: %w", ledgerID, entryID, err)
	}
	loc, err := decodeIndexValue(v)
	_ = closer.Close()
	if err != nil {
		return entrylog.Location{}, false, fmt.Errorf("%w: index value of ledger %d entry %d: %w", ErrCorrupt, ledgerID, entryID, err)
	}
	return loc, true, nil
}

// LastEntryID returns the highest entry id the store holds for a ledger, or
// -1 if it holds none (a ledger known only from a fence or a master key).
// Errors: ErrNoLedger, ErrClosed, a wrapped I/O error.
func (s *Store) LastEntryID(ledgerID int64) (int64, error) {
	if ledgerID < 0 {
		return 0, fmt.Errorf("%w: ledger %d", ErrInvalidArgument, ledgerID)
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	s.mu.RLock()
	if !s.liveLocked(ledgerID) {
		s.mu.RUnlock()
		return 0, fmt.Errorf("%w: %d", ErrNoLedger, ledgerID)
	}
	last := s.mu.active.last(ledgerID)
	if s.mu.flushing != nil {
		last = max(last, s.mu.flushing.cache.last(ledgerID))
	}
	s.mu.RUnlock()
	lower, upper := ledgerIndexBounds(ledgerID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("ledgerstore: last entry of ledger %d: %w", ledgerID, err)
	}
	if it.Last() {
		_, e, derr := decodeIndexKey(it.Key())
		if derr != nil {
			_ = it.Close()
			return 0, fmt.Errorf("%w: index key %x", ErrCorrupt, it.Key())
		}
		last = max(last, e)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("ledgerstore: last entry of ledger %d: %w", ledgerID, err)
	}
	return last, nil
}

// Ledger returns a ledger's state. Errors: ErrNoLedger (unknown or
// deleted), ErrClosed.
func (s *Store) Ledger(ledgerID int64) (State, error) {
	if err := s.enter(); err != nil {
		return State{}, err
	}
	defer s.exit()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.liveLocked(ledgerID) {
		return State{}, fmt.Errorf("%w: %d", ErrNoLedger, ledgerID)
	}
	m := s.mu.ledgers[ledgerID]
	return State{Fenced: m.fenced, LAC: m.lac, MasterKey: bytes.Clone(m.masterKey)}, nil
}

// Deleted reports whether ledgerID was deleted (its tombstone is kept).
// Errors: ErrClosed.
func (s *Store) Deleted(ledgerID int64) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.mu.ledgers[ledgerID]
	return m != nil && m.deleted, nil
}

// LedgerIDs returns the ids of every live ledger, sorted.
func (s *Store) LedgerIDs() ([]int64, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]int64, 0, len(s.mu.ledgers))
	for id, m := range s.mu.ledgers {
		if !m.deleted {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// update applies fn to a ledger's state under s.mu and marks it dirty when
// fn reports a change. The change is persisted by the next Flush.
func (s *Store) update(ledgerID int64, create bool, fn func(m *ledgerMeta) (bool, error)) (bool, error) {
	if ledgerID < 0 {
		return false, fmt.Errorf("%w: ledger %d", ErrInvalidArgument, ledgerID)
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.ledgerLocked(ledgerID, create)
	if err != nil {
		return false, err
	}
	changed, err := fn(m)
	if changed {
		s.mu.dirty[ledgerID] = struct{}{}
	}
	return changed, err
}

// SetFenced marks a ledger fenced, creating it if unknown (a fence may reach
// a bookie before any entry). It reports whether the ledger was not fenced
// before. Persisted by the next Flush; the caller's journal covers it until
// then. Errors: ErrLedgerDeleted, ErrClosed, ErrInvalidArgument.
func (s *Store) SetFenced(ledgerID int64) (changed bool, err error) {
	return s.update(ledgerID, true, func(m *ledgerMeta) (bool, error) {
		if m.fenced {
			return false, nil
		}
		m.fenced = true
		return true, nil
	})
}

// SetLAC raises a ledger's LAC to lac if lac is higher (max-merge: an older
// LAC arriving late never lowers it). Errors: ErrNoLedger, ErrLedgerDeleted,
// ErrInvalidArgument (lac < -1), ErrClosed.
func (s *Store) SetLAC(ledgerID, lac int64) error {
	if lac < -1 {
		return fmt.Errorf("%w: lac %d", ErrInvalidArgument, lac)
	}
	_, err := s.update(ledgerID, false, func(m *ledgerMeta) (bool, error) {
		if lac <= m.lac {
			return false, nil
		}
		m.lac = lac
		return true, nil
	})
	return err
}

// SetMasterKey records a ledger's master key if none is recorded yet
// (creating the ledger if unknown), or checks it against the recorded one.
// key is copied. Errors: ErrMasterKeyMismatch, ErrLedgerDeleted,
// ErrInvalidArgument (nil or over 1 KiB), ErrClosed.
func (s *Store) SetMasterKey(ledgerID int64, key []byte) error {
	if key == nil || len(key) > maxMasterKeyBytes {
		return fmt.Errorf("%w: master key of %d bytes", ErrInvalidArgument, len(key))
	}
	_, err := s.update(ledgerID, true, func(m *ledgerMeta) (bool, error) {
		if m.masterKey == nil {
			m.masterKey = append([]byte{}, key...)
			return true, nil
		}
		if !bytes.Equal(m.masterKey, key) {
			return false, fmt.Errorf("%w: ledger %d", ErrMasterKeyMismatch, ledgerID)
		}
		return false, nil
	})
	return err
}

// CheckpointMark returns the mark persisted by the last successful Flush
// (nil on a fresh store, or when that mark was empty). The slice is a copy
// owned by the caller.
func (s *Store) CheckpointMark() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.mu.mark)
}

// DiskUsage returns the bytes used on disk by the entry logs and the index.
func (s *Store) DiskUsage() (int64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	return s.logs.TotalBytes() + int64(s.db.Metrics().DiskSpaceUsage()), nil
}

// DeleteLedger deletes a ledger: when it returns nil, the ledger's entries
// and state are gone from the cache and, durably, from the index (one
// synced pebble write that leaves a tombstone so that a journal replay or a
// straggling add cannot bring the ledger back). The space its entries take
// in entry logs is reclaimed later by compaction. Deleting an unknown or
// already deleted ledger succeeds.
func (s *Store) DeleteLedger(ledgerID int64) error {
	if ledgerID < 0 {
		return fmt.Errorf("%w: ledger %d", ErrInvalidArgument, ledgerID)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	s.mu.RLock()
	m := s.mu.ledgers[ledgerID]
	s.mu.RUnlock()
	if m != nil && m.deleted {
		return nil
	}
	if m != nil {
		s.mu.Lock()
		m.deleting = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			m.deleting = false
			s.mu.Unlock()
		}()
	}
	b := s.db.NewBatch()
	defer b.Close()
	lower, upper := ledgerIndexBounds(ledgerID)
	if err := b.DeleteRange(lower, upper, nil); err != nil {
		return fmt.Errorf("ledgerstore: delete ledger %d: %w", ledgerID, err)
	}
	if err := b.Set(ledgerKey(ledgerID), ledgerValue(ledgerMeta{deleted: true, lac: -1}), nil); err != nil {
		return fmt.Errorf("ledgerstore: delete ledger %d: %w", ledgerID, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("ledgerstore: delete ledger %d: %w", ledgerID, err)
	}
	s.mu.Lock()
	s.mu.ledgers[ledgerID] = &ledgerMeta{deleted: true, lac: -1}
	delete(s.mu.dirty, ledgerID)
	s.mu.active.drop(ledgerID)
	if f := s.mu.flushing; f != nil {
		f.cache.drop(ledgerID)
		delete(f.states, ledgerID)
	}
	s.mu.Unlock()
	s.log.Info("ledger deleted", "ledger-id", ledgerID)
	return nil
}

// Close stops compaction and closes the entry logs and the index. Entries
// still in the write cache are dropped: what was not flushed is in the
// owner's journal. Close waits for operations in progress; it is safe to
// call more than once.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.wg.Wait()
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.metrics.unregister()
	return errors.Join(s.logs.Close(), s.db.Close())
}

// createIndex creates the pebble index at indexDir if it does not exist,
// atomically: pebble creates it in index.tmp, which is renamed into place
// (and Dir synced) once pebble has closed it. A crash in the middle of
// pebble's own creation (its MANIFEST, marker and OPTIONS files) then
// leaves only index.tmp, which the next Open removes and creates again,
// never an index directory pebble cannot open.
func createIndex(fs vfs.FS, dir, indexDir string, log *slog.Logger) error {
	if _, err := fs.Stat(indexDir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ledgerstore: stat index: %w", err)
	}
	tmp := fs.PathJoin(dir, "index.tmp")
	if err := fs.RemoveAll(tmp); err != nil {
		return fmt.Errorf("ledgerstore: remove %s: %w", tmp, err)
	}
	if err := fs.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("ledgerstore: create index: %w", err)
	}
	if err := syncDir(fs, dir); err != nil {
		return err
	}
	db, err := pebble.Open(tmp, &pebble.Options{FS: fs, Logger: pebbleLogger{log.With("engine", "pebble")}})
	if err != nil {
		return fmt.Errorf("ledgerstore: create index: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("ledgerstore: create index: %w", err)
	}
	if err := fs.Rename(tmp, indexDir); err != nil {
		return fmt.Errorf("ledgerstore: create index: %w", err)
	}
	return syncDir(fs, dir)
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("ledgerstore: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ledgerstore: sync dir %s: %w", dir, err)
	}
	return nil
}
