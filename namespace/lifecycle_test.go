package namespace

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// TestCrashBetweenRollSteps kills the writer after a roll created the next
// segment and before it completed the previous one: two segments are left
// in progress. The next writer must recover both, in order (the second is
// empty and is deleted), and continue the sequence ids; a reader that
// tailed across the crash must see every acknowledged record once.
func TestCrashBetweenRollSteps(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	var crash atomic.Bool
	nsA := openNS(t, c, func(cfg *Config) {
		cfg.SegmentRollBytes = 8 << 10
		cfg.FlushBytes = 1 << 10
		cfg.testHooks.afterRollCreate = func(string) error {
			if crash.Load() {
				return errors.New("killed in the middle of a roll")
			}
			return nil
		}
	})
	nsB := openNS(t, c)
	ctx := deadline(t, 2*time.Minute)
	const log = "rollcrash"
	createLog(t, nsB, log)
	r, err := nsB.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	tl := startTailer(ctx, r, dlog.InitialDLSN)

	h := newHistory()
	wA, err := nsA.OpenWriter(ctx, log, WriterOptions{})
	must(t, err, "open writer A")
	next := writeUntil(ctx, wA, h, 0, 300, 16, 100, nil) // several rolls
	crash.Store(true)
	writeUntil(ctx, wA, h, next, 1<<30, 16, 100, nil) // until the crash
	if err := wA.Err(); !errors.Is(err, errTestCrash) {
		t.Fatalf("writer A: %v; want the test crash", err)
	}
	st, err := nsB.store.GetLogState(ctx, nsB.name, log)
	must(t, err, "log state")
	var inProgress []int64
	for _, s := range st.Segments {
		if s.State == metadata.SegmentInProgress {
			inProgress = append(inProgress, s.LSSN)
		}
	}
	if len(inProgress) != 2 || inProgress[1] != inProgress[0]+1 {
		t.Fatalf("in-progress segments after the crash: %v; want two consecutive", inProgress)
	}
	acked := h.ackedCount()

	// A crashed process's lock lasts until its lease ends: wait for it.
	wB, err := nsB.OpenWriter(ctx, log, WriterOptions{Wait: true})
	must(t, err, "open writer B")
	st, err = nsB.store.GetLogState(ctx, nsB.name, log)
	must(t, err, "log state")
	first, _ := findSegment(st, inProgress[0])
	if first.State != metadata.SegmentCompleted {
		t.Fatalf("segment %d not completed by recovery: %+v", inProgress[0], first)
	}
	if _, ok := findSegment(st, inProgress[1]); ok {
		t.Fatalf("empty segment %d not deleted by recovery", inProgress[1])
	}
	last := st.Segments[len(st.Segments)-1]
	if last.State != metadata.SegmentInProgress || last.LSSN != inProgress[1]+1 || last.StartSequenceID != first.StartSequenceID+first.RecordCount {
		t.Fatalf("new segment %+v after %+v", last, first)
	}
	writeUntil(ctx, wB, h, 1<<20, 200, 16, 100, nil)
	must(t, wB.Close(ctx), "close B")
	end := wB.LastDLSN()
	recs, err := tl.finish(end)
	must(t, err, "tailer")
	final := readAll(t, ctx, nsB, log, end)
	checkReads(t, final, h, map[string][]dlog.ReadRecord{"tail": recs}, map[string]dlog.DLSN{"tail": dlog.InitialDLSN})
	if len(recs) != len(final) || len(final) < acked+200 {
		t.Fatalf("tailer read %d, log has %d, acknowledged %d+200", len(recs), len(final), acked)
	}
}

func findSegment(st metadata.LogState, lssn int64) (metadata.Segment, bool) {
	for _, s := range st.Segments {
		if s.LSSN == lssn {
			return s, true
		}
	}
	return metadata.Segment{}, false
}

