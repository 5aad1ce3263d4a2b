package segment

import (
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/recordset"
)

// FuzzCursorEntries feeds arbitrary entry bytes to a cursor reading an
// in-progress segment: it must deliver records in DLSN order with
// consecutive sequence ids, or fail, never panic.
func FuzzCursorEntries(f *testing.F) {
	f.Add(buildEntry(f, 0, recordset.Record{TxID: 1, Payload: []byte("a")}), buildEntry(f, 1, recordset.Record{TxID: 2}))
	f.Add(buildEntry(f, 0, recordset.Record{Flags: recordset.FlagControl | recordset.FlagEndOfStream, TxID: dlog.MaxTxID}), []byte{})
	f.Add([]byte("junk"), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, e0, e1 []byte) {
		w := newWorld()
		w.startSegment(false, 0)
		c, err := NewCursor(w.st, dlog.InitialDLSN, -1, CursorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		act := c.Next()
		c.Opened(act.LSSN, 1, false)
		recs, err := c.Entries(act.LSSN, []Entry{{ID: 0, Payload: e0}, {ID: 1, Payload: e1}})
		for i := 1; i < len(recs); i++ {
			if !recs[i-1].DLSN.Less(recs[i].DLSN) || recs[i].SequenceID != recs[i-1].SequenceID+1 {
				t.Fatalf("records out of order: %+v", recs)
			}
		}
		if err != nil && c.Next().Kind != ActFail {
			t.Fatal("a failed cursor goes on")
		}
	})
}

// FuzzTailScan feeds arbitrary entries to a tail scan: a result must be a
// valid tail, or an error.
func FuzzTailScan(f *testing.F) {
	f.Add(buildEntry(f, 3, recordset.Record{TxID: 9}), buildEntry(f, 0, recordset.Record{TxID: 1}))
	f.Add([]byte("junk"), []byte{})
	f.Fuzz(func(t *testing.T, last, prev []byte) {
		scan := NewTailScan(1)
		for _, p := range [][]byte{last, prev} {
			id, ok := scan.Want()
			if !ok {
				break
			}
			if err := scan.Feed(id, p); err != nil {
				return
			}
		}
		if _, ok := scan.Want(); ok {
			return
		}
		if err := scan.Tail().Validate(); err != nil {
			t.Fatalf("tail %+v: %v", scan.Tail(), err)
		}
	})
}
