package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
	"github.com/dlog-io/dlog/internal/segment"
)

// Writer is the single writer of a log. Writes are accepted in order,
// batched into entries (record sets) of the current segment's ledger and
// acknowledged in order once durable; the writer rolls segments by size
// and age, recovers its own segment after a failed add and continues in a
// new one, and stops for good only when it loses the log (dlog.ErrFenced)
// or is closed. It is safe for concurrent use: concurrent writes are
// ordered by the moment the writer accepts them.
//
// Goroutines: one supervisor per writer (rolls, flush timer, self-healing,
// close; started by OpenWriter, stopped by Close, abort or fencing), plus
// the ledger writer's own.
type Writer struct {
	n            *Namespace
	log          string
	ownerID      string
	ownerAddress string
	own          metadata.Ownership
	lg           *slog.Logger

	ctx    context.Context // ended by abort: stops the supervisor's I/O
	cancel context.CancelFunc
	kick   chan struct{} // capacity 1: the supervisor has work
	acks   inbox
	done   chan struct{} // closed when the supervisor has exited
	wg     sync.WaitGroup

	mRecords, mBytes prometheus.Counter

	mu struct {
		sync.Mutex
		phase   phase
		seg     *openSegment // nil while there is none (sealed, before the first)
		st      metadata.LogState
		builder *recordset.Builder

		queue        []*item // accepted, not yet in an entry
		queueBytes   int
		queuedAt     time.Time // when the oldest queued item was accepted
		inflight     []*entry  // sent to the current segment, not yet acknowledged
		pendingRecs  int       // queued + in flight
		pendingBytes int64
		room         chan struct{} // closed when pending shrinks

		lastTxID int64     // highest accepted txid (the log's max txid at open)
		lastDLSN dlog.DLSN // last acknowledged record
		sealing  bool      // end-of-stream accepted
		eosItem  *item     // the end-of-stream write, until the log is sealed
		sealed   bool      // the log is sealed
		closing  bool
		forced   bool // a flush asked to send everything queued
		roll     bool // the current segment should roll
		rollNext time.Time
		err      error // terminal: every later write fails with it
		closeErr error
		stopped  bool
	}
}

type phase int

const (
	phaseNone    phase = iota + 1 // no segment (sealed, or not started)
	phaseReady                    // entries are sent to the current segment
	phaseRolling                  // waiting for in-flight entries, then switching segment
	phaseHealing                  // the current segment failed; recovering it
)

// item is one accepted write: a record, an atomic record set, or the
// end-of-stream marker.
type item struct {
	recs     []dlog.Record
	eos      bool
	fut      *Future
	size     int // body bytes: records with their headers
	accepted time.Time
}

// entry is one record set sent as a ledger entry.
type entry struct {
	seg      *openSegment
	items    []*item
	records  int
	users    int64
	bytes    int64 // pending bytes it accounts for
	lastTxID int64
	slots    int
	eos      bool
	done     bool
}

// openSegment is the segment the writer appends to.
type openSegment struct {
	meta      metadata.Segment // as committed; its Version is current
	lw        *ledger.Writer
	created   time.Time
	nextEntry int64 // entries sent
	nextPos   int64 // user records sent
	bytes     int64 // entry bytes sent
	// acknowledged tail
	ackEntry, ackSlot, ackTxID int64
	broken                     error
	eosAcked                   bool
}

func (s *openSegment) tail() segment.Tail {
	t := segment.Tail{LastEntryID: s.ackEntry, LastSlotID: s.ackSlot, RecordCount: s.nextPos, LastTxID: s.ackTxID, EndOfStream: s.eosAcked}
	if s.ackEntry < 0 {
		t = segment.EmptyTail
	}
	return t
}

// ackResult is one ledger callback, handed to the supervisor.
type ackResult struct {
	e   *entry
	id  int64
	err error
}

// inbox is a queue from ledger callbacks (which must not block) to the
// supervisor. Its length is bounded by the entries in flight.
type inbox struct {
	mu    sync.Mutex
	items []ackResult
}

