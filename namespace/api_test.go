package namespace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// TestHelpersFlushAndIterator covers the API the bigger tests do not:
// the helpers on an empty and on a written log (first/last record and
// DLSN, last txid, record count, DLSN for a txid), Flush, the iter.Seq2
// iterator (break leaves the reader usable; the last pair of a sealed log
// carries dlog.ErrEndOfStream), a new writer's txid floor (the log's max
// txid), and truncation by txid.
func TestHelpersFlushAndIterator(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	// A long flush interval: only Flush (or a drained pipeline) sends.
	n := openNS(t, c, func(cfg *Config) { cfg.FlushInterval = time.Hour })
	ctx := deadline(t, time.Minute)
	const log = "helpers"
	createLog(t, n, log)

	// An empty log.
	_, err := n.GetLastRecord(ctx, log)
	wantErr(t, err, dlog.ErrNotFound, "last record of an empty log")
	_, err = n.FirstDLSN(ctx, log)
	wantErr(t, err, dlog.ErrNotFound, "first DLSN of an empty log")
	_, err = n.LastDLSN(ctx, log)
	wantErr(t, err, dlog.ErrNotFound, "last DLSN of an empty log")
	_, err = n.DLSNForTxID(ctx, log, 0)
	wantErr(t, err, dlog.ErrNotFound, "DLSN for a txid of an empty log")
	if k, err := n.RecordCount(ctx, log); err != nil || k != 0 {
		t.Fatalf("record count of an empty log: %d %v", k, err)
	}
	if x, err := n.LastTxID(ctx, log); err != nil || x != -1 {
		t.Fatalf("last txid of an empty log: %d %v", x, err)
	}

	w, err := n.OpenWriter(ctx, log, WriterOptions{})
	must(t, err, "open writer")
	const k = 100
	futs := make([]*Future, k)
	for i := range futs {
		futs[i] = w.WriteAsync(dlog.Record{TxID: int64(2 * i), Payload: payload(uint64(i), 40)})
	}
	must(t, w.Flush(ctx), "flush")
	dlsns := make([]dlog.DLSN, k)
	for i, f := range futs {
		select {
		case <-f.Done():
		default:
			t.Fatalf("write %d not resolved after Flush returned", i)
		}
		d, err := f.Wait(ctx)
		must(t, err, "write %d", i)
		dlsns[i] = d
	}
	must(t, w.Flush(ctx), "flush with nothing pending")
	if got := w.LastDLSN(); got != dlsns[k-1] {
		t.Fatalf("writer's last DLSN %v; want %v", got, dlsns[k-1])
	}
	// The in-progress segment's last record becomes visible to the
	// helpers without another write (explicit LAC).
	waitFor(t, ctx, "last record visible", func() bool {
		d, err := n.LastDLSN(ctx, log)
		return err == nil && d == dlsns[k-1]
	})
	must(t, w.Close(ctx), "close writer")

	if d, err := n.FirstDLSN(ctx, log); err != nil || d != dlsns[0] {
		t.Fatalf("first DLSN %v %v; want %v", d, err, dlsns[0])
	}
	if x, err := n.LastTxID(ctx, log); err != nil || x != 2*(k-1) {
		t.Fatalf("last txid %d %v; want %d", x, err, 2*(k-1))
	}
	if d, err := n.DLSNForTxID(ctx, log, 51); err != nil || d != dlsns[26] {
		t.Fatalf("DLSN for txid 51: %v %v; want %v (txid 52)", d, err, dlsns[26])
	}
	_, err = n.DLSNForTxID(ctx, log, 2*k)
	wantErr(t, err, dlog.ErrNotFound, "DLSN for a txid after the last")

	// The iterator: break after 10, the reader goes on at the 11th.
	r, err := n.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	i := 0
	for rec, err := range r.All(ctx) {
		must(t, err, "iterate")
		if rec.DLSN != dlsns[i] || rec.SequenceID != int64(i) {
			t.Fatalf("iterator record %d at %v seq %d; want %v", i, rec.DLSN, rec.SequenceID, dlsns[i])
		}
		i++
		if i == 10 {
			break
		}
	}
	rec, err := r.Next(ctx)
	if err != nil || rec.DLSN != dlsns[10] || r.LastDLSN() != dlsns[10] {
		t.Fatalf("after breaking out of the iterator: %v %v; want %v", rec.DLSN, err, dlsns[10])
	}

	// A closed reader hands out nothing more, not even what it buffered.
	closed, err := n.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	_, err = closed.Next(ctx)
	must(t, err, "read")
	must(t, closed.Close(), "close reader")
	_, err = closed.Next(ctx)
	wantErr(t, err, dlog.ErrClosed, "next after close")
	_, err = closed.NextBatch(ctx, 10)
	wantErr(t, err, dlog.ErrClosed, "batch after close")

	// A new writer cannot go below the log's max txid; equal is fine.
	w, err = n.OpenWriter(ctx, log, WriterOptions{})
	must(t, err, "reopen writer")
	if got := w.LastTxID(); got != 2*(k-1) {
		t.Fatalf("new writer's txid floor %d; want %d", got, 2*(k-1))
	}
	_, err = w.Write(ctx, dlog.Record{TxID: 100, Payload: payload(999, 10)})
	if !errors.Is(err, dlog.ErrTxIDOutOfOrder) || !dlog.IsDefinite(err) {
		t.Fatalf("write below the log's max txid: %v", err)
	}
	dk, err := w.Write(ctx, dlog.Record{TxID: 2 * (k - 1), Payload: payload(k, 40)})
	must(t, err, "write at the log's max txid")

	// Truncation by txid: the first record with txid >= 40 is record 20.
	must(t, n.TruncateTxID(ctx, log, 39), "truncate by txid")
	if d, err := n.FirstDLSN(ctx, log); err != nil || d != dlsns[20] {
		t.Fatalf("first DLSN after truncating by txid: %v %v; want %v", d, err, dlsns[20])
	}
	if cnt, err := n.RecordCount(ctx, log); err != nil || cnt != k+1-20 {
		t.Fatalf("record count after truncation: %d %v; want %d", cnt, err, k+1-20)
	}
	// Past the last txid: everything is truncated, the txid stays known.
	must(t, n.TruncateTxID(ctx, log, 1<<40), "truncate everything")
	_, err = n.GetFirstRecord(ctx, log)
	wantErr(t, err, dlog.ErrNotFound, "first record after truncating everything")
	if x, err := n.LastTxID(ctx, log); err != nil || x != 2*(k-1) {
		t.Fatalf("last txid after truncating everything: %d %v", x, err)
	}

	// The iterator's last pair of a sealed log is dlog.ErrEndOfStream; the
	// reader opened before the truncation is past nothing it had not read
	// yet, so it reads on to record k first.
	must(t, w.MarkEndOfStream(ctx), "seal")
	must(t, w.Close(ctx), "close")
	var last dlog.DLSN
	var end error
	for rec, err := range r.All(ctx) {
		if err != nil {
			end = err
			break
		}
		last = rec.DLSN
	}
	if !errors.Is(end, dlog.ErrEndOfStream) {
		// The reader sat in a segment the truncation marked: it may
		// also say so (it never skips silently).
		wantErr(t, end, dlog.ErrTruncated, "iterator end")
	} else if last != dk {
		t.Fatalf("iterator ended after %v; want %v", last, dk)
	}
	r.Close()
	fresh, err := n.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader on the sealed, truncated log")
	for rec, err := range fresh.All(ctx) {
		if err == nil {
			t.Fatalf("record %v after truncating everything", rec.DLSN)
		}
		wantErr(t, err, dlog.ErrEndOfStream, "iterator on a sealed, empty log")
	}
	fresh.Close()
}

