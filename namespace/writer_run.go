package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
	"github.com/dlog-io/dlog/internal/segment"
)

// testHooks let this package's tests stop a writer at the worst moments.
type testHooks struct {
	// afterRollCreate runs after a roll committed the next segment and
	// before it completes the previous one; an error makes the writer
	// crash there (abort without completing anything).
	afterRollCreate func(log string) error
	// ignoreOwnershipLost makes writers blind to Ownership.Lost, as a
	// writer paused past its lease would be: only bookie fencing and
	// metadata CAS can stop it then.
	ignoreOwnershipLost bool
}

var errTestCrash = errors.New("namespace: test crash")

// OpenWriter takes the log's writer lock and returns its writer, after
// recovering every segment a previous writer left in progress (fencing
// its ledger, so that writer can never be acknowledged again; completing
// the segment with what the ledger holds, or deleting it when it holds no
// record) and starting a new segment. Errors: dlog.ErrInvalidName,
// dlog.ErrLogNotFound, *dlog.OwnedError (another writer holds the log and
// opts.Wait is false; definite), dlog.ErrClosed, an error wrapping
// dlog.ErrFenced if another writer took the log during the open, ctx's
// error, metadata and ledger errors (dlog.ErrUnavailable). A sealed log
// opens, but every write fails with dlog.ErrEndOfStream.
func (n *Namespace) OpenWriter(ctx context.Context, log string, opts WriterOptions) (*Writer, error) {
	if err := checkLogName(log); err != nil {
		return nil, err
	}
	if err := n.checkOpen(); err != nil {
		return nil, err
	}
	if opts.OwnerID == "" {
		opts.OwnerID = n.cfg.OwnerID
	}
	b, err := recordset.NewBuilder(recordset.Config{
		MaxRecordBytes: n.cfg.MaxRecordBytes, MaxSetBytes: n.cfg.MaxEntryBytes, FlushBytes: min(n.cfg.FlushBytes, n.cfg.MaxEntryBytes),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", dlog.ErrInvalidArgument, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		n: n, log: log, ownerID: opts.OwnerID, ownerAddress: opts.OwnerAddress,
		lg:  n.log.With("log", log),
		ctx: wctx, cancel: cancel,
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	w.mRecords = n.metrics.recordsWritten.WithLabelValues(log)
	w.mBytes = n.metrics.bytesWritten.WithLabelValues(log)
	w.mu.builder = b
	w.mu.phase = phaseNone
	w.mu.room = make(chan struct{})
	if err := n.registerWriter(log, w); err != nil {
		cancel()
		return nil, err
	}
	fail := func(err error) (*Writer, error) {
		cancel()
		if w.own != nil {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = w.own.Release(rctx)
			rcancel()
		}
		n.unregisterWriter(log, w)
		return nil, err
	}
	sess, err := n.session(ctx)
	if err != nil {
		return fail(err)
	}
	own, err := n.store.AcquireOwnership(ctx, sess, n.name, log,
		metadata.OwnerInfo{ID: opts.OwnerID, Address: opts.OwnerAddress, Acquired: time.Now()}, opts.Wait)
	var owned *dlog.OwnedError
	switch {
	case errors.As(err, &owned):
		return fail(err)
	case err != nil:
		return fail(n.logErr(log, err))
	}
	w.own = own
	st, err := n.store.GetLogState(ctx, n.name, log)
	if err != nil {
		return fail(n.logErr(log, err))
	}
	for _, s := range segment.InProgress(st) {
		if st, _, err = n.recoverSegment(ctx, log, st, s, own); err != nil {
			return fail(err)
		}
	}
	w.mu.st = st
	w.mu.lastTxID = st.MaxTxID
	w.mu.lastDLSN = lastKnownDLSN(st)
	if segment.Sealed(st) {
		w.mu.sealed = true
	} else {
		seg, st2, err := w.startSegment(ctx, st, false, 0)
		if err != nil {
			return fail(err)
		}
		w.mu.st = st2
		w.installLocked(seg)
	}
	if err := n.promoteWriter(log, w); err != nil {
		w.mu.Lock()
		seg := w.mu.seg
		w.mu.Unlock()
		if seg != nil {
			seg.lw.Abort() // the next writer recovers the segment
		}
		return fail(err)
	}
	w.wg.Go(w.run)
	w.lg.Info("writer open", "owner", opts.OwnerID, "max-txid", st.MaxTxID, "segments", len(st.Segments))
	return w, nil
}

// lastKnownDLSN is the last record position metadata knows of (completed
// segments only).
func lastKnownDLSN(st metadata.LogState) dlog.DLSN {
	for i := len(st.Segments) - 1; i >= 0; i-- {
		if d, ok := segment.LastDLSN(st.Segments[i]); ok {
			return d
		}
	}
	return dlog.InvalidDLSN
}

// startSegment creates the next segment's ledger and commits the segment.
func (w *Writer) startSegment(ctx context.Context, st metadata.LogState, rolling bool, prevCount int64) (*openSegment, metadata.LogState, error) {
	n := w.n
	lw, err := n.createLedger(ctx, w.log, st.MaxLSSN+1)
	if err != nil {
		return nil, st, fmt.Errorf("log %s: start segment: %w", w.log, err)
	}
	w.mu.Lock()
	first := w.mu.lastTxID
	if len(w.mu.queue) > 0 && len(w.mu.queue[0].recs) > 0 {
		first = w.mu.queue[0].recs[0].TxID
	}
	w.mu.Unlock()
	p, seg, err := segment.Create(st, segment.NewSegment{
		LedgerID: lw.ID(), FirstTxID: max(first, 0), WriterID: w.ownerID, Now: time.Now(),
		Rolling: rolling, PrevRecordCount: prevCount,
	})
	if err == nil {
		st, err = n.commitPlan(ctx, w.log, st, p, w.own)
	}
	if err != nil {
		lw.Abort()
		n.deleteLedgers(context.WithoutCancel(ctx), w.log, []int64{lw.ID()})
		return nil, st, fmt.Errorf("log %s: start segment %d: %w", w.log, seg.LSSN, err)
	}
	seg, _ = segment.Find(st, seg.LSSN)
	w.lg.Debug("segment started", "lssn", seg.LSSN, "ledger-id", lw.ID(), "start-sequence-id", seg.StartSequenceID)
	return &openSegment{meta: seg, lw: lw, created: time.Now(), ackEntry: -1, ackSlot: -1, ackTxID: -1}, st, nil
}

// installLocked makes seg the current segment and sends what is queued.
func (w *Writer) installLocked(seg *openSegment) {
	w.mu.seg = seg
	w.mu.phase = phaseReady
	w.mu.roll = false
	w.mu.rollNext = time.Time{}
	w.transmitLocked()
}

// run is the supervisor: it applies ledger callbacks and performs the
// segment lifecycle (roll, heal, seal, close) so that writes never wait on
// metadata. It exits when the writer closes, is fenced or aborted.
func (w *Writer) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lost <-chan struct{}
	if !w.n.hooks.ignoreOwnershipLost {
		lost = w.own.Lost()
	}
	for {
		w.drainAcks()
		wake, stop := w.step()
		if stop {
			return
		}
		var timerC <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(max(time.Until(wake), 0))
			timerC = timer.C
		}
		select {
		case <-w.kick:
		case <-timerC:
		case <-lost:
			w.fence(fmt.Errorf("log %s/%s: %w: ownership lost", w.n.name, w.log, dlog.ErrFenced))
			return
		case <-w.ctx.Done():
			return
		}
		if timerC != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// step does whatever lifecycle work is due and returns when to wake up
// for the next timed work.
func (w *Writer) step() (wake time.Time, stop bool) {
	w.mu.Lock()
	if w.mu.err != nil || w.mu.stopped {
		w.mu.Unlock()
		return time.Time{}, true
	}
	seg := w.mu.seg
	idle := len(w.mu.inflight) == 0
	switch {
	case w.mu.phase == phaseHealing:
		w.mu.Unlock()
		w.heal()
		return time.Time{}, false
	case seg != nil && seg.eosAcked && idle:
		w.mu.Unlock()
		w.completeSealed()
		return time.Time{}, false
	case w.mu.closing && len(w.mu.queue) == 0 && idle && !w.mu.sealing:
		w.mu.Unlock()
		w.finishClose()
		return time.Time{}, true
	case w.mu.phase == phaseRolling && idle:
		w.mu.Unlock()
		w.rollSegment()
		return time.Time{}, false
	}
	now := time.Now()
	if w.mu.phase == phaseReady && !w.mu.sealing && !w.mu.closing {
		if seg.nextPos > 0 && w.n.cfg.SegmentRollInterval > 0 && !seg.created.Add(w.n.cfg.SegmentRollInterval).After(now) {
			w.mu.roll = true
		}
		if w.rollDueLocked(now) {
			w.mu.phase = phaseRolling
			w.mu.Unlock()
			notify(w.kick)
			return time.Time{}, false
		}
	}
	w.transmitLocked()
	if len(w.mu.queue) > 0 && w.mu.phase == phaseReady {
		wake = w.mu.queuedAt.Add(w.n.cfg.FlushInterval)
	}
	if seg != nil && w.mu.phase == phaseReady {
		next := w.mu.rollNext
		if next.IsZero() && seg.nextPos > 0 && w.n.cfg.SegmentRollInterval > 0 {
			next = seg.created.Add(w.n.cfg.SegmentRollInterval)
		}
		if !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
			wake = next
		}
	}
	w.mu.Unlock()
	return wake, false
}

// rollSegment switches to a new segment once every entry of the current
// one is acknowledged: create the next segment first, then complete the
// previous one (a crash in between leaves both in progress; the next
// writer recovers both in order). Writes queue meanwhile.
func (w *Writer) rollSegment() {
	ctx := w.ctx
	w.mu.Lock()
	old, st := w.mu.seg, w.mu.st
	w.mu.Unlock()
	if old.nextEntry == 0 {
		w.mu.Lock()
		w.mu.phase, w.mu.roll = phaseReady, false
		w.transmitLocked()
		w.mu.Unlock()
		return
	}
	next, st, err := w.startSegment(ctx, st, true, old.nextPos)
	if err != nil {
		if errors.Is(err, dlog.ErrFenced) {
			w.fence(err)
			return
		}
		// The current segment is healthy: keep writing to it and try the
		// roll again later.
		w.lg.Warn("segment roll failed; retrying later", "lssn", old.meta.LSSN, "err", err)
		w.mu.Lock()
		w.mu.st = st
		w.mu.phase = phaseReady
		w.mu.rollNext = time.Now().Add(w.n.cfg.RetryMax)
		w.transmitLocked()
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	w.mu.st = st
	w.mu.Unlock()
	if h := w.n.hooks.afterRollCreate; h != nil {
		if err := h(w.log); err != nil {
			next.lw.Abort()
			w.terminate(dlog.Indeterminate(fmt.Errorf("%w: %w", errTestCrash, err)), true)
			w.cancel()
			return
		}
	}
	st, err = w.completeSegment(ctx, st, old)
	if err != nil {
		next.lw.Abort()
		w.fence(err)
		return
	}
	w.n.metrics.rolls.Inc()
	w.lg.Debug("segment rolled", "lssn", old.meta.LSSN, "records", old.nextPos, "next-lssn", next.meta.LSSN)
	w.mu.Lock()
	w.mu.st = st
	w.installLocked(next)
	w.mu.Unlock()
}

// completeSegment closes the ledger of a segment whose every entry was
// acknowledged and completes the segment from what the writer knows (or
// deletes it when it holds nothing).
func (w *Writer) completeSegment(ctx context.Context, st metadata.LogState, seg *openSegment) (metadata.LogState, error) {
	md, err := seg.lw.Close(ctx)
	if err != nil {
		return st, fmt.Errorf("log %s: close segment %d: %w", w.log, seg.meta.LSSN, err)
	}
	tail := seg.tail()
	if md.LastEntryID != tail.LastEntryID {
		return st, fmt.Errorf("log %s: segment %d: %w: ledger closed at %d, writer acknowledged %d", w.log, seg.meta.LSSN, dlog.ErrCorrupt, md.LastEntryID, tail.LastEntryID)
	}
	cur, ok := segment.Find(st, seg.meta.LSSN)
	if !ok {
		return st, errFenced(w.log, fmt.Errorf("segment %d is gone", seg.meta.LSSN))
	}
	p, err := segment.Complete(st, cur, tail, time.Now())
	if err != nil {
		return st, err
	}
	st, err = w.n.commitPlan(ctx, w.log, st, p, w.own)
	if err != nil {
		return st, err
	}
	w.n.deleteLedgers(ctx, w.log, p.DeleteLedgers)
	return st, nil
}

// heal recovers the writer's own failed segment and starts a new one,
// retrying with backoff while bookies or metadata are unreachable. Writes
// queue meanwhile; they are sent once a new segment exists. Losing the log
// ends the writer (fenced).
func (w *Writer) heal() {
	// A lost lock ends the healing at once (the supervisor's own select
	// does not run meanwhile).
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	if !w.n.hooks.ignoreOwnershipLost {
		stop := make(chan struct{})
		var watcher sync.WaitGroup
		watcher.Go(func() {
			select {
			case <-w.own.Lost():
				cancel()
			case <-stop:
			}
		})
		defer func() { close(stop); watcher.Wait() }()
	}
	w.mu.Lock()
	seg, st := w.mu.seg, w.mu.st
	w.mu.Unlock()
	// Stop the ledger writer: every pending add gets its callback before
	// Abort returns, so nothing is in flight afterwards.
	seg.lw.Abort()
	w.drainAcks()
	w.mu.Lock()
	for _, e := range w.mu.inflight {
		w.failEntryLocked(e, w.failure(seg, seg.broken))
	}
	w.mu.inflight = nil
	w.mu.Unlock()

	cur, ok := segment.Find(st, seg.meta.LSSN)
	if !ok {
		w.fence(errFenced(w.log, fmt.Errorf("segment %d is gone", seg.meta.LSSN)))
		return
	}
	st, tail, err := w.n.recoverSegment(ctx, w.log, st, cur, w.own)
	if err != nil {
		w.n.metrics.heals.WithLabelValues("fenced").Inc()
		w.fence(fmt.Errorf("log %s: heal segment %d: %w", w.log, seg.meta.LSSN, err))
		return
	}
	w.mu.Lock()
	w.mu.st = st
	w.mu.seg = nil
	w.mu.phase = phaseNone
	if tail.RecordCount > 0 {
		// The recovered records are in the log whatever their writes were
		// told.
		w.mu.lastDLSN = lastKnownDLSN(st)
	}
	if tail.EndOfStream {
		w.mu.sealed = true
		w.failQueueLocked(fmt.Errorf("log %s/%s: %w", w.n.name, w.log, dlog.ErrEndOfStream))
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	bo := w.n.newBackoff()
	for {
		next, st2, err := w.startSegment(ctx, st, false, 0)
		st = st2
		if err == nil {
			w.mu.Lock()
			w.mu.st = st
			w.installLocked(next)
			w.mu.Unlock()
			w.n.metrics.heals.WithLabelValues("ok").Inc()
			w.lg.Info("writer healed", "failed-lssn", seg.meta.LSSN, "recovered-records", tail.RecordCount, "lssn", next.meta.LSSN)
			return
		}
		if errors.Is(err, dlog.ErrFenced) || ctx.Err() != nil || !isTransient(err) {
			w.n.metrics.heals.WithLabelValues("fenced").Inc()
			w.fence(err)
			return
		}
		w.lg.Warn("cannot start a segment yet; retrying", "err", err)
		if !bo.wait(ctx) {
			return
		}
		if fresh, err := w.n.store.GetLogState(ctx, w.n.name, w.log); err == nil {
			st = fresh
		}
	}
}

// completeSealed completes the segment whose last entry is the
// end-of-stream record, which seals the log.
func (w *Writer) completeSealed() {
	w.mu.Lock()
	seg, st := w.mu.seg, w.mu.st
	w.mu.Unlock()
	st, err := w.completeSegment(w.ctx, st, seg)
	if err != nil {
		w.fence(err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.st = st
	w.mu.seg = nil
	w.mu.phase = phaseNone
	w.mu.sealing = false
	w.mu.sealed = true
	if eos := w.mu.eosItem; eos != nil {
		w.mu.eosItem = nil
		d, _ := segment.LastDLSN(mustFind(st, seg.meta.LSSN))
		w.resolveItemLocked(eos, d, nil)
	}
	w.lg.Info("log sealed", "lssn", seg.meta.LSSN)
}

func mustFind(st metadata.LogState, lssn int64) metadata.Segment {
	s, _ := segment.Find(st, lssn)
	return s
}

// finishClose completes the current segment and releases the log.
func (w *Writer) finishClose() {
	w.mu.Lock()
	seg, st := w.mu.seg, w.mu.st
	w.mu.Unlock()
	var err error
	if seg != nil {
		_, err = w.completeSegment(w.ctx, st, seg)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if rerr := w.own.Release(rctx); rerr != nil {
		w.lg.Warn("release ownership", "err", rerr)
	}
	cancel()
	w.mu.Lock()
	w.mu.seg = nil
	w.mu.phase = phaseNone
	w.mu.closeErr = err
	w.mu.err = fmt.Errorf("log %s/%s: writer closed: %w", w.n.name, w.log, dlog.ErrClosed)
	w.mu.stopped = true
	w.mu.Unlock()
	w.n.unregisterWriter(w.log, w)
	w.lg.Info("writer closed", "err", err)
}

// fence ends the writer for good after it lost the log: everything pending
// fails with err (which wraps dlog.ErrFenced), later writes too.
func (w *Writer) fence(err error) {
	if w.ctx.Err() != nil {
		// An abort ended the supervisor's work; abort reports why.
		w.terminate(dlog.Indeterminate(fmt.Errorf("log %s/%s: writer aborted: %w", w.n.name, w.log, dlog.ErrClosed)), true)
		return
	}
	if !errors.Is(err, dlog.ErrFenced) && !errors.Is(err, dlog.ErrClosed) {
		err = fmt.Errorf("%w: %w", dlog.ErrFenced, err)
	}
	w.lg.Warn("writer fenced", "err", err)
	w.terminate(err, true)
}

// abort stops the writer without completing its segment, as a crash
// would (the next writer recovers it): pending writes fail with an
// indeterminate error and the lock is released. Safe to call twice; never
// called by the supervisor itself (it would wait for itself).
func (w *Writer) abort(err error) {
	// Cancel first: a goroutine holding the writer's lock may be waiting
	// in AddAsync for ledger back-pressure, which the context ends.
	w.cancel()
	w.terminate(dlog.Indeterminate(err), true)
	w.wg.Wait()
}

// terminate fails everything with err, stops the ledger writer and
// releases the lock.
func (w *Writer) terminate(err error, release bool) {
	w.mu.Lock()
	if w.mu.err != nil {
		w.mu.Unlock()
		return
	}
	w.mu.err = err
	if w.mu.closeErr == nil {
		w.mu.closeErr = err
	}
	seg := w.mu.seg
	for _, e := range w.mu.inflight {
		w.failEntryLocked(e, err)
	}
	w.mu.inflight = nil
	w.failQueueLocked(err)
	if w.mu.eosItem != nil {
		w.resolveItemLocked(w.mu.eosItem, dlog.InvalidDLSN, err)
		w.mu.eosItem = nil
	}
	w.mu.Unlock()
	if seg != nil {
		seg.lw.Abort()
	}
	if release && w.own != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = w.own.Release(rctx)
		cancel()
	}
	w.n.unregisterWriter(w.log, w)
}

// ---- flush, seal, truncate, close ----

// Flush sends everything accepted so far and waits until it is
// acknowledged. It returns the error of the last write accepted before
// it, if that failed, or ctx's error.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	var last *Future
	if n := len(w.mu.queue); n > 0 {
		last = w.mu.queue[n-1].fut
	} else if n := len(w.mu.inflight); n > 0 {
		items := w.mu.inflight[n-1].items
		last = items[len(items)-1].fut
	}
	if last == nil {
		err := w.mu.err
		w.mu.Unlock()
		if errors.Is(err, dlog.ErrClosed) {
			return nil
		}
		return err
	}
	w.mu.forced = true
	w.transmitLocked()
	w.mu.Unlock()
	_, err := last.Wait(ctx)
	return err
}

// MarkEndOfStream writes the end-of-stream marker after everything
// accepted before it and seals the log: every later write fails with
// dlog.ErrEndOfStream (definite), readers get dlog.ErrEndOfStream after the
// last record, and no writer can write the log again. Calling it on a
// sealed log returns nil. Errors: as WriteAsync; after an indeterminate
// error the marker may or may not be written (call again).
func (w *Writer) MarkEndOfStream(ctx context.Context) error {
	w.mu.Lock()
	if w.mu.sealed {
		w.mu.Unlock()
		return nil
	}
	if w.mu.eosItem != nil {
		f := w.mu.eosItem.fut
		w.mu.Unlock()
		_, err := f.Wait(ctx)
		return err
	}
	w.mu.Unlock()
	it, _ := w.newItem(nil, true)
	if err := w.accept(ctx, []*item{it}); err != nil {
		return err
	}
	notify(w.kick)
	_, err := it.fut.Wait(ctx)
	return err
}

// Close sends and acknowledges everything accepted, completes the current
// segment and releases the log. If ctx ends first the writer is aborted:
// pending writes fail (indeterminate) and the segment is left for the
// next writer to recover. Calling Close again returns the first result.
// Errors: ctx's, an error wrapping dlog.ErrFenced if the writer had lost
// the log, metadata and ledger errors.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.mu.err != nil {
		err := w.mu.closeErr
		w.mu.Unlock()
		w.wg.Wait()
		return err
	}
	w.mu.closing = true
	w.mu.forced = true
	w.transmitLocked()
	w.mu.Unlock()
	notify(w.kick)
	select {
	case <-w.done:
	case <-ctx.Done():
		w.abort(fmt.Errorf("log %s/%s: close: %w", w.n.name, w.log, ctx.Err()))
		return fmt.Errorf("log %s/%s: close: %w", w.n.name, w.log, ctx.Err())
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if errors.Is(w.mu.closeErr, dlog.ErrClosed) {
		return nil
	}
	return w.mu.closeErr
}

// Truncate moves the log's truncation point forward to d: records before
// d become unreadable and their segments are deleted by the collector. A d
// at or before the current point is a no-op. Errors (definite):
// dlog.ErrInvalidArgument (an invalid d, wrapping dlog.ErrInvalidDLSN, or
// one after the last acknowledged record); an error wrapping dlog.ErrFenced
// when the writer lost the log; dlog.ErrClosed; metadata errors.
func (w *Writer) Truncate(ctx context.Context, d dlog.DLSN) error {
	w.mu.Lock()
	if err := w.mu.err; err != nil {
		w.mu.Unlock()
		return err
	}
	end := dlog.DLSN{}
	if seg := w.mu.seg; seg != nil {
		end = dlog.DLSN{LSSN: seg.meta.LSSN}
		if seg.ackEntry >= 0 {
			end = dlog.DLSN{LSSN: seg.meta.LSSN, EntryID: seg.ackEntry, SlotID: seg.ackSlot + 1}
		}
	}
	w.mu.Unlock()
	return w.n.truncate(ctx, w.log, d, end, w.own)
}

// LastTxID returns the highest txid the writer accepted (or the log's max
// txid when it opened): the next write needs a txid at least this.
func (w *Writer) LastTxID() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.lastTxID
}

// LastDLSN returns the position of the last acknowledged record
// (dlog.InvalidDLSN before any).
func (w *Writer) LastDLSN() dlog.DLSN {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.lastDLSN
}

// Log returns the log's name.
func (w *Writer) Log() string { return w.log }

// Err returns the writer's terminal error: nil while it can write.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}
