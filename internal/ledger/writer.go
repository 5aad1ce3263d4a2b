package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
	"github.com/dlog-io/dlog/internal/placement"
	"github.com/dlog-io/dlog/internal/quorum"
)

// Writer appends entries to one ledger it created. Entries get ids 0, 1,
// 2, ... in the order AddAsync accepts them, and complete (callback) in
// that order. It is safe for concurrent use. See the package documentation
// for the protocol and the goroutines it runs.
type Writer struct {
	c         *Client
	id        int64
	p         quorum.Params
	masterKey []byte
	format    int // entry format (formatRaw, formatLength)
	log       *slog.Logger

	// slots holds one token per accepted add whose callback has not run
	// yet; its capacity is Config.MaxPendingAdds (the admission bound).
	slots chan struct{}

	// metaMu serialises the writer's metadata read-modify-writes (ensemble
	// changes, close). Lock order: metaMu, then mu.
	metaMu sync.Mutex

	mu struct {
		sync.Mutex
		tr       *quorum.Tracker
		ensemble []string // tr.Ensemble(), kept to avoid copies on the hot path
		md       metadata.LedgerMetadata
		version  metadata.Version
		// ops are the accepted adds whose callbacks have not run, in entry
		// order: acknowledged or failed ones (completed) first, then the
		// tracker's pending ones.
		ops []*addOp
		// err is terminal: set once (fenced, no bookies, closed, aborted);
		// every pending add failed with it and no ack counts afterwards.
		err     error
		closing bool
		closed  bool // Close finished (successfully or not)
		closeMD metadata.LedgerMetadata
		length  int64 // payload bytes of acknowledged entries
		// pushed is the payload bytes of every entry accepted: the
		// cumulative length the next entry's header adds to.
		pushed int64
		// lastSentLAC is the LAC piggybacked on the latest add sent;
		// lastExplicitLAC the latest LAC sent by WriteLAC.
		lastSentLAC, lastExplicitLAC int64
		// everFailed bookies are never chosen as replacements by this
		// writer (a crashed bookie stays registered until its lease ends).
		everFailed placement.Set
		// unreplaceable: the last ensemble change found no replacement for
		// some failed member; retry when the registry changes.
		unreplaceable bool
		idleWaiters   []chan struct{}
	}

	changec  chan struct{} // capacity 1: an ensemble change is wanted
	lacc     chan struct{} // capacity 1: idle with a LAC no add carried
	deliverc chan struct{} // capacity 1: completed adds await callbacks
	stopc    chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// addOp is one accepted add.
type addOp struct {
	entryID   int64
	add       *bookiepb.AddRequest // framed entry; dropped once completed
	size      int
	done      func(entryID int64, err error)
	start     time.Time
	completed bool
	err       error
}

func newWriter(c *Client, id int64, md metadata.LedgerMetadata, ver metadata.Version) (*Writer, error) {
	p := quorum.Params{EnsembleSize: md.EnsembleSize, WriteQuorum: md.WriteQuorum, AckQuorum: md.AckQuorum}
	ensemble := md.Fragments[len(md.Fragments)-1].Bookies
	tr, err := quorum.NewTracker(p, ensemble)
	if err != nil {
		return nil, fmt.Errorf("ledger %d: %w", id, err)
	}
	if err := checkFormat(id, md.EntryFormat); err != nil {
		return nil, err
	}
	w := &Writer{
		c:         c,
		id:        id,
		p:         p,
		masterKey: md.MasterKey,
		format:    md.EntryFormat,
		log:       c.log.With("ledger-id", id),
		slots:     make(chan struct{}, c.cfg.MaxPendingAdds),
		changec:   make(chan struct{}, 1),
		lacc:      make(chan struct{}, 1),
		deliverc:  make(chan struct{}, 1),
		stopc:     make(chan struct{}),
	}
	w.mu.tr = tr
	w.mu.ensemble = slices.Clone(ensemble)
	w.mu.md = cloneMetadata(md)
	w.mu.version = ver
	w.mu.lastSentLAC, w.mu.lastExplicitLAC = -1, -1
	w.mu.everFailed = placement.NewSet()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(w.deliverLoop)
	w.wg.Go(func() { w.superviseLoop(ctx) })
	return w, nil
}

// ID returns the ledger id.
func (w *Writer) ID() int64 { return w.id }

// LAC returns the last add confirmed: every entry up to it is acknowledged.
func (w *Writer) LAC() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.tr.LAC()
}

// Metadata returns a copy of the ledger metadata as the writer last stored
// or read it.
func (w *Writer) Metadata() metadata.LedgerMetadata {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cloneMetadata(w.mu.md)
}

