package namespace

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// TestVisibilityWhenIdle: after the last write of a burst is
// acknowledged, a tailing reader gets it although nothing more is written
// (the ledger sends an explicit LAC when idle). The reader must deliver it
// before a generous deadline; nothing else (no later write, no roll, no
// close) could reveal it meanwhile.
func TestVisibilityWhenIdle(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) { cfg.SegmentRollInterval = time.Hour })
	ctx := deadline(t, 2*time.Minute)
	createLog(t, n, "vis")
	r, err := n.OpenReader(ctx, "vis", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	w, err := n.OpenWriter(ctx, "vis", WriterOptions{})
	must(t, err, "open writer")
	defer w.Close(ctx)
	id := uint64(0)
	for burst, size := range []int{1, 2, 17, 1, 300} {
		var last dlog.DLSN
		futs := make([]*Future, size)
		for i := range futs {
			futs[i] = w.WriteAsync(dlog.Record{TxID: int64(id), Payload: payload(id, 30)})
			id++
		}
		for _, f := range futs {
			last, err = f.Wait(ctx)
			must(t, err, "write")
		}
		// The writer is idle from here on. The reader must see `last`.
		seen := deadline(t, 15*time.Second)
		for {
			rec, err := r.Next(seen)
			if err != nil {
				t.Fatalf("burst %d: the last acknowledged record %v never became visible: %v", burst, last, err)
			}
			if rec.DLSN == last {
				break
			}
		}
	}
}

// TestSelfHealing: a transient outage of bookies makes writes fail; once
// the bookies are back, the same writer object writes again without being
// reopened, every acknowledged record is readable once, and sequence ids
// stay consecutive.
func TestSelfHealing(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c)
	ctx := deadline(t, 3*time.Minute)
	createLog(t, n, "heal")
	w, err := n.OpenWriter(ctx, "heal", WriterOptions{})
	must(t, err, "open writer")
	h := newHistory()
	next := writeUntil(ctx, w, h, 0, 200, 16, 100, nil)

	// Two of three bookies go: no write can reach the ack quorum.
	must(t, c.Kill(1), "kill bookie 1")
	must(t, c.Kill(2), "kill bookie 2")
	failed := 0
	for range 5 {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		d, err := w.Write(wctx, dlog.Record{TxID: int64(next), Payload: payload(next, 100)})
		cancel()
		h.record(next, d, err)
		next++
		if err != nil {
			failed++
			if dlog.IsDefinite(err) && !errors.Is(err, dlog.ErrOverCapacity) {
				t.Fatalf("write during the outage failed definitely: %v", err)
			}
		}
	}
	if failed == 0 {
		t.Fatal("writes succeeded with two of three bookies down")
	}
	if err := w.Err(); err != nil {
		t.Fatalf("writer gave up during a transient outage: %v", err)
	}
	must(t, c.Restart(ctx, 1), "restart bookie 1")
	must(t, c.Restart(ctx, 2), "restart bookie 2")
	d, err := w.Write(ctx, dlog.Record{TxID: int64(next), Payload: payload(next, 100)})
	must(t, err, "write after the bookies came back")
	h.record(next, d, nil)
	next++
	writeUntil(ctx, w, h, next, 200, 16, 100, nil)
	must(t, w.Close(ctx), "close")
	final := readAll(t, ctx, n, "heal", w.LastDLSN())
	checkReads(t, final, h, nil, nil)
	segs, err := n.ListSegments(ctx, "heal")
	must(t, err, "segments")
	if len(segs) < 2 {
		t.Fatalf("the writer did not move to a new segment: %d segments", len(segs))
	}
}

// TestBookieLossDuringWritesAndReads: with four bookies, one dies while a
// writer writes and readers tail; writes continue (ensemble change) and
// readers read everything (other replicas).
func TestBookieLossDuringWritesAndReads(t *testing.T) {
	c := startCluster(t, 4, "memory:")
	n := openNS(t, c, func(cfg *Config) { cfg.SegmentRollBytes = 32 << 10 })
	ctx := deadline(t, 3*time.Minute)
	createLog(t, n, "loss")
	r, err := n.OpenReader(ctx, "loss", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	tl := startTailer(ctx, r, dlog.InitialDLSN)
	w, err := n.OpenWriter(ctx, "loss", WriterOptions{})
	must(t, err, "open writer")
	h := newHistory()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { writeUntil(ctx, w, h, 0, 3000, 32, 100, stop) })
	waitFor(t, ctx, "first writes", func() bool { return h.ackedCount() >= 500 || w.Err() != nil })
	must(t, w.Err(), "writer before the bookie loss")
	must(t, c.Kill(0), "kill bookie 0")
	wg.Wait()
	close(stop)
	if len(h.failed) > 0 {
		for id, err := range h.failed {
			t.Fatalf("write %d failed after one bookie of four died: %v", id, err)
		}
	}
	must(t, w.Close(ctx), "close")
	end := w.LastDLSN()
	recs, err := tl.finish(end)
	must(t, err, "tailer")
	final := readAll(t, ctx, n, "loss", end)
	checkReads(t, final, h, map[string][]dlog.ReadRecord{"tail": recs}, map[string]dlog.DLSN{"tail": dlog.InitialDLSN})
	if len(final) != 3000 || len(recs) != 3000 {
		t.Fatalf("log %d records, tailer %d; want 3000", len(final), len(recs))
	}
}