// TestEndOfStream seals a log: later writes fail definitely with
// ErrEndOfStream, readers get ErrEndOfStream after the last record (also
// readers started at the end), and a new writer cannot write either.
func TestEndOfStream(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c)
	ctx := deadline(t, time.Minute)
	createLog(t, n, "eos")
	tailR, err := n.OpenReader(ctx, "eos", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer tailR.Close()
	w, err := n.OpenWriter(ctx, "eos", WriterOptions{})
	must(t, err, "open writer")
	for i := range 10 {
		_, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: payload(uint64(i), 10)})
		must(t, err, "write %d", i)
	}
	must(t, w.MarkEndOfStream(ctx), "mark end of stream")
	must(t, w.MarkEndOfStream(ctx), "mark end of stream again")
	_, err = w.Write(ctx, dlog.Record{TxID: 20, Payload: []byte("x")})
	if !errors.Is(err, dlog.ErrEndOfStream) || !dlog.IsDefinite(err) {
		t.Fatalf("write after end of stream: %v", err)
	}
	must(t, w.Close(ctx), "close")

	readToEOS := func(r *Reader) int {
		k := 0
		for {
			_, err := r.Next(ctx)
			if errors.Is(err, dlog.ErrEndOfStream) {
				return k
			}
			must(t, err, "read")
			k++
		}
	}
	if k := readToEOS(tailR); k != 10 {
		t.Fatalf("tailing reader read %d records before end of stream", k)
	}
	for _, pos := range []Position{AtStart(), AtEnd(), AtTxID(5), AtTxID(100)} {
		r, err := n.OpenReader(ctx, "eos", pos, ReaderOptions{})
		must(t, err, "open reader at %v", pos)
		readToEOS(r)
		if _, err := r.Next(ctx); !errors.Is(err, dlog.ErrEndOfStream) {
			t.Fatalf("end of stream not sticky: %v", err)
		}
		r.Close()
	}
	w2, err := n.OpenWriter(ctx, "eos", WriterOptions{})
	must(t, err, "reopen sealed log")
	if _, err := w2.Write(ctx, dlog.Record{TxID: 30}); !errors.Is(err, dlog.ErrEndOfStream) {
		t.Fatalf("write to a sealed log by a new writer: %v", err)
	}
	must(t, w2.Close(ctx), "close")
}

// TestDeleteLog: a log with an active writer is not deleted without
// force; a forced delete fences the writer; readers get ErrLogNotFound;
// the ledgers are gone.
func TestDeleteLog(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c)
	other := openNS(t, c)
	ctx := deadline(t, time.Minute)
	createLog(t, n, "del")
	w, err := n.OpenWriter(ctx, "del", WriterOptions{})
	must(t, err, "open writer")
	_, err = w.Write(ctx, dlog.Record{TxID: 1, Payload: []byte("a")})
	must(t, err, "write")
	r, err := other.OpenReader(ctx, "del", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	_, err = r.Next(ctx)
	must(t, err, "read")

	wantErr(t, n.DeleteLog(ctx, "del", false), dlog.ErrWriterActive, "delete with a local writer")
	wantErr(t, other.DeleteLog(ctx, "del", false), dlog.ErrWriterActive, "delete with a remote writer")
	segs, err := n.ListSegments(ctx, "del")
	must(t, err, "segments")
	must(t, other.DeleteLog(ctx, "del", true), "forced delete")
	waitFor(t, ctx, "writer fenced", func() bool { return errors.Is(w.Err(), dlog.ErrFenced) })
	if _, err := w.Write(ctx, dlog.Record{TxID: 2}); !errors.Is(err, dlog.ErrFenced) {
		t.Fatalf("write after forced delete: %v", err)
	}
	w.Close(ctx)
	if _, err := r.Next(ctx); !errors.Is(err, dlog.ErrLogNotFound) {
		t.Fatalf("reader of a deleted log: %v", err)
	}
	for _, s := range segs {
		if _, _, err := n.ledgers.Metadata(ctx, s.LedgerID); err == nil {
			t.Fatalf("ledger %d of segment %d still exists", s.LedgerID, s.LSSN)
		}
	}
	ok, err := n.LogExists(ctx, "del")
	if err != nil || ok {
		t.Fatalf("log exists after delete: %v %v", ok, err)
	}
	wantErr(t, n.DeleteLog(ctx, "del", false), dlog.ErrLogNotFound, "delete again")
	// The name can be used again.
	createLog(t, n, "del")
	w, err = n.OpenWriter(ctx, "del", WriterOptions{})
	must(t, err, "open writer on the new log")
	must(t, w.Close(ctx), "close")
	must(t, n.DeleteLog(ctx, "del", false), "delete without writer")
}

