package namespace

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/segment"
)

// Position says where a reader starts.
type Position struct {
	kind posKind
	dlsn dlog.DLSN
	txid int64
	sub  string
}

type posKind int

const (
	posDLSN posKind = iota + 1
	posTxID
	posStart
	posEnd
	posSubscription
)

// AtDLSN starts at the record at d, or the first one after it.
func AtDLSN(d dlog.DLSN) Position { return Position{kind: posDLSN, dlsn: d} }

// AtTxID starts at the first record with txid >= txid (found by a binary
// search over segments, then entries); if no such record exists yet, the
// reader waits for one.
func AtTxID(txid int64) Position { return Position{kind: posTxID, txid: txid} }

// AtStart starts at the first readable record (after truncation).
func AtStart() Position { return Position{kind: posStart} }

// AtEnd starts after the last record written so far: the reader gets
// only later records.
func AtEnd() Position { return Position{kind: posEnd} }

// AtSubscription starts after the position stored for the subscription.
func AtSubscription(name string) Position { return Position{kind: posSubscription, sub: name} }

func (p Position) String() string {
	switch p.kind {
	case posDLSN:
		return "dlsn " + p.dlsn.String()
	case posTxID:
		return fmt.Sprintf("txid %d", p.txid)
	case posStart:
		return "start"
	case posEnd:
		return "end"
	case posSubscription:
		return "subscription " + p.sub
	}
	return "invalid position"
}

// Reader reads a log in DLSN order from a start position, following it as
// it grows (across segment rolls and writer failovers) until it is closed.
// It never skips or repeats a record: a reader resumed at the DLSN after
// the last one it delivered continues exactly where it stopped.
//
// A Reader is used by one goroutine at a time; Close may be called from
// any goroutine (a blocked Next then returns dlog.ErrClosed). It runs no
// goroutine of its own: Next reads, waits for the LAC (long poll) and
// watches the log's metadata in the caller's goroutine.
type Reader struct {
	n      *Namespace
	log    string
	relist time.Duration
	poll   bool // do not wait: report errCaughtUp instead (helpers)

	base   context.Context // ended by Close
	cancel context.CancelFunc

	c        *segment.Cursor
	lr       *ledger.Reader
	lrLSSN   int64
	buf      []dlog.ReadRecord
	returned dlog.DLSN // last record handed out
	err      error

	mRecords, mBytes prometheus.Counter
	mLag             prometheus.Gauge
	closeOnce        sync.Once
	closed           atomic.Bool // set by Close: buffered records are not handed out
}

// errCaughtUp: a polling reader would have to wait.
var errCaughtUp = errors.New("namespace: reader caught up")

// OpenReader opens a reader of log at pos. Errors (definite):
// dlog.ErrInvalidName, dlog.ErrLogNotFound, dlog.ErrInvalidArgument (an
// invalid DLSN, wrapping dlog.ErrInvalidDLSN; a DLSN after the end of the
// log; a negative txid), dlog.ErrTruncated (the position is in truncated
// or collected data, unless opts.SkipTruncated), dlog.ErrNotFound (an
// unknown subscription), dlog.ErrClosed; metadata and ledger errors.
func (n *Namespace) OpenReader(ctx context.Context, log string, pos Position, opts ReaderOptions) (*Reader, error) {
	if err := checkLogName(log); err != nil {
		return nil, err
	}
	if err := n.checkOpen(); err != nil {
		return nil, err
	}
	r, err := n.newReader(ctx, log, pos, opts)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		r.Close()
		return nil, fmt.Errorf("namespace %s: %w", n.name, dlog.ErrClosed)
	}
	n.mu.readers[r] = struct{}{}
	n.mu.Unlock()
	return r, nil
}