// Err returns the writer's terminal error (nil while it can still add).
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

// AddAsync adds payload as the next entry. If it returns nil, done is
// called exactly once, with the entry id once the entry is acknowledged
// (Qa bookies of its write set fsynced it and every earlier entry is
// acknowledged), or with -1 and an error; callbacks run in entry order on
// the writer's delivery goroutine and must not block on this writer (no
// Add, no Close). If it returns an error nothing was sent (definite):
// ErrTooLarge, ErrClosed, ErrOverloaded (MaxPendingAdds adds in flight
// until ctx ended), or the writer's terminal error (ErrFenced,
// ErrNotEnoughBookies). ctx bounds only the wait for admission. The writer
// keeps payload until the entry completes: do not modify it.
//
// Errors given to done: ErrFenced (the ledger was recovered by someone
// else), ErrNotEnoughBookies, ErrClosed wrapped with dlog.Indeterminate
// (Abort, or Close whose ctx ended): the entry may or may not be in the
// ledger.
func (w *Writer) AddAsync(ctx context.Context, payload []byte, done func(entryID int64, err error)) error {
	if done == nil {
		return fmt.Errorf("%w: nil callback", ErrInvalidArgument)
	}
	if len(payload) > w.c.cfg.MaxEntryBytes {
		return fmt.Errorf("ledger %d: %w: %d bytes, at most %d", w.id, ErrTooLarge, len(payload), w.c.cfg.MaxEntryBytes)
	}
	select {
	case w.slots <- struct{}{}:
	default:
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("ledger %d: %w: %w", w.id, ErrOverloaded, ctx.Err())
		case <-w.stopc:
			return fmt.Errorf("ledger %d: %w", w.id, ErrClosed)
		}
	}
	w.mu.Lock()
	if err := w.admitErrLocked(); err != nil {
		w.mu.Unlock()
		<-w.slots
		return err
	}
	id, sends := w.mu.tr.Add()
	lac := w.mu.tr.LAC()
	w.mu.lastSentLAC = lac
	w.mu.pushed += int64(len(payload))
	op := &addOp{
		entryID: id,
		add:     &bookiepb.AddRequest{Entry: bookiepb.NewEntry(w.id, id, lac, frame(w.format, w.mu.pushed, payload)), MasterKey: w.masterKey},
		size:    len(payload),
		done:    done,
		start:   time.Now(),
	}
	w.mu.ops = append(w.mu.ops, op)
	if len(sends) < w.p.AckQuorum {
		// Failed members leave this entry short of Qa: the supervisor must
		// replace them or fail the writer.
		notify(w.changec)
	}
	add := op.add // failLocked may drop op.add once mu is released
	w.mu.Unlock()
	for _, s := range sends {
		w.send(add, s)
	}
	return nil
}

func (w *Writer) admitErrLocked() error {
	switch {
	case w.mu.err != nil:
		return w.mu.err
	case w.mu.closing:
		return fmt.Errorf("ledger %d: %w", w.id, ErrClosed)
	}
	return nil
}

// Add is AddAsync waiting for the outcome. If ctx ends first it returns an
// indeterminate error (the entry may still be acknowledged later).
func (w *Writer) Add(ctx context.Context, payload []byte) (int64, error) {
	type result struct {
		id  int64
		err error
	}
	ch := make(chan result, 1)
	if err := w.AddAsync(ctx, payload, func(id int64, err error) { ch <- result{id, err} }); err != nil {
		return -1, err
	}
	select {
	case r := <-ch:
		return r.id, r.err
	case <-ctx.Done():
		return -1, dlog.Indeterminate(fmt.Errorf("ledger %d: add: %w", w.id, ctx.Err()))
	}
}

// send sends one framed entry to one bookie; the answer goes to
// onAddResult. Never called with w.mu held (the answer may come back on
// this goroutine).
func (w *Writer) send(add *bookiepb.AddRequest, s quorum.Send) {
	addr, ok := w.c.Address(s.Bookie)
	if !ok {
		w.onAddResult(s, fmt.Errorf("%w: bookie %s has no known address", bookieclient.ErrUnavailable, s.Bookie))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.AddTimeout)
	// The add names its bookie: another identity started at that address
	// refuses it (ErrWrongBookie, a failure of s.Bookie) rather than
	// acknowledge it as s.Bookie.
	w.c.bk.AddAsyncTo(ctx, addr, s.Bookie, add, func(err error) {
		cancel()
		w.onAddResult(s, err)
	})
}