func (b *inbox) push(a ackResult) {
	b.mu.Lock()
	b.items = append(b.items, a)
	b.mu.Unlock()
}

func (b *inbox) take() []ackResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.items
	b.items = nil
	return out
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ---- accepting writes ----

// WriteAsync accepts rec and returns at once. The future resolves with
// the record's DLSN once it is durable, or with an error:
//
//   - definite, nothing written: dlog.ErrInvalidArgument (negative txid or
//     dlog.MaxTxID), dlog.ErrRecordTooLarge, dlog.ErrTxIDOutOfOrder (txid
//     below the last accepted one), dlog.ErrEndOfStream (sealed),
//     dlog.ErrClosed, dlog.ErrOverCapacity (MaxPendingRecords or
//     MaxPendingBytes reached);
//   - indeterminate: an error wrapping dlog.ErrFenced (another writer took
//     the log) or marked dlog.Indeterminate (the segment failed; the writer
//     recovers it, and whether the record is in the log is decided by that
//     recovery — a reader will tell).
//
// The writer keeps rec.Payload until the future resolves: do not modify
// it meanwhile.
func (w *Writer) WriteAsync(rec dlog.Record) *Future {
	it, err := w.newItem([]dlog.Record{rec}, false)
	if err != nil {
		return failedFuture(err)
	}
	if err := w.accept(nil, []*item{it}); err != nil {
		return failedFuture(err)
	}
	return it.fut
}

// Write is WriteAsync waiting for the outcome; while the writer is full it
// waits for room. If ctx ends first it returns an indeterminate error
// (the record may still be written) — or, when the record was not yet
// accepted, a definite dlog.ErrOverCapacity.
func (w *Writer) Write(ctx context.Context, rec dlog.Record) (dlog.DLSN, error) {
	it, err := w.newItem([]dlog.Record{rec}, false)
	if err != nil {
		return dlog.InvalidDLSN, err
	}
	if err := w.accept(ctx, []*item{it}); err != nil {
		return dlog.InvalidDLSN, err
	}
	return it.fut.Wait(ctx)
}

// WriteBulkAsync accepts recs as consecutive writes, atomically with
// respect to other writes. The records are validated together: if one is
// invalid, every future fails with the same definite error and nothing is
// written. Otherwise the results follow prefix-failure semantics: if
// record k fails, every later record of the bulk fails too.
func (w *Writer) WriteBulkAsync(recs []dlog.Record) []*Future {
	items := make([]*item, len(recs))
	futs := make([]*Future, len(recs))
	var err error
	for i := range recs {
		if items[i], err = w.newItem(recs[i:i+1], false); err != nil {
			err = fmt.Errorf("bulk record %d: %w", i, err)
			break
		}
	}
	if err == nil {
		err = w.accept(nil, items)
	}
	for i := range futs {
		if err != nil {
			futs[i] = failedFuture(err)
		} else {
			futs[i] = items[i].fut
		}
	}
	return futs
}