// TestSubscriptions: a reader at a subscription starts after the stored
// position; commits move forward only; reset moves back.
func TestSubscriptions(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c)
	ctx := deadline(t, time.Minute)
	createLog(t, n, "subs")
	w, err := n.OpenWriter(ctx, "subs", WriterOptions{})
	must(t, err, "open writer")
	var dlsns []dlog.DLSN
	for i := range 20 {
		d, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: payload(uint64(i), 20)})
		must(t, err, "write")
		dlsns = append(dlsns, d)
	}
	_, err = n.GetSubscription(ctx, "subs", "app")
	wantErr(t, err, dlog.ErrNotFound, "unknown subscription")
	_, err = n.OpenReader(ctx, "subs", AtSubscription("app"), ReaderOptions{})
	wantErr(t, err, dlog.ErrNotFound, "reader at unknown subscription")
	must(t, n.CommitSubscription(ctx, "subs", "app", dlsns[9]), "commit")
	must(t, n.CommitSubscription(ctx, "subs", "app", dlsns[9]), "commit same")
	err = n.CommitSubscription(ctx, "subs", "app", dlsns[3])
	if !errors.Is(err, dlog.ErrInvalidArgument) || !dlog.IsDefinite(err) {
		t.Fatalf("commit backwards: %v", err)
	}
	r, err := n.OpenReader(ctx, "subs", AtSubscription("app"), ReaderOptions{})
	must(t, err, "reader at subscription")
	rec, err := r.Next(ctx)
	must(t, err, "read")
	if rec.DLSN != dlsns[10] {
		t.Fatalf("subscription reader starts at %v; want %v", rec.DLSN, dlsns[10])
	}
	r.Close()
	must(t, n.ResetSubscription(ctx, "subs", "app", dlsns[2]), "reset")
	got, err := n.GetSubscription(ctx, "subs", "app")
	if err != nil || got != dlsns[2] {
		t.Fatalf("after reset: %v %v", got, err)
	}
	subs, err := n.ListSubscriptions(ctx, "subs")
	if err != nil || len(subs) != 1 || subs["app"] != dlsns[2] {
		t.Fatalf("list: %v %v", subs, err)
	}
	must(t, n.DeleteSubscription(ctx, "subs", "app"), "delete")
	wantErr(t, n.DeleteSubscription(ctx, "subs", "app"), dlog.ErrNotFound, "delete again")
	_, err = n.GetSubscription(ctx, "nolog", "app")
	wantErr(t, err, dlog.ErrLogNotFound, "subscription of a missing log")
	wantErr(t, n.CommitSubscription(ctx, "nolog", "app", dlsns[0]), dlog.ErrLogNotFound, "commit to a missing log")
	must(t, w.Close(ctx), "close")
}

