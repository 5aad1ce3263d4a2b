package segment

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Unix(1_700_000_000, 0)

func completed(lssn, ledger, start, count, lastEntry, lastSlot int64) metadata.Segment {
	return metadata.Segment{
		LSSN: lssn, LedgerID: ledger, State: metadata.SegmentCompleted, StartSequenceID: start,
		RecordCount: count, LastEntryID: lastEntry, LastSlotID: lastSlot, LastTxID: start + count - 1,
		Truncation: metadata.TruncationActive, Completed: t0.Add(time.Duration(lssn) * time.Hour), Version: metadata.Version(10 + lssn),
	}
}

func inProgress(lssn, ledger, start int64) metadata.Segment {
	return metadata.Segment{
		LSSN: lssn, LedgerID: ledger, State: metadata.SegmentInProgress, StartSequenceID: start,
		LastEntryID: -1, LastSlotID: -1, LastTxID: -1, Truncation: metadata.TruncationActive, Version: metadata.Version(10 + lssn),
	}
}

func state(maxLSSN int64, segs ...metadata.Segment) metadata.LogState {
	return metadata.LogState{Segments: segs, MaxLSSN: maxLSSN, MaxLSSNVersion: 3, MaxTxID: 99, MaxTxIDVersion: 4, TruncationVersion: 5, Revision: 100}
}

func TestCreate(t *testing.T) {
	cases := []struct {
		name      string
		st        metadata.LogState
		ns        NewSegment
		wantLSSN  int64
		wantStart int64
		wantErr   error
	}{
		{"first segment", state(0), NewSegment{LedgerID: 7}, 1, 0, nil},
		{"after completed", state(2, completed(1, 1, 0, 10, 3, 0), completed(2, 2, 10, 5, 1, 2)), NewSegment{LedgerID: 7}, 3, 15, nil},
		{"after deleted empty segments", state(5, completed(2, 2, 0, 4, 0, 3)), NewSegment{LedgerID: 7}, 6, 4, nil},
		{"no segments left but max lssn", state(4), NewSegment{LedgerID: 7}, 5, 0, nil},
		{"roll from in progress", state(2, completed(1, 1, 0, 10, 3, 0), inProgress(2, 2, 10)), NewSegment{LedgerID: 7, Rolling: true, PrevRecordCount: 6}, 3, 16, nil},
		{"in progress without roll", state(1, inProgress(1, 1, 0)), NewSegment{LedgerID: 7}, 0, 0, ErrInvalidState},
		{"two in progress", state(2, inProgress(1, 1, 0), inProgress(2, 2, 0)), NewSegment{LedgerID: 7, Rolling: true}, 0, 0, ErrInvalidState},
		{"roll from completed", state(1, completed(1, 1, 0, 1, 0, 0)), NewSegment{LedgerID: 7, Rolling: true}, 0, 0, ErrInvalidState},
		{"negative previous count", state(1, inProgress(1, 1, 0)), NewSegment{LedgerID: 7, Rolling: true, PrevRecordCount: -1}, 0, 0, ErrInvalidState},
		{"max lssn behind", state(1, completed(2, 1, 0, 1, 0, 0)), NewSegment{LedgerID: 7}, 0, 0, ErrInvalidState},
		{"bad ledger", state(0), NewSegment{}, 0, 0, ErrInvalidState},
		{"sealed", state(1, func() metadata.Segment { s := completed(1, 1, 0, 1, 1, 0); s.EndOfStream = true; return s }()), NewSegment{LedgerID: 7}, 0, 0, dlog.ErrEndOfStream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, seg, err := Create(c.st, c.ns)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v; want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if seg.LSSN != c.wantLSSN || seg.StartSequenceID != c.wantStart || seg.State != metadata.SegmentInProgress || seg.LedgerID != c.ns.LedgerID {
				t.Fatalf("segment %+v", seg)
			}
			if p.MaxLSSN == nil || p.MaxLSSN.Value != c.wantLSSN || p.MaxLSSN.Expect != c.st.MaxLSSNVersion || len(p.Create) != 1 || p.Len() != 2 {
				t.Fatalf("plan %+v", p)
			}
			after := p.Apply(c.st, 200)
			if after.MaxLSSN != c.wantLSSN || after.MaxLSSNVersion != 200 || !p.Landed(after) || p.Landed(c.st) {
				t.Fatalf("apply: %+v", after)
			}
		})
	}
}

