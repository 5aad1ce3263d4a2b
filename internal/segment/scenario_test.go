package segment

import (
	"errors"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// The scenarios below replay, step by step, the reader bugs DistributedLog
// users reported (reference §5), against the cursor.

// drive runs the cursor with fresh information until it must wait; it
// returns the delivered records and the last action.
func drive(t *testing.T, w *world, c *Cursor) ([]dlog.ReadRecord, Action) {
	t.Helper()
	var out []dlog.ReadRecord
	for range 1000 {
		act := c.Next()
		switch act.Kind {
		case ActOpen:
			l := w.ledgers[act.LedgerID]
			c.Opened(act.LSSN, l.visible(), l.closed)
		case ActRead:
			l := w.ledgers[act.LedgerID]
			if act.Last > l.visible() {
				t.Fatalf("read past the visible end: %d > %d", act.Last, l.visible())
			}
			var es []Entry
			for e := act.First; e <= act.Last; e++ {
				es = append(es, Entry{ID: e, Payload: l.entries[e]})
			}
			recs, err := c.Entries(act.LSSN, es)
			if err != nil {
				t.Fatalf("entries: %v", err)
			}
			out = append(out, recs...)
		case ActWaitLAC:
			l := w.ledgers[act.LedgerID]
			if l.closed || l.lac > act.LAC {
				c.LAC(act.LSSN, l.visible(), l.closed)
				continue
			}
			return out, act
		default:
			return out, act
		}
	}
	t.Fatal("cursor does not settle")
	return nil, Action{}
}

// A roll creates segment 2 while segment 1 is still in progress: the
// reader at the end of segment 1 must stay there (not skip to 2) until 1
// is completed, then read 2 (apache/bookkeeper#2898: a reader skipped a
// whole segment).
func TestScenarioRollDoesNotSkip(t *testing.T) {
	w := newWorld()
	w.startSegment(false, 0)
	w.appendEntry(2, 1)
	w.appendEntry(2, 1)
	w.ledgerOf(1).lac = 0 // entry 1 is written but not yet acknowledged
	c, err := NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	recs, act := drive(t, w, c)
	if len(recs) != 2 || act.Kind != ActWaitLAC {
		t.Fatalf("%d records, then %v", len(recs), act.Kind)
	}
	// The roll: entry 1 acknowledged, segment 2 created and written to.
	w.ledgerOf(1).lac = 1
	w.startSegment(true, userCount(w.ledgerOf(1)))
	w.appendEntry(1, 1)
	w.ledgerOf(2).lac = 0
	c.Update(w.st) // the reader sees segment 2 appear
	recs, act = drive(t, w, c)
	if len(recs) != 2 || act.Kind != ActWaitLAC || act.LSSN != 1 {
		t.Fatalf("after the roll: %d records, then %v on segment %d; want segment 1's entry 1 and a wait on segment 1", len(recs), act.Kind, act.LSSN)
	}
	w.completeSegment(1, 1)
	c.Update(w.st)
	recs, act = drive(t, w, c)
	if len(recs) != 1 || recs[0].DLSN.LSSN != 2 || recs[0].SequenceID != 4 {
		t.Fatalf("after completion: %+v", recs)
	}
	_ = act
}

// The writer died; the new writer's recovery found an entry beyond the
// LAC the reader knew. The reader must read on to the recovered end
// before leaving the segment.
func TestScenarioRecoveredBeyondLAC(t *testing.T) {
	w := newWorld()
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.appendEntry(1, 1)
	w.appendEntry(1, 1)
	w.ledgerOf(1).lac = 0
	c, _ := NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{})
	recs, _ := drive(t, w, c)
	if len(recs) != 1 {
		t.Fatalf("%d records before recovery", len(recs))
	}
	w.recoverAll(func(lo, hi int64) int64 { return hi }) // entries 1 and 2 recovered
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.ledgerOf(2).lac = 0
	c.Update(w.st)
	recs, _ = drive(t, w, c)
	if len(recs) != 3 || recs[0].DLSN != (dlog.DLSN{LSSN: 1, EntryID: 1}) || recs[2].DLSN.LSSN != 2 {
		t.Fatalf("after recovery: %+v", recs)
	}
}