func (n *Namespace) newReader(ctx context.Context, log string, pos Position, opts ReaderOptions) (*Reader, error) {
	st, err := n.store.GetLogState(ctx, n.name, log)
	if err != nil {
		return nil, n.logErr(log, err)
	}
	start, minTxID, err := n.resolve(ctx, log, st, pos)
	if err != nil {
		return nil, err
	}
	cfg := segment.CursorConfig{BatchEntries: n.cfg.ReadAheadEntries, MaxBodyBytes: n.cfg.MaxEntryBytes}
	if opts.ReadAheadEntries > 0 {
		cfg.BatchEntries = opts.ReadAheadEntries
	}
	if opts.SkipTruncated && start.Less(segment.FirstPosition(st)) {
		start = segment.FirstPosition(st)
	}
	c, err := segment.NewCursor(st, start, minTxID, cfg)
	if errors.Is(err, dlog.ErrTruncated) && opts.SkipTruncated {
		c, err = segment.NewCursor(st, segment.FirstPosition(st), minTxID, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("log %s/%s: open reader at %v: %w", n.name, log, pos, err)
	}
	r := &Reader{
		n: n, log: log, relist: n.cfg.ReaderRelistInterval, c: c,
		mRecords: n.metrics.recordsRead.WithLabelValues(log),
		mBytes:   n.metrics.bytesRead.WithLabelValues(log),
		mLag:     n.metrics.readerLag.WithLabelValues(log),
	}
	if opts.RelistInterval > 0 {
		r.relist = opts.RelistInterval
	}
	r.base, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// resolve turns a Position into a start DLSN and a txid filter.
func (n *Namespace) resolve(ctx context.Context, log string, st metadata.LogState, pos Position) (dlog.DLSN, int64, error) {
	switch pos.kind {
	case posStart:
		return segment.FirstPosition(st), -1, nil
	case posDLSN:
		if !pos.dlsn.IsValid() {
			return dlog.DLSN{}, -1, fmt.Errorf("%w: %w: %v", dlog.ErrInvalidArgument, dlog.ErrInvalidDLSN, pos.dlsn)
		}
		return pos.dlsn, -1, nil
	case posSubscription:
		sub, err := n.store.GetSubscription(ctx, n.name, log, pos.sub)
		if err != nil {
			return dlog.DLSN{}, -1, n.subErr(ctx, log, pos.sub, err)
		}
		return sub.Position.Next(), -1, nil
	case posTxID:
		if pos.txid < 0 {
			return dlog.DLSN{}, -1, fmt.Errorf("%w: txid %d", dlog.ErrInvalidArgument, pos.txid)
		}
		d, err := n.txidStart(ctx, st, pos.txid)
		return d, pos.txid, err
	case posEnd:
		d, err := n.endPosition(ctx, st)
		return d, -1, err
	}
	return dlog.DLSN{}, -1, fmt.Errorf("%w: zero Position (use AtDLSN, AtTxID, AtStart, AtEnd or AtSubscription)", dlog.ErrInvalidArgument)
}

// endPosition is the position after the last record written so far.
func (n *Namespace) endPosition(ctx context.Context, st metadata.LogState) (dlog.DLSN, error) {
	d := segment.FirstPosition(st)
	if k := len(st.Segments); k > 0 {
		last := st.Segments[k-1]
		if last.State == metadata.SegmentCompleted {
			d = dlog.DLSN{LSSN: last.LSSN + 1}
		} else {
			lr, err := n.ledgers.OpenReader(ctx, last.LedgerID)
			if err != nil {
				return dlog.DLSN{}, fmt.Errorf("segment %d: %w", last.LSSN, err)
			}
			d = dlog.DLSN{LSSN: last.LSSN, EntryID: lr.LAC() + 1}
			lr.Close()
		}
	}
	if d.Less(st.Truncation) {
		d = st.Truncation
	}
	return d, nil
}

// txidStart finds where the first record with txid >= txid is, or would
// be: a binary search over segments by their last txid, then over the
// entries of the segment found.
func (n *Namespace) txidStart(ctx context.Context, st metadata.LogState, txid int64) (dlog.DLSN, error) {
	s, ok := segment.TxIDSegment(st, txid)
	if !ok {
		return n.endPosition(ctx, st)
	}
	lr, err := n.ledgers.OpenReader(ctx, s.LedgerID)
	if err != nil {
		return dlog.DLSN{}, fmt.Errorf("segment %d: %w", s.LSSN, err)
	}
	defer lr.Close()
	hi := lr.LAC()
	if s.State == metadata.SegmentCompleted {
		hi = s.LastEntryID
	}
	lo := int64(0)
	if st.Truncation.LSSN == s.LSSN {
		lo = min(st.Truncation.EntryID, hi+1)
	}
	search := segment.NewEntrySearch(lo, hi)
	for e, ok := search.Probe(); ok; e, ok = search.Probe() {
		es, err := lr.Read(ctx, e, e)
		if err != nil {
			return dlog.DLSN{}, fmt.Errorf("segment %d: txid search: %w", s.LSSN, err)
		}
		reach, err := segment.ReachesTxID(es[0].Payload, txid)
		if err != nil {
			return dlog.DLSN{}, fmt.Errorf("segment %d entry %d: %w", s.LSSN, e, err)
		}
		search.Feed(e, reach)
	}
	d := dlog.DLSN{LSSN: s.LSSN, EntryID: search.Result()}
	if d.Less(st.Truncation) {
		d = st.Truncation
	}
	return d, nil
}

// Next returns the next record, waiting for one if the reader is at the
// end of the log. Errors: ctx's (the reader stays usable); dlog.ErrClosed;
// terminal ones, returned again by every later call:
// dlog.ErrEndOfStream (after the last record of a sealed log),
// dlog.ErrTruncated (records the reader had not read yet were collected),
// dlog.ErrLogNotFound (the log was deleted), dlog.ErrCorrupt (data that
// fails its checks; the reader stops rather than skip).
func (r *Reader) Next(ctx context.Context) (dlog.ReadRecord, error) {
	if r.closed.Load() {
		return dlog.ReadRecord{}, r.errClosed()
	}
	if len(r.buf) == 0 {
		if err := r.fill(ctx); err != nil {
			return dlog.ReadRecord{}, err
		}
	}
	rec := r.buf[0]
	r.buf[0] = dlog.ReadRecord{}
	r.buf = r.buf[1:]
	r.returned = rec.DLSN
	return rec, nil
}

// NextBatch returns between 1 and max records (all already fetched, or,
// when none is, waiting for the next), with the errors of Next.
func (r *Reader) NextBatch(ctx context.Context, max int) ([]dlog.ReadRecord, error) {
	if max < 1 {
		return nil, fmt.Errorf("%w: batch of %d", dlog.ErrInvalidArgument, max)
	}
	if r.closed.Load() {
		return nil, r.errClosed()
	}
	if len(r.buf) == 0 {
		if err := r.fill(ctx); err != nil {
			return nil, err
		}
	}
	k := min(max, len(r.buf))
	out := make([]dlog.ReadRecord, k)
	copy(out, r.buf)
	clear(r.buf[:k])
	r.buf = r.buf[k:]
	r.returned = out[k-1].DLSN
	return out, nil
}

// All iterates over the records from the reader's position, waiting for
// new ones, until an error: the last pair carries it (dlog.ErrEndOfStream
// for a sealed log's end, ctx's when ctx ends). Breaking out of the loop
// leaves the reader usable.
func (r *Reader) All(ctx context.Context) iter.Seq2[dlog.ReadRecord, error] {
	return func(yield func(dlog.ReadRecord, error) bool) {
		for {
			rec, err := r.Next(ctx)
			if err != nil {
				yield(dlog.ReadRecord{}, err)
				return
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// LastDLSN returns the DLSN of the last record Next, NextBatch or All
// returned (dlog.InvalidDLSN before the first). Resuming
// AtDLSN(LastDLSN().Next()) continues without a gap or a repeat.
func (r *Reader) LastDLSN() dlog.DLSN { return r.returned }

// Close ends the reader; a Next blocked in another goroutine returns
// dlog.ErrClosed, and so does every later call. Safe to call twice; it
// always returns nil (the reader holds nothing that can fail to close).
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.cancel()
		r.n.mu.Lock()
		delete(r.n.mu.readers, r)
		r.n.mu.Unlock()
	})
	return nil
}

// fill drives the cursor until records are buffered or an error ends the
// call.
func (r *Reader) fill(ctx context.Context) error {
	if r.err != nil {
		return r.err
	}
	ctx, stop := r.callContext(ctx)
	defer stop()
	bo := r.n.newBackoff()
	for {
		if err := r.closedErr(ctx); err != nil {
			return err
		}
		act := r.c.Next()
		var err error
		switch act.Kind {
		case segment.ActFail:
			r.err = fmt.Errorf("log %s/%s: %w", r.n.name, r.log, act.Err)
			r.closeLedger()
			return r.err
		case segment.ActOpen:
			err = r.open(ctx, act)
		case segment.ActRead:
			err = r.read(ctx, act)
			if len(r.buf) > 0 {
				return nil
			}
		case segment.ActWaitLAC:
			if r.poll {
				return errCaughtUp
			}
			err = r.waitLAC(ctx, act)
		case segment.ActWaitLog:
			if r.poll {
				if err := r.relistNow(ctx); err != nil {
					return err
				}
				if r.c.Next().Kind == segment.ActWaitLog {
					return errCaughtUp
				}
				continue
			}
			err = r.waitLog(ctx)
		}
		switch {
		case err == nil:
			bo = r.n.newBackoff()
		case r.closedErr(ctx) != nil:
			return r.closedErr(ctx)
		case errors.Is(err, dlog.ErrCorrupt):
			r.err = fmt.Errorf("log %s/%s: %w", r.n.name, r.log, err)
			return r.err
		default:
			r.n.log.Debug("reader retrying", "log", r.log, "action", act.Kind.String(), "lssn", act.LSSN, "err", err)
			if !bo.wait(ctx) {
				return r.closedErr(ctx)
			}
		}
	}
}

// callContext merges ctx with the reader's lifetime.
func (r *Reader) callContext(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.base, cancel)
	return ctx, func() { stop(); cancel() }
}

func (r *Reader) errClosed() error {
	return fmt.Errorf("log %s/%s: reader: %w", r.n.name, r.log, dlog.ErrClosed)
}

func (r *Reader) closedErr(ctx context.Context) error {
	switch {
	case r.base.Err() != nil:
		return r.errClosed()
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return nil
}

func (r *Reader) closeLedger() {
	if r.lr != nil {
		r.lr.Close()
		r.lr = nil
	}
}

func (r *Reader) open(ctx context.Context, act segment.Action) error {
	r.closeLedger()
	lr, err := r.n.ledgers.OpenReader(ctx, act.LedgerID)
	if err != nil {
		if errors.Is(err, ledger.ErrNoLedger) {
			// Deleted (collected, or the log deleted): the metadata tells.
			return r.relistAfterLoss(ctx, act, err)
		}
		return err
	}
	r.lr, r.lrLSSN = lr, act.LSSN
	r.c.Opened(act.LSSN, lr.LAC(), lr.Sealed())
	return nil
}

// relistAfterLoss re-reads the metadata after a ledger turned out missing;
// if the cursor still wants the same ledger afterwards, the metadata
// references a ledger that does not exist.
func (r *Reader) relistAfterLoss(ctx context.Context, act segment.Action, cause error) error {
	if err := r.relistNow(ctx); err != nil {
		return err
	}
	if next := r.c.Next(); next.Kind != segment.ActFail && next.LedgerID == act.LedgerID && next.LSSN == act.LSSN && r.c.Revision() > 0 {
		return fmt.Errorf("segment %d: %w", act.LSSN, cause)
	}
	return nil
}

func (r *Reader) read(ctx context.Context, act segment.Action) error {
	if r.lr == nil || r.lrLSSN != act.LSSN {
		return fmt.Errorf("namespace: reader has no ledger for segment %d", act.LSSN)
	}
	es, rerr := r.lr.Read(ctx, act.First, act.Last)
	if len(es) > 0 {
		in := make([]segment.Entry, len(es))
		for i, e := range es {
			in[i] = segment.Entry{ID: e.ID, Payload: e.Payload}
		}
		recs, err := r.c.Entries(act.LSSN, in)
		for _, rec := range recs {
			r.mRecords.Inc()
			r.mBytes.Add(float64(len(rec.Payload)))
		}
		r.buf = append(r.buf, recs...)
		if _, next, lac, ok := r.c.Position(); ok {
			r.mLag.Set(float64(lac - next + 1))
		}
		if err != nil {
			return err
		}
	}
	switch {
	case rerr == nil:
		return nil
	case errors.Is(rerr, ledger.ErrNoLedger), errors.Is(rerr, ledger.ErrInconsistent):
		// A collected segment's ledger is deleted after its metadata: the
		// metadata decides whether this is truncation or data loss.
		if err := r.relistAfterLoss(ctx, act, rerr); err != nil {
			return err
		}
		return nil
	}
	return rerr
}

func (r *Reader) waitLAC(ctx context.Context, act segment.Action) error {
	if r.lr == nil || r.lrLSSN != act.LSSN {
		return fmt.Errorf("namespace: reader has no ledger for segment %d", act.LSSN)
	}
	wctx, cancel := context.WithTimeout(ctx, r.relist)
	lac, err := r.lr.WaitLAC(wctx, act.LAC)
	cancel()
	switch {
	case err == nil:
		r.c.LAC(act.LSSN, lac, r.lr.Sealed())
		return nil
	case errors.Is(err, ledger.ErrEndOfLedger):
		r.c.LAC(act.LSSN, lac, true)
		// The ledger is closed: its segment is completed (or deleted)
		// next in metadata.
		return r.relistNow(ctx)
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		// Nothing new for a while: re-read the metadata in case a watch
		// was missed (a reader must never stall silently).
		return r.relistNow(ctx)
	case errors.Is(err, ledger.ErrNoLedger):
		return r.relistAfterLoss(ctx, act, err)
	}
	return err
}

// waitLog waits for a change of the log's metadata after the cursor's
// view (or RelistInterval), then re-reads it.
func (r *Reader) waitLog(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, r.relist)
	defer cancel()
	events := r.n.store.WatchLog(wctx, r.n.name, r.log, r.c.Revision()+1)
	select {
	case <-events:
	case <-wctx.Done():
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return r.relistNow(ctx)
}

func (r *Reader) relistNow(ctx context.Context) error {
	st, err := r.n.store.GetLogState(ctx, r.n.name, r.log)
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		r.c.Deleted()
		return nil
	case err != nil:
		return err
	}
	r.c.Update(st)
	return nil
}
