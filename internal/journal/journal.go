package journal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Journal is a write-ahead journal of opaque records with group commit.
// See the package documentation for the life cycle and the guarantees.
//
// Lock order: replayMu before mu. The writer goroutine takes only mu, and
// never while calling callbacks or doing I/O.
type Journal struct {
	cfg   Config
	fs    vfs.FS
	log   *slog.Logger
	lock  io.Closer
	stopc chan struct{} // closed by Close
	wakec chan struct{} // cap 1: "records are queued", coalesced
	wg    sync.WaitGroup
	met   *metrics
	// groupFullBytes of queued records end a group-commit wait:
	// MaxGroupBytes, or half the queue if that is smaller.
	groupFullBytes int
	closed         sync.Once

	// replayMu serialises Replay with Close.
	replayMu sync.Mutex

	mu struct {
		sync.Mutex
		cur         *batch        // records queued for the next group
		queuedBytes int           // framed bytes in cur
		spacec      chan struct{} // closed when queue room frees; nil if nobody waits
		wakeAt      int           // >0: the writer sleeps until this many records are queued
		replayed    bool
		closed      bool
		failed      error // sticky; a *FailureError
	}

	// w is the writer state: set up by Replay before mu.replayed is set,
	// then owned by the writer goroutine.
	w writer

	prep preparer

	// files holds the released files kept for recycling; its mutex also
	// serialises ReleaseBefore with the writer taking one. Held across
	// renames and directory syncs (rare: releases and rolls).
	files struct {
		sync.Mutex
		free []uint64 // ids of <id>.journal.free files, ascending
	}
	freeCount atomic.Int64 // len(files.free), read without the lock

	activeID atomic.Uint64 // file being written; 0 before Replay
	stats    counters
}

type counters struct {
	groups, records, bytes, syncs, rolls atomic.Uint64
	syncNanos, syncMaxNanos              atomic.Int64
	cutBytes, quarantined                atomic.Int64
	cutPos                               atomic.Pointer[Position]
	cutSuspect                           atomic.Bool
	groupWaits                           atomic.Uint64 // times the writer waited for a group to fill
	groupWaitTimeouts                    atomic.Uint64 // waits that ended by MaxGroupWait
	groupWaitNanos                       atomic.Int64  // time spent waiting
	spareWaits                           atomic.Uint64 // rolls that waited for the next file
	recycled                             atomic.Uint64 // files recycled (rolls and Replay)
}

// Cut describes where Replay is about to cut the journal (see
// Config.BeforeCut).
type Cut struct {
	// At is the first byte not replayed; Reason says why.
	At     Position
	Reason string
	// Suspect reports that the cut may remove records that had been
	// fdatasynced, so whose appends may have been acknowledged: a journal
	// file after the cut holds data of its own life (the writer starts a
	// file only once the previous one is synced), a file is missing from
	// the chain, or the bad record is followed, where its length says it
	// ends, by a good record of the same life (a complete record damaged
	// later rather than one torn by a crash). A torn tail (the newest
	// group's write interrupted by a crash) is not suspect. Suspect is
	// conservative in one direction only: damage to the newest records
	// that leaves nothing valid after it cannot be told from a torn
	// write.
	Suspect bool
}

// Stats are cumulative counts since Open.
type Stats struct {
	// Groups is the number of group commits (one fdatasync each, two when
	// a group straddles a file roll).
	Groups uint64
	// Records and Bytes count acknowledged records and their framed bytes.
	Records, Bytes uint64
	// Syncs counts fdatasync calls on journal files; SyncTotal and SyncMax
	// are their summed and largest durations.
	Syncs              uint64
	SyncTotal, SyncMax time.Duration
	// Rolls counts switches to a new file; Recycled counts the new files
	// (rolls and Replay) that were released files renamed rather than
	// zero-filled ones.
	Rolls, Recycled uint64
	// ReplayCut is where Replay cut the journal (the first torn or bad
	// byte), zero if it cut nothing. ReplayCutBytes is the number of
	// non-zero bytes it overwrote with zeros plus the sizes of the files it
	// renamed aside; QuarantinedFiles is how many files it renamed aside.
	// ReplayCutSuspect reports that the cut may have removed records
	// whose fdatasync had returned, so whose appends may have been
	// acknowledged (see Cut.Suspect).
	ReplayCut        Position
	ReplayCutBytes   int64
	QuarantinedFiles int64
	ReplayCutSuspect bool

	groupWaits uint64 // times the writer waited for a group to fill (tests)
}