func TestComplete(t *testing.T) {
	st := state(2, completed(1, 1, 0, 10, 3, 0), inProgress(2, 2, 10))
	cases := []struct {
		name       string
		seg        metadata.Segment
		tail       Tail
		wantDelete bool
		wantMaxTx  int64 // -1: not set
		wantErr    error
	}{
		{"records", st.Segments[1], Tail{LastEntryID: 4, LastSlotID: 2, RecordCount: 7, LastTxID: 120}, false, 120, nil},
		{"records without new max txid", st.Segments[1], Tail{LastEntryID: 0, LastSlotID: 0, RecordCount: 1, LastTxID: 99}, false, -1, nil},
		{"empty", st.Segments[1], EmptyTail, true, -1, nil},
		{"end of stream only", st.Segments[1], Tail{LastEntryID: 0, LastSlotID: 0, LastTxID: -1, EndOfStream: true}, false, -1, nil},
		{"completed already", st.Segments[0], Tail{LastEntryID: 3, LastSlotID: 0, RecordCount: 10, LastTxID: 9}, false, -1, ErrInvalidState},
		{"stale version", func() metadata.Segment { s := st.Segments[1]; s.Version++; return s }(), EmptyTail, false, -1, ErrInvalidState},
		{"unknown", inProgress(9, 9, 0), EmptyTail, false, -1, ErrInvalidState},
		{"bad tail", st.Segments[1], Tail{LastEntryID: -1, LastSlotID: -1, RecordCount: 3, LastTxID: 1}, false, -1, ErrInvalidState},
		{"records without txid", st.Segments[1], Tail{LastEntryID: 1, LastSlotID: 0, RecordCount: 3, LastTxID: -1}, false, -1, ErrInvalidState},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Complete(st, c.seg, c.tail, t0)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v; want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			after := p.Apply(st, 300)
			if !p.Landed(after) {
				t.Fatal("plan not landed after apply")
			}
			if c.wantDelete {
				if len(p.Delete) != 1 || len(p.DeleteLedgers) != 1 || p.DeleteLedgers[0] != c.seg.LedgerID || len(after.Segments) != 1 {
					t.Fatalf("plan %+v", p)
				}
				return
			}
			s, _ := Find(after, c.seg.LSSN)
			if s.State != metadata.SegmentCompleted || s.RecordCount != c.tail.RecordCount || s.LastEntryID != c.tail.LastEntryID ||
				s.LastSlotID != c.tail.LastSlotID || s.EndOfStream != c.tail.EndOfStream || !s.Completed.Equal(t0) || s.Version != 300 {
				t.Fatalf("completed %+v", s)
			}
			switch {
			case c.wantMaxTx < 0 && p.MaxTxID != nil:
				t.Fatalf("max txid set to %d", p.MaxTxID.Value)
			case c.wantMaxTx >= 0 && (p.MaxTxID == nil || p.MaxTxID.Value != c.wantMaxTx || p.MaxTxID.Expect != st.MaxTxIDVersion):
				t.Fatalf("max txid %+v", p.MaxTxID)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	st := state(4, completed(1, 1, 0, 10, 4, 1), completed(2, 2, 10, 10, 4, 1), completed(3, 3, 20, 10, 4, 1), inProgress(4, 4, 30))
	st.Truncation = dlog.DLSN{LSSN: 1, EntryID: 2}
	cases := []struct {
		name        string
		d, end      dlog.DLSN
		wantFull    []int64
		wantPartial []int64
		noop        bool
		wantErr     error
	}{
		{"inside segment 2", dlog.DLSN{LSSN: 2, EntryID: 1}, dlog.DLSN{}, []int64{1}, []int64{2}, false, nil},
		{"end of segment 2", dlog.DLSN{LSSN: 2, EntryID: 4, SlotID: 2}, dlog.DLSN{}, []int64{1, 2}, nil, false, nil},
		{"start of segment 3", dlog.DLSN{LSSN: 3}, dlog.DLSN{}, []int64{1, 2}, nil, false, nil},
		{"in progress segment", dlog.DLSN{LSSN: 4, EntryID: 7}, dlog.DLSN{}, []int64{1, 2, 3}, nil, false, nil},
		{"older point", dlog.DLSN{LSSN: 1, EntryID: 1}, dlog.DLSN{}, nil, nil, true, nil},
		{"same point", dlog.DLSN{LSSN: 1, EntryID: 2}, dlog.DLSN{}, nil, nil, true, nil},
		{"past the end given", dlog.DLSN{LSSN: 4, EntryID: 7}, dlog.DLSN{LSSN: 4, EntryID: 3}, nil, nil, false, ErrFuture},
		{"after completed segment end", dlog.DLSN{LSSN: 2, EntryID: 6}, dlog.DLSN{}, nil, nil, false, ErrFuture},
		{"future segment", dlog.DLSN{LSSN: 5}, dlog.DLSN{}, nil, nil, false, ErrFuture},
		{"invalid", dlog.DLSN{LSSN: 0}, dlog.DLSN{}, nil, nil, false, dlog.ErrInvalidDLSN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, changed, err := Truncate(st, c.d, c.end)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || !errors.Is(err, dlog.ErrInvalidArgument) {
					t.Fatalf("err %v; want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.noop {
				if changed || !p.Empty() {
					t.Fatalf("expected no-op, got %+v", p)
				}
				return
			}
			after := p.Apply(st, 400)
			if after.Truncation != c.d || after.TruncationVersion != 400 {
				t.Fatalf("truncation %v", after.Truncation)
			}
			var full, partial []int64
			for _, s := range after.Segments {
				switch s.Truncation {
				case metadata.TruncationFull:
					full = append(full, s.LSSN)
				case metadata.TruncationPartial:
					partial = append(partial, s.LSSN)
					if s.MinActive != c.d {
						t.Fatalf("segment %d min active %v", s.LSSN, s.MinActive)
					}
				}
			}
			if !equal(full, c.wantFull) || !equal(partial, c.wantPartial) {
				t.Fatalf("full %v partial %v; want %v %v", full, partial, c.wantFull, c.wantPartial)
			}
		})
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTruncateManySegmentsFitsOneCommit(t *testing.T) {
	var segs []metadata.Segment
	for i := int64(1); i <= 200; i++ {
		segs = append(segs, completed(i, i, (i-1)*2, 2, 0, 1))
	}
	st := state(200, segs...)
	p, changed, err := Truncate(st, dlog.DLSN{LSSN: 200}, dlog.DLSN{})
	if err != nil || !changed {
		t.Fatal(err, changed)
	}
	if p.Len() > MaxPlanOps || p.Truncation == nil {
		t.Fatalf("plan of %d ops", p.Len())
	}
	// Collection goes by the truncation point even for unmarked segments.
	c := Collect(p.Apply(st, 500), t0, 0)
	if len(c.Delete) != MaxPlanOps-1 || c.Delete[0].LSSN != 1 {
		t.Fatalf("collect %d segments", len(c.Delete))
	}
}

func TestCollect(t *testing.T) {
	now := t0.Add(10 * time.Hour)
	base := func() metadata.LogState {
		return state(5, completed(1, 1, 0, 2, 0, 1), completed(2, 2, 2, 2, 0, 1), completed(3, 3, 4, 2, 0, 1), completed(4, 4, 6, 2, 0, 1), inProgress(5, 5, 8))
	}
	cases := []struct {
		name      string
		edit      func(*metadata.LogState)
		retention time.Duration
		want      []int64
		wantTrunc dlog.DLSN
	}{
		{"nothing", func(*metadata.LogState) {}, 0, nil, dlog.DLSN{}},
		{"truncation point", func(st *metadata.LogState) { st.Truncation = dlog.DLSN{LSSN: 3} }, 0, []int64{1, 2}, dlog.DLSN{LSSN: 3}},
		{"marked", func(st *metadata.LogState) { st.Segments[0].Truncation = metadata.TruncationFull }, 0, []int64{1}, dlog.DLSN{LSSN: 2}},
		{"partial is kept", func(st *metadata.LogState) { st.Truncation = dlog.DLSN{LSSN: 2, EntryID: 0, SlotID: 1} }, 0, []int64{1}, dlog.DLSN{LSSN: 2, SlotID: 1}},
		{"keeps last completed", func(st *metadata.LogState) { st.Truncation = dlog.DLSN{LSSN: 5} }, 0, []int64{1, 2, 3}, dlog.DLSN{LSSN: 5}},
		{"retention", func(*metadata.LogState) {}, 7*time.Hour + time.Minute, []int64{1, 2}, dlog.DLSN{LSSN: 3}},
		{"retention stops at first young", func(st *metadata.LogState) { st.Segments[1].Completed = now }, 7 * time.Hour, []int64{1}, dlog.DLSN{LSSN: 2}},
		{"retention keeps last completed", func(*metadata.LogState) {}, time.Minute, []int64{1, 2, 3}, dlog.DLSN{LSSN: 4}},
		{"only a prefix", func(st *metadata.LogState) { st.Segments[1].Truncation = metadata.TruncationFull }, 0, nil, dlog.DLSN{}},
		{"stops at in progress", func(st *metadata.LogState) {
			st.Segments = append(st.Segments[:1], inProgress(2, 2, 2), inProgress(3, 3, 4))
			st.Truncation = dlog.DLSN{LSSN: 3}
		}, 0, nil, dlog.DLSN{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := base()
			c.edit(&st)
			p := Collect(st, now, c.retention)
			var got []int64
			for _, s := range p.Delete {
				got = append(got, s.LSSN)
			}
			if !equal(got, c.want) || !equal(p.DeleteLedgers, got) {
				t.Fatalf("deletes %v ledgers %v; want %v", got, p.DeleteLedgers, c.want)
			}
			if c.want == nil {
				if !p.Empty() {
					t.Fatalf("plan %+v", p)
				}
				return
			}
			after := p.Apply(st, 600)
			if after.Truncation != c.wantTrunc {
				t.Fatalf("truncation %v; want %v", after.Truncation, c.wantTrunc)
			}
		})
	}
}

func TestCheckPositionAndFirst(t *testing.T) {
	st := state(4, completed(2, 2, 0, 10, 4, 1), inProgress(4, 4, 10))
	cases := []struct {
		d    dlog.DLSN
		want error
	}{
		{dlog.DLSN{LSSN: 1}, nil},
		{dlog.DLSN{LSSN: 2, EntryID: 5}, nil},
		{dlog.DLSN{LSSN: 2, EntryID: 5, SlotID: 1}, ErrFuture},
		{dlog.DLSN{LSSN: 2, EntryID: 6}, ErrFuture},
		{dlog.DLSN{LSSN: 3, EntryID: 99}, nil},
		{dlog.DLSN{LSSN: 4, EntryID: 1 << 40}, nil},
		{dlog.DLSN{LSSN: 5}, ErrFuture},
		{dlog.DLSN{LSSN: 1, SlotID: -1}, dlog.ErrInvalidDLSN},
	}
	for _, c := range cases {
		if err := CheckPosition(st, c.d); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("CheckPosition(%v) = %v; want %v", c.d, err, c.want)
		}
	}
	done := state(2, completed(2, 2, 0, 10, 4, 1))
	if err := CheckPosition(done, dlog.DLSN{LSSN: 3}); err != nil {
		t.Errorf("first position after a completed log: %v", err)
	}
	if got := FirstPosition(st); got != (dlog.DLSN{LSSN: 2}) {
		t.Errorf("FirstPosition = %v", got)
	}
	st.Truncation = dlog.DLSN{LSSN: 2, EntryID: 3}
	if got := FirstPosition(st); got != st.Truncation {
		t.Errorf("FirstPosition after truncation = %v", got)
	}
	if got := FirstPosition(state(3)); got != (dlog.DLSN{LSSN: 4}) {
		t.Errorf("FirstPosition of a log without segments = %v", got)
	}
}

func TestPlanOps(t *testing.T) {
	st := state(2, completed(1, 1, 0, 10, 3, 0), inProgress(2, 2, 10))
	p, err := Complete(st, st.Segments[1], Tail{LastEntryID: 1, LastSlotID: 0, RecordCount: 2, LastTxID: 200}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Ops("ns", "log", nil)); got != 2 {
		t.Fatalf("%d ops", got)
	}
	if (Plan{}).Len() != 0 || !(Plan{}).Empty() {
		t.Fatal("empty plan")
	}
}

func buildEntry(t testing.TB, base int64, recs ...recordset.Record) []byte {
	t.Helper()
	b, err := recordset.NewBuilder(recordset.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b.Reset(base)
	for _, r := range recs {
		if err := b.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Build(recordset.CodecLZ4)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTailScan(t *testing.T) {
	user := func(txid int64) recordset.Record { return recordset.Record{TxID: txid, Payload: []byte("x")} }
	eos := recordset.Record{Flags: recordset.FlagControl | recordset.FlagEndOfStream, TxID: dlog.MaxTxID}
	ctl := recordset.Record{Flags: recordset.FlagControl, TxID: 5}
	cases := []struct {
		name    string
		entries [][]byte
		want    Tail
		reads   int
	}{
		{"empty ledger", nil, EmptyTail, 0},
		{"one entry", [][]byte{buildEntry(t, 0, user(1), user(2))}, Tail{LastEntryID: 0, LastSlotID: 1, RecordCount: 2, LastTxID: 2}, 1},
		{"many entries", [][]byte{buildEntry(t, 0, user(1)), buildEntry(t, 1, user(2), user(3)), buildEntry(t, 3, user(4), ctl)},
			Tail{LastEntryID: 2, LastSlotID: 1, RecordCount: 4, LastTxID: 4}, 1},
		{"end of stream", [][]byte{buildEntry(t, 0, user(1)), buildEntry(t, 1, user(7)), buildEntry(t, 2, eos)},
			Tail{LastEntryID: 2, LastSlotID: 0, RecordCount: 2, LastTxID: 7, EndOfStream: true}, 2},
		{"end of stream only", [][]byte{buildEntry(t, 0, eos)}, Tail{LastEntryID: 0, LastSlotID: 0, RecordCount: 0, LastTxID: -1, EndOfStream: true}, 1},
		{"control entries only", [][]byte{buildEntry(t, 0, ctl), buildEntry(t, 0, ctl)}, Tail{LastEntryID: 1, LastSlotID: 0, LastTxID: -1}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scan := NewTailScan(int64(len(c.entries)) - 1)
			reads := 0
			for id, ok := scan.Want(); ok; id, ok = scan.Want() {
				reads++
				if err := scan.Feed(id, c.entries[id]); err != nil {
					t.Fatal(err)
				}
			}
			if got := scan.Tail(); got != c.want || reads != c.reads {
				t.Fatalf("tail %+v after %d reads; want %+v after %d", got, reads, c.want, c.reads)
			}
			if err := scan.Tail().Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	scan := NewTailScan(3)
	if err := scan.Feed(2, nil); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("wrong entry: %v", err)
	}
	if err := scan.Feed(3, []byte("junk")); !errors.Is(err, dlog.ErrCorrupt) {
		t.Fatalf("junk entry: %v", err)
	}
}

// TestEntrySearchExhaustive checks the binary search against a linear scan
// for every range up to 40 entries and every threshold.
func TestEntrySearchExhaustive(t *testing.T) {
	for n := int64(0); n <= 40; n++ {
		for lo := int64(0); lo <= 3; lo++ {
			hi := lo + n - 1
			for threshold := lo; threshold <= hi+1; threshold++ {
				s := NewEntrySearch(lo, hi)
				probes := 0
				for e, ok := s.Probe(); ok; e, ok = s.Probe() {
					if e < lo || e > hi {
						t.Fatalf("probe %d outside [%d,%d]", e, lo, hi)
					}
					probes++
					s.Feed(e, e >= threshold)
				}
				if s.Result() != threshold {
					t.Fatalf("[%d,%d] threshold %d: result %d", lo, hi, threshold, s.Result())
				}
				if probes > 7 {
					t.Fatalf("%d probes for %d entries", probes, n)
				}
			}
		}
	}
}

func TestTxIDSearch(t *testing.T) {
	a, b := completed(1, 1, 0, 10, 4, 1), completed(2, 2, 10, 10, 4, 1)
	a.LastTxID, b.LastTxID = 50, 80
	empty := completed(3, 3, 20, 0, 0, 0)
	empty.LastTxID = -1
	st := state(4, a, b, empty, inProgress(4, 4, 20))
	cases := []struct {
		txid int64
		want int64
	}{{0, 1}, {50, 1}, {51, 2}, {80, 2}, {81, 4}}
	for _, c := range cases {
		if s, ok := TxIDSegment(st, c.txid); !ok || s.LSSN != c.want {
			t.Errorf("TxIDSegment(%d) = %d %v; want %d", c.txid, s.LSSN, ok, c.want)
		}
	}
	st.Truncation = dlog.DLSN{LSSN: 2}
	if s, _ := TxIDSegment(st, 0); s.LSSN != 2 {
		t.Errorf("truncated segment searched: %d", s.LSSN)
	}
	if _, ok := TxIDSegment(state(2, a, b), 81); ok {
		t.Error("found a segment past every txid")
	}
	e := buildEntry(t, 0, recordset.Record{TxID: 3}, recordset.Record{TxID: 5}, recordset.Record{Flags: recordset.FlagControl, TxID: 1})
	for _, c := range []struct {
		n     int64
		reach bool
		slot  int64
		found bool
	}{{2, true, 0, true}, {4, true, 1, true}, {5, true, 1, true}, {6, false, 0, false}} {
		r, err := ReachesTxID(e, c.n)
		d, found, err2 := FirstTxIDInEntry(7, 9, e, c.n)
		if err != nil || err2 != nil || r != c.reach || found != c.found || found && d != (dlog.DLSN{LSSN: 7, EntryID: 9, SlotID: c.slot}) {
			t.Errorf("txid %d: reach %v found %v at %v (%v %v)", c.n, r, found, d, err, err2)
		}
	}
}
