package checker

import (
	"slices"
	"sort"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// hb builds small histories by hand; every event gets the next time.
type hb struct {
	t      int64
	events []history.Event
	drain  *history.Drain
}

const lg = "ns/a"

func d(l, e, s int64) dlog.DLSN { return dlog.DLSN{LSSN: l, EntryID: e, SlotID: s} }

func newHB() *hb {
	return &hb{drain: &history.Drain{Log: lg, Segments: []history.Segment{{LSSN: 1, State: history.InProgress}}}}
}

func (b *hb) add(e history.Event) *hb {
	b.t += 10
	e.Time = b.t
	if e.Log == "" && e.Kind != history.ReaderClose && e.Kind != history.NemesisStart && e.Kind != history.NemesisStop {
		e.Log = lg
	}
	b.events = append(b.events, e)
	return b
}

func (b *hb) invoke(p, v string, txid int64) *hb {
	return b.add(history.Event{Process: p, Type: history.Invoke, Kind: history.Append, Value: v, TxID: txid})
}

func (b *hb) ok(p, v string, txid int64, at dlog.DLSN, epoch string) *hb {
	return b.add(history.Event{Process: p, Type: history.OK, Kind: history.Append, Value: v, TxID: txid, DLSN: at, Epoch: epoch})
}

func (b *hb) done(p, v string, t history.Type, class, epoch string) *hb {
	return b.add(history.Event{Process: p, Type: t, Kind: history.Append, Value: v, Error: class, Epoch: epoch})
}

func (b *hb) appendOK(p, v string, txid int64, at dlog.DLSN) *hb {
	return b.invoke(p, v, txid).ok(p, v, txid, at, "")
}

func (b *hb) truncate(p string, at dlog.DLSN, t history.Type) *hb {
	b.add(history.Event{Process: p, Type: history.Invoke, Kind: history.Truncate, DLSN: at})
	return b.add(history.Event{Process: p, Type: t, Kind: history.Truncate, DLSN: at})
}

func (b *hb) truncInvoke(p string, at dlog.DLSN) *hb {
	return b.add(history.Event{Process: p, Type: history.Invoke, Kind: history.Truncate, DLSN: at})
}

func (b *hb) truncDone(p string, at dlog.DLSN) *hb {
	return b.add(history.Event{Process: p, Type: history.OK, Kind: history.Truncate, DLSN: at})
}

func (b *hb) open(p, session string, pos history.Position) *hb {
	b.add(history.Event{Process: p, Type: history.Invoke, Kind: history.ReaderOpen, Position: &pos})
	return b.add(history.Event{Process: p, Type: history.OK, Kind: history.ReaderOpen, Session: session})
}

func (b *hb) read(p, session, v string, at dlog.DLSN, txid, seqid int64) *hb {
	return b.add(history.Event{Process: p, Type: history.OK, Kind: history.Read, Session: session, Value: v, DLSN: at, TxID: txid, SeqID: history.Int64(seqid)})
}

func (b *hb) rec(v string, at dlog.DLSN, txid, seqid int64) *hb {
	b.drain.Records = append(b.drain.Records, history.DrainRecord{DLSN: at, Value: v, TxID: txid, SeqID: seqid})
	return b
}

// three acked records at 1:0:0, 1:1:0, 1:2:0 (txids 10, 20, 30) in the
// drain.
func three() *hb {
	b := newHB()
	b.appendOK("w1", "a", 10, d(1, 0, 0)).appendOK("w1", "b", 20, d(1, 1, 0)).appendOK("w1", "c", 30, d(1, 2, 0))
	return b.rec("a", d(1, 0, 0), 10, 0).rec("b", d(1, 1, 0), 20, 1).rec("c", d(1, 2, 0), 30, 2)
}

func TestRules(t *testing.T) {
	all := func(l, e, s int64) history.Position { return history.Position{At: history.AtDLSN, DLSN: d(l, e, s)} }
	tests := []struct {
		name    string
		build   func() *hb
		opts    Options
		noDrain bool
		want    []string
	}{
		{"clean", three, Options{}, false, nil},
		{"acked record missing", func() *hb {
			b := three()
			b.drain.Records = b.drain.Records[1:]
			for i := range b.drain.Records {
				b.drain.Records[i].SeqID-- // keep the drain self-consistent
			}
			return b
		}, Options{}, false, []string{PropLost}},
		{"truncate after the ack excuses", func() *hb {
			b := three().truncate("t1", d(1, 1, 0), history.OK)
			b.drain.Truncation, b.drain.Records = d(1, 1, 0), b.drain.Records[1:]
			return b
		}, Options{}, false, nil},
		{"indeterminate truncate after the ack excuses", func() *hb {
			b := three().truncate("t1", d(1, 1, 0), history.Info)
			b.drain.Truncation, b.drain.Records = d(1, 1, 0), b.drain.Records[1:]
			return b
		}, Options{}, false, nil},
		{"failed truncate does not excuse", func() *hb {
			b := three().truncate("t1", d(1, 1, 0), history.Fail)
			b.drain.Truncation, b.drain.Records = d(1, 1, 0), b.drain.Records[1:]
			return b
		}, Options{}, false, []string{PropLost}},
		{"missing above the truncation point is lost", func() *hb {
			b := three().truncate("t1", d(1, 0, 0), history.OK)
			b.drain.Truncation, b.drain.Records = d(1, 0, 0), b.drain.Records[1:]
			for i := range b.drain.Records {
				b.drain.Records[i].SeqID--
			}
			b.drain.Records[0].SeqID = 1
			b.drain.Records[1].SeqID = 2
			return b
		}, Options{}, false, []string{PropLost}},
		{"truncate concurrent with the append excuses", concurrentTruncate, Options{}, false, nil},
		{"truncate concurrent with the append under strict truncation", concurrentTruncate, Options{StrictTruncation: true}, false, []string{PropLost}},
		{"truncate that completed before the append was invoked does not excuse", func() *hb {
			b := newHB().appendOK("w1", "x", 1, d(1, 0, 0)).appendOK("w1", "y", 2, d(1, 1, 0))
			b.truncate("t1", d(1, 1, 0), history.OK)
			// z is acknowledged below the truncation point that was set
			// before it was even invoked.
			b.appendOK("w2", "z", 3, d(1, 0, 1))
			b.drain.Truncation = d(1, 1, 0)
			return b.rec("y", d(1, 1, 0), 2, 1)
		}, Options{}, false, []string{PropLost, PropAppendOrder, PropAppendLinearizable}},
		{"no drain: reader spanning an acked record never delivered it", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtStart})
			return b.read("r1", "s1", "a", d(1, 0, 0), 10, 0).read("r1", "s1", "c", d(1, 2, 0), 30, 2)
		}, Options{}, true, []string{PropLost, PropReaderGap}},
		{"no drain: reader that opened later proves nothing", func() *hb {
			b := three().open("r1", "s1", all(1, 2, 0))
			return b.read("r1", "s1", "c", d(1, 2, 0), 30, 2)
		}, Options{}, true, nil},
		{"txid start delivers the first record with txid >= N", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtTxID, TxID: 15})
			return b.read("r1", "s1", "b", d(1, 1, 0), 20, 1)
		}, Options{}, false, nil},
		{"txid start skipping the first match", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtTxID, TxID: 15})
			return b.read("r1", "s1", "c", d(1, 2, 0), 30, 2)
		}, Options{}, false, []string{PropReaderGap}},
		{"txid start delivering an earlier txid", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtTxID, TxID: 15})
			return b.read("r1", "s1", "a", d(1, 0, 0), 10, 0)
		}, Options{}, false, []string{PropReaderOrder}},
		{"dlsn start between records", func() *hb {
			b := three().open("r1", "s1", all(1, 0, 5))
			return b.read("r1", "s1", "b", d(1, 1, 0), 20, 1)
		}, Options{}, false, nil},
		{"dlsn start delivering before it", func() *hb {
			b := three().open("r1", "s1", all(1, 1, 0))
			return b.read("r1", "s1", "a", d(1, 0, 0), 10, 0)
		}, Options{}, false, []string{PropReaderOrder}},
		{"resume after d continues at its successor", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AfterDLSN, DLSN: d(1, 0, 0)})
			return b.read("r1", "s1", "b", d(1, 1, 0), 20, 1)
		}, Options{}, false, nil},
		{"resume after d repeating d", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AfterDLSN, DLSN: d(1, 0, 0)})
			return b.read("r1", "s1", "a", d(1, 0, 0), 10, 0).read("r1", "s1", "b", d(1, 1, 0), 20, 1)
		}, Options{}, false, []string{PropReaderDuplicate}},
		{"resume after d skipping its successor", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AfterDLSN, DLSN: d(1, 0, 0)})
			return b.read("r1", "s1", "c", d(1, 2, 0), 30, 2)
		}, Options{}, false, []string{PropReaderGap}},
		{"end reader delivering a record acknowledged before it opened", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtEnd})
			return b.read("r1", "s1", "c", d(1, 2, 0), 30, 2)
		}, Options{}, false, []string{PropReaderOrder}},
		{"end reader delivering a later record", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtEnd})
			b.appendOK("w1", "e", 40, d(1, 3, 0)).read("r1", "s1", "e", d(1, 3, 0), 40, 3)
			return b.rec("e", d(1, 3, 0), 40, 3)
		}, Options{}, false, nil},
		{"skip excused by a truncate invoked before the delivery", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtStart}).read("r1", "s1", "a", d(1, 0, 0), 10, 0)
			b.truncate("t1", d(1, 2, 0), history.OK).read("r1", "s1", "c", d(1, 2, 0), 30, 2)
			b.drain.Truncation, b.drain.Records = d(1, 2, 0), b.drain.Records[2:]
			return b
		}, Options{}, false, nil},
		{"skip not excused by a truncate invoked after the delivery", func() *hb {
			b := three().open("r1", "s1", history.Position{At: history.AtStart}).read("r1", "s1", "a", d(1, 0, 0), 10, 0)
			b.read("r1", "s1", "c", d(1, 2, 0), 30, 2).truncate("t1", d(1, 2, 0), history.OK)
			b.drain.Truncation, b.drain.Records = d(1, 2, 0), b.drain.Records[2:]
			return b
		}, Options{}, false, []string{PropReaderGap}},
		{"start reader after truncation begins at the truncation point", func() *hb {
			b := three().truncate("t1", d(1, 1, 0), history.OK)
			b.open("r1", "s1", history.Position{At: history.AtStart}).read("r1", "s1", "b", d(1, 1, 0), 20, 1)
			b.drain.Truncation, b.drain.Records = d(1, 1, 0), b.drain.Records[1:]
			return b
		}, Options{}, false, nil},
		{"fenced epoch: append in flight at the fence may still be acknowledged", func() *hb {
			b := newHB().invoke("w1", "a", 1).invoke("w2", "b", 2)
			b.done("w2", "b", history.Info, history.ClassFenced, "e1").ok("w1", "a", 1, d(1, 0, 0), "e1")
			return b.rec("a", d(1, 0, 0), 1, 0)
		}, Options{}, false, nil},
		{"fenced epoch: append invoked after the fence acknowledged", func() *hb {
			b := newHB().invoke("w2", "b", 2).done("w2", "b", history.Info, history.ClassFenced, "e1")
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1")
			return b.rec("a", d(1, 0, 0), 1, 0)
		}, Options{}, false, []string{PropPostFenceAck}},
		{"fence-observed event fences the epoch", func() *hb {
			b := newHB().add(history.Event{Process: "o1", Type: history.Info, Kind: history.FenceObserved, Epoch: "e1"})
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1")
			return b.rec("a", d(1, 0, 0), 1, 0)
		}, Options{}, false, []string{PropPostFenceAck}},
		{"custom fence class", func() *hb {
			b := newHB().invoke("w2", "b", 2).done("w2", "b", history.Fail, "owned", "e1")
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1")
			return b.rec("a", d(1, 0, 0), 1, 0)
		}, Options{FenceClasses: []string{"fenced", "owned"}}, false, []string{PropPostFenceAck}},
		{"two epochs acknowledged in one segment", func() *hb {
			b := newHB().invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1").invoke("w2", "b", 2).ok("w2", "b", 2, d(1, 1, 0), "e2")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 2, 1)
		}, Options{}, false, []string{PropPostFenceAck}},
		{"ownership: epochs take over in turn", func() *hb {
			b := ownerSegments(3)
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1").invoke("w2", "b", 2).ok("w2", "b", 2, d(2, 0, 0), "e2")
			b.invoke("w1", "c", 3).ok("w1", "c", 3, d(3, 0, 0), "e3")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(2, 0, 0), 2, 1).rec("c", d(3, 0, 0), 3, 2)
		}, Options{}, false, nil},
		{"ownership: the old epoch's append in flight at the takeover", func() *hb {
			b := ownerSegments(2)
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1").invoke("w1", "b", 2)
			b.invoke("w2", "c", 3).ok("w2", "c", 3, d(2, 0, 0), "e2").ok("w1", "b", 2, d(1, 1, 0), "e1")
			b.drain.Segments[0].LastEntryID = 1
			b.drain.Segments[1].StartSeqID = history.Int64(2)
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 2, 1).rec("c", d(2, 0, 0), 3, 2)
		}, Options{}, false, nil},
		{"ownership: an old epoch acknowledged after the takeover", func() *hb {
			b := ownerSegments(3)
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "e1").invoke("w2", "b", 2).ok("w2", "b", 2, d(2, 0, 0), "e2")
			b.invoke("w1", "c", 3).ok("w1", "c", 3, d(3, 0, 0), "e1")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(2, 0, 0), 2, 1).rec("c", d(3, 0, 0), 3, 2)
		}, Options{}, false, []string{PropOwnershipLinearizable}},
		{"ack beyond the sealed end", func() *hb {
			b := three()
			b.drain.Segments[0] = history.Segment{LSSN: 1, State: history.Completed, LastEntryID: 1}
			b.drain.Records = b.drain.Records[:2]
			return b
		}, Options{}, false, []string{PropPostFenceAck, PropLost}},
		{"resolved indeterminate append placed before an earlier ack", func() *hb {
			b := newHB().appendOK("w1", "a", 1, d(1, 1, 0)).invoke("w2", "b", 2).done("w2", "b", history.Info, history.ClassUnavailable, "")
			return b.rec("b", d(1, 0, 0), 2, 0).rec("a", d(1, 1, 0), 1, 1)
		}, Options{}, false, []string{PropAppendOrder, PropTxID}},
		{"read before the append was invoked", func() *hb {
			b := newHB().open("r1", "s1", history.Position{At: history.AtStart}).read("r1", "s1", "a", d(1, 0, 0), 1, 0)
			return b.appendOK("w1", "a", 1, d(1, 0, 0)).rec("a", d(1, 0, 0), 1, 0)
		}, Options{}, false, []string{PropPhantom}},
		{"indeterminate append retried lands twice", func() *hb {
			b := newHB().invoke("w1", "a", 1).done("w1", "a", history.Info, history.ClassUnavailable, "").appendOK("w1", "a", 2, d(1, 1, 0))
			return b.rec("a", d(1, 0, 0), 1, 0).rec("a", d(1, 1, 0), 2, 1)
		}, Options{}, false, nil},
		{"retried twice but at three positions", func() *hb {
			b := newHB().invoke("w1", "a", 1).done("w1", "a", history.Info, history.ClassUnavailable, "").appendOK("w1", "a", 2, d(1, 1, 0))
			return b.rec("a", d(1, 0, 0), 1, 0).rec("a", d(1, 1, 0), 2, 1).rec("a", d(1, 2, 0), 2, 2)
		}, Options{}, false, []string{PropDuplicate}},
		{"one value at ten positions", func() *hb {
			b := newHB().appendOK("w1", "a", 1, d(1, 0, 0)).rec("a", d(1, 0, 0), 1, 0)
			for i := int64(1); i < 10; i++ {
				b.rec("a", d(1, i, 0), 1, i)
			}
			return b
		}, Options{}, false, []string{PropDuplicate}},
		{"value of another log delivered", func() *hb {
			b := newHB().add(history.Event{Process: "w1", Type: history.Invoke, Kind: history.Append, Log: "ns/b", Value: "a", TxID: 1})
			b.add(history.Event{Process: "w1", Type: history.OK, Kind: history.Append, Log: "ns/b", Value: "a", TxID: 1, DLSN: d(1, 0, 0)})
			return b.rec("a", d(1, 0, 0), 1, 0) // in ns/a's drain; ns/b has none
		}, Options{}, false, []string{PropPhantom, PropDrainIncomplete}},
		{"misclassified per class", func() *hb {
			b := newHB().invoke("w1", "a", 1).done("w1", "a", history.Fail, "over-capacity", "")
			b.invoke("w1", "b", 1).done("w1", "b", history.Fail, "record-too-large", "")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 1, 1)
		}, Options{}, false, []string{PropDefiniteMisclassified}},
		{"bulk append acknowledged and drained", func() *hb {
			b := newHB().add(history.Event{Process: "w1", Type: history.Invoke, Kind: history.AppendBulk, Records: []history.Record{{Value: "a", TxID: 1}, {Value: "b", TxID: 1}}})
			b.add(history.Event{Process: "w1", Type: history.OK, Kind: history.AppendBulk, Records: []history.Record{{Value: "a", TxID: 1, DLSN: d(1, 0, 0)}, {Value: "b", TxID: 1, DLSN: d(1, 0, 1)}}})
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 0, 1), 1, 1)
		}, Options{}, false, nil},
		{"bulk append with a record lost", func() *hb {
			b := newHB().add(history.Event{Process: "w1", Type: history.Invoke, Kind: history.AppendBulk, Records: []history.Record{{Value: "a", TxID: 1}, {Value: "b", TxID: 1}}})
			b.add(history.Event{Process: "w1", Type: history.OK, Kind: history.AppendBulk, Records: []history.Record{{Value: "a", TxID: 1, DLSN: d(1, 0, 0)}, {Value: "b", TxID: 1, DLSN: d(1, 0, 1)}}})
			return b.rec("a", d(1, 0, 0), 1, 0)
		}, Options{}, false, []string{PropLost}},
		{"never-truncated log starting at sequence id 3", func() *hb {
			b := three()
			for i := range b.drain.Records {
				b.drain.Records[i].SeqID += 3
			}
			return b
		}, Options{}, false, []string{PropSequenceID}},
		{"segment start sequence id disagrees", func() *hb {
			b := three()
			b.drain.Segments[0].StartSeqID = history.Int64(1)
			return b
		}, Options{}, false, []string{PropSequenceID}},
		{"drain out of order", func() *hb {
			b := three()
			r := b.drain.Records
			r[1], r[2] = r[2], r[1]
			r[1].SeqID, r[2].SeqID = 1, 2
			r[1].TxID, r[2].TxID = 20, 30
			return b
		}, Options{}, false, []string{PropReaderOrder, PropTxID}},
		{"drain past the sealed end", func() *hb {
			b := newHB().appendOK("w1", "a", 1, d(1, 0, 0)).invoke("w1", "b", 2).done("w1", "b", history.Info, history.ClassFenced, "")
			b.drain.Segments[0] = history.Segment{LSSN: 1, State: history.Completed, LastEntryID: 0}
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 2, 1)
		}, Options{}, false, []string{PropReadPastSeal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.build()
			h, err := history.Validate(b.events)
			if err != nil {
				t.Fatal(err)
			}
			drains := history.Drains{lg: b.drain}
			if tt.noDrain {
				drains = nil
			}
			rep := Check(h, drains, tt.opts)
			got, want := rep.Failed(), slices.Clone(tt.want)
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("failed %v, want %v\n%s", got, want, table(rep))
			}
			if rep.Valid != (len(want) == 0) {
				t.Fatalf("Valid = %v with failures %v", rep.Valid, got)
			}
		})
	}
}