// Open opens (creating if needed) the journal in cfg.Dir and locks it. It
// reads no records: call Replay before the first Append.
func Open(cfg Config) (*Journal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fs := cfg.FS
	if err := fs.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: create dir %s: %w", cfg.Dir, err)
	}
	if parent := fs.PathDir(cfg.Dir); parent != "" && parent != cfg.Dir {
		if err := syncDir(fs, parent); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	lock, err := fs.Lock(fs.PathJoin(cfg.Dir, lockFileName))
	if err != nil {
		return nil, fmt.Errorf("journal: lock %s: %w", cfg.Dir, err)
	}
	listing, err := listDir(fs, cfg.Dir)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	if listing.spare {
		// An unfinished preallocation; its contents are unknown.
		if err := fs.Remove(fs.PathJoin(cfg.Dir, spareFileName)); err != nil {
			_ = lock.Close()
			return nil, fmt.Errorf("journal: remove spare: %w", err)
		}
	}
	free := listing.free
	for len(free) > cfg.RecycleFiles {
		// Kept by a run with a larger RecycleFiles.
		if err := fs.Remove(fs.PathJoin(cfg.Dir, freeName(free[0]))); err != nil {
			_ = lock.Close()
			return nil, fmt.Errorf("journal: remove released file: %w", err)
		}
		free = free[1:]
	}
	j := &Journal{
		cfg:   cfg,
		fs:    fs,
		log:   cfg.Logger.With("dir", cfg.Dir),
		lock:  lock,
		stopc: make(chan struct{}),
		wakec: make(chan struct{}, 1),

		groupFullBytes: max(1, min(cfg.MaxGroupBytes, cfg.MaxQueueBytes/2)),
	}
	met, err := newMetrics(cfg.Registerer, j.queueDepth)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	j.met = met
	j.mu.cur = &batch{}
	j.files.free = free
	j.freeCount.Store(int64(len(free)))
	j.prep.reqc = make(chan uint64, 1)
	j.prep.resc = make(chan spareResult, 1)
	j.prep.donec = make(chan struct{})
	j.prep.progressc = make(chan struct{}, 1)
	j.w.timer = time.NewTimer(time.Hour)
	j.w.timer.Stop()
	j.wg.Go(j.runWriter)
	j.wg.Go(j.runPreparer)
	return j, nil
}

// Err returns the sticky failure (matching ErrFailed), or nil. A bookie
// whose journal failed must stop acknowledging writes (turn read-only).
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mu.failed
}

// Stats returns cumulative counters.
func (j *Journal) Stats() Stats {
	s := Stats{
		Groups:           j.stats.groups.Load(),
		Records:          j.stats.records.Load(),
		Bytes:            j.stats.bytes.Load(),
		Syncs:            j.stats.syncs.Load(),
		SyncTotal:        time.Duration(j.stats.syncNanos.Load()),
		SyncMax:          time.Duration(j.stats.syncMaxNanos.Load()),
		Rolls:            j.stats.rolls.Load(),
		Recycled:         j.stats.recycled.Load(),
		ReplayCutBytes:   j.stats.cutBytes.Load(),
		QuarantinedFiles: j.stats.quarantined.Load(),
		ReplayCutSuspect: j.stats.cutSuspect.Load(),
		groupWaits:       j.stats.groupWaits.Load(),
	}
	if p := j.stats.cutPos.Load(); p != nil {
		s.ReplayCut = *p
	}
	return s
}