// holdAdds makes every bookie proxy hold add requests until released.
func holdAdds(c *cluster.Cluster, on bool) {
	for i := range c.Len() {
		p := c.Proxy(i)
		if !on {
			p.OnRequest(nil)
			p.Release()
			continue
		}
		p.OnRequest(func(r *bookiepb.Request) cluster.Verdict {
			if r.GetAdd() != nil {
				return cluster.Hold
			}
			return cluster.Pass
		})
	}
}

// TestBadInput checks every definite error of the API: nothing is written
// and the error says so.
func TestBadInput(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c, func(cfg *Config) {
		cfg.MaxRecordBytes = 1000
		cfg.MaxEntryBytes = 4000
		cfg.MaxPendingRecords = 2
		cfg.MaxPendingBytes = 8000
	})
	other := openNS(t, c)
	ctx := deadline(t, 2*time.Minute)
	createLog(t, n, "bad")
	w, err := n.OpenWriter(ctx, "bad", WriterOptions{OwnerID: "proxy-1", OwnerAddress: "10.0.0.1:7000"})
	must(t, err, "open writer")
	d0, err := w.Write(ctx, dlog.Record{TxID: 10, Payload: []byte("first")})
	must(t, err, "first write")

	big := make([]byte, 1001)
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"create invalid name", func() error { return n.CreateLog(ctx, "a/b", LogOptions{}) }, dlog.ErrInvalidName},
		{"create reserved name", func() error { return n.CreateLog(ctx, "__sys", LogOptions{}) }, dlog.ErrInvalidName},
		{"create existing", func() error { return n.CreateLog(ctx, "bad", LogOptions{}) }, dlog.ErrLogExists},
		{"writer invalid name", func() error { _, err := n.OpenWriter(ctx, ".x", WriterOptions{}); return err }, dlog.ErrInvalidName},
		{"reader invalid name", func() error { _, err := n.OpenReader(ctx, "a..b", AtStart(), ReaderOptions{}); return err }, dlog.ErrInvalidName},
		{"writer unknown log", func() error { _, err := n.OpenWriter(ctx, "nolog", WriterOptions{}); return err }, dlog.ErrLogNotFound},
		{"reader unknown log", func() error { _, err := n.OpenReader(ctx, "nolog", AtStart(), ReaderOptions{}); return err }, dlog.ErrLogNotFound},
		{"segments unknown log", func() error { _, err := n.ListSegments(ctx, "nolog"); return err }, dlog.ErrLogNotFound},
		{"last record unknown log", func() error { _, err := n.GetLastRecord(ctx, "nolog"); return err }, dlog.ErrLogNotFound},
		{"truncate unknown log", func() error { return n.Truncate(ctx, "nolog", dlog.InitialDLSN) }, dlog.ErrLogNotFound},
		{"delete unknown log", func() error { return n.DeleteLog(ctx, "nolog", false) }, dlog.ErrLogNotFound},
		{"record too large", func() error { _, err := w.Write(ctx, dlog.Record{TxID: 11, Payload: big}); return err }, dlog.ErrRecordTooLarge},
		{"record set too large", func() error {
			_, err := w.WriteRecordSet(ctx, []dlog.Record{{TxID: 11, Payload: big[:900]}, {TxID: 11, Payload: big[:900]}, {TxID: 11, Payload: big[:900]}, {TxID: 11, Payload: big[:900]}, {TxID: 11, Payload: big[:900]}})
			return err
		}, dlog.ErrRecordTooLarge},
		{"empty record set", func() error { _, err := w.WriteRecordSet(ctx, nil); return err }, dlog.ErrInvalidArgument},
		{"negative txid", func() error { _, err := w.Write(ctx, dlog.Record{TxID: -1}); return err }, dlog.ErrInvalidArgument},
		{"reserved txid", func() error { _, err := w.Write(ctx, dlog.Record{TxID: dlog.MaxTxID}); return err }, dlog.ErrInvalidArgument},
		{"decreasing txid", func() error { _, err := w.Write(ctx, dlog.Record{TxID: 9}); return err }, dlog.ErrTxIDOutOfOrder},
		{"decreasing txid in a set", func() error {
			_, err := w.WriteRecordSet(ctx, []dlog.Record{{TxID: 12}, {TxID: 11}})
			return err
		}, dlog.ErrTxIDOutOfOrder},
		{"bulk with one bad record", func() error {
			_, err := w.WriteBulk(ctx, []dlog.Record{{TxID: 12}, {TxID: 13, Payload: big}, {TxID: 14}})
			return err
		}, dlog.ErrRecordTooLarge},
		{"invalid dlsn", func() error { _, err := n.OpenReader(ctx, "bad", AtDLSN(dlog.DLSN{}), ReaderOptions{}); return err }, dlog.ErrInvalidDLSN},
		{"dlsn from the future", func() error {
			_, err := n.OpenReader(ctx, "bad", AtDLSN(dlog.DLSN{LSSN: 99}), ReaderOptions{})
			return err
		}, dlog.ErrInvalidArgument},
		{"negative txid position", func() error { _, err := n.OpenReader(ctx, "bad", AtTxID(-5), ReaderOptions{}); return err }, dlog.ErrInvalidArgument},
		{"zero position", func() error { _, err := n.OpenReader(ctx, "bad", Position{}, ReaderOptions{}); return err }, dlog.ErrInvalidArgument},
		{"truncate at the future", func() error { return w.Truncate(ctx, dlog.DLSN{LSSN: d0.LSSN, EntryID: d0.EntryID + 5}) }, dlog.ErrInvalidArgument},
		{"truncate invalid", func() error { return w.Truncate(ctx, dlog.DLSN{LSSN: -1}) }, dlog.ErrInvalidArgument},
		{"second writer in the namespace", func() error { _, err := n.OpenWriter(ctx, "bad", WriterOptions{}); return err }, &dlog.OwnedError{}},
		{"writer in another namespace", func() error { _, err := other.OpenWriter(ctx, "bad", WriterOptions{}); return err }, &dlog.OwnedError{}},
		{"truncate from another namespace", func() error { return other.Truncate(ctx, "bad", d0) }, &dlog.OwnedError{}},
		{"commit invalid subscription position", func() error { return n.CommitSubscription(ctx, "bad", "s", dlog.DLSN{}) }, dlog.ErrInvalidArgument},
		{"invalid subscription name", func() error { return n.CommitSubscription(ctx, "bad", "a b", d0) }, dlog.ErrInvalidName},
		{"batch of zero", func() error {
			r, err := n.OpenReader(ctx, "bad", AtStart(), ReaderOptions{})
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = r.NextBatch(ctx, 0)
			return err
		}, dlog.ErrInvalidArgument},
		{"invalid namespace name", func() error {
			cfg := testConfig(t, c)
			cfg.Namespace = ".."
			_, err := Open(ctx, cfg)
			return err
		}, dlog.ErrInvalidName},
		{"invalid compression", func() error {
			cfg := testConfig(t, c)
			cfg.Compression = "gzip"
			_, err := Open(ctx, cfg)
			return err
		}, dlog.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if owned, ok := tc.want.(*dlog.OwnedError); ok {
				if !errors.As(err, &owned) {
					t.Fatalf("err = %v; want *dlog.OwnedError", err)
				}
				if owned.OwnerID != "proxy-1" || owned.Owner != "10.0.0.1:7000" {
					t.Fatalf("owner %q at %q", owned.OwnerID, owned.Owner)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if !dlog.IsDefinite(err) {
				t.Fatalf("err = %v is not definite", err)
			}
		})
	}

	// Over capacity: with every add held, the writer fills up.
	holdAdds(c, true)
	f1 := w.WriteAsync(dlog.Record{TxID: 20, Payload: []byte("held")})
	f2 := w.WriteAsync(dlog.Record{TxID: 21, Payload: []byte("held")})
	f3 := w.WriteAsync(dlog.Record{TxID: 22, Payload: []byte("refused")})
	if _, err := f3.Wait(ctx); !errors.Is(err, dlog.ErrOverCapacity) || !dlog.IsDefinite(err) {
		t.Fatalf("write beyond the pending bound: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = w.Write(short, dlog.Record{TxID: 23})
	cancel()
	if !errors.Is(err, dlog.ErrOverCapacity) || !dlog.IsDefinite(err) {
		t.Fatalf("blocking write beyond the pending bound: %v", err)
	}
	holdAdds(c, false)
	for _, f := range []*Future{f1, f2} {
		_, err := f.Wait(ctx)
		must(t, err, "held write")
	}
	must(t, w.Close(ctx), "close")

	// Nothing of the refused writes is in the log.
	r, err := n.OpenReader(ctx, "bad", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	recs := readN(t, ctx, r, 3)
	for i, want := range []int64{10, 20, 21} {
		if recs[i].TxID != want {
			t.Fatalf("record %d has txid %d; want %d", i, recs[i].TxID, want)
		}
	}
	short, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if rec, err := r.Next(short); err == nil {
		t.Fatalf("unexpected record %+v", rec)
	}
}