// TestBulkAndRecordSetFailures: the bookies drop every add of an entry
// that holds a "poisoned" record, so that entry can never be acknowledged.
// A bulk write with a poisoned record k succeeds up to k and fails from k
// on (prefix failure, indeterminate errors), the log holds no record of
// the bulk after a missing one (no hole), a record set with a poisoned
// record lands whole or not at all, and the same writer heals itself
// after each failure and writes on.
func TestBulkAndRecordSetFailures(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) {
		cfg.FlushBytes = 0 // one entry per record: a bulk spans entries
		cfg.LedgerConfig.AddTimeout = 2 * time.Second
	})
	ctx := deadline(t, 3*time.Minute)
	const log = "bulk"
	createLog(t, n, log)
	w, err := n.OpenWriter(ctx, log, WriterOptions{})
	must(t, err, "open writer")

	poison := []byte("--poisoned-rec--")
	rec := func(id int, poisoned bool) dlog.Record {
		p := binary.BigEndian.AppendUint64(nil, uint64(id))
		if poisoned {
			p = append(p, poison...)
		} else {
			p = append(p, "--healthy-record"...)
		}
		return dlog.Record{TxID: int64(id), Payload: p}
	}
	for i := range c.Len() {
		c.Proxy(i).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
			if a := r.GetAdd(); a != nil && bytes.Contains(a.GetEntry().GetPayload(), poison) {
				return cluster.Drop
			}
			return cluster.Pass
		})
	}
	defer func() {
		for i := range c.Len() {
			c.Proxy(i).OnRequest(nil)
		}
	}()
	for id := range 3 {
		_, err := w.Write(ctx, rec(id, false))
		must(t, err, "write %d", id)
	}

	// Asynchronous bulk 3..12, record 5 poisoned.
	recs := make([]dlog.Record, 0, 10)
	for id := 3; id <= 12; id++ {
		recs = append(recs, rec(id, id == 5))
	}
	futs := w.WriteBulkAsync(recs)
	failedAt := -1
	for i, f := range futs {
		_, err := f.Wait(ctx)
		switch {
		case err == nil && failedAt >= 0:
			t.Fatalf("bulk record %d acknowledged after record %d failed", i, failedAt)
		case err != nil && dlog.IsDefinite(err):
			t.Fatalf("bulk record %d failed definitely: %v", i, err)
		case err != nil && failedAt < 0:
			failedAt = i
		}
	}
	if failedAt < 0 || failedAt > 2 {
		t.Fatalf("bulk failed from record %d; want at or before the poisoned record 2", failedAt)
	}

	// Synchronous bulk 13..17, record 15 poisoned: the acknowledged
	// prefix and the first error.
	recs = recs[:0]
	for id := 13; id <= 17; id++ {
		recs = append(recs, rec(id, id == 15))
	}
	dl, err := w.WriteBulk(ctx, recs)
	if err == nil || dlog.IsDefinite(err) || len(dl) > 2 {
		t.Fatalf("bulk with a poisoned third record: %d acknowledged, err %v", len(dl), err)
	}

	// A record set 18..20 with 19 poisoned: one entry, all or nothing.
	_, err = w.WriteRecordSet(ctx, []dlog.Record{rec(18, false), rec(19, true), rec(20, false)})
	if err == nil || dlog.IsDefinite(err) {
		t.Fatalf("poisoned record set: %v", err)
	}

	// The writer healed itself each time: it writes on.
	if err := w.Err(); err != nil {
		t.Fatalf("writer gave up: %v", err)
	}
	var tail []dlog.DLSN
	for id := 21; id <= 23; id++ {
		d, err := w.Write(ctx, rec(id, false))
		must(t, err, "write %d after the failures", id)
		tail = append(tail, d)
	}
	must(t, w.Close(ctx), "close")

	r, err := n.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	var got []dlog.ReadRecord
	for len(got) == 0 || got[len(got)-1].DLSN != tail[len(tail)-1] {
		batch, err := r.NextBatch(ctx, 100)
		must(t, err, "read")
		got = append(got, batch...)
	}
	checkSequence(t, got)
	present := map[int]bool{}
	for _, rec := range got {
		id := int(binary.BigEndian.Uint64(rec.Payload))
		if bytes.Contains(rec.Payload, poison) {
			t.Fatalf("poisoned record %d is in the log", id)
		}
		present[id] = true
	}
	for _, id := range []int{0, 1, 2, 21, 22, 23} {
		if !present[id] {
			t.Fatalf("acknowledged record %d missing", id)
		}
	}
	for i := range failedAt {
		if !present[3+i] {
			t.Fatalf("acknowledged bulk record %d missing", 3+i)
		}
	}
	// No hole inside a bulk: a record is in the log only if every earlier
	// record of its bulk is.
	for _, bulk := range [][2]int{{3, 12}, {13, 17}} {
		for id := bulk[0] + 1; id <= bulk[1]; id++ {
			if present[id] && !present[id-1] {
				t.Fatalf("bulk %v: record %d in the log without record %d", bulk, id, id-1)
			}
		}
	}
	if present[18] || present[20] {
		t.Fatalf("part of the poisoned record set is in the log: 18 %v, 20 %v", present[18], present[20])
	}
}