// WriteBulk writes recs (see WriteBulkAsync) and waits. It returns the
// DLSNs of the acknowledged prefix and the error of the first record that
// failed (every later record failed too); a nil error means every record
// was written.
func (w *Writer) WriteBulk(ctx context.Context, recs []dlog.Record) ([]dlog.DLSN, error) {
	items := make([]*item, len(recs))
	for i := range recs {
		it, err := w.newItem(recs[i:i+1], false)
		if err != nil {
			return nil, fmt.Errorf("bulk record %d: %w", i, err)
		}
		items[i] = it
	}
	if err := w.accept(ctx, items); err != nil {
		return nil, err
	}
	out := make([]dlog.DLSN, 0, len(items))
	for i, it := range items {
		d, err := it.fut.Wait(ctx)
		if err != nil {
			return out, fmt.Errorf("bulk record %d: %w", i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// WriteRecordSetAsync writes recs atomically, as one entry: all are in the
// log or none. The future resolves with the first record's DLSN; record i
// is at the same lssn and entry with slot DLSN.SlotID + i. The set must
// fit one entry (Config.MaxEntryBytes; else dlog.ErrRecordTooLarge). Errors
// as WriteAsync.
func (w *Writer) WriteRecordSetAsync(recs []dlog.Record) *Future {
	if len(recs) == 0 {
		return failedFuture(fmt.Errorf("%w: empty record set", dlog.ErrInvalidArgument))
	}
	it, err := w.newItem(recs, false)
	if err != nil {
		return failedFuture(err)
	}
	if err := w.accept(nil, []*item{it}); err != nil {
		return failedFuture(err)
	}
	return it.fut
}

// WriteRecordSet is WriteRecordSetAsync waiting for the outcome; it
// returns the DLSN of every record. Errors: those of WriteAsync and
// dlog.ErrInvalidArgument for an empty set (definite); while the writer
// is full it waits for room as Write does. An error leaves either every
// record of the set in the log or none of them.
func (w *Writer) WriteRecordSet(ctx context.Context, recs []dlog.Record) ([]dlog.DLSN, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: empty record set", dlog.ErrInvalidArgument)
	}
	it, err := w.newItem(recs, false)
	if err != nil {
		return nil, err
	}
	if err := w.accept(ctx, []*item{it}); err != nil {
		return nil, err
	}
	first, err := it.fut.Wait(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dlog.DLSN, len(recs))
	for i := range out {
		out[i] = dlog.DLSN{LSSN: first.LSSN, EntryID: first.EntryID, SlotID: first.SlotID + int64(i)}
	}
	return out, nil
}

// newItem validates records without looking at the writer's state.
func (w *Writer) newItem(recs []dlog.Record, eos bool) (*item, error) {
	cfg := &w.n.cfg
	size := 0
	prev := int64(-1)
	for i, r := range recs {
		switch {
		case r.TxID < 0 || r.TxID == dlog.MaxTxID:
			return nil, fmt.Errorf("%w: record %d: txid %d is reserved", dlog.ErrInvalidArgument, i, r.TxID)
		case len(r.Payload) > cfg.MaxRecordBytes:
			return nil, fmt.Errorf("%w: record %d: %d bytes, at most %d", dlog.ErrRecordTooLarge, i, len(r.Payload), cfg.MaxRecordBytes)
		case r.TxID < prev:
			return nil, fmt.Errorf("%w: record %d: txid %d after %d", dlog.ErrTxIDOutOfOrder, i, r.TxID, prev)
		}
		if err := checkTag(r); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		prev = r.TxID
		size += recordset.RecordOverhead + len(r.Payload) + recordset.TagSize(r.ProducerID)
	}
	if size > cfg.MaxEntryBytes {
		return nil, fmt.Errorf("%w: record set of %d bytes, an entry holds at most %d", dlog.ErrRecordTooLarge, size, cfg.MaxEntryBytes)
	}
	if eos {
		size = recordset.RecordOverhead
	}
	return &item{recs: recs, eos: eos, fut: newFuture(), size: size}, nil
}

// checkTag validates a record's idempotency tag (dlog.Record): a
// producer id of 1 to dlog.MaxProducerIDLength printable ASCII bytes and a
// sequence >= 0, or neither.
func checkTag(r dlog.Record) error {
	if r.ProducerID == "" {
		if r.Sequence != 0 {
			return fmt.Errorf("%w: sequence %d without a producer id", dlog.ErrInvalidArgument, r.Sequence)
		}
		return nil
	}
	if len(r.ProducerID) > dlog.MaxProducerIDLength || r.Sequence < 0 {
		return fmt.Errorf("%w: producer id of %d bytes (at most %d), sequence %d (>= 0)", dlog.ErrInvalidArgument, len(r.ProducerID), dlog.MaxProducerIDLength, r.Sequence)
	}
	for i := 0; i < len(r.ProducerID); i++ {
		if c := r.ProducerID[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: producer id has byte %#x at %d; printable ASCII only", dlog.ErrInvalidArgument, c, i)
		}
	}
	return nil
}

// acceptErrLocked is why the writer refuses new writes, if it does.
func (w *Writer) acceptErrLocked() error {
	switch {
	case w.mu.err != nil:
		return w.mu.err
	case w.mu.sealed || w.mu.sealing:
		return fmt.Errorf("log %s/%s: %w", w.n.name, w.log, dlog.ErrEndOfStream)
	case w.mu.closing:
		return fmt.Errorf("log %s/%s: writer closing: %w", w.n.name, w.log, dlog.ErrClosed)
	}
	return nil
}

// accept queues items in order (all or none). With ctx nil it fails at
// once when the writer is full; otherwise it waits for room until ctx ends.
func (w *Writer) accept(ctx context.Context, items []*item) error {
	recs, bytes := 0, int64(0)
	for _, it := range items {
		recs += max(len(it.recs), 1)
		bytes += int64(it.size)
	}
	first := int64(-1)
	if len(items) > 0 && len(items[0].recs) > 0 {
		first = items[0].recs[0].TxID
	}
	last := first
	for _, it := range items {
		if n := len(it.recs); n > 0 {
			if it.recs[0].TxID < last {
				return fmt.Errorf("%w: txid %d after %d in the same call", dlog.ErrTxIDOutOfOrder, it.recs[0].TxID, last)
			}
			last = it.recs[n-1].TxID
		}
	}
	w.mu.Lock()
	for {
		if err := w.acceptErrLocked(); err != nil {
			w.mu.Unlock()
			return err
		}
		if first >= 0 && first < w.mu.lastTxID {
			w.mu.Unlock()
			return fmt.Errorf("log %s/%s: %w: txid %d is below the last accepted %d", w.n.name, w.log, dlog.ErrTxIDOutOfOrder, first, w.mu.lastTxID)
		}
		full := w.mu.pendingRecs+recs > w.n.cfg.MaxPendingRecords || w.mu.pendingBytes+bytes > w.n.cfg.MaxPendingBytes
		if !full || w.mu.pendingRecs == 0 {
			break
		}
		if ctx == nil {
			w.mu.Unlock()
			w.n.metrics.writeErrors.WithLabelValues("over-capacity").Inc()
			return fmt.Errorf("log %s/%s: %w: %d records, %d bytes pending", w.n.name, w.log, dlog.ErrOverCapacity, w.mu.pendingRecs, w.mu.pendingBytes)
		}
		room := w.mu.room
		w.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("log %s/%s: %w: waiting for room: %w", w.n.name, w.log, dlog.ErrOverCapacity, ctx.Err())
		case <-w.done:
		}
		w.mu.Lock()
	}
	now := time.Now()
	if len(w.mu.queue) == 0 {
		w.mu.queuedAt = now
	}
	for _, it := range items {
		it.accepted = now
		w.mu.queue = append(w.mu.queue, it)
		w.mu.queueBytes += it.size
		if it.eos {
			w.mu.sealing = true // nothing is accepted after the marker
			w.mu.eosItem = it
		}
	}
	w.mu.pendingRecs += recs
	w.mu.pendingBytes += bytes
	if last > w.mu.lastTxID {
		w.mu.lastTxID = last
	}
	w.transmitLocked()
	queued := len(w.mu.queue) > 0
	w.mu.Unlock()
	if queued {
		notify(w.kick) // arm the flush timer
	}
	return nil
}

// ---- sending entries ----

// transmitLocked sends queued items to the current segment while the
// batching policy says so: at once when nothing is in flight (no latency
// added while idle), when a full entry is queued, when the oldest item
// waited FlushInterval, or when a flush, seal or close asks for it.
func (w *Writer) transmitLocked() {
	for len(w.mu.queue) > 0 && w.mu.phase == phaseReady && w.mu.err == nil {
		if w.rollDueLocked(time.Now()) {
			// Stop adding to this segment: the supervisor rolls once its
			// entries are acknowledged, and the queue goes to the next.
			w.mu.phase = phaseRolling
			notify(w.kick)
			return
		}
		cfg := &w.n.cfg
		send := cfg.FlushBytes == 0 || w.mu.queueBytes >= cfg.FlushBytes || len(w.mu.inflight) == 0 ||
			w.mu.forced || w.mu.sealing || w.mu.closing || time.Since(w.mu.queuedAt) >= cfg.FlushInterval
		if !send {
			return
		}
		w.sendEntryLocked()
	}
	if len(w.mu.queue) == 0 {
		w.mu.forced = false
	}
}

// rollDueLocked reports whether the current segment should roll now.
func (w *Writer) rollDueLocked(now time.Time) bool {
	return w.mu.roll && !w.mu.sealing && !w.mu.closing && (w.mu.rollNext.IsZero() || !w.mu.rollNext.After(now))
}

// sendEntryLocked builds one entry from the head of the queue and adds it
// to the ledger. The ledger callback only hands the result to the
// supervisor, so AddAsync may block here (ledger back-pressure) without
// deadlock.
func (w *Writer) sendEntryLocked() {
	seg := w.mu.seg
	b := w.mu.builder
	b.Reset(seg.nextPos)
	e := &entry{seg: seg, lastTxID: -1}
	size := 0
	for len(w.mu.queue) > 0 {
		it := w.mu.queue[0]
		if it.eos {
			if b.Len() > 0 {
				break // the end-of-stream record travels alone
			}
			if err := b.Append(recordset.Record{Flags: recordset.FlagControl | recordset.FlagEndOfStream, TxID: dlog.MaxTxID}); err != nil {
				panic(fmt.Sprintf("namespace: end-of-stream record: %v", err))
			}
			e.eos = true
		} else {
			if b.Len() > 0 && size+it.size > w.n.cfg.MaxEntryBytes {
				break
			}
			for _, r := range it.recs {
				if err := b.Append(recordset.Record{TxID: r.TxID, Payload: r.Payload, ProducerID: r.ProducerID, Sequence: r.Sequence}); err != nil {
					// newItem checked sizes against the same limits.
					panic(fmt.Sprintf("namespace: record does not fit an entry: %v", err))
				}
				e.lastTxID = r.TxID
			}
			e.users += int64(len(it.recs))
		}
		size += it.size
		e.items = append(e.items, it)
		e.records += max(len(it.recs), 1)
		e.bytes += int64(it.size)
		w.mu.queue[0] = nil
		w.mu.queue = w.mu.queue[1:]
		w.mu.queueBytes -= it.size
		if e.eos || w.n.cfg.FlushBytes == 0 || b.Size() >= w.n.cfg.FlushBytes {
			break
		}
	}
	e.slots = b.Len()
	if len(w.mu.queue) > 0 {
		w.mu.queuedAt = w.mu.queue[0].accepted
	}
	payload, err := b.Build(w.n.codec)
	if err != nil {
		panic(fmt.Sprintf("namespace: build entry: %v", err))
	}
	err = seg.lw.AddAsync(w.ctx, payload, func(id int64, err error) {
		w.acks.push(ackResult{e: e, id: id, err: err})
		notify(w.kick)
	})
	if err != nil {
		// Nothing was sent; the ledger writer is broken (or aborted).
		w.failEntryLocked(e, w.failure(seg, err))
		w.breakSegmentLocked(seg, err)
		return
	}
	seg.nextEntry++
	seg.nextPos += e.users
	seg.bytes += int64(len(payload))
	w.mu.inflight = append(w.mu.inflight, e)
	w.n.metrics.entryRecords.Observe(float64(e.slots))
	if seg.bytes >= w.n.cfg.SegmentRollBytes {
		w.mu.roll = true
	}
}

// failure is the error pending writes of a broken segment get.
func (w *Writer) failure(seg *openSegment, cause error) error {
	if errors.Is(cause, dlog.ErrFenced) {
		return fmt.Errorf("log %s/%s segment %d: %w", w.n.name, w.log, seg.meta.LSSN, cause)
	}
	return dlog.Indeterminate(fmt.Errorf("log %s/%s segment %d failed (the writer recovers it; a reader tells whether the write is in the log): %w",
		w.n.name, w.log, seg.meta.LSSN, cause))
}

// breakSegmentLocked records the segment's first failure: nothing more is
// sent to it, everything queued fails (so a bulk write fails as a suffix,
// never with a hole), and the supervisor heals.
func (w *Writer) breakSegmentLocked(seg *openSegment, cause error) {
	if seg.broken != nil {
		return
	}
	seg.broken = cause
	if w.mu.seg == seg && w.mu.err == nil && (w.mu.phase == phaseReady || w.mu.phase == phaseRolling) {
		w.mu.phase = phaseHealing
		w.lg.Warn("segment failed; recovering it", "lssn", seg.meta.LSSN, "ledger-id", seg.meta.LedgerID, "err", cause)
	}
	w.failQueueLocked(w.failure(seg, cause))
	notify(w.kick)
}

func (w *Writer) failQueueLocked(err error) {
	for _, it := range w.mu.queue {
		w.resolveItemLocked(it, dlog.InvalidDLSN, err)
	}
	w.mu.queue = nil
	w.mu.queueBytes = 0
	w.mu.forced = false
}

func (w *Writer) failEntryLocked(e *entry, err error) {
	if e.done {
		return
	}
	e.done = true
	for _, it := range e.items {
		w.resolveItemLocked(it, dlog.InvalidDLSN, err)
	}
}

// resolveItemLocked resolves an item's future and returns its room.
func (w *Writer) resolveItemLocked(it *item, d dlog.DLSN, err error) {
	select {
	case <-it.fut.done:
		return
	default:
	}
	it.fut.resolve(d, err)
	if it.eos && err != nil && w.mu.eosItem == it {
		w.mu.eosItem = nil
		w.mu.sealing = false
	}
	w.mu.pendingRecs -= max(len(it.recs), 1)
	w.mu.pendingBytes -= int64(it.size)
	if w.mu.room != nil {
		close(w.mu.room)
	}
	w.mu.room = make(chan struct{})
	if err != nil {
		switch {
		case dlog.IsDefinite(err):
			w.n.metrics.writeErrors.WithLabelValues("definite").Inc()
		case errors.Is(err, dlog.ErrFenced):
			w.n.metrics.writeErrors.WithLabelValues("fenced").Inc()
		default:
			w.n.metrics.writeErrors.WithLabelValues("indeterminate").Inc()
		}
		return
	}
	w.n.metrics.writeLatency.Observe(time.Since(it.accepted).Seconds())
	for _, r := range it.recs {
		w.mRecords.Inc()
		w.mBytes.Add(float64(len(r.Payload)))
	}
}

// drainAcks applies ledger callbacks, in entry order.
func (w *Writer) drainAcks() {
	acks := w.acks.take()
	if len(acks) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range acks {
		e := a.e
		if len(w.mu.inflight) > 0 && w.mu.inflight[0] == e {
			w.mu.inflight[0] = nil
			w.mu.inflight = w.mu.inflight[1:]
		}
		if e.done {
			continue // failed already (fencing, abort)
		}
		seg := e.seg
		if a.err != nil {
			w.failEntryLocked(e, w.failure(seg, a.err))
			w.breakSegmentLocked(seg, a.err)
			continue
		}
		e.done = true
		slot := int64(0)
		for _, it := range e.items {
			d := dlog.DLSN{LSSN: seg.meta.LSSN, EntryID: a.id, SlotID: slot}
			if it.eos {
				seg.eosAcked = true // resolved once the segment is completed
				e.done = true
				continue
			}
			w.resolveItemLocked(it, d, nil)
			slot += int64(len(it.recs))
			w.mu.lastDLSN = dlog.DLSN{LSSN: seg.meta.LSSN, EntryID: a.id, SlotID: slot - 1}
		}
		seg.ackEntry = a.id
		seg.ackSlot = int64(e.slots - 1)
		if e.users > 0 {
			seg.ackTxID = e.lastTxID
		}
	}
	w.transmitLocked() // a drained pipeline sends what waited
}
