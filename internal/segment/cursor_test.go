package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// TestCursorModel drives a Cursor against a model log that a writer
// appends to, rolls (next segment created before the previous is
// completed), crashes (every in-progress segment recovered at any entry
// between its LAC and its last written one, empty ones deleted), seals,
// truncates and collects — while the reader's shell sees stale metadata
// views and stale LACs, as a real one does. Whatever happens, the records
// delivered must be exactly the records of the final log from the start
// position on, in order (or a prefix of them when the reader failed with
// dlog.ErrTruncated after a collection, or all of them before
// dlog.ErrEndOfStream), the cursor must never ask for an entry past the
// visible end of a ledger, and once the world stops it must deliver
// everything (no stall).
func TestCursorModel(t *testing.T) {
	rounds := 30 // 100 runs each (rapid's -rapid.checks)
	if testing.Short() {
		rounds = 3
	}
	for i := range rounds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { runCursorModel(t) })
		})
	}
}

type modelReader struct {
	c         *Cursor
	start     dlog.DLSN
	minTxID   int64
	delivered []dlog.ReadRecord
	err       error
	collected int // world.collected when the cursor was made
}

func runCursorModel(t *rapid.T) {
	w := newWorld()
	w.startSegment(false, 0)
	pick := func(lo, hi int64) int64 {
		if hi <= lo {
			return hi
		}
		return rapid.Int64Range(lo, hi).Draw(t, "recover-at")
	}
	pendingComplete := int64(0) // rolled-from segment not yet completed

	worldStep := func() {
		op := rapid.IntRange(0, 9).Draw(t, "op")
		switch {
		case w.sealed:
		case op <= 2 && w.current != 0: // append
			w.appendEntry(rapid.IntRange(1, 3).Draw(t, "records"), int64(rapid.IntRange(0, 2).Draw(t, "txid-step")))
		case op == 3 || op == 4: // acknowledge some entries of open ledgers
			for _, lssn := range w.inProgress() {
				l := w.ledgerOf(lssn)
				if !l.closed && l.lac < int64(len(l.entries))-1 {
					l.lac = rapid.Int64Range(l.lac+1, int64(len(l.entries))-1).Draw(t, "ack-to")
				}
			}
		case op == 5 && w.current != 0 && pendingComplete == 0: // roll
			l := w.ledgerOf(w.current)
			if len(l.entries) == 0 {
				break
			}
			l.lac = int64(len(l.entries)) - 1 // a roll waits for every pending add
			pendingComplete = w.current
			w.startSegment(true, userCount(l))
		case op == 6 && pendingComplete != 0: // the roll completes the old segment
			l := w.ledgerOf(pendingComplete)
			w.completeSegment(pendingComplete, int64(len(l.entries))-1)
			pendingComplete = 0
		case op == 7: // the writer crashes; a new one recovers and starts
			w.recoverAll(pick)
			pendingComplete = 0
			if !w.sealed && rapid.Bool().Draw(t, "restart") {
				w.startSegment(false, 0)
			}
		case op == 8 && w.current == 0 && len(w.inProgress()) == 0: // a writer opens
			w.startSegment(false, 0)
		case op == 8 && w.current != 0 && pendingComplete == 0 && rapid.IntRange(0, 4).Draw(t, "eos") == 0:
			w.appendEOS()
			w.completeSegment(w.current, int64(len(w.ledgerOf(w.current).entries))-1)
		case op == 9: // truncate and collect
			recs := w.records()
			if len(recs) == 0 {
				break
			}
			d := recs[rapid.IntRange(0, len(recs)-1).Draw(t, "truncate-at")].d
			if d.Less(w.st.Truncation) {
				break
			}
			p, changed, err := Truncate(w.st, d, w.endPosition())
			if err != nil {
				t.Fatalf("truncate at %v: %v (%v)", d, err, w)
			}
			if changed {
				w.commit(p)
			}
			if c := Collect(w.st, w.now, 0); !c.Empty() {
				w.collected += len(c.Delete)
				w.gone = append(w.gone, c.Delete...)
				w.commit(c)
			}
		}
	}

	// Let the log grow a little before the reader starts.
	for range rapid.IntRange(0, 30).Draw(t, "warmup") {
		worldStep()
	}
	r := newModelReader(t, w)

	readerStep := func(fresh bool) bool {
		act := r.c.Next()
		latest := func() { r.c.Update(w.st) }
		switch act.Kind {
		case ActFail:
			r.err = act.Err
			return false
		case ActOpen:
			l := w.ledgers[act.LedgerID]
			if l.deleted {
				latest()
				return true
			}
			lac := l.visible()
			if !fresh && !l.closed && lac >= 0 {
				lac = rapid.Int64Range(-1, lac).Draw(t, "stale-lac")
			}
			r.c.Opened(act.LSSN, lac, l.closed)
		case ActRead:
			l := w.ledgers[act.LedgerID]
			if l.deleted {
				latest()
				return true
			}
			if act.First < 0 || act.Last < act.First || act.Last > l.visible() {
				t.Fatalf("cursor asked for entries %d..%d of segment %d; visible end %d (%v)", act.First, act.Last, act.LSSN, l.visible(), w)
			}
			last := act.Last
			if !fresh {
				last = rapid.Int64Range(act.First, act.Last).Draw(t, "read-prefix")
			}
			var es []Entry
			for e := act.First; e <= last; e++ {
				es = append(es, Entry{ID: e, Payload: l.entries[e]})
			}
			recs, err := r.c.Entries(act.LSSN, es)
			r.delivered = append(r.delivered, recs...)
			if err != nil {
				r.err = err
				return false
			}
		case ActWaitLAC:
			l := w.ledgers[act.LedgerID]
			switch {
			case l.deleted:
				latest()
			case l.closed:
				r.c.LAC(act.LSSN, l.visible(), true)
			case l.lac > act.LAC:
				lac := l.lac
				if !fresh {
					lac = rapid.Int64Range(act.LAC+1, l.lac).Draw(t, "new-lac")
				}
				r.c.LAC(act.LSSN, lac, false)
			case fresh:
				if w.st.Revision == r.c.Revision() {
					return false
				}
				latest()
			default:
				r.c.Update(w.viewAt(rapid.Int64Range(r.c.Revision(), w.st.Revision).Draw(t, "relist-rev")))
			}
		case ActWaitLog:
			if w.st.Revision == r.c.Revision() {
				return false // nothing new: the reader waits
			}
			rev := w.st.Revision
			if !fresh {
				rev = rapid.Int64Range(r.c.Revision(), w.st.Revision).Draw(t, "view-rev")
			}
			r.c.Update(w.viewAt(rev))
		}
		return true
	}

	for range rapid.IntRange(0, 300).Draw(t, "steps") {
		if r.err != nil {
			break
		}
		if rapid.IntRange(0, 2).Draw(t, "who") == 0 {
			worldStep()
		} else {
			readerStep(false)
		}
	}
	// The world stops: a last writer recovers everything. The reader must
	// now deliver every record.
	if !w.sealed {
		w.recoverAll(func(lo, hi int64) int64 { return hi })
	}
	for range 10_000 {
		if r.err != nil || !readerStep(true) {
			break
		}
	}
	r.check(t, w)
}