// concurrentTruncate: the append of "a" is in flight while a truncate
// past it runs; the truncate may be linearized after the append.
func concurrentTruncate() *hb {
	b := newHB().invoke("w2", "a", 0).appendOK("w1", "x", 1, d(1, 1, 0))
	b.truncInvoke("t1", d(1, 1, 0))
	b.ok("w2", "a", 0, d(1, 0, 0), "").truncDone("t1", d(1, 1, 0))
	b.drain.Truncation = d(1, 1, 0)
	return b.rec("x", d(1, 1, 0), 1, 1)
}

func TestMisclassifiedByClass(t *testing.T) {
	b := newHB().invoke("w1", "a", 1).done("w1", "a", history.Fail, "over-capacity", "")
	b.invoke("w1", "b", 1).done("w1", "b", history.Fail, "record-too-large", "")
	b.invoke("w1", "c", 1).done("w1", "c", history.Fail, "over-capacity", "")
	b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 1, 1).rec("c", d(1, 2, 0), 1, 2)
	h, err := history.Validate(b.events)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(h, history.Drains{lg: b.drain}, Options{})
	p := rep.Property(PropDefiniteMisclassified)
	if p.Count != 3 || p.ByClass["over-capacity"] != 2 || p.ByClass["record-too-large"] != 1 {
		t.Fatalf("count %d by class %v", p.Count, p.ByClass)
	}
}