// TestTruncationAndRetention: truncation marks segments, moves the point
// forward only and lets the collector delete whole segments; a slow
// reader sitting in a collected segment gets ErrTruncated (never a silent
// skip); readers can start at the first readable record; time retention
// deletes old completed segments but never the in-progress one.
func TestTruncationAndRetention(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) {
		cfg.SegmentRollBytes = 4 << 10
		cfg.FlushBytes = 512
	})
	ctx := deadline(t, 2*time.Minute)
	createLog(t, n, "trunc")
	w, err := n.OpenWriter(ctx, "trunc", WriterOptions{})
	must(t, err, "open writer")
	h := newHistory()
	writeUntil(ctx, w, h, 0, 600, 8, 64, nil)
	if len(h.failed) > 0 {
		t.Fatalf("%d writes failed", len(h.failed))
	}
	segs, err := n.ListSegments(ctx, "trunc")
	must(t, err, "segments")
	if len(segs) < 6 {
		t.Fatalf("only %d segments", len(segs))
	}
	// A slow reader parked in the first segment, one record in.
	slow, err := n.OpenReader(ctx, "trunc", AtStart(), ReaderOptions{ReadAheadEntries: 1})
	must(t, err, "open slow reader")
	defer slow.Close()
	_, err = slow.Next(ctx)
	must(t, err, "slow read")

	cut := h.acked[300]
	must(t, w.Truncate(ctx, cut), "truncate")
	must(t, w.Truncate(ctx, h.acked[100]), "truncate backwards (no-op)")
	st, err := n.store.GetLogState(ctx, n.name, "trunc")
	must(t, err, "state")
	if st.Truncation != cut {
		t.Fatalf("truncation point %v; want %v", st.Truncation, cut)
	}
	for _, s := range st.Segments {
		last := dlog.DLSN{LSSN: s.LSSN, EntryID: s.LastEntryID, SlotID: s.LastSlotID}
		switch {
		case s.State != metadata.SegmentCompleted:
		case last.Less(cut) && s.Truncation != metadata.TruncationFull:
			t.Fatalf("segment %d below the cut not marked truncated", s.LSSN)
		case s.LSSN == cut.LSSN && s.Truncation != metadata.TruncationPartial:
			t.Fatalf("segment %d holding the cut not partially truncated", s.LSSN)
		}
	}
	_, err = n.OpenReader(ctx, "trunc", AtDLSN(h.acked[10]), ReaderOptions{})
	wantErr(t, err, dlog.ErrTruncated, "reader in truncated data")
	r, err := n.OpenReader(ctx, "trunc", AtDLSN(h.acked[10]), ReaderOptions{SkipTruncated: true})
	must(t, err, "reader skipping truncated data")
	rec, err := r.Next(ctx)
	must(t, err, "read")
	if rec.DLSN != cut {
		t.Fatalf("first readable record %v; want %v", rec.DLSN, cut)
	}
	r.Close()
	first, err := n.FirstDLSN(ctx, "trunc")
	if err != nil || first != cut {
		t.Fatalf("FirstDLSN %v %v", first, err)
	}

	must(t, n.RunGC(ctx), "gc")
	after, err := n.ListSegments(ctx, "trunc")
	must(t, err, "segments")
	if after[0].LSSN != cut.LSSN {
		t.Fatalf("after gc the first segment is %d; want %d", after[0].LSSN, cut.LSSN)
	}
	for _, s := range segs {
		if s.LSSN < cut.LSSN {
			if _, _, err := n.ledgers.Metadata(ctx, s.LedgerID); err == nil {
				t.Fatalf("ledger of collected segment %d still exists", s.LSSN)
			}
		}
	}
	// The slow reader's segment is gone: it must say so.
	for {
		_, err := slow.Next(ctx)
		if err != nil {
			wantErr(t, err, dlog.ErrTruncated, "slow reader after collection")
			break
		}
	}
	count, err := n.RecordCount(ctx, "trunc")
	must(t, err, "count")
	if count != 300 {
		t.Fatalf("record count %d; want 300", count)
	}

	// Time retention: everything completed is old enough, except what
	// must stay (the last completed segment and the in-progress one).
	must(t, n.SetRetention(ctx, "trunc", time.Millisecond), "set retention")
	waitFor(t, ctx, "retention", func() bool {
		must(t, n.RunGC(ctx), "gc")
		segs, err := n.ListSegments(ctx, "trunc")
		must(t, err, "segments")
		return len(segs) == 2
	})
	segs, err = n.ListSegments(ctx, "trunc")
	must(t, err, "segments")
	if !segs[1].InProgress || segs[0].InProgress {
		t.Fatalf("retention kept %+v", segs)
	}
	next := writeUntil(ctx, w, h, 600, 10, 1, 64, nil)
	_ = next
	rest, err := n.OpenReader(ctx, "trunc", AtStart(), ReaderOptions{})
	must(t, err, "reader after retention")
	recs := readN(t, ctx, rest, 10)
	checkSequence(t, recs)
	rest.Close()
	must(t, w.Close(ctx), "close")
	_ = context.Background
}

// TestListLogs pages through a namespace's logs by prefix.
func TestListLogs(t *testing.T) {
	c := startCluster(t, 0, "memory:")
	n := openNS(t, c, func(cfg *Config) { cfg.Namespace = "listing" })
	ctx := deadline(t, time.Minute)
	for _, name := range []string{"a-1", "a-2", "a-3", "b-1", "a-4"} {
		createLog(t, n, name)
	}
	must(t, n.CreateLog(ctx, "kept", LogOptions{Retention: time.Hour}), "create with retention")
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		names, next, err := n.ListLogs(ctx, "a-", token, 2)
		must(t, err, "list")
		got = append(got, names...)
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		token = next
	}
	if len(got) != 4 || got[0] != "a-1" || got[3] != "a-4" {
		t.Fatalf("listed %v", got)
	}
	all, next, err := n.ListLogs(ctx, "", "", 0)
	if err != nil || next != "" || len(all) != 6 {
		t.Fatalf("list all: %v %q %v", all, next, err)
	}
	ok, err := n.LogExists(ctx, "b-1")
	if err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	for _, p := range []Position{AtStart(), AtEnd(), AtTxID(3), AtDLSN(dlog.InitialDLSN), AtSubscription("s"), {}} {
		if p.String() == "" {
			t.Fatalf("empty string for %#v", p)
		}
	}
}