func newModelReader(t *rapid.T, w *world) *modelReader {
	r := &modelReader{minTxID: -1, collected: w.collected}
	recs := w.records()
	switch kind := rapid.IntRange(0, 3).Draw(t, "start-kind"); {
	case kind == 1 && len(recs) > 0:
		r.start = recs[rapid.IntRange(0, len(recs)-1).Draw(t, "start-record")].d
		if r.start.Less(w.st.Truncation) {
			r.start = FirstPosition(w.st)
		}
	case kind == 2:
		r.start = FirstPosition(w.st)
		r.minTxID = rapid.Int64Range(0, w.txid+3).Draw(t, "start-txid")
	case kind == 3:
		r.start = FirstPosition(w.st)
		if n := len(w.st.Segments); n > 0 {
			last := w.st.Segments[n-1]
			if last.State == metadata.SegmentCompleted {
				r.start = dlog.DLSN{LSSN: last.LSSN + 1}
			} else {
				r.start = dlog.DLSN{LSSN: last.LSSN, EntryID: w.ledgers[last.LedgerID].visible() + 1}
			}
		}
	default:
		r.start = FirstPosition(w.st)
	}
	c, err := NewCursor(w.st, r.start, r.minTxID, CursorConfig{BatchEntries: rapid.IntRange(1, 4).Draw(t, "batch")})
	if err != nil {
		t.Fatalf("NewCursor(%v): %v (%v)", r.start, err, w)
	}
	r.c = c
	return r
}

func (r *modelReader) check(t *rapid.T, w *world) {
	var want []mRecord
	for _, m := range w.allRecords() {
		if !m.d.Less(r.start) && (r.minTxID < 0 || m.txid >= r.minTxID) {
			want = append(want, m)
		}
	}
	switch {
	case r.err == nil:
	case errors.Is(r.err, dlog.ErrEndOfStream):
		if !w.sealed {
			t.Fatalf("end of stream on a log that is not sealed")
		}
	case errors.Is(r.err, dlog.ErrTruncated):
		if w.collected == r.collected {
			t.Fatalf("reader failed with %v though nothing was collected (%v)", r.err, w)
		}
		if len(r.delivered) > len(want) {
			t.Fatalf("delivered %d records, the log has %d", len(r.delivered), len(want))
		}
		want = want[:len(r.delivered)]
	default:
		t.Fatalf("reader failed: %v (%v)", r.err, w)
	}
	if len(r.delivered) != len(want) {
		t.Fatalf("delivered %d records, want %d (start %v txid %d, err %v) %v", len(r.delivered), len(want), r.start, r.minTxID, r.err, w)
	}
	for i, got := range r.delivered {
		m := want[i]
		id := binary.BigEndian.Uint64(got.Payload)
		if got.DLSN != m.d || got.TxID != m.txid || got.SequenceID != m.seq || id != m.id {
			t.Fatalf("record %d: got %v txid %d seq %d id %d; want %v txid %d seq %d id %d", i, got.DLSN, got.TxID, got.SequenceID, id, m.d, m.txid, m.seq, m.id)
		}
		if i > 0 && got.SequenceID != r.delivered[i-1].SequenceID+1 {
			t.Fatalf("sequence ids %d then %d", r.delivered[i-1].SequenceID, got.SequenceID)
		}
	}
}