// A segment is collected while a slow reader is inside it: the reader
// must fail with ErrTruncated, not jump to the next segment.
func TestScenarioCollectedUnderReader(t *testing.T) {
	w := newWorld()
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.appendEntry(1, 1)
	w.completeSegment(1, 1)
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.completeSegment(2, 0)
	w.startSegment(false, 0)
	c, _ := NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{BatchEntries: 1})
	act := c.Next()
	c.Opened(act.LSSN, 1, true)
	act = c.Next()
	recs, err := c.Entries(1, []Entry{{ID: 0, Payload: w.ledgers[act.LedgerID].entries[0]}})
	if err != nil || len(recs) != 1 {
		t.Fatal(err, recs)
	}
	p, _, err := Truncate(w.st, dlog.DLSN{LSSN: 3}, dlog.DLSN{})
	if err != nil {
		t.Fatal(err)
	}
	w.commit(p)
	w.commit(Collect(w.st, w.now, 0))
	c.Update(w.st)
	if act := c.Next(); act.Kind != ActFail || !errors.Is(act.Err, dlog.ErrTruncated) {
		t.Fatalf("after collection: %v %v", act.Kind, act.Err)
	}
}

// The writer crashed right after a roll created an empty segment; the next
// writer deletes it. A reader waiting in it moves on without an error and
// without losing anything.
func TestScenarioEmptySegmentDeleted(t *testing.T) {
	w := newWorld()
	w.startSegment(false, 0)
	w.appendEntry(2, 1)
	w.ledgerOf(1).lac = 0
	w.startSegment(true, 2)
	w.completeSegment(1, 0)
	c, _ := NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{})
	recs, act := drive(t, w, c)
	if len(recs) != 2 || act.LSSN != 2 {
		t.Fatalf("%d records, waiting on %d", len(recs), act.LSSN)
	}
	w.recoverAll(func(lo, hi int64) int64 { return hi }) // segment 2 is empty: deleted
	if _, ok := Find(w.st, 2); ok {
		t.Fatal("empty segment kept")
	}
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.ledgerOf(3).lac = 0
	c.Update(w.st)
	recs, _ = drive(t, w, c)
	if len(recs) != 1 || recs[0].DLSN.LSSN != 3 || recs[0].SequenceID != 2 {
		t.Fatalf("after the deletion: %+v", recs)
	}
}

// Metadata that would make sequence ids jump is refused (corruption), and
// a completed segment whose metadata disagrees with its ledger is too.
func TestScenarioInconsistentMetadata(t *testing.T) {
	w := newWorld()
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.completeSegment(1, 0)
	w.startSegment(false, 0)
	st := w.st
	st.Segments = append([]metadata.Segment(nil), st.Segments...)
	st.Segments[1].StartSequenceID = 5 // but segment 1 holds one record
	c, _ := NewCursor(st, dlog.InitialDLSN, -1, CursorConfig{})
	recs, act := drive(t, w, c)
	if len(recs) != 1 || act.Kind != ActFail || !errors.Is(act.Err, dlog.ErrTruncated) && !errors.Is(act.Err, dlog.ErrCorrupt) {
		t.Fatalf("jump in sequence ids: %d records, %v %v", len(recs), act.Kind, act.Err)
	}
	st.Segments[1].StartSequenceID = 0 // overlapping sequence ids
	c, _ = NewCursor(st, dlog.InitialDLSN, -1, CursorConfig{})
	if _, act := drive(t, w, c); act.Kind != ActFail || !errors.Is(act.Err, dlog.ErrCorrupt) {
		t.Fatalf("overlapping sequence ids: %v %v", act.Kind, act.Err)
	}
	c, _ = NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{})
	act = c.Next()
	c.Opened(act.LSSN, 3, true) // the ledger says it ends at 3, the segment at 0
	if act := c.Next(); act.Kind != ActFail || !errors.Is(act.Err, dlog.ErrCorrupt) {
		t.Fatalf("ledger and segment disagree: %v %v", act.Kind, act.Err)
	}
}

// Entries the cursor did not ask for (a repeated read, a skipped one) are
// refused rather than delivered twice (apache/bookkeeper PR #1973).
func TestScenarioNoDoubleRead(t *testing.T) {
	w := newWorld()
	w.startSegment(false, 0)
	w.appendEntry(1, 1)
	w.appendEntry(1, 1)
	w.ledgerOf(1).lac = 1
	c, _ := NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{})
	act := c.Next()
	c.Opened(act.LSSN, 1, false)
	e0 := Entry{ID: 0, Payload: w.ledgerOf(1).entries[0]}
	if _, err := c.Entries(1, []Entry{e0}); err != nil {
		t.Fatal(err)
	}
	if recs, err := c.Entries(1, []Entry{e0}); !errors.Is(err, ErrUnexpectedEntry) || len(recs) != 0 {
		t.Fatalf("entry 0 again: %v %v", recs, err)
	}
}