// TestNamespaceTruncateAfterDeadWriter: with nobody owning the log, a
// namespace-level truncation first recovers what a dead writer left in
// progress, so a position past the real end is refused and a valid one
// works.
func TestNamespaceTruncateAfterDeadWriter(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	nsA := openNS(t, c)
	nsB := openNS(t, c)
	ctx := deadline(t, time.Minute)
	createLog(t, nsA, "dead")
	w, err := nsA.OpenWriter(ctx, "dead", WriterOptions{})
	must(t, err, "open writer")
	h := newHistory()
	writeUntil(ctx, w, h, 0, 50, 4, 20, nil)
	w.abort(errors.New("killed"))
	last := h.acked[49]
	err = nsB.Truncate(ctx, "dead", dlog.DLSN{LSSN: last.LSSN, EntryID: last.EntryID + 10})
	if !errors.Is(err, dlog.ErrInvalidArgument) {
		t.Fatalf("truncate past the end of a recovered segment: %v", err)
	}
	segs, err := nsB.ListSegments(ctx, "dead")
	must(t, err, "segments")
	if segs[len(segs)-1].InProgress {
		t.Fatal("the dead writer's segment was not recovered")
	}
	must(t, nsB.Truncate(ctx, "dead", h.acked[20]), "truncate")
	first, err := nsB.FirstDLSN(ctx, "dead")
	if err != nil || first != h.acked[20] {
		t.Fatalf("first record %v %v", first, err)
	}
	r, err := nsB.OpenReader(ctx, "dead", AtStart(), ReaderOptions{})
	must(t, err, "reader at start")
	checkSequence(t, readN(t, ctx, r, 30))
	r.Close()
}

// TestOrphanLedgerSweep: a ledger a crashed writer created but never
// committed as a segment is deleted by the collector after the grace
// period; ledgers of live segments are kept.
func TestOrphanLedgerSweep(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) { cfg.OrphanLedgerGrace = time.Millisecond })
	ctx := deadline(t, time.Minute)
	createLog(t, n, "orphans")
	w, err := n.OpenWriter(ctx, "orphans", WriterOptions{})
	must(t, err, "open writer")
	_, err = w.Write(ctx, dlog.Record{TxID: 1, Payload: []byte("kept")})
	must(t, err, "write")
	orphan, err := n.createLedger(ctx, "orphans", 99)
	must(t, err, "create orphan ledger")
	orphan.Abort()
	other, err := n.ledgers.Create(ctx, ledgerOptions(n)) // not tagged: not ours
	must(t, err, "create untagged ledger")
	other.Abort()
	waitFor(t, ctx, "orphan swept", func() bool {
		must(t, n.RunGC(ctx), "gc")
		_, _, err := n.ledgers.Metadata(ctx, orphan.ID())
		return err != nil
	})
	if _, _, err := n.ledgers.Metadata(ctx, other.ID()); err != nil {
		t.Fatalf("untagged ledger deleted: %v", err)
	}
	segs, err := n.ListSegments(ctx, "orphans")
	must(t, err, "segments")
	if _, _, err := n.ledgers.Metadata(ctx, segs[0].LedgerID); err != nil {
		t.Fatalf("live segment's ledger deleted: %v", err)
	}
	must(t, w.Close(ctx), "close")
}

// TestRollByTime: a segment holding records rolls once it is older than
// SegmentRollInterval, even while the writer is idle; an empty one does
// not.
func TestRollByTime(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) { cfg.SegmentRollInterval = 100 * time.Millisecond })
	ctx := deadline(t, time.Minute)
	createLog(t, n, "timed")
	w, err := n.OpenWriter(ctx, "timed", WriterOptions{})
	must(t, err, "open writer")
	for i := range 3 {
		_, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: payload(uint64(i), 10)})
		must(t, err, "write %d", i)
		want := i + 2
		waitFor(t, ctx, "time roll", func() bool {
			segs, err := n.ListSegments(ctx, "timed")
			must(t, err, "segments")
			if len(segs) < want {
				return false
			}
			// The next segment is created before the previous one is
			// completed: wait for the completion too.
			for _, s := range segs[:len(segs)-1] {
				if s.InProgress {
					return false
				}
			}
			return true
		})
	}
	segs, err := n.ListSegments(ctx, "timed")
	must(t, err, "segments")
	if len(segs) != 4 || !segs[3].InProgress || segs[2].InProgress || segs[2].RecordCount != 1 {
		t.Fatalf("segments after three timed rolls: %+v", segs)
	}
	must(t, w.Close(ctx), "close")
	r, err := n.OpenReader(ctx, "timed", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	recs := readN(t, ctx, r, 3)
	checkSequence(t, recs)
}