// ReleaseBefore releases the journal files that lie wholly before pos (ids
// below pos.File): up to Config.RecycleFiles of them (of exactly
// Config.FileSizeBytes) are kept, renamed <id>.journal.free, to be recycled
// as later journal files; the rest are deleted, and so are quarantined
// files before pos. It never releases the file being written or any later
// one. Call it only after everything before pos is durable elsewhere (the
// caller's checkpoint mark was persisted): a released file is never
// replayed again.
func (j *Journal) ReleaseBefore(pos Position) error {
	j.mu.Lock()
	closed, replayed := j.mu.closed, j.mu.replayed
	j.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case !replayed:
		return ErrNotReplayed
	}
	limit := min(pos.File, j.activeID.Load())
	j.files.Lock()
	defer j.files.Unlock()
	listing, err := listDir(j.fs, j.cfg.Dir)
	if err != nil {
		return err
	}
	changed := 0
	remove := func(name string) error {
		if err := j.fs.Remove(j.fs.PathJoin(j.cfg.Dir, name)); err != nil {
			return fmt.Errorf("journal: release %s: %w", name, err)
		}
		changed++
		return nil
	}
	for _, id := range listing.files {
		if id >= limit {
			continue
		}
		path := j.fs.PathJoin(j.cfg.Dir, fileName(id))
		if len(j.files.free) < j.cfg.RecycleFiles {
			if info, err := j.fs.Stat(path); err == nil && info.Size() == j.cfg.FileSizeBytes {
				if err := j.fs.Rename(path, j.fs.PathJoin(j.cfg.Dir, freeName(id))); err != nil {
					return fmt.Errorf("journal: release %s: %w", fileName(id), err)
				}
				j.files.free = append(j.files.free, id)
				slices.Sort(j.files.free)
				j.freeCount.Store(int64(len(j.files.free)))
				changed++
				continue
			}
		}
		if err := remove(fileName(id)); err != nil {
			return err
		}
	}
	for _, id := range listing.quarantined {
		if id < limit {
			if err := remove(quarantineName(id)); err != nil {
				return err
			}
		}
	}
	if changed == 0 {
		return nil
	}
	// Wake a preparer that can give up now.
	select {
	case j.prep.progressc <- struct{}{}:
	default:
	}
	// Not needed for safety (a resurrected old file is skipped by a replay
	// from a later position), but keeps the directory state predictable.
	if err := syncDir(j.fs, j.cfg.Dir); err != nil {
		return fmt.Errorf("journal: release: %w", err)
	}
	return nil
}

// recycleFile renames the oldest released file to journal file id and opens
// it, or returns nil, nil if none is kept. Its bytes are an earlier life's:
// records masked with another salt, and a header naming a smaller id,
// which replay reads as "nothing written yet".
func (j *Journal) recycleFile(id uint64) (vfs.File, error) {
	j.files.Lock()
	defer j.files.Unlock()
	if len(j.files.free) == 0 {
		return nil, nil
	}
	old := j.files.free[0]
	f, err := j.renameInto(j.fs.PathJoin(j.cfg.Dir, freeName(old)), id)
	if err != nil {
		return nil, err
	}
	j.files.free = j.files.free[1:]
	j.freeCount.Store(int64(len(j.files.free)))
	j.stats.recycled.Add(1)
	return f, nil
}

// Close stops the journal goroutines and waits for them. The group being
// written when Close is called completes normally; records still queued
// get ErrClosed; every accepted Append's callback has run when Close
// returns. Close is idempotent; it does not return the sticky failure
// (see Err).
func (j *Journal) Close() error {
	j.replayMu.Lock()
	defer j.replayMu.Unlock()
	var err error
	j.closed.Do(func() {
		j.mu.Lock()
		j.mu.closed = true
		if j.mu.spacec != nil {
			close(j.mu.spacec)
			j.mu.spacec = nil
		}
		j.mu.Unlock()
		close(j.stopc)
		j.wg.Wait()
		// The goroutines are gone; fail whatever is still queued.
		j.mu.Lock()
		b := j.mu.cur
		j.mu.cur = &batch{}
		j.mu.Unlock()
		b.fail(0, ErrClosed)

		var errs []error
		if j.w.file != nil {
			errs = append(errs, j.w.file.Close())
			j.w.file = nil
		}
		select {
		case r := <-j.prep.resc:
			if r.file != nil {
				errs = append(errs, r.file.Close(), j.fs.Remove(j.fs.PathJoin(j.cfg.Dir, spareFileName)))
			}
		default:
		}
		if j.w.ready != nil {
			errs = append(errs, j.w.ready.Close(), j.fs.Remove(j.fs.PathJoin(j.cfg.Dir, spareFileName)))
			j.w.ready = nil
		}
		j.met.unregister()
		errs = append(errs, j.lock.Close())
		if e := errors.Join(errs...); e != nil {
			err = fmt.Errorf("journal: close: %w", e)
		}
	})
	return err
}

// queueDepth returns the records and framed bytes queued for the next
// group commit.
func (j *Journal) queueDepth() (records, bytes int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.cur == nil {
		return 0, 0
	}
	return len(j.mu.cur.recs), j.mu.queuedBytes
}
