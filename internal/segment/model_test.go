package segment

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
)

// This file is a model of a log in metadata and ledgers, evolved only
// through this package's plans (Create, Complete, Truncate, Collect) and
// TailScan, the way the namespace shell uses them. Cursor tests read it.

// mLedger is a ledger: written entries, the LAC readers may see, and the
// close that recovery or the writer made.
type mLedger struct {
	entries [][]byte
	lac     int64
	closed  bool
	deleted bool
}

func (l *mLedger) visible() int64 {
	if l.closed {
		return int64(len(l.entries)) - 1
	}
	return l.lac
}

// mRecord is one user record of the model, identified by a counter that
// travels in its payload.
type mRecord struct {
	d    dlog.DLSN
	txid int64
	seq  int64
	id   uint64
}

type world struct {
	st         metadata.LogState
	history    []metadata.LogState // every committed state, by revision
	ledgers    map[int64]*mLedger
	nextLedger int64
	txid       int64
	nextID     uint64
	current    int64 // lssn the writer appends to; 0: none
	sealed     bool
	collected  int                // segments deleted by Collect
	gone       []metadata.Segment // the segments Collect deleted
	now        time.Time
	builder    *recordset.Builder
}

func newWorld() *world {
	b, err := recordset.NewBuilder(recordset.DefaultConfig())
	if err != nil {
		panic(err)
	}
	w := &world{
		st: metadata.LogState{
			MaxLSSN: 0, MaxLSSNVersion: 1, MaxTxID: -1, MaxTxIDVersion: 1, TruncationVersion: 1, Revision: 1,
		},
		ledgers:    make(map[int64]*mLedger),
		nextLedger: 1,
		now:        time.Unix(1_700_000_000, 0),
		builder:    b,
	}
	w.history = append(w.history, w.st)
	return w
}