func TestReadsBelowTruncationAreAllowed(t *testing.T) {
	b := three().open("r1", "s1", history.Position{At: history.AtStart}).truncate("t1", d(1, 2, 0), history.OK)
	b.read("r1", "s1", "a", d(1, 0, 0), 10, 0).read("r1", "s1", "b", d(1, 1, 0), 20, 1).read("r1", "s1", "c", d(1, 2, 0), 30, 2)
	b.drain.Truncation, b.drain.Records = d(1, 2, 0), b.drain.Records[2:]
	h, err := history.Validate(b.events)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(h, history.Drains{lg: b.drain}, Options{})
	if !rep.Valid {
		t.Fatalf("violations %v\n%s", rep.Failed(), table(rep))
	}
	if got := rep.Stats.Total.ReadsBelowTruncation; got != 2 {
		t.Fatalf("reads below truncation = %d, want 2", got)
	}
	if got := rep.Stats.Total.TruncatedAcked; got != 2 {
		t.Fatalf("truncated acked = %d, want 2", got)
	}
}

// ownerSegments is a drain skeleton with n segments of one entry each,
// all but the last sealed.
func ownerSegments(n int64) *hb {
	b := newHB()
	b.drain.Segments = nil
	for l := int64(1); l <= n; l++ {
		seg := history.Segment{LSSN: l, State: history.Completed, LastEntryID: 0, StartSeqID: history.Int64(l - 1)}
		if l == n {
			seg.State = history.InProgress
		}
		b.drain.Segments = append(b.drain.Segments, seg)
	}
	return b
}