// onAddResult feeds one bookie's answer to an add into the tracker. It runs
// on bookie client goroutines and never blocks.
func (w *Writer) onAddResult(s quorum.Send, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.err != nil {
		return // terminal: nothing is acknowledged any more
	}
	switch {
	case err == nil:
		acked, aerr := w.mu.tr.Ack(s.EntryID, s.Index, s.Bookie)
		if aerr != nil {
			w.log.Error("unexpected add ack", "entry-id", s.EntryID, "bookie", s.Bookie, "err", aerr)
			return
		}
		w.completeLocked(acked)
	case errors.Is(err, bookieclient.ErrFenced):
		w.failLocked(fencedError(w.id, fmt.Sprintf("bookie %s answered fenced to entry %d", s.Bookie, s.EntryID)))
	case errors.Is(err, bookieclient.ErrUnauthorized):
		w.failLocked(fencedError(w.id, fmt.Sprintf("bookie %s refused the master key: %v", s.Bookie, err)))
	case errors.Is(err, bookieclient.ErrClosed):
		w.failLocked(dlog.Indeterminate(fmt.Errorf("ledger %d: bookie client closed: %w", w.id, ErrClosed)))
	case errors.Is(err, bookieclient.ErrTooLarge), errors.Is(err, bookieclient.ErrBadRequest):
		// Entry ids are contiguous: an entry no bookie will take ends the
		// ledger for this writer.
		w.failLocked(fmt.Errorf("ledger %d: entry %d refused by bookie %s: %w", w.id, s.EntryID, s.Bookie, err))
	default:
		if w.mu.ensemble[s.Index] != s.Bookie || slices.Contains(w.mu.tr.Failed(), s.Index) {
			return // already replaced, or already waiting for a replacement
		}
		if !w.mu.everFailed.Has(s.Bookie) {
			w.log.Warn("bookie failed an add; changing ensemble", "entry-id", s.EntryID, "bookie", s.Bookie, "err", err)
		}
		w.mu.everFailed[s.Bookie] = struct{}{}
		if _, ferr := w.mu.tr.Fail(s.Index); ferr != nil {
			w.log.Error("mark bookie failed", "bookie", s.Bookie, "err", ferr)
			return
		}
		notify(w.changec)
	}
}

// completeLocked marks the acknowledged range complete.
func (w *Writer) completeLocked(r quorum.EntryRange) {
	if r.Empty() {
		return
	}
	base := w.mu.ops[0].entryID
	now := time.Now()
	for e := r.First; e <= r.Last; e++ {
		op := w.mu.ops[e-base]
		op.completed = true
		op.add = nil
		w.mu.length += int64(op.size)
		w.c.metrics.addLatency.Observe(now.Sub(op.start).Seconds())
	}
	w.c.metrics.adds.WithLabelValues("ok").Add(float64(r.Len()))
	notify(w.deliverc)
	if w.mu.tr.Pending() == 0 {
		w.wakeIdleLocked()
		if w.c.cfg.ExplicitLACDelay > 0 && w.mu.tr.LAC() > w.mu.lastSentLAC {
			notify(w.lacc)
		}
	}
}

// failLocked makes err terminal: every add not yet acknowledged fails with
// it and nothing is acknowledged afterwards.
func (w *Writer) failLocked(err error) {
	if w.mu.err != nil {
		return
	}
	w.mu.err = err
	n := 0
	for _, op := range w.mu.ops {
		if !op.completed {
			op.completed, op.err, op.add = true, err, nil
			n++
		}
	}
	if n > 0 {
		w.c.metrics.adds.WithLabelValues("error").Add(float64(n))
	}
	if errors.Is(err, ErrFenced) {
		w.c.metrics.fencedWriters.Inc()
	}
	if !errors.Is(err, ErrClosed) {
		w.log.Warn("ledger writer failed", "lac", w.mu.tr.LAC(), "failed-adds", n, "err", err)
	}
	notify(w.deliverc)
	w.wakeIdleLocked()
}

func (w *Writer) wakeIdleLocked() {
	for _, ch := range w.mu.idleWaiters {
		close(ch)
	}
	w.mu.idleWaiters = nil
}

// deliverLoop runs callbacks of completed adds in entry order.
func (w *Writer) deliverLoop() {
	for {
		stopping := false
		select {
		case <-w.deliverc:
		case <-w.stopc:
			stopping = true
		}
		w.deliverReady()
		if stopping {
			return
		}
	}
}

func (w *Writer) deliverReady() {
	for {
		w.mu.Lock()
		if len(w.mu.ops) == 0 || !w.mu.ops[0].completed {
			w.mu.Unlock()
			return
		}
		op := w.mu.ops[0]
		w.mu.ops[0] = nil
		w.mu.ops = w.mu.ops[1:]
		w.mu.Unlock()
		if op.err != nil {
			op.done(-1, op.err)
		} else {
			op.done(op.entryID, nil)
		}
		<-w.slots
	}
}