func (w *world) commit(p Plan) {
	rev := w.st.Revision + 1
	w.st = p.Apply(w.st, rev)
	if !p.Landed(w.st) {
		panic("plan did not land on the state it was applied to")
	}
	w.history = append(w.history, w.st)
	for _, id := range p.DeleteLedgers {
		w.ledgers[id].deleted = true
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (w *world) ledgerOf(lssn int64) *mLedger {
	s, ok := Find(w.st, lssn)
	if !ok {
		return nil
	}
	return w.ledgers[s.LedgerID]
}

// startSegment creates a new in-progress segment (writer open or roll).
func (w *world) startSegment(rolling bool, prevCount int64) {
	id := w.nextLedger
	w.nextLedger++
	w.ledgers[id] = &mLedger{lac: -1}
	p, seg, err := Create(w.st, NewSegment{LedgerID: id, FirstTxID: w.txid, WriterID: "w", Now: w.now, Rolling: rolling, PrevRecordCount: prevCount})
	if err != nil {
		panic(err)
	}
	w.commit(p)
	w.current = seg.LSSN
}

// userCount is the number of user records written to a ledger so far.
func userCount(l *mLedger) int64 {
	if len(l.entries) == 0 {
		return 0
	}
	set := must(recordset.Decode(l.entries[len(l.entries)-1], 0))
	n := set.BasePosition
	for _, r := range set.Records {
		if !r.Flags.IsControl() {
			n++
		}
	}
	return n
}

// appendEntry writes one entry of n user records to the current segment
// (not yet acknowledged).
func (w *world) appendEntry(n int, txidStep int64) {
	l := w.ledgerOf(w.current)
	w.builder.Reset(userCount(l))
	for range n {
		w.txid += txidStep
		p := binary.BigEndian.AppendUint64(nil, w.nextID)
		w.nextID++
		if err := w.builder.Append(recordset.Record{TxID: w.txid, Payload: p}); err != nil {
			panic(err)
		}
	}
	l.entries = append(l.entries, must(w.builder.Build(recordset.CodecNone)))
}

func (w *world) appendEOS() {
	l := w.ledgerOf(w.current)
	w.builder.Reset(userCount(l))
	if err := w.builder.Append(recordset.Record{Flags: recordset.FlagControl | recordset.FlagEndOfStream, TxID: dlog.MaxTxID}); err != nil {
		panic(err)
	}
	l.entries = append(l.entries, must(w.builder.Build(recordset.CodecNone)))
	l.lac = int64(len(l.entries)) - 1
}

// tailOf scans a closed ledger backwards like the shell does.
func tailOf(l *mLedger) Tail {
	scan := NewTailScan(int64(len(l.entries)) - 1)
	for id, ok := scan.Want(); ok; id, ok = scan.Want() {
		if err := scan.Feed(id, l.entries[id]); err != nil {
			panic(err)
		}
	}
	return scan.Tail()
}

// completeSegment closes the ledger at last (dropping later, unacknowledged
// entries, as recovery does) and completes or deletes the segment.
func (w *world) completeSegment(lssn, last int64) {
	s, _ := Find(w.st, lssn)
	l := w.ledgers[s.LedgerID]
	l.entries = l.entries[:last+1]
	l.closed = true
	l.lac = last
	w.now = w.now.Add(time.Second)
	w.commit(must(Complete(w.st, s, tailOf(l), w.now)))
	if w.current == lssn {
		w.current = 0
	}
	if done, ok := Find(w.st, lssn); ok && done.EndOfStream {
		w.sealed = true
	}
}

// records lists the user records a reader may see now.
func (w *world) records() []mRecord { return w.recordsOf(w.st.Segments) }

// allRecords also lists the records of collected segments.
func (w *world) allRecords() []mRecord {
	return w.recordsOf(append(slices.Clone(w.gone), w.st.Segments...))
}

func (w *world) recordsOf(segs []metadata.Segment) []mRecord {
	var out []mRecord
	for _, s := range segs {
		l := w.ledgers[s.LedgerID]
		end := l.visible()
		if s.State == metadata.SegmentCompleted {
			end = s.LastEntryID
		}
		for e := int64(0); e <= end; e++ {
			set := must(recordset.Decode(l.entries[e], 0))
			for i, r := range set.Records {
				if r.Flags.IsControl() {
					continue
				}
				out = append(out, mRecord{
					d:    dlog.DLSN{LSSN: s.LSSN, EntryID: e, SlotID: int64(i)},
					txid: r.TxID, seq: s.StartSequenceID + r.Position, id: binary.BigEndian.Uint64(r.Payload),
				})
			}
		}
	}
	return out
}

// inProgress lists the in-progress segments.
func (w *world) inProgress() []int64 {
	var out []int64
	for _, s := range InProgress(w.st) {
		out = append(out, s.LSSN)
	}
	return out
}

// recoverAll is a new writer's open: recover every in-progress segment in
// lssn order, closing each ledger somewhere between its LAC and its last
// written entry (pick chooses).
func (w *world) recoverAll(pick func(lo, hi int64) int64) {
	for _, lssn := range w.inProgress() {
		l := w.ledgerOf(lssn)
		hi := int64(len(l.entries)) - 1
		lo := l.lac
		w.completeSegment(lssn, pick(lo, hi))
	}
	w.current = 0
}

// lastAcked is the position after the last visible record.
func (w *world) endPosition() dlog.DLSN {
	recs := w.records()
	if len(recs) == 0 {
		return dlog.DLSN{}
	}
	return recs[len(recs)-1].d.Next()
}

func (w *world) String() string {
	var b []byte
	for _, s := range w.st.Segments {
		l := w.ledgers[s.LedgerID]
		b = fmt.Appendf(b, "[%d %v start=%d n=%d last=%d entries=%d lac=%d closed=%v] ", s.LSSN, s.State, s.StartSequenceID, s.RecordCount, s.LastEntryID, len(l.entries), l.lac, l.closed)
	}
	return fmt.Sprintf("rev %d trunc %v %s", w.st.Revision, w.st.Truncation, b)
}

// viewAt returns the latest committed state with revision <= rev.
func (w *world) viewAt(rev int64) metadata.LogState {
	i, _ := slices.BinarySearchFunc(w.history, rev, func(s metadata.LogState, r int64) int { return cmpInt(s.Revision, r) })
	if i < len(w.history) && w.history[i].Revision == rev {
		return w.history[i]
	}
	return w.history[max(i-1, 0)]
}