// TestNamespaceRetention: the namespace's retention (Config.Retention)
// collects every completed segment older than it except the last one,
// which seeds the next sequence id; a log created with its own retention
// keeps its segments; sequence ids continue after the collection.
func TestNamespaceRetention(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) {
		cfg.Retention = time.Millisecond
		cfg.SegmentRollBytes = 2 << 10
		cfg.FlushBytes = 512
	})
	ctx := deadline(t, 2*time.Minute)
	must(t, n.CreateLog(ctx, "expiring", LogOptions{}), "create")
	must(t, n.CreateLog(ctx, "kept", LogOptions{Retention: time.Hour}), "create with retention")
	counts := map[string]int{}
	for _, log := range []string{"expiring", "kept"} {
		w, err := n.OpenWriter(ctx, log, WriterOptions{})
		must(t, err, "open writer %s", log)
		h := newHistory()
		writeUntil(ctx, w, h, 0, 200, 8, 64, nil)
		if len(h.failed) > 0 {
			t.Fatalf("%s: %d writes failed", log, len(h.failed))
		}
		must(t, w.Close(ctx), "close %s", log)
		segs, err := n.ListSegments(ctx, log)
		must(t, err, "segments")
		if len(segs) < 4 {
			t.Fatalf("%s: only %d segments", log, len(segs))
		}
		counts[log] = len(segs)
	}
	waitFor(t, ctx, "retention", func() bool {
		must(t, n.RunGC(ctx), "gc")
		segs, err := n.ListSegments(ctx, "expiring")
		must(t, err, "segments")
		return len(segs) == 1
	})
	segs, err := n.ListSegments(ctx, "kept")
	must(t, err, "segments")
	if len(segs) != counts["kept"] {
		t.Fatalf("log with its own retention lost segments: %d of %d", len(segs), counts["kept"])
	}
	kept, err := n.ListSegments(ctx, "expiring")
	must(t, err, "segments")
	w, err := n.OpenWriter(ctx, "expiring", WriterOptions{})
	must(t, err, "reopen writer")
	d, err := w.Write(ctx, dlog.Record{TxID: 1000, Payload: payload(1000, 10)})
	must(t, err, "write after collection")
	must(t, w.Close(ctx), "close")
	r, err := n.OpenReader(ctx, "expiring", AtStart(), ReaderOptions{})
	must(t, err, "reader at start")
	defer r.Close()
	var recs []dlog.ReadRecord
	for len(recs) == 0 || recs[len(recs)-1].DLSN != d {
		batch, err := r.NextBatch(ctx, 100)
		must(t, err, "read")
		recs = append(recs, batch...)
	}
	checkSequence(t, recs)
	if recs[0].SequenceID != kept[0].StartSequenceID || recs[len(recs)-1].SequenceID != 200 {
		t.Fatalf("sequence ids %d..%d; want %d..200", recs[0].SequenceID, recs[len(recs)-1].SequenceID, kept[0].StartSequenceID)
	}
}