// Close waits for every pending add to complete, then closes the ledger in
// metadata (state CLOSED, last entry = LAC, length = acknowledged payload
// bytes) and stops the writer's goroutines. It returns the closed metadata.
// If ctx ends before the adds complete, the writer is aborted (see Abort)
// and the ledger stays OPEN for recovery. If the writer was fenced, or the
// ledger was recovered meanwhile, Close returns an error wrapping ErrFenced
// (unless the recovered ledger ends exactly at this writer's LAC). Close
// must be called once the writer is no longer used, even after a failure;
// calling it again returns the first result. Never call it from an add
// callback.
func (w *Writer) Close(ctx context.Context) (metadata.LedgerMetadata, error) {
	w.mu.Lock()
	if w.mu.closed {
		md, err := cloneMetadata(w.mu.closeMD), w.mu.err
		w.mu.Unlock()
		if errors.Is(err, errClosedOK) {
			err = nil
		}
		return md, err
	}
	w.mu.closing = true
	idle := make(chan struct{})
	if w.mu.tr.Pending() == 0 || w.mu.err != nil {
		close(idle)
	} else {
		w.mu.idleWaiters = append(w.mu.idleWaiters, idle)
	}
	w.mu.Unlock()

	select {
	case <-idle:
	case <-ctx.Done():
		w.Abort()
		return w.Metadata(), fmt.Errorf("ledger %d: close: %w", w.id, ctx.Err())
	}
	md, err := w.closeMetadata(ctx)
	w.mu.Lock()
	if err != nil {
		w.failLocked(err)
	} else {
		w.mu.err = errClosedOK
		w.mu.closeMD = cloneMetadata(md)
		w.mu.md = cloneMetadata(md)
	}
	w.mu.closed = true
	w.mu.Unlock()
	w.stop()
	return md, err
}

// errClosedOK is the terminal state of a writer closed successfully: later
// adds fail with it (it wraps ErrClosed).
var errClosedOK = fmt.Errorf("%w: writer closed the ledger", ErrClosed)

// closeMetadata CASes the ledger to CLOSED at the writer's LAC.
func (w *Writer) closeMetadata(ctx context.Context) (metadata.LedgerMetadata, error) {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	w.mu.Lock()
	if err := w.mu.err; err != nil {
		w.mu.Unlock()
		return metadata.LedgerMetadata{}, err
	}
	lac := w.mu.tr.LAC()
	next := cloneMetadata(w.mu.md)
	ver := w.mu.version
	next.State = metadata.LedgerClosed
	next.LastEntryID = lac
	next.Length = w.mu.length
	w.mu.Unlock()

	v, cur, err := w.updateLedger(ctx, ver, next)
	switch {
	case err == nil:
		w.mu.Lock()
		w.mu.version = v
		w.mu.Unlock()
		w.log.Debug("ledger closed", "last-entry-id", lac, "length", next.Length)
		return next, nil
	case errors.Is(err, errMetadataChanged):
		if cur.State == metadata.LedgerClosed && cur.LastEntryID == lac {
			// Recovered by someone else, to exactly what this writer
			// acknowledged: nothing was lost and nothing more exists.
			return cur, nil
		}
		return cur, fencedError(w.id, fmt.Sprintf("ledger is %v at last entry %d while this writer's LAC is %d", stateName(cur.State), cur.LastEntryID, lac))
	}
	return metadata.LedgerMetadata{}, fmt.Errorf("ledger %d: close: %w", w.id, err)
}

// Abort stops the writer without closing the ledger (as a crash would):
// pending adds fail with an indeterminate ErrClosed and the ledger stays
// OPEN until someone recovers it. Safe to call more than once, and after
// Close; never from an add callback (it waits for the delivery goroutine).
func (w *Writer) Abort() {
	w.mu.Lock()
	w.failLocked(dlog.Indeterminate(fmt.Errorf("ledger %d: writer aborted: %w", w.id, ErrClosed)))
	w.mu.closed = true
	w.mu.Unlock()
	w.stop()
}

func (w *Writer) stop() {
	w.stopOnce.Do(func() {
		close(w.stopc)
		w.cancel()
	})
	w.wg.Wait()
	w.c.forgetWriter(w)
}

// notify does a non-blocking send on a capacity-1 signal channel.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func stateName(s metadata.LedgerState) string {
	switch s {
	case metadata.LedgerOpen:
		return "OPEN"
	case metadata.LedgerInRecovery:
		return "IN_RECOVERY"
	case metadata.LedgerClosed:
		return "CLOSED"
	}
	return fmt.Sprintf("state(%d)", int(s))
}