// TestOpenEmbeddedMetadata: a namespace opened on "embedded:DIR" starts
// its own etcd, keeps its logs in DIR across a close and a reopen, and
// stops the etcd on Close (goleak checks nothing is left running).
func TestOpenEmbeddedMetadata(t *testing.T) {
	dir := t.TempDir()
	ctx := deadline(t, time.Minute)
	open := func() *Namespace {
		cfg := DefaultConfig("embedded:" + dir)
		cfg.Namespace = "embedded"
		cfg.GCInterval = 0
		cfg.Logger = quietLogger(t)
		n, err := Open(ctx, cfg)
		must(t, err, "open namespace on an embedded etcd")
		return n
	}
	n := open()
	must(t, n.CreateLog(ctx, "kept", LogOptions{}), "create")
	must(t, n.CreateLog(ctx, "gone", LogOptions{}), "create")
	must(t, n.DeleteLog(ctx, "gone", false), "delete")
	must(t, n.Close(), "close")
	wantErr(t, n.CreateLog(ctx, "late", LogOptions{}), dlog.ErrClosed, "create after close")

	n = open()
	defer n.Close()
	logs, next, err := n.ListLogs(ctx, "", "", 0)
	if err != nil || next != "" || len(logs) != 1 || logs[0] != "kept" {
		t.Fatalf("logs after reopening: %v %q %v", logs, next, err)
	}
	_, _, err = n.ListLogs(ctx, "..", "", 0)
	wantErr(t, err, dlog.ErrInvalidName, "list with a prefix no name can have")
}

// TestSetDefaultRetention: a retention stored for the namespace applies to
// its logs without their own, in place of Config.Retention (none here).
func TestSetDefaultRetention(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) {
		cfg.SegmentRollBytes = 2 << 10
		cfg.FlushBytes = 512
	})
	ctx := deadline(t, 2*time.Minute)
	must(t, n.CreateLog(ctx, "events", LogOptions{}), "create")
	w, err := n.OpenWriter(ctx, "events", WriterOptions{})
	must(t, err, "open writer")
	h := newHistory()
	writeUntil(ctx, w, h, 0, 200, 8, 64, nil)
	must(t, w.Close(ctx), "close")
	segs, err := n.ListSegments(ctx, "events")
	must(t, err, "segments")
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	must(t, n.RunGC(ctx), "gc")
	if now, err := n.ListSegments(ctx, "events"); err != nil || len(now) != len(segs) {
		t.Fatalf("collected without any retention: %d of %d (%v)", len(now), len(segs), err)
	}
	if err := n.SetDefaultRetention(ctx, -time.Second); !errors.Is(err, dlog.ErrInvalidArgument) {
		t.Fatalf("negative retention: %v", err)
	}
	must(t, n.SetDefaultRetention(ctx, time.Millisecond), "set default retention")
	waitFor(t, ctx, "namespace retention", func() bool {
		must(t, n.RunGC(ctx), "gc")
		now, err := n.ListSegments(ctx, "events")
		must(t, err, "segments")
		return len(now) == 1
	})
}
